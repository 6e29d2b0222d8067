/* Routing parameters at the boundary: defaults, validation, and the checked reference entry.
 *
 * Constraints that hold under every profile (no engine can run the problem, or the semantics
 * are undefined without them):
 *   method is one of the ten (Unspecified and out-of-range values are rejected); profile, logits
 *   dtype (f32, bf16) and bias dtype (none, f32, bf16) in range; a bias only for MiniMax2 and
 *   DeepSeekV3, the methods that use one; E >= 1; 1 <= K <= E; Llama4 K == 1; a finite
 *   routed_scaling_factor where it is applied (MiniMax2, DeepSeekV3); DeepSeekV3 n_group >= 0
 *   (0 and 1: ungrouped) and, grouped, E % n_group == 0, 1 <= topk_group <= n_group,
 *   K <= topk_group*E/n_group (enough experts in the kept groups), and at least 2 experts per group
 *   where the group score is a top-2 sum (everywhere but vLLM without a bias, which takes the max).
 * Constraints that only flashinfer's host code imposes, checked under the flashinfer profile:
 *   E % 4 == 0; K < E; K <= 32 for every method (its routing kernels hold a token's top-k in one
 *   32-lane warp, which the butterfly sum over the K relies on; routing.md names the renormalize
 *   family, DeepSeekV3's kernel has the same warp); DeepSeekV3 grouped: topk_group <= 4 and
 *   K < topk_group*E/n_group.
 * n_group and topk_group are ignored by every method but DeepSeekV3, and renormalize by every
 * method but SigmoidRenorm. */
#include <math.h>

#include "routing_internal.h"

struct moe_route_params moe_route_params_default(enum moe_routing_method m, int32_t E, int32_t K)
{
	struct moe_route_params p = {
		.method = m,
		.profile = MOE_PROFILE_VLLM,
		.num_experts = E,
		.top_k = K,
		.n_group = 0,
		.topk_group = 0,
		.renormalize = true,
		.routed_scaling_factor = 1.0f,
		.logits_dtype = MOE_DTYPE_F32,
		.bias_dtype = MOE_DTYPE_NONE,
	};
	return p;
}

static enum moe_status validate_grouping(const struct moe_route_params *p)
{
	const int32_t E = p->num_experts, K = p->top_k, G = p->n_group, TG = p->topk_group;
	if (G < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "route DeepSeekV3: n_group=%d must be >= 0 (0 or 1 = ungrouped)", G);
	if (G <= 1)
		return MOE_OK;
	if (E % G != 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "route DeepSeekV3: E=%d must be a multiple of n_group=%d", E, G);
	if (TG < 1 || TG > G)
		return moe_fail(MOE_ERR_INVALID_ARG, "route DeepSeekV3: topk_group=%d must be in 1..n_group=%d", TG, G);
	const int64_t kept = (int64_t)TG * (E / G);
	if (K > kept)
		return moe_fail(MOE_ERR_INVALID_ARG,
				"route DeepSeekV3: top_k=%d must be <= topk_group*E/n_group = %lld (experts in the kept groups)",
				K, (long long)kept);
	bool top2 = p->bias_dtype != MOE_DTYPE_NONE || p->profile != MOE_PROFILE_VLLM;
	if (top2 && E / G < 2)
		return moe_fail(MOE_ERR_INVALID_ARG,
				"route DeepSeekV3: E/n_group = %d experts per group must be >= 2 (the group score sums the best two)",
				E / G);
	if (p->profile == MOE_PROFILE_FLASHINFER) {
		if (TG > 4)
			return moe_fail(MOE_ERR_INVALID_ARG,
					"route DeepSeekV3: topk_group=%d must be <= 4 (flashinfer host check)", TG);
		if (K >= kept)
			return moe_fail(MOE_ERR_INVALID_ARG,
					"route DeepSeekV3: top_k=%d must be < topk_group*E/n_group = %lld (flashinfer host check)",
					K, (long long)kept);
	}
	return MOE_OK;
}

