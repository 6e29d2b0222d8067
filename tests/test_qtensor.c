/* Unit tests of reference/qtensor.c: format validation and its messages, data and scale sizes
 * (swizzle padding included), the NVFP4 scale-factor offsets, the NVFP4 global scale, allocation.
 * Every expected number is worked out by hand in the comment beside it. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "moe/moe.h"

/* Let a huge allocation fail with NULL under AddressSanitizer instead of aborting the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static struct moe_qtensor qt(enum moe_dtype t, enum moe_scaling s, enum moe_sf_layout l, int64_t rows, int64_t cols)
{
	return (struct moe_qtensor){ .dtype = t, .scaling = s, .sf_layout = l, .rows = rows, .cols = cols };
}

static size_t data_bytes(enum moe_dtype t, enum moe_scaling s, enum moe_sf_layout l, int64_t rows, int64_t cols)
{
	struct moe_qtensor q = qt(t, s, l, rows, cols);
	return moe_qtensor_data_bytes(&q);
}

static size_t scale_bytes(enum moe_dtype t, enum moe_scaling s, enum moe_sf_layout l, int64_t rows, int64_t cols)
{
	struct moe_qtensor q = qt(t, s, l, rows, cols);
	return moe_qtensor_scale_bytes(&q);
}

START_TEST(test_sizes)
{
	const enum moe_sf_layout lin = MOE_SF_LINEAR, s128 = MOE_SF_SWIZZLED_128x4, s8 = MOE_SF_SWIZZLED_8x4;
	/* 3 x 5 = 15 elements: f32 60 bytes, bf16 30, fp8 15 */
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_F32, MOE_SCALING_NONE, lin, 3, 5), 60);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_F32, MOE_SCALING_NONE, lin, 3, 5), 0);
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_BF16, MOE_SCALING_NONE, lin, 3, 5), 30);
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 3, 5), 15);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 3, 5), 4);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_FP8E5M2, MOE_SCALING_PER_CHANNEL, lin, 3, 5), 12); /* 3 floats */
	/* 1x128 over 3 x 300: ceil(300/128) = 3 blocks per row, 9 floats */
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, lin, 3, 300), 36);
	/* 128x128 over 130 x 300: ceil(130/128) = 2 by 3 blocks, 6 floats */
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, lin, 130, 300), 24);
	/* an empty tensor still has its one per-tensor scale, and no per-channel one */
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 0, 5), 4);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, lin, 0, 5), 0);

	/* NVFP4 200 x 128: 25600 nibbles = 12800 bytes; Kb = 8.
	 * linear 200 * 8 = 1600; 128x4: pad128(200) = 256 rows * pad4(8) = 8 = 2048; 8x4: 200 * 8 = 1600 */
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 200, 128), 12800);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 200, 128), 1600);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s128, 200, 128), 2048);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s8, 200, 128), 1600);
	/* 200 x 80: Kb = 5. linear 1000; 128x4: 256 * 8 = 2048; 8x4: 200 * 8 = 1600 */
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 200, 80), 1000);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s128, 200, 80), 2048);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s8, 200, 80), 1600);
	/* 5 x 48: Kb = 3. linear 15; 128x4: one tile, 512; 8x4: one tile, 32 */
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 5, 48), 15);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s128, 5, 48), 512);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s8, 5, 48), 32);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, s128, 0, 48), 0);

	/* MX 4 x 64: 2 blocks per row, 8 scale bytes; mxfp4 128 data bytes, mxfp8 256 */
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_MXFP4, MOE_SCALING_MX, lin, 4, 64), 128);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_MXFP4, MOE_SCALING_MX, lin, 4, 64), 8);
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_MXFP8, MOE_SCALING_MX, lin, 4, 64), 256);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_MXFP8, MOE_SCALING_MX, lin, 4, 64), 8);

	/* an invalid format has no size */
	ck_assert_uint_eq(data_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 4, 40), 0);
	ck_assert_uint_eq(scale_bytes(MOE_DTYPE_F32, MOE_SCALING_PER_TENSOR, lin, 4, 4), 0);
	ck_assert_uint_eq(moe_qtensor_data_bytes(NULL), 0);
}
END_TEST

