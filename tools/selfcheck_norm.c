/* selfcheck rows for the reference norms: the fp32 reference against its double twin on model
 * hidden sizes.
 *
 * Bound per output (n = cols, u = 2^-24): the fp32 mean carries at most (n+1)u*mean|x| of error,
 * which reaches the output as |w|*rstd*(n+1)u*mean|x|; the variance (or mean square) has relative
 * error <= (n+3)u, rstd half of that plus 2u for sqrt and the reciprocal, and the two final products
 * 2u: together <= (n+8)u relative to |y|. Twice the sum covers the second-order terms. A bf16
 * output adds its rounding, at most 2^-8 relative (bf16 keeps 8 significant bits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "selfcheck.h"

static void norm_case(struct selfcheck *sc, enum moe_norm_kind kind, int64_t cols, enum moe_dtype out_dtype,
		      float offset)
{
	enum { ROWS = 8 };
	struct moe_norm_params p = {
		.kind = kind, .rows = ROWS, .cols = cols, .eps = 1e-5f,
		.in_dtype = MOE_DTYPE_F32, .weight_dtype = MOE_DTYPE_F32, .out_dtype = out_dtype,
	};
	const size_t n = (size_t)(ROWS * cols);
	float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * (size_t)cols);
	float *y = malloc(sizeof(float) * n);
	double *y64 = malloc(sizeof(double) * n);
	char name[64];
	snprintf(name, sizeof name, "%s H=%lld out=%s%s", moe_norm_kind_name(kind), (long long)cols,
		 moe_dtype_name(out_dtype), offset != 0.0f ? " offset" : "");
	selfcheck_row_begin(sc);
	if (!x || !w || !y || !y64 || moe_norm_validate(&p) != MOE_OK) {
		selfcheck_expect(sc, false, "setup failed: %s", moe_last_error());
		goto out;
	}
	uint64_t rng = sc->seed + (uint64_t)cols;
	for (size_t i = 0; i < n; i++)
		x[i] = offset + selfcheck_normal(&rng);
	for (int64_t j = 0; j < cols; j++)
		w[j] = 1.0f + 0.25f * selfcheck_normal(&rng);
	moe_norm__ref(&p, x, w, y);
	moe_norm_ref_f64(&p, x, w, y64);
	const double u = 0x1p-24;
	for (int64_t r = 0; r < ROWS; r++) {
		const float *xr = x + r * cols;
		double mean = 0, mean_abs = 0, m2 = 0;
		for (int64_t j = 0; j < cols; j++) {
			mean += xr[j];
			mean_abs += fabs(xr[j]);
		}
		mean /= (double)cols;
		mean_abs /= (double)cols;
		for (int64_t j = 0; j < cols; j++) {
			const double d = kind == MOE_NORM_LAYERNORM ? xr[j] - mean : xr[j];
			m2 += d * d;
		}
		const double rstd = 1.0 / sqrt(m2 / (double)cols + p.eps);
		for (int64_t j = 0; j < cols; j++) {
			const size_t i = (size_t)(r * cols + j);
			double bound = 2.0 * ((cols + 1) * u * fabs(w[j]) * rstd * mean_abs + (cols + 8) * u * fabs(y64[i]));
			if (out_dtype == MOE_DTYPE_BF16)
				bound += 0x1p-8 * fabs(y64[i]);
			const double got = out_dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)y)[i]) : y[i];
			selfcheck_expect(sc, fabs(got - y64[i]) <= bound, "row %lld col %lld: %.9g vs %.9g (bound %.3g)",
					 (long long)r, (long long)j, got, y64[i], bound);
		}
	}
out:
	selfcheck_row_end(sc, "norm", name);
	free(x);
	free(w);
	free(y);
	free(y64);
}

void selfcheck_norm(struct selfcheck *sc)
{
	norm_case(sc, MOE_NORM_LAYERNORM, 8192, MOE_DTYPE_F32, 0.0f);
	norm_case(sc, MOE_NORM_LAYERNORM, 7168, MOE_DTYPE_BF16, 0.0f);
	norm_case(sc, MOE_NORM_LAYERNORM, 2048, MOE_DTYPE_F32, 100.0f);
	norm_case(sc, MOE_NORM_RMSNORM, 4096, MOE_DTYPE_F32, 0.0f);
	norm_case(sc, MOE_NORM_RMSNORM, 2880, MOE_DTYPE_BF16, 0.0f);
}
