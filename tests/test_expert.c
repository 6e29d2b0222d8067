/* Unit tests of the reference expert MLP (reference/expert*.c): moe_expert__ref, its validation
 * and workspace, and the double-precision reference with its a-priori bound.
 *
 * Expected values are worked by hand next to each case, or come from an independent fp32
 * implementation in this file (whole dequantized matrices, activations quantized by the codec as
 * whole tensors), in three summation orders:
 *   SEQ       the contract's order (sequential, no FMA): must equal moe_expert__ref bit for bit;
 *   PAIRWISE  products rounded, then summed as a balanced binary tree, silu as g * (1 / (1 + e));
 *   LANES     16 FMA accumulators (lane j takes k = j mod 16) folded pairwise, like an AVX-512 kernel;
 * both of which must stay within the bound of moe_expert_ref_f64 (error / bound <= 1), and three
 * deliberately wrong ones (gate and up swapped, ReLU instead of SiLU, a down scale read from the
 * neighbouring block) that must land far above it. */
#include <float.h>

#include "expert_fixtures.h"

enum alt_kind { ALT_SEQ, ALT_PAIRWISE, ALT_LANES, ALT_SWAP, ALT_RELU };

static const struct wformat formats[] = {
	{ "f32 / fp32 act", MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, { 0, 0 } },
	{ "f32 / bf16 act", MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
	{ "bf16 / bf16 act", MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
	{ "fp8 tensor / fp8 act", MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, { 0, 0 } },
	{ "fp8 channel / fp8 act", MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, { 0, 0 } },
	{ "fp8 128x128 / fp8 1x128 act", MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128, { 0, 0 } },
	{ "fp8 1x128 / fp32 act", MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, MOE_ACT_NONE, { 0, 0 } },
	{ "nvfp4 / bf16 act (W4A16)", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
	{ "nvfp4 128x4 / nvfp4 act derived (W4A4)", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_NVFP4, { 0, 0 } },
	{ "nvfp4 8x4 / nvfp4 act given (W4A4)", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_NVFP4, { 600.0f, 250.0f } },
	{ "mxfp4 / bf16 act", MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } },
	{ "mxfp4 / fp32 act", MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_NONE, { 0, 0 } },
};
enum { NFORMATS = sizeof formats / sizeof formats[0] };

/* Generic random shape: partial 128-blocks in both directions, multiples of 32. */
enum { GM = 6, GH = 192, GI = 160 };

/* ---- the independent fp32 implementation ---- */

static float *dequant_all(const struct moe_qtensor *q)
{
	float *v = malloc((size_t)(q->rows * q->cols) * sizeof(float));
	ck_assert_ptr_nonnull(v);
	moe_dequantize__ref(q, v);
	return v;
}

/* The activation v[rows][cols] quantized and dequantized as one tensor by the codec. */
static float *act_q(enum moe_act_quant aq, float gs, const float *v, int64_t rows, int64_t cols)
{
	const size_t n = (size_t)(rows * cols);
	float *out = malloc(n * sizeof(float));
	ck_assert_ptr_nonnull(out);
	struct moe_qtensor q = { .rows = rows, .cols = cols };
	switch (aq) {
	case MOE_ACT_NONE:
		memcpy(out, v, n * sizeof(float));
		return out;
	case MOE_ACT_BF16:
		for (size_t i = 0; i < n; i++)
			out[i] = moe_round_bf16(v[i]);
		return out;
	case MOE_ACT_FP8_TENSOR:
	case MOE_ACT_FP8_1x128:
		q.dtype = MOE_DTYPE_FP8E4M3;
		q.scaling = aq == MOE_ACT_FP8_TENSOR ? MOE_SCALING_PER_TENSOR : MOE_SCALING_BLOCK_1x128;
		break;
	default:
		q.dtype = MOE_DTYPE_NVFP4;
		q.scaling = MOE_SCALING_NVFP4;
		q.global_scale = gs > 0.0f ? gs : 0.0f; /* 0: the codec derives it from the whole tensor */
		break;
	}
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
	moe_quantize__ref(v, &q);
	moe_dequantize__ref(&q, out);
	moe_qtensor_free(&q);
	return out;
}

__attribute__((optimize("fp-contract=off"))) static float dot_seq(const float *x, const float *w, int64_t n)
{
	float acc = 0.0f;
	for (int64_t k = 0; k < n; k++)
		acc = acc + x[k] * w[k];
	return acc;
}

__attribute__((optimize("fp-contract=off"))) static float tree(const float *t, int64_t n)
{
	return n == 1 ? t[0] : tree(t, n / 2) + tree(t + n / 2, n - n / 2);
}

__attribute__((optimize("fp-contract=off"))) static float dot_pairwise(const float *x, const float *w, int64_t n)
{
	float t[1024];
	ck_assert_int_le(n, 1024);
	for (int64_t k = 0; k < n; k++)
		t[k] = x[k] * w[k];
	return tree(t, n);
}

static float dot_lanes(const float *x, const float *w, int64_t n)
{
	float lane[16] = { 0 };
	for (int64_t k = 0; k < n; k++)
		lane[k % 16] = fmaf(x[k], w[k], lane[k % 16]);
	return tree(lane, 16);
}

__attribute__((optimize("fp-contract=off"))) static float act_fn(enum alt_kind kind, float g, float u)
{
	switch (kind) {
	case ALT_SEQ:
		return (g / (1.0f + expf(-g))) * u;
	case ALT_SWAP:
		return (u / (1.0f + expf(-u))) * g;
	case ALT_RELU:
		return (g > 0.0f ? g : 0.0f) * u;
	default:
		return g * (1.0f / (1.0f + expf(-g))) * u;
	}
}

static float dot_kind(enum alt_kind kind, const float *x, const float *w, int64_t n)
{
	return kind == ALT_SEQ ? dot_seq(x, w, n) : kind == ALT_LANES ? dot_lanes(x, w, n) : dot_pairwise(x, w, n);
}

static void alt_expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		       float *y, enum alt_kind kind)
{
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	float *G = dequant_all(&w->gate), *U = dequant_all(&w->up), *D = dequant_all(&w->down);
	float *xq = act_q(p->act_quant, p->act_global_scale[0], x, M, H);
	float *a = malloc((size_t)(M * I) * sizeof(float));
	ck_assert_ptr_nonnull(a);
	for (int64_t m = 0; m < M; m++)
		for (int64_t i = 0; i < I; i++)
			a[m * I + i] = act_fn(kind, dot_kind(kind, xq + m * H, G + i * H, H),
					      dot_kind(kind, xq + m * H, U + i * H, H));
	float *aq = act_q(p->act_quant, p->act_global_scale[1], a, M, I);
	for (int64_t m = 0; m < M; m++)
		for (int64_t h = 0; h < H; h++)
			y[m * H + h] = dot_kind(kind, aq + m * I, D + h * I, I);
	free(G);
	free(U);
	free(D);
	free(xq);
	free(a);
	free(aq);
}

/* The alternative implementations as kernels of the moe_expert_fn type. */
static void alt_seq(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w, float *y,
		    void *ws)
{
	alt_expert(p, x, w, y, ALT_SEQ);
}

static void alt_pairwise(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			 float *y, void *ws)
{
	alt_expert(p, x, w, y, ALT_PAIRWISE);
}

static void alt_lanes(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		      float *y, void *ws)
{
	alt_expert(p, x, w, y, ALT_LANES);
}

static void alt_swap(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		     float *y, void *ws)
{
	alt_expert(p, x, w, y, ALT_SWAP);
}

static void alt_relu(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		     float *y, void *ws)
{
	alt_expert(p, x, w, y, ALT_RELU);
}

/* ---- helpers ---- */

static struct moe_qtensor f32_tensor(const float *v, int64_t rows, int64_t cols)
{
	static const struct wformat f32 = { "f32", MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, { 0, 0 } };
	return make_qtensor(v, rows, cols, &f32, 0.0f);
}

static struct moe_expert_weights f32_weights(const float *g, const float *u, const float *d, int64_t h, int64_t i)
{
	return (struct moe_expert_weights){ f32_tensor(g, i, h), f32_tensor(u, i, h), f32_tensor(d, h, i) };
}

/* error / bound of kernel fn against moe_expert_ref_f64 on (p, x, w) */
static double ratio_of(moe_expert_fn *fn, const struct moe_expert_params *p, const float *x,
		       const struct moe_expert_weights *w, const struct moe_expert_weights *w_ref)
{
	const size_t n = (size_t)(p->tokens * p->hidden);
	float *y = malloc(n * sizeof(float));
	double *ref = malloc(n * sizeof(double)), *bound = malloc(n * sizeof(double));
	ck_assert(y && ref && bound);
	run_expert(fn, p, x, w, y);
	ck_assert_int_eq(moe_expert_ref_f64(p, x, w_ref, ref, bound), MOE_OK);
	const double r = max_ratio(y, ref, bound, n);
	free(y);
	free(ref);
	free(bound);
	return r;
}

/* ---- hand-worked cases ---- */

START_TEST(test_hand_f32)
{
	/* H = 2, I = 2, two tokens, f32 weights, fp32 activations.
	 * token 0: x = (1, 2)
	 *   g0 = 50*1 + 25*2 = 100, silu(100) = 100 / (1 + expf(-100)) = 100 / (1 + 3.7e-44) = 100 exactly
	 *   u0 = 1*1 + 1*2 = 3  ->  a0 = 300
	 *   g1 = 0*1 + 0*2 = 0, silu(0) = 0 / (1 + 1) = 0  ->  a1 = 0 * u1 = 0 (u1 = -1 + 2 = 1)
	 *   y0 = 0.5*300 + 7*0 = 150,  y1 = -1*300 + 3*0 = -300
	 * token 1: x = (-1, -2)
	 *   g0 = -100: expf(100) = +inf, silu(-100) = -100 / inf = -0  ->  a0 = -0 * -3 = +0
	 *   g1 = 0 -> a1 = 0;  y = (0, 0) */
	const float gate[4] = { 50, 25, 0, 0 }, up[4] = { 1, 1, -1, 1 }, down[4] = { 0.5f, 7, -1, 3 };
	const float x[4] = { 1, 2, -1, -2 };
	struct moe_expert_weights w = f32_weights(gate, up, down, 2, 2);
	const struct wformat f = formats[0];
	struct moe_expert_params p = expert_params(&f, 2, 2, 2);
	float y[4];
	run_expert(moe_expert__ref, &p, x, &w, y);
	ck_assert_float_eq(y[0], 150.0f);
	ck_assert_float_eq(y[1], -300.0f);
	ck_assert_float_eq(y[2], 0.0f);
	ck_assert_float_eq(y[3], 0.0f);

	double ref[4], bound[4];
	ck_assert_int_eq(moe_expert_ref_f64(&p, x, &w, ref, bound), MOE_OK);
	/* double: silu(100) = 100 - 3.7e-42, y0 = 150 - 2e-42: the bound is tiny but not zero */
	ck_assert(fabs(ref[0] - 150.0) < 1e-9 && fabs(ref[1] + 300.0) < 1e-9);
	ck_assert(bound[0] > 0.0 && bound[0] < 1e-3 && bound[1] < 1e-3);
	ck_assert(max_ratio(y, ref, bound, 4) <= 1.0);
	free_weights(&w);
}
END_TEST

START_TEST(test_hand_silu_ln3)
{
	/* H = 2, I = 1: x = (ln 3, 5), gate = (1, 0) -> g = ln 3; up = (0, 1) -> u = 5;
	 * silu(ln 3) = ln 3 / (1 + 1/3) = 0.75 ln 3, a = 3.75 ln 3 = 4.1198...;
	 * down = (1, -2) -> y = (3.75 ln 3, -7.5 ln 3). fp32 rounds ln 3 once, expf, the addition, the
	 * division, the product with u and the down products: a handful of roundings, so 8 ulps. */
	const float ln3 = (float)log(3.0);
	const float gate[2] = { 1, 0 }, up[2] = { 0, 1 }, down[2] = { 1, -2 }, x[2] = { ln3, 5 };
	struct moe_expert_weights w = f32_weights(gate, up, down, 2, 1);
	struct moe_expert_params p = expert_params(&formats[0], 1, 2, 1);
	float y[2];
	run_expert(moe_expert__ref, &p, x, &w, y);
	const double want0 = 3.75 * log(3.0), want1 = -7.5 * log(3.0);
	ck_assert(fabs(y[0] - want0) <= 8 * 0x1p-24 * fabs(want0));
	ck_assert(fabs(y[1] - want1) <= 8 * 0x1p-24 * fabs(want1));
	free_weights(&w);
}
END_TEST

START_TEST(test_hand_bf16_act)
{
	/* bf16 activations: x = (1 + 2^-9, 3) rounds to (1, 3) (2^-9 is below half a bf16 ulp of 1,
	 * 2^-8). gate = (20, 0) -> g = 20: expf(-20) = 2.06e-9 < 2^-24, so 1 + e = 1 and silu = 20;
	 * up = (0, 1) -> u = 3; a = 60, a bf16 value (60 = 1.875 * 2^5). down = (1, 0.5) -> y = (60, 30).
	 * Without the rounding of x, g would be 20 + 20*2^-9 = 20.039 and y0 = 60.117. */
	const float gate[2] = { 20, 0 }, up[2] = { 0, 1 }, down[2] = { 1, 0.5f }, x[2] = { 1.0f + 0x1p-9f, 3 };
	struct moe_expert_weights w = f32_weights(gate, up, down, 2, 1);
	struct moe_expert_params p = expert_params(&formats[1], 1, 2, 1);
	float y[2];
	run_expert(moe_expert__ref, &p, x, &w, y);
	ck_assert_float_eq(y[0], 60.0f);
	ck_assert_float_eq(y[1], 30.0f);
	free_weights(&w);
}
END_TEST

START_TEST(test_hand_bf16_intermediate_tie)
{
	/* The intermediate on a bf16 rounding midpoint. x = (1, 0), gate = (64.25, 0): g = 64.25 and
	 * silu(g) = 64.25 in fp32 (expf(-64.25) is far below 2^-24); up = (1, 0): a = 64.25, halfway
	 * between the bf16 neighbours 64 and 64.5 (step 0.5 in [64, 128)): ties to even -> 64.
	 * down = (1, 2): y = (64, 128). In exact arithmetic silu(64.25) = 64.25 - 7e-27 < 64.25, so a
	 * kernel may round to either side: the reference takes the midpoint 64.25 with half-width 0.25,
	 * so y_ref = (64.25, 128.5) and bound = (0.25, 0.5) plus the rounding of the one-term down
	 * product, gamma(1) * (64.25 + 0.25) * |d| = 2^-24 * 64.5 * |d| = 3.8e-6 * |d|; exactly one
	 * element is uncertain. */
	const float gate[2] = { 64.25f, 0 }, up[2] = { 1, 0 }, down[2] = { 1, 2 }, x[2] = { 1, 0 };
	struct moe_expert_weights w = f32_weights(gate, up, down, 2, 1);
	struct moe_expert_params p = expert_params(&formats[1], 1, 2, 1);
	float y[2];
	run_expert(moe_expert__ref, &p, x, &w, y);
	ck_assert_float_eq(y[0], 64.0f);
	ck_assert_float_eq(y[1], 128.0f);
	double ref[2], bound[2];
	struct moe_expert_f64_info info;
	ck_assert_int_eq(moe_expert_ref_f64_ex(&p, x, &w, ref, bound, &info), MOE_OK);
	ck_assert_int_eq(info.a_uncertain, 1);
	ck_assert(!info.unbounded);
	ck_assert(fabs(ref[0] - 64.25) < 1e-12 && fabs(ref[1] - 128.5) < 1e-12);
	ck_assert(bound[0] >= 0.25 && bound[0] < 0.25 + 4e-6);
	ck_assert(bound[1] >= 0.5 && bound[1] < 0.5 + 8e-6);
	ck_assert(max_ratio(y, ref, bound, 2) <= 1.0);
	free_weights(&w);
}
END_TEST

START_TEST(test_hand_fp8_tensor_act)
{
	/* FP8 per-tensor activations, f32 weights cannot take them: fp8e4m3 per-tensor weights of
	 * exactly representable values instead. Weights: gate = (1, 0), up = (0, 1), amax 1:
	 * gs = 448 / 1 = 448, 1 * 448 = 448 encodes exactly, 448 / 448 = 1: exact. down = (1, 2),
	 * amax 2: gs = 224, 2 * 224 = 448, 1 * 224 = 224 (e4m3 has 224 = 1.75 * 2^7): exact.
	 * x = (2, 3): amax 3, gs = fl(448 / 3) = 149.33333; 2 * gs = 298.67 lies between the e4m3
	 * values 288 and 320 (step 32 in [256, 512)), nearer 288, so x'0 = 288 / gs = 288 * 3 / 448 =
	 * 27/14 = 1.9285714; 3 * gs = 448 (within an ulp) -> x'1 = 3.
	 * g = 27/14, u = 3, a = silu(27/14) * 3 = 27/14 / (1 + e^(-27/14)) * 3 = 5.0513...; the single
	 * intermediate value is its own amax and comes back within an ulp or two (448 / gs).
	 * y = (a, 2a). Tolerance: a few fp32 roundings of the chain, 1e-5 relative. */
	const struct wformat f = formats[3];
	const float gate[2] = { 1, 0 }, up[2] = { 0, 1 }, down[2] = { 1, 2 }, x[2] = { 2, 3 };
	struct moe_expert_weights w = { make_qtensor(gate, 1, 2, &f, 0), make_qtensor(up, 1, 2, &f, 0),
					make_qtensor(down, 2, 1, &f, 0) };
	struct moe_expert_params p = expert_params(&f, 1, 2, 1);
	float y[2];
	run_expert(moe_expert__ref, &p, x, &w, y);
	const double g = 27.0 / 14.0, a = g / (1.0 + exp(-g)) * 3.0;
	ck_assert(fabs(y[0] - a) <= 1e-5 * a);
	ck_assert(fabs(y[1] - 2 * a) <= 1e-5 * 2 * a);
	/* and unquantized x would give g = 2: silu(2) * 3 = 5.2842, 4.6% away */
	ck_assert(fabs(y[0] - 2.0 / (1.0 + exp(-2.0)) * 3.0) > 0.2);
	free_weights(&w);
}
END_TEST

START_TEST(test_hand_nvfp4_w4a4)
{
	/* W4A4 with given global scales 1, where NVFP4 is exact arithmetic: a 16-block of amax 6 gets
	 * SF = 6 * (1 * fl(1/6)) = 6 * 0.16666667 = 1.0000000 (rounded), e4m3(1) = 1, d = 1 * (1/1) = 1,
	 * oscale = 1: its elements are plainly e2m1-rounded. H = 16, I = 16, one token.
	 * x = (6, 2.5, 1.2, -0.3, 5, 0, ...): 2.5 is the midpoint of 2 (even code 4) and 3 -> 2;
	 *   1.2 < 1.25 -> 1; |-0.3| > 0.25 -> -0.5; 5 is the midpoint of 4 (code 6, even) and 6 -> 4:
	 *   xq = (6, 2, 1, -0.5, 4, 0, ...).
	 * Weights (global scale 1), every nonzero block of amax 6, so exact; all other rows zero.
	 *   gate row 0 = (0, 0, 0, 0, 6, 0, ...): g = 4*6 = 24, silu(24) = 24 (expf(-24) = 3.8e-11 <
	 *   2^-24); up row 0 = (0, 6, 3, 0, ...): u = 2*6 + 1*3 = 15; a0 = 24*15 = 360; rows 1..15:
	 *   g = 0, silu(0) = 0, a = 0.
	 * Intermediate, global scale 1: block amax 360, SF = 360 * 0.16666667 = 60.0000017 -> fl 60,
	 *   e4m3(60) = 60 (1.875 * 2^5), oscale = fl(1/60) = 0.016666668, 360 * oscale = 6.0000003 ->
	 *   e2m1 6, a' = 6 * 60 = 360 exactly.
	 * down row 0 = (6, 0, ...): y0 = 360*6 = 2160; row 1 = (-3, 6, 0, ...): y1 = 360*-3 + 0*6 =
	 *   -1080; other rows zero: 0. */
	struct wformat f = formats[9];
	f.layout = MOE_SF_LINEAR;
	f.act_gs[0] = f.act_gs[1] = 1.0f;
	float x[16] = { 6, 2.5f, 1.2f, -0.3f, 5 }, gate[256] = { 0 }, up[256] = { 0 }, down[256] = { 0 };
	gate[4] = 6;
	up[1] = 6;
	up[2] = 3;
	down[0] = 6;
	down[16] = -3;
	down[17] = 6;
	struct moe_expert_weights w = { make_qtensor(gate, 16, 16, &f, 1.0f), make_qtensor(up, 16, 16, &f, 1.0f),
					make_qtensor(down, 16, 16, &f, 1.0f) };
	struct moe_expert_params p = expert_params(&f, 1, 16, 16);
	float y[16];
	run_expert(moe_expert__ref, &p, x, &w, y);
	ck_assert_float_eq(y[0], 2160.0f);
	ck_assert_float_eq(y[1], -1080.0f);
	for (int h = 2; h < 16; h++)
		ck_assert_float_eq(y[h], 0.0f);
	free_weights(&w);
}
END_TEST

START_TEST(test_hand_nvfp4_block_scale_flip)
{
	/* W4A4, global scales 1 (given), H = I = 16, one token, every weight block of amax 6 so exact
	 * (see test_hand_nvfp4_w4a4). x = (6, 1.5, 0.5, 0, ...) is exact in e2m1.
	 * gate row 0 = (4, 1, 0, ..., 0, 6): g = 6*4 + 1.5*1 = 25.5, silu(25.5) = 25.5 in fp32;
	 * up row 0 = (0, 0, 0.5, 0, ..., 0, 6): u = 0.5*0.5 = 0.25; a0 = 6.375; other rows 0.
	 * The intermediate's block: vmax = 6.375, SF = 6.375 * fl(1/6) = 1.06250003 -> fl 1.0625, the
	 * midpoint of the e4m3 values 1 and 1.125: ties to even -> 1; oscale = 1, 6.375 saturates to
	 * e2m1 6: a' = 6. down row 0 = (6, 0, ...): y0 = 36.
	 * The exact silu(25.5) * 0.25 is 6.375 - 5e-11, and a correct kernel's a may lie on either side
	 * of 6.375, which flips the block scale: SF = 1.125 gives oscale = 1/1.125, 6.375 * 0.889 =
	 * 5.67 -> e2m1 6 -> a' = 6 * 1.125 = 6.75. So a' is 6 or 6.75: the reference takes 6.375 with
	 * half width 0.375, y_ref0 = 6 * 6.375 = 38.25 with bound >= 6 * 0.375 = 2.25, and reports the
	 * block scale as uncertain. */
	struct wformat f = formats[9];
	f.layout = MOE_SF_LINEAR;
	f.act_gs[0] = f.act_gs[1] = 1.0f;
	float x[16] = { 6, 1.5f, 0.5f }, gate[256] = { 4, 1 }, up[256] = { 0, 0, 0.5f }, down[256] = { 6 };
	gate[15] = 6;
	up[15] = 6;
	struct moe_expert_weights w = { make_qtensor(gate, 16, 16, &f, 1.0f), make_qtensor(up, 16, 16, &f, 1.0f),
					make_qtensor(down, 16, 16, &f, 1.0f) };
	struct moe_expert_params p = expert_params(&f, 1, 16, 16);
	float y[16];
	run_expert(moe_expert__ref, &p, x, &w, y);
	ck_assert_float_eq(y[0], 36.0f);
	double ref[16], bound[16];
	struct moe_expert_f64_info info;
	ck_assert_int_eq(moe_expert_ref_f64_ex(&p, x, &w, ref, bound, &info), MOE_OK);
	ck_assert_int_ge(info.scales_uncertain, 1);
	ck_assert_int_eq(info.a_uncertain, 1);
	ck_assert(fabs(ref[0] - 38.25) < 1e-9);
	ck_assert(bound[0] >= 2.25 && bound[0] < 2.25 + 1e-4);
	ck_assert(max_ratio(y, ref, bound, 16) <= 1.0);
	free_weights(&w);
}
END_TEST

/* ---- the contract order, and bounds on random data ---- */

START_TEST(test_contract_order_bitwise)
{
	/* moe_expert__ref against SEQ, written here from the contract: same bits, every format. */
	for (int fi = 0; fi < NFORMATS; fi++) {
		struct rng r = { 1000 + (uint64_t)fi };
		const struct wformat *f = &formats[fi];
		struct moe_expert_weights w = random_weights(&r, f, GH, GI);
		float *x = normal_array(&r, GM * GH, 1.0);
		struct moe_expert_params p = expert_params(f, GM, GH, GI);
		float y[GM * GH], z[GM * GH];
		run_expert(moe_expert__ref, &p, x, &w, y);
		run_expert(alt_seq, &p, x, &w, z);
		ck_assert_msg(memcmp(y, z, sizeof y) == 0, "%s: reference differs from the contract order", f->name);
		free(x);
		free_weights(&w);
	}
}
END_TEST

START_TEST(test_swizzled_layouts_same_result)
{
	/* The row views of swizzled NVFP4 scales read the same scales as the linear layout. */
	struct rng r = { 77 };
	float *g = normal_array(&r, GI * GH, 0.1), *u = normal_array(&r, GI * GH, 0.1);
	float *d = normal_array(&r, GH * GI, 0.1), *x = normal_array(&r, GM * GH, 1.0);
	float y[3][GM * GH];
	for (int l = 0; l < 3; l++) {
		struct wformat f = formats[9];
		f.layout = (enum moe_sf_layout)l;
		struct moe_expert_weights w = { make_qtensor(g, GI, GH, &f, 0), make_qtensor(u, GI, GH, &f, 0),
						make_qtensor(d, GH, GI, &f, 0) };
		struct moe_expert_params p = expert_params(&f, GM, GH, GI);
		run_expert(moe_expert__ref, &p, x, &w, y[l]);
		free_weights(&w);
	}
	ck_assert(memcmp(y[0], y[1], sizeof y[0]) == 0);
	ck_assert(memcmp(y[0], y[2], sizeof y[0]) == 0);
	free(g);
	free(u);
	free(d);
	free(x);
}
END_TEST

START_TEST(test_correct_orders_within_bound)
{
	/* (a) the reference and two reordered correct kernels stay within the bound, every format, and
	 * the bound is not vacuous: well below the outputs. */
	for (int fi = 0; fi < NFORMATS; fi++) {
		for (int m = 1; m <= GM; m += GM - 1) {
			struct rng r = { 2000 + (uint64_t)(fi * 10 + m) };
			const struct wformat *f = &formats[fi];
			struct moe_expert_weights w = random_weights(&r, f, GH, GI);
			float *x = normal_array(&r, (size_t)(m * GH), 1.0);
			struct moe_expert_params p = expert_params(f, m, GH, GI);
			const size_t n = (size_t)(m * GH);
			double ref[GM * GH], bound[GM * GH], ymax = 0.0, bmax = 0.0;
			struct moe_expert_f64_info info;
			ck_assert_int_eq(moe_expert_ref_f64_ex(&p, x, &w, ref, bound, &info), MOE_OK);
			ck_assert_msg(!info.unbounded, "%s: unbounded", f->name);
			for (size_t i = 0; i < n; i++) {
				ymax = fmax(ymax, fabs(ref[i]));
				bmax = fmax(bmax, bound[i]);
			}
			ck_assert_msg(ymax > 0.1 && bmax < 0.05 * ymax, "%s: vacuous case (|y| %g, bound %g)", f->name,
				      ymax, bmax);
			const double r_ref = ratio_of(moe_expert__ref, &p, x, &w, &w);
			const double r_pair = ratio_of(alt_pairwise, &p, x, &w, &w);
			const double r_lanes = ratio_of(alt_lanes, &p, x, &w, &w);
			ck_assert_msg(r_ref <= 1.0 && r_pair <= 1.0 && r_lanes <= 1.0,
				      "%s M=%d: error/bound ref %g pairwise %g lanes %g", f->name, m, r_ref, r_pair, r_lanes);
			free(x);
			free_weights(&w);
		}
	}
}
END_TEST

static double silu_d(double t)
{
	return t / (1.0 + exp(-t));
}

START_TEST(test_extremal_model_kernel)
{
	/* The bound against the worst kernel its model allows, built here in double: each dot product
	 * off by the full gamma(n) * sum|x*w| (u = 2^-24, gamma(n) = n*u / (1 - n*u)), silu off by
	 * 16u*|silu| + 4u*|g| (the budget of reference/expert_f64.c), the product a = silu * u off by
	 * one rounding, every sign chosen to push each output the same way (per output h, per element i
	 * the combination of the 16 sign choices that moves a_i * down[h][i] furthest), the down sum off
	 * by its full gamma(I) * sum|a*d|. Such a kernel must stay within the bound (ratio <= 1), and
	 * come near it (ratio >= 0.3): the bound is neither unsound nor lazily loose on fp32 data. */
	enum { M = 2 };
	const double u = 0x1p-24;
	const double gh = GH * u / (1 - GH * u), gi = GI * u / (1 - GI * u);
	struct rng r = { 4242 };
	const struct wformat *f = &formats[0];
	struct moe_expert_weights w = random_weights(&r, f, GH, GI);
	float *x = normal_array(&r, M * GH, 1.0);
	float *G = dequant_all(&w.gate), *U = dequant_all(&w.up), *D = dequant_all(&w.down);
	struct moe_expert_params p = expert_params(f, M, GH, GI);
	double ref[M * GH], bound[M * GH], worst = 0.0;
	ck_assert_int_eq(moe_expert_ref_f64(&p, x, &w, ref, bound), MOE_OK);
	for (int m = 0; m < M; m++) {
		double a[GI], up_dev[GI], down_dev[GI];
		for (int i = 0; i < GI; i++) {
			double g = 0, zg = 0, v = 0, zv = 0;
			for (int k = 0; k < GH; k++) {
				g += (double)x[m * GH + k] * G[i * GH + k];
				zg += fabs((double)x[m * GH + k] * G[i * GH + k]);
				v += (double)x[m * GH + k] * U[i * GH + k];
				zv += fabs((double)x[m * GH + k] * U[i * GH + k]);
			}
			a[i] = silu_d(g) * v;
			up_dev[i] = down_dev[i] = 0.0;
			for (int c = 0; c < 16; c++) {
				const double gk = g + (c & 1 ? 1 : -1) * gh * zg, vk = v + (c & 2 ? 1 : -1) * gh * zv;
				const double sk = silu_d(gk) + (c & 4 ? 1 : -1) * (16 * u * fabs(silu_d(gk)) + 4 * u * fabs(gk));
				const double dev = sk * vk * (1 + (c & 8 ? 1 : -1) * u) - a[i];
				up_dev[i] = fmax(up_dev[i], dev);
				down_dev[i] = fmin(down_dev[i], dev);
			}
		}
		for (int h = 0; h < GH; h++) {
			double y = 0, z = 0;
			for (int i = 0; i < GI; i++) {
				const double d = D[h * GI + i], ak = a[i] + (d >= 0 ? up_dev[i] : down_dev[i]);
				y += ak * d;
				z += fabs(ak * d);
			}
			y += gi * z;
			const double ratio = fabs(y - ref[m * GH + h]) / bound[m * GH + h];
			ck_assert_msg(ratio <= 1.0, "token %d output %d: extremal kernel at %g of the bound", m, h, ratio);
			worst = fmax(worst, ratio);
		}
	}
	ck_assert_msg(worst >= 0.3, "the extremal kernel reaches only %g of the bound", worst);
	free(G);
	free(U);
	free(D);
	free(x);
	free_weights(&w);
}
END_TEST

START_TEST(test_extremal_quantized_intermediate)
{
	/* The same extremal model for the quantized intermediates: the kernel's a is pushed to the ends
	 * of its model interval (all up, all down, a random mix, the signs of down row 0), quantized
	 * by the codec as one tensor (so a derived scale follows the pushed amax), and the down sum is
	 * pushed by its full gamma(I) * sum|a*d| either way. Every such kernel must stay within the
	 * bound: the midpoint and half width of reference/expert_hull.c cover both sides of each
	 * rounding decision the push can flip, and the scale's own movement. */
	enum { M = 3 };
	const int cases[] = { 1, 3, 4, 5, 8, 9 };
	const double u = 0x1p-24;
	const double gh = GH * u / (1 - GH * u), gi = GI * u / (1 - GI * u);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct rng r = { 5150 + (uint64_t)c };
		const struct wformat *f = &formats[cases[c]];
		struct moe_expert_weights w = random_weights(&r, f, GH, GI);
		float *x = normal_array(&r, M * GH, 1.0);
		float *G = dequant_all(&w.gate), *U = dequant_all(&w.up), *D = dequant_all(&w.down);
		float *xq = act_q(f->act, f->act_gs[0], x, M, GH);
		struct moe_expert_params p = expert_params(f, M, GH, GI);
		double ref[M * GH], bound[M * GH], worst = 0.0;
		ck_assert_int_eq(moe_expert_ref_f64(&p, x, &w, ref, bound), MOE_OK);
		float up_a[M * GI], down_a[M * GI], pushed[M * GI];
		for (int m = 0; m < M; m++) {
			for (int i = 0; i < GI; i++) {
				double g = 0, zg = 0, v = 0, zv = 0;
				for (int k = 0; k < GH; k++) {
					g += (double)xq[m * GH + k] * G[i * GH + k];
					zg += fabs((double)xq[m * GH + k] * G[i * GH + k]);
					v += (double)xq[m * GH + k] * U[i * GH + k];
					zv += fabs((double)xq[m * GH + k] * U[i * GH + k]);
				}
				double hi = -INFINITY, lo = INFINITY;
				for (int cb = 0; cb < 16; cb++) {
					const double gk = g + (cb & 1 ? 1 : -1) * gh * zg, vk = v + (cb & 2 ? 1 : -1) * gh * zv;
					const double sk = silu_d(gk) + (cb & 4 ? 1 : -1) * (16 * u * fabs(silu_d(gk)) + 4 * u * fabs(gk));
					const double ak = sk * vk * (1 + (cb & 8 ? 1 : -1) * u);
					hi = fmax(hi, ak);
					lo = fmin(lo, ak);
				}
				/* fp32 values inside the model interval */
				up_a[m * GI + i] = nextafterf((float)hi, 0.0f);
				down_a[m * GI + i] = nextafterf((float)lo, 0.0f);
			}
		}
		for (int trial = 0; trial < 4; trial++) {
			for (int j = 0; j < M * GI; j++) {
				bool up = trial == 0 || (trial == 2 && (rng_next(&r) & 1)) ||
					  (trial == 3 && D[j % GI] >= 0.0f);
				pushed[j] = up ? up_a[j] : down_a[j];
			}
			float *aq = act_q(f->act, f->act_gs[1], pushed, M, GI);
			for (int m = 0; m < M; m++) {
				for (int h = 0; h < GH; h++) {
					double y = 0, z = 0;
					for (int i = 0; i < GI; i++) {
						y += (double)aq[m * GI + i] * D[h * GI + i];
						z += fabs((double)aq[m * GI + i] * D[h * GI + i]);
					}
					const double e = fabs(y - ref[m * GH + h]) + gi * z;
					worst = fmax(worst, e / bound[m * GH + h]);
				}
			}
			free(aq);
		}
		ck_assert_msg(worst <= 1.0, "%s: pushed kernel at %g of the bound", f->name, worst);
		free(G);
		free(U);
		free(D);
		free(x);
		free(xq);
		free_weights(&w);
	}
}
END_TEST

