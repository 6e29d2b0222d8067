/* moe_layer_validate: the boundary check of a MoE layer problem, shared by every layer kernel.
 *
 * tokens >= 0; the routing params valid for moe_route_validate; rsf_site and shared in range;
 * the routed scaling factor applied exactly once: at the OUTPUT site it must be finite and > 0,
 * at the ROUTER site a factor != 1 needs a method that applies it (DeepSeekV3, MiniMax2: the
 * router ignores it otherwise and it would never be applied); T*K slots fit an int32 (the
 * permutation's type); every routed expert valid for moe_expert_validate with the layer's expert
 * params (tokens = T); shared == NONE goes with shared_inter == 0 and no shared weights, SUM and
 * AVERAGE need shared weights valid at inter = shared_inter; the workspace size fits in size_t.
 * Every failure is MOE_ERR_INVALID_ARG with a message "layer: ..." (the router's and the expert's
 * own messages are kept, prefixed). */
#include <math.h>
#include <stdio.h>

#include "expert_impl.h"

static enum moe_status wrap(const char *what)
{
	char why[768];
	snprintf(why, sizeof why, "%s", moe_last_error());
	return moe_fail(MOE_ERR_INVALID_ARG, "layer: %s: %s", what, why);
}

enum moe_status moe_layer_validate(const struct moe_layer_params *p, const struct moe_layer_weights *w)
{
	if (!p)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: params is NULL");
	if (!w)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: weights is NULL");
	if (p->tokens < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: tokens=%lld must be >= 0", (long long)p->tokens);
	if (moe_route_validate(&p->route) != MOE_OK)
		return wrap("routing");
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	const float rsf = p->route.routed_scaling_factor;
	const char *method = moe_routing_method_name(p->route.method);
	if (p->rsf_site != MOE_RSF_AT_ROUTER && p->rsf_site != MOE_RSF_AT_OUTPUT)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: rsf_site %d is neither ROUTER (0) nor OUTPUT (1)",
				(int)p->rsf_site);
	if (p->rsf_site == MOE_RSF_AT_OUTPUT && !(isfinite(rsf) && rsf > 0.0f))
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: routed_scaling_factor=%g must be finite and > 0",
				(double)rsf);
	if (p->rsf_site == MOE_RSF_AT_ROUTER && rsf != 1.0f && p->route.method != MOE_ROUTE_DEEPSEEKV3 &&
	    p->route.method != MOE_ROUTE_MINIMAX2)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: routed_scaling_factor=%g at the router, but %s does not "
				"apply it (only DeepSeekV3 and MiniMax2 do): use rsf_site OUTPUT", (double)rsf, method);
	if (p->tokens > INT32_MAX / K)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: tokens=%lld x top_k=%d slots exceed the int32 "
				"permutation", (long long)p->tokens, (int)K);
	if (p->shared != MOE_SHARED_NONE && p->shared != MOE_SHARED_SUM && p->shared != MOE_SHARED_AVERAGE)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: shared combine %d is not none (0), sum (1) or average (2)",
				(int)p->shared);
	if (!w->experts)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: experts is NULL (%d expected)", (int)E);
	struct moe_expert_params ep = p->expert;
	ep.tokens = p->tokens;
	for (int32_t e = 0; e < E; e++) {
		if (moe_expert_validate(&ep, &w->experts[e]) != MOE_OK) {
			char what[32];
			snprintf(what, sizeof what, "expert %d", (int)e);
			return wrap(what);
		}
	}
	if (p->shared == MOE_SHARED_NONE) {
		if (p->shared_inter != 0 || w->shared)
			return moe_fail(MOE_ERR_INVALID_ARG, "layer: shared combine none, but shared_inter=%lld and shared "
					"weights %s (expected 0 and NULL)", (long long)p->shared_inter,
					w->shared ? "given" : "NULL");
	} else {
		if (p->shared_inter < 1 || !w->shared)
			return moe_fail(MOE_ERR_INVALID_ARG, "layer: shared combine %s needs shared_inter >= 1 (is %lld) "
					"and shared weights (%s)", p->shared == MOE_SHARED_SUM ? "sum" : "average",
					(long long)p->shared_inter, w->shared ? "given" : "NULL");
		ep.inter = p->shared_inter;
		if (moe_expert_validate(&ep, w->shared) != MOE_OK)
			return wrap("shared expert");
	}
	struct moe_ref_layer_ws ws;
	if (!moe_ref_layer_ws_layout(p, &ws))
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: tokens=%lld E=%d K=%d hidden=%lld: workspace size "
				"overflows size_t", (long long)p->tokens, (int)E, (int)K, (long long)p->expert.hidden);
	return MOE_OK;
}
