/* Tests of the optimized routers: every built-in table providing route (each variant of
 * kernels/routing/routing.inc and the whole per-ISA tables) against the scalar reference
 * moe_route__ref, and the kernels' elementwise math against libm.
 *
 * Comparison rule (docs/verification.md): ids must equal the reference's slot for slot,
 * except at a near-tie: the two experts' keys, computed here from first principles in double,
 * differ by less than the kernel's key error budget (below). Experts with bitwise-equal inputs
 * never count as near-ties, so the tie rule is checked exactly. Weights are compared after
 * aligning by expert id, within the budgets stated in kernels/routing/routing_impl.h. Rows with a
 * NaN or an infinity must equal the reference bit for bit. Variants whose ISA the CPU lacks are
 * skipped and said so. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "test_rng.h"
#include "probe_math.h"


static const double U = 0x1p-24;

/* Distance in representable floats (both of one sign or zero). */
static int64_t ulp_dist(float a, float b)
{
	int64_t ia = (int32_t)moe_f32_bits(a), ib = (int32_t)moe_f32_bits(b);
	ia = ia < 0 ? INT32_MIN - ia : ia;
	ib = ib < 0 ? INT32_MIN - ib : ib;
	return ia > ib ? ia - ib : ib - ia;
}

/* ---- the elementwise math against libm ---- */

struct math_probe {
	const char *name;
	enum moe_isa isa;
	void (*exp)(const float *, float *, int64_t);
	void (*sigmoid)(enum moe_profile, const float *, float *, int64_t);
};

static const struct math_probe probes[] = {
	{ "avx2", MOE_ISA_AVX2, probe_exp__avx2, probe_sigmoid__avx2 },
	{ "avx512", MOE_ISA_AVX512, probe_exp__avx512, probe_sigmoid__avx512 },
};

/* Every 97th float of [-110, 90] (about 1.1e7 values), each ISA: exp within 2 ulp of expf, the
 * vllm/hf sigmoid within 4 ulp of 1/(1+expf(-x)), the flashinfer sigmoid within 2^-23 of
 * 0.5*tanhf(0.5*x)+0.5 (routing_impl.h's budgets), and the special values exact. */
START_TEST(test_math_budgets)
{
	enum { CHUNK = 4096 };
	static float x[CHUNK], y[CHUNK], s[CHUNK], f[CHUNK];
	for (size_t pi = 0; pi < sizeof probes / sizeof probes[0]; pi++) {
		const struct math_probe *pr = &probes[pi];
		if (pr->isa > moe_isa_hardware()) {
			fprintf(stderr, "test_kernels_routing: %s math skipped (ISA unavailable)\n", pr->name);
			continue;
		}
		int64_t worst_exp = 0, worst_sig = 0;
		double worst_tanh = 0;
		float at_exp = 0, at_sig = 0, at_tanh = 0;
		/* walk the bit patterns of [-110, 0] downward from -0 and of [0, 90] upward */
		const uint32_t neg_end = moe_f32_bits(-110.0f), pos_end = moe_f32_bits(90.0f);
		for (int side = 0; side < 2; side++) {
			uint32_t u = side ? 0u : 0x80000000u, end = side ? pos_end : neg_end;
			while (u <= end) {
				int n = 0;
				for (; n < CHUNK && u <= end; n++, u += 97)
					x[n] = moe_f32_from_bits(u);
				pr->exp(x, y, n);
				pr->sigmoid(MOE_PROFILE_VLLM, x, s, n);
				pr->sigmoid(MOE_PROFILE_FLASHINFER, x, f, n);
				for (int i = 0; i < n; i++) {
					const float re = expf(x[i]), rs = 1.0f / (1.0f + expf(-x[i]));
					const float rf = 0.5f * tanhf(0.5f * x[i]) + 0.5f;
					const int64_t de = ulp_dist(y[i], re), ds = ulp_dist(s[i], rs);
					const double dt = fabs((double)f[i] - (double)rf);
					if (de > worst_exp) {
						worst_exp = de;
						at_exp = x[i];
					}
					if (ds > worst_sig) {
						worst_sig = ds;
						at_sig = x[i];
					}
					if (dt > worst_tanh) {
						worst_tanh = dt;
						at_tanh = x[i];
					}
				}
			}
		}
		fprintf(stderr, "test_kernels_routing: %s exp max %lld ulp (x=%a), sigmoid vllm max %lld ulp (x=%a), "
			"sigmoid flashinfer max %.3g x 2^-24 (x=%a)\n", pr->name, (long long)worst_exp, at_exp,
			(long long)worst_sig, at_sig, worst_tanh / U, at_tanh);
		ck_assert_int_le(worst_exp, 2);
		ck_assert_int_le(worst_sig, 4);
		ck_assert_double_le(worst_tanh, 2 * U);
		/* exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN, overflow just above ln(FLT_MAX) */
		const float sx[4] = { -INFINITY, INFINITY, NAN, 88.73f };
		float sy[4];
		pr->exp(sx, sy, 4);
		ck_assert(sy[0] == 0.0f && !signbit(sy[0]));
		ck_assert(isinf(sy[1]) && sy[1] > 0);
		ck_assert(isnan(sy[2]));
		ck_assert(isinf(sy[3]));
	}
}
END_TEST

