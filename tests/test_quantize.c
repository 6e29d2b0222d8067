/* Unit tests of moe_quantize__ref / moe_dequantize__ref (reference/quantize*.c): every dtype and
 * scaling scheme, hand-worked blocks, the edge cases each scheme documents, and round trips whose
 * error is checked against a bound derived from the format (half a grid step at the scaled value,
 * plus the fp32 roundings of scaling and unscaling), never against the code under test. Scales are
 * checked against amaxes the test computes over its own block geometry. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "moe/moe.h"

static struct moe_qtensor make(enum moe_dtype t, enum moe_scaling s, enum moe_sf_layout l, int64_t rows, int64_t cols)
{
	struct moe_qtensor q = { .dtype = t, .scaling = s, .sf_layout = l, .rows = rows, .cols = cols };
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
	return q;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double uniform(void) /* [0, 1) */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

/* a value of either sign, magnitude up to 2^e, with a long tail of small ones */
static float rnd(int e)
{
	return (float)ldexp((2.0 * uniform() - 1.0) * pow(uniform(), 3.0), e);
}

static int binade(double a) /* floor(log2 a), a > 0 */
{
	int ex;
	frexp(a, &ex);
	return ex - 1;
}

/* distance between adjacent grid values around |y| (the step at the top of the binade of |y|
 * holds for the whole binade) */
static double step_e4m3(double a)
{
	return ldexp(1.0, (a > 0 && binade(a) > -6 ? binade(a) : -6) - 3);
}

static double step_e5m2(double a)
{
	return ldexp(1.0, (a > 0 && binade(a) > -14 ? binade(a) : -14) - 2);
}

static double step_e2m1(double a)
{
	return a < 2.0 ? 0.5 : a < 4.0 ? 1.0 : 2.0;
}

static float amax_of(const float *x, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t ld)
{
	float m = 0.0f;
	for (int64_t r = r0; r < r1; r++)
		for (int64_t c = c0; c < c1; c++)
			if (!isnan(x[r * ld + c]) && fabsf(x[r * ld + c]) > m)
				m = fabsf(x[r * ld + c]);
	return m;
}

/* ---- F32, BF16 ---- */

START_TEST(test_f32_bf16)
{
	const float x[6] = { 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -0.0f, NAN, 3.0e38f, -2.5f };
	float y[6];
	struct moe_qtensor q = make(MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, 2, 3);
	const uint32_t payload_nan = 0x7fa00001u; /* a signalling NaN with a payload survives the copy */
	float xs[6];
	memcpy(xs, x, sizeof xs);
	xs[3] = moe_f32_from_bits(payload_nan);
	moe_quantize__ref(xs, &q);
	moe_dequantize__ref(&q, y);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(moe_f32_bits(y[i]), moe_f32_bits(xs[i]));
	moe_qtensor_free(&q);

	q = make(MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, 2, 3);
	moe_quantize__ref(x, &q);
	const moe_bf16 *h = q.data;
	/* 1 + 2^-8 is the midpoint of 1.0 (0x3F80) and 1 + 2^-7 (0x3F81): even -> 0x3F80;
	 * 1 + 3 * 2^-8 is the midpoint of 0x3F81 and 0x3F82: even -> 0x3F82; -0 -> 0x8000;
	 * 3e38 = 0x7F61B1E6 rounds to 0x7F62; -2.5 = 0xC0200000 -> 0xC020 */
	ck_assert_uint_eq(h[0], 0x3f80);
	ck_assert_uint_eq(h[1], 0x3f82);
	ck_assert_uint_eq(h[2], 0x8000);
	ck_assert_uint_eq(h[3] & 0x7fc0u, 0x7fc0u);
	ck_assert_uint_eq(h[4], 0x7f62);
	ck_assert_uint_eq(h[5], 0xc020);
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[1], 1.0f + 2 * 0x1p-7f);
	ck_assert(isnan(y[3]));
	ck_assert_uint_eq(moe_f32_bits(y[4]), 0x7f620000u);
	moe_qtensor_free(&q);
}
END_TEST

/* ---- FP8 with fp32 scales ---- */

