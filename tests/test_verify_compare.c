/* Unit tests of the verify comparators with crafted kernel outputs: the tie-aware routing comparator
 * (a correct alternative order passes, a near-tie at the K-th boundary or at the group boundary is
 * accepted and counted, a tie-rule violation and a clearly wrong choice fail, weights beyond the ULP
 * budget fail, rows with NaN must match exactly), untrusted detection, the norm bound comparator, and
 * the ULP helpers. Expected values come from hand arithmetic or long double, never from the code
 * under test. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vcases.h"
#include "vroute.h"

static long double sigl(long double x)
{
	return 1.0L / (1.0L + expl(-x));
}

/* Runs the comparator on one crafted kernel output against the reference router's. */
static struct moe_vresult compare_one(const struct moe_route_params *p, int64_t T, const float *L, const float *b,
				      const int32_t *ids_k, const float *w_k, int32_t *ids_r, float *w_r)
{
	struct moe_vresult r;
	void *ws = malloc(moe_route_scratch_bytes(p->num_experts, p->n_group));
	ck_assert_ptr_nonnull(ws);
	moe_vresult_init(&r);
	moe_route__ref(p, T, L, b, ids_r, w_r);
	moe_route_compare(p, T, L, b, ids_r, w_r, ids_k, w_k, ws, &r);
	free(ws);
	return r;
}

static struct moe_route_params sigmoid_renorm(int32_t E, int32_t K)
{
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_SIGMOID_RENORM, E, K);
	p.profile = MOE_PROFILE_VLLM;
	p.renormalize = true;
	return p;
}

START_TEST(test_alternative_order_accepted)
{
	/* Experts 3 and 5 have logits 1 and 1 + 2^-23: their sigmoids differ by about
	 * sig'(1) * 2^-23 = 0.1966 * 1.19e-7 = 2.3e-8, below the fp32 spacing 6e-8 near 0.73, so the
	 * reference's fp32 sigmoids are equal and the tie rule puts 3 first. A kernel computing the
	 * sigmoid more precisely puts 5 first: also correct, since 2.3e-8 is far below the key budget
	 * 6u * 0.73 = 2.6e-7 of each. */
	const float L[8] = { 0.1f, -1, -2, 1.0f, -3, nextafterf(1.0f, 2.0f), -4, -5 };
	struct moe_route_params p = sigmoid_renorm(8, 2);
	int32_t ids_r[2], ids_k[2];
	float w_r[2], w_k[2];
	moe_route__ref(&p, 1, L, NULL, ids_r, w_r);
	ck_assert_int_eq(ids_r[0], 3);
	ck_assert_int_eq(ids_r[1], 5);
	ids_k[0] = 5;
	ids_k[1] = 3;
	w_k[0] = w_r[1];
	w_k[1] = w_r[0];
	struct moe_vresult r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_PASS);
	ck_assert_int_eq(r.near_ties, 1);
	/* the accepted order with a wrong weight: expert 5's weight is s/S ~ 0.5, not 1/3 */
	w_k[0] = 1.0f / 3.0f;
	r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_str_eq(r.mis[0].what, "weights");
}
END_TEST

START_TEST(test_tie_rule_violation_fails)
{
	/* Experts 2 and 6 have bitwise-equal logits 0.5, every other logit is negative: K = 1 must
	 * pick expert 2 (lower index). Picking 6 breaks the tie rule whatever the key budget. */
	const float L[8] = { -1, -2, 0.5f, -3, -4, -5, 0.5f, -6 };
	struct moe_route_params p = sigmoid_renorm(8, 1);
	int32_t ids_r[1], ids_k[1] = { 6 };
	float w_r[1], w_k[1] = { 1.0f }; /* K = 1: s / s = 1 */
	struct moe_vresult r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(ids_r[0], 2);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_str_eq(r.mis[0].what, "ids(missing expert)");
	ck_assert_ptr_nonnull(strstr(r.reason, "tie rule"));

	/* the same two experts in the wrong slot order with K = 2 */
	struct moe_route_params p2 = sigmoid_renorm(8, 2);
	int32_t ids_r2[2], ids_k2[2] = { 6, 2 };
	float w_r2[2], w_k2[2] = { 0.5f, 0.5f };
	r = compare_one(&p2, 1, L, NULL, ids_k2, w_k2, ids_r2, w_r2);
	ck_assert_int_eq(ids_r2[0], 2);
	ck_assert_int_eq(ids_r2[1], 6);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_ptr_nonnull(strstr(r.reason, "tie rule"));
}
END_TEST

