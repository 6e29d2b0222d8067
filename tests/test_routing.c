/* Unit tests of the scalar reference router (reference/routing*.c) against routing.md.
 *
 * Expected values are worked by hand in the comments beside them, from logits whose sigmoids and
 * softmaxes are exact or nearly so:
 *   LN2 = (float)ln 2 = 0x1.62e43p-1, LN4 = (float)ln 4 = 2*LN2 exactly, LN3 = (float)ln 3.
 *   expf(-LN2) = 0.5 and expf(-LN4) = 0.25 exactly: the arguments miss -ln 2 and -ln 4 by 2e-9 and
 *   4e-9, 0.03 and 0.06 of an ulp of the result.
 *   sig(0) = 0.5 in both forms. sig(-LN3) = 0.25 in both forms. sig(LN3) = 0.75 exactly in the
 *   tanh form (tanhf(LN3/2) rounds to 0.5) but 0x1.800002p-1 = 0.75 + 1 ulp in the expf form:
 *   expf(-LN3) = 0x1.555554p-2 (just below 1/3), 1 + that is a tie that rounds to even
 *   0x1.555554p+0, and 1 / 0x1.555554p+0 = 0.75000004 rounds to 0x1.800002p-1.
 *   sig(20) = 1 in both forms; sig(-120) = 0 in both (tanhf -> -1; expf(120) = +inf).
 * Weights are compared with the ulp budget stated at each check (0 = bitwise); ids bitwise.
 * "u" below is 2^-23, the ulp of 1.0f. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"

#define LN2 0x1.62e43p-1f
#define LN4 0x1.62e43p+0f
#define LN3 0x1.193ea8p+0f
#define NPROF MOE_PROFILE_COUNT

static const enum moe_profile FI = MOE_PROFILE_FLASHINFER, VL = MOE_PROFILE_VLLM, HF = MOE_PROFILE_HF;

static struct moe_route_params prm(enum moe_routing_method m, enum moe_profile pf, int32_t E, int32_t K)
{
	struct moe_route_params p = moe_route_params_default(m, E, K);
	p.profile = pf;
	return p;
}

static struct moe_route_params prm_ds(enum moe_profile pf, int32_t E, int32_t K, int32_t G, int32_t TG,
				       float rsf)
{
	struct moe_route_params p = prm(MOE_ROUTE_DEEPSEEKV3, pf, E, K);
	p.n_group = G;
	p.topk_group = TG;
	p.routed_scaling_factor = rsf;
	p.bias_dtype = MOE_DTYPE_F32;
	return p;
}

static void route(const struct moe_route_params *p, int64_t T, const void *x, const void *b, int32_t *ids,
		  float *w)
{
	moe_clear_error();
	enum moe_status s = moe_route_ref_checked(p, T, x, b, ids, w);
	ck_assert_msg(s == MOE_OK, "%s/%s: %s", moe_routing_method_name(p->method), moe_profile_name(p->profile),
		      moe_last_error());
}

/* Distance in representable floats (0 when bitwise equal, +0 and -0 one apart). */
static int64_t ulp_dist(float a, float b)
{
	int64_t ia = (int32_t)moe_f32_bits(a), ib = (int32_t)moe_f32_bits(b);
	ia = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
	ib = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
	return ia > ib ? ia - ib : ib - ia;
}

static void expect_ids(const struct moe_route_params *p, const int32_t *got, const int32_t *want,
		       const char *what)
{
	for (int32_t k = 0; k < p->top_k; k++)
		ck_assert_msg(got[k] == want[k], "%s %s/%s: slot %d id %d, want %d", what,
			      moe_routing_method_name(p->method), moe_profile_name(p->profile), k, got[k], want[k]);
}

/* A NaN in want asks for a NaN. */
static void expect_w(const struct moe_route_params *p, const float *got, const float *want, int max_ulps,
		     const char *what)
{
	for (int32_t k = 0; k < p->top_k; k++) {
		if (isnan(want[k])) {
			ck_assert_msg(isnan(got[k]), "%s %s/%s: slot %d weight %a, want NaN", what,
				      moe_routing_method_name(p->method), moe_profile_name(p->profile), k,
				      (double)got[k]);
			continue;
		}
		ck_assert_msg(ulp_dist(got[k], want[k]) <= max_ulps, "%s %s/%s: slot %d weight %a, want %a (%d ulps)",
			      what, moe_routing_method_name(p->method), moe_profile_name(p->profile), k,
			      (double)got[k], (double)want[k], max_ulps);
	}
}

/* Row A (E = 8): x = [LN2, 0, LN4, 0, LN2, 0, 0, 0]. Against the max LN4 the exponentials are
 * e = [0.5, .25, 1, .25, 0.5, .25, .25, .25] (exact, see above), Z = 1 + 2*0.5 + 5*0.25 = 3.25
 * exactly, p = [2/13, 1/13, 4/13, 1/13, 2/13, 1/13, 1/13, 1/13]. Top 3 by p or by x: expert 2,
 * then the tie 0/4 at 2/13 (lower index first): ids [2, 0, 4]. */
static const float row_a[8] = { LN2, 0, LN4, 0, LN2, 0, 0, 0 };
static const int32_t ids_a[3] = { 2, 0, 4 };

START_TEST(test_default)
{
	/* w = p[ids] = [4/13, 2/13, 2/13], e / Z of exact operands, so correctly rounded:
	 * fp32 4/13 = 0x1.3b13b2p-2, 2/13 = 0x1.3b13b2p-3 (vLLM, 0 ulps).
	 * bf16 (flashinfer, HF): 4/13 = 0.30769 has bf16 ulp 2^-9: 0.30769 * 512 = 157.54 -> 158/512 =
	 * 0.30859375; 2/13 = 157.54/1024 -> 158/1024 = 0.154296875. */
	const float want[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.30859375f, 0.154296875f, 0.154296875f },
		[MOE_PROFILE_VLLM] = { 0x1.3b13b2p-2f, 0x1.3b13b2p-3f, 0x1.3b13b2p-3f },
		[MOE_PROFILE_HF] = { 0.30859375f, 0.154296875f, 0.154296875f },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_DEFAULT, pf, 8, 3);
		int32_t ids[3];
		float w[3];
		route(&p, 1, row_a, NULL, ids, w);
		expect_ids(&p, ids, ids_a, "row A");
		expect_w(&p, w, want[pf], 0, "row A");
	}
}
END_TEST

START_TEST(test_renormalize)
{
	/* Softmax over the 3 selected logits [LN4, LN2, LN2]: e = [1, 0.5, 0.5], S = 2 in any order,
	 * w = [0.5, 0.25, 0.25] exactly under every profile (bf16-exact too). */
	const float want[3] = { 0.5f, 0.25f, 0.25f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_RENORMALIZE, pf, 8, 3);
		int32_t ids[3];
		float w[3];
		route(&p, 1, row_a, NULL, ids, w);
		expect_ids(&p, ids, ids_a, "row A");
		expect_w(&p, w, want, 0, "row A");
	}
}
END_TEST

START_TEST(test_renormalize_naive)
{
	/* vLLM and HF: p = [4/13, 2/13, 2/13] each correctly rounded, S = their sum (2 roundings),
	 * w = p / S (1 more): within 3 ulps of [0.5, 0.25, 0.25] in fp32; in bf16 (HF) that is
	 * exactly [0.5, 0.25, 0.25]. flashinfer runs the Renormalize algorithm: exact. */
	const float want[3] = { 0.5f, 0.25f, 0.25f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_RENORMALIZE_NAIVE, pf, 8, 3);
		int32_t ids[3];
		float w[3];
		route(&p, 1, row_a, NULL, ids, w);
		expect_ids(&p, ids, ids_a, "row A");
		expect_w(&p, w, want, pf == MOE_PROFILE_VLLM ? 3 : 0, "row A");
	}

	/* Probabilities tie where logits do not: x0 = -1e-9 and x1 = 0 under the max x2 = 5.
	 * x0 - 5 = -5.000000001 rounds to -5 (ulp 4.8e-7), so p0 == p1 bitwise. RenormalizeNaive ranks
	 * p: the tie goes to expert 0. Renormalize ranks logits: 0 > -1e-9, expert 1. flashinfer runs
	 * Renormalize for both. */
	const float x[8] = { -1e-9f, 0, 5, -3, -3, -3, -3, -3 };
	const int32_t naive[2] = { 2, 0 }, renorm[2] = { 2, 1 };
	for (int pf = 0; pf < NPROF; pf++) {
		int32_t ids[2];
		float w[2];
		struct moe_route_params p = prm(MOE_ROUTE_RENORMALIZE_NAIVE, pf, 8, 2);
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_FLASHINFER ? renorm : naive, "p tie");
		p.method = MOE_ROUTE_RENORMALIZE;
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, renorm, "p tie");
	}
}
END_TEST

START_TEST(test_large_logits)
{
	/* Softmax needs its max subtracted: x = [100, 99, 100, -100 ...] overflows expf(100) = +inf
	 * without it. Default over E: Z = 2 + e^-1 (+ e^-200, lost), ids [0, 2, 1],
	 * p = [1, 1, e^-1] / (2 + e^-1). Renormalize K 2: ids [0, 2], softmax of [100, 100] = [.5, .5]
	 * exactly. Long double reference for Default: within 4 fp32 ulps or half a bf16 ulp. */
	float x[8] = { 100, 99, 100 };
	for (int e = 3; e < 8; e++)
		x[e] = -100;
	const int32_t want_def[3] = { 0, 2, 1 }, want_ren[2] = { 0, 2 };
	const long double e1 = expl(-1.0L), z = 2 + e1;
	const long double p[3] = { 1 / z, 1 / z, e1 / z };
	const float half2[2] = { 0.5f, 0.5f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params q = prm(MOE_ROUTE_DEFAULT, pf, 8, 3);
		int32_t ids[3];
		float w[3];
		route(&q, 1, x, NULL, ids, w);
		expect_ids(&q, ids, want_def, "large");
		for (int k = 0; k < 3; k++) {
			long double tol = p[k] * (pf == MOE_PROFILE_VLLM ? 4 * 0x1p-24L : 0x1.02p-8L);
			ck_assert_msg(fabsl(w[k] - p[k]) <= tol, "%s slot %d: %a vs %La", moe_profile_name(pf), k,
				      (double)w[k], p[k]);
		}
		q = prm(MOE_ROUTE_RENORMALIZE, pf, 8, 2);
		route(&q, 1, x, NULL, ids, w);
		expect_ids(&q, ids, want_ren, "large");
		expect_w(&q, w, half2, 0, "large");
	}
}
END_TEST

START_TEST(test_topk)
{
	/* w = raw logits [LN4, LN2, LN2]. bf16: LN4 = 1.386294 has ulp 2^-7: 1.386294 * 128 =
	 * 177.45 -> 177/128 = 1.3828125; LN2 -> 177/256 = 0.69140625. */
	const float want[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 1.3828125f, 0.69140625f, 0.69140625f },
		[MOE_PROFILE_VLLM] = { LN4, LN2, LN2 },
		[MOE_PROFILE_HF] = { 1.3828125f, 0.69140625f, 0.69140625f },
	};
	/* All negative: the raw weights stay negative. x = -(1 + e/8), top 2: -1 (e0), -1.125 (e1). */
	const float neg[8] = { -1, -1.125f, -1.25f, -1.375f, -1.5f, -1.625f, -1.75f, -1.875f };
	const int32_t ids_neg[2] = { 0, 1 };
	const float want_neg[2] = { -1, -1.125f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_TOPK, pf, 8, 3);
		int32_t ids[3];
		float w[3];
		route(&p, 1, row_a, NULL, ids, w);
		expect_ids(&p, ids, ids_a, "row A");
		expect_w(&p, w, want[pf], 0, "row A");
		p.top_k = 2;
		route(&p, 1, neg, NULL, ids, w);
		expect_ids(&p, ids, ids_neg, "negative");
		expect_w(&p, w, want_neg, 0, "negative");
	}
}
END_TEST

