/* Tests of the optimized norm kernels: every built-in table that provides norm (each variant of
 * kernels/norm/norm.inc, the whole per-ISA tables and, as a check of the bound itself, the
 * reference) against moe_norm_ref_f64 within an error bound derived below, on seeded random rows of
 * many widths (vector tails), both kinds, every dtype combination, offset means, eps = 0; NaN and
 * infinity rows against the fp32 reference; rows = 0; no write past the output; for the one-pass
 * variant (moe_norm__avx512bf16_dot), rows that must take each of its paths, within the bound and,
 * on rows with exact sums, bit for bit against the reference. Variants whose ISA the CPU lacks are
 * skipped and said so. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "test_rng.h"


static void put(void *base, enum moe_dtype t, int64_t i, float v)
{
	if (t == MOE_DTYPE_BF16)
		((moe_bf16 *)base)[i] = moe_f32_to_bf16(v);
	else
		((float *)base)[i] = v;
}

static double get(const void *base, enum moe_dtype t, int64_t i)
{
	if (t == MOE_DTYPE_BF16)
		return moe_bf16_to_f32(((const moe_bf16 *)base)[i]);
	return ((const float *)base)[i];
}

static size_t dsize(enum moe_dtype t)
{
	return t == MOE_DTYPE_BF16 ? 2 : 4;
}

static double gamma_n(double n)
{
	const double u = 0x1p-24;
	return n * u / (1.0 - n * u);
}

/* The bound on |y - y64| for one element, for any fp32 kernel that computes mu and the sum of
 * squares with sums in any order (FMA or not) and then the reference's three elementwise operations
 * (u = 2^-24, n = cols; first order in u, times 1.01 for the second-order terms):
 *   e_mu   = gamma_n * sum|x| / n + u * |mu|            the computed mean's error (LayerNorm)
 *   q      <= (q64 + n e_mu^2)(1 + gamma_{n+2})          any-order sum of fl(x - mu)^2
 *   d_v    = ((gamma_{n+2} (q64 + n e_mu^2) + n e_mu^2) / n) / v64 + 2u,  v64 = q64/n + eps
 *   d_r    = d_v / 2 + 2u                                 sqrt and division, each rounding once
 *   |y - y64| <= |w| r64 (e_mu + (|x - mu64| + e_mu)(d_r + 3u)) + half an output ulp of |y64|
 * (at least half the subnormal spacing of the output format). For RMSNorm mu = e_mu = 0. */
static double bound(const struct moe_norm_params *p, double sum_abs, double mu64, double q64, double x,
		    double w, double y64)
{
	const double u = 0x1p-24, n = (double)p->cols;
	const bool ln = p->kind == MOE_NORM_LAYERNORM;
	const double e_mu = ln ? gamma_n(n) * sum_abs / n + u * fabs(mu64) : 0.0;
	const double v64 = q64 / n + p->eps, r64 = 1.0 / sqrt(v64);
	const double d_v = ((gamma_n(n + 2) * (q64 + n * e_mu * e_mu) + n * e_mu * e_mu) / n) / v64 + 2 * u;
	const double d_r = d_v / 2 + 2 * u;
	const double out = p->out_dtype == MOE_DTYPE_BF16 ? 0x1p-8 : u; /* half an ulp, relative */
	/* half the subnormal spacing: bf16 2^-133, fp32 2^-149 (rounded up) */
	const double floor = p->out_dtype == MOE_DTYPE_BF16 ? 0x1p-134 : 0x1p-149;
	return 1.01 * (fabs(w) * r64 * (e_mu + (fabs(x - mu64) + e_mu) * (d_r + 3 * u)) + out * fabs(y64)) + floor;
}

struct row_stats {
	double sum_abs, mu, q;
};

static struct row_stats stats(const struct moe_norm_params *p, const void *x, int64_t r)
{
	struct row_stats s = { 0, 0, 0 };
	const int64_t n = p->cols;
	double sum = 0;
	for (int64_t j = 0; j < n; j++) {
		sum += get(x, p->in_dtype, r * n + j);
		s.sum_abs += fabs(get(x, p->in_dtype, r * n + j));
	}
	s.mu = p->kind == MOE_NORM_LAYERNORM ? sum / (double)n : 0.0;
	for (int64_t j = 0; j < n; j++) {
		const double d = get(x, p->in_dtype, r * n + j) - s.mu;
		s.q += d * d;
	}
	return s;
}

