/* Mutant: renormalization missing. The renormalizing methods (SigmoidRenorm with renormalize,
 * RenormalizeNaive, MiniMax2, DeepSeekV3) return the selected scores undivided by their sum (still
 * times rsf where the method applies it), the ids being the reference's. */
#include "mutant.h"

static void route__renorm_missing(const struct moe_route_params *p, int64_t T, const void *logits,
				  const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (!moe_mutant_renormalizes(p))
		return;
	const int32_t K = p->top_k;
	const bool scaled = p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3;
	for (int64_t t = 0; t < T; t++) {
		for (int32_t k = 0; k < K; k++) {
			float s = moe_mutant_score(p, logits, t, ids + t * K, ids[t * K + k]);
			weights[t * K + k] = moe_mutant_out(p->profile, scaled ? s * p->routed_scaling_factor : s);
		}
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-renorm-missing";
	b->description = "routing: selected scores not divided by their sum";
	b->route = route__renorm_missing;
}
