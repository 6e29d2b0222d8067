/* Tests of the vdpbf16ps prefill expert, moe_expert__avx512bf16_prefill
 * (kernels/expert/expert_bf16_prefill.h), beyond the every-variant sweep of test_kernels_expert.c:
 *   - token counts that take every token-block height of the balanced blocking (8 .. 12), with H
 *     and I that leave odd pairs, row tails and several K blocks, against moe_expert_ref_f64's
 *     bound (computed in double from the same bf16 operands, independently of the kernel);
 *   - subnormal operands that only show up late (the last gate, up or down row, the last token,
 *     an intermediate a that rounds to bf16 subnormals): vdpbf16ps flushes them to zero, so the
 *     kernel must notice and give the fp32 path's result. Each case is built so that a flush would
 *     move the result far outside the bound (the affected outputs come only from the subnormals),
 *     so the bound check fails for a kernel that lets one through;
 *   - supports() refusing what the variant does not take.
 * The cases skip themselves on a CPU without AVX512_BF16 (and under valgrind, which lacks it). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "expert_fixtures.h"

static const struct wformat w16a16 = { "bf16", MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } };

/* M > 16 from 17 (blocks of 8 + 9) through counts giving blocks of 10, 11 and 12 (24 = 12 + 12,
 * 37 = 9 + 9 + 9 + 10, 47 = 11 + 12 + 12 + 12, 100 = 11 x 9 + 1 x 12 .. as M * b / nb rounds);
 * H = 530: three K blocks of 256 columns, the last of 18; H = 41: an odd pair (zero pad) and a
 * tail of 9 down rows in the 32-row panels; I = 290: GEMM 2 over two K blocks, the second of 34
 * columns, and a 2-row tail of the 16-row gate/up panels; I = 47: an odd pair in GEMM 2. */
START_TEST(token_blocks_and_tails)
{
	static const int64_t Ms[] = { 17, 19, 22, 24, 37, 47, 100 };
	static const int64_t HI[][2] = { { 41, 47 }, { 530, 290 }, { 64, 32 } };
	moe_expert_fn *fn = variant_or_skip("moe_expert__avx512bf16_prefill", "test_kernels_prefill");
	if (!fn)
		return;
	struct rng r = { 1000u + (uint64_t)_i };
	for (size_t s = 0; s < sizeof HI / sizeof HI[0]; s++) {
		const int64_t M = Ms[_i], H = HI[s][0], I = HI[s][1];
		const struct moe_expert_params p = expert_params(&w16a16, M, H, I);
		struct moe_expert_weights w = random_weights(&r, &w16a16, H, I);
		float *x = normal_array(&r, (size_t)(M * H), 1.0);
		free(check_against_f64(fn, &p, x, &w, "random", NULL));
		free(x);
		free_weights(&w);
	}
}
END_TEST

static void set_bf16(struct moe_qtensor *q, int64_t row, int64_t col, float v)
{
	((moe_bf16 *)q->data)[row * q->cols + col] = moe_f32_to_bf16(v);
}

/* Every element of q times 2^e (exact: bf16 normals stay normal for the factors used here). */
static void scale_bf16(struct moe_qtensor *q, int e)
{
	moe_bf16 *d = q->data;
	for (int64_t i = 0; i < q->rows * q->cols; i++)
		d[i] = moe_f32_to_bf16(ldexpf(moe_bf16_to_f32(d[i]), e));
}

/* A subnormal operand found late (case _i). x ~ N(0, 2^24) unless said otherwise, gate and up
 * N(0, 1/H), down N(0, 1/I), so that g and u are about 2^12 and a about 2^23.
 *   0: the last down row bf16-subnormal (about 2^-130): y[m][H-1] is made of its products alone
 *      (about 2^-105); a flush makes it 0.
 *   1: the last gate row subnormal and every other up row zero: only a[m][I-1] is non-zero, with
 *      g about 2^-114 and a about 2^-103, and every y comes from it; a flush makes y 0.
 *   2: as 1 with the last up row subnormal and every other gate row zero (g = 0, silu(0) = 0);
 *      the last gate row N(0, 2^-24 / H) keeps silu(g) about 1 / 2.
 *   3: x = 1, every gate weight -0.2890625, every up weight 2^-16 (H = 300): g = -86.71875,
 *      silu(g) = g * e^g / (1 + e^g), about -2^-119, u = 300 * 2^-16, about 2^-7.8, so every a
 *      is about -2^-126.8, a bf16 subnormal: only the intermediate's scan can send the call to
 *      fp32. expert_f64.c's bound allows a flushed a (its step 3), so this checks the kernel's own
 *      contract, a rounded as the reference rounds it and fed to GEMM 2 as it is: with down
 *      times 2^20, every y is about 2^-108, and 0 when a is flushed.
 *   4: the last token's x fp32-subnormal, N(0, 2^-130) (bf16 subnormals after rounding), the
 *      other tokens' x N(0, 2^-70); gate and up times 2^68, down times 2^20: the last token's
 *      g and u are about 2^-62, a about 2^-125 and y about 2^-105; a flush makes them 0. */
