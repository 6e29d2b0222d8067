/* Tests of the vdpbf16ps decode expert, moe_expert__avx512bf16_decode
 * (kernels/expert/expert_decode_avx512bf16.c), beyond the every-variant sweep of
 * test_kernels_expert.c:
 *   - every format it takes (bf16 W16A16; FP8 weights of every scaling with FP8 activations;
 *     NVFP4 weights in every scale layout with bf16 or NVFP4 activations; MXFP4 with bf16) at
 *     every token count 1 .. 16 (every tile height and row count the kernel picks), on shapes
 *     with row tails (K not a multiple of the 32- or 64-column groups, FP8 partial 128-blocks,
 *     FP4 groups of 16, 32 and 48 columns), against moe_expert_ref_f64's bound, computed in
 *     double from the same quantized operands independently of the kernel;
 *   - data the vdpbf16ps paths cannot take exactly, which must reach the fp32 kernel: a bf16
 *     weight row or a token of x that is bf16-subnormal, MXFP4 scale bytes that make subnormal
 *     weights, FP8 scales outside [2^-60, 2^60]. Each case is built so that a flush to zero moves
 *     the decided outputs to exactly 0 where the reference's are not;
 *   - MXFP4 scale bytes of neighbouring 32-blocks far apart, so that a table row taken from the
 *     wrong block is seen;
 *   - zero tokens (y untouched) and supports() refusing what the variant does not take.
 * The cases skip themselves on a CPU without AVX512_BF16 (and under valgrind, which lacks it). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "expert_fixtures.h"

static const char *const name = "moe_expert__avx512bf16_decode";

static const struct wformat formats[] = {
	{ "bf16", MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
	{ "fp8 tensor, act fp8", MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, { 0, 0 } },
	{ "fp8 channel, act fp8-1x128", MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, MOE_ACT_FP8_1x128,
	  { 0, 0 } },
	{ "fp8 1x128, act fp8", MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, { 0, 0 } },
	{ "fp8 128x128, act fp8-1x128", MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128,
	  { 0, 0 } },
	{ "nvfp4 linear, act nvfp4", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_NVFP4, { 0, 0 } },
	{ "nvfp4 128x4, act bf16", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_BF16, { 0, 0 } },
	{ "nvfp4 8x4, act nvfp4 given gs", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_NVFP4,
	  { 600.0f, 900.0f } },
	{ "mxfp4, act bf16", MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
};

/* Format _i at M = 1 .. 16. Shapes (H, I): FP4 (176, 112): groups of 64 with a last one of 48
 * (H) and 48 (I); (80, 96): a last group of 16 (H) and of 32 (I). bf16 and FP8 (130, 67): a last
 * 32-group of 2 (H) and of 3 (I), a 64-group of 2 and 3, FP8 partial 128-blocks of 2 and 67
 * columns; (256, 128): whole blocks. MXFP4 needs multiples of 32: (96, 160). */
START_TEST(formats_and_token_counts)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode");
	if (!fn)
		return;
	const struct wformat *f = &formats[_i];
	int64_t shapes[2][2] = { { 130, 67 }, { 256, 128 } };
	if (f->dtype == MOE_DTYPE_NVFP4) {
		shapes[0][0] = 176, shapes[0][1] = 112;
		shapes[1][0] = 80, shapes[1][1] = 96;
	} else if (f->dtype == MOE_DTYPE_MXFP4) {
		shapes[0][0] = 96, shapes[0][1] = 160;
	}
	struct rng r = { 3000u + (uint64_t)_i };
	for (int s = 0; s < 2; s++) {
		const int64_t H = shapes[s][0], I = shapes[s][1];
		struct moe_expert_weights w = random_weights(&r, f, H, I);
		for (int64_t M = 1; M <= 16; M++) {
			const struct moe_expert_params p = expert_params(f, M, H, I);
			ck_assert(moe_builtin_find(name)->table->supports(MOE_OP_EXPERT, &p));
			float *x = normal_array(&r, (size_t)(M * H), 1.0);
			free(check_against_f64(fn, &p, x, &w, f->name, NULL));
			free(x);
		}
		free_weights(&w);
	}
}
END_TEST

static void set_bf16(struct moe_qtensor *q, int64_t row, int64_t col, float v)
{
	((moe_bf16 *)q->data)[row * q->cols + col] = moe_f32_to_bf16(v);
}

/* Asserts that the outputs `decided` picks are not 0 where the reference's are not (a flushed
 * subnormal operand would make them exactly 0). */
static void assert_not_flushed(const float *y, const double *ref, int64_t M, int64_t H, int which, const char *what)
{
	for (int64_t m = 0; m < M; m++)
		for (int64_t h = 0; h < H; h++) {
			const bool decided = which == 0 ? h == H - 1 : m == M - 1;
			ck_assert_msg(!decided || ref[m * H + h] == 0.0 || y[m * H + h] != 0.0f,
				      "%s: y[%lld][%lld] is 0 (flushed), reference %g", what, (long long)m, (long long)h,
				      ref[m * H + h]);
		}
}

