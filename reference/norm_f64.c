/* The norms of reference/norm.c computed in double: the value error bounds are measured against.
 *
 * Same inputs (bf16 and fp32 widen exactly to double), same function, same order of operations as
 * the fp32 reference (sequential sums, two passes for LayerNorm, 1.0 / sqrt), every operation in
 * double and no rounding of the output. Its own error, about n * 2^-53 relative to the terms, is
 * 2^29 times below the fp32 reference's and is neglected by the bounds built on it. */
#include <assert.h>
#include <math.h>

#include "moe/norm.h"

static double load(const void *base, enum moe_dtype t, int64_t i)
{
	if (t == MOE_DTYPE_BF16)
		return moe_bf16_to_f32(((const moe_bf16 *)base)[i]);
	return ((const float *)base)[i];
}

void moe_norm_ref_f64(const struct moe_norm_params *p, const void *x, const void *w, double *y)
{
	assert(moe_norm_validate(p) == MOE_OK);
	assert(p->rows == 0 || (x && w && y));
	const int64_t n = p->cols;
	for (int64_t r = 0; r < p->rows; r++) {
		const int64_t row = r * n;
		double mu = 0.0, q = 0.0;
		if (p->kind == MOE_NORM_LAYERNORM) {
			double s = 0.0;
			for (int64_t j = 0; j < n; j++)
				s += load(x, p->in_dtype, row + j);
			mu = s / (double)n;
			for (int64_t j = 0; j < n; j++) {
				const double d = load(x, p->in_dtype, row + j) - mu;
				q += d * d;
			}
		} else {
			for (int64_t j = 0; j < n; j++) {
				const double v = load(x, p->in_dtype, row + j);
				q += v * v;
			}
		}
		const double rstd = 1.0 / sqrt(q / (double)n + (double)p->eps);
		for (int64_t j = 0; j < n; j++) {
			const double v = load(x, p->in_dtype, row + j);
			const double z = (p->kind == MOE_NORM_LAYERNORM ? v - mu : v) * rstd;
			y[row + j] = load(w, p->weight_dtype, j) * z;
		}
	}
}
