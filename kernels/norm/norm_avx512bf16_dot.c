/* moe_norm__avx512bf16_dot: centered LayerNorm and RMSNorm of bf16 input (f32 or bf16 weight and
 * output), fp32 arithmetic, with the row statistics taken in one pass by AVX512_BF16's vdpbf16ps.
 *
 * Per row of n = cols elements:
 *   S1 = sum x (LayerNorm only) and S2 = sum x^2, as vdpbf16ps(acc, x, 1) and vdpbf16ps(acc, x, x)
 *   into four accumulators of 16 lanes each (128 elements a step, then 32 at a time into the first,
 *   zero-padded), combined as ((a0 + a1) + (a2 + a3)) and then across lanes. A bf16 product is
 *   exact in fp32; the instruction adds a lane's two products to the accumulator one after the
 *   other, each add rounded to nearest even like an fp32 add (checked bit for bit on this machine's
 *   Zen 5 against that model), except that subnormal inputs and results count as zero.
 *   LayerNorm  mu = S1 / n; e = S2 / n; sq = mu * mu; var = e - sq      (the fast path)
 *   RMSNorm    mu = 0; var = S2 / n
 *   rstd = 1.0f / sqrtf(var + eps); y[j] = out(w[j] * ((x[j] - mu) * rstd)), norm_impl.h's
 *   elementwise operations.
 * The fast path is taken only when n >= MOE_NORM_DOT_MIN_COLS, 2^-90 <= e <= FLT_MAX and, for
 * LayerNorm, sq <= e / 2. Every other row (short rows, NaN, infinity or overflow in the row, tiny
 * or subnormal rows, |mean| large against the spread, constant LayerNorm rows) gets norm_impl.h's
 * two passes in plain fp32, the statistics of moe_norm__avx512bf16, with their error bound.
 *
 * Why the fast path keeps verify's a-priori bound (verify/tolerance.c, moe_norm_bound: any fp32
 * summation order, mean within e_mu = gamma_{n+1} mean|x|, variance within at least
 * gamma_{n+2} var). A term of S1 or S2 goes through at most k = 2 floor(n/128) + 8 + 6 <= n/64 + 14
 * roundings (two per vdpbf16ps in its lane, the tail's at most four vdpbf16ps, the combination),
 * so |S^ - S| <= gamma_k sum|term|, plus at most 2^-126 for each flushed product, input or result;
 * with e >= 2^-90 the flushes stay below 2^-33 e, far inside the slack left below. So mu is within
 * gamma_{k+1} mean|x| <= e_mu. With E = S2/n, M = S1/n and mean|x| <= sqrt(E) (Cauchy-Schwarz),
 * the test sq <= e/2 gives |M| <= 0.708 sqrt(E) and var = E - M^2 >= 0.499 E, so |var^ - var| <=
 * gamma_{k+1} E + 2.42 gamma_{k+1} E + 0.51 u E + u var <= 5 gamma_{k+2} var, below gamma_{n+2}
 * var when 5 (k + 2) <= n + 2: true from n = 85 on, with room at n >= 256. var^ >= 0 (e - sq >=
 * e/2 before rounding). RMSNorm: |var^ - var| <= gamma_{k+1} var. The elementwise pass is the
 * two-pass algorithm's, so the output bound follows.
 *
 * Layout, for bf16 weight and output with all weights finite (checked once per call) and the row on
 * the fast path: 32 elements a step, the 16 even ones widened by a shift and the 16 odd ones by a
 * mask in their own lanes (no shuffle), vcvtne2ps2bf16 rounding both halves, one vpermw putting
 * the words back in order; the next row's S1 and S2 are summed in the same loop (bit for bit as on
 * their own) so that reading it overlaps this row's arithmetic. vcvtne2ps2bf16 flushes subnormal
 * results to zero; with finite x, w, mu and rstd nothing else differs from moe_f32_to_bf16, and a
 * row in which any output word has a zero exponent (zero or flushed) is written again through
 * norm_row_out. The other rows and dtypes go through norm_row_out with norm_avx512bf16_io.h's loads
 * and stores (bf16 widened by vpermw, vcvtneps2bf16 with the exact fallback).
 *
 * Measured against moe_norm__avx512bf16 in results/amd-epyc-2c-2026-11-22-kernels2/norm/. Problems with f32 input are not accepted. */
