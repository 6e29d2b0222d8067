/* moebench public interface: the MoE shapes of real models, shared by verify, bench and selfcheck.
 * Facts: ../shared/spec/cohere2-moe.md ("Shapes worth benchmarking") and routing.md. */
#ifndef MOE_MODELS_H
#define MOE_MODELS_H

#include "moe/codec.h"
#include "moe/routing.h"

#ifdef __cplusplus
extern "C" {
#endif

struct moe_model_shape {
	const char *name;              /* "deepseek-v3", "qwen3-30b-a3b", ... */
	int64_t hidden;                /* H */
	int64_t inter;                 /* I, per routed expert */
	int32_t num_experts;           /* E */
	int32_t top_k;                 /* K */
	int32_t n_group;               /* G (0 = ungrouped) */
	int32_t topk_group;            /* TG */
	int32_t num_shared;            /* shared experts (width inter * num_shared) */
	float routed_scaling_factor;
	enum moe_routing_method method;
	bool has_bias;
	enum moe_dtype weight_dtype;   /* the format the model ships its experts in */
};

size_t moe_model_count(void);
const struct moe_model_shape *moe_model_at(size_t i);
/* By name; NULL with a message listing the known names (moe_last_error) when unknown. */
const struct moe_model_shape *moe_model_find(const char *name);
/* Routing params for the model under a profile (f32 logits, bias dtype F32 when the model has one). */
struct moe_route_params moe_model_route_params(const struct moe_model_shape *m, enum moe_profile profile);

#ifdef __cplusplus
}
#endif
#endif
