/* Deriving a routing method from a model's routing configuration, as the engines do it.
 *
 * moe_classify_vllm is vLLM's newest get_routing_method_type decision tree, branch for branch
 * (docs/routing.md, "Classifying a model's routing"); moe_classify_sglang_cohere2 is
 * SGLang's Cohere2-MoE mapping. Both are pure functions of the configuration: no arithmetic, no
 * state, and every result comes with a static sentence naming the branch that produced it.
 *
 * Decisions where the tree leaves room:
 * - vLLM returns DeepseekV4 for renormalized sqrtsoftplus scoring. That value (100) is vLLM's own
 *   and no flashinfer kernel implements it, so we return MOE_ROUTE_UNSPECIFIED; the `why` sentence
 *   tells it apart from the plain Unspecified branch.
 * - "routed_scaling_factor in (None, 1.0)": a config without the field carries 1.0 in struct
 *   moe_routing_config, so the test is rsf == 1.0f exactly. Python compares by value, so a NaN or
 *   0.0 factor is not "None" there either: both fall to Unspecified, as in vLLM.
 * - "(num_expert_group or 0) > 0": 0 stands for "no groups"; a negative count is not > 0.
 * - top_k takes part in no branch of the newest tree (older trees used K == 1 for Llama4).
 *
 * What the tree does not see: vLLM labels routers that run a custom routing function by that
 * function, not by this tree. Llama 4 is labelled Llama4 that way, and Cohere's sigmoid router
 * (token_choice_with_bias) is labelled SigmoidRenorm whatever its norm_topk_prob: the known
 * mislabel. Those labels are facts about vLLM's model code, not about a routing config. */
#include <strings.h>

#include "moe/classify.h"

static const char *const scoring_names[] = {
	[MOE_SCORING_SOFTMAX] = "softmax",
	[MOE_SCORING_SIGMOID] = "sigmoid",
	[MOE_SCORING_SQRTSOFTPLUS] = "sqrtsoftplus",
	[MOE_SCORING_OTHER] = "other",
};

static const int scoring_count = (int)(sizeof scoring_names / sizeof scoring_names[0]);

const char *moe_scoring_name(enum moe_scoring s)
{
	return ((int)s >= 0 && (int)s < scoring_count) ? scoring_names[s] : "?";
}

enum moe_status moe_scoring_parse(const char *name, enum moe_scoring *out)
{
	if (!name || !out)
		return moe_fail(MOE_ERR_INVALID_ARG, "scoring parse: %s is NULL", name ? "out" : "name");
	for (int i = 0; i < scoring_count; i++) {
		if (strcasecmp(scoring_names[i], name) == 0) {
			*out = (enum moe_scoring)i;
			return MOE_OK;
		}
	}
	return moe_fail(MOE_ERR_INVALID_ARG,
			"unknown scoring function '%s' (valid: softmax, sigmoid, sqrtsoftplus, other)", name);
}

static enum moe_routing_method said(const char **why, const char *sentence, enum moe_routing_method m)
{
	if (why)
		*why = sentence;
	return m;
}

enum moe_routing_method moe_classify_vllm(const struct moe_routing_config *c, const char **why)
{
	if (!c)
		return said(why, "no routing configuration given: Unspecified", MOE_ROUTE_UNSPECIFIED);

	if (c->scoring == MOE_SCORING_SQRTSOFTPLUS) {
		if (c->renormalize)
			return said(why, "sqrtsoftplus scoring, renormalized: vLLM's DeepseekV4 (100), which no "
					 "flashinfer method implements: Unspecified", MOE_ROUTE_UNSPECIFIED);
		return said(why, "sqrtsoftplus scoring without renormalization: Unspecified",
			    MOE_ROUTE_UNSPECIFIED);
	}