#include <float.h>

#include "norm/norm_avx512bf16_io.h"
#include "norm/norm_impl.h"
#include "kernels.h"

#define MOE_NORM_DOT_MIN_COLS 256

/* Running sums of x (a, LayerNorm only) and x^2 (b) of one bf16 row, four accumulators each. Held
 * in named members, not arrays, so that they stay in registers once inlined. */
struct moments {
	__m512 a0, a1, a2, a3, b0, b1, b2, b3;
};

static inline void moments_init(struct moments *m)
{
	m->a0 = m->a1 = m->a2 = m->a3 = m->b0 = m->b1 = m->b2 = m->b3 = _mm512_setzero_ps();
}

/* x[0..127] into the four accumulators of each sum. */
static inline void moments_step(struct moments *m, const uint16_t *x, bool ln)
{
	const __m512bh one = (__m512bh)_mm512_set1_epi16(0x3f80);
	const __m512bh v0 = (__m512bh)_mm512_loadu_si512(x), v1 = (__m512bh)_mm512_loadu_si512(x + 32);
	const __m512bh v2 = (__m512bh)_mm512_loadu_si512(x + 64), v3 = (__m512bh)_mm512_loadu_si512(x + 96);
	if (ln) {
		m->a0 = _mm512_dpbf16_ps(m->a0, v0, one);
		m->a1 = _mm512_dpbf16_ps(m->a1, v1, one);
		m->a2 = _mm512_dpbf16_ps(m->a2, v2, one);
		m->a3 = _mm512_dpbf16_ps(m->a3, v3, one);
	}
	m->b0 = _mm512_dpbf16_ps(m->b0, v0, v0);
	m->b1 = _mm512_dpbf16_ps(m->b1, v1, v1);
	m->b2 = _mm512_dpbf16_ps(m->b2, v2, v2);
	m->b3 = _mm512_dpbf16_ps(m->b3, v3, v3);
}

/* The last n < 128 elements, 32 at a time into the first accumulators, and the totals. */
static inline void moments_finish(struct moments *m, const uint16_t *x, int64_t n, bool ln, float *s1, float *s2)
{
	const __m512bh one = (__m512bh)_mm512_set1_epi16(0x3f80);
	for (int64_t j = 0; j < n; j += 32) {
		/* The zeroed missing words add 0 * 1 and 0 * 0: exactly nothing. */
		const __mmask32 k = n - j >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (n - j)) - 1u);
		const __m512bh v = (__m512bh)_mm512_maskz_loadu_epi16(k, x + j);
		if (ln)
			m->a0 = _mm512_dpbf16_ps(m->a0, v, one);
		m->b0 = _mm512_dpbf16_ps(m->b0, v, v);
	}
	*s1 = ln ? _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(m->a0, m->a1), _mm512_add_ps(m->a2, m->a3))) : 0.0f;
	*s2 = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(m->b0, m->b1), _mm512_add_ps(m->b2, m->b3)));
}

/* S1 (when ln) and S2 of the bf16 row x[0..n-1]. */
static inline void dot_moments(const uint16_t *x, int64_t n, bool ln, float *s1, float *s2)
{
	struct moments m;
	moments_init(&m);
	int64_t j = 0;
	for (; j + 128 <= n; j += 128)
		moments_step(&m, x + j, ln);
	moments_finish(&m, x + j, n - j, ln, s1, s2);
}