START_TEST(test_sf_offsets)
{
	/* 128x4, rows = 200, Kb = 8 (2 column tiles of 512 bytes per 128-row band = 1024):
	 * (130, 5): band 1 -> 1024, column tile 5/4 = 1 -> 512, (130 % 32 = 2) * 16 = 32,
	 *           ((130 % 128) / 32 = 0) * 4 = 0, 5 % 4 = 1  => 1569
	 * (45, 2):  0 + 0 + (45 % 32 = 13) * 16 = 208 + (45 / 32 = 1) * 4 = 4 + 2  => 214
	 * (127, 3): (127 % 32 = 31) * 16 = 496 + (127 / 32 = 3) * 4 = 12 + 3  => 511, the tile's last
	 * (128, 0): band 1  => 1024 */
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_128x4, 200, 8, 130, 5), 1569);
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_128x4, 200, 8, 45, 2), 214);
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_128x4, 200, 8, 127, 3), 511);
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_128x4, 200, 8, 128, 0), 1024);
	/* Kb = 5 pads to 8: (0, 4) is in the second column tile => 512 */
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_128x4, 200, 5, 0, 4), 512);
	/* 8x4, Kb = 8 (2 column tiles of 32 bytes per 8-row band = 64):
	 * (13, 6): band 1 -> 64, tile 6/4 = 1 -> 32, (13 % 8 = 5) * 4 = 20, 6 % 4 = 2  => 118
	 * (7, 3):  7 * 4 + 3  => 31;  (8, 0): band 1  => 64 */
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_8x4, 200, 8, 13, 6), 118);
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_8x4, 200, 8, 7, 3), 31);
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_SWIZZLED_8x4, 200, 8, 8, 0), 64);
	/* linear (3, 2) with Kb = 5 => 17 */
	ck_assert_uint_eq(moe_nvfp4_sf_offset(MOE_SF_LINEAR, 200, 5, 3, 2), 17);
}
END_TEST

/* Each layout maps the padded (row, block) grid one to one onto [0, scale bytes). */
START_TEST(test_sf_layout_bijective)
{
	static const int64_t shapes[][2] = { { 200, 80 }, { 5, 48 }, { 128, 64 }, { 9, 16 } };
	for (int l = 0; l < MOE_SF_LAYOUT_COUNT; l++) {
		for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
			const int64_t rows = shapes[s][0], kb_n = shapes[s][1] / 16;
			const size_t n = scale_bytes(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, l, rows, shapes[s][1]);
			/* the padded grid, by hand: 128x4 pads rows to 128 and blocks to 4, 8x4 rows to 8 */
			const int64_t pr = l == MOE_SF_SWIZZLED_128x4 ? (rows + 127) / 128 * 128 :
					   l == MOE_SF_SWIZZLED_8x4   ? (rows + 7) / 8 * 8 : rows;
			const int64_t pk = l == MOE_SF_LINEAR ? kb_n : (kb_n + 3) / 4 * 4;
			ck_assert_uint_eq(n, (size_t)(pr * pk));
			unsigned char *seen = calloc(n, 1);
			ck_assert_ptr_nonnull(seen);
			for (int64_t m = 0; m < pr; m++) {
				for (int64_t k = 0; k < pk; k++) {
					const size_t off = moe_nvfp4_sf_offset(l, rows, kb_n, m, k);
					ck_assert_msg(off < n && !seen[off], "layout %d rows %lld: (%lld, %lld) -> %zu", l,
						      (long long)rows, (long long)m, (long long)k, off);
					seen[off] = 1;
				}
			}
			free(seen);
		}
	}
}
END_TEST

START_TEST(test_global_scale)
{
	/* 448 * 6 = 2688: 2688 / 3.5 = 768, 2688 / 7 = 384, 2688 / 2688 = 1 */
	ck_assert_float_eq(moe_nvfp4_global_scale(3.5f), 768.0f);
	ck_assert_float_eq(moe_nvfp4_global_scale(7.0f), 384.0f);
	ck_assert_float_eq(moe_nvfp4_global_scale(2688.0f), 1.0f);
	ck_assert_float_eq(moe_nvfp4_global_scale(0.0f), 1.0f);
	ck_assert_float_eq(moe_nvfp4_global_scale(INFINITY), 1.0f);
	ck_assert_float_eq(moe_nvfp4_global_scale(NAN), 1.0f);
	/* 2688 / 1e-38 = 2.7e41 > FLT_MAX: clamped */
	ck_assert_float_eq(moe_nvfp4_global_scale(1e-38f), FLT_MAX);
}
END_TEST