START_TEST(test_fp8_per_tensor_hand)
{
	/* amax 7: gs = 448 / 7 = 64. -3.5 * 64 = -224 = -1.75 * 2^7 -> 1 1110 110 = 0xF6;
	 * 64 = 2^6 -> 0 1101 000 = 0x68; 0.1 * 64 = 6.4 = 1.6 * 2^2 -> mantissa 4.8 -> 5 (6.5),
	 * 0 1001 101 = 0x4D; 7 * 64 = 448 -> 0x7E. Back: -3.5, 1, 6.5 / 64 = 0.1015625, 7. */
	const float x[4] = { -3.5f, 1.0f, 0.1f, 7.0f };
	struct moe_qtensor q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 1, 4);
	moe_quantize__ref(x, &q);
	const uint8_t *d = q.data;
	ck_assert_float_eq(((float *)q.scales)[0], 64.0f);
	ck_assert_uint_eq(d[0], 0xf6);
	ck_assert_uint_eq(d[1], 0x68);
	ck_assert_uint_eq(d[2], 0x4d);
	ck_assert_uint_eq(d[3], 0x7e);
	float y[4];
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[0], -3.5f);
	ck_assert_float_eq(y[1], 1.0f);
	ck_assert_float_eq(y[2], 0.1015625f);
	ck_assert_float_eq(y[3], 7.0f);
	moe_qtensor_free(&q);

	/* E5M2, amax 4: gs = 57344 / 4 = 14336 = 1.75 * 2^13 -> 0 11100 11 = 0x73; 2 * 14336 = 1.75 * 2^14
	 * -> 0x77; -4 * 14336 = -57344 -> 0xFB */
	const float z[3] = { 1.0f, 2.0f, -4.0f };
	q = make(MOE_DTYPE_FP8E5M2, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 1, 3);
	moe_quantize__ref(z, &q);
	d = q.data;
	ck_assert_float_eq(((float *)q.scales)[0], 14336.0f);
	ck_assert_uint_eq(d[0], 0x73);
	ck_assert_uint_eq(d[1], 0x77);
	ck_assert_uint_eq(d[2], 0xfb);
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[0], 1.0f);
	ck_assert_float_eq(y[2], -4.0f);
	moe_qtensor_free(&q);
}
END_TEST

START_TEST(test_fp8_specials)
{
	float y[4];
	/* all zeros: gs = 1 (documented), codes 0 / 0x80, back to signed zeros */
	const float zero[4] = { 0.0f, -0.0f, 0.0f, 0.0f };
	struct moe_qtensor q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 2, 2);
	moe_quantize__ref(zero, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 1.0f);
	ck_assert_uint_eq(((uint8_t *)q.data)[1], 0x80);
	moe_dequantize__ref(&q, y);
	ck_assert_uint_eq(moe_f32_bits(y[1]), 0x80000000u);
	ck_assert_float_eq(y[0], 0.0f);

	/* an infinity: amax = inf -> gs = 1; 1 -> 0x38, 2 -> 0x40; inf saturates to 0x7E / 0xFE, or
	 * becomes NaN with its sign under the PyTorch flag */
	const float inf[4] = { INFINITY, 1.0f, -INFINITY, 2.0f };
	moe_quantize__ref(inf, &q);
	const uint8_t *d = q.data;
	ck_assert_float_eq(((float *)q.scales)[0], 1.0f);
	ck_assert_uint_eq(d[0], 0x7e);
	ck_assert_uint_eq(d[1], 0x38);
	ck_assert_uint_eq(d[2], 0xfe);
	ck_assert_uint_eq(d[3], 0x40);
	q.flags = MOE_Q_FP8_NAN_ON_OVERFLOW;
	moe_quantize__ref(inf, &q);
	ck_assert_uint_eq(d[0], 0x7f);
	ck_assert_uint_eq(d[2], 0xff);
	moe_dequantize__ref(&q, y);
	ck_assert(isnan(y[0]) && isnan(y[2]));
	ck_assert_float_eq(y[3], 2.0f);

	/* a NaN does not decide the scale: amax 2 -> gs = 224; 2 * 224 = 448 -> 0x7E; 1 * 224 = 224 ->
	 * 0x76; NaN -> 0x7F */
	const float nan[4] = { NAN, 2.0f, 1.0f, -0.0f };
	q.flags = 0;
	moe_quantize__ref(nan, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 224.0f);
	ck_assert_uint_eq(d[0], 0x7f);
	ck_assert_uint_eq(d[1], 0x7e);
	ck_assert_uint_eq(d[2], 0x76);
	moe_qtensor_free(&q);

	/* a tiny amax: 448 / 1e-40 overflows -> gs = FLT_MAX (documented), zeros stay zeros */
	const float tiny[4] = { 1e-40f, 0.0f, -1e-40f, 5e-41f };
	q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 1, 4);
	moe_quantize__ref(tiny, &q);
	ck_assert_float_eq(((float *)q.scales)[0], FLT_MAX);
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[1], 0.0f);
	ck_assert(fabsf(y[0] - 1e-40f) < 0.07f * 1e-40f); /* 1e-40 * FLT_MAX = 0.034: step 2^-8, half 6% */
	moe_qtensor_free(&q);

	/* a 1x128 block with an infinity gets s = 1; a zero block gets s = 1e-12f / 448 */
	float row[256] = { 0 };
	row[0] = INFINITY;
	row[1] = 3.0f;
	q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, 1, 256);
	moe_quantize__ref(row, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 1.0f);
	ck_assert_float_eq(((float *)q.scales)[1], 1e-12f / 448.0f);
	ck_assert_uint_eq(((uint8_t *)q.data)[0], 0x7e);
	ck_assert_uint_eq(((uint8_t *)q.data)[1], 0x44); /* 3 = 1.5 * 2^1 -> 0 1000 100 */
	ck_assert_uint_eq(((uint8_t *)q.data)[200], 0x00);
	moe_qtensor_free(&q);
}
END_TEST

