/* Mutant: the correction bias used in the weights. MiniMax2 and DeepSeekV3 select on s + bias and
 * must weight by the unbiased s; this one weights by the biased key:
 * w = (s + b) * rsf / (sum of the K selected (s + b) + 1e-20), with the reference's ids. */
#include <assert.h>

#include "mutant.h"

static void route__bias_in_weights(const struct moe_route_params *p, int64_t T, const void *logits,
				   const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (!bias || (p->method != MOE_ROUTE_MINIMAX2 && p->method != MOE_ROUTE_DEEPSEEKV3))
		return;
	const int32_t E = p->num_experts, K = p->top_k;
	assert(K <= 64);
	for (int64_t t = 0; t < T; t++) {
		float key[64], S = 0.0f;
		for (int32_t k = 0; k < K; k++) {
			const int32_t e = ids[t * K + k];
			key[k] = moe_mutant_sigmoid(p->profile, moe_mutant_logit(p, logits, t * E + e)) +
				 moe_mutant_bias(p, bias, e);
			S += key[k];
		}
		for (int32_t k = 0; k < K; k++)
			weights[t * K + k] = moe_mutant_out(p->profile, key[k] * p->routed_scaling_factor / (S + 1e-20f));
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-bias-in-weights";
	b->description = "routing: weights computed from the biased key instead of the score";
	b->route = route__bias_in_weights;
}
