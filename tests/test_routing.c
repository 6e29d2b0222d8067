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
	/* x = [-0.0, +0.0, -1 ...]. flashinfer and HF rank by the total order: +0.0 outranks -0.0,
	 * ids [1, 0]. vLLM compares numerically: -0.0 == +0.0, the lower index wins: ids [0, 1].
	 * In bf16 the same with 0x8000 and 0x0000. TopK weights keep the sign: [+0, -0] / [-0, +0]. */
	const float xf[8] = { -0.0f, 0.0f, -1, -1, -1, -1, -1, -1 };
	const moe_bf16 xb[8] = { 0x8000, 0x0000, 0xbf80, 0xbf80, 0xbf80, 0xbf80, 0xbf80, 0xbf80 };
	const int32_t total[2] = { 1, 0 }, numeric[2] = { 0, 1 };
	for (int pf = 0; pf < NPROF; pf++) {
		for (int dt = 0; dt < 2; dt++) {
			struct moe_route_params p = prm(MOE_ROUTE_TOPK, pf, 8, 2);
			p.logits_dtype = dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
			int32_t ids[2];
			float w[2];
			route(&p, 1, dt ? (const void *)xb : (const void *)xf, NULL, ids, w);
			expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? numeric : total, "signed zero");
			ck_assert_int_eq(signbit(w[0]) != 0, pf == MOE_PROFILE_VLLM);
			ck_assert_int_eq(signbit(w[1]) != 0, pf != MOE_PROFILE_VLLM);
			p.method = MOE_ROUTE_RENORMALIZE;
			route(&p, 1, dt ? (const void *)xb : (const void *)xf, NULL, ids, w);
			expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? numeric : total, "signed zero");
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
	 * Total order: +NaN(1) > +inf(5) > 2(2) > 1(0) > .5(7) > 0(4) > -inf(3) > -NaN(6), so
	 * flashinfer/HF ids [1, 5, 2, 0, 7, 4, 3] with weights [NaN, inf, 2, 1, .5, 0, -inf].
	 * vLLM sees [1, 0, 2, 0, 0, 0, 0, .5]: ids [2, 0, 7, 1, 3, 4, 5], w [2, 1, .5, 0, 0, 0, 0]. */
	const float mixed[8] = { 1, qnan, 2, -pinf, 0, pinf, mnan, 0.5f };
	const int32_t tot[7] = { 1, 5, 2, 0, 7, 4, 3 }, san[7] = { 2, 0, 7, 1, 3, 4, 5 };
	const float wtot[7] = { NAN, INFINITY, 2, 1, 0.5f, 0, -INFINITY }, wsan[7] = { 2, 1, 0.5f, 0, 0, 0, 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_TOPK, pf, 8, 7);
		route(&p, 1, mixed, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? san : tot, "mixed");
		expect_w(&p, w, pf == MOE_PROFILE_VLLM ? wsan : wtot, 0, "mixed");
	}

	/* Default with one NaN: flashinfer/HF every probability is NaN (the sum is), ids [0, 1, 2];
	 * vLLM replaces it by 0: x = [0, 0(NaN), LN4, ...] as row A with x1 = 0: ids [2, 0, 4]. */
	float one_nan[8];
	for (int e = 0; e < 8; e++)
		one_nan[e] = row_a[e];
	one_nan[1] = qnan;
	const int32_t first3[3] = { 0, 1, 2 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_DEFAULT, pf, 8, 3);
		route(&p, 1, one_nan, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? ids_a : first3, "one NaN");
		for (int k = 0; k < 3; k++)
			ck_assert(pf == MOE_PROFILE_VLLM ? isfinite(w[k]) : isnan(w[k]));
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
	 * first whatever the input's sign; vLLM sees 0 (s .5) and picks sig(1) first: expert 2. */
	const float neg_nan[8] = { mnan, 0, 1, 0, 0, 0, 0, 0 };
	for (int pf = 0; pf < NPROF; pf++) {
		struct moe_route_params p = prm(MOE_ROUTE_SIGMOID, pf, 8, 1);
		route(&p, 1, neg_nan, NULL, ids, w);
		expect_ids(&p, ids, pf == MOE_PROFILE_VLLM ? id2 : id0, "sigmoid -NaN");
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
	if (x->pf != MOE_PROFILE_VLLM || x->key != y->key) {
		/* finite keys: numeric order, except that flashinfer/HF put +0 above -0 */
		if (x->key > y->key)
			return -1;
		if (x->key < y->key)
			return 1;
		if (x->pf != MOE_PROFILE_VLLM && signbit(x->key) != signbit(y->key))
			return signbit(x->key) ? 1 : -1;
	}
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