/* bf16 operands that vdpbf16ps would flush (case _i), M = 5, H = 300, I = 80:
 *   0: the last down row bf16-subnormal, N(0, 2^-130): y[m][H-1] is made of its products alone
 *      (about 2^-128 * |a| * sqrt(I), a about 1), 0 if flushed;
 *   1: the last token's x bf16-subnormal, N(0, 2^-130), the others N(0, 2^-70), gate and up
 *      times 2^68: the last token's g and u are about 2^-62 and its a about 2^-124, the others'
 *      about 2^-4; down times 2^20 puts y of the last token near 2^-100, 0 if x were flushed. */
START_TEST(bf16_subnormals_fall_back)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode");
	if (!fn)
		return;
	struct rng r = { 4000u + (uint64_t)_i };
	const int64_t M = 5, H = 300, I = 80;
	const struct moe_expert_params p = expert_params(&formats[0], M, H, I);
	struct moe_expert_weights w = random_weights(&r, &formats[0], H, I);
	float *x = normal_array(&r, (size_t)(M * H), _i == 0 ? 1.0 : 0x1p-70);
	if (_i == 0) {
		for (int64_t i = 0; i < I; i++)
			set_bf16(&w.down, H - 1, i, rng_normal(&r, 0x1p-130));
	} else {
		moe_bf16 *g = w.gate.data, *u = w.up.data, *d = w.down.data;
		for (int64_t i = 0; i < I * H; i++) {
			g[i] = moe_f32_to_bf16(ldexpf(moe_bf16_to_f32(g[i]), 68));
			u[i] = moe_f32_to_bf16(ldexpf(moe_bf16_to_f32(u[i]), 68));
			d[i] = moe_f32_to_bf16(ldexpf(moe_bf16_to_f32(d[i]), 20));
		}
		for (int64_t k = 0; k < H; k++)
			x[(M - 1) * H + k] = rng_normal(&r, 0x1p-130);
	}
	double *ref;
	float *y = check_against_f64(fn, &p, x, &w, "bf16 subnormal", &ref);
	assert_not_flushed(y, ref, M, H, _i, "bf16 subnormal");
	free(ref);
	free(y);
	free(x);
	free_weights(&w);
}
END_TEST

/* MXFP4 down row H - 1 with every nibble 2 (e2m1 1.0) and every scale byte 0 (2^-127): its
 * weights are 2^-127, subnormal in bf16 (and fp32), so y[m][H-1] = 2^-127 * sum_i a[m][i] is 0
 * when they are flushed. */
START_TEST(mx_subnormal_scales_fall_back)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode");
	if (!fn)
		return;
	const struct wformat *f = &formats[8];
	struct rng r = { 5000u };
	const int64_t M = 3, H = 96, I = 128;
	const struct moe_expert_params p = expert_params(f, M, H, I);
	struct moe_expert_weights w = random_weights(&r, f, H, I);
	memset((uint8_t *)w.down.data + (H - 1) * I / 2, 0x22, (size_t)(I / 2));
	memset((uint8_t *)w.down.scales + (H - 1) * I / 32, 0, (size_t)(I / 32));
	float *x = normal_array(&r, (size_t)(M * H), 1.0);
	double *ref;
	float *y = check_against_f64(fn, &p, x, &w, "mx subnormal", &ref);
	assert_not_flushed(y, ref, M, H, 0, "mx subnormal");
	free(ref);
	free(y);
	free(x);
	free_weights(&w);
}
END_TEST

/* MXFP4 with the scale bytes of each 64-column group's two 32-blocks 2^12 apart (byte 121, 2^-6,
 * then 133, 2^6, for every row of gate, up and down), at M = 1, 2 and 8: the decoder reads one
 * table row per 32-block, so a row taken from the wrong block would scale half of every dot
 * product by 2^12 or 2^-12, far outside the bound. */
START_TEST(mx_block_scales_apart)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode");
	if (!fn)
		return;
	const struct wformat *f = &formats[8];
	struct rng r = { 5100u };
	const int64_t H = 192, I = 128;
	struct moe_expert_weights w = random_weights(&r, f, H, I);
	struct moe_qtensor *t[3] = { &w.gate, &w.up, &w.down };
	for (int j = 0; j < 3; j++) {
		uint8_t *sf = (uint8_t *)t[j]->scales;
		for (int64_t b = 0; b < t[j]->rows * (t[j]->cols / 32); b++)
			sf[b] = b % 2 ? 133 : 121;
	}
	const int64_t ms[3] = { 1, 2, 8 };
	for (int c = 0; c < 3; c++) {
		const struct moe_expert_params p = expert_params(f, ms[c], H, I);
		float *x = normal_array(&r, (size_t)(ms[c] * H), 1.0);
		free(check_against_f64(fn, &p, x, &w, "mx block scales apart", NULL));
		free(x);
	}
	free_weights(&w);
}
END_TEST