/* mu and rstd from S1 and S2 where the one-pass statistics are safe (the row is then finite). */
static inline bool stats_fast(const struct moe_norm_params *p, float s1, float s2, float *mu, float *rstd)
{
	const float fn = (float)p->cols;
	const float e = s2 / fn, m = p->kind == MOE_NORM_LAYERNORM ? s1 / fn : 0.0f, sq = m * m;
	if (!(e >= 0x1p-90f && e <= FLT_MAX && sq <= 0.5f * e))
		return false;
	*mu = m;
	*rstd = 1.0f / sqrtf((e - sq) + p->eps);
	return true;
}

/* mu and rstd by norm_impl.h's two passes. */
static inline void stats_slow(const struct moe_norm_params *p, const void *x, int64_t row, float *mu, float *rstd)
{
	float q;
	*mu = norm_row_moments(p, x, row, &q);
	*rstd = 1.0f / sqrtf(q / (float)p->cols + p->eps);
}

/* mu and rstd of one row; true when they come from the one-pass statistics. */
static inline bool row_stats(const struct moe_norm_params *p, const void *x, int64_t row, float *mu, float *rstd)
{
	if (p->cols >= MOE_NORM_DOT_MIN_COLS) {
		float s1, s2;
		dot_moments((const uint16_t *)x + row, p->cols, p->kind == MOE_NORM_LAYERNORM, &s1, &s2);
		if (stats_fast(p, s1, s2, mu, rstd))
			return true;
	}
	stats_slow(p, x, row, mu, rstd);
	return false;
}

/* Whether no bf16 in w[0..n-1] is an infinity or a NaN: with the sign shifted out, those are the
 * words >= 0xff00. Running unsigned maxima, four of them, keep the loop free of mask dependencies
 * and of one long chain. */
static bool bf16_finite(const uint16_t *w, int64_t n)
{
	__m512i h0 = _mm512_setzero_si512(), h1 = h0, h2 = h0, h3 = h0;
	int64_t j = 0;
	for (; j + 128 <= n; j += 128) {
		h0 = _mm512_max_epu16(h0, _mm512_slli_epi16(_mm512_loadu_si512(w + j), 1));
		h1 = _mm512_max_epu16(h1, _mm512_slli_epi16(_mm512_loadu_si512(w + j + 32), 1));
		h2 = _mm512_max_epu16(h2, _mm512_slli_epi16(_mm512_loadu_si512(w + j + 64), 1));
		h3 = _mm512_max_epu16(h3, _mm512_slli_epi16(_mm512_loadu_si512(w + j + 96), 1));
	}
	for (; j < n; j += 32) {
		const __mmask32 k = n - j >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (n - j)) - 1u);
		h0 = _mm512_max_epu16(h0, _mm512_slli_epi16(_mm512_maskz_loadu_epi16(k, w + j), 1));
	}
	const __m512i h = _mm512_max_epu16(_mm512_max_epu16(h0, h1), _mm512_max_epu16(h2, h3));
	return _mm512_cmpge_epu16_mask(h, _mm512_set1_epi16((short)0xff00)) == 0;
}

/* 32 outputs from the bf16 words h (x) and g (w): the 16 even elements widened by a shift, the 16
 * odd ones by a mask, each in its own lanes (no shuffle); the reference's three operations on both
 * halves; vcvtne2ps2bf16 rounds both and one vpermw puts the words back in order. *zero collects
 * the words (of m) with a zero exponent. */
static inline __m512i pairs_step(__m512i h, __m512i g, __m512 vmu, __m512 vr, __mmask32 m, __mmask32 *zero)
{
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
	const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
					       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
	const __m512 xe = _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
	const __m512 xo = _mm512_castsi512_ps(_mm512_and_si512(h, hi));
	const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(g, 16));
	const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(g, hi));
	const __m512 ye = _mm512_mul_ps(we, _mm512_mul_ps(_mm512_sub_ps(xe, vmu), vr));
	const __m512 yo = _mm512_mul_ps(wo, _mm512_mul_ps(_mm512_sub_ps(xo, vmu), vr));
	const __m512i b = (__m512i)_mm512_cvtne2ps_pbh(yo, ye);
	*zero |= _mm512_mask_testn_epi16_mask(m, b, _mm512_set1_epi16(0x7f80));
	return _mm512_permutexvar_epi16(order, b);
}