/* ---- routers against the reference ---- */

struct stats {
	long tokens, near_ties, cases, tables;
};

static float row_value(const void *base, enum moe_dtype t, int64_t i)
{
	return t == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)base)[i]) : ((const float *)base)[i];
}

static double sig64(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static enum moe_routing_method effective(const struct moe_route_params *p)
{
	if (p->method == MOE_ROUTE_RENORMALIZE_NAIVE && p->profile == MOE_PROFILE_FLASHINFER)
		return MOE_ROUTE_RENORMALIZE;
	return p->method;
}

static bool ranks_logits(enum moe_routing_method m)
{
	return m == MOE_ROUTE_RENORMALIZE || m == MOE_ROUTE_TOPK || m == MOE_ROUTE_TOPK_SIGMOID ||
	       m == MOE_ROUTE_LLAMA4;
}

static bool ranks_softmax(enum moe_routing_method m)
{
	return m == MOE_ROUTE_DEFAULT || m == MOE_ROUTE_RENORMALIZE_NAIVE;
}

/* One token's keys in double and the kernel's key error budget for each:
 *   logits          exact, budget 0
 *   softmax         p = exp(x - max) / Z; budget 8 u p (u = 2^-24: the kernel's 2 ulp of exp
 *                   plus the reference's own rounding of expf and of the division)
 *   sigmoid (+ b)   budget 8 u s (vllm, hf: the kernel's 4 ulp plus the reference's error) or
 *                   3 u (flashinfer: the kernel's 2^-23 plus tanhf's), plus one ulp of the sum
 *                   s + b on each side.
 * Two experts may swap when their true keys differ by less than the sum of their budgets. */
static void keys64(const struct moe_route_params *p, const float *x, const float *b, double *key, double *tol)
{
	const int32_t E = p->num_experts;
	const enum moe_routing_method m = effective(p);
	double mx = -INFINITY, Z = 0;
	for (int32_t e = 0; e < E; e++)
		mx = x[e] > mx ? x[e] : mx;
	for (int32_t e = 0; e < E; e++)
		Z += exp(x[e] - mx);
	for (int32_t e = 0; e < E; e++) {
		if (ranks_logits(m)) {
			key[e] = x[e];
			tol[e] = 0;
		} else if (ranks_softmax(m)) {
			key[e] = exp(x[e] - mx) / Z;
			tol[e] = 8 * U * key[e] + 0x1p-149;
		} else {
			const double s = sig64(x[e]);
			key[e] = s + (b ? b[e] : 0.0);
			tol[e] = (p->profile == MOE_PROFILE_FLASHINFER ? 3 * U : 8 * U * s) + 2 * U * fabs(key[e]) +
				 0x1p-149;
		}
	}
}

static double group_score64(const struct moe_route_params *p, const double *key, int32_t g, bool has_bias)
{
	const int32_t gs = p->num_experts / p->n_group;
	double k1 = -INFINITY, k2 = -INFINITY;
	for (int32_t e = g * gs; e < (g + 1) * gs; e++) {
		if (key[e] > k1) {
			k2 = k1;
			k1 = key[e];
		} else if (key[e] > k2) {
			k2 = key[e];
		}
	}
	return (has_bias || p->profile != MOE_PROFILE_VLLM) ? k1 + k2 : k1;
}

static double ulp_f32(double v)
{
	v = fabs(v);
	if (v < FLT_MIN)
		return 0x1p-149;
	int ex;
	frexp(v, &ex);
	return ldexp(1.0, ex - 24);
}

/* The weight budget of routing_impl.h for one weight, against the reference's w_ref. */
static double weight_tol(const struct moe_route_params *p, double w_ref, double S64)
{
	const enum moe_routing_method m = effective(p);
	if (m == MOE_ROUTE_TOPK)
		return 0;
	double tol = 8 * ulp_f32(w_ref);
	if (ranks_softmax(m)) /* the denominator over E in another order: gamma_E, both sides */
		tol += 2 * fabs(w_ref) * p->num_experts * U;
	/* flashinfer's sigmoids are within 2^-23 absolute: a weight s or s * rsf / S inherits it */
	if (p->profile == MOE_PROFILE_FLASHINFER && m != MOE_ROUTE_RENORMALIZE && !ranks_softmax(m)) {
		const double rsf = (m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3) ? p->routed_scaling_factor : 1;
		const bool renorm = m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3 ||
				    (m == MOE_ROUTE_SIGMOID_RENORM && p->renormalize);
		tol += renorm ? 2 * (p->top_k + 1) * U * fabs(rsf) / (S64 > 1e-30 ? S64 : 1e-30) : 2 * U;
	}
	if (p->profile != MOE_PROFILE_VLLM)
		tol += 0x1p-7 * fabs(w_ref) + 0x1p-133; /* one bf16 ulp: the roundings may straddle */
	return tol;
}

/* Runs every route provider on the case and compares it with the reference. */
static void check_case(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		       struct stats *st, const char *what)
{
	ck_assert_int_eq(moe_route_validate(p), MOE_OK);
	const int32_t E = p->num_experts, K = p->top_k;
	const size_t n = (size_t)(T * K) + 1;
	int32_t *ids_r = malloc(n * sizeof(int32_t)), *ids = malloc((n + 8) * sizeof(int32_t));
	float *w_r = malloc(n * sizeof(float)), *w = malloc((n + 8) * sizeof(float));
	float *x = malloc((size_t)E * sizeof(float)), *b = malloc((size_t)E * sizeof(float));
	double *key = malloc((size_t)E * sizeof(double)), *tol = malloc((size_t)E * sizeof(double));
	ck_assert(ids_r && ids && w_r && w && x && b && key && tol);
	moe_route__ref(p, T, logits, bias, ids_r, w_r);
	const bool grouped = p->method == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1;
	const enum moe_routing_method m = effective(p);
	st->cases++;
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *bt = moe_builtin_at(i);
		if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, p))
			continue;
		if (bt->isa > moe_isa_hardware())
			continue;
		memset(ids, 0x7b, (n + 8) * sizeof(int32_t));
		memset(w, 0x7b, (n + 8) * sizeof(float));
		bt->table->route(p, T, logits, bias, ids, w);
		st->tables++;
		for (size_t k = (size_t)(T * K); k < n + 8; k++)
			ck_assert_msg(ids[k] == 0x7b7b7b7b && moe_f32_bits(w[k]) == 0x7b7b7b7bu,
				      "%s %s: wrote past T*K outputs", bt->table->name, what);
		for (int64_t t = 0; t < T; t++) {
			const int32_t *ir = ids_r + t * K, *ik = ids + t * K;
			const float *wr = w_r + t * K, *wk = w + t * K;
			bool finite = true;
			for (int32_t e = 0; e < E; e++) {
				x[e] = row_value(logits, p->logits_dtype, t * E + e);
				b[e] = bias ? row_value(bias, p->bias_dtype, e) : 0.0f;
				finite = finite && isfinite(x[e]) && isfinite(b[e]);
			}
			st->tokens++;
			if (!finite) {
				for (int32_t k = 0; k < K; k++)
					ck_assert_msg(ik[k] == ir[k] && moe_f32_bits(wk[k]) == moe_f32_bits(wr[k]),
						      "%s %s token %lld slot %d (non-finite row): id %d w %a, ref id %d w %a",
						      bt->table->name, what, (long long)t, k, ik[k], wk[k], ir[k], wr[k]);
				continue;
			}
			keys64(p, x, bias ? b : NULL, key, tol);
			bool same_set = true, tie = false;
			for (int32_t k = 0; k < K; k++) {
				const int32_t a = ik[k], r = ir[k];
				ck_assert_msg(a >= 0 && a < E, "%s %s token %lld slot %d: id %d out of range", bt->table->name,
					      what, (long long)t, k, a);
				if (a == r)
					continue;
				const bool same_input = x[a] == x[r] && moe_f32_bits(x[a]) == moe_f32_bits(x[r]) &&
							b[a] == b[r];
				const int32_t gs = grouped ? E / p->n_group : E;
				bool ok = !(same_input && a / gs == r / gs) && fabs(key[a] - key[r]) <= tol[a] + tol[r];
				if (!ok && grouped && a / gs != r / gs && !same_input) {
					const double ga = group_score64(p, key, a / gs, bias != NULL);
					const double gr = group_score64(p, key, r / gs, bias != NULL);
					ok = fabs(ga - gr) <= 2 * (tol[a] + tol[r]) + 4 * U * fabs(gr);
				}
				ck_assert_msg(ok, "%s %s token %lld slot %d: id %d (key %.9g) but reference %d (key %.9g), "
					      "beyond the near-tie budget %.3g", bt->table->name, what, (long long)t, k, a,
					      key[a], r, key[r], tol[a] + tol[r]);
				tie = true;
			}
			for (int32_t k = 0; k < K; k++) {
				bool found = false;
				for (int32_t j = 0; j < K; j++)
					found = found || ik[j] == ir[k];
				same_set = same_set && found;
			}
			st->near_ties += tie;
			double S64 = 0;
			for (int32_t k = 0; k < K; k++)
				S64 += sig64(x[ir[k]]);
			for (int32_t k = 0; k < K; k++) {
				int32_t j = 0;
				while (j < K && ir[j] != ik[k])
					j++;
				if (j == K)
					continue;
				if (isnan(wr[j])) {
					ck_assert_msg(moe_f32_bits(wk[k]) == moe_f32_bits(wr[j]), "%s %s token %lld: NaN weight",
						      bt->table->name, what, (long long)t);
					continue;
				}
				const double tl = weight_tol(p, wr[j], S64) * (same_set ? 1 : 4);
				ck_assert_msg(fabs((double)wk[k] - wr[j]) <= tl,
					      "%s %s token %lld expert %d: weight %.9g, reference %.9g, error %.3g > %.3g",
					      bt->table->name, what, (long long)t, ik[k], wk[k], wr[j],
					      fabs((double)wk[k] - wr[j]), tl);
			}
		}
	}
	(void)m;
	free(ids_r);
	free(ids);
	free(w_r);
	free(w);
	free(x);
	free(b);
	free(key);
	free(tol);
}

