/* Unit tests of the reference MoE layer (reference/layer*.c): moe_dispatch__ref, moe_layer__ref,
 * its validation and workspace, and moe_layer_ref_f64.
 *
 * The layer's output is checked against an explicit computation in this file: the router's
 * routing, then each token's K experts run one token at a time (moe_expert__ref with M = 1; with
 * unquantized or bf16 activations, or NVFP4 with given scales, an expert's rows are independent of
 * each other, so this is the same function), then the combine written from the contract. The
 * routed scaling factor is checked to be applied once by comparing the two sites with a tolerance
 * derived next to the check, and a whole quantized layer against the double reference's bound. */
#include <float.h>

#include "expert_fixtures.h"

static const struct wformat fmt_f32 = { "f32", MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, { 0, 0 } };
static const struct wformat fmt_bf16 = { "bf16", MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, { 0, 0 } };
static const struct wformat fmt_w4a4_given = { "nvfp4 W4A4 given", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4,
					       MOE_SF_SWIZZLED_128x4, MOE_ACT_NVFP4, { 500.0f, 300.0f } };
static const struct wformat fmt_w4a4 = { "nvfp4 W4A4 derived", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR,
					 MOE_ACT_NVFP4, { 0, 0 } };
static const struct wformat fmt_fp8 = { "fp8 tensor", MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR,
					MOE_ACT_FP8_TENSOR, { 0, 0 } };

struct layer_case {
	struct moe_layer_params p;
	struct moe_expert_weights *experts, shared;
	struct moe_layer_weights w;
	float *x, *logits, *bias;
};

static void layer_setup(struct layer_case *c, uint64_t seed, const struct wformat *f, struct moe_route_params route,
			int64_t T, int64_t H, int64_t I, enum moe_shared_combine sh, int64_t SI)
{
	struct rng r = { seed };
	memset(c, 0, sizeof *c);
	c->p.route = route;
	c->p.expert = expert_params(f, 0, H, I);
	c->p.rsf_site = MOE_RSF_AT_ROUTER;
	c->p.shared = sh;
	c->p.shared_inter = sh == MOE_SHARED_NONE ? 0 : SI;
	c->p.tokens = T;
	const int32_t E = route.num_experts;
	c->experts = malloc((size_t)E * sizeof *c->experts);
	ck_assert_ptr_nonnull(c->experts);
	for (int32_t e = 0; e < E; e++)
		c->experts[e] = random_weights(&r, f, H, I);
	if (sh != MOE_SHARED_NONE)
		c->shared = random_weights(&r, f, H, SI);
	c->w.experts = c->experts;
	c->w.shared = sh != MOE_SHARED_NONE ? &c->shared : NULL;
	c->x = normal_array(&r, (size_t)(T * H) + 1, 1.0);
	c->logits = normal_array(&r, (size_t)(T * E) + 1, 1.0);
	if (route.bias_dtype == MOE_DTYPE_F32)
		c->bias = normal_array(&r, (size_t)E, 0.1);
}

static void layer_free(struct layer_case *c)
{
	for (int32_t e = 0; e < c->p.route.num_experts; e++)
		free_weights(&c->experts[e]);
	if (c->p.shared != MOE_SHARED_NONE)
		free_weights(&c->shared);
	free(c->experts);
	free(c->x);
	free(c->logits);
	free(c->bias);
}

static void run_layer(const struct layer_case *c, float *y, int32_t *ids, float *weights)
{
	ck_assert_int_eq(moe_layer_validate(&c->p, &c->w), MOE_OK);
	void *ws = garbage_workspace(moe_layer_workspace_bytes(&c->p));
	moe_layer__ref(&c->p, c->x, c->logits, c->bias, &c->w, y, ids, weights, ws);
	free(ws);
}