START_TEST(test_boundary_near_tie_accepted)
{
	/* K = 2; expert 0 (logit 3) is certain, experts 1 and 2 (logits 1 and 1 + 2^-23) straddle the
	 * boundary within the key budget (see above: equal fp32 sigmoids). The reference takes {0, 1};
	 * a kernel taking {0, 2} is correct, with weights s/S of ITS selection: s0 = sig(3),
	 * s2 = sig(1 + 2^-23), in long double. */
	const float L[8] = { 3.0f, 1.0f, nextafterf(1.0f, 2.0f), -1, -2, -3, -4, -5 };
	struct moe_route_params p = sigmoid_renorm(8, 2);
	int32_t ids_r[2], ids_k[2] = { 0, 2 };
	const long double s0 = sigl(3.0L), s2 = sigl(1.0L + 0x1p-23L);
	float w_r[2], w_k[2] = { (float)(s0 / (s0 + s2)), (float)(s2 / (s0 + s2)) };
	struct moe_vresult r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(ids_r[0], 0);
	ck_assert_int_eq(ids_r[1], 1);
	ck_assert_int_eq(r.status, MOE_V_PASS);
	ck_assert_int_eq(r.near_ties, 1);

	/* a clearly worse expert (logit -1: sigmoid 0.27 against 0.73) in place of the boundary one */
	ids_k[1] = 3;
	const long double s3 = sigl(-1.0L);
	w_k[0] = (float)(s0 / (s0 + s3));
	w_k[1] = (float)(s3 / (s0 + s3));
	r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_ptr_nonnull(strstr(r.reason, "selection"));
}
END_TEST

START_TEST(test_weight_budget)
{
	/* SigmoidRenorm vllm K = 4: the budget is 2*6 + gamma_3 + 1 (kernel) + 2*3 + gamma_3 + 1
	 * (reference) in units of u; gamma_3 = 3u/(1-3u) is a hair above 3u, so 26 + epsilon rounds up
	 * to 27 ulps (tolerance.c). One ulp passes; a relative change of 1e-5 (about 1e-5 / 2^-24 =
	 * 168 u, >= 84 ulps of a weight near 0.25) fails. */
	float L[16];
	for (int e = 0; e < 16; e++)
		L[e] = (float)e * 0.37f - 3.0f;
	struct moe_route_params p = sigmoid_renorm(16, 4);
	struct moe_route_tol tol;
	moe_route_tolerance(&p, &tol);
	ck_assert(tol.w_ulps == 27.0);
	int32_t ids_r[4], ids_k[4];
	float w_r[4], w_k[4];
	moe_route__ref(&p, 1, L, NULL, ids_r, w_r);
	memcpy(ids_k, ids_r, sizeof ids_k);
	memcpy(w_k, w_r, sizeof w_k);
	w_k[1] = nextafterf(w_r[1], 1.0f);
	struct moe_vresult r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_PASS);
	ck_assert(r.worst_ulp == 1.0);
	w_k[1] = w_r[1] * (1.0f + 1e-5f);
	r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_int_eq(r.mis[0].index, 1);
	ck_assert(r.worst_ulp > 27.0);
}
END_TEST

