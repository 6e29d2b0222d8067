/* Reference routing arithmetic that differs per profile (routing.md "Profiles"), all in fp32
 * with every operation rounded (built with -ffp-contract=off, so nothing fuses into an FMA).
 *
 * - Sigmoid: flashinfer's kernels evaluate 0.5f*tanhf(0.5f*x)+0.5f; vLLM and HF evaluate
 *   1.0f/(1.0f+expf(-x)). The tanh form reaches exactly 0 for x below about -18 (tanhf rounds to
 *   -1) and is a multiple of 2^-25 below about -8; the expf form stays positive down to about -88
 *   and is exactly 0 below (expf overflows to +inf).
 * - Sum over the K selected, in slot order v[0..K-1]: flashinfer reduces one warp, lane k holding
 *   v[k] and the lanes K..31 holding 0, with the xor butterfly `a[i] += a[i^m]` for m = 16, 8, 4,
 *   2, 1, every lane updated from the previous step's values; the sum is lane 0. For K = 3 that is
 *   (v0 + v2) + v1, for K = 4 (v0 + v2) + (v1 + v3). vLLM and HF add left to right from 0.
 * - Output: flashinfer and HF deliver bf16 weights (round to nearest even); vLLM fp32.
 * - NaN: a NaN computed here is replaced by the positive quiet NaN, the value a GPU produces, so
 *   that ranking and output never depend on which NaN operand the compiler put first.
 * - vLLM clamps scores (vLLM PR #39391): a NaN or +-inf score becomes +0.0 before selection, and
 *   the weights are computed from the clamped scores. The other profiles keep every score. */
#include <assert.h>
#include <math.h>

#include "routing_internal.h"

float moe_route_canon(float x)
{
	return isnan(x) ? moe_f32_from_bits(0x7fc00000u) : x;
}

float moe_route_clamp(enum moe_profile profile, float score)
{
	return profile == MOE_PROFILE_VLLM && !isfinite(score) ? 0.0f : score;
}

float moe_route_sigmoid(enum moe_profile profile, float x)
{
	if (profile == MOE_PROFILE_FLASHINFER)
		return moe_route_canon(0.5f * tanhf(0.5f * x) + 0.5f);
	return moe_route_canon(1.0f / (1.0f + expf(-x)));
}

static float butterfly_sum(const float *v, int32_t K)
{
	float a[MOE_ROUTE_WARP] = { 0.0f }, b[MOE_ROUTE_WARP];
	for (int32_t k = 0; k < K; k++)
		a[k] = v[k];
	for (int m = MOE_ROUTE_WARP / 2; m >= 1; m /= 2) {
		for (int i = 0; i < MOE_ROUTE_WARP; i++)
			b[i] = a[i] + a[i ^ m];
		for (int i = 0; i < MOE_ROUTE_WARP; i++)
			a[i] = b[i];
	}
	return a[0];
}

float moe_route_sum_k(enum moe_profile profile, const float *v, int32_t K)
{
	assert(K >= 1);
	if (profile == MOE_PROFILE_FLASHINFER) {
		assert(K <= MOE_ROUTE_WARP);
		return moe_route_canon(butterfly_sum(v, K));
	}
	float s = 0.0f;
	for (int32_t k = 0; k < K; k++)
		s += v[k];
	return moe_route_canon(s);
}

float moe_route_out(enum moe_profile profile, float w)
{
	return profile == MOE_PROFILE_VLLM ? w : moe_round_bf16(w);
}