static void expect_invalid(struct moe_qtensor q, const char *const *words)
{
	moe_clear_error();
	ck_assert_int_eq(moe_qtensor_validate(&q), MOE_ERR_INVALID_ARG);
	for (; *words; words++)
		ck_assert_msg(strstr(moe_last_error(), *words), "message '%s' lacks '%s'", moe_last_error(), *words);
}

#define MOE_WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

START_TEST(test_validate_rejects)
{
	static float f[64];
	const enum moe_sf_layout lin = MOE_SF_LINEAR;
	struct moe_qtensor q;

	moe_clear_error();
	ck_assert_int_eq(moe_qtensor_validate(NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "qtensor_validate"));

	q = qt(MOE_DTYPE_NONE, MOE_SCALING_NONE, lin, 1, 1);
	expect_invalid(q, MOE_WORDS("dtype 0"));
	q = qt((enum moe_dtype)42, MOE_SCALING_NONE, lin, 1, 1);
	expect_invalid(q, MOE_WORDS("dtype 42"));
	q = qt(MOE_DTYPE_F32, (enum moe_scaling)9, lin, 1, 1);
	expect_invalid(q, MOE_WORDS("scaling 9"));
	q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, (enum moe_sf_layout)3, 1, 16);
	expect_invalid(q, MOE_WORDS("layout 3"));
	q = qt(MOE_DTYPE_F32, MOE_SCALING_NONE, lin, -1, 4);
	expect_invalid(q, MOE_WORDS("negative", "-1 x 4"));

	/* dtype / scaling pairs */
	q = qt(MOE_DTYPE_F32, MOE_SCALING_PER_TENSOR, lin, 2, 2);
	expect_invalid(q, MOE_WORDS("f32", "tensor"));
	q = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_NONE, lin, 2, 2);
	expect_invalid(q, MOE_WORDS("fp8e4m3", "none", "1x128"));
	q = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_NVFP4, lin, 2, 16);
	expect_invalid(q, MOE_WORDS("fp8e4m3", "nvfp4"));
	q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_MX, lin, 2, 32);
	expect_invalid(q, MOE_WORDS("nvfp4", "mx"));
	q = qt(MOE_DTYPE_MXFP4, MOE_SCALING_NVFP4, lin, 2, 32);
	expect_invalid(q, MOE_WORDS("mxfp4", "nvfp4"));
	q = qt(MOE_DTYPE_MXFP8, MOE_SCALING_PER_TENSOR, lin, 2, 32);
	expect_invalid(q, MOE_WORDS("mxfp8", "tensor"));

	/* block multiples */
	q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 2, 40);
	expect_invalid(q, MOE_WORDS("nvfp4", "cols % 16", "cols = 40"));
	q = qt(MOE_DTYPE_MXFP8, MOE_SCALING_MX, lin, 2, 48);
	expect_invalid(q, MOE_WORDS("mxfp8", "'mx'", "cols % 32", "cols = 48"));
	q = qt(MOE_DTYPE_MXFP4, MOE_SCALING_MX, lin, 2, 16);
	expect_invalid(q, MOE_WORDS("mxfp4", "cols = 16"));

	/* a swizzled layout only with NVFP4 */
	q = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_SWIZZLED_128x4, 2, 2);
	expect_invalid(q, MOE_WORDS("128x4", "tensor"));
	q = qt(MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_SWIZZLED_8x4, 2, 32);
	expect_invalid(q, MOE_WORDS("8x4", "mxfp4"));

	/* flags */
	q = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 2, 2);
	q.flags = 2;
	expect_invalid(q, MOE_WORDS("flags 0x2"));
	q = qt(MOE_DTYPE_MXFP8, MOE_SCALING_MX, lin, 2, 32);
	q.flags = MOE_Q_FP8_NAN_ON_OVERFLOW;
	expect_invalid(q, MOE_WORDS("mxfp8", "NAN_ON_OVERFLOW"));

	/* NVFP4 global scale */
	q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 1, 16);
	q.global_scale = NAN;
	expect_invalid(q, MOE_WORDS("global_scale"));
	q.global_scale = INFINITY;
	expect_invalid(q, MOE_WORDS("global_scale", "inf"));

	/* sizes that do not fit: 2^62 rows of 16 f32 = 2^68 bytes */
	q = qt(MOE_DTYPE_F32, MOE_SCALING_NONE, lin, INT64_C(1) << 62, 16);
	expect_invalid(q, MOE_WORDS("overflows"));
	q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, INT64_MAX - 5, 0);
	expect_invalid(q, MOE_WORDS("overflows"));

	/* missing arrays */
	q = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 2, 2);
	q.scales = f;
	expect_invalid(q, MOE_WORDS("data is NULL", "4 bytes"));
	q.data = f;
	q.scales = NULL;
	expect_invalid(q, MOE_WORDS("scales are NULL", "4 bytes"));
}
END_TEST