static void *make_logits(enum moe_dtype t, int64_t count, double scale, double shift)
{
	void *v = malloc((size_t)count * 4 + 4);
	ck_assert(v);
	for (int64_t i = 0; i < count; i++) {
		const float f = (float)(rng_normal() * scale + shift);
		if (t == MOE_DTYPE_BF16)
			((moe_bf16 *)v)[i] = moe_f32_to_bf16(f);
		else
			((float *)v)[i] = f;
	}
	return v;
}

struct shape {
	int32_t E, K, G, TG;
};

static bool profile_allows(const struct moe_route_params *p)
{
	moe_clear_error();
	return moe_route_validate(p) == MOE_OK;
}

/* Seeded random logits for every method, profile, logits dtype, bias dtype and shape: E not a
 * multiple of 16 (60, 72, 160), below 16 (8, 12), K = 1, K = E - 1, K > 16, groups of 32, 40, 12. */
static void run_random(enum moe_dtype lt, double scale, uint64_t seed, bool few_ties)
{
	static const struct shape shapes[] = {
		{ 128, 8, 8, 4 }, { 60, 4, 0, 0 }, { 72, 6, 6, 3 }, { 160, 8, 4, 2 }, { 8, 2, 2, 1 },
		{ 12, 11, 0, 0 }, { 256, 8, 8, 4 }, { 64, 20, 4, 2 }, { 72, 71, 0, 0 }, { 1024, 8, 8, 4 },
		{ 128, 1, 0, 0 }, { 7, 3, 0, 0 },
	};
	struct stats st = { 0 };
	rng_state = seed;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const struct shape *sh = &shapes[si];
		const int64_t T = 23;
		void *logits = make_logits(lt, T * sh->E, scale, 0.0);
		for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
			for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
				for (int bd = 0; bd < 3; bd++) {
					struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, sh->E,
											     m == MOE_ROUTE_LLAMA4 ? 1 : sh->K);
					p.profile = (enum moe_profile)pr;
					p.logits_dtype = lt;
					const bool biased = m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3;
					if (bd && !biased)
						continue;
					p.bias_dtype = bd == 0 ? MOE_DTYPE_NONE : bd == 1 ? MOE_DTYPE_F32 : MOE_DTYPE_BF16;
					if (m == MOE_ROUTE_DEEPSEEKV3 && (bd + si) % 2 == 0) {
						p.n_group = sh->G;
						p.topk_group = sh->TG;
					}
					if (biased)
						p.routed_scaling_factor = 2.5f;
					p.renormalize = (si + (size_t)pr) % 2 == 0;
					if (!profile_allows(&p))
						continue;
					void *bias = p.bias_dtype == MOE_DTYPE_NONE ? NULL
										    : make_logits(p.bias_dtype, sh->E, 0.3, -0.1);
					char what[160];
					snprintf(what, sizeof what, "%s/%s E=%d K=%d G=%d TG=%d logits %s bias %s",
						 moe_routing_method_name(p.method), moe_profile_name(p.profile), p.num_experts,
						 p.top_k, p.n_group, p.topk_group, moe_dtype_name(lt), moe_dtype_name(p.bias_dtype));
					check_case(&p, T, logits, bias, &st, what);
					free(bias);
				}
			}
		}
		free(logits);
	}
	fprintf(stderr, "test_kernels_routing: %s logits, scale %g: %ld cases, %ld table runs, %ld tokens, %ld with a near-tie\n",
		moe_dtype_name(lt), scale, st.cases, st.tables, st.tokens, st.near_ties);
	ck_assert_int_gt(st.cases, 200);
	ck_assert_int_gt(st.tables, st.cases);
	/* Near-ties are rare on N(0,1) data; a kernel that hid behind the budget would show here.
	 * (Wide logits saturate the sigmoids, where keys crowd within a few ulps of 1.) */
	if (few_ties)
		ck_assert_int_le(st.near_ties * 200, st.tokens);
}