/* Quantize x [rows][cols] in FP8 with `scaling`, check every scale against the test's own block
 * amax and every element against the error bound:
 *   u = 1/gs (encode scales) or s (dequant scales), y = x/u as the kernel forms it (one rounding),
 *   x' = f(q) u with one more rounding, |f(q) - y| <= step(y)/2, so
 *   |x' - x| <= u * step(y)/2 + 2^-24 |x| u/u + 2^-24 |x'| < u * step/2 + 2^-23 (|x| + |x'|),
 * with the step taken at |x/u| (1 + 2^-20) so that a rounding of y into the next binade is covered. */
static void fp8_round_trip(enum moe_dtype t, enum moe_scaling scaling, int64_t rows, int64_t cols, const float *x)
{
	const bool e5 = t == MOE_DTYPE_FP8E5M2;
	const float fmax = e5 ? 57344.0f : 448.0f;
	struct moe_qtensor q = make(t, scaling, MOE_SF_LINEAR, rows, cols);
	float *y = malloc(sizeof(float) * (size_t)(rows * cols));
	ck_assert_ptr_nonnull(y);
	moe_quantize__ref(x, &q);
	moe_dequantize__ref(&q, y);

	int64_t br = 1, bc = 128;
	switch (scaling) {
	case MOE_SCALING_PER_TENSOR: br = rows; bc = cols; break;
	case MOE_SCALING_PER_CHANNEL: br = 1; bc = cols; break;
	case MOE_SCALING_BLOCK_128x128: br = 128; break;
	default: break;
	}
	const bool encode = scaling == MOE_SCALING_PER_TENSOR || scaling == MOE_SCALING_PER_CHANNEL;
	const int64_t nbr = (rows + br - 1) / br, nbc = (cols + bc - 1) / bc;
	const float *scales = q.scales;
	for (int64_t rb = 0; rb < nbr; rb++) {
		for (int64_t cb = 0; cb < nbc; cb++) {
			const int64_t r1 = rb * br + br < rows ? rb * br + br : rows;
			const int64_t c1 = cb * bc + bc < cols ? cb * bc + bc : cols;
			const float amax = amax_of(x, rb * br, r1, cb * bc, c1, cols);
			const float want = encode ? (amax > 0 ? fmax / amax : 1.0f) : fmaxf(amax, 1e-12f) / fmax;
			ck_assert_msg(scales[rb * nbc + cb] == want, "%s %s block (%lld, %lld): %a, want %a",
				      moe_dtype_name(t), moe_scaling_name(scaling), (long long)rb, (long long)cb,
				      (double)scales[rb * nbc + cb], (double)want);
		}
	}
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c = 0; c < cols; c++) {
			const float s = scales[(r / br) * nbc + c / bc];
			const double xv = x[r * cols + c], yv = y[r * cols + c];
			const double u = encode ? 1.0 / s : s, a = fabs(xv) / u * (1 + 0x1p-20);
			const double bound = u * (e5 ? step_e5m2(a) : step_e4m3(a)) / 2 + 0x1p-23 * (fabs(xv) + fabs(yv));
			ck_assert_msg(fabs(yv - xv) <= bound, "%s %s (%lld, %lld): %a -> %a, bound %g", moe_dtype_name(t),
				      moe_scaling_name(scaling), (long long)r, (long long)c, xv, yv, bound);
		}
	}
	free(y);
	moe_qtensor_free(&q);
}

START_TEST(test_fp8_round_trips)
{
	/* 130 x 300: two 128-row bands (the second 2 rows tall), three 128-col blocks (the last 44 wide);
	 * magnitudes vary by row (2^-6 .. 2^6) and by column block, one edge block is all zeros */
	const int64_t rows = 130, cols = 300;
	float *x = malloc(sizeof(float) * rows * cols);
	ck_assert_ptr_nonnull(x);
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			x[r * cols + c] = rnd((int)(r % 13) - 6 + (int)(c / 128) * 2);
	for (int64_t c = 256; c < cols; c++)
		x[129 * cols + c] = 0.0f;
	for (int64_t c = 0; c < cols; c++)
		x[5 * cols + c] = 0.0f; /* a zero row: per-channel gs = 1 */
	static const enum moe_scaling sc[4] = { MOE_SCALING_PER_TENSOR, MOE_SCALING_PER_CHANNEL, MOE_SCALING_BLOCK_1x128,
						MOE_SCALING_BLOCK_128x128 };
	for (int i = 0; i < 4; i++) {
		fp8_round_trip(MOE_DTYPE_FP8E4M3, sc[i], rows, cols, x);
		fp8_round_trip(MOE_DTYPE_FP8E5M2, sc[i], rows, cols, x);
	}
	/* fewer columns than one block; one row; whole blocks only (cols a multiple of 128) */
	fp8_round_trip(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, 3, 100, x);
	fp8_round_trip(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, 1, 129, x);
	fp8_round_trip(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, 2, 256, x);
	fp8_round_trip(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, 129, 256, x);
	free(x);
}
END_TEST