/* Row B (E = 8): x = [0, -LN3, LN3, 0, -LN3, -20, -20, 0].
 * s = [.5, .25, .75, .5, .25, ~0, ~0, .5] (.75 is 0x1.800002p-1 in the expf form; sig(-20) is 0
 * in the tanh form, 2e-9 in the expf form). Top 3 by s or by x: expert 2, then the tie 0/3/7 at
 * 0.5: ids [2, 0, 3]. */
static const float row_b[8] = { 0, -LN3, LN3, 0, -LN3, -20, -20, 0 };
static const int32_t ids_b[3] = { 2, 0, 3 };

START_TEST(test_sigmoid_methods)
{
	/* Sigmoid, TopKSigmoid and SigmoidRenorm without renormalization: w = s[ids].
	 * flashinfer [.75, .5, .5]; vLLM [0x1.800002p-1, .5, .5]; HF bf16(0x1.800002p-1) = 0.75. */
	const float want[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.75f, 0.5f, 0.5f },
		[MOE_PROFILE_VLLM] = { 0x1.800002p-1f, 0.5f, 0.5f },
		[MOE_PROFILE_HF] = { 0.75f, 0.5f, 0.5f },
	};
	/* SigmoidRenorm: S = 1.75 (both orders exact: (.75 + .5) + .5), w = [3/7, 2/7, 2/7].
	 * bf16: 3/7 = 0.428571 * 512 = 219.43 -> 219/512 = 0.427734375; 2/7 * 512 = 146.29 ->
	 * 146/512 = 0.28515625. vLLM: s0 = 0.75 + 1 ulp, S and the divisions add 3 roundings: within
	 * 4 ulps of fp32 3/7 = 0x1.b6db6ep-2 and 2/7 = 0x1.24924ap-2. */
	const float want_rn[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.427734375f, 0.28515625f, 0.28515625f },
		[MOE_PROFILE_VLLM] = { 0x1.b6db6ep-2f, 0x1.24924ap-2f, 0x1.24924ap-2f },
		[MOE_PROFILE_HF] = { 0.427734375f, 0.28515625f, 0.28515625f },
	};
	const enum moe_routing_method plain[3] = { MOE_ROUTE_SIGMOID, MOE_ROUTE_TOPK_SIGMOID,
						   MOE_ROUTE_SIGMOID_RENORM };
	for (int pf = 0; pf < NPROF; pf++) {
		int32_t ids[3];
		float w[3];
		for (int i = 0; i < 3; i++) {
			struct moe_route_params p = prm(plain[i], pf, 8, 3);
			p.renormalize = false;
			route(&p, 1, row_b, NULL, ids, w);
			expect_ids(&p, ids, ids_b, "row B");
			expect_w(&p, w, want[pf], 0, "row B");
		}
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID_RENORM, pf, 8, 3);
		route(&p, 1, row_b, NULL, ids, w);
		expect_ids(&p, ids, ids_b, "row B renorm");
		expect_w(&p, w, want_rn[pf], pf == MOE_PROFILE_VLLM ? 4 : 0, "row B renorm");
	}
}
END_TEST

START_TEST(test_sigmoid_saturation)
{
	/* sig(20) and sig(30) are both 1.0f in either form: Sigmoid ties and takes expert 0,
	 * TopKSigmoid ranks the raw logits and takes expert 1; both weigh 1.0. */
	const float x[8] = { 20, 30, 0, 0, 0, 0, 0, 0 };
	const int32_t want_sig[1] = { 0 }, want_raw[1] = { 1 };
	const float one[1] = { 1.0f };
	for (int pf = 0; pf < NPROF; pf++) {
		int32_t ids[1];
		float w[1];
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, pf, 8, 1);
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, want_sig, "saturated");
		expect_w(&p, w, one, 0, "saturated");
		p.method = MOE_ROUTE_TOPK_SIGMOID;
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, want_raw, "saturated");
		expect_w(&p, w, one, 0, "saturated");
	}
}
END_TEST

START_TEST(test_llama4)
{
	/* Strict `>` argmax: the first of the two LN3 (expert 1); w = sig(LN3): 0.75 (flashinfer),
	 * 0x1.800002p-1 (vLLM), bf16 -> 0.75 (HF). */
	const float x[8] = { 0, LN3, -LN3, LN3, 0, 0, 0, 0 };
	const int32_t want_id[1] = { 1 };
	const float want[NPROF][1] = { { 0.75f }, { 0x1.800002p-1f }, { 0.75f } };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_LLAMA4, pf, 8, 1);
		int32_t ids[1];
		float w[1];
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, want_id, "llama4");
		expect_w(&p, w, want[pf], 0, "llama4");
	}
}
END_TEST

START_TEST(test_minimax2)
{
	/* x = [0, LN3, -LN3, 0, -20 x4], bias = [0, 0, 1, 0 ...], rsf 2.5.
	 * key = s + b = [.5, .75, 1.25, .5, ~0 ...]: ids [2, 1, 0] (0 before 3 on the tie).
	 * Unbiased s = [.25, .75, .5], S = 1.5 in both orders ((.25 + .5) + .75 = (.25 + .75) + .5).
	 * w = s * 2.5 / 1.5 = [5/12, 1.25, 5/6]. bf16: 5/12 = 0.41667 * 512 = 213.33 -> 213/512 =
	 * 0.416015625; 1.25; 5/6 * 256 = 213.33 -> 213/256 = 0.83203125. vLLM: (s / S) * rsf with s1 =
	 * 0.75 + 1 ulp: within 4 ulps of fp32 5/12 = 0x1.aaaaaap-2, 1.25, 5/6 = 0x1.aaaaaap-1. */
	const float x[8] = { 0, LN3, -LN3, 0, -20, -20, -20, -20 };
	const float b[8] = { 0, 0, 1, 0, 0, 0, 0, 0 };
	const int32_t want_ids[3] = { 2, 1, 0 };
	const float want[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.416015625f, 1.25f, 0.83203125f },
		[MOE_PROFILE_VLLM] = { 0x1.aaaaaap-2f, 1.25f, 0x1.aaaaaap-1f },
		[MOE_PROFILE_HF] = { 0.416015625f, 1.25f, 0.83203125f },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_MINIMAX2, pf, 8, 3);
		p.bias_dtype = MOE_DTYPE_F32;
		p.routed_scaling_factor = 2.5f;
		int32_t ids[3];
		float w[3];
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, want_ids, "minimax2");
		expect_w(&p, w, want[pf], pf == MOE_PROFILE_VLLM ? 4 : 0, "minimax2");
		/* the same bias in bf16 (0 and 1 are exact) */
		const moe_bf16 bb[8] = { 0, 0, 0x3f80, 0, 0, 0, 0, 0 };
		p.bias_dtype = MOE_DTYPE_BF16;
		route(&p, 1, x, bb, ids, w);
		expect_ids(&p, ids, want_ids, "minimax2 bf16 bias");
		expect_w(&p, w, want[pf], pf == MOE_PROFILE_VLLM ? 4 : 0, "minimax2 bf16 bias");
		/* no bias at all: key = s = [.5, .75, .25, .5, ...]: ids [1, 0, 3], s = [.75, .5, .5],
		 * S = 1.75, w = s * 2.5 / 1.75 = [15/14, 5/7, 5/7]; only the ids are checked here. */
		const int32_t nob[3] = { 1, 0, 3 };
		p.bias_dtype = MOE_DTYPE_NONE;
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, nob, "minimax2 no bias");
	}
}
END_TEST

START_TEST(test_rsf_order_and_epsilon_forms)
{
	/* x = 0 everywhere: s = .5, ids [0, 1, 2], S = 1.5 exactly, rsf 2.5.
	 * vLLM (s / S) * rsf: s / S = 1/3 -> 11184811 * 2^-25 (2^25 / 3 = 11184810.67); times 2.5 =
	 *   13981013.75 * 2^-24 -> 13981014 * 2^-24 = 0x1.aaaaacp-1.
	 * flashinfer (s * rsf) / S = 1.25 / 1.5 = 5/6 = 13981013.33 * 2^-24 -> 0x1.aaaaaap-1;
	 *   bf16: 5/6 * 256 = 213.33 -> 213/256 = 0.83203125. HF: bf16(0x1.aaaaacp-1), the same. */
	const float x[8] = { 0 };
	const float b[8] = { 0 };
	const int32_t first3[3] = { 0, 1, 2 };
	const float want[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.83203125f, 0.83203125f, 0.83203125f },
		[MOE_PROFILE_VLLM] = { 0x1.aaaaacp-1f, 0x1.aaaaacp-1f, 0x1.aaaaacp-1f },
		[MOE_PROFILE_HF] = { 0.83203125f, 0.83203125f, 0.83203125f },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_MINIMAX2, pf, 8, 3);
		p.bias_dtype = MOE_DTYPE_F32;
		p.routed_scaling_factor = 2.5f;
		int32_t ids[3];
		float w[3];
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, first3, "rsf order");
		expect_w(&p, w, want[pf], 0, "rsf order");
		p = prm_ds(pf, 8, 3, 4, 2, 2.5f);
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, first3, "rsf order");
		expect_w(&p, w, want[pf], 0, "rsf order");
	}

	/* The same row with rsf = 0x1.847ffep+1 = 25460734 * 2^-23, where the order survives bf16.
	 * (s * rsf) / S = rsf / 3 = 8486911.33 * 2^-23 -> 8486911 * 2^-23 = 0x1.02fffep+0, below the
	 *   bf16 midpoint 0x1.03p+0 (8486912): flashinfer 0x1.02p+0 = 1.0078125.
	 * (s / S) * rsf = 11184811 * 2^-25 * rsf = (8486911.33 + 0.25) * 2^-23 -> 8486912 * 2^-23 =
	 *   0x1.03p+0: vLLM's fp32 result; HF rounds that midpoint to even, 0x1.04p+0 = 1.015625. */
	const float want_mid[NPROF] = { 1.0078125f, 0x1.03p+0f, 1.015625f };
	for (int pf = 0; pf < NPROF; pf++) {
		for (int ds = 0; ds < 2; ds++) {
			struct moe_route_params p = ds ? prm_ds(pf, 8, 3, 4, 2, 1) : prm(MOE_ROUTE_MINIMAX2, pf, 8, 3);
			p.bias_dtype = MOE_DTYPE_F32;
			p.routed_scaling_factor = 0x1.847ffep+1f;
			int32_t ids[3];
			float w[3];
			const float wm[3] = { want_mid[pf], want_mid[pf], want_mid[pf] };
			route(&p, 1, x, b, ids, w);
			expect_w(&p, w, wm, 0, "rsf order at a bf16 midpoint");
		}
	}

	/* flashinfer's two epsilon forms part ways on a NaN sum. x = [NaN, 0 ...], K 2: the sigmoid
	 * of NaN is the positive NaN, ranked first; slot 1 is expert 1 (s .5); S = NaN.
	 * SigmoidRenorm: fmaxf(NaN, 1e-20f) = 1e-20f, so w = [NaN, bf16(.5 / 1e-20f)].
	 * MiniMax2: NaN + 1e-20 = NaN, so w = [NaN, NaN]. */
	const float y[8] = { NAN, 0, 0, 0, 0, 0, 0, 0 };
	const int32_t ids01[2] = { 0, 1 };
	const float w_max[2] = { NAN, moe_round_bf16(0.5f / 1e-20f) }, w_add[2] = { NAN, NAN };
	struct moe_route_params p = prm(MOE_ROUTE_SIGMOID_RENORM, FI, 8, 2);
	int32_t ids[2];
	float w[2];
	route(&p, 1, y, NULL, ids, w);
	expect_ids(&p, ids, ids01, "NaN sum");
	expect_w(&p, w, w_max, 0, "NaN sum");
	p = prm(MOE_ROUTE_MINIMAX2, FI, 8, 2);
	route(&p, 1, y, NULL, ids, w);
	expect_ids(&p, ids, ids01, "NaN sum");
	expect_w(&p, w, w_add, 0, "NaN sum");
}
END_TEST

