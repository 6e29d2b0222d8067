/* moebench public interface: a whole MoE layer.
 *
 * route -> group token-slots by expert (counts, offsets, a stable permutation) -> run each expert on
 * its tokens -> weighted combine -> optional shared expert. The routed scaling factor is applied
 * exactly once: inside the router (rsf_site = ROUTER, the router's own semantics) or to the routed
 * sum (rsf_site = OUTPUT, the router then runs with rsf = 1). Experts with zero tokens are normal. */
#ifndef MOE_LAYER_H
#define MOE_LAYER_H

#include "moe/expert.h"
#include "moe/routing.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_rsf_site { MOE_RSF_AT_ROUTER = 0, MOE_RSF_AT_OUTPUT = 1 };

enum moe_shared_combine {
	MOE_SHARED_NONE = 0,
	MOE_SHARED_SUM = 1,     /* y = routed + shared */
	MOE_SHARED_AVERAGE = 2, /* y = (routed + shared) / 2 (Cohere2-MoE "average") */
};

struct moe_layer_params {
	struct moe_route_params route; /* route.num_experts = E, route.top_k = K */
	struct moe_expert_params expert; /* tokens ignored; hidden, inter, formats shared by all experts */
	enum moe_rsf_site rsf_site;
	enum moe_shared_combine shared;
	int64_t shared_inter; /* width of the shared expert (0 when shared == NONE) */
	int64_t tokens;       /* T */
};

struct moe_layer_weights {
	const struct moe_expert_weights *experts; /* [E] */
	const struct moe_expert_weights *shared;  /* NULL when shared == NONE; same formats, inter = shared_inter */
};

/* Token-slot grouping: slot s = t*K + k. counts[E], offsets[E+1] (offsets[0] = 0), perm[T*K] lists
 * slots grouped by expert, each group in increasing slot order. */
void moe_dispatch__ref(int32_t E, int64_t T, int32_t K, const int32_t *ids, int32_t *counts,
		       int32_t *offsets, int32_t *perm);

/* x[T][H] fp32; logits/bias as in routing.h; y[T][H] fp32; ids/weights[T*K] receive the routing. */
typedef void moe_layer_fn(const struct moe_layer_params *p, const float *x, const void *logits,
			  const void *bias, const struct moe_layer_weights *w, float *y,
			  int32_t *ids, float *weights, void *workspace);

enum moe_status moe_layer_validate(const struct moe_layer_params *p, const struct moe_layer_weights *w);
size_t moe_layer_workspace_bytes(const struct moe_layer_params *p);

moe_layer_fn moe_layer__ref;

/* The layer in double with an a-priori bound per output, for the routing given in ids/weights
 * (e.g. what the kernel under test returned, once checked against the router): each expert by
 * moe_expert_ref_f64_ex on its tokens, then the combine; any correct fp32 layer kernel that routes
 * this way satisfies |y - y_ref| <= bound. weights exclude rsf when rsf_site is OUTPUT, as the
 * layer kernels return them. y_ref and bound: T*H doubles. info (may be NULL) receives the counts
 * summed over the experts (the shared one included) and whether any bound is unbounded. */
enum moe_status moe_layer_ref_f64(const struct moe_layer_params *p, const float *x, const int32_t *ids,
				  const float *weights, const struct moe_layer_weights *w, double *y_ref,
				  double *bound, struct moe_expert_f64_info *info);

#ifdef __cplusplus
}
#endif
#endif