/* The 32 outputs at y from x and w. */
static inline void pairs_store(const uint16_t *x, const uint16_t *w, uint16_t *y, __m512 vmu, __m512 vr,
			       __mmask32 *zero)
{
	_mm512_storeu_si512(y, pairs_step(_mm512_loadu_si512(x), _mm512_loadu_si512(w), vmu, vr, ~(__mmask32)0, zero));
}

/* One row's output for bf16 weight and output by pairs_step and, when xn is not NULL, the sums of
 * the next row xn in the same loop (bit for bit those of dot_moments), so that reading the next row
 * overlaps this row's arithmetic. vcvtne2ps2bf16 flushes subnormal results to zero; with x, w, mu
 * and rstd finite nothing else differs from moe_f32_to_bf16. Returns false when an output word has
 * a zero exponent (a zero or a flushed subnormal, told apart by nothing cheap): the caller then
 * writes the row again through norm_row_out. */
static inline bool row_out_pairs(const uint16_t *x, const uint16_t *w, uint16_t *y, int64_t n, float mu, float rstd,
				 const uint16_t *xn, bool ln, float *s1, float *s2)
{
	const __m512 vmu = _mm512_set1_ps(mu), vr = _mm512_set1_ps(rstd);
	__mmask32 zero = 0;
	struct moments m;
	moments_init(&m);
	int64_t j = 0;
	if (xn) {
		for (; j + 128 <= n; j += 128) {
			moments_step(&m, xn + j, ln);
			pairs_store(x + j, w + j, y + j, vmu, vr, &zero);
			pairs_store(x + j + 32, w + j + 32, y + j + 32, vmu, vr, &zero);
			pairs_store(x + j + 64, w + j + 64, y + j + 64, vmu, vr, &zero);
			pairs_store(x + j + 96, w + j + 96, y + j + 96, vmu, vr, &zero);
		}
		moments_finish(&m, xn + j, n - j, ln, s1, s2);
	}
	for (; j + 32 <= n; j += 32)
		pairs_store(x + j, w + j, y + j, vmu, vr, &zero);
	if (j < n) {
		const __mmask32 k = (__mmask32)((1u << (n - j)) - 1u);
		const __m512i b = pairs_step(_mm512_maskz_loadu_epi16(k, x + j), _mm512_maskz_loadu_epi16(k, w + j), vmu,
					     vr, k, &zero);
		_mm512_mask_storeu_epi16(y + j, k, b);
	}
	return zero == 0;
}

/* One row's output in norm_row_out's layout and, when xn is not NULL, the sums of the next row xn
 * in the same loop, as row_out_pairs takes them. */
static inline void row_out_next(const struct moe_norm_params *p, const void *x, const void *w, void *y, int64_t row,
				float mu, float rstd, const uint16_t *xn, float *s1, float *s2)
{
	const int64_t n = p->cols;
	const bool ln = p->kind == MOE_NORM_LAYERNORM;
	int64_t j = 0;
	if (xn) {
		const moe_vf vmu = vf_set1(mu), vr = vf_set1(rstd);
		struct moments m;
		moments_init(&m);
		for (; j + 128 <= n; j += 128) {
			moments_step(&m, xn + j, ln);
			for (int k = 0; k < 128; k += MOE_VW) {
				const moe_vf z = vf_mul(vf_sub(MOE_NORM_LOAD(x, p->in_dtype, row + j + k), vmu), vr);
				MOE_NORM_STORE(y, p->out_dtype, row + j + k,
					       vf_mul(MOE_NORM_LOAD(w, p->weight_dtype, j + k), z));
			}
		}
		moments_finish(&m, xn + j, n - j, ln, s1, s2);
	}
	norm_row_out_from(p, x, w, y, row, j, mu, rstd);
}

