/* The model shape table. Sources: the public configs summarized in ../shared/spec/cohere2-moe.md.
 * Command A+ does not publish a router scaling factor or bias; its expert width is the config
 * default (intermediate_size 22528 per cohere2-moe.md is the dense default; the routed experts of
 * the public 218B/25B checkpoint are narrower, so the suite uses the dense default only where the
 * spec gives no better number). */
#include <stdio.h>

#include "moe/models.h"

static const struct moe_model_shape models[] = {
	{ "deepseek-v3", 7168, 2048, 256, 8, 8, 4, 1, 2.5f, MOE_ROUTE_DEEPSEEKV3, true, MOE_DTYPE_FP8E4M3 },
	{ "qwen3-30b-a3b", 2048, 768, 128, 8, 0, 0, 0, 1.0f, MOE_ROUTE_RENORMALIZE_NAIVE, false, MOE_DTYPE_BF16 },
	{ "command-a-plus", 8192, 22528, 128, 8, 0, 0, 1, 1.0f, MOE_ROUTE_SIGMOID_RENORM, false, MOE_DTYPE_NVFP4 },
	{ "minimax-m2", 3072, 1536, 256, 8, 0, 0, 0, 1.0f, MOE_ROUTE_MINIMAX2, true, MOE_DTYPE_FP8E4M3 },
	{ "llama4-scout", 5120, 8192, 16, 1, 0, 0, 1, 1.0f, MOE_ROUTE_LLAMA4, false, MOE_DTYPE_BF16 },
	{ "gpt-oss-20b", 2880, 2880, 32, 4, 0, 0, 0, 1.0f, MOE_ROUTE_RENORMALIZE, false, MOE_DTYPE_MXFP4 },
	{ "mixtral-8x7b", 4096, 14336, 8, 2, 0, 0, 0, 1.0f, MOE_ROUTE_RENORMALIZE, false, MOE_DTYPE_BF16 },
};

size_t moe_model_count(void)
{
	return sizeof models / sizeof models[0];
}

const struct moe_model_shape *moe_model_at(size_t i)
{
	return i < moe_model_count() ? &models[i] : NULL;
}

const struct moe_model_shape *moe_model_find(const char *name)
{
	for (size_t i = 0; name && i < moe_model_count(); i++)
		if (strcmp(models[i].name, name) == 0)
			return &models[i];
	moe_fail(MOE_ERR_INVALID_ARG, "unknown model '%s' (known: deepseek-v3, qwen3-30b-a3b, command-a-plus, "
				      "minimax-m2, llama4-scout, gpt-oss-20b, mixtral-8x7b)", name ? name : "(null)");
	return NULL;
}

struct moe_route_params moe_model_route_params(const struct moe_model_shape *m, enum moe_profile profile)
{
	struct moe_route_params p = {
		.method = m->method,
		.profile = profile,
		.num_experts = m->num_experts,
		.top_k = m->top_k,
		.n_group = m->n_group,
		.topk_group = m->topk_group,
		.renormalize = true,
		.routed_scaling_factor = m->routed_scaling_factor,
		.logits_dtype = MOE_DTYPE_F32,
		.bias_dtype = m->has_bias ? MOE_DTYPE_F32 : MOE_DTYPE_NONE,
	};
	return p;
}
