/* Reference normalization over the last dimension: centered LayerNorm (weight only, Cohere) and
 * RMSNorm, fp32 or bf16 in, weight and out, fp32 arithmetic.
 *
 * Mirrors Hugging Face's CohereLayerNorm: the input is widened to fp32, the mean and the variance
 * of (x - mean) are taken in fp32, the normalized value is multiplied by the fp32 weight, and the
 * product is rounded to the output dtype once, at the end. RMSNorm follows the same pattern with
 * the mean of squares (HF's Llama RMSNorm instead rounds to the input dtype before the weight
 * multiply; this contract does not).
 *
 * The exact fp32 order of operations, per row of n = cols elements (built -ffp-contract=off, so no
 * product is fused into a sum):
 *   LayerNorm  s = 0; for j in 0..n-1: s = s + x[j]                   (sequential, left to right)
 *              mu = s / (float)n
 *              q = 0; for j in 0..n-1: d = x[j] - mu; q = q + d * d
 *              var = q / (float)n
 *              r = 1.0f / sqrtf(var + eps)                               (two correctly rounded ops)
 *              y[j] = out(w[j] * ((x[j] - mu) * r))
 *   RMSNorm    q = 0; for j: q = q + x[j] * x[j];  ms = q / (float)n
 *              r = 1.0f / sqrtf(ms + eps);  y[j] = out(w[j] * (x[j] * r))
 * out() is exact for fp32 and round-to-nearest-even for bf16. (float)n is exact for n <= 2^24.
 * Two passes keep the variance accurate when |mean| >> spread: x[j] - mu is then exact (Sterbenz)
 * and an error e in mu only adds e^2 to var.
 *
 * IEEE semantics are kept as torch has them: a NaN anywhere in a row makes the whole row NaN; an
 * infinity makes a LayerNorm row NaN (inf - inf) and, in RMSNorm, zeroes the finite elements and
 * makes the infinite ones NaN (x * 0); with eps = 0 a constant LayerNorm row, or an all-zero
 * RMSNorm row, is 0 * inf = NaN. */
#include <assert.h>
#include <math.h>

#include "moe/norm.h"

static bool dtype_ok(enum moe_dtype t)
{
	return t == MOE_DTYPE_F32 || t == MOE_DTYPE_BF16;
}

enum moe_status moe_norm_validate(const struct moe_norm_params *p)
{
	if (!p)
		return moe_fail(MOE_ERR_INVALID_ARG, "norm: params is NULL");
	if (p->kind != MOE_NORM_LAYERNORM && p->kind != MOE_NORM_RMSNORM)
		return moe_fail(MOE_ERR_INVALID_ARG, "norm: kind %d is neither layernorm (0) nor rmsnorm (1)",
				(int)p->kind);
	const char *kind = moe_norm_kind_name(p->kind);
	if (p->rows < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: rows=%lld must be >= 0", kind, (long long)p->rows);
	if (p->cols < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: cols=%lld must be >= 1", kind, (long long)p->cols);
	if (p->rows > 0 && p->cols > INT64_MAX / (int64_t)sizeof(float) / p->rows)
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: rows=%lld x cols=%lld elements overflow the "
				"address space", kind, (long long)p->rows, (long long)p->cols);
	if (!isfinite(p->eps) || p->eps < 0.0f)
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: eps=%g must be finite and >= 0", kind,
				(double)p->eps);
	if (!dtype_ok(p->in_dtype))
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: in_dtype %s not supported (f32 or bf16)", kind,
				moe_dtype_name(p->in_dtype));
	if (!dtype_ok(p->weight_dtype))
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: weight_dtype %s not supported (f32 or bf16)", kind,
				moe_dtype_name(p->weight_dtype));
	if (!dtype_ok(p->out_dtype))
		return moe_fail(MOE_ERR_INVALID_ARG, "norm %s: out_dtype %s not supported (f32 or bf16)", kind,
				moe_dtype_name(p->out_dtype));
	return MOE_OK;
}

static float load(const void *base, enum moe_dtype t, int64_t i)
{
	if (t == MOE_DTYPE_BF16)
		return moe_bf16_to_f32(((const moe_bf16 *)base)[i]);
	return ((const float *)base)[i];
}

static void store(void *base, enum moe_dtype t, int64_t i, float v)
{
	if (t == MOE_DTYPE_BF16)
		((moe_bf16 *)base)[i] = moe_f32_to_bf16(v);
	else
		((float *)base)[i] = v;
}

void moe_norm__ref(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	assert(moe_norm_validate(p) == MOE_OK);
	assert(p->rows == 0 || (x && w && y));
	const int64_t n = p->cols;
	const float fn = (float)n;
	for (int64_t r = 0; r < p->rows; r++) {
		const int64_t row = r * n;
		float mu = 0.0f, q = 0.0f;
		if (p->kind == MOE_NORM_LAYERNORM) {
			float s = 0.0f;
			for (int64_t j = 0; j < n; j++)
				s = s + load(x, p->in_dtype, row + j);
			mu = s / fn;
			for (int64_t j = 0; j < n; j++) {
				const float d = load(x, p->in_dtype, row + j) - mu;
				q = q + d * d;
			}
		} else {
			for (int64_t j = 0; j < n; j++) {
				const float v = load(x, p->in_dtype, row + j);
				q = q + v * v;
			}
		}
		const float rstd = 1.0f / sqrtf(q / fn + p->eps);
		for (int64_t j = 0; j < n; j++) {
			const float v = load(x, p->in_dtype, row + j);
			const float z = (p->kind == MOE_NORM_LAYERNORM ? v - mu : v) * rstd;
			store(y, p->out_dtype, row + j, load(w, p->weight_dtype, j) * z);
		}
	}
}