START_TEST(test_derived_scale_reported)
{
	/* A scale derived from amax is itself uncertain by the bound of the largest element: reported
	 * and propagated. fp8 per-tensor activations: at least the intermediate's scale counts. */
	struct rng r = { 31 };
	const struct wformat *f = &formats[3];
	struct moe_expert_weights w = random_weights(&r, f, GH, GI);
	float *x = normal_array(&r, GM * GH, 1.0);
	struct moe_expert_params p = expert_params(f, GM, GH, GI);
	double ref[GM * GH], bound[GM * GH];
	struct moe_expert_f64_info info;
	ck_assert_int_eq(moe_expert_ref_f64_ex(&p, x, &w, ref, bound, &info), MOE_OK);
	ck_assert_int_ge(info.scales_uncertain, 1);
	ck_assert(!info.unbounded);
	free(x);
	free_weights(&w);
}
END_TEST

START_TEST(test_unbounded_when_all_may_be_zero)
{
	/* x = (1, 1), gate = (1, -1): g = 0 exactly in every order, but sum |x*w| = 2, so a kernel's g is
	 * only known to within the bound of 0 and so is a. With fp8 per-tensor activations the scale
	 * 448 / amax(a) could be anything: no finite bound, and it is reported. */
	const struct wformat *f = &formats[3];
	const float gate[2] = { 1, -1 }, up[2] = { 1, 1 }, down[2] = { 1, 1 }, x[2] = { 1, 1 };
	struct moe_expert_weights w = { make_qtensor(gate, 1, 2, f, 0), make_qtensor(up, 1, 2, f, 0),
					make_qtensor(down, 2, 1, f, 0) };
	struct moe_expert_params p = expert_params(f, 1, 2, 1);
	double ref[2], bound[2];
	struct moe_expert_f64_info info;
	ck_assert_int_eq(moe_expert_ref_f64_ex(&p, x, &w, ref, bound, &info), MOE_OK);
	ck_assert(info.unbounded);
	ck_assert(isinf(bound[0]) && isinf(bound[1]));
	float y[2];
	run_expert(moe_expert__ref, &p, x, &w, y);
	ck_assert_float_eq(y[0], 0.0f);
	free_weights(&w);
}
END_TEST