START_TEST(test_random_f32)
{
	run_random(MOE_DTYPE_F32, 1.0, 11, true);
}
END_TEST

START_TEST(test_random_bf16_ties)
{
	/* bf16 N(0,1) logits: exact ties near the K-th slot in several percent of the tokens */
	run_random(MOE_DTYPE_BF16, 1.0, 12, true);
}
END_TEST

START_TEST(test_random_wide_scale)
{
	run_random(MOE_DTYPE_F32, 6.0, 13, false);
}
END_TEST

/* Extreme but finite rows: sigmoid saturation (x > 17), underflow (x around -12 and below -18),
 * magnitudes that overflow exp without the max subtraction, coarse grids with many exact ties,
 * all-equal rows, all-negative rows, huge negative biases (|bias| >> s). */
START_TEST(test_extreme_rows)
{
	struct stats st = { 0 };
	rng_state = 77;
	const int32_t E = 128, K = 8;
	const int64_t T = 16;
	static const double shift[] = { 17.5, -12.0, -19.0, 0.0, -3.0, 300.0 };
	static const double scale[] = { 1.0, 0.5, 1.0, 1e4, 0.01, 50.0 };
	for (size_t c = 0; c < sizeof shift / sizeof shift[0] + 2; c++) {
		float *lg = malloc(sizeof(float) * (size_t)(T * E));
		ck_assert(lg);
		for (int64_t i = 0; i < T * E; i++) {
			if (c == sizeof shift / sizeof shift[0])
				lg[i] = 0.75f; /* all equal */
			else if (c == sizeof shift / sizeof shift[0] + 1)
				lg[i] = (float)floor(rng_normal() * 2.0) * 0.5f; /* coarse grid: ties */
			else
				lg[i] = (float)(rng_normal() * scale[c] + shift[c]);
		}
		float bias[128];
		for (int e = 0; e < E; e++)
			bias[e] = (float)(c % 2 ? -1e3 + rng_normal() : rng_normal() * 0.01);
		for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
			for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
				struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, E,
										     m == MOE_ROUTE_LLAMA4 ? 1 : K);
				p.profile = (enum moe_profile)pr;
				const bool biased = m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3;
				p.bias_dtype = biased ? MOE_DTYPE_F32 : MOE_DTYPE_NONE;
				if (m == MOE_ROUTE_DEEPSEEKV3) {
					p.n_group = 8;
					p.topk_group = 4;
				}
				if (!profile_allows(&p))
					continue;
				char what[96];
				snprintf(what, sizeof what, "%s/%s extreme case %zu", moe_routing_method_name(p.method),
					 moe_profile_name(p.profile), c);
				check_case(&p, T, lg, biased ? bias : NULL, &st, what);
			}
		}
		free(lg);
	}
	fprintf(stderr, "test_kernels_routing: extreme rows: %ld tokens, %ld with a near-tie\n", st.tokens, st.near_ties);
}
END_TEST