START_TEST(test_grouped_near_tie)
{
	/* DeepSeekV3, E = 8 in G = 4 groups of 2, TG = 2, K = 3, zero bias. Group 0 (logits 4, 3) is
	 * certain; groups 1 (logits 1, -5) and 2 (1 + 2^-23, -5) have top-2 scores differing by
	 * 2.3e-8, within budget (equal in fp32: the reference ties them and takes group 1), so either
	 * may be the second group; group 3 (-6, -6) is out. The reference's ids are {0, 1, 2}. A kernel
	 * taking group 2 ({0, 1, 4}) is correct with w = s*rsf/(S + 1e-20) of its own selection
	 * (rsf = 1). Taking group 3's expert 6 is not. */
	const float L[8] = { 4.0f, 3.0f, 1.0f, -5.0f, nextafterf(1.0f, 2.0f), -5.0f, -6.0f, -6.0f };
	const float bias[8] = { 0 };
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_DEEPSEEKV3, 8, 3);
	p.profile = MOE_PROFILE_VLLM;
	p.n_group = 4;
	p.topk_group = 2;
	p.bias_dtype = MOE_DTYPE_F32;
	ck_assert_int_eq(moe_route_validate(&p), MOE_OK);
	int32_t ids_r[3], ids_k[3] = { 0, 1, 4 };
	const long double s0 = sigl(4), s1 = sigl(3), s4 = sigl(1.0L + 0x1p-23L), S = s0 + s1 + s4;
	float w_r[3], w_k[3] = { (float)(s0 / S), (float)(s1 / S), (float)(s4 / S) };
	struct moe_vresult r = compare_one(&p, 1, L, bias, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(ids_r[0], 0);
	ck_assert_int_eq(ids_r[1], 1);
	ck_assert_int_eq(ids_r[2], 2);
	ck_assert_int_eq(r.status, MOE_V_PASS);
	ck_assert_int_eq(r.near_ties, 1);

	ids_k[2] = 6;
	const long double s6 = sigl(-6), S6 = s0 + s1 + s6;
	w_k[0] = (float)(s0 / S6);
	w_k[1] = (float)(s1 / S6);
	w_k[2] = (float)(s6 / S6);
	r = compare_one(&p, 1, L, bias, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
}
END_TEST

START_TEST(test_nonfinite_rows_exact)
{
	/* A row holding a NaN follows profile conventions only the reference encodes: any difference
	 * in ids fails, even between experts whose keys would otherwise be near-ties. */
	const float L[8] = { 3.0f, 1.0f, nextafterf(1.0f, 2.0f), NAN, -2, -3, -4, -5 };
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_RENORMALIZE, 8, 2);
	p.profile = MOE_PROFILE_VLLM;
	int32_t ids_r[2], ids_k[2];
	float w_r[2], w_k[2];
	moe_route__ref(&p, 1, L, NULL, ids_r, w_r);
	ids_k[0] = ids_r[1];
	ids_k[1] = ids_r[0];
	w_k[0] = w_r[1];
	w_k[1] = w_r[0];
	struct moe_vresult r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_ptr_nonnull(strstr(r.reason, "exactly"));
}
END_TEST