/* Copy of q whose scales are read one block to the right (wrapping): a kernel indexing the
 * neighbouring block. Row-major scale grids of `per_row` entries per row of blocks. */
static struct moe_qtensor shift_scales(const struct moe_qtensor *q)
{
	struct moe_qtensor s = *q;
	ck_assert_int_eq(moe_qtensor_alloc(&s), MOE_OK);
	memcpy(s.data, q->data, moe_qtensor_data_bytes(q));
	int64_t rows = q->rows, per_row = 0;
	size_t elem = 1;
	switch (q->scaling) {
	case MOE_SCALING_BLOCK_128x128:
		rows = (q->rows + 127) / 128;
		per_row = (q->cols + 127) / 128;
		elem = sizeof(float);
		break;
	case MOE_SCALING_NVFP4:
		ck_assert_int_eq(q->sf_layout, MOE_SF_LINEAR);
		per_row = q->cols / 16;
		break;
	default:
		ck_assert_int_eq(q->scaling, MOE_SCALING_MX);
		per_row = q->cols / 32;
		break;
	}
	for (int64_t r = 0; r < rows; r++)
		for (int64_t k = 0; k < per_row; k++)
			memcpy((char *)s.scales + (size_t)(r * per_row + k) * elem,
			       (char *)q->scales + (size_t)(r * per_row + (k + 1) % per_row) * elem, elem);
	return s;
}

