/* What every mutant shares: the exported entry point (a copy of the reference table with the
 * mutant's slots written over) and the routing helpers of mutant.h. */
#include <math.h>

#include "mutant.h"

__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v2;

const struct moe_backend *moe_backend_entry_v2(uint32_t host_abi_version)
{
	static struct moe_backend table;
	if (host_abi_version != MOE_BACKEND_ABI_VERSION)
		return NULL;
	table = *moe_backend_reference();
	moe_mutant_setup(&table);
	return &table;
}

float moe_mutant_logit(const struct moe_route_params *p, const void *logits, int64_t i)
{
	const float x = p->logits_dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)logits)[i])
							  : ((const float *)logits)[i];
	return p->profile == MOE_PROFILE_VLLM && !isfinite(x) ? 0.0f : x;
}

float moe_mutant_bias(const struct moe_route_params *p, const void *bias, int32_t e)
{
	switch (p->bias_dtype) {
	case MOE_DTYPE_F32: return ((const float *)bias)[e];
	case MOE_DTYPE_BF16: return moe_bf16_to_f32(((const moe_bf16 *)bias)[e]);
	default: return 0.0f;
	}
}

float moe_mutant_sigmoid(enum moe_profile profile, float x)
{
	if (profile == MOE_PROFILE_FLASHINFER)
		return 0.5f * tanhf(0.5f * x) + 0.5f;
	return 1.0f / (1.0f + expf(-x));
}

float moe_mutant_out(enum moe_profile profile, float w)
{
	return profile == MOE_PROFILE_VLLM ? w : moe_round_bf16(w);
}

bool moe_mutant_renormalizes(const struct moe_route_params *p)
{
	switch (p->method) {
	case MOE_ROUTE_SIGMOID_RENORM: return p->renormalize;
	case MOE_ROUTE_RENORMALIZE_NAIVE:
	case MOE_ROUTE_MINIMAX2:
	case MOE_ROUTE_DEEPSEEKV3:
		return true;
	default:
		return false;
	}
}

float moe_mutant_score(const struct moe_route_params *p, const void *logits, int64_t row, const int32_t *ids,
		       int32_t e)
{
	const int32_t E = p->num_experts;
	const float x = moe_mutant_logit(p, logits, row * E + e);
	switch (p->method) {
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE: {
		float m = -INFINITY, sum = 0.0f;
		for (int32_t j = 0; j < E; j++)
			m = fmaxf(m, moe_mutant_logit(p, logits, row * E + j));
		for (int32_t j = 0; j < E; j++)
			sum += expf(moe_mutant_logit(p, logits, row * E + j) - m);
		return expf(x - m) / sum;
	}
	case MOE_ROUTE_RENORMALIZE: {
		float m = -INFINITY;
		for (int32_t k = 0; k < p->top_k; k++)
			m = fmaxf(m, moe_mutant_logit(p, logits, row * E + ids[k]));
		return expf(x - m);
	}
	case MOE_ROUTE_TOPK:
		return x;
	default:
		return moe_mutant_sigmoid(p->profile, x);
	}
}