/* Runs every provider of norm on (p, x, w) and checks it against moe_norm_ref_f64; returns the
 * largest error/bound seen. `tested` counts the tables that ran. */
static double check_all(const struct moe_norm_params *p, const void *x, const void *w, int *tested)
{
	const int64_t total = p->rows * p->cols;
	double *y64 = malloc((size_t)(total ? total : 1) * sizeof *y64);
	unsigned char *y = malloc((size_t)total * 4 + 64);
	ck_assert(y64 && y);
	moe_norm_ref_f64(p, x, w, y64);
	double worst = 0;
	for (size_t i = 0; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (!moe_backend_provides(b->table, MOE_OP_NORM, p) || b->isa > moe_isa_hardware())
			continue;
		memset(y, 0xa5, (size_t)total * 4 + 64);
		b->table->norm(p, x, w, y);
		const size_t used = (size_t)total * dsize(p->out_dtype);
		for (size_t k = used; k < (size_t)total * 4 + 64; k++)
			ck_assert_msg(y[k] == 0xa5, "%s wrote past the output (byte %zu of %zu)", b->table->name, k, used);
		for (int64_t r = 0; r < p->rows; r++) {
			const struct row_stats s = stats(p, x, r);
			for (int64_t j = 0; j < p->cols; j++) {
				const int64_t k = r * p->cols + j;
				const double yk = get(y, p->out_dtype, k);
				const double bd = bound(p, s.sum_abs, s.mu, s.q, get(x, p->in_dtype, k),
							get(w, p->weight_dtype, j), y64[k]);
				const double err = fabs(yk - y64[k]);
				ck_assert_msg(err <= bd, "%s %s cols=%lld in=%s w=%s out=%s: y[%lld][%lld]=%.9g, "
					      "ref64=%.9g, error %.3g > bound %.3g", b->table->name,
					      moe_norm_kind_name(p->kind), (long long)p->cols,
					      moe_dtype_name(p->in_dtype), moe_dtype_name(p->weight_dtype),
					      moe_dtype_name(p->out_dtype), (long long)r, (long long)j, yk, y64[k], err, bd);
				if (err / bd > worst)
					worst = err / bd;
			}
		}
		(*tested)++;
	}
	free(y64);
	free(y);
	return worst;
}

static int variants_present(void)
{
	int n = 0;
	for (size_t i = 0; i < moe_builtin_count(); i++)
		n += moe_builtin_at(i)->op == MOE_OP_NORM;
	return n;
}

START_TEST(test_list_has_both_isas)
{
	ck_assert_ptr_nonnull(moe_builtin_find("moe_norm__avx2"));
	ck_assert_ptr_nonnull(moe_builtin_find("moe_norm__avx512"));
	ck_assert_int_ge(variants_present(), 2);
	if (moe_isa_hardware() < MOE_ISA_AVX512)
		fprintf(stderr, "test_kernels_norm: AVX-512 unavailable here, moe_norm__avx512 skipped\n");
}
END_TEST

static const int64_t widths[] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 1000, 4099 };

START_TEST(test_random_all_dtypes)
{
	static const enum moe_dtype dts[2] = { MOE_DTYPE_F32, MOE_DTYPE_BF16 };
	rng_state = 1234;
	double worst = 0;
	for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
		for (int combo = 0; combo < 16; combo++) {
			struct moe_norm_params p = {
				.kind = (combo & 8) ? MOE_NORM_RMSNORM : MOE_NORM_LAYERNORM,
				.rows = 3, .cols = widths[wi], .eps = (combo & 1) ? 1e-5f : 1e-6f,
				.in_dtype = dts[(combo >> 1) & 1], .weight_dtype = dts[(combo >> 2) & 1],
				.out_dtype = dts[combo & 1],
			};
			void *x = malloc((size_t)(p.rows * p.cols) * 4), *w = malloc((size_t)p.cols * 4);
			ck_assert(x && w);
			for (int64_t k = 0; k < p.rows * p.cols; k++)
				put(x, p.in_dtype, k, (float)(rng_normal() * 3.0 + 0.5));
			for (int64_t j = 0; j < p.cols; j++)
				put(w, p.weight_dtype, j, (float)(1.0 + 0.3 * rng_normal()));
			int tested = 0;
			const double q = check_all(&p, x, w, &tested);
			worst = q > worst ? q : worst;
			ck_assert_int_ge(tested, 1 + (moe_isa_hardware() >= MOE_ISA_AVX2) * 2);
			free(x);
			free(w);
		}
	}
	/* The bound is not vacuous: the reference and the kernels use a real part of it somewhere. */
	ck_assert_msg(worst > 1e-3, "worst error/bound %.3g: the bound is far too loose", worst);
}
END_TEST

