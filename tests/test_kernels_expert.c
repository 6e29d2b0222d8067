/* Tests of the optimized expert MLP kernels: every built-in table that provides expert (each variant
 * of kernels/expert/expert.inc, and the whole per-ISA tables) against moe_expert_ref_f64, whose
 * a-priori bound every correct fp32 kernel meets elementwise whatever its summation order
 * (reference/expert_f64.c derives it): |y - y_ref| <= bound. Every weight format and scaling,
 * every act_quant its weights allow, token counts 0, 1, the decode sizes and prefill sizes with a
 * remainder, H and I off the vector width and the FP8 block size where the format allows, H above
 * the prefill depth block (partial sums across blocks). NaN and infinity in x must come out as the
 * reference's kind of value; fp32-subnormal activations and bf16-subnormal weights must be
 * handled like any other number (no flush to zero). Variants whose ISA the CPU lacks are skipped
 * and said so. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "test_rng.h"


struct fmt {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	enum moe_act_quant act;
	int64_t kmul; /* H and I must be multiples of this */
};

static const struct fmt fmts[] = {
	{ MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, 1 },
	{ MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, 1 },
	{ MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, 1 },
	{ MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, 1 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_ACT_NONE, 1 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, 1 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, MOE_ACT_BF16, 1 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128, 1 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128, 1 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_NONE, 1 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_BF16, 16 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_NVFP4, 16 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_NONE, 16 },
	{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16, 32 },
};

/* tokens, hidden, inter (H and I rounded up to the format's multiple) */
static const int64_t shapes[][3] = {
	{ 0, 32, 32 }, { 1, 1, 1 }, { 1, 33, 17 }, { 3, 64, 48 }, { 8, 100, 70 }, { 16, 129, 40 },
	{ 17, 48, 33 }, { 29, 300, 50 }, { 40, 64, 300 },
};

static int64_t round_up(int64_t v, int64_t m)
{
	return (v + m - 1) / m * m;
}

struct problem {
	struct moe_expert_params p;
	struct moe_expert_weights w;
	float *x;
	double *y_ref, *bound;
	struct moe_expert_f64_info info;
};

static void make_weight(struct moe_qtensor *q, const struct fmt *f, int64_t rows, int64_t cols, float scale)
{
	*q = (struct moe_qtensor){ .dtype = f->dtype, .scaling = f->scaling, .sf_layout = f->layout, .rows = rows, .cols = cols };
	ck_assert_int_eq(moe_qtensor_alloc(q), MOE_OK);
	float *v = malloc((size_t)(rows * cols) * sizeof(float) + 4);
	ck_assert_ptr_nonnull(v);
	for (int64_t i = 0; i < rows * cols; i++)
		v[i] = (float)rng_normal() * scale;
	moe_quantize__ref(v, q);
	free(v);
}

static void make_problem(struct problem *pr, const struct fmt *f, int64_t M, int64_t H, int64_t I)
{
	memset(pr, 0, sizeof *pr);
	pr->p = (struct moe_expert_params){ .tokens = M, .hidden = H, .inter = I, .weight_dtype = f->dtype,
					    .weight_scaling = f->scaling, .weight_sf_layout = f->layout, .act_quant = f->act };
	make_weight(&pr->w.gate, f, I, H, (float)(1.0 / sqrt((double)H)));
	make_weight(&pr->w.up, f, I, H, (float)(1.0 / sqrt((double)H)));
	make_weight(&pr->w.down, f, H, I, (float)(1.0 / sqrt((double)I)));
	ck_assert_int_eq(moe_expert_validate(&pr->p, &pr->w), MOE_OK);
	const size_t mh = (size_t)(M * H) + 1;
	pr->x = malloc(mh * sizeof(float));
	pr->y_ref = malloc(mh * sizeof(double));
	pr->bound = malloc(mh * sizeof(double));
	ck_assert(pr->x && pr->y_ref && pr->bound);
	for (int64_t i = 0; i < M * H; i++)
		pr->x[i] = (float)rng_normal() * 2.0f;
}

static void reference(struct problem *pr)
{
	ck_assert_int_eq(moe_expert_ref_f64_ex(&pr->p, pr->x, &pr->w, pr->y_ref, pr->bound, &pr->info), MOE_OK);
}

static void free_problem(struct problem *pr)
{
	moe_qtensor_free(&pr->w.gate);
	moe_qtensor_free(&pr->w.up);
	moe_qtensor_free(&pr->w.down);
	free(pr->x);
	free(pr->y_ref);
	free(pr->bound);
}