/* The formulas are x * gs for encode scales and x / s for dequant scales, each one fp32 rounding.
 * With amax 3: s = fl(3/448) = 0x1.b6db6ep-8, gs = fl(448/3) = 0x1.2aaaaap+7 = fl(1/s). For
 * x = 0x1.724924p-7: x / s = 1.6875 exactly, the midpoint of 1.625 (0 0111 101 = 0x3D) and
 * 1.75 (0x3E), which ties to the even 0x3E; x * gs = 0x1.affffep+0 just below it -> 0x3D.
 * A block kernel multiplying by 1/s, or a per-tensor kernel dividing by 3/448, differs here.
 * Decoding: x[2] = 0x1.492494p-6 scales to 0x1.800002p+1, quantizes to 3 (0x44) per tensor and
 * decodes to 3 / gs = 0x1.492494p-6, where 3 * fl(1/gs) would be 0x1.492492p-6. In the block, 0x3E
 * decodes to fl(1.75 * s). */
START_TEST(test_fp8_operation_order)
{
	float x[128] = { 3.0f, 0x1.724924p-7f, 0x1.492494p-6f }, y[128];
	struct moe_qtensor q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, 1, 128);
	moe_quantize__ref(x, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 0x1.b6db6ep-8f);
	ck_assert_uint_eq(((uint8_t *)q.data)[1], 0x3e);
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[1], 1.75f * 0x1.b6db6ep-8f);
	moe_qtensor_free(&q);
	q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 1, 128);
	moe_quantize__ref(x, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 0x1.2aaaaap+7f);
	ck_assert_uint_eq(((uint8_t *)q.data)[1], 0x3d);
	ck_assert_uint_eq(((uint8_t *)q.data)[2], 0x44);
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[2], 0x1.492494p-6f);
	moe_qtensor_free(&q);
}
END_TEST

START_TEST(test_fp8_empty)
{
	/* 0 x 5 per-tensor: the one scale is still written, as gs = 1 */
	struct moe_qtensor q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 0, 5);
	((float *)q.scales)[0] = 123.0f;
	moe_quantize__ref(NULL, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 1.0f);
	moe_dequantize__ref(&q, NULL);
	moe_qtensor_free(&q);
	/* 2 x 0 per-channel: one gs = 1 per row */
	q = make(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, 2, 0);
	moe_quantize__ref(NULL, &q);
	ck_assert_float_eq(((float *)q.scales)[0], 1.0f);
	ck_assert_float_eq(((float *)q.scales)[1], 1.0f);
	moe_qtensor_free(&q);
}
END_TEST

/* ---- NVFP4 ---- */

static uint8_t nibble(const struct moe_qtensor *q, int64_t m, int64_t k)
{
	const uint8_t b = ((const uint8_t *)q->data)[(m * q->cols + k) / 2];
	return (k % 2) ? b >> 4 : b & 0xf;
}

static uint8_t nvfp4_sf(const struct moe_qtensor *q, int64_t m, int64_t kb)
{
	return ((const uint8_t *)q->scales)[moe_nvfp4_sf_offset(q->sf_layout, q->rows, q->cols / 16, m, kb)];
}

START_TEST(test_nvfp4_hand_block)
{
	/* gs = 1 given. vmax = 3: SF = 3 * (1 * fl(1/6)); fl(1/6) = (1/6)(1 + 2^-25), so
	 * SF = 0.5 (1 + 2^-25), which rounds to 0.5 = E4M3 0 0110 000 = 0x30, SFq = 0.5;
	 * oscale = 1 / (0.5 * 1) = 2. x * 2 and its E2M1 code:
	 *  3 -> 6 (7); -3 -> -6 (F); 1.25 -> 2.5 tie -> 2 (4); 0.375 -> 0.75 tie -> 1 (2);
	 *  0.125 -> 0.25 tie -> 0 (0); -0 -> -0 (8); 0.6 -> 1.2 -> 1 (2); 2.9 -> 5.8 -> 6 (7);
	 *  1 -> 2 (4); -1.5 -> -3 (D); 0.2 -> 0.4 -> 0.5 (1); 0.8 -> 1.6 -> 1.5 (3); 2 -> 4 (6);
	 *  -2.2 -> -4.4 -> -4 (E); 0 -> 0 (0); 0.5 -> 1 (2).
	 * Bytes, low nibble first: F7 24 80 72 D4 31 E6 20. Decode: code value * (0.5 * 1). */
	const float x[16] = { 3, -3, 1.25f, 0.375f, 0.125f, -0.0f, 0.6f, 2.9f, 1, -1.5f, 0.2f, 0.8f, 2, -2.2f, 0, 0.5f };
	const uint8_t want[8] = { 0xf7, 0x24, 0x80, 0x72, 0xd4, 0x31, 0xe6, 0x20 };
	const float back[16] = { 3, -3, 1, 0.5f, 0, -0.0f, 0.5f, 3, 1, -1.5f, 0.25f, 0.75f, 2, -2, 0, 0.5f };
	struct moe_qtensor q = make(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, 1, 16);
	q.global_scale = 1.0f;
	moe_quantize__ref(x, &q);
	ck_assert_float_eq(q.global_scale, 1.0f);
	ck_assert_uint_eq(((uint8_t *)q.scales)[0], 0x30);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(((uint8_t *)q.data)[i] == want[i], "byte %d: %02x", i, ((uint8_t *)q.data)[i]);
	float y[16];
	moe_dequantize__ref(&q, y);
	for (int i = 0; i < 16; i++)
		ck_assert_msg(moe_f32_bits(y[i]) == moe_f32_bits(back[i]), "element %d: %a", i, (double)y[i]);
	moe_qtensor_free(&q);
}
END_TEST