START_TEST(test_mutants_exceed_bound)
{
	/* (b) wrong kernels on a generic random case: far above the bound (error/bound > 100 for a swap
	 * or ReLU; > 20 for a scale off by one block, which changes a few blocks' scales by tens of %). */
	const int cases[] = { 0, 5, 7, 10 }; /* f32; fp8 128x128 + 1x128 act; nvfp4 W4A16; mxfp4 */
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct rng r = { 3000 + (uint64_t)c };
		const struct wformat *f = &formats[cases[c]];
		struct moe_expert_weights w = random_weights(&r, f, GH, GI);
		float *x = normal_array(&r, GM * GH, 1.0);
		struct moe_expert_params p = expert_params(f, GM, GH, GI);
		const double swap = ratio_of(alt_swap, &p, x, &w, &w);
		const double relu = ratio_of(alt_relu, &p, x, &w, &w);
		ck_assert_msg(swap > 100 && relu > 100, "%s: swapped %g relu %g", f->name, swap, relu);
		if (f->scaling != MOE_SCALING_NONE) {
			struct moe_expert_weights bad = w;
			bad.down = shift_scales(&w.down);
			const double off = ratio_of(moe_expert__ref, &p, x, &bad, &w);
			ck_assert_msg(off > 20, "%s: down scale off by one block %g", f->name, off);
			moe_qtensor_free(&bad.down);
		}
		free(x);
		free_weights(&w);
	}
}
END_TEST

