/* Routing comparison internals shared by the route and layer runners and the tests: the tolerance
 * model (tolerance.c), the key and weight models in double (route_model.c) and the tie-aware
 * comparator (compare_route.c). */
#ifndef MOE_VERIFY_VROUTE_H
#define MOE_VERIFY_VROUTE_H

#include "verify.h"

/* What a correct kernel may deviate from the exact value, for one routing problem. */
struct moe_route_tol {
	/* Selection key of expert e: |key_kernel - key_exact| <= key_rel*|key| + key_abs.
	 * key_rel and key_abs are 0 where the key is the logit itself (exact). */
	double key_rel, key_abs;
	/* Weights: |w_kernel - w_ref| <= w_ulps * ulp_f32(w_ref) + floor (floor: underflowed scores,
	 * propagated per row), plus one bf16 ulp when w_bf16 and the weight is not exact. */
	double w_ulps;
	double s_abs;   /* absolute error of one score (sigmoid/softmax), kernel + reference */
	bool w_bf16;
	bool keys_exact; /* key is the (total-ordered) logit: no near-ties, only exact ties */
};

void moe_route_tolerance(const struct moe_route_params *p, struct moe_route_tol *t);

/* Per-row model. All arrays have E entries (gs/dg: G entries) and are owned by the caller. */
struct moe_route_row {
	const struct moe_route_params *p;
	const struct moe_route_tol *t;
	int32_t E, K;
	const float *L;    /* the row's logits as fp32 (bf16 converted exactly) */
	const float *b;    /* bias as fp32, or NULL */
	double *key;       /* reference key (exact arithmetic on the fp32 inputs the kernel sees) */
	double *delta;     /* key error budget */
	uint64_t *inb;     /* the bits the key is a function of (logit, bias): equal bits = exact tie */
	double *gs, *dg;   /* group scores and their budgets (grouped DeepSeekV3) */
	bool exact_only;   /* non-finite inputs or an all-equal row: ids must equal the reference */
	unsigned char *mark; /* E bytes of scratch, all zero between calls */
	double *kt;        /* E doubles of scratch */
	uint64_t *kb;      /* E of scratch */
};

/* Fills key, delta, inb, gs, dg and exact_only for the row. */
void moe_route_row_model(struct moe_route_row *rw);

/* Whether ids[K] is a correct routing of the row under some perturbation of the keys within their
 * budgets, with the tie rule (lower index first) exact on bitwise-equal inputs. On false, *slot
 * receives the offending slot (or K + expert index for an expert that should have been chosen) and
 * *why a static description. */
bool moe_route_row_ids_ok(struct moe_route_row *rw, const int32_t *ids, int64_t *slot, const char **why);

/* Exact (double) weights of the selection ids[K] under the method's semantics (no output rounding);
 * *ssum receives the score sum S the weights were normalized by (0 when not normalized). */
void moe_route_row_weights(const struct moe_route_row *rw, const int32_t *ids, double *w, double *ssum);

/* Allowed |w_kernel - w_ref| for one weight (see struct moe_route_tol), given the row's S. */
double moe_route_weight_allowed(const struct moe_route_row *rw, double w_ref, double ssum);

/* Compares a kernel's routing (ids_k, w_k) with the reference's (ids_r, w_r) for T rows of logits
 * L32[T][E] (fp32) and bias b32[E] (or NULL). Scratch: ws (see moe_route_scratch_bytes). Records
 * mismatches, near-ties and the worst ULP distance in r. `row0` offsets reported indices. */
size_t moe_route_scratch_bytes(int32_t E, int32_t G);
void moe_route_compare(const struct moe_route_params *p, int64_t T, const float *L32, const float *b32,
		       const int32_t *ids_r, const float *w_r, const int32_t *ids_k, const float *w_k,
		       void *ws, struct moe_vresult *r);

#endif
