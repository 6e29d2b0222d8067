/* Mutant: the routed scaling factor applied twice (vLLM #24119, SGLang #8511): the methods that
 * apply rsf (MiniMax2, DeepSeekV3) return weights multiplied by rsf once more. Caught by any case
 * with rsf != 1 (DeepSeek-V3 uses 2.5). */
#include "mutant.h"

static void route__rsf_twice(const struct moe_route_params *p, int64_t T, const void *logits,
			     const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (p->method != MOE_ROUTE_MINIMAX2 && p->method != MOE_ROUTE_DEEPSEEKV3)
		return;
	for (int64_t i = 0; i < T * p->top_k; i++)
		weights[i] = moe_mutant_out(p->profile, weights[i] * p->routed_scaling_factor);
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-rsf-twice";
	b->description = "routing: routed scaling factor applied twice";
	b->route = route__rsf_twice;
}