/* The AVX512-BF16 variant rounds its bf16 output with vcvtneps2bf16, which flushes subnormal
 * results and canonicalizes NaNs, and falls back to the exact integer rounding for such vectors:
 * its output must equal the AVX-512 kernel's bit for bit, including subnormal outputs (weights of
 * 1e-39), NaN rows and overflow to infinity. */
START_TEST(test_bf16_output_matches_avx512_bitwise)
{
	const struct moe_builtin *fast = moe_builtin_find("moe_norm__avx512bf16");
	const struct moe_builtin *base = moe_builtin_find("moe_norm__avx512");
	ck_assert_ptr_nonnull(fast);
	ck_assert_ptr_nonnull(base);
	if (moe_isa_hardware() < MOE_ISA_AVX512_BF16) {
		fprintf(stderr, "test_kernels_norm: AVX512_BF16 unavailable here, bitwise bf16 check skipped\n");
		return;
	}
	static const enum moe_dtype dts[2] = { MOE_DTYPE_F32, MOE_DTYPE_BF16 };
	rng_state = 99;
	long subnormal_outputs = 0, compared = 0;
	for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
		for (int combo = 0; combo < 8; combo++) {
			struct moe_norm_params p = {
				.kind = (combo & 4) ? MOE_NORM_RMSNORM : MOE_NORM_LAYERNORM,
				.rows = 4, .cols = widths[wi], .eps = 1e-5f,
				.in_dtype = dts[combo & 1], .weight_dtype = dts[(combo >> 1) & 1],
				.out_dtype = MOE_DTYPE_BF16,
			};
			ck_assert(fast->table->supports(MOE_OP_NORM, &p));
			const size_t n = (size_t)(p.rows * p.cols);
			void *x = malloc(n * 4), *w = malloc((size_t)p.cols * 4);
			moe_bf16 *y1 = malloc(n * 2), *y2 = malloc(n * 2);
			ck_assert(x && w && y1 && y2);
			for (size_t k = 0; k < n; k++)
				put(x, p.in_dtype, (int64_t)k, (float)rng_normal());
			if (p.cols > 2) /* row 3: a NaN; row 2: a huge value that overflows bf16 after w */
				put(x, p.in_dtype, 3 * p.cols + 1, NAN);
			for (int64_t j = 0; j < p.cols; j++) {
				/* every third weight tiny, so outputs land among the bf16 subnormals */
				const float wj = (j % 3 == 0) ? 1e-39f * (float)(1 + j % 7) : (float)(1.0 + 0.3 * rng_normal());
				put(w, p.weight_dtype, j, j == 2 ? 3e38f : wj);
			}
			fast->table->norm(&p, x, w, y1);
			base->table->norm(&p, x, w, y2);
			for (size_t k = 0; k < n; k++) {
				ck_assert_msg(y1[k] == y2[k], "cols %lld combo %d element %zu: 0x%04x vs 0x%04x",
					      (long long)p.cols, combo, k, y1[k], y2[k]);
				subnormal_outputs += (y2[k] & 0x7f80) == 0 && (y2[k] & 0x7f) != 0;
				compared++;
			}
			free(x);
			free(w);
			free(y1);
			free(y2);
		}
	}
	/* the check must have seen subnormal outputs, or it proves nothing about the fallback */
	ck_assert_int_gt(subnormal_outputs, 100);
	fprintf(stderr, "test_kernels_norm: bf16 output bitwise: %ld elements, %ld subnormal\n", compared,
		subnormal_outputs);
}
END_TEST

/* A mean far from zero relative to the spread (1000 + N(0,1)): the two-pass variance must stay
 * accurate, and a one-pass E[x^2] - E[x]^2 would not meet the bound. Also eps = 0. */
START_TEST(test_offset_mean_and_zero_eps)
{
	rng_state = 99;
	for (int kind = 0; kind < 2; kind++) {
		struct moe_norm_params p = { .kind = (enum moe_norm_kind)kind, .rows = 4, .cols = 777, .eps = 0.0f,
					     .in_dtype = MOE_DTYPE_F32, .weight_dtype = MOE_DTYPE_F32,
					     .out_dtype = MOE_DTYPE_F32 };
		float *x = malloc(sizeof(float) * 4 * 777), *w = malloc(sizeof(float) * 777);
		ck_assert(x && w);
		for (int k = 0; k < 4 * 777; k++)
			x[k] = (float)(1000.0 + rng_normal());
		for (int j = 0; j < 777; j++)
			w[j] = (float)rng_normal();
		int tested = 0;
		check_all(&p, x, w, &tested);
		ck_assert_int_ge(tested, 1);
		free(x);
		free(w);
	}
}
END_TEST