/* ---- validation, workspace, empty input ---- */

static void expect_invalid(const struct moe_expert_params *p, const struct moe_expert_weights *w, const char *needle)
{
	moe_clear_error();
	ck_assert_int_eq(moe_expert_validate(p, w), MOE_ERR_INVALID_ARG);
	ck_assert_msg(strstr(moe_last_error(), needle) != NULL, "message '%s' lacks '%s'", moe_last_error(), needle);
	ck_assert_msg(strncmp(moe_last_error(), "expert", 6) == 0, "message '%s' does not name the op",
		      moe_last_error());
}

START_TEST(test_validate)
{
	struct rng r = { 5 };
	const struct wformat *f = &formats[0];
	struct moe_expert_weights w = random_weights(&r, f, 32, 48);
	const struct moe_expert_params good = expert_params(f, 3, 32, 48);
	ck_assert_int_eq(moe_expert_validate(&good, &w), MOE_OK);
	struct moe_expert_params p;

	ck_assert_int_eq(moe_expert_validate(NULL, &w), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_expert_validate(&good, NULL), MOE_ERR_INVALID_ARG);
	p = good, p.tokens = -1;
	expect_invalid(&p, &w, "tokens=-1");
	p = good, p.hidden = 0;
	expect_invalid(&p, &w, "hidden=0");
	p = good, p.inter = 47;
	expect_invalid(&p, &w, "expected [I][H] = [47][32]");
	p = good, p.hidden = 48, p.inter = 32;
	expect_invalid(&p, &w, "gate is [48][32]");
	p = good, p.weight_dtype = MOE_DTYPE_BF16;
	expect_invalid(&p, &w, "gate has dtype f32, params say weight_dtype bf16");
	p = good, p.weight_dtype = MOE_DTYPE_FP8E5M2, p.weight_scaling = MOE_SCALING_PER_TENSOR;
	expect_invalid(&p, &w, "fp8e5m2 with scaling tensor not supported");
	p = good, p.weight_scaling = MOE_SCALING_PER_TENSOR;
	expect_invalid(&p, &w, "f32 with scaling tensor not supported");
	p = good, p.weight_sf_layout = MOE_SF_SWIZZLED_128x4;
	expect_invalid(&p, &w, "128x4");
	p = good, p.act_quant = MOE_ACT_FP8_TENSOR;
	expect_invalid(&p, &w, "act_quant fp8 needs fp8e4m3 weights, not f32");
	p = good, p.act_quant = MOE_ACT_NVFP4;
	expect_invalid(&p, &w, "act_quant nvfp4 needs nvfp4 weights");
	p = good, p.act_quant = (enum moe_act_quant)9;
	expect_invalid(&p, &w, "act_quant 9 out of range");

	struct moe_expert_weights bad = w;
	bad.down.data = NULL;
	expect_invalid(&good, &bad, "down");
	bad = w;
	bad.up.cols = 31;
	expect_invalid(&good, &bad, "up is [48][31]");
	free_weights(&w);

	/* NVFP4: global scale of a weight, non-finite activation scale, H % 16 */
	const struct wformat *nf = &formats[9];
	struct moe_expert_weights nw = random_weights(&r, nf, 32, 48);
	struct moe_expert_params np = expert_params(nf, 2, 32, 48);
	ck_assert_int_eq(moe_expert_validate(&np, &nw), MOE_OK);
	p = np, p.act_global_scale[1] = NAN;
	expect_invalid(&p, &nw, "act_global_scale[1]");
	bad = nw;
	bad.gate.global_scale = 0.0f;
	expect_invalid(&np, &bad, "global_scale 0 must be finite and > 0");
	free_weights(&nw);
}
END_TEST