START_TEST(test_deepseek_grouped)
{
	/* E 8, 4 groups of 2, keep 2, K 3, rsf 2.5.
	 * x = [LN3, -LN3 | 0, 0 | LN3, LN3 | -LN3, 0], s = [.75, .25 | .5, .5 | .75, .75 | .25, .5],
	 * bias = [0, 0 | .5, 0 | 0, 0 | 0, .25], key = [.75, .25 | 1, .5 | .75, .75 | .25, .75].
	 * Group scores (top1 + top2): [1, 1.5, 1.5, 1] -> keep groups 1 and 2 (1.5; with the expf
	 * sigmoid group 2 is 1.5 + 2 ulps and group 1 is 1.5: the same two). Candidates 2..5 with keys
	 * [1, .5, .75, .75]: ids [2, 4, 5] -- ungrouped it would be [2, 0, 4].
	 * s = [.5, .75, .75], S = 2 (butterfly (.5 + .75) + .75, sequential the same), w = s * 2.5 / 2 =
	 * [.625, .9375, .9375], bf16-exact; vLLM with s = .75 + 1 ulp: within 4 ulps. */
	const float x[8] = { LN3, -LN3, 0, 0, LN3, LN3, -LN3, 0 };
	const float b[8] = { 0, 0, 0.5f, 0, 0, 0, 0, 0.25f };
	const int32_t want_ids[3] = { 2, 4, 5 };
	const float want[3] = { 0.625f, 0.9375f, 0.9375f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm_ds(pf, 8, 3, 4, 2, 2.5f);
		int32_t ids[3];
		float w[3];
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, want_ids, "grouped");
		expect_w(&p, w, want, pf == MOE_PROFILE_VLLM ? 4 : 0, "grouped");
	}

	/* Without a bias vLLM scores a group by its best key, the others by the best two.
	 * x = [LN3, -120 | 0, 0 | -120 x4], s = [.75, 0 | .5, .5 | 0 ...]. Keep 1 group, K 1:
	 * max: group 0 (.75 > .5) -> expert 0; top-2 sum: group 1 (1 > .75) -> expert 2. */
	const float y[8] = { LN3, -120, 0, 0, -120, -120, -120, -120 };
	const int32_t want_max[1] = { 0 }, want_sum[1] = { 2 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm_ds(pf, 8, 1, 4, 1, 1.0f);
		p.bias_dtype = MOE_DTYPE_NONE;
		int32_t ids[1];
		float w[1];
		route(&p, 1, y, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? want_max : want_sum, "no bias");
	}
}
END_TEST

START_TEST(test_deepseek_negative_bias_masking)
{
	/* x = 0 (s = .5 everywhere), bias [-1 x4, -2 x4]: keys [-.5 x4, -1.5 x4].
	 * Group scores [-1, -1, -3, -3]: keep groups 0 and 1 (tie: lower group index).
	 * flashinfer and vLLM rank only experts 0..3: ids [0, 1, 2].
	 * HF fills the keys of experts 4..7 with 0.0, which beats -0.5: ids [4, 5, 6].
	 * Weights from the unbiased s: .5 / 1.5 = 1/3 each (rsf 1): fp32 0x1.555556p-2 (S = 1.5
	 * exactly, one division); bf16 1/3 * 512 = 170.67 -> 171/512 = 0.333984375. */
	const float x[8] = { 0 };
	const float b[8] = { -1, -1, -1, -1, -2, -2, -2, -2 };
	const int32_t masked[3] = { 0, 1, 2 }, zero_filled[3] = { 4, 5, 6 };
	const float want[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.333984375f, 0.333984375f, 0.333984375f },
		[MOE_PROFILE_VLLM] = { 0x1.555556p-2f, 0x1.555556p-2f, 0x1.555556p-2f },
		[MOE_PROFILE_HF] = { 0.333984375f, 0.333984375f, 0.333984375f },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm_ds(pf, 8, 3, 4, 2, 1.0f);
		int32_t ids[3];
		float w[3];
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_HF ? zero_filled : masked, "negative keys");
		expect_w(&p, w, want[pf], 0, "negative keys");
	}
}
END_TEST

START_TEST(test_deepseek_bias_rounding)
{
	/* x = 0 (s = .5), bias [1, 1 + 2^-12, 0 ...] in fp32. 1 + 2^-12 is below the bf16 midpoint
	 * 1 + 2^-8, so bf16 rounds it to 1. flashinfer's grouped path rounds the bias: keys tie at 1.5
	 * and expert 0 wins; everywhere else 1.5 + 2^-12 wins: expert 1. G 4, keep 1, K 1.
	 * w = .5 * 1 / (.5 + eps) = 1 in all cases. */
	const float x[8] = { 0 };
	const float b[8] = { 1, 1 + 0x1p-12f, 0, 0, 0, 0, 0, 0 };
	const int32_t e0[1] = { 0 }, e1[1] = { 1 };
	const float one[1] = { 1.0f };
	for (int pf = 0; pf < NPROF; pf++) {
		int32_t ids[1];
		float w[1];
		struct moe_route_params p = prm_ds(pf, 8, 1, 4, 1, 1.0f);
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_FLASHINFER ? e0 : e1, "grouped bias rounding");
		expect_w(&p, w, one, 0, "grouped bias rounding");
		p.n_group = 1; /* ungrouped: as MiniMax2, no rounding */
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, e1, "ungrouped bias");
		p.method = MOE_ROUTE_MINIMAX2;
		p.n_group = 0;
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, e1, "minimax2 bias");
	}
}
END_TEST

START_TEST(test_sigmoid_underflow)
{
	/* Every logit -120: s = 0 exactly in both forms, all keys tie, ids [0, 1].
	 * SigmoidRenorm: flashinfer 0 / fmaxf(0, 1e-20) = 0; vLLM 0 / (S > 0 ? S : 1) = 0; HF 0 / 0.
	 * MiniMax2: flashinfer 0 * rsf / (0 + 1e-20) = 0; vLLM 0; HF (0 / 0) * rsf = NaN.
	 * DeepSeekV3 (grouped and not): HF adds 1e-20 too: 0 everywhere. */
	float x[8];
	for (int e = 0; e < 8; e++)
		x[e] = -120;
	const float zero[2] = { 0, 0 }, nan2[2] = { NAN, NAN };
	const int32_t first[2] = { 0, 1 };
	const float b[8] = { 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		int32_t ids[2];
		float w[2];
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID_RENORM, pf, 8, 2);
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, first, "underflow");
		expect_w(&p, w, pf == MOE_PROFILE_HF ? nan2 : zero, 0, "underflow");

		p = prm(MOE_ROUTE_MINIMAX2, pf, 8, 2);
		p.bias_dtype = MOE_DTYPE_F32;
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, first, "underflow");
		expect_w(&p, w, pf == MOE_PROFILE_HF ? nan2 : zero, 0, "underflow");

		for (int G = 0; G <= 4; G += 4) {
			p = prm_ds(pf, 8, 2, G, 2, 2.5f);
			route(&p, 1, x, b, ids, w);
			expect_ids(&p, ids, first, "underflow");
			expect_w(&p, w, zero, 0, "underflow");
		}
	}

	/* Every logit -50: the tanh form is 0 (tanhf(-25) = -1), the expf form 1/(1 + e^50) ~ 2e-22.
	 * SigmoidRenorm: flashinfer [0, 0]; vLLM and HF s / 2s = [.5, .5]. */
	for (int e = 0; e < 8; e++)
		x[e] = -50;
	const float half[2] = { 0.5f, 0.5f };
	for (int pf = 0; pf < NPROF; pf++) {
		int32_t ids[2];
		float w[2];
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID_RENORM, pf, 8, 2);
		route(&p, 1, x, NULL, ids, w);
		expect_ids(&p, ids, first, "-50");
		expect_w(&p, w, pf == MOE_PROFILE_FLASHINFER ? zero : half, 0, "-50");
	}
}
END_TEST

START_TEST(test_bias_dominates)
{
	/* x = [LN3, 0, -LN3, 0, 0, 0, 0, 0], bias [0, 0, 1000, 0, 0, 0, 0, 2000], MiniMax2 K 2 rsf 1.
	 * keys: e7 2000.5, e2 1000.25: ids [7, 2]. Unbiased s = [.5, .25], S = .75,
	 * w = [2/3, 1/3]: fp32 0x1.555556p-1, 0x1.555556p-2 (one division of exact values); bf16
	 * 2/3 * 256 = 170.67 -> 171/256 = 0.66796875, 1/3 -> 0.333984375. Sum == rsf. */
	const float x[8] = { LN3, 0, -LN3, 0, 0, 0, 0, 0 };
	const float b[8] = { 0, 0, 1000, 0, 0, 0, 0, 2000 };
	const int32_t want_ids[2] = { 7, 2 };
	const float want[NPROF][2] = {
		[MOE_PROFILE_FLASHINFER] = { 0.66796875f, 0.333984375f },
		[MOE_PROFILE_VLLM] = { 0x1.555556p-1f, 0x1.555556p-2f },
		[MOE_PROFILE_HF] = { 0.66796875f, 0.333984375f },
	};
	/* |bias| 1e8: s + 1e8 rounds to 1e8 (ulp 8) for experts 5 and 6, a tie: ids [5, 6]. The
	 * weights still come from s = [.75, .25] (x5 = LN3, x6 = -LN3), S = 1: [.75, .25] -- not
	 * key - bias = 0, which would give 0/0 (flashinfer #3875). vLLM s5 = .75 + 1 ulp: 2 ulps. */
	const float y[8] = { 0, 0, 0, 0, 0, LN3, -LN3, 0 };
	const float c[8] = { 0, 0, 0, 0, 0, 1e8f, 1e8f, 0 };
	const int32_t tie_ids[2] = { 5, 6 };
	const float quarter[2] = { 0.75f, 0.25f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_MINIMAX2, pf, 8, 2);
		p.bias_dtype = MOE_DTYPE_F32;
		int32_t ids[2];
		float w[2];
		route(&p, 1, x, b, ids, w);
		expect_ids(&p, ids, want_ids, "big bias");
		expect_w(&p, w, want[pf], 0, "big bias");
		route(&p, 1, y, c, ids, w);
		expect_ids(&p, ids, tie_ids, "huge bias");
		expect_w(&p, w, quarter, pf == MOE_PROFILE_VLLM ? 2 : 0, "huge bias");
	}
}
END_TEST