static bool runs(const struct moe_builtin *b, const struct moe_expert_params *p)
{
	return b->isa <= moe_isa_hardware() && moe_backend_provides(b->table, MOE_OP_EXPERT, p);
}

/* Runs every variant that takes the problem; returns how many did. */
static int check_all(const struct problem *pr, const char *what)
{
	const int64_t M = pr->p.tokens, H = pr->p.hidden;
	const size_t ws_bytes = moe_expert_workspace_bytes(&pr->p);
	int ran = 0;
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (!runs(b, &pr->p))
			continue;
		void *ws = aligned_alloc(64, (ws_bytes + 64) / 64 * 64);
		float *y = malloc(((size_t)(M * H) + 1) * sizeof(float));
		ck_assert(ws && y);
		for (int64_t j = 0; j <= M * H; j++)
			y[j] = 777.0f;
		b->table->expert(&pr->p, pr->x, &pr->w, y, ws);
		for (int64_t j = 0; j < M * H; j++) {
			const double r = pr->y_ref[j], e = fabs((double)y[j] - r);
			if (isinf(pr->bound[j]) && isfinite(r))
				continue; /* magnitudes near the fp32 overflow: no finite bound to hold a kernel to */
			if (!isfinite(r)) {
				ck_assert_msg(isnan(r) ? isnan(y[j]) : (double)y[j] == r, "%s %s: [%lld] %g where the reference has %g",
					      b->table->name, what, (long long)j, (double)y[j], r);
				continue;
			}
			ck_assert_msg(e <= pr->bound[j], "%s %s (%s/%s/%s act %s, M=%lld H=%lld I=%lld): y[%lld] = %.9g, ref %.9g, "
				      "error %.3g > bound %.3g", b->table->name, what, moe_dtype_name(pr->p.weight_dtype),
				      moe_scaling_name(pr->p.weight_scaling), moe_sf_layout_name(pr->p.weight_sf_layout),
				      moe_act_quant_name(pr->p.act_quant), (long long)M, (long long)H, (long long)pr->p.inter,
				      (long long)j, (double)y[j], r, e, pr->bound[j]);
		}
		ck_assert_msg(y[M * H] == 777.0f, "%s wrote past y", b->table->name);
		free(ws);
		free(y);
		ran++;
	}
	return ran;
}

START_TEST(every_format_and_shape)
{
	const struct fmt *f = &fmts[_i];
	rng_state = 100u + (uint64_t)_i;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		struct problem pr;
		make_problem(&pr, f, shapes[s][0], round_up(shapes[s][1], f->kmul), round_up(shapes[s][2], f->kmul));
		reference(&pr);
		ck_assert_msg(!pr.info.unbounded, "vacuous case");
		const int ran = check_all(&pr, "random");
		ck_assert_int_ge(ran, 1);
		free_problem(&pr);
	}
}
END_TEST

/* NaN and infinities in x reach the outputs of their token as the reference's do. */
START_TEST(non_finite_inputs)
{
	const struct fmt *f = &fmts[_i];
	rng_state = 200u + (uint64_t)_i;
	for (int prefill = 0; prefill < 2; prefill++) {
		struct problem pr;
		make_problem(&pr, f, prefill ? 20 : 3, round_up(48, f->kmul), round_up(40, f->kmul));
		if (f->act == MOE_ACT_NONE || f->act == MOE_ACT_BF16) {
			pr.x[1 * pr.p.hidden + 5] = NAN;
			pr.x[2 * pr.p.hidden + 7] = INFINITY;
		} else {
			pr.x[1 * pr.p.hidden + 5] = NAN; /* quantizers turn infinities into finite codes */
		}
		reference(&pr);
		check_all(&pr, "non-finite x");
		free_problem(&pr);
	}
}
END_TEST

/* Subnormal activations and weights are numbers: a kernel that flushes them to zero (as vdpbf16ps
 * does with its inputs) is caught where they decide the result. Token 0's x is all fp32-subnormal,
 * so its g, u, a and y are tiny and their bounds too; with bf16 weights, a second case has every
 * gate weight bf16-subnormal and x large, so that every g is made of subnormal products. */