/* The rows on a local copy of the parameters with the kind (and, for the all-bf16 problems, the
 * dtypes) as constants: the copy cannot alias y, and with everything inlined (flatten) each gets
 * its own loops, with no kind test per vector. Rows whose statistics came from one pass and whose
 * weights are finite bf16 with bf16 output go through row_out_pairs, the others through
 * row_out_next; both also take the next row's sums when it is long enough for them. */
static inline void rows_as(const struct moe_norm_params *p, enum moe_norm_kind kind, enum moe_dtype wt,
			   enum moe_dtype out, const void *x, const void *w, void *y)
{
	struct moe_norm_params q = *p;
	q.kind = kind;
	q.in_dtype = MOE_DTYPE_BF16;
	q.weight_dtype = wt;
	q.out_dtype = out;
	const int64_t n = q.cols;
	const bool ln = kind == MOE_NORM_LAYERNORM;
	const bool pairs = wt == MOE_DTYPE_BF16 && out == MOE_DTYPE_BF16 && n >= MOE_NORM_DOT_MIN_COLS &&
			   q.rows > 0 && bf16_finite(w, n);
	float mu = 0.0f, rstd = 0.0f;
	bool fast = q.rows > 0 && row_stats(&q, x, 0, &mu, &rstd);
	for (int64_t r = 0; r < q.rows; r++) {
		const int64_t row = r * n;
		const bool next = r + 1 < q.rows && n >= MOE_NORM_DOT_MIN_COLS;
		const uint16_t *xn = next ? (const uint16_t *)x + row + n : NULL;
		float s1 = 0.0f, s2 = 0.0f;
		if (pairs && fast) {
			if (!row_out_pairs((const uint16_t *)x + row, w, (uint16_t *)y + row, n, mu, rstd, xn, ln, &s1, &s2))
				norm_row_out(&q, x, w, y, row, mu, rstd);
		} else {
			row_out_next(&q, x, w, y, row, mu, rstd, xn, &s1, &s2);
		}
		if (r + 1 == q.rows)
			break;
		if (next) {
			fast = stats_fast(&q, s1, s2, &mu, &rstd);
			if (!fast)
				stats_slow(&q, x, row + n, &mu, &rstd);
		} else {
			fast = row_stats(&q, x, row + n, &mu, &rstd);
		}
	}
}

__attribute__((flatten)) void moe_norm__avx512bf16_dot(const struct moe_norm_params *p, const void *x, const void *w,
							 void *y)
{
	assert(moe_norm_validate(p) == MOE_OK);
	assert(p->rows == 0 || (x && w && y));
	assert(p->in_dtype == MOE_DTYPE_BF16);
	const enum moe_norm_kind k = p->kind;
	const bool wb = p->weight_dtype == MOE_DTYPE_BF16, ob = p->out_dtype == MOE_DTYPE_BF16;
	if (k == MOE_NORM_LAYERNORM && wb && ob)
		rows_as(p, MOE_NORM_LAYERNORM, MOE_DTYPE_BF16, MOE_DTYPE_BF16, x, w, y);
	else if (k == MOE_NORM_LAYERNORM)
		rows_as(p, MOE_NORM_LAYERNORM, p->weight_dtype, p->out_dtype, x, w, y);
	else if (wb && ob)
		rows_as(p, MOE_NORM_RMSNORM, MOE_DTYPE_BF16, MOE_DTYPE_BF16, x, w, y);
	else
		rows_as(p, MOE_NORM_RMSNORM, p->weight_dtype, p->out_dtype, x, w, y);
}

bool moe_norm__avx512bf16_dot_supports(enum moe_op op, const void *problem)
{
	return op == MOE_OP_NORM && ((const struct moe_norm_params *)problem)->in_dtype == MOE_DTYPE_BF16;
}