START_TEST(test_butterfly_vs_sequential)
{
	/* MiniMax2, E 12, K 8, no bias, rsf = 1 + 2^-8 + 6u = 0x1.01000cp+0.
	 * x = [20, X x7, -100 x4] with X = -16.230067: s = [1, a x7, ~0 x4], ids [0..7].
	 * tanh form: tanh(X/2) = -1 + 3*2^-24 to within 1e-6 of an ulp, so a = 3*2^-25 = 0.75u exactly.
	 * expf form: a = 1/(1 + e^16.23) ~ 0.75u, anywhere in (0.5u, 1.5u) is enough below.
	 * Sequential S: each + a (more than half an ulp, less than 1.5) rounds up to the next ulp:
	 *   S = 1 + 7u.
	 * Butterfly S (K 8): ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7))
	 *   = ((1 + a) + 2a) + (2a + 2a) = ((1 + u) + 1.5u) + 3u; 1 + 2.5u ties to even 1 + 2u;
	 *   + 3u = 1 + 5u.
	 * flashinfer w0 = (1 * rsf) / (1 + 5u) = 1 + 32769u - 0.02u -> 1 + 32769u; bf16: above the
	 *   midpoint 1 + 2^-8 = 1 + 32768u, so up: 1 + 2^-7 = 1.0078125. (With the sequential sum it
	 *   would be 1 + 32767u, below the midpoint: 1.0.)
	 *   w1..7 = (a * rsf) / (1 + 5u) = 1.5 * 2^-24 * (1 + 32769u) = 2^-24 * (1.5 + 0.00586);
	 *   bf16 steps 2^-7 = 0.0078: above the midpoint 1.50390625, so 1.5078125 * 2^-24.
	 * vLLM w0 = (1 / (1 + 7u)) * rsf = (1 - 7u) * (1 + 32774u) = 1 + 32767u - 0.03u
	 *   -> 1 + 32767u = 0x1.00fffep+0 (fp32 output).
	 * HF (MiniMax2: no epsilon; DeepSeekV3: + 1e-20, lost in 1 + 7u) w0 = (1 / (1 + 7u)) * rsf, the
	 *   same 1 + 32767u, below the midpoint: bf16 1.0. */
	const float X = -16.230067f;
	ck_assert_msg(0.5f * tanhf(0.5f * X) + 0.5f == 0x3p-25f, "precondition: libm tanhf gives a = 3*2^-25");
	const float av = 1.0f / (1.0f + expf(-X));
	ck_assert_msg(av > 0x1p-24f && av < 0x3p-24f, "precondition: expf-form a in (0.5u, 1.5u)");

	float x[12];
	x[0] = 20;
	for (int e = 1; e < 8; e++)
		x[e] = X;
	for (int e = 8; e < 12; e++)
		x[e] = -100;
	const float rsf = 0x1.01000cp+0f;
	const int32_t want_ids[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const float want0[NPROF] = { 1.0078125f, 0x1.00fffep+0f, 1.0f };
	for (int method = 0; method < 2; method++) {
		for (int pf = 0; pf < NPROF; pf++) {
			struct moe_route_params p = prm(MOE_ROUTE_MINIMAX2, pf, 12, 8);
			if (method) {
				p = prm_ds(pf, 12, 8, 0, 0, rsf);
				p.bias_dtype = MOE_DTYPE_NONE;
			}
			p.routed_scaling_factor = rsf;
			int32_t ids[8];
			float w[8];
			route(&p, 1, x, NULL, ids, w);
			expect_ids(&p, ids, want_ids, "butterfly");
			ck_assert_msg(w[0] == want0[pf], "%s/%s butterfly slot 0: %a, want %a",
				      moe_routing_method_name(p.method), moe_profile_name(pf), (double)w[0],
				      (double)want0[pf]);
			if (pf == MOE_PROFILE_FLASHINFER)
				for (int k = 1; k < 8; k++)
					ck_assert_float_eq(w[k], 1.5078125f * 0x1p-24f);
		}
	}
}
END_TEST

START_TEST(test_rsf_applied_once)
{
	/* DeepSeek-V3's shape (E 256, G 8, keep 4, K 8, rsf 2.5) on pseudo-random logits and biases,
	 * and MiniMax2 with rsf 1.5: the weights sum to rsf. vLLM: fp32, the sum over 8 positive
	 * terms renormalized by their own sequential sum is within 16 ulps of rsf; flashinfer and HF:
	 * each weight is bf16-rounded (relative error <= 2^-8, half of bf16's 8-bit significand's
	 * ulp), so |sum - rsf| <= rsf * (2^-8 + 16 * 2^-24).
	 * rsf applied twice (6.25) or never (1) is far outside either. */
	const struct moe_model_shape *ds = moe_model_find("deepseek-v3");
	ck_assert_ptr_nonnull(ds);
	enum { T = 16, E = 256 };
	static float x[T * E], b[E];
	uint32_t seed = 12345u;
	for (int i = 0; i < T * E; i++) {
		seed = seed * 1664525u + 1013904223u;
		x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 8.0f;
	}
	for (int e = 0; e < E; e++) {
		seed = seed * 1664525u + 1013904223u;
		b[e] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
	}
	for (int pf = 0; pf < NPROF; pf++) {
		for (int which = 0; which < 2; which++) {
			struct moe_route_params p = moe_model_route_params(ds, pf);
			if (which) {
				p.method = MOE_ROUTE_MINIMAX2;
				p.routed_scaling_factor = 1.5f;
			}
			int32_t ids[T * 8];
			float w[T * 8];
			route(&p, T, x, b, ids, w);
			for (int t = 0; t < T; t++) {
				double sum = 0;
				for (int k = 0; k < 8; k++)
					sum += w[t * 8 + k];
				double rsf = p.routed_scaling_factor;
				double tol = rsf * 16 * 0x1p-24 + (pf == MOE_PROFILE_VLLM ? 0 : rsf * 0x1p-8);
				ck_assert_msg(fabs(sum - rsf) <= tol, "%s/%s token %d: sum %.9g, rsf %g",
					      moe_routing_method_name(p.method), moe_profile_name(pf), t, sum, rsf);
			}
		}
	}
}
END_TEST

START_TEST(test_all_equal_rows)
{
	/* Equal logits: every key ties, ids are 0..K-1 for every method and profile.
	 * DeepSeekV3 (G 4, keep 2): group scores tie too, groups 0 and 1 are kept, ids 0, 1, 2. */
	const float xf[8] = { 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f };
	moe_bf16 xb[8];
	for (int e = 0; e < 8; e++)
		xb[e] = 0xbf80; /* -1.0 */
	const float b[8] = { 0 };
	const int32_t want[3] = { 0, 1, 2 };
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
		for (int pf = 0; pf < NPROF; pf++) {
			for (int dt = 0; dt < 2; dt++) {
				struct moe_route_params p = prm(m, pf, 8, m == MOE_ROUTE_LLAMA4 ? 1 : 3);
				const void *bias = NULL;
				if (m == MOE_ROUTE_DEEPSEEKV3)
					p = prm_ds(pf, 8, 3, 4, 2, 1.0f);
				if (m == MOE_ROUTE_DEEPSEEKV3 || m == MOE_ROUTE_MINIMAX2) {
					p.bias_dtype = MOE_DTYPE_F32;
					bias = b;
				}
				p.logits_dtype = dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
				int32_t ids[3];
				float w[3];
				route(&p, 1, dt ? (const void *)xb : (const void *)xf, bias, ids, w);
				expect_ids(&p, ids, want, dt ? "equal bf16" : "equal f32");
				/* equal weights too */
				for (int k = 1; k < p.top_k; k++)
					ck_assert_msg(w[k] == w[0], "%s/%s equal row: w[%d] %a != w[0] %a",
						      moe_routing_method_name(m), moe_profile_name(pf), k, (double)w[k],
						      (double)w[0]);
			}
		}
	}
	/* Default over 8 equal logits: p = 1/8 exactly; Renormalize over 3: fp32 1/3. */
	struct moe_route_params p = prm(MOE_ROUTE_DEFAULT, VL, 8, 3);
	int32_t ids[3];
	float w[3];
	const float eighth[3] = { 0.125f, 0.125f, 0.125f };
	const float third[3] = { 0x1.555556p-2f, 0x1.555556p-2f, 0x1.555556p-2f };
	route(&p, 1, xf, NULL, ids, w);
	expect_w(&p, w, eighth, 0, "equal");
	p.method = MOE_ROUTE_RENORMALIZE;
	route(&p, 1, xf, NULL, ids, w);
	expect_w(&p, w, third, 0, "equal");
}
END_TEST

START_TEST(test_bf16_tie_straddles_kth)
{
	/* bf16 logits [1, 2, 1, 1, .5, 1, -1, 0]: the 2nd and 3rd slots go to the tie at 1.0 among
	 * experts 0, 2, 3, 5 -- lower indices first: ids [1, 0, 2] for every method that ranks a
	 * monotone function of the logit, under every profile. TopK weights: [2, 1, 1] exactly.
	 * Renormalize weights: softmax of [2, 1, 1] = [1, e^-1, e^-1] / (1 + 2e^-1), from long double,
	 * within 8 fp32 ulps (vLLM: expf, two additions, a division) or half a bf16 ulp (2^-8
	 * relative) plus those. */
	const moe_bf16 x[8] = { 0x3f80, 0x4000, 0x3f80, 0x3f80, 0x3f00, 0x3f80, 0xbf80, 0x0000 };
	const int32_t want[3] = { 1, 0, 2 };
	const enum moe_routing_method ms[] = { MOE_ROUTE_DEFAULT, MOE_ROUTE_RENORMALIZE, MOE_ROUTE_RENORMALIZE_NAIVE,
					       MOE_ROUTE_TOPK, MOE_ROUTE_SIGMOID_RENORM, MOE_ROUTE_SIGMOID,
					       MOE_ROUTE_TOPK_SIGMOID, MOE_ROUTE_MINIMAX2, MOE_ROUTE_DEEPSEEKV3 };
	const long double e1 = expl(-1.0L), z = 1 + 2 * e1;
	const float soft[3] = { (float)(1 / z), (float)(e1 / z), (float)(e1 / z) };
	const float raw[3] = { 2, 1, 1 };
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		for (int pf = 0; pf < NPROF; pf++) {
			struct moe_route_params p = prm(ms[i], pf, 8, 3);
			p.logits_dtype = MOE_DTYPE_BF16;
			int32_t ids[3];
			float w[3];
			route(&p, 1, x, NULL, ids, w);
			expect_ids(&p, ids, want, "bf16 tie");
			if (ms[i] == MOE_ROUTE_TOPK)
				expect_w(&p, w, raw, 0, "bf16 tie");
			if (ms[i] == MOE_ROUTE_RENORMALIZE)
				for (int k = 0; k < 3; k++) {
					float tol = (pf == MOE_PROFILE_VLLM ? 8 * 0x1p-24f : 0x1.02p-8f) * soft[k];
					ck_assert_msg(fabsf(w[k] - soft[k]) <= tol, "%s: slot %d %a vs %a",
						      moe_profile_name(pf), k, (double)w[k], (double)soft[k]);
				}
		}
	}
}
END_TEST