/* NaN and infinities in rows (and an all-NaN row, an all -inf row) under every profile, and a
 * bias holding NaN: bit for bit the reference. */
START_TEST(test_nonfinite_rows)
{
	struct stats st = { 0 };
	const int32_t E = 72, K = 5;
	const int64_t T = 8;
	rng_state = 5;
	float *lg = make_logits(MOE_DTYPE_F32, T * E, 1.0, 0.0);
	lg[0 * E + 3] = NAN;
	lg[1 * E + 70] = INFINITY;
	lg[2 * E + 0] = -INFINITY;
	lg[2 * E + 9] = -NAN;
	for (int e = 0; e < E; e++) {
		lg[3 * E + e] = NAN;
		lg[4 * E + e] = -INFINITY;
	}
	lg[5 * E + 11] = INFINITY;
	lg[5 * E + 12] = INFINITY;
	float bias[72], badbias[72];
	for (int e = 0; e < E; e++)
		bias[e] = badbias[e] = (float)rng_normal() * 0.1f;
	badbias[17] = NAN;
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
		for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
			for (int bb = 0; bb < 2; bb++) {
				struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, E,
										     m == MOE_ROUTE_LLAMA4 ? 1 : K);
				p.profile = (enum moe_profile)pr;
				const bool biased = m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3;
				if (bb && !biased)
					continue;
				p.bias_dtype = biased ? MOE_DTYPE_F32 : MOE_DTYPE_NONE;
				if (m == MOE_ROUTE_DEEPSEEKV3) {
					p.n_group = 6;
					p.topk_group = 3;
				}
				if (!profile_allows(&p))
					continue;
				char what[96];
				snprintf(what, sizeof what, "%s/%s non-finite%s", moe_routing_method_name(p.method),
					 moe_profile_name(p.profile), bb ? " + NaN bias" : "");
				if (bb) {
					/* the whole call goes to the reference: compare bitwise by making every row "non-finite" */
					int32_t ir[T * 5], ik[T * 5];
					float wr[T * 5], wk[T * 5];
					moe_route__ref(&p, T, lg, badbias, ir, wr);
					for (size_t i = 1; i < moe_builtin_count(); i++) {
						const struct moe_builtin *bt = moe_builtin_at(i);
						if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, &p) || bt->isa > moe_isa_hardware())
							continue;
						bt->table->route(&p, T, lg, badbias, ik, wk);
						ck_assert(memcmp(ir, ik, sizeof ir) == 0 && memcmp(wr, wk, sizeof wr) == 0);
					}
					continue;
				}
				check_case(&p, T, lg, biased ? bias : NULL, &st, what);
			}
		}
	}
	free(lg);
}
END_TEST

/* Saturated sigmoids tied at the K-th slot: x = 20 at expert 1, 30 at experts 5, 9 and 13, the rest
 * -1. Every profile's sigmoid rounds all four to exactly 1.0f (1/(1 + e^-20) = 1 - 2.1e-9, within
 * half an ulp 2^-25 of 1; tanh(10) = 1 - 4.1e-9 likewise), so the K = 2 best are the two lowest
 * indices, ids {1, 5}, weights 1 and 1 (Sigmoid) or 1/2 and 1/2 (SigmoidRenorm), in every table.
 * A router that ranked the logits instead would answer {5, 9}, as would one that looked
 * no further than the equal logits around the K-th slot. T = 20: a block of 16 and a
 * partial one. */
