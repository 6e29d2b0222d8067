/* Internal interface of the scalar reference router (reference/routing*.c); not installed.
 *
 * routing_score.c: the per-profile arithmetic (sigmoid forms, sums over the K selected, output
 * rounding); routing_select.c: the rank order of keys, the top-k, and the rank-order walk the
 * DeepSeekV3 group choice uses; routing.c: the ten methods, one token row at a time.
 *
 * The router keeps no per-expert scratch: the only per-token storage is the caller's ids and
 * weights rows (K entries each), and where more would be needed (the DeepSeekV3 group choice) keys,
 * pure functions of the row, are evaluated again instead of stored. Nothing allocates, whatever E
 * is. */
#ifndef MOE_REFERENCE_ROUTING_INTERNAL_H
#define MOE_REFERENCE_ROUTING_INTERNAL_H

#include "moe/routing.h"

/* The butterfly sum runs on one 32-lane warp, so the flashinfer profile caps K here. */
#define MOE_ROUTE_WARP 32

/* One token row and what its selection needs to know about it. */
struct moe_route_row {
	const struct moe_route_params *p;
	const void *logits; /* E elements of p->logits_dtype */
	const void *bias;   /* E elements of p->bias_dtype, or NULL */
	bool round_bias;    /* flashinfer's grouped DeepSeekV3 path rounds the bias to bf16 */
	float smax, ssum;   /* softmax over E: max logit (NaN ignored) and sum of expf(x - smax) */
	/* DeepSeekV3 grouped selection: experts per group, the TG-th best group (the last one
	 * selected) and its score, and a one-group cache so that a pass over the experts, which
	 * meets a group's experts one after another, evaluates each group's score once. */
	int32_t group_size;
	int32_t cut_group;
	float cut_score;
	int32_t open_group;
	bool open;
};

/* Key of candidate i; false if i takes no part in the selection. */
typedef bool moe_route_key_fn(struct moe_route_row *r, int32_t i, float *key);

/* routing_score.c */
float moe_route_canon(float x);                                            /* NaN -> +qNaN */
float moe_route_clamp(enum moe_profile profile, float score);              /* vLLM: non-finite -> +0 */
float moe_route_sigmoid(enum moe_profile profile, float x);                /* the profile's form */
float moe_route_sum_k(enum moe_profile profile, const float *v, int32_t K); /* the profile's order */
float moe_route_out(enum moe_profile profile, float w);                    /* the output precision */

/* routing_select.c */
/* Whether (ka, ia) ranks before (kb, ib) in the profile's order. */
bool moe_route_before(enum moe_profile profile, float ka, int32_t ia, float kb, int32_t ib);
/* The best of candidates 0..n-1 ranked after (prev_key, prev), from the top if prev < 0; -1 if none. */
int32_t moe_route_next(struct moe_route_row *r, moe_route_key_fn *key, int32_t n, int32_t prev,
		       float prev_key, float *next_key);
/* The K best of candidates 0..n-1 into ids[0..K), best first; keys[0..K) receives their keys. */
void moe_route_topk(struct moe_route_row *r, moe_route_key_fn *key, int32_t n, int32_t K, int32_t *ids,
		    float *keys);

#endif
