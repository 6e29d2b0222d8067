/* The Cohere2-MoE model path: a Hugging Face checkpoint (config.json + safetensors) loaded into
 * the structs below, and the forward pass over them (docs/cohere2-moe.md).
 *
 * Ownership and data flow: model/ sits on the kernel tables (reference, kernels) like verify and
 * bench; tools/cmd_model.c drives it. Loading (checkpoint side: config.c, safetensors_map.c,
 * checkpoint.c, init.c) fills struct moe_model; the forward side (forward*.c, attention.c, ...)
 * only reads it. */
#ifndef MOE_MODEL_MODEL_H
#define MOE_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "moe/backend.h"

#define MOE_MODEL_MAX_LAYERS 512

enum moe_model_selection { MOE_MODEL_SELECT_SOFTMAX = 0, MOE_MODEL_SELECT_SIGMOID = 1 };

/* config.json of model_type "cohere2_moe", every field resolved (defaults applied, layer_types and
 * mlp_layer_types derived where the file does not list them). */
struct moe_model_config {
	int64_t vocab_size;
	int64_t hidden_size;                    /* H */
	int64_t intermediate_size;              /* I of one routed expert */
	int64_t prefix_dense_intermediate_size; /* width of the dense prefix MLP */
	int32_t num_hidden_layers;              /* L */
	int32_t num_attention_heads;
	int32_t num_key_value_heads;
	int32_t head_dim;
	enum moe_norm_kind norm;                /* RMSNORM when rms_norm_eps is set, else LAYERNORM */
	float norm_eps;                         /* rms_norm_eps or layer_norm_eps */
	float logit_scale;
	bool tie_word_embeddings;
	double rope_theta;
	int64_t sliding_window;                 /* W */
	int64_t max_position_embeddings;
	int32_t num_experts;                    /* E */
	int32_t num_experts_per_tok;            /* K */
	int32_t num_shared_experts;             /* shared width = intermediate_size * num_shared_experts */
	enum moe_shared_combine shared_combine; /* AVERAGE or SUM (NONE when num_shared_experts == 0) */
	enum moe_model_selection selection;     /* expert_selection_fn */
	bool norm_topk_prob;
	bool sliding[MOE_MODEL_MAX_LAYERS];     /* layer_types[l] == "sliding_attention" */
	bool dense[MOE_MODEL_MAX_LAYERS];       /* mlp_layer_types[l] == "dense" */
	bool rope[MOE_MODEL_MAX_LAYERS];        /* RoPE applied on layer l (sliding layers, and dense-prefix
						 * layers when prefix_dense_sliding_window_pattern == 1) */
};

/* Parses config.json text; every refusal names the field (MOE_ERR_FORMAT for malformed JSON or a
 * field of the wrong type, MOE_ERR_UNSUPPORTED for another model_type or hidden_act,
 * MOE_ERR_INVALID_ARG for contradictory or out-of-range values). `where` names the file in messages. */
enum moe_status moe_model_config_parse(const char *json, size_t len, const char *where,
				       struct moe_model_config *out);

/* One layer's weights. Dense tensors (norm, attention, router, dense MLP) are F32 or BF16
 * moe_qtensors (F16 checkpoints are widened to F32 at load); expert weights are in the format of
 * moe_model.expert_params. Every pointer refers into the checkpoint's mapping or into memory the
 * model owns. */
struct moe_model_layer {
	struct moe_qtensor input_norm;         /* [1][H] F32 */
	struct moe_qtensor q_proj, k_proj, v_proj, o_proj; /* [heads*hd][H], [kv*hd][H] x2, [H][heads*hd] */
	struct moe_qtensor router;             /* [E][H], never quantized (sparse layers) */
	struct moe_expert_weights *experts;    /* [E] (sparse layers) */
	struct moe_expert_weights shared;      /* inter = I * num_shared (sparse layers with shared experts) */
	struct moe_expert_weights dense_mlp;   /* inter = prefix_dense_intermediate_size (dense layers) */
	struct moe_packed *packed_experts;     /* the optimized backend's packed handles, or NULL */
	struct moe_packed *packed_shared;
	struct moe_packed *packed_dense;
	/* NVFP4 W4A4 checkpoints: the encode scales (448*6/amax) the checkpoint ships for the routed
	 * experts' inputs: [0] x (gate/up), [1] the intermediate (down); the smallest over the experts
	 * (largest amax), as the engines fuse them. 0 (derive from amax) when the checkpoint has none or
	 * the experts were converted to another format. */
	float act_global_scale[2];
};

/* How the loaded weights are stored for the experts (--weights). */
enum moe_model_weights {
	MOE_MODEL_WEIGHTS_AS_STORED = 0,
	MOE_MODEL_WEIGHTS_F32,
	MOE_MODEL_WEIGHTS_BF16,
	MOE_MODEL_WEIGHTS_FP8,   /* E4M3, 128x128 block scales */
	MOE_MODEL_WEIGHTS_NVFP4, /* linear scale layout */
	MOE_MODEL_WEIGHTS_MXFP4,
};

struct moe_model {
	struct moe_model_config cfg;
	struct moe_qtensor embed;            /* [V][H] F32 or BF16 (also the LM head when tied) */
	struct moe_qtensor lm_head;          /* [V][H]: embed's view when tied */
	struct moe_qtensor final_norm;       /* [1][H] F32 */
	struct moe_model_layer *layers;      /* [L] */
	struct moe_expert_params expert_params; /* tokens 0; format of every expert, shared and dense MLP */
	size_t bytes_mapped, bytes_owned;
	void *impl;                          /* the loader's (mappings, owned buffers) */
};

struct moe_model_load_options {
	enum moe_model_weights weights;      /* expert format after load */
	enum moe_dtype dense_dtype;          /* F32 or BF16 for the dense tensors (BF16 default) */
	enum moe_act_quant act_quant;        /* activation handling of the experts */
	int32_t max_layers;                  /* > 0: load only the first max_layers layers (the loaded
					      * model's cfg.num_hidden_layers is then that count) */
};

/* Loads dir/config.json and dir/model.safetensors or dir/model.safetensors.index.json (shards).
 * Errors name the file and tensor; nothing is half-loaded on failure. */
enum moe_status moe_model_load(const char *dir, const struct moe_model_load_options *opt, struct moe_model **out);
void moe_model_free(struct moe_model *m);

/* "as-stored", "f32", "bf16", "fp8", "nvfp4", "mxfp4" (model/checkpoint.c). */
const char *moe_model_weights_name(enum moe_model_weights w);
enum moe_status moe_model_weights_parse(const char *name, enum moe_model_weights *out);

/* Checkpoint presets (model/init.c, whose opening comment gives the formula of every value, so a
 * test can regenerate them): moe_model_init writes dir/config.json and dir/model.safetensors
 * (or an index and shards) with weights drawn from seed, atomically (temporary files renamed);
 * dir is created if missing. MOE_ERR_INVALID_ARG for an unknown preset (the message lists them). */
struct moe_model_preset {
	const char *name;
	const char *description; /* one line */
};
int32_t moe_model_preset_count(void);
const struct moe_model_preset *moe_model_preset_at(int32_t i); /* NULL when out of range */
enum moe_status moe_model_init(const char *dir, const char *preset, uint64_t seed);

#endif