START_TEST(test_validate_accepts)
{
	static float buf[256];
	const enum moe_sf_layout lin = MOE_SF_LINEAR;
	struct moe_qtensor ok[] = {
		qt(MOE_DTYPE_F32, MOE_SCALING_NONE, lin, 2, 3),
		qt(MOE_DTYPE_BF16, MOE_SCALING_NONE, lin, 2, 3),
		qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 2, 3),
		qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, lin, 2, 3),
		qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, lin, 2, 3),
		qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, lin, 2, 3),
		qt(MOE_DTYPE_FP8E5M2, MOE_SCALING_PER_TENSOR, lin, 2, 3),
		qt(MOE_DTYPE_FP8E5M2, MOE_SCALING_BLOCK_128x128, lin, 2, 3),
		qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, lin, 2, 32),
		qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, 2, 32),
		qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, 2, 32),
		qt(MOE_DTYPE_MXFP4, MOE_SCALING_MX, lin, 2, 64),
		qt(MOE_DTYPE_MXFP8, MOE_SCALING_MX, lin, 2, 32),
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ok[i].data = buf;
		ok[i].scales = buf;
		ck_assert_msg(moe_qtensor_validate(&ok[i]) == MOE_OK, "case %zu: %s", i, moe_last_error());
	}
	/* the PyTorch flag with an FP8 dtype; an NVFP4 global scale of 0 ("derive") */
	ok[3].flags = MOE_Q_FP8_NAN_ON_OVERFLOW;
	ck_assert_int_eq(moe_qtensor_validate(&ok[3]), MOE_OK);
	ok[8].global_scale = 0.0f;
	ck_assert_int_eq(moe_qtensor_validate(&ok[8]), MOE_OK);
	/* empty tensors need no arrays, except the per-tensor scale */
	struct moe_qtensor e = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, 0, 64);
	ck_assert_int_eq(moe_qtensor_validate(&e), MOE_OK);
	e = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, lin, 0, 64);
	ck_assert_int_eq(moe_qtensor_validate(&e), MOE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_alloc_free)
{
	struct moe_qtensor q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, 200, 80);
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
	ck_assert_int_eq(moe_qtensor_validate(&q), MOE_OK);
	ck_assert_uint_eq((uintptr_t)q.data % 64, 0);
	ck_assert_uint_eq((uintptr_t)q.scales % 64, 0);
	/* 200 * 80 / 2 = 8000 data bytes, 2048 scale bytes (test_sizes), all zero */
	const unsigned char *d = q.data, *s = q.scales;
	for (size_t i = 0; i < 8000; i++)
		ck_assert_uint_eq(d[i], 0);
	for (size_t i = 0; i < 2048; i++)
		ck_assert_uint_eq(s[i], 0);
	moe_qtensor_free(&q);
	ck_assert_ptr_null(q.data);
	ck_assert_ptr_null(q.scales);
	moe_qtensor_free(&q);
	moe_qtensor_free(NULL);

	/* empty: nothing to allocate */
	q = qt(MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, 0, 64);
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
	ck_assert_ptr_null(q.data);
	ck_assert_ptr_null(q.scales);

	/* bad format: INVALID_ARG naming the op, nothing allocated */
	q = qt(MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, 4, 24);
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "qtensor_alloc"));
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "cols = 24"));
	ck_assert_ptr_null(q.data);
	ck_assert_int_eq(moe_qtensor_alloc(NULL), MOE_ERR_INVALID_ARG);

	/* 2^40 x 2^20 fp8 = 2^60 bytes fits in size_t but not in memory */
	q = qt(MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, INT64_C(1) << 40, INT64_C(1) << 20);
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_ERR_NOMEM);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "out of memory"));
	ck_assert_ptr_null(q.data);
	ck_assert_ptr_null(q.scales);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qtensor");
	TCase *tc = tcase_create("qtensor");
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_sf_offsets);
	tcase_add_test(tc, test_sf_layout_bijective);
	tcase_add_test(tc, test_global_scale);
	tcase_add_test(tc, test_validate_rejects);
	tcase_add_test(tc, test_validate_accepts);
	tcase_add_test(tc, test_alloc_free);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
