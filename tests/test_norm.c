/* Unit tests of the reference norms (reference/norm.c, reference/norm_f64.c).
 *
 * Expected values come from hand calculation (worked next to each value) or from a long double
 * computation in this file. The fp32 reference is held to an a-priori bound against the exact
 * value, derived here for its documented order of operations. Notation: n = cols, u = 2^-24,
 * g(k) = k*u / (1 - k*u), A = sum|x|/n, V = the exact (population) variance, R = 1/sqrt(V + eps),
 * Y = the exact output, w the weight.
 *
 * LayerNorm. The sequential sum of n terms is off by at most g(n-1)*n*A, the division by n adds u:
 * the computed mean is mu + e with |e| <= g(n)*A. Then d = fl(x - mu - e) = (x - mu - e)(1 + u1),
 * and sum (x - mu - e)^2 = n*V + n*e^2 because sum (x - mu) = 0, so the variance is
 * (V + e^2)(1 + t) with |t| <= g(n+3) (square, n-1 additions, the division, the two roundings of
 * d), and g(n+4) after adding eps. sqrt and the reciprocal add u each and halve t, so
 * r = R (1 + r1) with |r1| <= (n/2 + 4)u + e^2 R^2 / 2 to first order. The output
 * y = fl(w * fl(d * r)) carries two more roundings and the rounding of d:
 *     |y - Y| <= |w| R |e| (1 + h) + |Y| h,   h = (n/2 + 7)u + (e R)^2 / 2,
 * and we check the looser
 *     |y - Y| <= |w| R g(n) A (1 + h) + |Y| h,   h = (n/2 + 8)u + (g(n) A R)^2,
 * which also covers the second-order terms left out above.
 * RMSNorm has no mean: the mean square is off by g(n+1) relative, g(n+2) with eps, and
 *     |y - Y| <= |Y| (n/2 + 8)u.
 * A bf16 output adds the rounding to bf16, at most 2^-8 relative: |y_bf16 - y| <= 2^-8 |y|.
 * The f64 twin is off from the exact value by about 2^-29 of the fp32 bound; a factor
 * (1 + 2^-20) on the bound covers it. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"

static const enum moe_dtype dtypes[2] = { MOE_DTYPE_F32, MOE_DTYPE_BF16 };

static void *make(enum moe_dtype t, const float *v, size_t n)
{
	void *p = malloc(n * (t == MOE_DTYPE_BF16 ? sizeof(moe_bf16) : sizeof(float)));
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		if (t == MOE_DTYPE_BF16)
			((moe_bf16 *)p)[i] = moe_f32_to_bf16(v[i]);
		else
			((float *)p)[i] = v[i];
	}
	return p;
}

static void *make_out(enum moe_dtype t, size_t n)
{
	void *p = calloc(n, t == MOE_DTYPE_BF16 ? sizeof(moe_bf16) : sizeof(float));
	ck_assert_ptr_nonnull(p);
	return p;
}

static float out_at(enum moe_dtype t, const void *y, size_t i)
{
	return t == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)y)[i]) : ((const float *)y)[i];
}

static struct moe_norm_params params(enum moe_norm_kind kind, int64_t rows, int64_t cols, float eps)
{
	return (struct moe_norm_params){
		.kind = kind, .rows = rows, .cols = cols, .eps = eps,
		.in_dtype = MOE_DTYPE_F32, .weight_dtype = MOE_DTYPE_F32, .out_dtype = MOE_DTYPE_F32,
	};
}

/* Runs one row of 4 through every dtype combination. f32 outputs must be within 16u of the hand
 * value (the bound above for n = 4 and an exact mean is 10u) or equal when `exact`; bf16 outputs
 * must equal the hand-rounded bf16 values. Inputs are bf16-exact so the input dtype changes
 * nothing. The f64 twin must match the hand value to 2^-50. */
