/* Where a correct kernel's quantized intermediate activation can land (moe_expert_ref_f64).
 *
 * Input: for each element of a[rows][cols], the exact value a_ref (double) and a bound beta on
 * |a_kernel - a_ref| for every correct fp32 kernel. The kernel's fp32 a then lies in the float
 * interval [lo, hi] = [a_ref - beta rounded down, a_ref + beta rounded up], and Q_a (the act_quant
 * quantize-dequantize of expert_rows.c) maps it into an interval of dequantized values. Output, in
 * place: the midpoint of that interval and its half width, the value and the bound the second GEMM
 * is fed with. When lo and hi fall in one rounding cell of a scale that is itself certain, the
 * width is 0: every correct kernel feeds the down projection the very same value. When a rounding
 * boundary lies in [lo, hi], the interval spans the step ("a kernel may round either way").
 *
 * Every stage of every quantizer is a monotone function of each of its inputs (products and
 * quotients of positive scales, round-to-nearest encodes, fminf), so the extremes over the box of
 * possible inputs are reached at its corners and are computed with the very fp32 operations of the
 * codec (codec.h, formats.md):
 *   BF16        q = bf16(a)
 *   FP8_TENSOR  gs = S(amax) with S the codec's per-tensor scale (448 / amax), q = e4m3(a * gs),
 *               a' = f(q) / gs
 *   FP8_1x128   s = s(amax of the 128-block) = max(amax, 1e-12) / 448, q = e4m3(a / s), a' = f(q) * s
 *   NVFP4       gs given or moe_nvfp4_global_scale(amax); per 16-block SF = vmax * (gs * (1/6)),
 *               SFq = f(e4m3(SF)), d = SFq * (1/gs), oscale = fminf(1 / d, FLT_MAX) (0 for an all-zero
 *               block), q = e2m1(a * oscale), a' = e2m1(q) * d
 * S and s are taken from the codec itself (moe_quantize__ref of the 1x1 tensor {amax}), so they
 * agree with it on every value. A derived scale depends on the kernel's amax, which lies in
 * [max_i min|[lo_i, hi_i]|, max_i max|[lo_i, hi_i]|]; the scale then ranges over an interval too and
 * the corners account for it (the "scale uncertain" counts). The scales 448/amax and
 * 2688/amax jump at amax = 0 (the codec takes 1 there): when every element of a may be 0 but not
 * all are 0 for sure, no finite bound follows and the result is flagged unbounded. */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "expert_impl.h"

static float round_down(double v)
{
	float f = (float)v;
	return (double)f > v ? nextafterf(f, -INFINITY) : f;
}

static float round_up(double v)
{
	float f = (float)v;
	return (double)f < v ? nextafterf(f, INFINITY) : f;
}

static float min_abs(float lo, float hi)
{
	return lo <= 0.0f && hi >= 0.0f ? 0.0f : fminf(fabsf(lo), fabsf(hi));
}

static float max_abs(float lo, float hi)
{
	return fmaxf(fabsf(lo), fabsf(hi));
}

/* The codec's FP8 scale for an amax: the scale it stores for the 1x1 tensor {amax}. */
static float codec_fp8_scale(enum moe_scaling scaling, float amax)
{
	uint8_t code;
	float scale = 0.0f;
	struct moe_qtensor q = { .dtype = MOE_DTYPE_FP8E4M3, .scaling = scaling, .rows = 1, .cols = 1,
				 .data = &code, .scales = &scale };
	moe_quantize__ref(&amax, &q);
	return scale;
}

static float e4m3(float v)
{
	return moe_fp8e4m3_decode(moe_fp8e4m3_encode(v, MOE_FP8_SATFINITE));
}

static float e2m1(float v)
{
	return moe_e2m1_decode(moe_e2m1_encode(v));
}

/* [lo, hi] times a positive [slo, shi], corners. */
static void mul_pos(float lo, float hi, float slo, float shi, float *rlo, float *rhi)
{
	*rlo = lo * (lo < 0.0f ? shi : slo);
	*rhi = hi * (hi > 0.0f ? shi : slo);
}

/* [lo, hi] divided by a positive [slo, shi], corners. */
static void div_pos(float lo, float hi, float slo, float shi, float *rlo, float *rhi)
{
	*rlo = lo / (lo < 0.0f ? slo : shi);
	*rhi = hi / (hi > 0.0f ? slo : shi);
}

/* FP8 per-tensor: [lo, hi] -> [q_lo, q_hi] for the scale interval [glo, ghi]. */
static void hull_fp8_tensor(float *lo, float *hi, size_t n, float glo, float ghi)
{
	for (size_t i = 0; i < n; i++) {
		float p, q;
		mul_pos(lo[i], hi[i], glo, ghi, &p, &q);
		div_pos(e4m3(p), e4m3(q), glo, ghi, &lo[i], &hi[i]);
	}
}

static void hull_fp8_1x128(float *lo, float *hi, int64_t rows, int64_t cols, struct moe_expert_f64_info *info)
{
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t b = 0; b < cols; b += 128) {
			float *l = lo + r * cols + b, *h = hi + r * cols + b;
			const int64_t len = cols - b < 128 ? cols - b : 128;
			float vlo = 0.0f, vhi = 0.0f;
			for (int64_t j = 0; j < len; j++) {
				vlo = fmaxf(vlo, min_abs(l[j], h[j]));
				vhi = fmaxf(vhi, max_abs(l[j], h[j]));
			}
			const float slo = codec_fp8_scale(MOE_SCALING_BLOCK_1x128, vlo);
			const float shi = codec_fp8_scale(MOE_SCALING_BLOCK_1x128, vhi);
			info->scales_uncertain += slo != shi;
			for (int64_t j = 0; j < len; j++) {
				float p, q;
				div_pos(l[j], h[j], slo, shi, &p, &q);
				mul_pos(e4m3(p), e4m3(q), slo, shi, &l[j], &h[j]);
			}
		}
	}
}