START_TEST(test_nvfp4_derived_global_scale)
{
	/* global_scale 0: derived from amax 3.5, gs = 2688 / 3.5 = 768 (stored back). vmax = 3.5:
	 * SF = 3.5 * (768 * fl(1/6)) = 3.5 * fl(128 (1 + 2^-25)) = 3.5 * 128 = 448 -> 0x7E.
	 * d = 448 * fl(1/768) is the decode scale, oscale = fl(1/d); elements t * 3.5/6 with t on the
	 * E2M1 grid land within a few ulps of t, so they encode to t; they decode to t * d. */
	static const float t[16] = { 6, -3, 1.5f, 2, 0.5f, 4, -1, 3, 0.5f, -6, 1, -0.5f, 1.5f, -4, 2, 3 };
	static const uint8_t code[16] = { 7, 0xd, 3, 4, 1, 6, 0xa, 5, 1, 0xf, 2, 9, 3, 0xe, 4, 5 };
	float x[16], y[16];
	for (int i = 0; i < 16; i++)
		x[i] = t[i] * 3.5f / 6.0f;
	/* The order of operations shows at midpoints: 0.4375 = 0.75 * 3.5/6. d = 0x1.2aaaacp-1 and
	 * oscale = fl(1/d) = 0x1.b6db6cp+0, one ulp below fl(768/448) = 0x1.b6db6ep+0, so
	 * 0.4375 * oscale = 0x1.7ffffep-1 < 0.75 -> 0.5 (code 1); gs / SFq would give 0.75 exactly, a tie
	 * going to 1 (code 2). */
	x[8] = 0.4375f;
	struct moe_qtensor q = make(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, 1, 16);
	moe_quantize__ref(x, &q);
	ck_assert_float_eq(q.global_scale, 768.0f);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 0), 0x7e);
	moe_dequantize__ref(&q, y);
	const float d = 448.0f * (1.0f / 768.0f);
	for (int i = 0; i < 16; i++) {
		ck_assert_uint_eq(nibble(&q, 0, i), code[i]);
		ck_assert_float_eq(y[i], t[i] * d);
		if (i != 8)
			ck_assert(fabsf(y[i] - x[i]) <= 0x1p-21f * fabsf(x[i]));
	}
	moe_qtensor_free(&q);
}
END_TEST

START_TEST(test_nvfp4_edge_blocks)
{
	/* one row, four blocks, gs = 1:
	 * block 0: all zeros (with a -0): sf8 0, nibbles 0 / 8, decoded as signed zeros;
	 * block 1: vmax = 15 * 2^-9: SF = 2.5 * 2^-9 (1 + 2^-25) rounds to 2.5 * 2^-9 (the extra
	 *          2.5 * 2^-34 is 0.3125 of an fp32 ulp), an E4M3 subnormal tie between codes 2 and 3 ->
	 *          2 (2^-8); oscale = 256; 15 * 2^-9 * 256 = 7.5 saturates to 6 (7); 3 * 2^-9 * 256 =
	 *          1.5 (3); decoded 6 * 2^-8 and 1.5 * 2^-8;
	 * block 2: vmax = 6 * 2^-11: SF rounds to 2^-11 < 2^-10 -> sf8 0, oscale FLT_MAX: decodes to 0;
	 * block 3: vmax = 6 * 2^-10: SF = 2^-10 exactly half of 2^-9 -> ties to sf8 0: zeros too;
 * block 4: the order of operations in SF. vmax = 0x1.c8p-3 - 2^-26 (one ulp below 1.78125 / 8):
 *          vmax * fl(1/6) = 0x1.3p-5 - 1.38e-9, which is 0.37 fp32 ulp (2^-28) below 0x1.3p-5, so
 *          SF = 0x1.3p-5 = 1.1875 * 2^-5: the E4M3 midpoint of 0x11 (1.125 * 2^-5) and 0x12
 *          (1.25 * 2^-5), tie to even -> 0x12. vmax * gs / 6 would be 0.67 ulp below -> 0x11. */
	float x[80] = { 0 };
	x[3] = -0.0f;
	x[16] = 15 * 0x1p-9f;
	x[17] = -3 * 0x1p-9f;
	x[32] = 6 * 0x1p-11f;
	x[33] = -2 * 0x1p-11f;
	x[48] = 6 * 0x1p-10f;
	x[64] = 0x1.c7fffep-3f;
	struct moe_qtensor q = make(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, 1, 80);
	q.global_scale = 1.0f;
	moe_quantize__ref(x, &q);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 0), 0x00);
	ck_assert_uint_eq(nibble(&q, 0, 3), 0x8);
	ck_assert_uint_eq(nibble(&q, 0, 0), 0x0);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 1), 0x02);
	ck_assert_uint_eq(nibble(&q, 0, 16), 0x7);
	ck_assert_uint_eq(nibble(&q, 0, 17), 0xb);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 2), 0x00);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 3), 0x00);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 4), 0x12);
	float y[80];
	moe_dequantize__ref(&q, y);
	ck_assert_uint_eq(moe_f32_bits(y[3]), 0x80000000u);
	ck_assert_float_eq(y[16], 6 * 0x1p-8f);
	ck_assert_float_eq(y[17], -1.5f * 0x1p-8f);
	for (int i = 32; i < 64; i++)
		ck_assert_float_eq(fabsf(y[i]), 0.0f);
	/* an infinity: the block scale saturates (SF = inf -> 448), the infinity encodes to 6 */
	x[20] = INFINITY;
	q.global_scale = 1.0f;
	moe_quantize__ref(x, &q);
	ck_assert_uint_eq(nvfp4_sf(&q, 0, 1), 0x7e);
	ck_assert_uint_eq(nibble(&q, 0, 20), 0x7);
	moe_qtensor_free(&q);
}
END_TEST