static void hand_row(enum moe_norm_kind kind, const float x[4], const float w[4], float eps, const double expect[4],
		     const float expect_bf16[4], bool exact)
{
	for (int a = 0; a < 2; a++)
		for (int b = 0; b < 2; b++)
			for (int c = 0; c < 2; c++) {
				struct moe_norm_params p = params(kind, 1, 4, eps);
				p.in_dtype = dtypes[a];
				p.weight_dtype = dtypes[b];
				p.out_dtype = dtypes[c];
				ck_assert_int_eq(moe_norm_validate(&p), MOE_OK);
				void *xb = make(p.in_dtype, x, 4), *wb = make(p.weight_dtype, w, 4);
				void *y = make_out(p.out_dtype, 4);
				moe_norm__ref(&p, xb, wb, y);
				for (int j = 0; j < 4; j++) {
					const float got = out_at(p.out_dtype, y, (size_t)j);
					if (p.out_dtype == MOE_DTYPE_BF16)
						ck_assert_msg(got == expect_bf16[j], "%s in=%s w=%s out=bf16 [%d]: %.9g, want %.9g",
							      moe_norm_kind_name(kind), moe_dtype_name(p.in_dtype),
							      moe_dtype_name(p.weight_dtype), j, got, expect_bf16[j]);
					else if (exact)
						ck_assert_msg(got == (float)expect[j], "%s [%d]: %.9g, want %.9g",
							      moe_norm_kind_name(kind), j, got, expect[j]);
					else
						ck_assert_msg(fabs(got - expect[j]) <= 16 * 0x1p-24 * fabs(expect[j]),
							      "%s [%d]: %.9g, want %.12g", moe_norm_kind_name(kind), j, got,
							      expect[j]);
				}
				double y64[4];
				moe_norm_ref_f64(&p, xb, wb, y64);
				for (int j = 0; j < 4; j++)
					ck_assert_msg(fabs(y64[j] - expect[j]) <= 0x1p-50 * fabs(expect[j]), "f64 [%d]: %.17g",
						      j, y64[j]);
				free(xb);
				free(wb);
				free(y);
			}
}

static const float x1234[4] = { 1, 2, 3, 4 };
static const float wmix[4] = { 1, -2, 0.5f, 3 };

START_TEST(test_layernorm_hand)
{
	/* x = [1,2,3,4]: mean 10/4 = 2.5, x - mean = [-1.5,-0.5,0.5,1.5], squares sum to
	 * 2.25+0.25+0.25+2.25 = 5, var = 5/4 = 1.25. eps = 0: rstd = 1/sqrt(1.25) = 2/sqrt(5)
	 * = 0.894427190999916, z = [-1.341640786499874, -0.447213595499958, 0.447213595499958,
	 * 1.341640786499874], y = w*z with w = [1,-2,0.5,3]. */
	static const double y0[4] = { -1.341640786499874, 0.894427190999916, 0.223606797749979,
				      4.024922359499622 };
	/* bf16 (8 significant bits), by hand:
	 * 1.3416408 in [1,2), step 2^-7: 1.3416408*128 = 171.73 -> 172/128 = 1.34375;
	 * 0.8944272 in [0.5,1), step 2^-8: *256 = 228.97 -> 229/256 = 0.89453125;
	 * 0.2236068 in [0.125,0.25), step 2^-10: *1024 = 228.97 -> 229/1024 = 0.2236328125;
	 * 4.0249224 in [4,8), step 2^-5: *32 = 128.80 -> 129/32 = 4.03125. */
	static const float y0_bf16[4] = { -1.34375f, 0.89453125f, 0.2236328125f, 4.03125f };
	hand_row(MOE_NORM_LAYERNORM, x1234, wmix, 0.0f, y0, y0_bf16, false);

	/* eps = 2.75: var + eps = 4, rstd = 0.5 exactly, z = [-0.75,-0.25,0.25,0.75],
	 * y = [-0.75, 0.5, 0.125, 2.25], every step exact in fp32 and bf16. */
	static const double y1[4] = { -0.75, 0.5, 0.125, 2.25 };
	static const float y1_bf16[4] = { -0.75f, 0.5f, 0.125f, 2.25f };
	hand_row(MOE_NORM_LAYERNORM, x1234, wmix, 2.75f, y1, y1_bf16, true);
}
END_TEST

