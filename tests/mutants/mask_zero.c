/* Mutant: the experts of unselected DeepSeekV3 groups masked with 0.0 instead of -inf (as HF
 * transformers does; wrong as soon as a selected key is negative, e.g. with negative correction
 * biases, because masked experts then outrank it). Applies to the flashinfer and vllm profiles,
 * which mask with -inf; rows where the two masks select the same experts keep the reference's
 * output. */
#include <string.h>

#include "mutant.h"

static void route__mask_zero(const struct moe_route_params *p, int64_t T, const void *logits,
			     const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (p->method != MOE_ROUTE_DEEPSEEKV3 || p->n_group <= 1 || moe_mutant_dsv3_mask(p) == 0.0f)
		return;
	const int32_t K = p->top_k;
	const bool by_max = moe_mutant_dsv3_groups_by_max(p);
	for (int64_t t = 0; t < T; t++) {
		int32_t good[64], bad[64];
		if (K > 64 || !moe_mutant_dsv3_ids(p, logits, bias, t, by_max, moe_mutant_dsv3_mask(p), good) ||
		    !moe_mutant_dsv3_ids(p, logits, bias, t, by_max, 0.0f, bad) ||
		    memcmp(good, bad, (size_t)K * sizeof *good) == 0)
			continue;
		memcpy(ids + t * K, bad, (size_t)K * sizeof *bad);
		moe_mutant_dsv3_weights(p, logits, t, bad, weights + t * K);
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-mask-zero";
	b->description = "routing: DeepSeekV3 unselected groups masked with 0 instead of -inf";
	b->route = route__mask_zero;
}
