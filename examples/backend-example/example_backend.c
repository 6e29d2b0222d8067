/* An example moebench backend plugin: one router, the vLLM-profile Sigmoid and SigmoidRenorm
 * methods without groups or bias, written as plainly as possible so it reads as a template.
 *
 * Per token, in fp32: s[e] = 1 / (1 + expf(-x[e])) with x the logit converted exactly from fp32 or
 * bf16, and a score that is not finite (a NaN logit) replaced by 0 before selection, as vLLM's
 * newest kernels do (sigmoid(+-inf) = 1 or 0 are finite and stay); pick the K largest s, on equal scores the lower expert index first; weight =
 * s, or with renormalization s / S where S is the sum of the K selected scores added left to right
 * in slot order (S > 0 ? S : 1, as vLLM guards it). The routed scaling factor does not apply to
 * these methods. -ffp-contract=off keeps every operation rounded as written, so the weights equal
 * the reference's bit for bit. Everything else, supports() declines: moebench reports those
 * problems as SKIP instead of calling this kernel. */
#include <math.h>

#include <moe/backend.h>

static float score(const struct moe_route_params *p, const void *logits, int64_t i)
{
	float x = p->logits_dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)logits)[i])
						    : ((const float *)logits)[i];
	float s = 1.0f / (1.0f + expf(-x));
	return isfinite(s) ? s : 0.0f;
}

static void example_route(const struct moe_route_params *p, int64_t T, const void *logits,
			  const void *bias, int32_t *ids, float *weights)
{
	(void)bias; /* these methods take none: supports() declines a bias */
	const int32_t E = p->num_experts, K = p->top_k;
	const bool renorm = p->method == MOE_ROUTE_SIGMOID_RENORM && p->renormalize;

	for (int64_t t = 0; t < T; t++) {
		int32_t *id = ids + t * K;
		float *w = weights + t * K;
		/* Selection sort over E: K passes, each taking the best expert not taken yet. The strict
		 * '>' while scanning upwards keeps the lower index on equal scores. */
		for (int32_t k = 0; k < K; k++) {
			int32_t best = -1;
			float best_s = 0.0f;
			for (int32_t e = 0; e < E; e++) {
				bool taken = false;
				for (int32_t j = 0; j < k; j++)
					taken = taken || id[j] == e;
				if (taken)
					continue;
				float s = score(p, logits, t * E + e);
				if (best < 0 || s > best_s) {
					best = e;
					best_s = s;
				}
			}
			id[k] = best;
			w[k] = best_s;
		}
		if (renorm) {
			float S = 0.0f;
			for (int32_t k = 0; k < K; k++)
				S += w[k];
			S = S > 0.0f ? S : 1.0f;
			for (int32_t k = 0; k < K; k++)
				w[k] = w[k] / S;
		}
	}
}

/* The problems example_route computes correctly; moebench never calls it with anything else. */
static bool example_supports(enum moe_op op, const void *problem)
{
	if (op != MOE_OP_ROUTE)
		return false;
	const struct moe_route_params *p = problem;
	return (p->method == MOE_ROUTE_SIGMOID || p->method == MOE_ROUTE_SIGMOID_RENORM) &&
	       p->profile == MOE_PROFILE_VLLM && p->n_group <= 1 && p->bias_dtype == MOE_DTYPE_NONE &&
	       (p->logits_dtype == MOE_DTYPE_F32 || p->logits_dtype == MOE_DTYPE_BF16);
}

static const struct moe_backend example_backend = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = "example",
	.description = "example plugin: vLLM-profile Sigmoid/SigmoidRenorm router, ungrouped, no bias",
	.route = example_route,
	/* NULL: not provided. moebench reports these ops as SKIP "not provided". */
	.norm = NULL,
	.quantize = NULL,
	.dequantize = NULL,
	.expert = NULL,
	.layer = NULL,
	.supports = example_supports,
};

/* The one exported symbol. The host passes its ABI version; a plugin that cannot serve it
 * returns NULL and the host refuses it with a clear message. */
__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v1;

const struct moe_backend *moe_backend_entry_v1(uint32_t host_abi_version)
{
	if (host_abi_version != MOE_BACKEND_ABI_VERSION)
		return NULL;
	return &example_backend;
}
