/* Mutant: routing weights left in fp32 where the profile returns bf16. Under the flashinfer and hf
 * profiles every weight is rounded to bf16 on output (routing.md; reference/routing_score.c
 * moe_route_out); a kernel whose epilogue forgets that cast returns the fp32 score, which lies
 * within half a bf16 ulp of the right value and so inside the weight budget (which allows one bf16
 * ulp). Broken here for the methods whose weight is the score itself (Default's softmax
 * probability, Sigmoid, TopKSigmoid, Llama4, SigmoidRenorm without renormalize): the reference's
 * ids, and the score recomputed in fp32 without the final rounding. */
#include "mutant.h"

static void route__weights_f32(const struct moe_route_params *p, int64_t T, const void *logits,
			       const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (p->profile == MOE_PROFILE_VLLM || moe_mutant_renormalizes(p))
		return;
	switch (p->method) {
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_SIGMOID:
	case MOE_ROUTE_SIGMOID_RENORM:
	case MOE_ROUTE_TOPK_SIGMOID:
	case MOE_ROUTE_LLAMA4:
		break;
	default:
		return;
	}
	const int32_t K = p->top_k;
	for (int64_t t = 0; t < T; t++)
		for (int32_t k = 0; k < K; k++)
			weights[t * K + k] = moe_mutant_score(p, logits, t, ids + t * K, ids[t * K + k]);
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-weights-f32";
	b->description = "routing: weights not rounded to bf16 under the flashinfer and hf profiles";
	b->route = route__weights_f32;
}
