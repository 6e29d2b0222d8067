/* Mutant: DeepSeekV3 group score by the sum of the two largest keys even without a correction bias.
 * vLLM's grouped_topk scores a group by its top-2 sum only when e_score_correction_bias is given and
 * by its maximum otherwise (routing.md); a kernel written for DeepSeek-V3, which always has the
 * bias, takes the top-2 sum on both paths. Rows where the two scorings pick the same groups keep
 * the reference's output; the others get the ids of the top-2-scored groups. */
#include <string.h>

#include "mutant.h"

static void route__group_top2_unbiased(const struct moe_route_params *p, int64_t T, const void *logits,
				       const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (p->method != MOE_ROUTE_DEEPSEEKV3 || p->n_group <= 1 || !moe_mutant_dsv3_groups_by_max(p))
		return;
	const int32_t K = p->top_k;
	const float mask = moe_mutant_dsv3_mask(p);
	for (int64_t t = 0; t < T; t++) {
		int32_t good[64], bad[64];
		if (K > 64 || !moe_mutant_dsv3_ids(p, logits, bias, t, true, mask, good) ||
		    !moe_mutant_dsv3_ids(p, logits, bias, t, false, mask, bad) ||
		    memcmp(good, bad, (size_t)K * sizeof *good) == 0)
			continue;
		memcpy(ids + t * K, bad, (size_t)K * sizeof *bad);
		moe_mutant_dsv3_weights(p, logits, t, bad, weights + t * K);
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-group-top2-unbiased";
	b->description = "routing: DeepSeekV3 without a bias scores groups by top-2 sum under vllm (max expected)";
	b->route = route__group_top2_unbiased;
}