START_TEST(test_saturated_ties)
{
	enum { T = 20, E = 16, K = 2 };
	float lg[T * E];
	for (int i = 0; i < T * E; i++)
		lg[i] = -1.0f;
	for (int t = 0; t < T; t++) {
		lg[t * E + 1] = 20.0f;
		lg[t * E + 13] = 30.0f;
		lg[t * E + 5] = 30.0f;
		lg[t * E + 9] = 30.0f;
	}
	for (int mi = 0; mi < 2; mi++) {
		for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
			struct moe_route_params p = moe_route_params_default(mi ? MOE_ROUTE_SIGMOID_RENORM : MOE_ROUTE_SIGMOID, E, K);
			p.profile = (enum moe_profile)pr;
			p.renormalize = true;
			const float want = mi ? 0.5f : 1.0f;
			for (size_t i = 0; i < moe_builtin_count(); i++) {
				const struct moe_builtin *bt = moe_builtin_at(i);
				if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, &p) || bt->isa > moe_isa_hardware())
					continue;
				int32_t ids[T * K];
				float w[T * K];
				bt->table->route(&p, T, lg, NULL, ids, w);
				for (int t = 0; t < T; t++)
					ck_assert_msg(ids[t * K] == 1 && ids[t * K + 1] == 5 && w[t * K] == want && w[t * K + 1] == want,
						      "%s %s/%s token %d: ids %d %d weights %a %a", bt->table->name,
						      moe_routing_method_name(p.method), moe_profile_name(p.profile), t, ids[t * K],
						      ids[t * K + 1], w[t * K], w[t * K + 1]);
			}
		}
	}
}
END_TEST

/* test_saturated_ties with K = 8, so that the block path sorts the K + 1 = 9 best in slot-major
 * order and computes the weights with one token per lane: experts 8..23 have logits 20 + e
 * (distinct, increasing with the index), the others -1. Every sigmoid of a logit >= 20 rounds to
 * 1.0f (exp(-20) ~ 2e-9 is below half an ulp of 1, 2^-25; tanh(10) likewise), so the reference
 * ranks sixteen equal scores and takes the eight lowest indices, 8..15, in index order, weights
 * 1 (Sigmoid) or 1/8 = 0.125 (SigmoidRenorm: S = 8 exactly). Ranking the logits would give
 * 23..16. T = 37: two full blocks and a partial one, every token alike. */
START_TEST(test_saturated_ties_k8)
{
	enum { T = 37, E = 32, K = 8 };
	static float lg[T * E];
	for (int t = 0; t < T; t++)
		for (int e = 0; e < E; e++)
			lg[t * E + e] = e >= 8 && e < 24 ? 20.0f + (float)e : -1.0f;
	for (int mi = 0; mi < 2; mi++) {
		for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
			struct moe_route_params p = moe_route_params_default(mi ? MOE_ROUTE_SIGMOID_RENORM : MOE_ROUTE_SIGMOID, E, K);
			p.profile = (enum moe_profile)pr;
			p.renormalize = true;
			const float want = mi ? 0.125f : 1.0f;
			for (size_t i = 0; i < moe_builtin_count(); i++) {
				const struct moe_builtin *bt = moe_builtin_at(i);
				if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, &p) || bt->isa > moe_isa_hardware())
					continue;
				int32_t ids[T * K];
				float w[T * K];
				bt->table->route(&p, T, lg, NULL, ids, w);
				for (int t = 0; t < T; t++)
					for (int k = 0; k < K; k++)
						ck_assert_msg(ids[t * K + k] == 8 + k && w[t * K + k] == want,
							      "%s %s/%s token %d slot %d: id %d weight %a", bt->table->name,
							      moe_routing_method_name(p.method), moe_profile_name(p.profile), t, k,
							      ids[t * K + k], w[t * K + k]);
			}
		}
	}
}
END_TEST

/* DeepSeekV3 with equal group scores (G = 8 groups of 8, TG = 2, K = 4, zero bias): groups 3, 5
 * and 6 each hold logits 2 and 1 at their first two experts, every other logit is -5, so these
 * three groups tie on sig(2) + sig(1) and the two of lower index, 3 and 5, are kept. The top 4 of
 * their experts: keys sig(2) at 24 and 40 (equal: index order), then sig(1) at 25 and 41. Weights
 * s * rsf / S with S = 2 sig(2) + 2 sig(1), computed here in long double; the budget is the 8 ulp
 * of routing_impl.h plus flashinfer's 2^-23 per sigmoid carried through S, and one bf16 ulp
 * where the profile rounds. T = 20 identical rows: a block of 16 and a partial one. */
