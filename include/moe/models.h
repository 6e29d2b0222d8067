/* moebench public interface: one MoE layer of each public model, shared by verify, bench and
 * selfcheck. Facts: docs/cohere2-moe.md ("Shapes worth benchmarking"), routing.md, and
 * the models' published configs. */
#ifndef MOE_MODELS_H
#define MOE_MODELS_H

#include "moe/codec.h"
#include "moe/expert.h"
#include "moe/layer.h"
#include "moe/norm.h"
#include "moe/routing.h"

#ifdef __cplusplus
extern "C" {
#endif

struct moe_model_shape {
	const char *name;              /* "deepseek-v3", "qwen3-30b-a3b", ... */
	int64_t hidden;                /* H */
	int64_t inter;                 /* I, per routed expert */
	int64_t shared_inter;          /* width of the shared expert(s); 0 = none */
	int32_t experts;               /* E */
	int32_t top_k;                 /* K */
	int32_t n_group;               /* G (0 = ungrouped) */
	int32_t topk_group;            /* TG */
	float rsf;                     /* routed_scaling_factor */
	enum moe_routing_method method;
	bool bias;                     /* e_score_correction_bias present */
	enum moe_dtype logits_dtype;   /* router output dtype */
	enum moe_dtype weight_dtype;   /* the format the experts ship or are served in */
	enum moe_scaling weight_scaling;
	enum moe_act_quant act;
	enum moe_norm_kind norm;
	const char *source;            /* where the numbers come from */
	enum moe_shared_combine shared; /* NONE when shared_inter is 0 */
};

size_t moe_model_count(void);
const struct moe_model_shape *moe_model_at(size_t i);
/* By name; NULL with a message listing the known names (moe_last_error) when unknown. */
const struct moe_model_shape *moe_model_find(const char *name);
/* Routing params for the model under a profile (bias dtype F32 when the model has one). */
struct moe_route_params moe_model_route_params(const struct moe_model_shape *m, enum moe_profile profile);
/* Expert params for the model's format (tokens = 0, linear scale layout). */
struct moe_expert_params moe_model_expert_params(const struct moe_model_shape *m);

#ifdef __cplusplus
}
#endif
#endif