/* FP8 per-tensor weights N(0, 2^-72) (amax about 2^-70, so 1 / gs = amax / 448 is below 2^-60),
 * x N(0, 2^50) to keep g, u and y normal; and 128x128 weights N(0, 2^68) (dequant scales
 * amax / 448 above 2^60), x N(0, 2^-80) so that a stays finite: the fp32 kernel's results,
 * within the bound. */
START_TEST(fp8_scales_out_of_range)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode");
	if (!fn)
		return;
	const struct wformat *f = &formats[_i == 0 ? 1 : 4];
	struct rng r = { 6000u + (uint64_t)_i };
	const int64_t M = 4, H = 256, I = 128;
	const double sigma = _i == 0 ? 0x1p-72 : 0x1p68;
	float *g = normal_array(&r, (size_t)(I * H), sigma), *u = normal_array(&r, (size_t)(I * H), sigma);
	float *d = normal_array(&r, (size_t)(H * I), sigma);
	struct moe_expert_weights w = { make_qtensor(g, I, H, f, 0.0f), make_qtensor(u, I, H, f, 0.0f),
					make_qtensor(d, H, I, f, 0.0f) };
	const float s0 = *(const float *)w.gate.scales;
	ck_assert_msg(_i == 0 ? 1.0f / s0 < 0x1p-60f : s0 > 0x1p60f, "scale %g not out of range", s0);
	const struct moe_expert_params p = expert_params(f, M, H, I);
	float *x = normal_array(&r, (size_t)(M * H), _i == 0 ? 0x1p50 : 0x1p-80);
	free(check_against_f64(fn, &p, x, &w, "fp8 scale range", NULL));
	free(x);
	free(g);
	free(u);
	free(d);
	free_weights(&w);
}
END_TEST

START_TEST(zero_tokens)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode");
	if (!fn)
		return;
	struct rng r = { 7000u };
	struct moe_expert_weights w = random_weights(&r, &formats[0], 64, 64);
	const struct moe_expert_params p = expert_params(&formats[0], 0, 64, 64);
	float y = 5.0f;
	fn(&p, NULL, &w, &y, NULL);
	ck_assert(y == 5.0f);
	free_weights(&w);
}
END_TEST

/* The variant takes <= 16 tokens, H and I >= 64, and the format pairs of its contract only. */
START_TEST(supports_refuses)
{
	const struct moe_builtin *b = moe_builtin_find(name);
	ck_assert_ptr_nonnull(b);
	moe_supports_fn *ok = b->table->supports;
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		struct moe_expert_params p = expert_params(&formats[i], 16, 64, 64);
		ck_assert_msg(ok(MOE_OP_EXPERT, &p), "%s", formats[i].name);
		ck_assert(!ok(MOE_OP_LAYER, &p));
		p.tokens = 17;
		ck_assert(!ok(MOE_OP_EXPERT, &p));
		p.tokens = 1;
		p.hidden = 63;
		ck_assert(!ok(MOE_OP_EXPERT, &p));
		p.hidden = 64;
		p.inter = 32;
		ck_assert(!ok(MOE_OP_EXPERT, &p));
		p.inter = 64;
		p.act_quant = MOE_ACT_NONE;
		ck_assert_msg(!ok(MOE_OP_EXPERT, &p), "%s with fp32 activations", formats[i].name);
	}
	ck_assert(ok(MOE_OP_EXPERT, NULL));
	struct moe_expert_params p = expert_params(&formats[1], 1, 64, 64);
	p.act_quant = MOE_ACT_BF16; /* FP8 weights, bf16 activations: not exact in bf16 products */
	ck_assert(!ok(MOE_OP_EXPERT, &p));
	p = expert_params(&formats[8], 1, 64, 64);
	p.act_quant = MOE_ACT_NVFP4; /* MXFP4 weights with NVFP4 activations */
	ck_assert(!ok(MOE_OP_EXPERT, &p));
	p = expert_params(&formats[0], 1, 64, 64);
	p.weight_dtype = MOE_DTYPE_F32;
	p.weight_scaling = MOE_SCALING_NONE;
	ck_assert(!ok(MOE_OP_EXPERT, &p));
}
END_TEST

static Suite *decode_suite(void)
{
	Suite *s = suite_create("kernels_decode");
	TCase *tc = tcase_create("decode");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, formats_and_token_counts, 0, (int)(sizeof formats / sizeof formats[0]));
	tcase_add_loop_test(tc, bf16_subnormals_fall_back, 0, 2);
	tcase_add_test(tc, mx_subnormal_scales_fall_back);
	tcase_add_test(tc, mx_block_scales_apart);
	tcase_add_loop_test(tc, fp8_scales_out_of_range, 0, 2);
	tcase_add_test(tc, zero_tokens);
	tcase_add_test(tc, supports_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(decode_suite());
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