/* Rows holding NaN or an infinity, and a constant row with eps = 0 (0 * inf): every variant must
 * produce exactly the fp32 reference's NaN pattern and the same finite values (mu and rstd are NaN,
 * infinite or 0 there, so no summation-order freedom is left). */
START_TEST(test_nonfinite_rows)
{
	const int64_t n = 37;
	for (int kind = 0; kind < 2; kind++) {
		for (int c = 0; c < 4; c++) {
			struct moe_norm_params p = { .kind = (enum moe_norm_kind)kind, .rows = 1, .cols = n,
						     .eps = c == 3 ? 0.0f : 1e-5f, .in_dtype = MOE_DTYPE_F32,
						     .weight_dtype = MOE_DTYPE_F32, .out_dtype = MOE_DTYPE_F32 };
			float x[37], w[37], yr[37], y[37];
			for (int j = 0; j < n; j++) {
				x[j] = c == 3 ? (kind ? 0.0f : 2.5f) : (float)(j - 18) * 0.25f;
				w[j] = 1.0f + (float)j / 64.0f;
			}
			if (c == 0)
				x[20] = NAN;
			if (c == 1)
				x[5] = INFINITY;
			if (c == 2)
				x[36] = -INFINITY;
			moe_norm__ref(&p, x, w, yr);
			for (size_t i = 0; i < moe_builtin_count(); i++) {
				const struct moe_builtin *b = moe_builtin_at(i);
				if (!moe_backend_provides(b->table, MOE_OP_NORM, &p) || b->isa > moe_isa_hardware())
					continue;
				b->table->norm(&p, x, w, y);
				for (int j = 0; j < n; j++) {
					ck_assert_msg(isnan(y[j]) == isnan(yr[j]), "%s kind %d case %d j %d: %g vs ref %g",
						      b->table->name, kind, c, j, y[j], yr[j]);
					if (!isnan(yr[j]))
						ck_assert_msg(moe_f32_bits(y[j]) == moe_f32_bits(yr[j]),
							      "%s kind %d case %d j %d: %g vs ref %g", b->table->name,
							      kind, c, j, y[j], yr[j]);
				}
			}
		}
	}
}
END_TEST

/* The one-pass variant (moe_norm__avx512bf16_dot) on rows of every kind it must tell apart, in one
 * call so that each row's statistics are taken while the previous row is written: ordinary rows
 * (fast path), rows with |mean| >> spread (64 + N(0, 1/2): the one-pass variance would cancel, so
 * the two passes), rows of 1e-18 (mean square below the 2^-90 guard), rows holding bf16 subnormals among
 * normal values (fast path; vdpbf16ps flushes them), constant rows (LayerNorm: two passes) and a
 * row with a zero weight in the table (every row written twice). Against the a-priori bound, at
 * widths below the 256-column threshold and with tails of the 128- and 32-element steps. */
START_TEST(test_dot_mixed_rows)
{
	static const int64_t cols[] = { 255, 2339 };
	static const enum moe_dtype dts[2] = { MOE_DTYPE_F32, MOE_DTYPE_BF16 };
	rng_state = 4242;
	double worst = 0;
	for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
		for (int combo = 0; combo < 16; combo++) {
			struct moe_norm_params p = {
				.kind = (combo & 1) ? MOE_NORM_RMSNORM : MOE_NORM_LAYERNORM,
				.rows = 7, .cols = cols[ci], .eps = (combo & 8) ? 0.0f : 1e-5f,
				.in_dtype = MOE_DTYPE_BF16, .weight_dtype = dts[(combo >> 1) & 1],
				.out_dtype = dts[(combo >> 2) & 1],
			};
			const int64_t n = p.cols;
			void *x = malloc((size_t)(p.rows * n) * 2), *w = malloc((size_t)n * 4);
			ck_assert(x && w);
			for (int64_t r = 0; r < p.rows; r++) {
				for (int64_t j = 0; j < n; j++) {
					const double g = rng_normal();
					double v = g * 3.0 + 0.5;
					if (r == 1)
						v = 64.0 + 0.5 * g;
					else if (r == 2)
						v = 1e-18 * g;
					else if (r == 3 && j % 50 == 7)
						v = 1e-39 * (1 + j % 5);
					else if (r == 4 && p.eps > 0) /* with eps = 0 it is 0 * inf */
						v = 2.5;
					put(x, MOE_DTYPE_BF16, r * n + j, (float)v);
				}
			}
			for (int64_t j = 0; j < n; j++)
				put(w, p.weight_dtype, j, (combo & 8) && j == n / 2 ? 0.0f : (float)(1.0 + 0.3 * rng_normal()));
			int tested = 0;
			const double q = check_all(&p, x, w, &tested);
			worst = q > worst ? q : worst;
			ck_assert_int_ge(tested, 1);
			free(x);
			free(w);
		}
	}
	ck_assert_msg(worst > 1e-3, "worst error/bound %.3g: the bound is far too loose", worst);
}
END_TEST