START_TEST(test_deepseek_group_ties)
{
	enum { T = 20, E = 64, K = 4 };
	static float lg[T * E];
	const float bias[E] = { 0.0f };
	for (int t = 0; t < T; t++)
		for (int e = 0; e < E; e++)
			lg[t * E + e] = -5.0f;
	for (int t = 0; t < T; t++)
		for (int g = 3; g <= 6; g++)
			if (g != 4) {
				lg[t * E + g * 8] = 2.0f;
				lg[t * E + g * 8 + 1] = 1.0f;
			}
	const long double s2 = 1.0L / (1.0L + expl(-2.0L)), s1 = 1.0L / (1.0L + expl(-1.0L));
	const long double S = 2 * s2 + 2 * s1, rsf = 2.5L;
	const long double want[K] = { s2 * rsf / S, s2 * rsf / S, s1 * rsf / S, s1 * rsf / S };
	const int32_t want_id[K] = { 24, 40, 25, 41 };
	for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
		struct moe_route_params p = moe_route_params_default(MOE_ROUTE_DEEPSEEKV3, E, K);
		p.profile = (enum moe_profile)pr;
		p.n_group = 8;
		p.topk_group = 2;
		p.routed_scaling_factor = 2.5f;
		p.bias_dtype = MOE_DTYPE_F32;
		ck_assert_int_eq(moe_route_validate(&p), MOE_OK);
		for (size_t i = 0; i < moe_builtin_count(); i++) {
			const struct moe_builtin *bt = moe_builtin_at(i);
			if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, &p) || bt->isa > moe_isa_hardware())
				continue;
			int32_t ids[T * K];
			float w[T * K];
			bt->table->route(&p, T, lg, bias, ids, w);
			for (int t = 0; t < T; t++)
				for (int k = 0; k < K; k++) {
					const double tol = 8 * ulp_f32((double)want[k]) +
							   (pr == MOE_PROFILE_FLASHINFER ? 2 * (K + 1) * U * 2.5 / (double)S : 0) +
							   (pr != MOE_PROFILE_VLLM ? 0x1p-7 * (double)want[k] : 0);
					ck_assert_msg(ids[t * K + k] == want_id[k] && fabs((double)w[t * K + k] - (double)want[k]) <= tol,
						      "%s %s token %d slot %d: id %d weight %.9g (want %d, %.9Lg)", bt->table->name,
						      moe_profile_name(p.profile), t, k, ids[t * K + k], w[t * K + k], want_id[k],
						      want[k]);
				}
		}
	}
}
END_TEST

/* Rows where many keys reach the block path's threshold (the (K+1)-th largest of the 16 column
 * maxima, rows of 16): experts 16r + c[j] (r < R, c a per-token shuffle of the 16 columns) hold
 * v(3j + r) for R = 3, v(4j + r) for R = 4, v(n) = 1 + n/20, the other experts -1 - e/1000. The
 * column maxima are v(R j + R - 1), the ninth largest (j = 7) is v(8R - 1), so the values from it
 * up reach it: 48 - 23 = 25 for R = 3 (more than 16: at K = 8 the best 16 of them are sorted),
 * 64 - 31 = 33 for R = 4 (beyond 32: the per-token path); at K = 4 the threshold is the fifth
 * largest maximum and 16 < R (16 - 4) + 1 keys reach it. Whatever the path, slot k holds the
 * expert of value v(16R - 1 - k): every method ranks by an increasing function of the logit here
 * (zero bias for the biased ones). The weights are checked against the reference by check_case. */
START_TEST(test_many_candidates)
{
	enum { T = 37, E = 128 };
	static float lg[T * E];
	static int32_t expert_of[T][64];
	const float zero_bias[E] = { 0.0f };
	struct stats st = { 0 };
	rng_state = 5;
	for (int R = 3; R <= 4; R++) {
		for (int t = 0; t < T; t++) {
			int c[16];
			for (int j = 0; j < 16; j++)
				c[j] = j;
			for (int j = 15; j > 0; j--) {
				const int i = (int)(rng_uniform() * (j + 1)), v = c[i];
				c[i] = c[j];
				c[j] = v;
			}
			for (int e = 0; e < E; e++)
				lg[t * E + e] = -1.0f - (float)e / 1000.0f;
			for (int j = 0; j < 16; j++)
				for (int r = 0; r < R; r++) {
					const int n = R * j + r;
					lg[t * E + 16 * r + c[j]] = 1.0f + (float)n / 20.0f;
					expert_of[t][n] = 16 * r + c[j];
				}
		}
		for (int K = 4; K <= 8; K += 4) {
			for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
				if (m == MOE_ROUTE_LLAMA4)
					continue;
				for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
					struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, E, K);
					p.profile = (enum moe_profile)pr;
					p.renormalize = true;
					const bool biased = m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3;
					if (biased)
						p.bias_dtype = MOE_DTYPE_F32;
					char what[96];
					snprintf(what, sizeof what, "%s/%s R=%d K=%d", moe_routing_method_name(p.method),
						 moe_profile_name(p.profile), R, K);
					check_case(&p, T, lg, biased ? zero_bias : NULL, &st, what);
					for (size_t i = 1; i < moe_builtin_count(); i++) {
						const struct moe_builtin *bt = moe_builtin_at(i);
						if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, &p) || bt->isa > moe_isa_hardware())
							continue;
						int32_t ids[T * 8];
						float w[T * 8];
						bt->table->route(&p, T, lg, biased ? zero_bias : NULL, ids, w);
						for (int t = 0; t < T; t++)
							for (int k = 0; k < K; k++)
								ck_assert_msg(ids[t * K + k] == expert_of[t][16 * R - 1 - k],
									      "%s %s token %d slot %d: id %d, want %d", bt->table->name,
									      what, t, k, ids[t * K + k], expert_of[t][16 * R - 1 - k]);
					}
				}
			}
		}
	}
	ck_assert_int_gt(st.tables, st.cases);
}
END_TEST

