/* Tests of the optimized quantize/dequantize kernels: every built-in table that provides quantize
 * or dequantize (each variant of kernels/codec/codec.inc and the whole per-ISA tables) against
 * moe_quantize__ref / moe_dequantize__ref, bit for bit: codes, scales, the NVFP4 global scale and
 * the dequantized floats, NaN payloads included. Inputs: seeded normal data at many magnitudes
 * mixed with the special values (+-0, +-inf, NaN, fp32 subnormals, values on the E4M3 and E2M1
 * rounding midpoints, huge and tiny magnitudes), all-zero and single-infinity tensors; for
 * dequantize, every code byte and random scale bytes and floats (NaN scale codes included). Shapes
 * with partial vectors and partial 128-blocks, rows = 0 and 1. Variants whose ISA the CPU lacks
 * are skipped and said so. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "test_rng.h"


/* One element of a test tensor: mostly normal(0, 1) times a per-tensor magnitude, with a share of
 * special values. The midpoints are those of the E4M3 grid (e.g. 1.0625 between 1 and 1.125) and
 * the E2M1 grid (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5), where ties-to-even decides. */
static float special_value(void)
{
	static const float mids[] = { 1.0625f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 464.0f, 480.0f,
				      0x1p-10f, 3 * 0x1p-11f, 448.0f, 6.0f };
	const float sign = (rng_next() & 1) ? -1.0f : 1.0f;
	switch (rng_next() % 9) {
	case 0:
		return sign * 0.0f;
	case 1:
		return sign * INFINITY;
	case 2:
		return (rng_next() & 1) ? NAN : -NAN;
	case 3:
		return sign * 0x1p-140f * (float)(1 + rng_next() % 1000); /* fp32 subnormal */
	case 4:
		return sign * 3.0e38f;
	default:
		return sign * mids[rng_next() % (sizeof mids / sizeof mids[0])];
	}
}

static void fill(float *x, int64_t n, float magnitude, int special_permille)
{
	for (int64_t i = 0; i < n; i++) {
		if ((int)(rng_next() % 1000) < special_permille)
			x[i] = special_value();
		else
			x[i] = (float)rng_normal() * magnitude;
	}
}

struct cfg {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	uint32_t flags;
};

static const struct cfg cfgs[] = {
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_Q_FP8_NAN_ON_OVERFLOW },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_Q_FP8_NAN_ON_OVERFLOW },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, 0 },
	{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, 0 },
};

/* rows x cols shapes; cols is rounded up to the block size of NVFP4 (16) and MX (32). */
static const int64_t shapes[][2] = { { 0, 32 }, { 1, 1 }, { 1, 17 }, { 3, 130 }, { 5, 48 }, { 9, 96 }, { 130, 257 } };

static bool variant_runs(const struct moe_builtin *b, enum moe_op op, const struct moe_qtensor *q)
{
	return b->isa <= moe_isa_hardware() && b->table->name && moe_backend_provides(b->table, op, q);
}

static int64_t cols_for(const struct cfg *c, int64_t cols)
{
	const int64_t blk = c->dtype == MOE_DTYPE_NVFP4 ? 16 : c->dtype == MOE_DTYPE_MXFP4 ? 32 : 1;
	return (cols + blk - 1) / blk * blk;
}

static struct moe_qtensor make_q(const struct cfg *c, int64_t rows, int64_t cols)
{
	struct moe_qtensor q = { .dtype = c->dtype, .scaling = c->scaling, .sf_layout = c->layout, .flags = c->flags,
				 .rows = rows, .cols = cols_for(c, cols) };
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
	return q;
}