/* The expert's output for token t alone (M = 1). */
static void expert_one(const struct layer_case *c, const struct moe_expert_weights *w, int64_t inter, int64_t t,
		       float *out)
{
	struct moe_expert_params p = c->p.expert;
	p.tokens = 1;
	p.inter = inter;
	run_expert(moe_expert__ref, &p, c->x + t * p.hidden, w, out);
}

/* The layer written from its contract, for the given routing; sum_abs[t*H + h] (if not NULL)
 * receives sum_k |c * w_k * o_k| with c the rsf applied at the output (1 at the router). */
__attribute__((optimize("fp-contract=off"))) static void explicit_layer(const struct layer_case *c,
									 const int32_t *ids, const float *wts,
									 float *y, double *sum_abs)
{
	const int64_t T = c->p.tokens, H = c->p.expert.hidden;
	const int32_t K = c->p.route.top_k;
	const float rsf = c->p.route.routed_scaling_factor;
	const bool at_output = c->p.rsf_site == MOE_RSF_AT_OUTPUT;
	float *o = malloc((size_t)(K * H) * sizeof(float)), *s = malloc((size_t)H * sizeof(float));
	ck_assert(o && s);
	for (int64_t t = 0; t < T; t++) {
		for (int32_t k = 0; k < K; k++)
			expert_one(c, &c->experts[ids[t * K + k]], c->p.expert.inter, t, o + k * H);
		if (c->p.shared != MOE_SHARED_NONE)
			expert_one(c, &c->shared, c->p.shared_inter, t, s);
		for (int64_t h = 0; h < H; h++) {
			float r = 0.0f;
			double z = 0.0;
			for (int32_t k = 0; k < K; k++) {
				r = r + wts[t * K + k] * o[k * H + h];
				z += fabs((at_output ? (double)rsf : 1.0) * wts[t * K + k] * o[k * H + h]);
			}
			if (at_output)
				r = r * rsf;
			if (c->p.shared == MOE_SHARED_SUM)
				r = r + s[h];
			else if (c->p.shared == MOE_SHARED_AVERAGE)
				r = (r + s[h]) * 0.5f;
			y[t * H + h] = r;
			if (sum_abs)
				sum_abs[t * H + h] = z;
		}
	}
	free(o);
	free(s);
}

static struct moe_route_params renormalize(int32_t E, int32_t K)
{
	return moe_route_params_default(MOE_ROUTE_RENORMALIZE, E, K);
}

/* DeepSeekV3 under the vLLM profile: grouped, biased, rsf 2.5 (DeepSeek-V3's value). */
static struct moe_route_params deepseek(float rsf)
{
	struct moe_route_params r = moe_route_params_default(MOE_ROUTE_DEEPSEEKV3, 16, 4);
	r.n_group = 4;
	r.topk_group = 2;
	r.bias_dtype = MOE_DTYPE_F32;
	r.routed_scaling_factor = rsf;
	return r;
}

/* ---- dispatch ---- */

START_TEST(test_dispatch_hand)
{
	/* E = 3, T = 2, K = 2, ids = (2, 0 | 2, 1): slots 0..3.
	 * counts = (1 [slot 1], 1 [slot 3], 2 [slots 0, 2]); offsets = (0, 1, 2, 4);
	 * perm = (1, 3, 0, 2): expert 0's slot, expert 1's, then expert 2's in slot order. */
	const int32_t ids[4] = { 2, 0, 2, 1 };
	int32_t counts[3], offsets[4], perm[4];
	moe_dispatch__ref(3, 2, 2, ids, counts, offsets, perm);
	const int32_t want_counts[3] = { 1, 1, 2 }, want_offsets[4] = { 0, 1, 2, 4 }, want_perm[4] = { 1, 3, 0, 2 };
	ck_assert(memcmp(counts, want_counts, sizeof counts) == 0);
	ck_assert(memcmp(offsets, want_offsets, sizeof offsets) == 0);
	ck_assert(memcmp(perm, want_perm, sizeof perm) == 0);
	/* T = 0: all counts and offsets 0, perm untouched */
	int32_t c2[3] = { 9, 9, 9 }, o2[4] = { 9, 9, 9, 9 };
	moe_dispatch__ref(3, 0, 2, NULL, c2, o2, NULL);
	for (int e = 0; e < 3; e++)
		ck_assert(c2[e] == 0 && o2[e + 1] == 0);
	ck_assert_int_eq(o2[0], 0);
}
END_TEST