/* The same tensor in the three layouts: identical data, scales moved to the layout's offsets,
 * padding zero even over a dirty buffer, identical dequantized values. */
START_TEST(test_nvfp4_layouts)
{
	const int64_t rows = 5, cols = 48, kb_n = 3;
	float x[5 * 48], y0[5 * 48], y[5 * 48];
	for (int i = 0; i < rows * cols; i++)
		x[i] = rnd(i % 5);
	struct moe_qtensor lin = make(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, rows, cols);
	moe_quantize__ref(x, &lin);
	moe_dequantize__ref(&lin, y0);
	for (int l = MOE_SF_SWIZZLED_128x4; l < MOE_SF_LAYOUT_COUNT; l++) {
		struct moe_qtensor q = make(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, l, rows, cols);
		const size_t n = moe_qtensor_scale_bytes(&q);
		memset(q.scales, 0xab, n);
		moe_quantize__ref(x, &q);
		ck_assert_float_eq(q.global_scale, lin.global_scale);
		ck_assert_int_eq(memcmp(q.data, lin.data, moe_qtensor_data_bytes(&q)), 0);
		unsigned char *used = calloc(n, 1);
		ck_assert_ptr_nonnull(used);
		for (int64_t m = 0; m < rows; m++) {
			for (int64_t k = 0; k < kb_n; k++) {
				const size_t off = moe_nvfp4_sf_offset(l, rows, kb_n, m, k);
				used[off] = 1;
				ck_assert_uint_eq(((uint8_t *)q.scales)[off], ((uint8_t *)lin.scales)[m * kb_n + k]);
			}
		}
		for (size_t i = 0; i < n; i++)
			if (!used[i])
				ck_assert_msg(((uint8_t *)q.scales)[i] == 0, "layout %d padding byte %zu", l, i);
		free(used);
		moe_dequantize__ref(&q, y);
		ck_assert_int_eq(memcmp(y, y0, sizeof y), 0);
		moe_qtensor_free(&q);
	}
	moe_qtensor_free(&lin);
}
END_TEST

/* Round trip of a 64 x 128 tensor in 128x4 with blocks of similar range (every block scale E4M3
 * normal). Let d = fl(SFq * fl(1/gs)) be the decode scale; oscale = fl(1/d) (the recipe forms the same
 * product), y = fl(x * oscale) = (x/d)(1 + e1)(1 + e2), |e| <= 2^-24. E2M1 gives |q - y| <= step(y)/2,
 * or |y| - 6 when saturating, which stays below step/2 = 1 because SFq >= SF (1 - 2^-4) makes
 * |y| <= 6 / (1 - 2^-4) (1 + 2^-22) < 6.41. x' = fl(q d). So
 *   |x' - x| <= d * step(|x|/d (1 + 2^-20))/2 + 2^-22 |x| + 2^-24 |x'|. */
START_TEST(test_nvfp4_round_trip)
{
	const int64_t rows = 64, cols = 128;
	float *x = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows * cols);
	ck_assert(x && y);
	for (int64_t i = 0; i < rows * cols; i++)
		x[i] = rnd(2); /* |x| < 4 */
	for (int64_t i = 0; i < rows * cols; i += 16)
		x[i] = (i / 16) % 2 ? 7.0f : -6.5f; /* vmax within 2^-1 of amax in every block */
	struct moe_qtensor q = make(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, rows, cols);
	moe_quantize__ref(x, &q);
	ck_assert_float_eq(q.global_scale, 2688.0f / 7.0f); /* 384 */
	moe_dequantize__ref(&q, y);
	for (int64_t m = 0; m < rows; m++) {
		for (int64_t k = 0; k < cols; k++) {
			const uint8_t sf8 = nvfp4_sf(&q, m, k / 16);
			ck_assert_uint_ge(sf8 & 0x78, 0x08); /* a normal E4M3 scale */
			const double d = moe_fp8e4m3_decode(sf8) * (1.0f / q.global_scale);
			const double xv = x[m * cols + k], yv = y[m * cols + k];
			const double bound = d * step_e2m1(fabs(xv) / d * (1 + 0x1p-20)) / 2 + 0x1p-22 * fabs(xv) +
					     0x1p-24 * fabs(yv);
			ck_assert_msg(fabs(yv - xv) <= bound, "(%lld, %lld): %a -> %a, bound %g", (long long)m,
				      (long long)k, xv, yv, bound);
		}
	}
	free(x);
	free(y);
	moe_qtensor_free(&q);
}
END_TEST