START_TEST(test_rmsnorm_hand)
{
	/* x = [1,2,3,4]: sum of squares 1+4+9+16 = 30, mean square 7.5. eps = 0:
	 * rstd = 1/sqrt(7.5) = 0.365148371670111, z = x*rstd = [0.365148371670111, 0.730296743340221,
	 * 1.095445115010332, 1.460593486680443], y = w*z. */
	static const double y0[4] = { 0.365148371670111, -1.460593486680443, 0.547722557505166,
				      4.381780460041329 };
	/* bf16: 0.3651484 in [0.25,0.5), step 2^-9: *512 = 186.96 -> 187/512 = 0.365234375;
	 * 1.4605935 in [1,2), step 2^-7: *128 = 186.96 -> 187/128 = 1.4609375;
	 * 0.5477226 in [0.5,1), step 2^-8: *256 = 140.22 -> 140/256 = 0.546875;
	 * 4.3817805 in [4,8), step 2^-5: *32 = 140.22 -> 140/32 = 4.375. */
	static const float y0_bf16[4] = { 0.365234375f, -1.4609375f, 0.546875f, 4.375f };
	hand_row(MOE_NORM_RMSNORM, x1234, wmix, 0.0f, y0, y0_bf16, false);

	/* eps = 8.5: 7.5 + 8.5 = 16, rstd = 0.25 exactly, z = [0.25,0.5,0.75,1],
	 * y = [0.25, -1, 0.375, 3]. */
	static const double y1[4] = { 0.25, -1, 0.375, 3 };
	static const float y1_bf16[4] = { 0.25f, -1.0f, 0.375f, 3.0f };
	hand_row(MOE_NORM_RMSNORM, x1234, wmix, 8.5f, y1, y1_bf16, true);
}
END_TEST

START_TEST(test_constant_and_single)
{
	float y[4];
	double y64[4];
	/* constant LayerNorm row: mean 7, every x - mean = 0, var 0, rstd = 1/sqrt(1e-5) finite,
	 * y = w * 0 = 0 */
	static const float seven[4] = { 7, 7, 7, 7 };
	struct moe_norm_params p = params(MOE_NORM_LAYERNORM, 1, 4, 1e-5f);
	moe_norm__ref(&p, seven, wmix, y);
	moe_norm_ref_f64(&p, seven, wmix, y64);
	for (int j = 0; j < 4; j++) {
		ck_assert(y[j] == 0.0f);
		ck_assert(y64[j] == 0.0);
	}
	/* with eps = 0 the same row is 0 * 1/sqrt(0) = 0 * inf = NaN, as in torch */
	p.eps = 0.0f;
	moe_norm__ref(&p, seven, wmix, y);
	for (int j = 0; j < 4; j++)
		ck_assert(isnan(y[j]));

	/* one column: LayerNorm of a single value is 0 (it is its own mean) */
	static const float five = 5, two = 2, three = 3;
	p = params(MOE_NORM_LAYERNORM, 1, 1, 1e-5f);
	moe_norm__ref(&p, &five, &two, y);
	ck_assert(y[0] == 0.0f);
	/* RMSNorm of x = 3, eps 0, w 2: ms 9, rstd = fl(1/3) = 0.3333333432674408,
	 * 3 * 0.3333333432674408 = 1.0000000298 rounds to 1.0 (within half an ulp of 1, 5.96e-8),
	 * y = 2 * 1 = 2 exactly */
	p = params(MOE_NORM_RMSNORM, 1, 1, 0.0f);
	moe_norm__ref(&p, &three, &two, y);
	ck_assert_float_eq(y[0], 2.0f);

	/* all-zero RMSNorm row: 0 with eps > 0, NaN (0 * inf) with eps = 0 */
	static const float zeros[4] = { 0, 0, 0, 0 };
	p = params(MOE_NORM_RMSNORM, 1, 4, 1e-6f);
	moe_norm__ref(&p, zeros, wmix, y);
	for (int j = 0; j < 4; j++)
		ck_assert(y[j] == 0.0f);
	p.eps = 0.0f;
	moe_norm__ref(&p, zeros, wmix, y);
	for (int j = 0; j < 4; j++)
		ck_assert(isnan(y[j]));

	/* rows = 0 touches nothing: NULL buffers are fine */
	p = params(MOE_NORM_LAYERNORM, 0, 4, 1e-5f);
	ck_assert_int_eq(moe_norm_validate(&p), MOE_OK);
	moe_norm__ref(&p, NULL, NULL, NULL);
	moe_norm_ref_f64(&p, NULL, NULL, NULL);
}
END_TEST