START_TEST(late_subnormals)
{
	moe_expert_fn *fn = variant_or_skip("moe_expert__avx512bf16_prefill", "test_kernels_prefill");
	if (!fn)
		return;
	struct rng r = { 2000u + (uint64_t)_i };
	const int64_t M = 29, H = 300, I = 50;
	const struct moe_expert_params p = expert_params(&w16a16, M, H, I);
	struct moe_expert_weights w = random_weights(&r, &w16a16, H, I);
	float *x = normal_array(&r, (size_t)(M * H), _i == 4 ? 0x1p-70 : 0x1p12);
	switch (_i) {
	case 0:
		for (int64_t i = 0; i < I; i++)
			set_bf16(&w.down, H - 1, i, rng_normal(&r, 0x1p-130));
		break;
	case 1:
	case 2: {
		struct moe_qtensor *sub = _i == 1 ? &w.gate : &w.up, *other = _i == 1 ? &w.up : &w.gate;
		for (int64_t k = 0; k < H; k++) {
			set_bf16(sub, I - 1, k, rng_normal(&r, 0x1p-130));
			for (int64_t i = 0; i < I - 1; i++)
				set_bf16(other, i, k, 0.0f);
			if (_i == 2)
				set_bf16(other, I - 1, k, rng_normal(&r, 0x1p-12 / sqrt((double)H)));
		}
		break;
	}
	case 3:
		for (int64_t i = 0; i < I; i++)
			for (int64_t k = 0; k < H; k++) {
				set_bf16(&w.gate, i, k, -0.2890625f);
				set_bf16(&w.up, i, k, 0x1p-16f);
			}
		scale_bf16(&w.down, 20);
		for (int64_t i = 0; i < M * H; i++)
			x[i] = 1.0f;
		break;
	default:
		scale_bf16(&w.gate, 68);
		scale_bf16(&w.up, 68);
		scale_bf16(&w.down, 20);
		for (int64_t k = 0; k < H; k++)
			x[(M - 1) * H + k] = rng_normal(&r, 0x1p-130);
		break;
	}
	float *y = check_against_f64(fn, &p, x, &w, "late subnormal", NULL);
	for (int64_t m = 0; m < M; m++)
		for (int64_t h = 0; h < H; h++) {
			const bool decided = _i == 0 ? h == H - 1 : _i == 4 ? m == M - 1 : true;
			ck_assert_msg(!decided || y[m * H + h] != 0.0f, "case %d: y[%lld][%lld] is 0 (flushed)", _i,
				      (long long)m, (long long)h);
		}
	free(y);
	free(x);
	free_weights(&w);
}
END_TEST

/* The variant takes bf16 weights with bf16 activations and more than 16 tokens, the expert op only. */
START_TEST(supports_refuses)
{
	const struct moe_builtin *b = moe_builtin_find("moe_expert__avx512bf16_prefill");
	ck_assert_ptr_nonnull(b);
	moe_supports_fn *ok = b->table->supports;
	struct moe_expert_params p = expert_params(&w16a16, 17, 64, 32);
	ck_assert(ok(MOE_OP_EXPERT, &p));
	ck_assert(ok(MOE_OP_EXPERT, NULL));
	ck_assert(!ok(MOE_OP_LAYER, &p));
	p.tokens = 16;
	ck_assert(!ok(MOE_OP_EXPERT, &p));
	p.tokens = 17;
	p.act_quant = MOE_ACT_NONE;
	ck_assert(!ok(MOE_OP_EXPERT, &p));
	p.act_quant = MOE_ACT_BF16;
	p.weight_dtype = MOE_DTYPE_F32;
	ck_assert(!ok(MOE_OP_EXPERT, &p));
}
END_TEST

static Suite *prefill_suite(void)
{
	Suite *s = suite_create("kernels_prefill");
	TCase *tc = tcase_create("prefill");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, token_blocks_and_tails, 0, 7);
	tcase_add_loop_test(tc, late_subnormals, 0, 5);
	tcase_add_test(tc, supports_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(prefill_suite());
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
