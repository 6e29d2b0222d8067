/* The norm algorithm on the vector helpers of simd_avx2.h or simd_avx512.h (whichever the including
 * kernel file chose); norm_avx2.c and norm_avx512.c are this file compiled for their ISA.
 *
 * Per row of n = cols elements, in fp32, the reference's formulas (reference/norm.c) with its
 * sequential sums replaced by MOE_VW-lane partial sums in four accumulators (combined as
 * ((a0 + a1) + (a2 + a3)) and then across lanes) and d*d accumulated with FMA:
 *   LayerNorm  mu = sum(x) / n;  var = sum((x - mu)^2) / n      (two passes, as the reference)
 *   RMSNorm    ms = sum(x^2) / n
 *   rstd = 1.0f / sqrtf(var_or_ms + eps), scalar, exactly as the reference rounds it
 *   y[j] = out(w[j] * ((x[j] - mu) * rstd)), mu = 0 for RMSNorm (x - 0 is x, -0 and NaN included)
 * Only mu and rstd can differ from the reference, by the reordering of the two sums: every
 * element's final three operations are the reference's. The error against moe_norm_ref_f64 is
 * therefore bounded by the usual any-order summation bound gamma_n (tests/test_kernels_norm.c
 * derives and checks it). NaN and infinity propagate as in the reference: they reach the sums.
 * The pieces (norm_row_moments: the two passes; norm_row_out[_from]: the elementwise pass) are used
 * on their own by norm_avx512bf16_dot.c for the rows its one-pass statistics do not cover. */
#include <assert.h>
#include <math.h>

#include "moe/backend.h"

/* The full-vector load and the output stores; an including file may name its own, with the same
 * results, by defining MOE_NORM_LOAD, MOE_NORM_STORE and MOE_NORM_STORE_TAIL first
 * (norm_avx512bf16_io.h: cheaper bf16 widening and the output rounding by AVX512_BF16). */
#ifndef MOE_NORM_LOAD
#define MOE_NORM_LOAD vf_load
#endif
#ifndef MOE_NORM_STORE
#define MOE_NORM_STORE vf_store
#define MOE_NORM_STORE_TAIL vf_store_tail
#endif

/* Sum over the row of f(x) where f is x (square = false) or (x - c)^2 (square = true). */
static inline float row_sum(const void *x, enum moe_dtype t, int64_t row, int64_t n, bool square, float c)
{
	const moe_vf vc = vf_set1(c);
	moe_vf a0 = vf_zero(), a1 = vf_zero(), a2 = vf_zero(), a3 = vf_zero();
	int64_t j = 0;
	for (; j + 4 * MOE_VW <= n; j += 4 * MOE_VW) {
		moe_vf v0 = MOE_NORM_LOAD(x, t, row + j), v1 = MOE_NORM_LOAD(x, t, row + j + MOE_VW);
		moe_vf v2 = MOE_NORM_LOAD(x, t, row + j + 2 * MOE_VW), v3 = MOE_NORM_LOAD(x, t, row + j + 3 * MOE_VW);
		if (square) {
			v0 = vf_sub(v0, vc);
			v1 = vf_sub(v1, vc);
			v2 = vf_sub(v2, vc);
			v3 = vf_sub(v3, vc);
			a0 = vf_fmadd(v0, v0, a0);
			a1 = vf_fmadd(v1, v1, a1);
			a2 = vf_fmadd(v2, v2, a2);
			a3 = vf_fmadd(v3, v3, a3);
		} else {
			a0 = vf_add(a0, v0);
			a1 = vf_add(a1, v1);
			a2 = vf_add(a2, v2);
			a3 = vf_add(a3, v3);
		}
	}
	for (; j < n; j += MOE_VW) {
		/* The fill makes the missing lanes contribute exactly 0 (c - c = 0). */
		moe_vf v = n - j >= MOE_VW ? MOE_NORM_LOAD(x, t, row + j) : vf_load_tail(x, t, row + j, (int)(n - j), c);
		if (square) {
			v = vf_sub(v, vc);
			a0 = vf_fmadd(v, v, a0);
		} else {
			a0 = vf_add(a0, v);
		}
	}
	return vf_hsum(vf_add(vf_add(a0, a1), vf_add(a2, a3)));
}

/* The output of one row from column j on, given its mean mu (0 for RMSNorm) and rstd: the
 * reference's last three operations per element. */
static inline void norm_row_out_from(const struct moe_norm_params *p, const void *x, const void *w, void *y,
				     int64_t row, int64_t j, float mu, float rstd)
{
	const int64_t n = p->cols;
	const moe_vf vmu = vf_set1(mu), vr = vf_set1(rstd);
	for (; j + MOE_VW <= n; j += MOE_VW) {
		const moe_vf z = vf_mul(vf_sub(MOE_NORM_LOAD(x, p->in_dtype, row + j), vmu), vr);
		MOE_NORM_STORE(y, p->out_dtype, row + j, vf_mul(MOE_NORM_LOAD(w, p->weight_dtype, j), z));
	}
	if (j < n) {
		const int m = (int)(n - j);
		const moe_vf z = vf_mul(vf_sub(vf_load_tail(x, p->in_dtype, row + j, m, 0.0f), vmu), vr);
		MOE_NORM_STORE_TAIL(y, p->out_dtype, row + j, vf_mul(vf_load_tail(w, p->weight_dtype, j, m, 0.0f), z), m);
	}
}

static inline void norm_row_out(const struct moe_norm_params *p, const void *x, const void *w, void *y, int64_t row,
				float mu, float rstd)
{
	norm_row_out_from(p, x, w, y, row, 0, mu, rstd);
}

/* mu (LayerNorm; 0 for RMSNorm) and the sum q of (x - mu)^2 of one row, in two passes. */
static inline float norm_row_moments(const struct moe_norm_params *p, const void *x, int64_t row, float *q)
{
	const int64_t n = p->cols;
	const float mu = p->kind == MOE_NORM_LAYERNORM ? row_sum(x, p->in_dtype, row, n, false, 0.0f) / (float)n : 0.0f;
	*q = row_sum(x, p->in_dtype, row, n, true, mu);
	return mu;
}

static inline void norm_rows(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	assert(moe_norm_validate(p) == MOE_OK);
	assert(p->rows == 0 || (x && w && y));
	const float fn = (float)p->cols;
	for (int64_t r = 0; r < p->rows; r++) {
		const int64_t row = r * p->cols;
		float q;
		const float mu = norm_row_moments(p, x, row, &q);
		norm_row_out(p, x, w, y, row, mu, 1.0f / sqrtf(q / fn + p->eps));
	}
}