START_TEST(test_signed_zero)
{
	/* x = [-0.0, +0.0, -1 ...], ranked on raw logits (TopK, Renormalize, TopKSigmoid).
	 * flashinfer ranks by the total order: +0.0 outranks -0.0, ids [1, 0]. vLLM (`>`) and HF
	 * (torch.topk) compare numerically: -0.0 == +0.0, the lower index wins: ids [0, 1].
	 * In bf16 the same with 0x8000 and 0x0000. TopK weights keep the sign: flashinfer [+0, -0],
	 * vLLM and HF [-0, +0]. Llama4's strict `>` keeps the first zero, expert 0, in every profile. */
	const float xf[8] = { -0.0f, 0.0f, -1, -1, -1, -1, -1, -1 };
	const moe_bf16 xb[8] = { 0x8000, 0x0000, 0xbf80, 0xbf80, 0xbf80, 0xbf80, 0xbf80, 0xbf80 };
	const int32_t total[2] = { 1, 0 }, numeric[2] = { 0, 1 };
	const enum moe_routing_method raw[3] = { MOE_ROUTE_TOPK, MOE_ROUTE_RENORMALIZE, MOE_ROUTE_TOPK_SIGMOID };
	for (int pf = 0; pf < NPROF; pf++) {
		const int32_t *want = pf == MOE_PROFILE_FLASHINFER ? total : numeric;
		for (int dt = 0; dt < 2; dt++) {
			const void *x = dt ? (const void *)xb : (const void *)xf;
			int32_t ids[2];
			float w[2];
			for (int i = 0; i < 3; i++) {
				struct moe_route_params p = prm(raw[i], pf, 8, 2);
				p.logits_dtype = dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
				route(&p, 1, x, NULL, ids, w);
				expect_ids(&p, ids, want, "signed zero");
				if (raw[i] == MOE_ROUTE_TOPK) {
					ck_assert_int_eq(signbit(w[0]) != 0, pf != MOE_PROFILE_FLASHINFER);
					ck_assert_int_eq(signbit(w[1]) != 0, pf == MOE_PROFILE_FLASHINFER);
				}
			}
			struct moe_route_params p = prm(MOE_ROUTE_LLAMA4, pf, 8, 1);
			p.logits_dtype = dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
			route(&p, 1, x, NULL, ids, w);
			ck_assert_msg(ids[0] == 0, "signed zero Llama4/%s: id %d, want 0", moe_profile_name(pf),
				      ids[0]);
		}
	}
}
END_TEST

START_TEST(test_nan_inf_rows)
{
	const float qnan = NAN, pinf = INFINITY, mnan = -NAN;
	int32_t ids[8];
	float w[8];

	/* All-NaN row, Renormalize K 2. flashinfer/HF: all keys +NaN, a tie: ids [0, 1]; the
	 * weights are NaN (softmax of NaN). vLLM: NaN -> 0, a tie: ids [0, 1], w [.5, .5]. */
	float all_nan[8];
	for (int e = 0; e < 8; e++)
		all_nan[e] = qnan;
	const int32_t first2[2] = { 0, 1 };
	const float nan2[2] = { NAN, NAN }, half2[2] = { 0.5f, 0.5f };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_RENORMALIZE, pf, 8, 2);
		route(&p, 1, all_nan, NULL, ids, w);
		expect_ids(&p, ids, first2, "all NaN");
		expect_w(&p, w, pf == MOE_PROFILE_VLLM ? half2 : nan2, 0, "all NaN");
	}

	/* Mixed row [1, +NaN, 2, -inf, 0, +inf, -NaN, .5], TopK K 7.
	 * flashinfer's total order: +NaN(1) > +inf(5) > 2(2) > 1(0) > .5(7) > 0(4) > -inf(3) > -NaN(6):
	 * ids [1, 5, 2, 0, 7, 4, 3] with weights [NaN, inf, 2, 1, .5, 0, -inf].
	 * HF (torch.topk): both NaNs first by index (1, 6), then +inf(5) > 2(2) > 1(0) > .5(7) > 0(4):
	 * ids [1, 6, 5, 2, 0, 7, 4], w [NaN, NaN, inf, 2, 1, .5, 0].
	 * vLLM clamps its scores, here the logits: [1, 0, 2, 0, 0, 0, 0, .5]: ids [2, 0, 7, 1, 3, 4, 5],
	 * w [2, 1, .5, 0, 0, 0, 0]. */
	const float mixed[8] = { 1, qnan, 2, -pinf, 0, pinf, mnan, 0.5f };
	const int32_t mixed_ids[NPROF][7] = {
		[MOE_PROFILE_FLASHINFER] = { 1, 5, 2, 0, 7, 4, 3 },
		[MOE_PROFILE_VLLM] = { 2, 0, 7, 1, 3, 4, 5 },
		[MOE_PROFILE_HF] = { 1, 6, 5, 2, 0, 7, 4 },
	};
	const float mixed_w[NPROF][7] = {
		[MOE_PROFILE_FLASHINFER] = { NAN, INFINITY, 2, 1, 0.5f, 0, -INFINITY },
		[MOE_PROFILE_VLLM] = { 2, 1, 0.5f, 0, 0, 0, 0 },
		[MOE_PROFILE_HF] = { NAN, NAN, INFINITY, 2, 1, 0.5f, 0 },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_TOPK, pf, 8, 7);
		route(&p, 1, mixed, NULL, ids, w);
		expect_ids(&p, ids, mixed_ids[pf], "mixed");
		expect_w(&p, w, mixed_w[pf], 0, "mixed");
	}

	/* Default with one NaN: the sum over E is NaN, so is every probability: flashinfer/HF rank
	 * a row of +NaN keys, a tie: ids [0, 1, 2], weights NaN. vLLM clamps every probability to 0:
	 * a tie too, ids [0, 1, 2], weights 0. */
	float one_nan[8];
	for (int e = 0; e < 8; e++)
		one_nan[e] = row_a[e];
	one_nan[1] = qnan;
	const int32_t first3[3] = { 0, 1, 2 };
	const float zero3[3] = { 0, 0, 0 }, nan3[3] = { NAN, NAN, NAN };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_DEFAULT, pf, 8, 3);
		route(&p, 1, one_nan, NULL, ids, w);
		expect_ids(&p, ids, first3, "one NaN");
		expect_w(&p, w, pf == MOE_PROFILE_VLLM ? zero3 : nan3, 0, "one NaN");
	}

	/* Llama4: all NaN -> id 0 (never -1); w NaN, vLLM sig(0) = .5. All -inf -> id 0; w = sig(-inf)
	 * = 0, vLLM .5. NaN at index 0 with finite values after it: NaN is never chosen, the first 3
	 * (expert 2) is. */
	float all_minf[8];
	for (int e = 0; e < 8; e++)
		all_minf[e] = -pinf;
	const float nan_first[8] = { qnan, -5, 3, 3, 0, 0, 0, 0 };
	const int32_t id0[1] = { 0 }, id2[1] = { 2 };
	const float wnan[1] = { NAN }, whalf[1] = { 0.5f }, wzero[1] = { 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_LLAMA4, pf, 8, 1);
		route(&p, 1, all_nan, NULL, ids, w);
		expect_ids(&p, ids, id0, "llama4 all NaN");
		expect_w(&p, w, pf == MOE_PROFILE_VLLM ? whalf : wnan, 0, "llama4 all NaN");
		route(&p, 1, all_minf, NULL, ids, w);
		expect_ids(&p, ids, id0, "llama4 all -inf");
		expect_w(&p, w, pf == MOE_PROFILE_VLLM ? whalf : wzero, 0, "llama4 all -inf");
		route(&p, 1, nan_first, NULL, ids, w);
		expect_ids(&p, ids, id2, "llama4 NaN first");
	}

	/* Sigmoid with a -NaN logit: a computed NaN is the positive NaN, so flashinfer/HF pick it
	 * first whatever the input's sign; vLLM clamps that score to 0 and picks sig(1): expert 2. */
	const float neg_nan[8] = { mnan, 0, 1, 0, 0, 0, 0, 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, pf, 8, 1);
		route(&p, 1, neg_nan, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? id2 : id0, "sigmoid -NaN");
	}
}
END_TEST