enum moe_status moe_route_validate(const struct moe_route_params *p)
{
	if (!p)
		return moe_fail(MOE_ERR_INVALID_ARG, "route: no parameters (NULL)");
	if (p->method == MOE_ROUTE_UNSPECIFIED)
		return moe_fail(MOE_ERR_INVALID_ARG,
				"route: method Unspecified (%d) does not route; use one of 0..%d (Default..TopKSigmoid)",
				(int)p->method, MOE_ROUTE_METHOD_COUNT - 1);
	if ((unsigned)p->method >= MOE_ROUTE_METHOD_COUNT)
		return moe_fail(MOE_ERR_INVALID_ARG, "route: method %d out of range 0..%d", (int)p->method,
				MOE_ROUTE_METHOD_COUNT - 1);

	const char *name = moe_routing_method_name(p->method);
	const int32_t E = p->num_experts, K = p->top_k;
	const bool uses_bias = p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3;

	if ((unsigned)p->profile >= MOE_PROFILE_COUNT)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: profile %d out of range (0 flashinfer, 1 vllm, 2 hf)",
				name, (int)p->profile);
	if (p->logits_dtype != MOE_DTYPE_F32 && p->logits_dtype != MOE_DTYPE_BF16)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: logits dtype %s (%d) must be f32 or bf16", name,
				moe_dtype_name(p->logits_dtype), (int)p->logits_dtype);
	if (p->bias_dtype != MOE_DTYPE_NONE && p->bias_dtype != MOE_DTYPE_F32 && p->bias_dtype != MOE_DTYPE_BF16)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: bias dtype %s (%d) must be none, f32 or bf16", name,
				moe_dtype_name(p->bias_dtype), (int)p->bias_dtype);
	if (p->bias_dtype != MOE_DTYPE_NONE && !uses_bias)
		return moe_fail(MOE_ERR_INVALID_ARG,
				"route %s: bias dtype %s given, but only MiniMax2 and DeepSeekV3 use a correction bias",
				name, moe_dtype_name(p->bias_dtype));
	if (E < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: num_experts E=%d must be >= 1", name, E);
	if (K < 1 || K > E)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: top_k=%d must be in 1..E=%d", name, K, E);
	if (p->method == MOE_ROUTE_LLAMA4 && K != 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "route Llama4: top_k=%d must be 1", K);
	if (uses_bias && !isfinite(p->routed_scaling_factor))
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: routed_scaling_factor=%g must be finite", name,
				(double)p->routed_scaling_factor);

	if (p->profile == MOE_PROFILE_FLASHINFER) {
		if (E % 4 != 0)
			return moe_fail(MOE_ERR_INVALID_ARG,
					"route %s: E=%d must be a multiple of 4 (flashinfer host check)", name, E);
		if (K >= E)
			return moe_fail(MOE_ERR_INVALID_ARG, "route %s: top_k=%d must be < E=%d (flashinfer host check)",
					name, K, E);
		if (K > MOE_ROUTE_WARP)
			return moe_fail(MOE_ERR_INVALID_ARG,
					"route %s: top_k=%d must be <= %d (flashinfer host check: one warp holds the top-k)",
					name, K, MOE_ROUTE_WARP);
	}
	if (p->method == MOE_ROUTE_DEEPSEEKV3)
		return validate_grouping(p);
	return MOE_OK;
}

enum moe_status moe_route_ref_checked(const struct moe_route_params *p, int64_t T, const void *logits,
				      const void *bias, int32_t *ids, float *weights)
{
	enum moe_status s = moe_route_validate(p);
	if (s != MOE_OK)
		return s;
	const char *name = moe_routing_method_name(p->method);
	if (T < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: T=%lld tokens must be >= 0", name, (long long)T);
	if (T > INT64_MAX / p->num_experts)
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: T=%lld tokens times E=%d logits overflows", name,
				(long long)T, p->num_experts);
	if ((bias == NULL) != (p->bias_dtype == MOE_DTYPE_NONE))
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: bias is %s but bias dtype is %s", name,
				bias ? "given" : "NULL", moe_dtype_name(p->bias_dtype));
	if (T > 0 && (!logits || !ids || !weights))
		return moe_fail(MOE_ERR_INVALID_ARG, "route %s: T=%lld tokens but %s is NULL", name, (long long)T,
				!logits ? "logits" : !ids ? "ids" : "weights");
	moe_route__ref(p, T, logits, bias, ids, weights);
	return MOE_OK;
}