/* Rows whose sums are exact in any order (bf16 integers in +-v pairs: sum 0, sum of squares an
 * integer below 2^24), so every correct fp32 kernel has mu = 0 and the reference's rstd, and its
 * output must equal the fp32 reference bit for bit, whichever path computed the statistics.
 * Between such rows: a NaN row and an infinite row (two passes; the reference's NaN pattern); the
 * weights: ordinary, with every third one tiny (bf16 subnormal outputs: the vcvtne2ps2bf16 path
 * must write those rows again exactly), with a zero, or with a NaN (no pair path at all). */
START_TEST(test_dot_exact_rows_bitwise)
{
	const struct moe_builtin *dot = moe_builtin_find("moe_norm__avx512bf16_dot");
	ck_assert_ptr_nonnull(dot);
	if (moe_isa_hardware() < MOE_ISA_AVX512_BF16) {
		fprintf(stderr, "test_kernels_norm: AVX512_BF16 unavailable here, moe_norm__avx512bf16_dot skipped\n");
		return;
	}
	static const int64_t cols[] = { 290, 1155 };
	static const enum moe_dtype dts[2] = { MOE_DTYPE_F32, MOE_DTYPE_BF16 };
	rng_state = 777;
	long subnormal_outputs = 0, compared = 0;
	for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
		for (int combo = 0; combo < 32; combo++) {
			struct moe_norm_params p = {
				.kind = (combo & 1) ? MOE_NORM_RMSNORM : MOE_NORM_LAYERNORM,
				.rows = 5, .cols = cols[ci], .eps = 1e-5f, .in_dtype = MOE_DTYPE_BF16,
				.weight_dtype = dts[(combo >> 1) & 1], .out_dtype = dts[(combo >> 2) & 1],
			};
			const int wmode = combo >> 3; /* 0 ordinary, 1 tiny, 2 zero, 3 NaN */
			const int64_t n = p.cols, total = p.rows * n;
			moe_bf16 *x = malloc((size_t)total * 2);
			void *w = malloc((size_t)n * 4), *y = malloc((size_t)total * 4), *yr = malloc((size_t)total * 4);
			ck_assert(x && w && y && yr);
			for (int64_t r = 0; r < p.rows; r++) {
				for (int64_t j = 0; j + 1 < n; j += 2) {
					const float v = (float)(1 + (int)(rng_uniform() * 3.0));
					x[r * n + j] = moe_f32_to_bf16(v);
					x[r * n + j + 1] = moe_f32_to_bf16(-v);
				}
				if (n % 2)
					x[r * n + n - 1] = moe_f32_to_bf16(0.0f);
			}
			x[1 * n + 17] = moe_f32_to_bf16(NAN);
			x[3 * n + 3] = moe_f32_to_bf16(-INFINITY);
			for (int64_t j = 0; j < n; j++) {
				float wj = (float)(1.0 + 0.3 * rng_normal());
				if (wmode == 1 && j % 3 == 0)
					wj = 1e-39f * (float)(1 + j % 7);
				if (wmode == 2 && j == 11)
					wj = 0.0f;
				if (wmode == 3 && j == 5)
					wj = NAN;
				put(w, p.weight_dtype, j, wj);
			}
			moe_norm__ref(&p, x, w, yr);
			dot->table->norm(&p, x, w, y);
			for (int64_t k = 0; k < total; k++) {
				const double a = get(y, p.out_dtype, k), b = get(yr, p.out_dtype, k);
				ck_assert_msg(isnan(a) == isnan(b) && (isnan(a) || moe_f32_bits((float)a) == moe_f32_bits((float)b)),
					      "%s cols %lld combo %d element %lld: %.9g vs ref %.9g",
					      moe_norm_kind_name(p.kind), (long long)n, combo, (long long)k, a, b);
				subnormal_outputs += !isnan(b) && b != 0 && fabs(b) < FLT_MIN;
				compared++;
			}
			free(x);
			free(w);
			free(y);
			free(yr);
		}
	}
	ck_assert_int_gt(subnormal_outputs, 100);
	fprintf(stderr, "test_kernels_norm: one-pass variant bitwise: %ld elements, %ld subnormal\n", compared,
		subnormal_outputs);
}
END_TEST