START_TEST(test_out_of_range_and_duplicate_ids)
{
	const float L[8] = { 3, 2, 1, 0, -1, -2, -3, -4 };
	struct moe_route_params p = sigmoid_renorm(8, 2);
	int32_t ids_r[2], ids_k[2] = { 0, 8 };
	float w_r[2], w_k[2] = { 0.5f, 0.5f };
	struct moe_vresult r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_ptr_nonnull(strstr(r.reason, "out of range"));
	ids_k[1] = 0;
	r = compare_one(&p, 1, L, NULL, ids_k, w_k, ids_r, w_r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_ptr_nonnull(strstr(r.reason, "duplicate"));
}
END_TEST

START_TEST(test_model_disagreeing_with_reference_is_untrusted)
{
	/* If the key model rejected the oracle's own ids, a kernel differing from it could not be
	 * judged: the row is untrusted, never a FAIL. Crafted here with a wrong "reference" output:
	 * logits 3, 2, 1, ... K = 1: the reference claims expert 2, the kernel says expert 1; neither
	 * is the argmax 0. */
	const float L[8] = { 3, 2, 1, 0, -1, -2, -3, -4 };
	struct moe_route_params p = sigmoid_renorm(8, 1);
	const int32_t ids_r[1] = { 2 }, ids_k[1] = { 1 };
	const float w_r[1] = { 1.0f }, w_k[1] = { 1.0f };
	void *ws = malloc(moe_route_scratch_bytes(8, 0));
	struct moe_vresult r;
	moe_vresult_init(&r);
	moe_route_compare(&p, 1, L, NULL, ids_r, w_r, ids_k, w_k, ws, &r);
	free(ws);
	ck_assert_int_eq(r.status, MOE_V_UNTRUSTED);
	ck_assert_ptr_nonnull(strstr(r.reason, "rejects the reference"));
}
END_TEST

START_TEST(test_untrusted_vacuous_route)
{
	/* TopK with every logit 0: every weight is the raw logit 0, on every row: the weight check
	 * says nothing, so a generic-data case is untrusted rather than passed. */
	struct moe_vcase c;
	moe_vcase_init(&c, MOE_OP_ROUTE);
	c.route = moe_route_params_default(MOE_ROUTE_TOPK, 8, 2);
	c.T = 4;
	float L[32] = { 0 };
	int32_t ids_r[8];
	float w_r[8];
	struct moe_vscratch *s = moe_vscratch_new();
	struct moe_vresult r;
	moe_vresult_init(&r);
	moe_route__ref(&c.route, 4, L, NULL, ids_r, w_r);
	moe_vcheck_route(moe_backend_reference(), &c, L, L, NULL, NULL, ids_r, w_r, s, &r);
	ck_assert_int_eq(r.status, MOE_V_UNTRUSTED);
	ck_assert_ptr_nonnull(strstr(r.reason, "zero"));
	/* the same data under the all-equal generator is the point of the case */
	c.gen = MOE_GEN_EQUAL;
	moe_vresult_init(&r);
	moe_vcheck_route(moe_backend_reference(), &c, L, L, NULL, NULL, ids_r, w_r, s, &r);
	ck_assert_int_eq(r.status, MOE_V_PASS);
	moe_vscratch_free(s);
}
END_TEST

/* A norm kernel one percent off on element 0, otherwise the reference. */
static void norm_off(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	moe_norm__ref(p, x, w, y);
	((float *)y)[0] *= 1.01f;
}

START_TEST(test_norm_bound)
{
	struct moe_vcase c;
	moe_vcase_init(&c, MOE_OP_NORM);
	c.norm = (struct moe_norm_params){ MOE_NORM_LAYERNORM, 2, 64, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32,
					   MOE_DTYPE_F32 };
	c.T = 2;
	float x[128], w[64];
	double y[128];
	for (int i = 0; i < 128; i++)
		x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
	for (int i = 0; i < 64; i++)
		w[i] = 1.0f + (float)i / 64.0f;
	moe_norm_ref_f64(&c.norm, x, w, y);
	struct moe_vscratch *s = moe_vscratch_new();
	struct moe_backend good = *moe_backend_reference(), bad = good;
	bad.norm = norm_off;
	struct moe_vresult r;
	moe_vresult_init(&r);
	moe_vcheck_norm(&good, &c, x, w, y, s, &r);
	ck_assert_int_eq(r.status, MOE_V_PASS);
	ck_assert(r.worst_ratio >= 0 && r.worst_ratio < 1);
	moe_vresult_init(&r);
	moe_vcheck_norm(&bad, &c, x, w, y, s, &r);
	ck_assert_int_eq(r.status, MOE_V_FAIL);
	ck_assert_int_eq(r.mis[0].index, 0);
	ck_assert(r.worst_ratio > 1);

	/* rows of equal values: (x - mu) = 0, the output is all zeros: untrusted for generic data */
	for (int i = 0; i < 128; i++)
		x[i] = 3.0f;
	moe_norm_ref_f64(&c.norm, x, w, y);
	moe_vresult_init(&r);
	moe_vcheck_norm(&good, &c, x, w, y, s, &r);
	ck_assert_int_eq(r.status, MOE_V_UNTRUSTED);
	moe_vscratch_free(s);
}
END_TEST

START_TEST(test_ulp_helpers)
{
	ck_assert(moe_ulp_f32(1.0) == 0x1p-23);    /* 24-bit significand: spacing 2^-23 in [1, 2) */
	ck_assert(moe_ulp_f32(0.75) == 0x1p-24);   /* [0.5, 1) */
	ck_assert(moe_ulp_bf16(1.0) == 0x1p-7);    /* 8-bit significand */
	ck_assert(moe_ulp_f32(1e-40) == 0x1p-149); /* subnormal spacing */
	ck_assert(moe_ulp_dist_f32(1.0f, nextafterf(1.0f, 2.0f)) == 1.0);
	ck_assert(moe_ulp_dist_f32(0.0f, -0.0f) == 0.0);
	/* -min subnormal to +min subnormal: two steps across the zeros */
	ck_assert(moe_ulp_dist_f32(-0x1p-149f, 0x1p-149f) == 2.0);
	ck_assert(moe_ulp_dist_f32(NAN, NAN) == 0.0);
	ck_assert(isinf(moe_ulp_dist_f32(NAN, 1.0f)));
	/* gamma_1 = u / (1 - u) */
	ck_assert(moe_gamma(1) == 0x1p-24 / (1.0 - 0x1p-24));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify_compare");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_alternative_order_accepted);
	tcase_add_test(tc, test_tie_rule_violation_fails);
	tcase_add_test(tc, test_boundary_near_tie_accepted);
	tcase_add_test(tc, test_weight_budget);
	tcase_add_test(tc, test_grouped_near_tie);
	tcase_add_test(tc, test_nonfinite_rows_exact);
	tcase_add_test(tc, test_out_of_range_and_duplicate_ids);
	tcase_add_test(tc, test_model_disagreeing_with_reference_is_untrusted);
	tcase_add_test(tc, test_untrusted_vacuous_route);
	tcase_add_test(tc, test_norm_bound);
	tcase_add_test(tc, test_ulp_helpers);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