START_TEST(test_vllm_clamps_scores)
{
	/* vLLM PR #39391: a NaN or +-inf SCORE becomes +0.0 before selection and the weights come
	 * from the clamped scores; the logits themselves are clamped only where they are the score. */
	const float qnan = NAN, pinf = INFINITY;
	int32_t ids[4];
	float w[4];

	/* Sigmoid K 4, x = [0, +inf, LN3, -inf, -LN3 x4]. sig(+inf) = 1 in both forms (tanhf(inf) = 1;
	 * 1 / (1 + expf(-inf)) = 1 / 1) and sig(-inf) = 0 (tanhf -> -1; 1 / (1 + inf) = 0): finite
	 * scores, kept by every profile. s = [.5, 1, sig(LN3), 0, .25 x4] (header comment), so ids
	 * [1, 2, 0, 4] everywhere; w = [1, sig(LN3), .5, .25]: flashinfer sig(LN3) = .75, vLLM
	 * 0x1.800002p-1, HF bf16 of that = .75. (Clamping the logits instead would give s(+inf) =
	 * s(-inf) = .5 and ids [2, 0, 1, 3].) */
	const float x_inf[8] = { 0, pinf, LN3, -pinf, -LN3, -LN3, -LN3, -LN3 };
	const int32_t ids_inf[4] = { 1, 2, 0, 4 };
	const float w_inf[NPROF][4] = {
		[MOE_PROFILE_FLASHINFER] = { 1, 0.75f, 0.5f, 0.25f },
		[MOE_PROFILE_VLLM] = { 1, 0x1.800002p-1f, 0.5f, 0.25f },
		[MOE_PROFILE_HF] = { 1, 0.75f, 0.5f, 0.25f },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, pf, 8, 4);
		route(&p, 1, x_inf, NULL, ids, w);
		expect_ids(&p, ids, ids_inf, "sigmoid +-inf");
		expect_w(&p, w, w_inf[pf], 0, "sigmoid +-inf");
	}

	/* Sigmoid K 2, x = [NaN, -LN3, -inf x6]: s = [NaN, .25, 0 x6]. flashinfer/HF rank the +NaN
	 * first: ids [0, 1], w [NaN, .25]. vLLM clamps s0 to 0, which ties with the genuine zeros
	 * of the -inf logits, expert 0 the lowest: ids [1, 0], w [.25, 0]. (Clamping the logit would
	 * give s0 = sig(0) = .5: ids [0, 1], w [.5, .25].) */
	float x_nan[8] = { qnan, -LN3 };
	for (int e = 2; e < 8; e++)
		x_nan[e] = -pinf;
	const int32_t ids01[2] = { 0, 1 }, ids10[2] = { 1, 0 };
	const float w_nan[2] = { NAN, 0.25f }, w_clamped[2] = { 0.25f, 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, pf, 8, 2);
		route(&p, 1, x_nan, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? ids10 : ids01, "sigmoid NaN");
		expect_w(&p, w, pf == MOE_PROFILE_VLLM ? w_clamped : w_nan, 0, "sigmoid NaN");
	}

	/* All-NaN row, K 2: every sigmoid is NaN. vLLM: all scores 0, a tie: ids [0, 1]; Sigmoid
	 * w = [0, 0]; SigmoidRenorm 0 / (S > 0 ? S : 1) = 0 / 1 = 0; MiniMax2 with a zero bias (keys
	 * 0 + 0) (0 / 1) * rsf = 0. flashinfer/HF: keys +NaN, a tie: ids [0, 1], weights NaN
	 * (SigmoidRenorm flashinfer: NaN / fmaxf(NaN, 1e-20) = NaN / 1e-20). */
	float all_nan[8];
	for (int e = 0; e < 8; e++)
		all_nan[e] = qnan;
	const float zero_b[8] = { 0 };
	const float zero2[2] = { 0, 0 }, nan2[2] = { NAN, NAN };
	const enum moe_routing_method sig_methods[3] = { MOE_ROUTE_SIGMOID, MOE_ROUTE_SIGMOID_RENORM,
							 MOE_ROUTE_MINIMAX2 };
	for (int i = 0; i < 3; i++) {
		for (int pf = 0; pf < NPROF; pf++) {
			struct moe_route_params p = prm(sig_methods[i], pf, 8, 2);
			p.renormalize = true;
			const void *b = NULL;
			if (sig_methods[i] == MOE_ROUTE_MINIMAX2) {
				p.bias_dtype = MOE_DTYPE_F32;
				b = zero_b;
			}
			route(&p, 1, all_nan, b, ids, w);
			expect_ids(&p, ids, ids01, "all NaN sigmoid");
			expect_w(&p, w, pf == MOE_PROFILE_VLLM ? zero2 : nan2, 0, "all NaN sigmoid");
		}
	}

	/* Softmax methods, K 3, on row A (x = [LN2, 0, LN4, 0, LN2, 0, 0, 0]) with x5 changed.
	 * x5 = -inf: its e = expf(-inf) = 0 is a finite probability, nothing to clamp. Against LN4,
	 * e = [.5, .25, 1, .25, .5, 0, .25, .25], Z = 3 exactly, p = [1/6, 1/12, 1/3, 1/12, 1/6, 0,
	 * 1/12, 1/12]: ids [2, 0, 4] in every profile. Default w = [1/3, 1/6, 1/6], correctly rounded
	 * in fp32 (vLLM): 0x1.555556p-2, 0x1.555556p-3; bf16 (flashinfer, HF): 1/3 * 512 = 170.67 ->
	 * 171/512 = 0.333984375, 1/6 -> 171/1024 = 0.1669921875. RenormalizeNaive: w = p / S within
	 * 3 ulps of [.5, .25, .25] (vLLM), exactly that in bf16 (HF) and under flashinfer (the
	 * Renormalize algorithm on [LN4, LN2, LN2]). (Clamping the logit would give row A itself:
	 * Default w = [4/13, 2/13, 2/13].) */
	float x_minf[8], x_pinf[8], x_allminf[8];
	for (int e = 0; e < 8; e++) {
		x_minf[e] = x_pinf[e] = row_a[e];
		x_allminf[e] = -pinf;
	}
	x_minf[5] = -pinf;
	x_pinf[5] = pinf;
	const float w_def[NPROF][3] = {
		[MOE_PROFILE_FLASHINFER] = { 0.333984375f, 0.1669921875f, 0.1669921875f },
		[MOE_PROFILE_VLLM] = { 0x1.555556p-2f, 0x1.555556p-3f, 0x1.555556p-3f },
		[MOE_PROFILE_HF] = { 0.333984375f, 0.1669921875f, 0.1669921875f },
	};
	const float w_naive[3] = { 0.5f, 0.25f, 0.25f };
	const int32_t first3[3] = { 0, 1, 2 };
	const float zero3[3] = { 0, 0, 0 }, nan3[3] = { NAN, NAN, NAN };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_DEFAULT, pf, 8, 3);
		route(&p, 1, x_minf, NULL, ids, w);
		expect_ids(&p, ids, ids_a, "softmax -inf");
		expect_w(&p, w, w_def[pf], 0, "softmax -inf");
		p.method = MOE_ROUTE_RENORMALIZE_NAIVE;
		route(&p, 1, x_minf, NULL, ids, w);
		expect_ids(&p, ids, ids_a, "softmax -inf");
		expect_w(&p, w, w_naive, pf == MOE_PROFILE_VLLM ? 3 : 0, "softmax -inf");
	}

	/* x5 = +inf: the max is +inf, e5 = expf(inf - inf) = NaN, so the sum and every probability
	 * are NaN. An all -inf row likewise (expf(-inf - -inf) = NaN). vLLM clamps the whole row to
	 * 0: ids [0, 1, 2]; Default w = 0, RenormalizeNaive 0 / (S > 0 ? S : 1) = 0. HF ranks a row
	 * of +NaN keys: ids [0, 1, 2], w NaN. flashinfer: Default as HF; its RenormalizeNaive is
	 * Renormalize on the logits: +inf(5) > LN4(2) > LN2(0) on the +inf row, ids [5, 2, 0], and
	 * the softmax over those has e = [NaN, 0, 0] and a NaN sum: w NaN; on the all -inf row a tie,
	 * ids [0, 1, 2], w NaN (expf(-inf - -inf)). */
	const int32_t fi_naive_pinf[3] = { 5, 2, 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		for (int row = 0; row < 2; row++) {
			const float *x = row ? x_allminf : x_pinf;
			const char *what = row ? "softmax all -inf" : "softmax +inf";
			struct moe_route_params p = prm(MOE_ROUTE_DEFAULT, pf, 8, 3);
			route(&p, 1, x, NULL, ids, w);
			expect_ids(&p, ids, first3, what);
			expect_w(&p, w, pf == MOE_PROFILE_VLLM ? zero3 : nan3, 0, what);
			p.method = MOE_ROUTE_RENORMALIZE_NAIVE;
			route(&p, 1, x, NULL, ids, w);
			expect_ids(&p, ids, pf == MOE_PROFILE_FLASHINFER && !row ? fi_naive_pinf : first3, what);
			expect_w(&p, w, pf == MOE_PROFILE_VLLM ? zero3 : nan3, 0, what);
		}
	}

	/* Methods that rank raw logits: the logit is the score, so vLLM clamps it before ranking
	 * and before the weight. x = [+inf, LN3, NaN, -5 x5], K 2.
	 * vLLM sees [0, LN3, 0, -5 ...]: ids [1, 0]. TopKSigmoid w = [sig(LN3), sig(0)] =
	 * [0x1.800002p-1, .5] (not sig(+inf) = 1). Renormalize: softmax of [LN3, 0]: e = [1,
	 * expf(-LN3) = 0x1.555554p-2], S = 0x1.555554p+0 (header comment), w = [1 / S, e1 / S] =
	 * [0x1.800002p-1, 0.25].
	 * flashinfer (+NaN > +inf) and HF (NaN first, then +inf): ids [2, 0]; TopKSigmoid w =
	 * [NaN, sig(+inf) = 1]; Renormalize: a NaN among the K makes the sum NaN: w NaN. */
	const float x_raw[8] = { pinf, LN3, qnan, -5, -5, -5, -5, -5 };
	const int32_t raw_clamped[2] = { 1, 0 }, raw_kept[2] = { 2, 0 };
	const float w_tks[NPROF][2] = {
		[MOE_PROFILE_FLASHINFER] = { NAN, 1 },
		[MOE_PROFILE_VLLM] = { 0x1.800002p-1f, 0.5f },
		[MOE_PROFILE_HF] = { NAN, 1 },
	};
	const float w_ren[NPROF][2] = {
		[MOE_PROFILE_FLASHINFER] = { NAN, NAN },
		[MOE_PROFILE_VLLM] = { 0x1.800002p-1f, 0.25f },
		[MOE_PROFILE_HF] = { NAN, NAN },
	};
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_TOPK_SIGMOID, pf, 8, 2);
		route(&p, 1, x_raw, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? raw_clamped : raw_kept, "raw logits");
		expect_w(&p, w, w_tks[pf], 0, "raw logits");
		p.method = MOE_ROUTE_RENORMALIZE;
		route(&p, 1, x_raw, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? raw_clamped : raw_kept, "raw logits");
		expect_w(&p, w, w_ren[pf], 0, "raw logits");
	}
}
END_TEST

START_TEST(test_hf_nan_order)
{
	/* Raw logits ranked by TopK, Renormalize and TopKSigmoid, K 5, with NaNs of both signs and
	 * two payloads: x = [1, -NaN, +inf, 0, +NaN(0x7fc00001), +NaN(0x7fffffff), -1, -1]
	 * (bf16: 0x3f80, 0xffc0, 0x7f80, 0x0000, 0x7fc1, 0x7fff, 0xbf80, 0xbf80, the same classes).
	 * HF ranks as torch.topk on CPU: every NaN above +inf, NaNs equal among themselves (lower
	 * index first): 1, 4, 5, then +inf(2), 1(0): ids [1, 4, 5, 2, 0]; TopK w [NaN, NaN, NaN,
	 * inf, 1].
	 * flashinfer's total order: payload 0x7fffff(5) > 0x400001(4) > +inf(2) > 1(0) > 0(3) > -1 >
	 * -NaN(1) last: ids [5, 4, 2, 0, 3]; TopK w [NaN, NaN, inf, 1, 0].
	 * vLLM clamps the logits: [1, 0, 0, 0, 0, 0, -1, -1]: ids [0, 1, 2, 3, 4]; TopK w [1, 0, 0,
	 * 0, 0]. */
	const float xf[8] = { 1, moe_f32_from_bits(0xffc00000u), INFINITY, 0, moe_f32_from_bits(0x7fc00001u),
			      moe_f32_from_bits(0x7fffffffu), -1, -1 };
	const moe_bf16 xb[8] = { 0x3f80, 0xffc0, 0x7f80, 0x0000, 0x7fc1, 0x7fff, 0xbf80, 0xbf80 };
	const int32_t want_ids[NPROF][5] = {
		[MOE_PROFILE_FLASHINFER] = { 5, 4, 2, 0, 3 },
		[MOE_PROFILE_VLLM] = { 0, 1, 2, 3, 4 },
		[MOE_PROFILE_HF] = { 1, 4, 5, 2, 0 },
	};
	const float want_w[NPROF][5] = {
		[MOE_PROFILE_FLASHINFER] = { NAN, NAN, INFINITY, 1, 0 },
		[MOE_PROFILE_VLLM] = { 1, 0, 0, 0, 0 },
		[MOE_PROFILE_HF] = { NAN, NAN, NAN, INFINITY, 1 },
	};
	const enum moe_routing_method raw[3] = { MOE_ROUTE_TOPK, MOE_ROUTE_RENORMALIZE, MOE_ROUTE_TOPK_SIGMOID };
	for (int pf = 0; pf < NPROF; pf++)
		for (int dt = 0; dt < 2; dt++)
			for (int i = 0; i < 3; i++) {
				struct moe_route_params p = prm(raw[i], pf, 8, 5);
				p.logits_dtype = dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
				int32_t ids[5];
				float w[5];
				route(&p, 1, dt ? (const void *)xb : (const void *)xf, NULL, ids, w);
				expect_ids(&p, ids, want_ids[pf], dt ? "NaN order bf16" : "NaN order f32");
				if (raw[i] == MOE_ROUTE_TOPK)
					expect_w(&p, w, want_w[pf], 0, dt ? "NaN order bf16" : "NaN order f32");
			}

	/* Computed keys are the positive NaN and tie: Sigmoid K 2 on [-NaN, 0, +NaN(0x7fffffff), 0 ...]
	 * under HF ranks experts 0 and 2 first, lower index first: ids [0, 2] (as flashinfer). */
	const float xs[8] = { moe_f32_from_bits(0xffc00000u), 0, moe_f32_from_bits(0x7fffffffu), 0, 0, 0, 0, 0 };
	const int32_t ids02[2] = { 0, 2 };
	for (int pf = 0; pf < NPROF; pf += 2) {
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, pf, 8, 2);
		int32_t ids[2];
		float w[2];
		route(&p, 1, xs, NULL, ids, w);
		expect_ids(&p, ids, ids02, "computed NaN");
	}
}
END_TEST