/* The final cast to bf16 rounds to nearest, ties to even, once. x = [1,3,1,3]: mean 2,
 * x - mean = [-1,1,-1,1], var 1, eps 3 -> rstd = 1/sqrt(4) = 0.5 exactly, z = [-0.5,0.5,-0.5,0.5].
 * fp32 weights chosen so that y = w*z lands on or near bf16 midpoints (bf16 step at 1 is 2^-7):
 *   w0 = 2 + 2^-7          -> y0 = -(1 + 2^-8)          midpoint of -1 (even) and -(1+2^-7): -1      0xbf80
 *   w1 = 2 + 3*2^-7        -> y1 = 1 + 3*2^-8           midpoint of 1+2^-7 (odd) and 1+2^-6: 1+2^-6  0x3f82
 *   w2 = 2 + 2^-7 + 2^-20  -> y2 = -(1 + 2^-8 + 2^-21)  just past the midpoint: -(1+2^-7)            0xbf81
 *   w3 = 2 + 2^-6          -> y3 = 1 + 2^-7             a bf16 value, kept                           0x3f81 */
START_TEST(test_bf16_output_rounding)
{
	static const float x[4] = { 1, 3, 1, 3 };
	const float w[4] = { 2 + 0x1p-7f, 2 + 3 * 0x1p-7f, 2 + 0x1p-7f + 0x1p-20f, 2 + 0x1p-6f };
	const float yf[4] = { -(1 + 0x1p-8f), 1 + 3 * 0x1p-8f, -(1 + 0x1p-8f + 0x1p-21f), 1 + 0x1p-7f };
	static const moe_bf16 bits[4] = { 0xbf80, 0x3f82, 0xbf81, 0x3f81 };
	for (int a = 0; a < 2; a++) {
		struct moe_norm_params p = params(MOE_NORM_LAYERNORM, 1, 4, 3.0f);
		p.in_dtype = dtypes[a];
		void *xb = make(p.in_dtype, x, 4);
		float y32[4];
		moe_bf16 y16[4];
		moe_norm__ref(&p, xb, w, y32);
		for (int j = 0; j < 4; j++)
			ck_assert_msg(y32[j] == yf[j], "f32 [%d]: %a, want %a", j, y32[j], yf[j]);
		p.out_dtype = MOE_DTYPE_BF16;
		moe_norm__ref(&p, xb, w, y16);
		for (int j = 0; j < 4; j++)
			ck_assert_msg(y16[j] == bits[j], "bf16 [%d]: 0x%04x, want 0x%04x", j, y16[j], bits[j]);
		free(xb);
	}
}
END_TEST

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 11;
}

static float uniform(uint64_t *s) /* [-1, 1) with 24 random bits */
{
	return (float)((int64_t)(lcg(s) >> 29) - (1 << 23)) * 0x1p-23f;
}

/* Long double LayerNorm/RMSNorm of fp32 inputs, two passes, and the bound of the file comment. */
static void exact_row(enum moe_norm_kind kind, const float *x, const float *w, int64_t n, float eps,
		      long double *Y, long double *bound)
{
	const long double u = 0x1p-24L, g = n * u / (1 - n * u);
	long double s = 0, a = 0, q = 0;
	for (int64_t j = 0; j < n; j++) {
		s += x[j];
		a += fabsl((long double)x[j]);
	}
	const long double mean = kind == MOE_NORM_LAYERNORM ? s / n : 0, A = a / n;
	for (int64_t j = 0; j < n; j++)
		q += ((long double)x[j] - mean) * ((long double)x[j] - mean);
	const long double R = 1 / sqrtl(q / n + eps);
	for (int64_t j = 0; j < n; j++) {
		Y[j] = (long double)w[j] * (((long double)x[j] - mean) * R);
		if (kind == MOE_NORM_LAYERNORM) {
			const long double h = (n / 2.0L + 8) * u + (g * A * R) * (g * A * R);
			bound[j] = fabsl((long double)w[j]) * R * g * A * (1 + h) + fabsl(Y[j]) * h;
		} else {
			bound[j] = fabsl(Y[j]) * (n / 2.0L + 8) * u;
		}
		bound[j] *= 1 + 0x1p-20L;
	}
}