/* Quantize x with the reference and with every variant; everything must agree bit for bit. */
static void check_quantize(const struct cfg *c, int64_t rows, int64_t cols, const float *x, float given_gs)
{
	struct moe_qtensor want = make_q(c, rows, cols);
	want.global_scale = given_gs;
	moe_quantize__ref(x, &want);
	const size_t db = moe_qtensor_data_bytes(&want), sb = moe_qtensor_scale_bytes(&want);
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (!variant_runs(b, MOE_OP_QUANTIZE, &want))
			continue;
		struct moe_qtensor got = make_q(c, rows, cols);
		got.global_scale = given_gs;
		if (sb)
			memset(got.scales, 0xa5, sb); /* the kernel must write the padding too */
		b->table->quantize(x, &got);
		ck_assert_msg(db == 0 || memcmp(got.data, want.data, db) == 0, "%s: %s/%s/%s [%lld x %lld]: codes differ",
			      b->table->name, moe_dtype_name(c->dtype), moe_scaling_name(c->scaling),
			      moe_sf_layout_name(c->layout), (long long)rows, (long long)want.cols);
		ck_assert_msg(sb == 0 || memcmp(got.scales, want.scales, sb) == 0, "%s: %s/%s/%s [%lld x %lld]: scales differ",
			      b->table->name, moe_dtype_name(c->dtype), moe_scaling_name(c->scaling),
			      moe_sf_layout_name(c->layout), (long long)rows, (long long)want.cols);
		ck_assert_msg(moe_f32_bits(got.global_scale) == moe_f32_bits(want.global_scale),
			      "%s: global scale %a != %a", b->table->name, (double)got.global_scale, (double)want.global_scale);
		moe_qtensor_free(&got);
	}
	moe_qtensor_free(&want);
}

/* Dequantize q with the reference and with every variant: the same float bits everywhere. */
static void check_dequantize(const struct moe_qtensor *q)
{
	const size_t n = (size_t)(q->rows * q->cols);
	float *want = malloc((n + 1) * sizeof(float)), *got = malloc((n + 1) * sizeof(float));
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	moe_dequantize__ref(q, want);
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (!variant_runs(b, MOE_OP_DEQUANTIZE, q))
			continue;
		got[n] = 12345.0f;
		b->table->dequantize(q, got);
		for (size_t j = 0; j < n; j++)
			ck_assert_msg(moe_f32_bits(got[j]) == moe_f32_bits(want[j]),
				      "%s: %s/%s/%s [%lld x %lld] element %zu: %a (0x%08x) != %a (0x%08x)", b->table->name,
				      moe_dtype_name(q->dtype), moe_scaling_name(q->scaling), moe_sf_layout_name(q->sf_layout),
				      (long long)q->rows, (long long)q->cols, j, (double)got[j], moe_f32_bits(got[j]),
				      (double)want[j], moe_f32_bits(want[j]));
		ck_assert_msg(got[n] == 12345.0f, "%s wrote past the output", b->table->name);
	}
	free(want);
	free(got);
}

START_TEST(quantize_random_and_special)
{
	static const float magnitudes[] = { 1.0f, 1e-3f, 300.0f, 1e-30f, 1e30f };
	rng_state = 1000u + (uint64_t)_i;
	const struct cfg *c = &cfgs[_i];
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		const int64_t rows = shapes[s][0], cols = cols_for(c, shapes[s][1]);
		float *x = malloc(((size_t)(rows * cols) + 1) * sizeof(float));
		ck_assert_ptr_nonnull(x);
		for (size_t m = 0; m < sizeof magnitudes / sizeof magnitudes[0]; m++) {
			fill(x, rows * cols, magnitudes[m], 0);
			check_quantize(c, rows, cols, x, 0.0f);
			fill(x, rows * cols, magnitudes[m], 150);
			check_quantize(c, rows, cols, x, 0.0f);
			if (c->dtype == MOE_DTYPE_NVFP4)
				check_quantize(c, rows, cols, x, 2688.0f / magnitudes[m]);
		}
		/* all zeros (signed), then one infinity among zeros: amax 0 and amax inf */
		for (int64_t i = 0; i < rows * cols; i++)
			x[i] = (i & 1) ? -0.0f : 0.0f;
		check_quantize(c, rows, cols, x, 0.0f);
		if (rows > 0 && cols > 0) {
			x[(rows * cols) / 2] = -INFINITY;
			check_quantize(c, rows, cols, x, 0.0f);
		}
		free(x);
	}
}
END_TEST

/* Every code byte, with random scales (float scales of all magnitudes, 0 and infinities; E4M3 and
 * UE8M0 scale bytes over their whole range, NaN codes included). A NaN float scale, which no
 * quantizer writes, is left out: with a NaN code times a NaN scale, which NaN comes out depends on
 * the operand order the compiler picks, in the reference as in a kernel. */