/* Default and RenormalizeNaive on finite rows of extreme spread: N(0,1) logits with every fifth
 * replaced by -3e38 (exp(x - max) = 0 there, but x - max reaches the range where only vf_exp's
 * clamp keeps the reduction finite), against rows of N(0,1) logits alone (the softmax sum of
 * the block path skips the clamp on rows of small spread). T = 37: full blocks and a partial one. */
START_TEST(test_softmax_wide_rows)
{
	enum { T = 37, E = 128, K = 8 };
	struct stats st = { 0 };
	rng_state = 9;
	for (int wide = 0; wide < 2; wide++) {
		float *lg = make_logits(MOE_DTYPE_F32, T * E, 1.0, 0.0);
		for (int i = 0; wide && i < T * E; i += 5)
			lg[i] = -3e38f;
		for (int m = 0; m < 2; m++)
			for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
				struct moe_route_params p = moe_route_params_default(m ? MOE_ROUTE_RENORMALIZE_NAIVE : MOE_ROUTE_DEFAULT, E, K);
				p.profile = (enum moe_profile)pr;
				char what[80];
				snprintf(what, sizeof what, "%s/%s %s rows", moe_routing_method_name(p.method),
					 moe_profile_name(p.profile), wide ? "wide" : "narrow");
				check_case(&p, T, lg, NULL, &st, what);
			}
		free(lg);
	}
	ck_assert_int_gt(st.tables, st.cases);
}
END_TEST

START_TEST(test_t0_t1)
{
	struct stats st = { 0 };
	rng_state = 3;
	float *lg = make_logits(MOE_DTYPE_F32, 160, 1.0, 0.0);
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_SIGMOID_RENORM, 160, 8);
	check_case(&p, 1, lg, NULL, &st, "T=1");
	int32_t ids[8];
	float w[8];
	memset(ids, 0x11, sizeof ids);
	memset(w, 0x11, sizeof w);
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *bt = moe_builtin_at(i);
		if (!moe_backend_provides(bt->table, MOE_OP_ROUTE, &p) || bt->isa > moe_isa_hardware())
			continue;
		bt->table->route(&p, 0, NULL, NULL, NULL, NULL);
		bt->table->route(&p, 0, lg, NULL, ids, w);
		for (int k = 0; k < 8; k++)
			ck_assert(ids[k] == 0x11111111 && moe_f32_bits(w[k]) == 0x11111111u);
	}
	free(lg);
}
END_TEST

/* The list holds both ISAs; supports() declines rows wider than the kernels take and other ops,
 * and the whole table then runs the reference; bad parameters are the boundary's
 * MOE_ERR_INVALID_ARG with a message naming the problem. */
START_TEST(test_supports_and_params)
{
	const struct moe_builtin *v2 = moe_builtin_find("moe_route__avx2"), *v5 = moe_builtin_find("moe_route__avx512");
	ck_assert_ptr_nonnull(v2);
	ck_assert_ptr_nonnull(v5);
	ck_assert_int_eq(v2->isa, MOE_ISA_AVX2);
	ck_assert_int_eq(v5->isa, MOE_ISA_AVX512);
	ck_assert_int_eq(v5->op, MOE_OP_ROUTE);
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_SIGMOID, 1024, 8);
	ck_assert(moe_backend_provides(v5->table, MOE_OP_ROUTE, &p));
	p.num_experts = 1028;
	ck_assert(!moe_backend_provides(v5->table, MOE_OP_ROUTE, &p));
	ck_assert(!moe_backend_provides(v2->table, MOE_OP_ROUTE, &p));
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_ROUTE, &p), moe_builtin_at(0));
	p.num_experts = 128;
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_ROUTE, &p), v5);
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX2, MOE_OP_ROUTE, &p), v2);
	ck_assert(!v5->table->supports(MOE_OP_NORM, NULL));

	p.top_k = 129;
	ck_assert_int_eq(moe_route_validate(&p), MOE_ERR_INVALID_ARG);
	p = moe_route_params_default(MOE_ROUTE_LLAMA4, 128, 2);
	ck_assert_int_eq(moe_route_validate(&p), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "Llama4"));
	p = moe_route_params_default(MOE_ROUTE_UNSPECIFIED, 128, 8);
	ck_assert_int_eq(moe_route_validate(&p), MOE_ERR_INVALID_ARG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kernels_routing");
	TCase *tc = tcase_create("routing");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_supports_and_params);
	tcase_add_test(tc, test_math_budgets);
	tcase_add_test(tc, test_random_f32);
	tcase_add_test(tc, test_random_bf16_ties);
	tcase_add_test(tc, test_random_wide_scale);
	tcase_add_test(tc, test_extreme_rows);
	tcase_add_test(tc, test_nonfinite_rows);
	tcase_add_test(tc, test_saturated_ties);
	tcase_add_test(tc, test_saturated_ties_k8);
	tcase_add_test(tc, test_deepseek_group_ties);
	tcase_add_test(tc, test_t0_t1);
	tcase_add_test(tc, test_many_candidates);
	tcase_add_test(tc, test_softmax_wide_rows);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