START_TEST(test_llama4_never_nan)
{
	/* Llama4's argmax takes the first non-NaN logit and then only strictly greater ones; -inf
	 * is a value like any other. vLLM applies it to its clamped logits (NaN, +-inf -> 0).
	 * Row 1, [NaN, -inf x7]: flashinfer/HF id 1, w = sig(-inf) = 0 in both forms (tanhf(-inf)
	 * = -1: .5 * -1 + .5 = 0; 1 / (1 + inf) = 0). vLLM sees all zeros: id 0, w sig(0) = .5.
	 * Row 2, [NaN, NaN, -inf, LN3, NaN, LN3, -0, 0]: the first LN3, id 3 everywhere (vLLM: [0, 0,
	 * 0, LN3, 0, LN3, -0, 0]); w = sig(LN3): .75 (flashinfer), 0x1.800002p-1 (vLLM), .75 (HF bf16).
	 * Row 3 (bf16), [-NaN, -inf, +NaN, -inf, ...]: flashinfer/HF id 1, w 0; vLLM id 0, w .5. */
	float r1[8] = { NAN };
	for (int e = 1; e < 8; e++)
		r1[e] = -INFINITY;
	const float r2[8] = { NAN, NAN, -INFINITY, LN3, NAN, LN3, -0.0f, 0 };
	const moe_bf16 r3[8] = { 0xffc0, 0xff80, 0x7fc0, 0xff80, 0xff80, 0xff80, 0xff80, 0xff80 };
	const int32_t id0[1] = { 0 }, id1[1] = { 1 }, id3[1] = { 3 };
	const float w0[1] = { 0 }, whalf[1] = { 0.5f };
	const float w2[NPROF][1] = { { 0.75f }, { 0x1.800002p-1f }, { 0.75f } };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_LLAMA4, pf, 8, 1);
		int32_t ids[1];
		float w[1];
		bool vl = pf == MOE_PROFILE_VLLM;
		route(&p, 1, r1, NULL, ids, w);
		expect_ids(&p, ids, vl ? id0 : id1, "NaN then -inf");
		expect_w(&p, w, vl ? whalf : w0, 0, "NaN then -inf");
		route(&p, 1, r2, NULL, ids, w);
		expect_ids(&p, ids, id3, "NaNs and a tie");
		expect_w(&p, w, w2[pf], 0, "NaNs and a tie");
		p.logits_dtype = MOE_DTYPE_BF16;
		route(&p, 1, r3, NULL, ids, w);
		expect_ids(&p, ids, vl ? id0 : id1, "bf16 NaNs and -inf");
		expect_w(&p, w, vl ? whalf : w0, 0, "bf16 NaNs and -inf");
	}
}
END_TEST

/* ids of every token distinct and in [0, E), whatever the data. */
static void check_ids_valid(const struct moe_route_params *p, int64_t T, const int32_t *ids)
{
	for (int64_t t = 0; t < T; t++)
		for (int32_t k = 0; k < p->top_k; k++) {
			int32_t id = ids[t * p->top_k + k];
			ck_assert_msg(id >= 0 && id < p->num_experts, "%s/%s: id %d out of range",
				      moe_routing_method_name(p->method), moe_profile_name(p->profile), id);
			for (int32_t j = 0; j < k; j++)
				ck_assert_msg(ids[t * p->top_k + j] != id, "%s/%s token %lld: id %d twice",
					      moe_routing_method_name(p->method), moe_profile_name(p->profile),
					      (long long)t, id);
		}
}

START_TEST(test_ids_always_valid)
{
	/* Rows mixing normal values with NaN of both signs, infinities, zeros of both signs,
	 * denormals and huge values, with and without biases of the same kind: ids stay valid. */
	enum { T = 64, E = 16 };
	static const float specials[] = { NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f,
					  1e-45f, -3e38f, 3e38f, -120, 30 };
	const size_t ns = sizeof specials / sizeof specials[0];
	static float x[T * E], b[E];
	static moe_bf16 xb[T * E];
	uint32_t seed = 7u;
	for (int i = 0; i < T * E; i++) {
		seed = seed * 1664525u + 1013904223u;
		x[i] = (seed >> 28) < 6 ? specials[(seed >> 8) % ns] : ((float)(seed >> 8) / 16777216.0f - 0.5f) * 6;
		xb[i] = moe_f32_to_bf16(x[i]);
	}
	for (int e = 0; e < E; e++)
		b[e] = e % 5 == 0 ? specials[e % ns] : (float)e * 0.01f;
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++)
		for (int pf = 0; pf < NPROF; pf++)
			for (int dt = 0; dt < 2; dt++) {
				struct moe_route_params p = prm(m, pf, E, m == MOE_ROUTE_LLAMA4 ? 1 : 4);
				const void *bias = NULL;
				if (m == MOE_ROUTE_DEEPSEEKV3)
					p = prm_ds(pf, E, 4, 4, 2, 2.5f);
				if (m == MOE_ROUTE_DEEPSEEKV3 || m == MOE_ROUTE_MINIMAX2) {
					p.bias_dtype = MOE_DTYPE_F32;
					bias = b;
				}
				p.logits_dtype = dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
				int32_t ids[T * 4];
				float w[T * 4];
				route(&p, T, dt ? (const void *)xb : (const void *)x, bias, ids, w);
				check_ids_valid(&p, T, ids);
			}
}
END_TEST

/* An independent router for random finite rows: keys from the definitions, then a full sort
 * (qsort) instead of the reference's rank-order walk, groups chosen by sorting group scores.
 * Weights are checked against long double arithmetic on the same sigmoid / exp values. */
struct key_idx {
	float key;
	int32_t idx;
	enum moe_profile pf;
};

static int cmp_desc(const void *a, const void *b)
{
	const struct key_idx *x = a, *y = b;
	/* finite keys: numeric order, except that flashinfer puts +0 above -0 */
	if (x->key > y->key)
		return -1;
	if (x->key < y->key)
		return 1;
	if (x->pf == MOE_PROFILE_FLASHINFER && signbit(x->key) != signbit(y->key))
		return signbit(x->key) ? 1 : -1;
	return x->idx < y->idx ? -1 : 1;
}

static float sig_def(enum moe_profile pf, float x)
{
	return pf == MOE_PROFILE_FLASHINFER ? 0.5f * tanhf(0.5f * x) + 0.5f : 1.0f / (1.0f + expf(-x));
}

static void independent_ids(const struct moe_route_params *p, const float *x, const float *b, int32_t *ids,
			    long double *s_out)
{
	const int32_t E = p->num_experts, K = p->top_k;
	const enum moe_profile pf = p->profile;
	struct key_idx keys[64];
	float s[64];
	float mx = x[0];
	for (int e = 1; e < E; e++)
		mx = x[e] > mx ? x[e] : mx;
	float z = 0;
	for (int e = 0; e < E; e++)
		z += expf(x[e] - mx);
	enum moe_routing_method m = p->method;
	if (m == MOE_ROUTE_RENORMALIZE_NAIVE && pf == MOE_PROFILE_FLASHINFER)
		m = MOE_ROUTE_RENORMALIZE;
	for (int e = 0; e < E; e++) {
		float k;
		switch (m) {
		case MOE_ROUTE_DEFAULT:
		case MOE_ROUTE_RENORMALIZE_NAIVE:
			s[e] = expf(x[e] - mx) / z;
			k = s[e];
			break;
		case MOE_ROUTE_SIGMOID:
		case MOE_ROUTE_SIGMOID_RENORM:
			s[e] = sig_def(pf, x[e]);
			k = s[e];
			break;
		case MOE_ROUTE_MINIMAX2:
		case MOE_ROUTE_DEEPSEEKV3:
			s[e] = sig_def(pf, x[e]);
			k = s[e] + (m == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1 && pf == MOE_PROFILE_FLASHINFER
					    ? moe_round_bf16(b[e])
					    : b[e]);
			break;
		default:
			s[e] = x[e];
			k = x[e];
			break;
		}
		keys[e] = (struct key_idx){ k, e, pf };
	}
	if (m == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1) {
		const int32_t G = p->n_group, gs = E / G;
		struct key_idx groups[64], tmp[64];
		for (int g = 0; g < G; g++) {
			for (int i = 0; i < gs; i++)
				tmp[i] = keys[g * gs + i];
			qsort(tmp, gs, sizeof tmp[0], cmp_desc);
			groups[g] = (struct key_idx){ tmp[0].key + tmp[1].key, g, pf };
		}
		qsort(groups, G, sizeof groups[0], cmp_desc);
		bool kept[64] = { false };
		for (int j = 0; j < p->topk_group; j++)
			kept[groups[j].idx] = true;
		for (int e = 0; e < E; e++)
			if (!kept[e / gs])
				keys[e].key = pf == MOE_PROFILE_HF ? 0.0f : -INFINITY;
	}
	qsort(keys, E, sizeof keys[0], cmp_desc);
	for (int k = 0; k < K; k++) {
		ids[k] = keys[k].idx;
		s_out[k] = s[ids[k]];
	}
}

START_TEST(test_independent_router)
{
	enum { T = 40, E = 32 };
	static float x[T * E], b[E];
	uint32_t seed = 99u;
	for (int i = 0; i < T * E; i++) {
		seed = seed * 1664525u + 1013904223u;
		/* coarse values: many exact ties to exercise the tie rule */
		x[i] = (float)((int)(seed >> 24) - 128) / 16.0f;
	}
	for (int e = 0; e < E; e++) {
		seed = seed * 1664525u + 1013904223u;
		b[e] = (float)((int)(seed >> 26) - 32) / 64.0f;
	}
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
		if (m == MOE_ROUTE_LLAMA4)
			continue;
		for (int pf = 0; pf < NPROF; pf++) {
			struct moe_route_params p = prm(m, pf, E, 6);
			const void *bias = NULL;
			if (m == MOE_ROUTE_DEEPSEEKV3)
				p = prm_ds(pf, E, 6, 8, 3, 2.5f);
			if (m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3) {
				p.bias_dtype = MOE_DTYPE_F32;
				p.routed_scaling_factor = 2.5f;
				bias = b;
			}
			int32_t ids[T * 6];
			float w[T * 6];
			route(&p, T, x, bias, ids, w);
			for (int t = 0; t < T; t++) {
				int32_t want[6];
				long double s[6], S = 0, mx = -INFINITY;
				independent_ids(&p, x + t * E, b, want, s);
				expect_ids(&p, ids + t * 6, want, "independent");
				enum moe_routing_method mm = m;
				if (mm == MOE_ROUTE_RENORMALIZE_NAIVE && pf == MOE_PROFILE_FLASHINFER)
					mm = MOE_ROUTE_RENORMALIZE;
				for (int k = 0; k < 6; k++)
					mx = s[k] > mx ? s[k] : mx;
				for (int k = 0; k < 6; k++) {
					if (mm == MOE_ROUTE_RENORMALIZE)
						s[k] = expl(s[k] - mx);
					if (mm == MOE_ROUTE_TOPK_SIGMOID)
						s[k] = sig_def(pf, (float)s[k]);
					S += s[k];
				}
				for (int k = 0; k < 6; k++) {
					long double want_w = s[k];
					if (mm == MOE_ROUTE_RENORMALIZE || mm == MOE_ROUTE_RENORMALIZE_NAIVE ||
					    mm == MOE_ROUTE_SIGMOID_RENORM)
						want_w = s[k] / S;
					if (mm == MOE_ROUTE_MINIMAX2 || mm == MOE_ROUTE_DEEPSEEKV3)
						want_w = s[k] / S * p.routed_scaling_factor;
					/* fp32: a handful of roundings (the sum of 6, a division, a
					 * product): 16 ulps; bf16: half a bf16 ulp (2^-8 relative) plus
					 * that. */
					long double tol = fabsl(want_w) * (pf == MOE_PROFILE_VLLM ? 0x1p-20L : 0x1.02p-8L);
					ck_assert_msg(fabsl(w[t * 6 + k] - want_w) <= tol, "%s/%s token %d slot %d: %a vs %La",
						      moe_routing_method_name(m), moe_profile_name(pf), t, k,
						      (double)w[t * 6 + k], want_w);
				}
			}
		}
	}
}
END_TEST