	if (c->has_bias) {
		if (c->scoring != MOE_SCORING_SIGMOID)
			return said(why, "correction bias with a scoring function other than sigmoid: Unspecified",
				    MOE_ROUTE_UNSPECIFIED);
		if (!c->renormalize)
			return said(why, "biased sigmoid without renormalization: Unspecified",
				    MOE_ROUTE_UNSPECIFIED);
		if (c->num_expert_group > 0)
			return said(why, "biased sigmoid, renormalized, num_expert_group > 0: DeepSeekV3",
				    MOE_ROUTE_DEEPSEEKV3);
		if (c->routed_scaling_factor == 1.0f)
			return said(why, "biased sigmoid, renormalized, no expert groups, routed_scaling_factor 1: "
					 "MiniMax2", MOE_ROUTE_MINIMAX2);
		return said(why, "biased sigmoid, renormalized, no expert groups, routed_scaling_factor not 1: "
				 "Unspecified (MiniMax2 is chosen only without a scaling factor)",
			    MOE_ROUTE_UNSPECIFIED);
	}

	if (c->scoring == MOE_SCORING_SIGMOID) {
		if (c->renormalize)
			return said(why, "sigmoid without bias, renormalized: SigmoidRenorm", MOE_ROUTE_SIGMOID_RENORM);
		return said(why, "sigmoid without bias, not renormalized: Sigmoid", MOE_ROUTE_SIGMOID);
	}

	if (c->scoring == MOE_SCORING_SOFTMAX) {
		if (c->renormalize)
			return said(why, "softmax without bias, renormalized: RenormalizeNaive",
				    MOE_ROUTE_RENORMALIZE_NAIVE);
		return said(why, "softmax without bias, not renormalized: Default", MOE_ROUTE_DEFAULT);
	}

	return said(why, "scoring function other than softmax, sigmoid or sqrtsoftplus: Unspecified",
		    MOE_ROUTE_UNSPECIFIED);
}

enum moe_routing_method moe_classify_sglang_cohere2(enum moe_scoring expert_selection_fn,
						    bool norm_topk_prob, const char **why)
{
	switch (expert_selection_fn) {
	case MOE_SCORING_SIGMOID:
		if (norm_topk_prob)
			return said(why, "Cohere2-MoE sigmoid selection, norm_topk_prob: SigmoidRenorm",
				    MOE_ROUTE_SIGMOID_RENORM);
		return said(why, "Cohere2-MoE sigmoid selection, no norm_topk_prob: Sigmoid", MOE_ROUTE_SIGMOID);
	case MOE_SCORING_SOFTMAX:
		if (norm_topk_prob)
			return said(why, "Cohere2-MoE softmax selection, norm_topk_prob: RenormalizeNaive",
				    MOE_ROUTE_RENORMALIZE_NAIVE);
		return said(why, "Cohere2-MoE softmax selection, no norm_topk_prob: Default", MOE_ROUTE_DEFAULT);
	default:
		return said(why, "Cohere2-MoE knows only softmax and sigmoid selection: Unspecified",
			    MOE_ROUTE_UNSPECIFIED);
	}
}

enum moe_routing_method moe_classify_vllm_cohere2(enum moe_scoring expert_selection_fn,
						  bool norm_topk_prob, const char **why)
{
	if (expert_selection_fn == MOE_SCORING_SIGMOID)
		return said(why, norm_topk_prob ? "vLLM Cohere2-MoE custom sigmoid router: labelled SigmoidRenorm"
						: "vLLM Cohere2-MoE custom sigmoid router: labelled SigmoidRenorm "
						  "although norm_topk_prob is false (known mislabel)",
			    MOE_ROUTE_SIGMOID_RENORM);
	const struct moe_routing_config c = {
		.scoring = expert_selection_fn,
		.top_k = 8,
		.renormalize = norm_topk_prob,
		.num_expert_group = 0,
		.has_bias = false,
		.routed_scaling_factor = 1.0f,
	};
	return moe_classify_vllm(&c, why);
}