static float scale_value(void)
{
	switch (rng_next() % 8) {
	case 0:
		return 0.0f;
	case 1:
		return INFINITY;
	case 2:
		return 0x1p-140f;
	default:
		return (float)(rng_uniform() * pow(2.0, (double)(rng_next() % 200) - 100));
	}
}

START_TEST(dequantize_all_codes)
{
	rng_state = 2000u + (uint64_t)_i;
	const struct cfg *c = &cfgs[_i];
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		struct moe_qtensor q = make_q(c, shapes[s][0], shapes[s][1]);
		uint8_t *d = q.data;
		const size_t db = moe_qtensor_data_bytes(&q), sb = moe_qtensor_scale_bytes(&q);
		for (size_t i = 0; i < db; i++)
			d[i] = (uint8_t)(i % 7 == 0 ? i / 7 : rng_next());
		if (c->dtype == MOE_DTYPE_FP8E4M3) {
			float *f = q.scales;
			for (size_t i = 0; i < sb / sizeof(float); i++)
				f[i] = scale_value();
		} else {
			uint8_t *b = q.scales;
			for (size_t i = 0; i < sb; i++)
				b[i] = (uint8_t)rng_next();
			q.global_scale = (float)(rng_uniform() * pow(2.0, (double)(rng_next() % 60) - 30));
		}
		check_dequantize(&q);
		moe_qtensor_free(&q);
	}
}
END_TEST

/* A dequantized tensor quantizes back to its own codes: a round trip through both kernels. */
START_TEST(round_trip)
{
	rng_state = 3000u + (uint64_t)_i;
	const struct cfg *c = &cfgs[_i];
	struct moe_qtensor q = make_q(c, 9, 96);
	float *x = malloc(9 * 96 * sizeof(float));
	ck_assert_ptr_nonnull(x);
	fill(x, 9 * 96, 2.0f, 0);
	moe_quantize__ref(x, &q);
	check_dequantize(&q);
	free(x);
	moe_qtensor_free(&q);
}
END_TEST

/* The variants say which problems they take: each codec kernel its own dtype and op only. */
START_TEST(supports_is_precise)
{
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (b->op != MOE_OP_QUANTIZE && b->op != MOE_OP_DEQUANTIZE)
			continue;
		struct moe_qtensor f32 = { .dtype = MOE_DTYPE_F32, .rows = 1, .cols = 1 };
		struct moe_qtensor e5m2 = { .dtype = MOE_DTYPE_FP8E5M2, .scaling = MOE_SCALING_PER_TENSOR, .rows = 1, .cols = 1 };
		ck_assert_msg(!moe_backend_provides(b->table, b->op, &f32), "%s claims f32", b->table->name);
		ck_assert_msg(!moe_backend_provides(b->table, b->op, &e5m2), "%s claims e5m2", b->table->name);
		const enum moe_op other = b->op == MOE_OP_QUANTIZE ? MOE_OP_DEQUANTIZE : MOE_OP_QUANTIZE;
		ck_assert_msg(b->table->supports(other, NULL) == false, "%s claims the other op", b->table->name);
	}
}
END_TEST

START_TEST(every_variant_was_tested)
{
	size_t runnable = 0;
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if ((b->op == MOE_OP_QUANTIZE || b->op == MOE_OP_DEQUANTIZE) && b->isa <= moe_isa_hardware())
			runnable++;
		else if (b->op == MOE_OP_QUANTIZE || b->op == MOE_OP_DEQUANTIZE)
			printf("test_kernels_codec: %s skipped: this CPU lacks %s\n", b->table->name, moe_isa_name(b->isa));
	}
	ck_assert_uint_ge(runnable, 1);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("kernels_codec");
	TCase *tc = tcase_create("codec");
	const int n = (int)(sizeof cfgs / sizeof cfgs[0]);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, quantize_random_and_special, 0, n);
	tcase_add_loop_test(tc, dequantize_all_codes, 0, n);
	tcase_add_loop_test(tc, round_trip, 0, n);
	tcase_add_test(tc, supports_is_precise);
	tcase_add_test(tc, every_variant_was_tested);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
