/* Tests of the 4-bit decode expert, moe_expert__avx512bf16_decode4
 * (kernels/expert/expert_decode4_avx512bf16.c):
 *   - every format it takes (NVFP4 weights in every scale layout with bf16 or NVFP4 activations,
 *     given or derived global scales; MXFP4 with bf16) at every token count 1 .. 8 (each tile
 *     height and both row counts), on shapes made of whole 128-column chunks, of a last half chunk
 *     (64 columns) and of a half chunk alone, against moe_expert_ref_f64's bound, computed in
 *     double from the same quantized operands independently of the kernel;
 *   - data its arithmetic does not take, which must reach the other kernel and come out right:
 *     negative NVFP4 scale bytes (which the kernel's bit placement would misread), MX scale bytes
 *     0 (2^-127, which it would read as 0: outputs exactly 0 where the reference's are not);
 *   - bf16 activations whose products with the weights are fp32-subnormal, with MX scales of 2^24
 *     (the largest the kernel takes), which must stay within the bound;
 *   - supports() refusing what the variant does not take.
 * The cases skip themselves on a CPU without AVX512_BF16. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "expert_fixtures.h"

static const char *const name = "moe_expert__avx512bf16_decode4";

static const struct wformat formats[] = {
	{ "nvfp4 linear, act bf16", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
	{ "nvfp4 linear, act nvfp4", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_NVFP4, { 0, 0 } },
	{ "nvfp4 128x4, act bf16", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_BF16, { 0, 0 } },
	{ "nvfp4 128x4, act nvfp4", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_NVFP4, { 0, 0 } },
	{ "nvfp4 8x4, act bf16", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_BF16, { 0, 0 } },
	{ "nvfp4 8x4, act nvfp4 given gs", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_NVFP4,
	  { 600.0f, 900.0f } },
	{ "mxfp4, act bf16", MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
};

/* Format _i at M = 1 .. 8 on (H, I) = (192, 320): a last half chunk in both GEMMs, rows past a
 * 128-row swizzle tile; (256, 128): whole chunks; (64, 64): one half chunk. */