static void hull_nvfp4(float *lo, float *hi, int64_t rows, int64_t cols, float glo, float ghi,
		       struct moe_expert_f64_info *info)
{
	const float rlo = 1.0f / ghi, rhi = 1.0f / glo;
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t b = 0; b < cols; b += 16) {
			float *l = lo + r * cols + b, *h = hi + r * cols + b;
			float vlo = 0.0f, vhi = 0.0f;
			for (int j = 0; j < 16; j++) {
				vlo = fmaxf(vlo, min_abs(l[j], h[j]));
				vhi = fmaxf(vhi, max_abs(l[j], h[j]));
			}
			const uint8_t sf_lo = moe_fp8e4m3_encode(vlo * (glo * (1.0f / 6.0f)), MOE_FP8_SATFINITE);
			const uint8_t sf_hi = moe_fp8e4m3_encode(vhi * (ghi * (1.0f / 6.0f)), MOE_FP8_SATFINITE);
			info->scales_uncertain += sf_lo != sf_hi;
			const float dlo = moe_fp8e4m3_decode(sf_lo) * rlo, dhi = moe_fp8e4m3_decode(sf_hi) * rhi;
			/* vmax = 0 (possible only if vlo = 0) sets oscale to 0 */
			const float olo = vlo > 0.0f ? fminf(1.0f / dhi, FLT_MAX) : 0.0f;
			const float ohi = fminf(1.0f / dlo, FLT_MAX);
			for (int j = 0; j < 16; j++) {
				float p, q;
				mul_pos(l[j], h[j], olo, ohi, &p, &q);
				mul_pos(e2m1(p), e2m1(q), dlo, dhi, &l[j], &h[j]);
			}
		}
	}
}

enum moe_status moe_ref_act_hull(enum moe_act_quant aq, float given_gs, int64_t rows, int64_t cols, double *val,
				 double *err, struct moe_expert_f64_info *info)
{
	const size_t n = (size_t)rows * (size_t)cols;
	if (aq == MOE_ACT_NONE || n == 0)
		return MOE_OK;
	float *lo = malloc(n * sizeof(float)), *hi = malloc(n * sizeof(float));
	if (!lo || !hi) {
		free(lo);
		free(hi);
		return moe_fail(MOE_ERR_NOMEM, "expert_ref_f64: no memory for the intermediate's %zu bounds", n);
	}
	bool unbounded = false;
	float amax_lo = 0.0f, amax_hi = 0.0f;
	for (size_t i = 0; i < n; i++) {
		const double l = val[i] - err[i], h = val[i] + err[i];
		if (!(fabs(l) < FLT_MAX && fabs(h) < FLT_MAX)) {
			unbounded = true;
			break;
		}
		lo[i] = round_down(l);
		hi[i] = round_up(h);
		amax_lo = fmaxf(amax_lo, min_abs(lo[i], hi[i]));
		amax_hi = fmaxf(amax_hi, max_abs(lo[i], hi[i]));
	}
	/* a scale derived from an amax that may or may not be 0 */
	const bool derived = aq == MOE_ACT_FP8_TENSOR || (aq == MOE_ACT_NVFP4 && !(given_gs > 0.0f));
	if (derived && amax_lo == 0.0f && amax_hi > 0.0f)
		unbounded = true;
	if (!unbounded) {
		switch (aq) {
		case MOE_ACT_BF16:
			for (size_t i = 0; i < n; i++) {
				lo[i] = moe_round_bf16(lo[i]);
				hi[i] = moe_round_bf16(hi[i]);
			}
			break;
		case MOE_ACT_FP8_TENSOR: {
			const float glo = codec_fp8_scale(MOE_SCALING_PER_TENSOR, amax_hi);
			const float ghi = codec_fp8_scale(MOE_SCALING_PER_TENSOR, amax_lo);
			info->scales_uncertain += glo != ghi;
			hull_fp8_tensor(lo, hi, n, glo, ghi);
			break;
		}
		case MOE_ACT_FP8_1x128:
			hull_fp8_1x128(lo, hi, rows, cols, info);
			break;
		case MOE_ACT_NVFP4: {
			const float glo = moe_ref_act_global_scale(given_gs, amax_hi);
			const float ghi = moe_ref_act_global_scale(given_gs, amax_lo);
			info->scales_uncertain += glo != ghi;
			hull_nvfp4(lo, hi, rows, cols, glo, ghi, info);
			break;
		}
		default:
			assert(!"act_hull: act_quant out of range");
		}
		for (size_t i = 0; i < n; i++) {
			val[i] = 0.5 * ((double)lo[i] + (double)hi[i]);
			err[i] = 0.5 * ((double)hi[i] - (double)lo[i]);
			info->a_uncertain += lo[i] != hi[i];
			if (!isfinite(val[i]) || !isfinite(err[i]))
				unbounded = true;
		}
	}
	free(lo);
	free(hi);
	if (unbounded) {
		info->unbounded = true;
		for (size_t i = 0; i < n; i++)
			err[i] = INFINITY;
	}
	return MOE_OK;
}