START_TEST(test_dispatch_invariants)
{
	/* Random routings with distinct ids per token, E = 7 with expert 6 never chosen. */
	enum { E = 7, T = 13, K = 3 };
	struct rng r = { 11 };
	int32_t ids[T * K], counts[E], offsets[E + 1], perm[T * K];
	for (int round = 0; round < 20; round++) {
		for (int t = 0; t < T; t++) {
			for (int k = 0; k < K; k++) {
				int32_t e;
				bool dup;
				do {
					e = (int32_t)(rng_next(&r) % (E - 1));
					dup = false;
					for (int j = 0; j < k; j++)
						dup = dup || ids[t * K + j] == e;
				} while (dup);
				ids[t * K + k] = e;
			}
		}
		moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
		int32_t seen[T * K] = { 0 }, total = 0;
		ck_assert_int_eq(offsets[0], 0);
		ck_assert_int_eq(counts[E - 1], 0);
		for (int e = 0; e < E; e++) {
			total += counts[e];
			ck_assert_int_eq(offsets[e + 1], offsets[e] + counts[e]);
			int32_t expect = 0;
			for (int s = 0; s < T * K; s++)
				expect += ids[s] == e;
			ck_assert_int_eq(counts[e], expect);
			for (int j = offsets[e]; j < offsets[e + 1]; j++) {
				ck_assert_int_eq(ids[perm[j]], e);
				if (j > offsets[e])
					ck_assert_int_lt(perm[j - 1], perm[j]); /* stable: increasing slot order */
				seen[perm[j]]++;
			}
		}
		ck_assert_int_eq(total, T * K);
		for (int s = 0; s < T * K; s++)
			ck_assert_int_eq(seen[s], 1); /* every token-slot exactly once */
	}
}
END_TEST

/* ---- the layer against its explicit computation ---- */