START_TEST(formats_and_token_counts)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode4");
	if (!fn)
		return;
	const struct wformat *f = &formats[_i];
	static const int64_t shapes[3][2] = { { 192, 320 }, { 256, 128 }, { 64, 64 } };
	struct rng r = { 7000u + (uint64_t)_i };
	for (int s = 0; s < 3; s++) {
		const int64_t H = shapes[s][0], I = shapes[s][1];
		struct moe_expert_weights w = random_weights(&r, f, H, I);
		for (int64_t M = 1; M <= 8; M++) {
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

/* Case 0: every NVFP4 scale byte of gate, up and down negated (valid data the reference decodes;
 * the kernel must hand them on). Case 1: MXFP4 gate and up with every scale byte 0 (2^-127) and x
 * near 2^99, so that g and u are near 2^-25 and y far from 0; read as 0 they would make y 0. */
START_TEST(scales_it_does_not_take)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode4");
	if (!fn)
		return;
	const struct wformat *f = &formats[_i == 0 ? 2 : 6];
	struct rng r = { 7100u + (uint64_t)_i };
	const int64_t M = 3, H = 192, I = 128;
	struct moe_expert_weights w = random_weights(&r, f, H, I);
	const struct moe_expert_params p = expert_params(f, M, H, I);
	float *x = normal_array(&r, (size_t)(M * H), _i == 0 ? 1.0 : 0x1p99);
	struct moe_qtensor *const q[3] = { &w.gate, &w.up, &w.down };
	for (int t = 0; t < (_i == 0 ? 3 : 2); t++) {
		uint8_t *s = q[t]->scales;
		for (size_t k = 0; k < moe_qtensor_scale_bytes(q[t]); k++)
			s[k] = _i == 0 ? (uint8_t)(s[k] | 0x80) : 0;
	}
	double *ref;
	float *y = check_against_f64(fn, &p, x, &w, _i == 0 ? "negative scales" : "MX scale 2^-127", &ref);
	int64_t nonzero = 0;
	for (int64_t k = 0; k < M * H; k++) {
		ck_assert_msg(ref[k] == 0.0 || y[k] != 0.0f, "y[%lld] is 0, reference %g", (long long)k, ref[k]);
		nonzero += ref[k] != 0.0;
	}
	ck_assert_int_gt(nonzero, M * H / 2);
	free(ref);
	free(y);
	free(x);
	free_weights(&w);
}
END_TEST

/* MXFP4 with every scale byte of gate and up 151 (2^24) and every other element of x about
 * 2^-128 (bf16-subnormal or near it, the rest about 2^-20), so that block sums mix fp32-subnormal
 * products x * e2m1 with normal ones before the scale multiplies them: within the bound. */
START_TEST(subnormal_products)
{
	moe_expert_fn *fn = variant_or_skip(name, "test_kernels_decode4");
	if (!fn)
		return;
	const struct wformat *f = &formats[6];
	struct rng r = { 7200u };
	const int64_t M = 2, H = 256, I = 192;
	struct moe_expert_weights w = random_weights(&r, f, H, I);
	const struct moe_expert_params p = expert_params(f, M, H, I);
	float *x = normal_array(&r, (size_t)(M * H), 0x1p-20);
	for (int64_t k = 0; k < M * H; k += 2)
		x[k] = ldexpf(x[k], -108);
	for (int t = 0; t < 2; t++) {
		struct moe_qtensor *q = t ? &w.up : &w.gate;
		memset(q->scales, 151, moe_qtensor_scale_bytes(q));
	}
	double *ref;
	float *y = check_against_f64(fn, &p, x, &w, "subnormal products", &ref);
	bool any = false;
	for (int64_t k = 0; k < M * H; k++)
		any |= ref[k] != 0.0 && y[k] != 0.0f;
	ck_assert_msg(any, "every output 0: a vacuous case");
	free(ref);
	free(y);
	free(x);
	free_weights(&w);
}
END_TEST

/* What the variant takes: 1 .. 8 tokens, NVFP4 with bf16 or NVFP4 activations, MXFP4 with bf16,
 * H and I multiples of 64; nothing else. */
START_TEST(supports_refuses)
{
	const struct moe_builtin *b = moe_builtin_find(name);
	ck_assert_ptr_nonnull(b);
	const struct moe_backend *t = b->table;
	struct moe_expert_params p = expert_params(&formats[0], 8, 128, 64);
	ck_assert(t->supports(MOE_OP_EXPERT, &p));
	p.tokens = 9;
	ck_assert(!t->supports(MOE_OP_EXPERT, &p));
	p.tokens = 1;
	p.hidden = 144;
	ck_assert(!t->supports(MOE_OP_EXPERT, &p));
	p.hidden = 128;
	p.inter = 96;
	ck_assert(!t->supports(MOE_OP_EXPERT, &p));
	p.inter = 64;
	p.act_quant = MOE_ACT_NONE;
	ck_assert(!t->supports(MOE_OP_EXPERT, &p));
	p.act_quant = MOE_ACT_FP8_TENSOR;
	ck_assert(!t->supports(MOE_OP_EXPERT, &p));
	struct moe_expert_params mx = expert_params(&formats[6], 4, 128, 128);
	ck_assert(t->supports(MOE_OP_EXPERT, &mx));
	mx.act_quant = MOE_ACT_NVFP4;
	ck_assert(!t->supports(MOE_OP_EXPERT, &mx));
	struct moe_expert_params w16 = { .tokens = 1, .hidden = 128, .inter = 128, .weight_dtype = MOE_DTYPE_BF16,
					 .act_quant = MOE_ACT_BF16 };
	ck_assert(!t->supports(MOE_OP_EXPERT, &w16));
	ck_assert(!t->supports(MOE_OP_NORM, &w16));
}
END_TEST

static Suite *decode4_suite(void)
{
	Suite *s = suite_create("kernels_decode4");
	TCase *tc = tcase_create("decode4");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, formats_and_token_counts, 0, (int)(sizeof formats / sizeof formats[0]));
	tcase_add_loop_test(tc, scales_it_does_not_take, 0, 2);
	tcase_add_test(tc, subnormal_products);
	tcase_add_test(tc, supports_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(decode4_suite());
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