/* x = fl(1e4 + s) with s random in [-1, 1): |mean| is 10^4 times the spread, and the fp32 sums
 * (step 2^-6 near 1.6e5) round. x - mean is exact in fp32 (Sterbenz), so the two-pass variance
 * stays accurate and y is within the bound, while the one-pass E[x^2] - E[x]^2 in fp32 loses
 * everything. */
START_TEST(test_large_offset)
{
	enum { N = 16 };
	float x[N], w[N], y[N];
	long double Y[N], bound[N];
	uint64_t seed = 7;
	for (int j = 0; j < N; j++) {
		x[j] = 10000.0f + uniform(&seed);
		w[j] = (j % 3 == 0) ? -1.25f : 0.75f;
	}
	struct moe_norm_params p = params(MOE_NORM_LAYERNORM, 1, N, 1e-5f);
	moe_norm__ref(&p, x, w, y);
	exact_row(MOE_NORM_LAYERNORM, x, w, N, p.eps, Y, bound);
	long double max_err = 0, max_bound = 0;
	for (int j = 0; j < N; j++) {
		const long double err = fabsl(y[j] - Y[j]);
		ck_assert_msg(err <= bound[j], "[%d]: %.9g vs %.12Lg (bound %.3Lg)", j, y[j], Y[j], bound[j]);
		max_err = fmaxl(max_err, err);
		max_bound = fmaxl(max_bound, bound[j]);
	}
	/* The bound still means something here: about 2% of outputs of size ~1 (g(16) * 1e4 * R * |w|
	 * = 16 * 2^-24 * 1e4 * 1.7 * 1.25 = 0.021); the error observed is about 4e-4. */
	ck_assert(max_bound < 0.05L);

	/* The naive one-pass variance in fp32 on the same row, for contrast: s2/N and mean^2 are fp32
	 * numbers near 1e8, whose step is 8, so their difference is a multiple of 8 while the true
	 * variance is about 1/3: it cannot come within 50% of it. */
	float s = 0, s2 = 0;
	for (int j = 0; j < N; j++) {
		s += x[j];
		s2 += x[j] * x[j];
	}
	const float mean = s / N, var1 = s2 / N - mean * mean;
	long double true_var = 0;
	for (int j = 0; j < N; j++)
		true_var += ((long double)x[j] - mean) * ((long double)x[j] - mean) / N;
	ck_assert_msg(fabsl(var1 - true_var) > 0.5L * true_var, "one-pass var %.6g vs %.6Lg", var1, true_var);
	ck_assert(max_err < max_bound);
}
END_TEST