static void check_against_explicit(const struct layer_case *c)
{
	const int64_t T = c->p.tokens, H = c->p.expert.hidden;
	const int32_t K = c->p.route.top_k;
	float *y = malloc((size_t)(T * H + 1) * sizeof(float)), *want = malloc((size_t)(T * H + 1) * sizeof(float));
	int32_t *ids = malloc((size_t)(T * K + 1) * sizeof(int32_t)), *rids = malloc((size_t)(T * K + 1) * sizeof(int32_t));
	float *wts = malloc((size_t)(T * K + 1) * sizeof(float)), *rw = malloc((size_t)(T * K + 1) * sizeof(float));
	ck_assert(y && want && ids && rids && wts && rw);
	run_layer(c, y, ids, wts);
	/* the routing the layer returns is the router's (at the OUTPUT site: run with rsf = 1) */
	struct moe_route_params route = c->p.route;
	if (c->p.rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	ck_assert_int_eq(moe_route_ref_checked(&route, T, c->logits, c->bias, rids, rw), MOE_OK);
	ck_assert(memcmp(ids, rids, (size_t)(T * K) * sizeof(int32_t)) == 0);
	ck_assert(memcmp(wts, rw, (size_t)(T * K) * sizeof(float)) == 0);
	explicit_layer(c, rids, rw, want, NULL);
	for (int64_t i = 0; i < T * H; i++)
		ck_assert_msg(moe_f32_bits(y[i]) == moe_f32_bits(want[i]), "y[%lld] = %a, explicit %a", (long long)i,
			      (double)y[i], (double)want[i]);
	free(y);
	free(want);
	free(ids);
	free(rids);
	free(wts);
	free(rw);
}

START_TEST(test_layer_explicit_combine)
{
	const struct wformat *fs[3] = { &fmt_f32, &fmt_bf16, &fmt_w4a4_given };
	const enum moe_shared_combine sh[3] = { MOE_SHARED_SUM, MOE_SHARED_AVERAGE, MOE_SHARED_NONE };
	for (int i = 0; i < 3; i++) {
		struct layer_case c;
		layer_setup(&c, 100 + (uint64_t)i, fs[i], renormalize(8, 2), 9, 64, 32, sh[i], 48);
		check_against_explicit(&c);
		layer_free(&c);
	}
	/* DeepSeekV3 with a bias and rsf at the router and at the output */
	for (int site = 0; site < 2; site++) {
		struct layer_case c;
		layer_setup(&c, 200 + (uint64_t)site, &fmt_f32, deepseek(2.5f), 7, 32, 16, MOE_SHARED_SUM, 32);
		c.p.rsf_site = (enum moe_rsf_site)site;
		check_against_explicit(&c);
		layer_free(&c);
	}
}
END_TEST

START_TEST(test_layer_skewed_and_small)
{
	/* One expert gets every token, the others none: logit 8 for expert 3 and 6 for expert 5 against
	 * N(0, 1) elsewhere puts (3, 5) first and second for every token here. */
	struct layer_case c;
	layer_setup(&c, 300, &fmt_bf16, renormalize(8, 2), 11, 64, 32, MOE_SHARED_SUM, 32);
	for (int64_t t = 0; t < c.p.tokens; t++) {
		c.logits[t * 8 + 3] = 8.0f;
		c.logits[t * 8 + 5] = 6.0f;
	}
	int32_t ids[22], counts[8], offsets[9], perm[22];
	float wts[22], y[11 * 64];
	run_layer(&c, y, ids, wts);
	moe_dispatch__ref(8, 11, 2, ids, counts, offsets, perm);
	for (int e = 0; e < 8; e++)
		ck_assert_int_eq(counts[e], e == 3 || e == 5 ? 11 : 0);
	check_against_explicit(&c);

	/* T = 1 */
	c.p.tokens = 1;
	check_against_explicit(&c);

	/* T = 0: nothing is read or written, the workspace may be empty */
	c.p.tokens = 0;
	float untouched = 42.0f;
	ck_assert_int_eq(moe_layer_validate(&c.p, &c.w), MOE_OK);
	moe_layer__ref(&c.p, c.x, c.logits, NULL, &c.w, &untouched, ids, wts, NULL);
	ck_assert_float_eq(untouched, 42.0f);
	double yr, b;
	ck_assert_int_eq(moe_layer_ref_f64(&c.p, NULL, NULL, NULL, &c.w, &yr, &b, NULL), MOE_OK);
	c.p.tokens = 11;
	layer_free(&c);
}
END_TEST

/* ---- routed scaling factor and shared combine ---- */

START_TEST(test_rsf_applied_once)
{
	/* Same DeepSeekV3 layer (vLLM profile: w = (s / S) * rsf), rsf = 2.5 at the router, at the
	 * output, and rsf = 1. No shared expert, f32 weights and activations. With o_k the expert
	 * outputs (the same in all three: same selection) and w1 the rsf = 1 weights:
	 *   OUTPUT  y_O = fl(rsf * r1) where r1 is the rsf = 1 layer's routed sum: y_O == fl(rsf * y_1)
	 *           bit for bit (same weights, same sum);
	 *   ROUTER  w_R = fl(w1 * rsf) = rsf w1 (1 + t), |t| <= u; its sequential sum of K products has
	 *           |y_R - sum w_R o| <= gamma(K) sum |w_R o|, so |y_R - P| <= gamma(K + 1) Z with
	 *           P = sum rsf w1 o exactly and Z = sum |rsf w1 o|; y_O is within gamma(K + 1) Z of
	 *           P too (K products, K - 1 additions, the product by rsf).
	 * Hence |y_R - y_O| <= 2 gamma(K + 1) Z, and likewise |y_R - rsf * y_1| (rsf * y_1 rounded is
	 * y_O). Applying rsf twice or never would miss by a factor 2.5 instead. */
	enum { T = 7, H = 32 };
	const int32_t K = 4;
	struct layer_case c;
	layer_setup(&c, 400, &fmt_f32, deepseek(2.5f), T, H, 16, MOE_SHARED_NONE, 0);
	float y_r[T * H], y_o[T * H], y_1[T * H], w_r[T * 4], w_o[T * 4], w_1[T * 4];
	int32_t i_r[T * 4], i_o[T * 4], i_1[T * 4];
	run_layer(&c, y_r, i_r, w_r);
	c.p.rsf_site = MOE_RSF_AT_OUTPUT;
	run_layer(&c, y_o, i_o, w_o);
	double z[T * H];
	float scratch[T * H];
	explicit_layer(&c, i_o, w_o, scratch, z);
	c.p.route.routed_scaling_factor = 1.0f;
	c.p.rsf_site = MOE_RSF_AT_ROUTER;
	run_layer(&c, y_1, i_1, w_1);
	ck_assert(memcmp(i_r, i_o, sizeof i_r) == 0 && memcmp(i_r, i_1, sizeof i_r) == 0);
	ck_assert(memcmp(w_o, w_1, sizeof w_o) == 0);
	const double g = (K + 1) * 0x1p-24 / (1 - (K + 1) * 0x1p-24);
	for (int k = 0; k < T * 4; k++)
		ck_assert(fabs(w_r[k] - 2.5 * w_1[k]) <= 0x1p-24 * 2.5 * w_1[k]);
	int differ = 0;
	for (int i = 0; i < T * H; i++) {
		ck_assert_msg(moe_f32_bits(y_o[i]) == moe_f32_bits(2.5f * y_1[i]), "y_O[%d] %a != 2.5 * %a", i,
			      (double)y_o[i], (double)y_1[i]);
		ck_assert_msg(fabs((double)y_r[i] - y_o[i]) <= 2 * g * z[i], "y_R[%d] = %a, y_O = %a, tolerance %g", i,
			      (double)y_r[i], (double)y_o[i], 2 * g * z[i]);
		differ += fabs((double)y_r[i] - y_1[i]) > 0.5 * fabs((double)y_1[i]);
	}
	ck_assert_int_gt(differ, T * H / 2); /* and rsf did change the outputs */
	layer_free(&c);
}
END_TEST

START_TEST(test_shared_average_vs_sum)
{
	/* AVERAGE computes (r + s) * 0.5f where SUM computes r + s: halving is exact, so
	 * y_avg == y_sum * 0.5f bit for bit. NONE drops s: y_sum - y_none is the shared expert. */
	enum { T = 5, H = 64 };
	struct layer_case c;
	layer_setup(&c, 500, &fmt_bf16, renormalize(8, 2), T, H, 32, MOE_SHARED_SUM, 48);
	float y_sum[T * H], y_avg[T * H], y_none[T * H], wts[T * 2], s[H];
	int32_t ids[T * 2];
	run_layer(&c, y_sum, ids, wts);
	c.p.shared = MOE_SHARED_AVERAGE;
	run_layer(&c, y_avg, ids, wts);
	c.p.shared = MOE_SHARED_NONE;
	c.p.shared_inter = 0;
	c.w.shared = NULL;
	run_layer(&c, y_none, ids, wts);
	for (int i = 0; i < T * H; i++)
		ck_assert(moe_f32_bits(y_avg[i]) == moe_f32_bits(y_sum[i] * 0.5f));
	c.p.shared = MOE_SHARED_SUM;
	c.p.shared_inter = 48;
	c.w.shared = &c.shared;
	for (int64_t t = 0; t < T; t++) {
		expert_one(&c, &c.shared, 48, t, s);
		for (int h = 0; h < H; h++)
			ck_assert(moe_f32_bits(y_sum[t * H + h]) == moe_f32_bits(y_none[t * H + h] + s[h]));
	}
	layer_free(&c);
}
END_TEST

/* ---- the layer against the double reference ---- */

START_TEST(test_layer_within_f64_bound)
{
	/* Quantized layers with scales derived per expert (each expert's own tokens): the reference
	 * layer is within moe_layer_ref_f64's bound for its own routing; a layer that applies rsf twice
	 * or drops the last slot is far outside. */
	const struct wformat *fs[2] = { &fmt_w4a4, &fmt_fp8 };
	for (int i = 0; i < 2; i++) {
		enum { T = 10, H = 64 };
		struct layer_case c;
		layer_setup(&c, 600 + (uint64_t)i, fs[i], deepseek(2.5f), T, H, 32, MOE_SHARED_AVERAGE, 48);
		c.p.rsf_site = i ? MOE_RSF_AT_OUTPUT : MOE_RSF_AT_ROUTER;
		float y[T * H], wts[T * 4], bad[T * H];
		int32_t ids[T * 4];
		double ref[T * H], bound[T * H];
		struct moe_expert_f64_info info;
		run_layer(&c, y, ids, wts);
		ck_assert_int_eq(moe_layer_ref_f64(&c.p, c.x, ids, wts, &c.w, ref, bound, &info), MOE_OK);
		ck_assert(!info.unbounded);
		ck_assert_msg(max_ratio(y, ref, bound, T * H) <= 1.0, "%s: ratio %g", fs[i]->name,
			      max_ratio(y, ref, bound, T * H));
		/* the last slot dropped: its weight set to 0 */
		float dropped[T * 4];
		memcpy(dropped, wts, sizeof dropped);
		for (int t = 0; t < T; t++)
			dropped[t * 4 + 3] = 0.0f;
		double r2[T * H], b2[T * H];
		ck_assert_int_eq(moe_layer_ref_f64(&c.p, c.x, ids, dropped, &c.w, r2, b2, NULL), MOE_OK);
		for (int k = 0; k < T * H; k++)
			bad[k] = (float)r2[k];
		ck_assert_msg(max_ratio(bad, ref, bound, T * H) > 100, "%s: dropped slot ratio %g", fs[i]->name,
			      max_ratio(bad, ref, bound, T * H));
		/* rsf applied twice: the routed part r (the layer without its shared expert) scaled by 2.5
		 * once more, so y = (r + s) / 2 gains 1.5 * r / 2 */
		double r0[T * H], b0[T * H];
		c.p.shared = MOE_SHARED_NONE;
		c.p.shared_inter = 0;
		c.w.shared = NULL;
		ck_assert_int_eq(moe_layer_ref_f64(&c.p, c.x, ids, wts, &c.w, r0, b0, NULL), MOE_OK);
		for (int k = 0; k < T * H; k++)
			bad[k] = (float)(ref[k] + 1.5 * r0[k] * 0.5);
		ck_assert_msg(max_ratio(bad, ref, bound, T * H) > 100, "%s: rsf twice ratio %g", fs[i]->name,
			      max_ratio(bad, ref, bound, T * H));
		c.p.shared = MOE_SHARED_AVERAGE;
		c.p.shared_inter = 48;
		c.w.shared = &c.shared;
		layer_free(&c);
	}
}
END_TEST

/* ---- validation ---- */

static void expect_invalid(const struct moe_layer_params *p, const struct moe_layer_weights *w, const char *needle)
{
	moe_clear_error();
	ck_assert_int_eq(moe_layer_validate(p, w), MOE_ERR_INVALID_ARG);
	ck_assert_msg(strstr(moe_last_error(), needle) != NULL, "message '%s' lacks '%s'", moe_last_error(), needle);
	ck_assert_msg(strncmp(moe_last_error(), "layer", 5) == 0, "message '%s' does not name the op",
		      moe_last_error());
}

START_TEST(test_layer_validate)
{
	struct layer_case c;
	layer_setup(&c, 700, &fmt_f32, renormalize(8, 2), 3, 32, 16, MOE_SHARED_SUM, 16);
	ck_assert_int_eq(moe_layer_validate(&c.p, &c.w), MOE_OK);
	const struct moe_layer_params good = c.p;
	struct moe_layer_params p;
	struct moe_layer_weights w = c.w;

	ck_assert_int_eq(moe_layer_validate(NULL, &c.w), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_layer_validate(&good, NULL), MOE_ERR_INVALID_ARG);
	p = good, p.tokens = -2;
	expect_invalid(&p, &c.w, "tokens=-2");
	p = good, p.route.top_k = 9;
	expect_invalid(&p, &c.w, "routing: route");
	p = good, p.route.routed_scaling_factor = 2.0f;
	expect_invalid(&p, &c.w, "Renormalize does not apply it");
	p = good, p.route.routed_scaling_factor = NAN, p.rsf_site = MOE_RSF_AT_OUTPUT;
	expect_invalid(&p, &c.w, "routed_scaling_factor=nan must be finite and > 0");
	p = good, p.rsf_site = (enum moe_rsf_site)7;
	expect_invalid(&p, &c.w, "rsf_site 7");
	p = good, p.shared = (enum moe_shared_combine)9;
	expect_invalid(&p, &c.w, "shared combine 9");
	p = good, p.shared_inter = 0;
	expect_invalid(&p, &c.w, "needs shared_inter >= 1 (is 0)");
	p = good, p.shared_inter = 24;
	expect_invalid(&p, &c.w, "shared expert: expert: gate is [16][32], expected [I][H] = [24][32]");
	p = good, p.shared = MOE_SHARED_NONE;
	expect_invalid(&p, &c.w, "shared combine none, but shared_inter=16");
	w.shared = NULL;
	expect_invalid(&good, &w, "shared weights (NULL)");
	w = c.w;
	w.experts = NULL;
	expect_invalid(&good, &w, "experts is NULL (8 expected)");
	p = good, p.expert.act_quant = MOE_ACT_FP8_TENSOR;
	expect_invalid(&p, &c.w, "expert 0: expert: act_quant fp8 needs fp8e4m3 weights");
	struct moe_qtensor saved = c.experts[5].down;
	c.experts[5].down.rows = 31;
	expect_invalid(&good, &c.w, "expert 5: expert: down is [31][16]");
	c.experts[5].down = saved;
	p = good, p.tokens = (int64_t)INT32_MAX;
	expect_invalid(&p, &c.w, "exceed the int32 permutation");
	ck_assert_int_eq(moe_layer_validate(&good, &c.w), MOE_OK);

	/* the double reference refuses ids out of range */
	int32_t ids[6] = { 0, 1, 2, 8, 4, 5 };
	float wts[6] = { 0 };
	double yr[3 * 32], b[3 * 32];
	moe_clear_error();
	ck_assert_int_eq(moe_layer_ref_f64(&good, c.x, ids, wts, &c.w, yr, b, NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "ids[3] = 8 out of range [0, 8)"));
	layer_free(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("layer");
	TCase *tc = tcase_create("layer");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dispatch_hand);
	tcase_add_test(tc, test_dispatch_invariants);
	tcase_add_test(tc, test_layer_explicit_combine);
	tcase_add_test(tc, test_layer_skewed_and_small);
	tcase_add_test(tc, test_rsf_applied_once);
	tcase_add_test(tc, test_shared_average_vs_sum);
	tcase_add_test(tc, test_layer_within_f64_bound);
	tcase_add_test(tc, test_layer_validate);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