/* ---- MX ---- */

static uint8_t mx_byte_for(enum moe_dtype t, float amax)
{
	float x[32] = { 0 };
	x[7] = -amax;
	x[8] = amax / 3;
	struct moe_qtensor q = make(t, MOE_SCALING_MX, MOE_SF_LINEAR, 1, 32);
	moe_quantize__ref(x, &q);
	const uint8_t b = ((uint8_t *)q.scales)[0];
	moe_qtensor_free(&q);
	return b;
}

START_TEST(test_mx_scales)
{
	/* MXFP4: byte = 127 + smallest e with 6 * 2^e >= amax. amax = 6 * 2^e exactly -> 127 + e; one ulp
	 * more needs the next power -> 128 + e */
	static const int es[] = { -127, -20, -1, 0, 1, 7, 100, 125 };
	for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) {
		const float a = ldexpf(6.0f, es[i]);
		ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, a), 127 + es[i]);
		ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, nextafterf(a, INFINITY)), 128 + es[i]);
		/* MXFP8: with 448 in place of 6 (448 * 2^125 would overflow fp32: stop at 119) */
		if (es[i] <= 119) {
			const float b = ldexpf(448.0f, es[i]);
			ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP8, b), 127 + es[i]);
			ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP8, nextafterf(b, INFINITY)), 128 + es[i]);
		}
	}
	/* a value strictly between: amax 5 -> 6 * 2^0 >= 5 > 3 -> 127; amax 7 -> 128 */
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, 5.0f), 127);
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, 7.0f), 128);
	/* FLT_MAX ~ 2^128: 6 * 2^125 = 1.5 * 2^127 < FLT_MAX <= 6 * 2^126 -> 253;
	 * 448 * 2^119 = 1.75 * 2^127 < FLT_MAX <= 448 * 2^120 -> 247 */
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, FLT_MAX), 253);
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP8, FLT_MAX), 247);
	/* below 6 * 2^-127 the scale cannot go lower: byte 0 */
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, 1e-39f), 0);
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, 0.0f), 0);
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP8, 0.0f), 0);
	ck_assert_uint_eq(mx_byte_for(MOE_DTYPE_MXFP4, INFINITY), 254);
}
END_TEST

START_TEST(test_mx_hand_blocks)
{
	/* MXFP4 block 0 with amax 6: byte 127, elements encode unscaled:
	 *   6 (7), -3 (D), 0.25 tie -> 0 (0), 0.75 tie -> 1 (2), -0 (8), 5 tie -> 4 (6)
	 * block 1 with amax 6 + ulp: byte 128, elements halved: 6+ -> 3.0000002 -> 3 (5); 5 -> 2.5 tie ->
	 *   2 (4); 1 -> 0.5 (1); -0.5 -> -0.25 tie -> -0 (8). */
	float x[64] = { 0 };
	x[0] = 6;
	x[1] = -3;
	x[2] = 0.25f;
	x[3] = 0.75f;
	x[4] = -0.0f;
	x[5] = 5;
	x[32] = nextafterf(6.0f, INFINITY);
	x[33] = 5;
	x[34] = 1;
	x[35] = -0.5f;
	struct moe_qtensor q = make(MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, 1, 64);
	moe_quantize__ref(x, &q);
	const uint8_t *sf = q.scales, *d = q.data;
	ck_assert_uint_eq(sf[0], 127);
	ck_assert_uint_eq(sf[1], 128);
	ck_assert_uint_eq(d[0], 0xd7);
	ck_assert_uint_eq(d[1], 0x20);
	ck_assert_uint_eq(d[2], 0x68);
	ck_assert_uint_eq(d[16], 0x45);
	ck_assert_uint_eq(d[17], 0x81);
	float y[64];
	moe_dequantize__ref(&q, y);
	ck_assert_float_eq(y[5], 4.0f);
	ck_assert_float_eq(y[32], 6.0f); /* 3 * 2 */
	ck_assert_float_eq(y[33], 4.0f); /* 2 * 2 */
	ck_assert_uint_eq(moe_f32_bits(y[35]), 0x80000000u);
	moe_qtensor_free(&q);

	/* MXFP8, amax 448 * 2^-5 = 14: byte 122, elements x * 32 in E4M3: 14 -> 448 (7E);
	 * 0.1 -> 3.2 = 1.6 * 2^1 -> mantissa 4.8 -> 5: 3.25, 0 1000 101 = 0x45; back 3.25 / 32 */
	float z[32] = { 0 };
	z[0] = 14.0f;
	z[1] = 0.1f;
	q = make(MOE_DTYPE_MXFP8, MOE_SCALING_MX, MOE_SF_LINEAR, 1, 32);
	moe_quantize__ref(z, &q);
	ck_assert_uint_eq(((uint8_t *)q.scales)[0], 122);
	ck_assert_uint_eq(((uint8_t *)q.data)[0], 0x7e);
	ck_assert_uint_eq(((uint8_t *)q.data)[1], 0x45);
	moe_dequantize__ref(&q, z);
	ck_assert_float_eq(z[0], 14.0f);
	ck_assert_float_eq(z[1], 3.25f / 32);
	moe_qtensor_free(&q);
}
END_TEST

