/* moebench public interface: deriving a routing method from a model's routing configuration, and
 * translating our method numbering to and from the engines' numberings.
 *
 * Facts: docs/routing.md ("Classifying a model's routing", "Enum numbering"). */
#ifndef MOE_CLASSIFY_H
#define MOE_CLASSIFY_H

#include "moe/routing.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_scoring {
	MOE_SCORING_SOFTMAX = 0,
	MOE_SCORING_SIGMOID = 1,
	MOE_SCORING_SQRTSOFTPLUS = 2, /* DeepSeek-V4; no flashinfer method */
	MOE_SCORING_OTHER = 3,
};

/* The routing part of a model config, as vLLM's get_routing_method_type sees it. */
struct moe_routing_config {
	enum moe_scoring scoring;
	int32_t top_k;
	bool renormalize;             /* norm_topk_prob */
	int32_t num_expert_group;     /* 0 when the config has none */
	bool has_bias;                /* e_score_correction_bias present */
	float routed_scaling_factor;  /* 1.0 when the config has none */
};

/* vLLM's decision tree (newest). Returns MOE_ROUTE_UNSPECIFIED where vLLM returns Unspecified or
 * DeepseekV4; *why (if non-NULL) receives a static sentence naming the branch taken. */
enum moe_routing_method moe_classify_vllm(const struct moe_routing_config *c, const char **why);

/* SGLang's Cohere2-MoE mapping: sigmoid -> SigmoidRenorm if norm_topk_prob else Sigmoid;
 * softmax -> RenormalizeNaive if norm_topk_prob else Default. */
enum moe_routing_method moe_classify_sglang_cohere2(enum moe_scoring expert_selection_fn,
						    bool norm_topk_prob, const char **why);

/* The label vLLM's Cohere2-MoE model code gives its router: sigmoid selection runs a custom routing
 * function that vLLM labels SigmoidRenorm whatever norm_topk_prob says (the known mislabel:
 * Sigmoid would be right when norm_topk_prob is false); softmax selection goes through the tree. */
enum moe_routing_method moe_classify_vllm_cohere2(enum moe_scoring expert_selection_fn,
						  bool norm_topk_prob, const char **why);

enum moe_status moe_scoring_parse(const char *name, enum moe_scoring *out);
const char *moe_scoring_name(enum moe_scoring s);

/* Engine numberings of the routing-method enum. */
enum moe_numbering {
	MOE_NUM_FLASHINFER_0_6_7 = 0,  /* flashinfer <= v0.6.7: ..., TopK=5, Unspecified=6 */
	MOE_NUM_FLASHINFER_0_6_8 = 1,  /* v0.6.8 .. v0.6.10: SigmoidRenorm=6, MiniMax2=7, Unspecified=8 */
	MOE_NUM_FLASHINFER_0_6_11 = 2, /* v0.6.11 .. v0.6.18rc3: Sigmoid=8, Unspecified=9 */
	MOE_NUM_FLASHINFER_0_6_18 = 3, /* >= v0.6.18rc4: TopKSigmoid=9, Unspecified=10 (= ours) */
	MOE_NUM_VLLM = 4,              /* as 0.6.11 plus DeepseekV4=100, Custom=101, Simulated=102 */
	MOE_NUM_SGLANG = 5,            /* as 0.6.11 */
	MOE_NUM_TRTLLM = 6,            /* MiniMax2=5, Unspecified=6, AdaptiveK=7 */
	MOE_NUM_COUNT
};

const char *moe_numbering_name(enum moe_numbering n);
enum moe_status moe_numbering_parse(const char *name, enum moe_numbering *out);
/* Which flashinfer numbering a version string ("0.6.9", "v0.6.18rc4", "0.7.0") uses. */
enum moe_status moe_numbering_for_flashinfer_version(const char *version, enum moe_numbering *out);

/* Our method -> the engine's integer. MOE_ERR_UNSUPPORTED if that numbering has no such method
 * (e.g. Default or TopKSigmoid before they existed). MOE_ROUTE_UNSPECIFIED maps to the engine's
 * Unspecified value. */
enum moe_status moe_method_to_engine(enum moe_numbering n, enum moe_routing_method m, int32_t *value);
/* The engine's integer -> our method. MOE_ERR_UNSUPPORTED for engine-only values (vLLM's
 * DeepseekV4/Custom/Simulated, TRT-LLM's AdaptiveK); MOE_ERR_INVALID_ARG for unknown values. */
enum moe_status moe_method_from_engine(enum moe_numbering n, int32_t value, enum moe_routing_method *out);

#ifdef __cplusplus
}
#endif
#endif