/* The one-pass variant takes bf16 input only; f32 input goes to the variants after it. */
START_TEST(test_dot_supports)
{
	const struct moe_builtin *dot = moe_builtin_find("moe_norm__avx512bf16_dot");
	ck_assert_ptr_nonnull(dot);
	struct moe_norm_params p = { .kind = MOE_NORM_LAYERNORM, .rows = 1, .cols = 8, .eps = 1e-5f,
				     .in_dtype = MOE_DTYPE_BF16, .weight_dtype = MOE_DTYPE_F32,
				     .out_dtype = MOE_DTYPE_F32 };
	ck_assert(dot->table->supports(MOE_OP_NORM, &p));
	p.in_dtype = MOE_DTYPE_F32;
	ck_assert(!dot->table->supports(MOE_OP_NORM, &p));
	ck_assert(!dot->table->supports(MOE_OP_ROUTE, &p));
}
END_TEST

START_TEST(test_zero_rows_writes_nothing)
{
	struct moe_norm_params p = { .kind = MOE_NORM_LAYERNORM, .rows = 0, .cols = 16, .eps = 1e-5f,
				     .in_dtype = MOE_DTYPE_F32, .weight_dtype = MOE_DTYPE_F32,
				     .out_dtype = MOE_DTYPE_BF16 };
	float w[16];
	moe_bf16 y[16];
	for (int j = 0; j < 16; j++)
		w[j] = 1.0f;
	for (size_t i = 0; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (!moe_backend_provides(b->table, MOE_OP_NORM, &p) || b->isa > moe_isa_hardware())
			continue;
		memset(y, 0x5a, sizeof y);
		b->table->norm(&p, NULL, w, y);
		for (int j = 0; j < 16; j++)
			ck_assert_uint_eq(y[j], 0x5a5a);
	}
}
END_TEST

/* Bad parameters are the boundary's business (moe_norm_validate), which the kernels assert; the
 * variants' supports() accept exactly the norm op. */
START_TEST(test_bad_params_and_supports)
{
	struct moe_norm_params p = { .kind = MOE_NORM_RMSNORM, .rows = 1, .cols = 0, .eps = 1e-5f,
				     .in_dtype = MOE_DTYPE_F32, .weight_dtype = MOE_DTYPE_F32,
				     .out_dtype = MOE_DTYPE_F32 };
	ck_assert_int_eq(moe_norm_validate(&p), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "cols=0"));
	p.cols = 8;
	p.out_dtype = MOE_DTYPE_NVFP4;
	ck_assert_int_eq(moe_norm_validate(&p), MOE_ERR_INVALID_ARG);
	const struct moe_builtin *b = moe_builtin_find("moe_norm__avx2");
	ck_assert_ptr_nonnull(b);
	ck_assert(!moe_backend_provides(b->table, MOE_OP_ROUTE, NULL));
	ck_assert(b->table->supports(MOE_OP_NORM, NULL));
	ck_assert(!b->table->supports(MOE_OP_EXPERT, NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kernels_norm");
	TCase *tc = tcase_create("norm");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_list_has_both_isas);
	tcase_add_test(tc, test_random_all_dtypes);
	tcase_add_test(tc, test_bf16_output_matches_avx512_bitwise);
	tcase_add_test(tc, test_offset_mean_and_zero_eps);
	tcase_add_test(tc, test_nonfinite_rows);
	tcase_add_test(tc, test_dot_mixed_rows);
	tcase_add_test(tc, test_dot_exact_rows_bitwise);
	tcase_add_test(tc, test_dot_supports);
	tcase_add_test(tc, test_zero_rows_writes_nothing);
	tcase_add_test(tc, test_bad_params_and_supports);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
