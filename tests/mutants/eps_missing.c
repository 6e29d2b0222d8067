/* Mutant: the renormalization epsilon missing (GLM, flashinfer #3803). Where the reference guards
 * the division by the sum S of the selected scores with an epsilon (flashinfer: S + 1e-20 for
 * MiniMax2 and DeepSeekV3, max(S, 1e-20) for SigmoidRenorm; hf: S + 1e-20 for DeepSeekV3), this one
 * divides by S: identical while S is an ordinary number, 0 / 0 = NaN in a row where every selected
 * sigmoid underflowed to 0. Rows the reference already divides unguarded (hf SigmoidRenorm and
 * MiniMax2) come out NaN either way; vLLM guards with S > 0 ? S : 1, so its profile is left alone. */
#include <math.h>

#include "mutant.h"

static void route__eps_missing(const struct moe_route_params *p, int64_t T, const void *logits,
			       const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	const bool has_eps = p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3 ||
			     (p->method == MOE_ROUTE_SIGMOID_RENORM && p->renormalize);
	if (!has_eps || p->profile == MOE_PROFILE_VLLM)
		return;
	const int32_t E = p->num_experts, K = p->top_k;
	for (int64_t t = 0; t < T; t++) {
		bool all_zero = true;
		for (int32_t k = 0; k < K; k++) {
			const float x = moe_mutant_logit(p, logits, t * E + ids[t * K + k]);
			all_zero = all_zero && moe_mutant_sigmoid(p->profile, x) == 0.0f;
		}
		if (all_zero)
			for (int32_t k = 0; k < K; k++)
				weights[t * K + k] = NAN;
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-eps-missing";
	b->description = "routing: renormalization without epsilon (0/0 on underflowed sigmoids)";
	b->route = route__eps_missing;
}