START_TEST(test_mx_specials)
{
	/* an infinity: byte 254 (2^127); inf -> 6 decodes to 6 * 2^127 = inf; 1 * 2^-127 -> 0;
	 * a NaN element does not move the scale and encodes to 6 with its sign (MXFP4) or 0x7F (MXFP8) */
	float x[32] = { 0 }, y[32];
	x[0] = INFINITY;
	x[1] = 1.0f;
	struct moe_qtensor q = make(MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, 1, 32);
	moe_quantize__ref(x, &q);
	ck_assert_uint_eq(((uint8_t *)q.scales)[0], 254);
	moe_dequantize__ref(&q, y);
	ck_assert(isinf(y[0]) && y[0] > 0);
	ck_assert_float_eq(y[1], 0.0f);
	x[0] = copysignf(NAN, -1.0f);
	x[1] = 3.0f; /* amax 3 -> 6 * 2^-1 >= 3 -> byte 126 */
	moe_quantize__ref(x, &q);
	ck_assert_uint_eq(((uint8_t *)q.scales)[0], 126);
	ck_assert_uint_eq(((uint8_t *)q.data)[0], 0x7f); /* low nibble F (-6), high 7 (6) */
	moe_qtensor_free(&q);
	q = make(MOE_DTYPE_MXFP8, MOE_SCALING_MX, MOE_SF_LINEAR, 1, 32);
	moe_quantize__ref(x, &q);
	ck_assert_uint_eq(((uint8_t *)q.data)[0], 0x7f);
	moe_dequantize__ref(&q, y);
	ck_assert(isnan(y[0]));
	moe_qtensor_free(&q);
}
END_TEST

/* MX round trip: with the power-of-two scale 2^e, y = x 2^-e and x' = q 2^e are exact (normal
 * range), and no element exceeds EMAX, so |x' - x| <= 2^e step(|y|)/2 exactly. */
START_TEST(test_mx_round_trips)
{
	const int64_t rows = 17, cols = 96;
	float *x = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows * cols);
	ck_assert(x && y);
	for (int64_t i = 0; i < rows * cols; i++)
		x[i] = rnd((int)(i / 32 % 11) - 5);
	for (int f = 0; f < 2; f++) {
		const enum moe_dtype t = f ? MOE_DTYPE_MXFP8 : MOE_DTYPE_MXFP4;
		struct moe_qtensor q = make(t, MOE_SCALING_MX, MOE_SF_LINEAR, rows, cols);
		moe_quantize__ref(x, &q);
		moe_dequantize__ref(&q, y);
		for (int64_t m = 0; m < rows; m++) {
			for (int64_t k = 0; k < cols; k++) {
				const int e = ((uint8_t *)q.scales)[m * (cols / 32) + k / 32] - 127;
				const double a = ldexp(fabs(x[m * cols + k]), -e);
				ck_assert(a <= (f ? 448.0 : 6.0));
				const double bound = ldexp(f ? step_e4m3(a) : step_e2m1(a), e) / 2;
				ck_assert_msg(fabs((double)y[m * cols + k] - x[m * cols + k]) <= bound, "%s (%lld, %lld)",
					      moe_dtype_name(t), (long long)m, (long long)k);
			}
			/* and the scale is the smallest that fits: amax > EMAX * 2^(e-1) unless e = -127 */
			for (int64_t kb = 0; kb < cols / 32; kb++) {
				const int e = ((uint8_t *)q.scales)[m * (cols / 32) + kb] - 127;
				const float amax = amax_of(x, m, m + 1, kb * 32, kb * 32 + 32, cols);
				ck_assert(e == -127 || (double)amax > ldexp(f ? 448.0 : 6.0, e - 1));
			}
		}
		moe_qtensor_free(&q);
	}
	free(x);
	free(y);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("quantize");
	TCase *tc = tcase_create("quantize");
	tcase_add_test(tc, test_f32_bf16);
	tcase_add_test(tc, test_fp8_per_tensor_hand);
	tcase_add_test(tc, test_fp8_specials);
	tcase_add_test(tc, test_fp8_round_trips);
	tcase_add_test(tc, test_fp8_operation_order);
	tcase_add_test(tc, test_fp8_empty);
	tcase_add_test(tc, test_nvfp4_hand_block);
	tcase_add_test(tc, test_nvfp4_derived_global_scale);
	tcase_add_test(tc, test_nvfp4_edge_blocks);
	tcase_add_test(tc, test_nvfp4_layouts);
	tcase_add_test(tc, test_nvfp4_round_trip);
	tcase_add_test(tc, test_mx_scales);
	tcase_add_test(tc, test_mx_hand_blocks);
	tcase_add_test(tc, test_mx_specials);
	tcase_add_test(tc, test_mx_round_trips);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