START_TEST(test_empty_and_workspace)
{
	struct rng r = { 6 };
	const struct wformat *f = &formats[8];
	struct moe_expert_weights w = random_weights(&r, f, 64, 32);
	struct moe_expert_params p = expert_params(f, 0, 64, 32);
	ck_assert_int_eq(moe_expert_workspace_bytes(&p), 0);
	float y = 42.0f;
	moe_expert__ref(&p, NULL, &w, &y, NULL);
	ck_assert_float_eq(y, 42.0f);
	ck_assert_int_eq(moe_expert_ref_f64(&p, NULL, &w, NULL, NULL), MOE_OK);
	/* the workspace grows with the tokens and covers at least the two activations */
	p.tokens = 5;
	const size_t b5 = moe_expert_workspace_bytes(&p);
	ck_assert_uint_ge(b5, 5 * (64 + 32) * sizeof(float));
	p.tokens = 6;
	ck_assert_uint_gt(moe_expert_workspace_bytes(&p), b5);
	p.tokens = 5;
	ck_assert_int_eq(moe_expert_ref_f64(&p, NULL, &w, NULL, NULL), MOE_ERR_INVALID_ARG);
	free_weights(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("expert");
	TCase *tc = tcase_create("expert");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_hand_f32);
	tcase_add_test(tc, test_hand_silu_ln3);
	tcase_add_test(tc, test_hand_bf16_act);
	tcase_add_test(tc, test_hand_bf16_intermediate_tie);
	tcase_add_test(tc, test_hand_fp8_tensor_act);
	tcase_add_test(tc, test_hand_nvfp4_w4a4);
	tcase_add_test(tc, test_hand_nvfp4_block_scale_flip);
	tcase_add_test(tc, test_contract_order_bitwise);
	tcase_add_test(tc, test_swizzled_layouts_same_result);
	tcase_add_test(tc, test_correct_orders_within_bound);
	tcase_add_test(tc, test_extremal_model_kernel);
	tcase_add_test(tc, test_extremal_quantized_intermediate);
	tcase_add_test(tc, test_derived_scale_reported);
	tcase_add_test(tc, test_unbounded_when_all_may_be_zero);
	tcase_add_test(tc, test_mutants_exceed_bound);
	tcase_add_test(tc, test_validate);
	tcase_add_test(tc, test_empty_and_workspace);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