START_TEST(test_nan_inf_propagation)
{
	/* three rows; the middle one holds a NaN: it becomes all NaN, the others are untouched and equal
	 * to the same rows normalized on their own */
	const float x[12] = { 1, 2, 3, 4, 5, 6, NAN, 8, -1, 0.5f, 2, -3 };
	for (int k = 0; k < 2; k++) {
		for (int o = 0; o < 2; o++) {
			struct moe_norm_params p = params((enum moe_norm_kind)k, 3, 4, 1e-5f);
			p.out_dtype = dtypes[o];
			void *y = make_out(p.out_dtype, 12), *ya = make_out(p.out_dtype, 4), *yc = make_out(p.out_dtype, 4);
			moe_norm__ref(&p, x, wmix, y);
			p.rows = 1;
			moe_norm__ref(&p, x, wmix, ya);
			moe_norm__ref(&p, x + 8, wmix, yc);
			for (int j = 0; j < 4; j++) {
				ck_assert(isnan(out_at(p.out_dtype, y, (size_t)(4 + j))));
				ck_assert(out_at(p.out_dtype, y, (size_t)j) == out_at(p.out_dtype, ya, (size_t)j));
				ck_assert(out_at(p.out_dtype, y, (size_t)(8 + j)) == out_at(p.out_dtype, yc, (size_t)j));
				ck_assert(isfinite(out_at(p.out_dtype, y, (size_t)j)));
			}
			double y64[12];
			p.rows = 3;
			moe_norm_ref_f64(&p, x, wmix, y64);
			for (int j = 0; j < 4; j++)
				ck_assert(isnan(y64[4 + j]) && isfinite(y64[j]) && isfinite(y64[8 + j]));
			free(y);
			free(ya);
			free(yc);
		}
	}
	/* +inf: LayerNorm mean inf, inf - inf = NaN everywhere. RMSNorm: mean square inf, rstd 0, the
	 * finite elements become w * (x * 0) = 0 and the infinite one inf * 0 = NaN (torch does the
	 * same). */
	const float xi[4] = { 1, INFINITY, 2, 3 };
	float y[4];
	struct moe_norm_params p = params(MOE_NORM_LAYERNORM, 1, 4, 1e-5f);
	moe_norm__ref(&p, xi, wmix, y);
	for (int j = 0; j < 4; j++)
		ck_assert(isnan(y[j]));
	p.kind = MOE_NORM_RMSNORM;
	moe_norm__ref(&p, xi, wmix, y);
	ck_assert(y[0] == 0.0f && isnan(y[1]) && y[2] == 0.0f && y[3] == 0.0f);
}
END_TEST

/* The fp32 reference against its f64 twin on random rows, inputs f32 and bf16, outputs f32 and
 * bf16, within the bound of the file comment (the f64 value standing in for the exact one). */
START_TEST(test_f32_against_f64)
{
	static const int64_t sizes[] = { 1, 3, 64, 1000, 4096 };
	static const float offsets[] = { 0.0f, 3.0f, -40.0f }, spreads[] = { 2.0f, 2.0f, 4.0f };
	enum { ROWS = 3 };
	uint64_t seed = 12345;
	long double worst = 0;
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		const int64_t n = sizes[si];
		float *x = malloc(sizeof(float) * (size_t)(ROWS * n)), *w = malloc(sizeof(float) * (size_t)n);
		float *y = malloc(sizeof(float) * (size_t)(ROWS * n));
		moe_bf16 *yb = malloc(sizeof(moe_bf16) * (size_t)(ROWS * n));
		double *y64 = malloc(sizeof(double) * (size_t)(ROWS * n));
		long double *Y = malloc(sizeof(long double) * (size_t)n), *bound = malloc(sizeof(long double) * (size_t)n);
		ck_assert(x && w && y && yb && y64 && Y && bound);
		for (int64_t j = 0; j < n; j++)
			w[j] = moe_round_bf16(uniform(&seed) * 1.5f + (j % 2 ? 0.5f : -0.5f));
		for (int64_t r = 0; r < ROWS; r++)
			for (int64_t j = 0; j < n; j++)
				x[r * n + j] = moe_round_bf16(offsets[r] + uniform(&seed) * spreads[r]);
		for (int k = 0; k < 2; k++) {
			for (int a = 0; a < 2; a++) {
				struct moe_norm_params p = params((enum moe_norm_kind)k, ROWS, n, 1e-6f);
				p.in_dtype = dtypes[a];
				p.weight_dtype = dtypes[a];
				void *xb = make(p.in_dtype, x, (size_t)(ROWS * n)), *wb = make(p.weight_dtype, w, (size_t)n);
				moe_norm__ref(&p, xb, wb, y);
				moe_norm_ref_f64(&p, xb, wb, y64);
				p.out_dtype = MOE_DTYPE_BF16;
				moe_norm__ref(&p, xb, wb, yb);
				for (int64_t r = 0; r < ROWS; r++) {
					exact_row(p.kind, x + r * n, w, n, p.eps, Y, bound);
					for (int64_t j = 0; j < n; j++) {
						const size_t i = (size_t)(r * n + j);
						/* the exact value and the f64 twin agree far inside the bound */
						ck_assert(fabsl(Y[j] - y64[i]) <= 0x1p-20L * bound[j] + 0x1p-60L);
						const long double e32 = fabsl(y[i] - (long double)y64[i]);
						ck_assert_msg(e32 <= bound[j], "%s n=%lld row %lld [%lld]: %.9g vs %.17g, bound %.3Lg",
							      moe_norm_kind_name(p.kind), (long long)n, (long long)r,
							      (long long)j, y[i], y64[i], bound[j]);
						if (bound[j] > 0)
							worst = fmaxl(worst, e32 / bound[j]);
						const long double b16 = bound[j] + 0x1p-8L * (fabsl(y64[i]) + bound[j]);
						ck_assert(fabsl(moe_bf16_to_f32(yb[i]) - (long double)y64[i]) <= b16);
					}
				}
				free(xb);
				free(wb);
			}
		}
		free(x);
		free(w);
		free(y);
		free(yb);
		free(y64);
		free(Y);
		free(bound);
	}
	ck_assert(worst <= 1.0L);
}
END_TEST

