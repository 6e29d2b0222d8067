/* moebench public interface: MoE routing.
 *
 * Semantics: docs/routing.md. Given logits[T][E] (fp32 or bf16) and an optional
 * correction bias[E] (fp32 or bf16, used for selection only), a router writes, per token, the ids of
 * the K selected experts in slot order (slot 0 = best key; equal keys: lower expert index first) and
 * their weights. Weights are always returned as fp32 values; profiles whose engine produces bf16
 * weights (flashinfer, hf) return bf16-rounded values, exactly representable in fp32.
 *
 * Our method numbering is our own and stable; it coincides with flashinfer >= v0.6.18rc4. Other
 * engines' numberings are translated by the functions in classify.h. */
#ifndef MOE_ROUTING_H
#define MOE_ROUTING_H

#include "moe/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_routing_method {
	MOE_ROUTE_DEFAULT = 0,           /* softmax over E, top-k, weights not renormalized */
	MOE_ROUTE_RENORMALIZE = 1,       /* top-k on logits (input dtype), softmax over the K */
	MOE_ROUTE_DEEPSEEKV3 = 2,        /* biased sigmoid, grouped top-k (n_group > 1) */
	MOE_ROUTE_LLAMA4 = 3,            /* K = 1, argmax, sigmoid weight */
	MOE_ROUTE_RENORMALIZE_NAIVE = 4, /* softmax, top-k, divide by the sum of the K */
	MOE_ROUTE_TOPK = 5,              /* top-k on logits, weights = raw logits */
	MOE_ROUTE_SIGMOID_RENORM = 6,    /* sigmoid, top-k, optionally renormalized */
	MOE_ROUTE_MINIMAX2 = 7,          /* biased sigmoid, ungrouped, renormalized, scaled */
	MOE_ROUTE_SIGMOID = 8,           /* sigmoid, top-k, no renormalization */
	MOE_ROUTE_TOPK_SIGMOID = 9,      /* top-k on logits, sigmoid weights */
	MOE_ROUTE_UNSPECIFIED = 10,      /* never valid for routing */
	MOE_ROUTE_METHOD_COUNT = 10      /* number of real methods */
};

/* Where engines differ (routing.md "Profiles"). */
enum moe_profile {
	MOE_PROFILE_FLASHINFER = 0, /* TRT-LLM-gen kernels: tanh sigmoid, bf16 weights, butterfly sums */
	MOE_PROFILE_VLLM = 1,       /* 1/(1+exp(-x)), fp32 weights, sequential sums, (s/S)*rsf */
	MOE_PROFILE_HF = 2,         /* transformers: torch ops, weights cast to bf16 */
	MOE_PROFILE_COUNT
};

struct moe_route_params {
	enum moe_routing_method method;
	enum moe_profile profile;
	int32_t num_experts;         /* E */
	int32_t top_k;               /* K */
	int32_t n_group;             /* G; 0 or 1 = ungrouped */
	int32_t topk_group;          /* TG; ignored when ungrouped */
	bool renormalize;            /* SigmoidRenorm only; the other methods fix it */
	float routed_scaling_factor; /* rsf; 1.0 = none. Applied by MiniMax2 and DeepSeekV3 only */
	enum moe_dtype logits_dtype; /* MOE_DTYPE_F32 or MOE_DTYPE_BF16 */
	enum moe_dtype bias_dtype;   /* MOE_DTYPE_NONE, MOE_DTYPE_F32 or MOE_DTYPE_BF16 */
};

/* A router kernel. logits: T*E elements of p->logits_dtype; bias: E elements of p->bias_dtype
 * (NULL iff bias_dtype is NONE); ids and weights: T*K. Preconditions (asserted, not checked):
 * moe_route_validate(p) == MOE_OK. */
typedef void moe_route_fn(const struct moe_route_params *p, int64_t T, const void *logits,
			  const void *bias, int32_t *ids, float *weights);

/* Defaults for a method: E, K given; profile vLLM; rsf 1; f32 logits; no bias; ungrouped. */
struct moe_route_params moe_route_params_default(enum moe_routing_method m, int32_t E, int32_t K);

/* The engines' constraints for p (routing.md). Under every profile: valid enums and dtypes,
 * 1 <= K <= E, Llama4 K == 1, a bias only where the method uses one (MiniMax2, DeepSeekV3), and for
 * grouped DeepSeekV3 E % G == 0, 1 <= TG <= G, K <= TG*E/G. Under the flashinfer profile also its
 * host checks: E % 4 == 0, K < E, K <= 32, and grouped TG <= 4, K < TG*E/G. MOE_ERR_INVALID_ARG
 * with a message naming the method, the violated constraint and the values. */
enum moe_status moe_route_validate(const struct moe_route_params *p);

/* "Default", "Renormalize", "DeepSeekV3", ... as flashinfer spells them; "?" if out of range. */
const char *moe_routing_method_name(enum moe_routing_method m);
/* Case-insensitive parse of those names (also "deepseek_v3"-style spellings with _ or -). */
enum moe_status moe_routing_method_parse(const char *name, enum moe_routing_method *out);
const char *moe_profile_name(enum moe_profile p); /* "flashinfer", "vllm", "hf" */
enum moe_status moe_profile_parse(const char *name, enum moe_profile *out);

/* The scalar reference router (reference/routing*.c). */
moe_route_fn moe_route__ref;

/* Checked entry point: validates p and the pointers, then runs the reference router. */
enum moe_status moe_route_ref_checked(const struct moe_route_params *p, int64_t T, const void *logits,
				      const void *bias, int32_t *ids, float *weights);

#ifdef __cplusplus
}
#endif
#endif