START_TEST(subnormals_are_numbers)
{
	const struct fmt *f = &fmts[_i];
	rng_state = 300u + (uint64_t)_i;
	for (int c = 0; c < 4; c++) {
		const bool prefill = c & 1, weights = c & 2;
		if (weights && f->dtype != MOE_DTYPE_BF16)
			continue;
		struct problem pr;
		make_problem(&pr, f, prefill ? 20 : 2, round_up(64, f->kmul), round_up(32, f->kmul));
		if (!weights) {
			for (int64_t k = 0; k < pr.p.hidden; k++)
				pr.x[k] = (float)(rng_normal() * 0x1p-133);
		} else {
			moe_bf16 *g = pr.w.gate.data;
			for (int64_t i = 0; i < pr.p.inter * pr.p.hidden; i++)
				g[i] = moe_f32_to_bf16((float)(rng_normal() * 0x1p-130));
			for (int64_t i = 0; i < pr.p.tokens * pr.p.hidden; i++)
				pr.x[i] *= 0x1p12f;
		}
		reference(&pr);
		ck_assert_msg(!pr.info.unbounded, "vacuous case");
		check_all(&pr, weights ? "subnormal weights" : "subnormal x");
		free_problem(&pr);
	}
}
END_TEST

/* Every finite FP8 E4M3 code in every weight (and, in a second and third case, one of the two NaN
 * codes in one down row), under scales that take each decoder:
 * block dequant scales s from 2^-140 (products in the fp32 subnormal range) to 2^9 (s * 2^120
 * past the fp32 range: the general decoder), encode scales gs from 2^-3 to 2^20. A code decoded
 * wrongly moves y by about |x * w|, far above the bound. */
START_TEST(fp8_every_code_and_scale)
{
	static const float block_s[] = { 0x1p-140f, 0x1p-126f, 0.37f, 3.0f, 127.0f, 0x1p9f };
	static const float enc_s[] = { 0x1p-3f, 1.7f, 448.0f, 0x1p20f };
	static const enum moe_scaling sc[] = { MOE_SCALING_PER_TENSOR, MOE_SCALING_PER_CHANNEL, MOE_SCALING_BLOCK_1x128,
					       MOE_SCALING_BLOCK_128x128 };
	const struct fmt f = { MOE_DTYPE_FP8E4M3, sc[_i], MOE_SF_LINEAR, MOE_ACT_NONE, 1 };
	const bool enc = sc[_i] == MOE_SCALING_PER_TENSOR || sc[_i] == MOE_SCALING_PER_CHANNEL;
	const size_t ns = enc ? sizeof enc_s / sizeof enc_s[0] : sizeof block_s / sizeof block_s[0];
	rng_state = 400u + (uint64_t)_i;
	for (size_t v = 0; v < ns; v++) {
		for (int nan = 0; nan < 3; nan++) {
			struct problem pr;
			make_problem(&pr, &f, 3, 272, 144);
			struct moe_qtensor *const q[3] = { &pr.w.gate, &pr.w.up, &pr.w.down };
			for (int t = 0; t < 3; t++) {
				uint8_t *d = q[t]->data;
				const int64_t n = q[t]->rows * q[t]->cols;
				for (int64_t i = 0; i < n; i++) {
					d[i] = (uint8_t)((i * 37 + t) & 255);
					if ((d[i] & 0x7f) == 0x7f)
						d[i] = 0x3c; /* 1.5 */
				}
				if (nan && t == 2) /* one NaN code: y[m][5] is NaN, every other y finite */
					d[5 * q[t]->cols + 7] = nan == 1 ? 0x7f : 0xff;
				float *s = q[t]->scales;
				const size_t cnt = moe_qtensor_scale_bytes(q[t]) / sizeof(float);
				/* one scale per tensor follows the list; the others vary around it by 2^-2..2^1 */
				for (size_t i = 0; i < cnt; i++)
					s[i] = (enc ? enc_s[v] : block_s[v]) * (float)(1u << (i % 4)) * 0.25f;
			}
			/* x about 1e-3 / (weight scale) keeps g, u and y finite; 2^100 at most, with the
			 * smallest s (products of 2^-40 or so, down's products underflowing) */
			const float xs = enc ? 1e-3f * enc_s[v] : fminf(1e-3f / block_s[v], 0x1p100f);
			for (int64_t i = 0; i < pr.p.tokens * pr.p.hidden; i++)
				pr.x[i] = (float)rng_normal() * xs;
			reference(&pr);
			ck_assert_msg(nan || !pr.info.unbounded, "vacuous case");
			if (nan)
				ck_assert_msg(isnan(pr.y_ref[5]) && isfinite(pr.y_ref[4]), "y_ref %g %g v=%zu nan=%d", pr.y_ref[4], pr.y_ref[5], v, nan);
			check_all(&pr, nan ? "every finite fp8 code and a NaN code" : "every finite fp8 code");
			free_problem(&pr);
		}
	}
}
END_TEST

/* Every NVFP4 block-scale byte (finite ones) and every MX scale byte, in every layout, over
 * rows long enough for the 64-column groups and with a 16- or 32-column tail after them. */