/* Expect MOE_ERR_INVALID_ARG and a message containing every one of the given fragments. */
static void expect_invalid(const struct moe_route_params *p, const char *a, const char *b)
{
	moe_clear_error();
	ck_assert_int_eq(moe_route_validate(p), MOE_ERR_INVALID_ARG);
	ck_assert_msg(strstr(moe_last_error(), a), "message '%s' lacks '%s'", moe_last_error(), a);
	if (b)
		ck_assert_msg(strstr(moe_last_error(), b), "message '%s' lacks '%s'", moe_last_error(), b);
}

START_TEST(test_validate)
{
	struct moe_route_params p;

	moe_clear_error();
	ck_assert_int_eq(moe_route_validate(NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "NULL"));

	p = prm(MOE_ROUTE_UNSPECIFIED, VL, 8, 2);
	expect_invalid(&p, "Unspecified", "10");
	p.method = (enum moe_routing_method)11;
	expect_invalid(&p, "method 11", NULL);
	p.method = (enum moe_routing_method)-1;
	expect_invalid(&p, "method -1", NULL);

	p = prm(MOE_ROUTE_SIGMOID, (enum moe_profile)3, 8, 2);
	expect_invalid(&p, "profile 3", "Sigmoid");
	p = prm(MOE_ROUTE_SIGMOID, VL, 8, 2);
	p.logits_dtype = MOE_DTYPE_FP8E4M3;
	expect_invalid(&p, "logits dtype fp8e4m3", NULL);
	p.logits_dtype = MOE_DTYPE_NONE;
	expect_invalid(&p, "logits dtype none", NULL);
	p = prm(MOE_ROUTE_MINIMAX2, VL, 8, 2);
	p.bias_dtype = MOE_DTYPE_MXFP4;
	expect_invalid(&p, "bias dtype mxfp4", NULL);
	p = prm(MOE_ROUTE_RENORMALIZE, VL, 8, 2);
	p.bias_dtype = MOE_DTYPE_BF16;
	expect_invalid(&p, "route Renormalize", "bias dtype bf16");

	p = prm(MOE_ROUTE_TOPK, VL, 0, 1);
	expect_invalid(&p, "E=0", NULL);
	p = prm(MOE_ROUTE_TOPK, VL, 8, 0);
	expect_invalid(&p, "top_k=0", NULL);
	p = prm(MOE_ROUTE_TOPK, VL, 8, 9);
	expect_invalid(&p, "top_k=9", "E=8");
	p = prm(MOE_ROUTE_LLAMA4, VL, 8, 2);
	expect_invalid(&p, "route Llama4", "top_k=2 must be 1");
	p = prm(MOE_ROUTE_MINIMAX2, VL, 8, 2);
	p.routed_scaling_factor = NAN;
	expect_invalid(&p, "routed_scaling_factor=nan", NULL);
	p.routed_scaling_factor = INFINITY;
	expect_invalid(&p, "routed_scaling_factor=inf", NULL);

	p = prm_ds(VL, 8, 2, -1, 1, 1.0f);
	expect_invalid(&p, "n_group=-1", NULL);
	p = prm_ds(VL, 12, 2, 8, 1, 1.0f);
	expect_invalid(&p, "E=12", "n_group=8");
	p = prm_ds(VL, 8, 2, 4, 0, 1.0f);
	expect_invalid(&p, "topk_group=0", "n_group=4");
	p = prm_ds(VL, 8, 2, 4, 5, 1.0f);
	expect_invalid(&p, "topk_group=5", NULL);
	p = prm_ds(VL, 16, 9, 4, 2, 1.0f); /* kept experts 2 * 16/4 = 8 */
	expect_invalid(&p, "top_k=9 must be <= topk_group*E/n_group = 8", NULL);
	p = prm_ds(HF, 8, 2, 8, 4, 1.0f); /* one expert per group, top-2 sum */
	expect_invalid(&p, "E/n_group = 1", NULL);
	p.profile = VL;
	p.bias_dtype = MOE_DTYPE_NONE; /* vLLM without a bias takes the max: fine */
	ck_assert_int_eq(moe_route_validate(&p), MOE_OK);

	/* flashinfer's host checks, and the same problems accepted elsewhere */
	struct moe_route_params fi[5];
	fi[0] = prm(MOE_ROUTE_RENORMALIZE, FI, 6, 2);
	fi[1] = prm(MOE_ROUTE_TOPK, FI, 8, 8);
	fi[2] = prm(MOE_ROUTE_SIGMOID, FI, 64, 33);
	fi[3] = prm_ds(FI, 64, 4, 8, 5, 1.0f);
	fi[4] = prm_ds(FI, 8, 4, 4, 2, 1.0f);
	const char *frag[5][2] = { { "E=6", "multiple of 4" },
				   { "top_k=8 must be < E=8", NULL },
				   { "top_k=33", "32" },
				   { "topk_group=5 must be <= 4", NULL },
				   { "top_k=4 must be < topk_group*E/n_group = 4", NULL } };
	for (int i = 0; i < 5; i++) {
		expect_invalid(&fi[i], frag[i][0], frag[i][1]);
		ck_assert_ptr_nonnull(strstr(moe_last_error(), "flashinfer"));
		fi[i].profile = VL;
		ck_assert_int_eq(moe_route_validate(&fi[i]), MOE_OK);
		fi[i].profile = HF;
		ck_assert_int_eq(moe_route_validate(&fi[i]), MOE_OK);
	}

	/* every real model shape validates under every profile */
	for (size_t i = 0; i < moe_model_count(); i++)
		for (int pf = 0; pf < NPROF; pf++) {
			p = moe_model_route_params(moe_model_at(i), pf);
			moe_clear_error();
			ck_assert_msg(moe_route_validate(&p) == MOE_OK, "%s/%s: %s", moe_model_at(i)->name,
				      moe_profile_name(pf), moe_last_error());
		}
	/* the defaults */
	p = moe_route_params_default(MOE_ROUTE_SIGMOID_RENORM, 128, 8);
	ck_assert_int_eq(p.profile, MOE_PROFILE_VLLM);
	ck_assert(p.renormalize);
	ck_assert_float_eq(p.routed_scaling_factor, 1.0f);
	ck_assert_int_eq(p.logits_dtype, MOE_DTYPE_F32);
	ck_assert_int_eq(p.bias_dtype, MOE_DTYPE_NONE);
	ck_assert_int_eq(p.n_group, 0);
	ck_assert_int_eq(moe_route_validate(&p), MOE_OK);
}
END_TEST

START_TEST(test_checked_entry)
{
	struct moe_route_params p = prm(MOE_ROUTE_TOPK, VL, 8, 2);
	const float x[8] = { 0 };
	const float b[8] = { 0 };
	int32_t ids[2];
	float w[2];

	/* T = 0 touches nothing, NULL buffers included */
	ck_assert_int_eq(moe_route_ref_checked(&p, 0, NULL, NULL, NULL, NULL), MOE_OK);

	moe_clear_error();
	ck_assert_int_eq(moe_route_ref_checked(&p, -1, x, NULL, ids, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "T=-1"));
	ck_assert_int_eq(moe_route_ref_checked(&p, INT64_MAX / 4, x, NULL, ids, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "overflows"));
	ck_assert_int_eq(moe_route_ref_checked(&p, 1, NULL, NULL, ids, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "logits is NULL"));
	ck_assert_int_eq(moe_route_ref_checked(&p, 1, x, NULL, NULL, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "ids is NULL"));
	ck_assert_int_eq(moe_route_ref_checked(&p, 1, x, NULL, ids, NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "weights is NULL"));
	ck_assert_int_eq(moe_route_ref_checked(&p, 1, x, b, ids, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "bias is given"));

	p = prm(MOE_ROUTE_MINIMAX2, VL, 8, 2);
	p.bias_dtype = MOE_DTYPE_F32;
	ck_assert_int_eq(moe_route_ref_checked(&p, 1, x, NULL, ids, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "bias is NULL"));

	p = prm(MOE_ROUTE_LLAMA4, VL, 8, 3);
	ck_assert_int_eq(moe_route_ref_checked(&p, 1, x, NULL, ids, w), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "top_k=3"));
	ck_assert_int_eq(moe_route_ref_checked(NULL, 1, x, NULL, ids, w), MOE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_multi_token_rows)
{
	/* T tokens are T independent rows: row A then row B, Sigmoid K 3. */
	float x[16];
	for (int e = 0; e < 8; e++) {
		x[e] = row_a[e];
		x[8 + e] = row_b[e];
	}
	struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, FI, 8, 3);
	int32_t ids[6];
	float w[6];
	route(&p, 2, x, NULL, ids, w);
	/* row A's sigmoids rank as its logits: [2, 0, 4] */
	expect_ids(&p, ids, ids_a, "token 0");
	expect_ids(&p, ids + 3, ids_b, "token 1");
	const float wb[3] = { 0.75f, 0.5f, 0.5f };
	expect_w(&p, w + 3, wb, 0, "token 1");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("routing");
	TCase *tc = tcase_create("routing");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_default);
	tcase_add_test(tc, test_renormalize);
	tcase_add_test(tc, test_renormalize_naive);
	tcase_add_test(tc, test_large_logits);
	tcase_add_test(tc, test_topk);
	tcase_add_test(tc, test_sigmoid_methods);
	tcase_add_test(tc, test_sigmoid_saturation);
	tcase_add_test(tc, test_llama4);
	tcase_add_test(tc, test_minimax2);
	tcase_add_test(tc, test_rsf_order_and_epsilon_forms);
	tcase_add_test(tc, test_deepseek_grouped);
	tcase_add_test(tc, test_deepseek_negative_bias_masking);
	tcase_add_test(tc, test_deepseek_bias_rounding);
	tcase_add_test(tc, test_sigmoid_underflow);
	tcase_add_test(tc, test_bias_dominates);
	tcase_add_test(tc, test_butterfly_vs_sequential);
	tcase_add_test(tc, test_rsf_applied_once);
	tcase_add_test(tc, test_all_equal_rows);
	tcase_add_test(tc, test_bf16_tie_straddles_kth);
	tcase_add_test(tc, test_signed_zero);
	tcase_add_test(tc, test_nan_inf_rows);
	tcase_add_test(tc, test_vllm_clamps_scores);
	tcase_add_test(tc, test_hf_nan_order);
	tcase_add_test(tc, test_llama4_never_nan);
	tcase_add_test(tc, test_ids_always_valid);
	tcase_add_test(tc, test_independent_router);
	tcase_add_test(tc, test_validate);
	tcase_add_test(tc, test_checked_entry);
	tcase_add_test(tc, test_multi_token_rows);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
