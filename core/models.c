/* The model table. Each entry is one MoE layer: router (method, groups, bias, logits dtype), expert
 * format as shipped or served, norm, shared expert. Command A+ publishes no expert width: I = 2048
 * is derived from its 218B-total / 25B-active parameter counts (129 experts of 3*H*I per layer,
 * 40 layers) and is an estimate. */
#include <stdio.h>

#include "moe/models.h"

static const struct moe_model_shape models[] = {
	{ "qwen3-30b-a3b", 2048, 768, 0, 128, 8, 0, 0, 1.0f, MOE_ROUTE_RENORMALIZE_NAIVE, false,
	  MOE_DTYPE_BF16, MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_ACT_BF16, MOE_NORM_RMSNORM,
	  "Qwen3-30B-A3B config: softmax, top-8 renormalized, bf16", MOE_SHARED_NONE },
	{ "deepseek-v3", 7168, 2048, 2048, 256, 8, 8, 4, 2.5f, MOE_ROUTE_DEEPSEEKV3, true,
	  MOE_DTYPE_F32, MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_ACT_FP8_1x128, MOE_NORM_RMSNORM,
	  "DeepSeek-V3 config: fp32 router, biased sigmoid, 8 groups top-4, rsf 2.5, FP8 128x128 weights, 1 shared",
	  MOE_SHARED_SUM },
	{ "command-a-plus", 8192, 2048, 2048, 128, 8, 0, 0, 1.0f, MOE_ROUTE_SIGMOID_RENORM, false,
	  MOE_DTYPE_BF16, MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_ACT_NVFP4, MOE_NORM_LAYERNORM,
	  "Command A+: sigmoid renormalized, NVFP4 W4A4, 1 shared (average); I estimated", MOE_SHARED_AVERAGE },
	{ "minimax-m2", 3072, 1536, 0, 256, 8, 0, 0, 1.0f, MOE_ROUTE_MINIMAX2, true,
	  MOE_DTYPE_F32, MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_ACT_FP8_1x128, MOE_NORM_RMSNORM,
	  "MiniMax-M2 config: biased sigmoid, fp32 router, FP8 128x128 weights", MOE_SHARED_NONE },
	{ "gpt-oss-20b", 2880, 2880, 0, 32, 4, 0, 0, 1.0f, MOE_ROUTE_RENORMALIZE, false,
	  MOE_DTYPE_BF16, MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_ACT_BF16, MOE_NORM_RMSNORM,
	  "gpt-oss-20b config: top-4 then softmax, MXFP4 weights, bf16 activations", MOE_SHARED_NONE },
	{ "mixtral-8x7b", 4096, 14336, 0, 8, 2, 0, 0, 1.0f, MOE_ROUTE_RENORMALIZE, false,
	  MOE_DTYPE_BF16, MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_ACT_BF16, MOE_NORM_RMSNORM,
	  "Mixtral-8x7B config: top-2 then softmax, bf16", MOE_SHARED_NONE },
	{ "llama4-scout", 5120, 8192, 8192, 16, 1, 0, 0, 1.0f, MOE_ROUTE_LLAMA4, false,
	  MOE_DTYPE_BF16, MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_ACT_BF16, MOE_NORM_RMSNORM,
	  "Llama 4 Scout config: top-1 sigmoid, 16 experts, 1 shared, bf16", MOE_SHARED_SUM },
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
	char known[256];
	size_t used = 0;
	for (size_t i = 0; name && i < moe_model_count(); i++)
		if (strcmp(models[i].name, name) == 0)
			return &models[i];
	known[0] = '\0';
	for (size_t i = 0; i < moe_model_count() && used < sizeof known; i++) {
		int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", models[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	moe_fail(MOE_ERR_INVALID_ARG, "unknown model '%s' (known: %s)", name ? name : "(null)", known);
	return NULL;
}

struct moe_route_params moe_model_route_params(const struct moe_model_shape *m, enum moe_profile profile)
{
	return (struct moe_route_params){
		.method = m->method,
		.profile = profile,
		.num_experts = m->experts,
		.top_k = m->top_k,
		.n_group = m->n_group,
		.topk_group = m->topk_group,
		.renormalize = true, /* every SigmoidRenorm model in the table renormalizes */
		.routed_scaling_factor = m->rsf,
		.logits_dtype = m->logits_dtype,
		.bias_dtype = m->bias ? MOE_DTYPE_F32 : MOE_DTYPE_NONE,
	};
}

struct moe_expert_params moe_model_expert_params(const struct moe_model_shape *m)
{
	return (struct moe_expert_params){
		.hidden = m->hidden, .inter = m->inter, .weight_dtype = m->weight_dtype,
		.weight_scaling = m->weight_scaling, .weight_sf_layout = MOE_SF_LINEAR, .act_quant = m->act,
	};
}