START_TEST(fp4_every_scale_byte)
{
	static const struct fmt f4[] = {
		{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_NONE, 16 },
		{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_NONE, 16 },
		{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_BF16, 16 },
		{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_NONE, 32 },
	};
	const struct fmt *f = &f4[_i];
	const bool mx = f->dtype == MOE_DTYPE_MXFP4;
	rng_state = 500u + (uint64_t)_i;
	struct problem pr;
	make_problem(&pr, f, 4, mx ? 288 : 272, mx ? 160 : 144);
	struct moe_qtensor *const q[3] = { &pr.w.gate, &pr.w.up, &pr.w.down };
	for (int t = 0; t < 3; t++) {
		uint8_t *s = q[t]->scales;
		const size_t n = moe_qtensor_scale_bytes(q[t]);
		for (size_t i = 0; i < n; i++) {
			/* NVFP4: E4M3 bytes but NaN, negative ones too; MX: 2^-127 .. 2^-7, a range whose products stay finite */
			s[i] = mx ? (uint8_t)(i % 121) : (uint8_t)((i * 7 + (size_t)t) % 256);
			if (!mx && (s[i] & 0x7f) == 0x7f)
				s[i] = 0x38;
		}
	}
	for (int64_t i = 0; i < pr.p.tokens * pr.p.hidden; i++)
		pr.x[i] = (float)rng_normal() * (mx ? 0x1p60f : 1e-3f);
	reference(&pr);
	ck_assert_msg(!pr.info.unbounded, "vacuous case");
	check_all(&pr, "every scale byte");
	free_problem(&pr);
}
END_TEST

/* Which problems the variants take: decode variants at most 16 tokens (more go to prefill), the
 * vdpbf16ps variant only bf16 weights with bf16 activations, the 4-bit decode variant (decode4) only
 * NVFP4 / MXFP4 weights, every other variant every format;
 * dispatch picks a decode variant for 16 tokens. */
START_TEST(supports_is_precise)
{
	struct moe_expert_params f32 = { .tokens = 17, .hidden = 64, .inter = 64, .weight_dtype = MOE_DTYPE_F32 };
	struct moe_expert_params w16 = f32;
	w16.weight_dtype = MOE_DTYPE_BF16;
	w16.act_quant = MOE_ACT_BF16;
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (b->op != MOE_OP_EXPERT)
			continue;
		if (b->isa > moe_isa_hardware())
			printf("test_kernels_expert: %s skipped: this CPU lacks %s\n", b->table->name, moe_isa_name(b->isa));
		const bool decode = strstr(b->table->name, "decode") != NULL,
			   w16_only = b->isa == MOE_ISA_AVX512_BF16 && !decode, /* its decode variant takes FP8/FP4 too */
			   fp4_only = strstr(b->table->name, "decode4") != NULL; /* NVFP4 / MXFP4 weights only */
		f32.tokens = w16.tokens = 17;
		ck_assert_msg(moe_backend_provides(b->table, MOE_OP_EXPERT, &f32) == (!decode && !w16_only), "%s: f32, 17 tokens",
			      b->table->name);
		ck_assert_msg(moe_backend_provides(b->table, MOE_OP_EXPERT, &w16) == !decode, "%s: bf16, 17 tokens", b->table->name);
		f32.tokens = w16.tokens = 16;
		ck_assert_msg(moe_backend_provides(b->table, MOE_OP_EXPERT, &w16) == (!w16_only && !fp4_only), "%s: bf16, 16 tokens",
			      b->table->name);
		ck_assert_msg(b->table->supports(MOE_OP_NORM, &f32) == false, "%s claims norm", b->table->name);
	}
	const struct moe_builtin *pick = moe_builtin_pick(moe_isa_hardware(), MOE_OP_EXPERT, &f32);
	ck_assert_msg(moe_isa_hardware() < MOE_ISA_AVX2 || strstr(pick->table->name, "decode"), "16 tokens pick %s",
		      pick->table->name);
}
END_TEST

static Suite *expert_suite(void)
{
	Suite *s = suite_create("kernels_expert");
	TCase *tc = tcase_create("expert");
	const int n = (int)(sizeof fmts / sizeof fmts[0]);
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, every_format_and_shape, 0, n);
	tcase_add_loop_test(tc, non_finite_inputs, 0, n);
	tcase_add_loop_test(tc, subnormals_are_numbers, 0, n);
	tcase_add_loop_test(tc, fp8_every_code_and_scale, 0, 4);
	tcase_add_loop_test(tc, fp4_every_scale_byte, 0, 4);
	tcase_add_test(tc, supports_is_precise);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(expert_suite());
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