START_TEST(test_validate)
{
	static const struct {
		struct moe_norm_params p;
		const char *says;
	} bad[] = {
		{ { MOE_NORM_LAYERNORM, -1, 8, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "rows=-1" },
		{ { MOE_NORM_RMSNORM, 4, 0, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "cols=0" },
		{ { MOE_NORM_RMSNORM, 4, -5, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "cols=-5" },
		{ { MOE_NORM_LAYERNORM, 4, 8, -1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "eps=-1e-05" },
		{ { MOE_NORM_LAYERNORM, 4, 8, NAN, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "eps=nan" },
		{ { MOE_NORM_LAYERNORM, 4, 8, INFINITY, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "eps=inf" },
		{ { MOE_NORM_LAYERNORM, 4, 8, 1e-5f, MOE_DTYPE_FP8E4M3, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "in_dtype fp8e4m3" },
		{ { MOE_NORM_LAYERNORM, 4, 8, 1e-5f, MOE_DTYPE_NONE, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "in_dtype none" },
		{ { MOE_NORM_RMSNORM, 4, 8, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_NVFP4, MOE_DTYPE_F32 }, "weight_dtype nvfp4" },
		{ { MOE_NORM_RMSNORM, 4, 8, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, (enum moe_dtype)99 }, "out_dtype ?" },
		{ { (enum moe_norm_kind)7, 4, 8, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "kind 7" },
		{ { MOE_NORM_RMSNORM, INT64_MAX / 2, 8, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 }, "overflow" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		moe_clear_error();
		ck_assert_int_eq(moe_norm_validate(&bad[i].p), MOE_ERR_INVALID_ARG);
		ck_assert_msg(strstr(moe_last_error(), bad[i].says) && strstr(moe_last_error(), "norm"),
			      "case %zu: '%s' lacks '%s'", i, moe_last_error(), bad[i].says);
	}
	ck_assert_int_eq(moe_norm_validate(NULL), MOE_ERR_INVALID_ARG);

	/* the edges that are allowed: eps = 0, rows = 0, one column, mixed dtypes */
	struct moe_norm_params p = params(MOE_NORM_RMSNORM, 0, 1, 0.0f);
	ck_assert_int_eq(moe_norm_validate(&p), MOE_OK);
	p.in_dtype = MOE_DTYPE_BF16;
	p.out_dtype = MOE_DTYPE_BF16;
	ck_assert_int_eq(moe_norm_validate(&p), MOE_OK);
	ck_assert_str_eq(moe_norm_kind_name(MOE_NORM_LAYERNORM), "layernorm");
	ck_assert_str_eq(moe_norm_kind_name(MOE_NORM_RMSNORM), "rmsnorm");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("norm");
	TCase *tc = tcase_create("norm");
	tcase_add_test(tc, test_layernorm_hand);
	tcase_add_test(tc, test_rmsnorm_hand);
	tcase_add_test(tc, test_constant_and_single);
	tcase_add_test(tc, test_bf16_output_rounding);
	tcase_add_test(tc, test_large_offset);
	tcase_add_test(tc, test_nan_inf_propagation);
	tcase_add_test(tc, test_f32_against_f64);
	tcase_add_test(tc, test_validate);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
