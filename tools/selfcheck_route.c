/* selfcheck rows for the reference router: every model shape under every profile, plus the
 * all-equal row (tie rule). See cmd_selfcheck.c for what is asserted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "selfcheck.h"

enum { TOKENS = 64 };

static bool renormalized(const struct moe_route_params *p)
{
	switch (p->method) {
	case MOE_ROUTE_RENORMALIZE:
	case MOE_ROUTE_RENORMALIZE_NAIVE:
	case MOE_ROUTE_MINIMAX2:
	case MOE_ROUTE_DEEPSEEKV3:
		return true;
	case MOE_ROUTE_SIGMOID_RENORM:
		return p->renormalize;
	default:
		return false;
	}
}

/* Selection key the method ranks experts by, up to a monotone map (sigmoid and softmax preserve
 * order), so the best expert of an ungrouped row must carry the largest value. */
static float rank_value(const struct moe_route_params *p, const float *logits, const float *bias, int e)
{
	if (p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3)
		return 1.0f / (1.0f + expf(-logits[e])) + (bias ? bias[e] : 0.0f);
	return logits[e];
}

static void check_rows(struct selfcheck *sc, const struct moe_route_params *p, int64_t T, const float *logits,
		       const float *bias, const int32_t *ids, const float *w)
{
	const int E = p->num_experts, K = p->top_k;
	const bool bf16_weights = p->profile != MOE_PROFILE_VLLM;
	const float rsf = (p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3)
				  ? p->routed_scaling_factor : 1.0f;
	/* Each weight carries at most a few fp32 roundings (<= 8 ulp relative, generous for the
	 * exp/divide chain) plus one bf16 rounding (2^-8 relative) where the profile rounds. */
	const double term_rel = 8 * 0x1p-24 + (bf16_weights ? 0x1p-8 : 0.0);
	for (int64_t t = 0; t < T; t++) {
		const int32_t *id = ids + t * K;
		const float *wt = w + t * K;
		const float *lg = logits + t * E;
		double sum = 0;
		bool ok_range = true, ok_distinct = true, ok_finite = true;
		for (int k = 0; k < K; k++) {
			ok_range &= id[k] >= 0 && id[k] < E;
			ok_finite &= isfinite(wt[k]);
			for (int j = 0; j < k; j++)
				ok_distinct &= id[j] != id[k];
			sum += wt[k];
		}
		selfcheck_expect(sc, ok_range, "token %lld: an id is outside [0, %d)", (long long)t, E);
		selfcheck_expect(sc, ok_distinct, "token %lld: repeated expert id", (long long)t);
		selfcheck_expect(sc, ok_finite, "token %lld: non-finite weight", (long long)t);
		if (!ok_range)
			continue;
		if (renormalized(p)) {
			const double tol = rsf * K * term_rel;
			selfcheck_expect(sc, fabs(sum - rsf) <= tol, "token %lld: weights sum to %.9g, expected %g +- %.3g",
					 (long long)t, sum, rsf, tol);
		}
		if (p->n_group <= 1) {
			const float best = rank_value(p, lg, bias, id[0]);
			bool ok_best = true;
			for (int e = 0; e < E; e++)
				ok_best &= rank_value(p, lg, bias, e) <= best + 1e-6f * fabsf(best);
			selfcheck_expect(sc, ok_best, "token %lld: slot 0 (expert %d) is not the best key", (long long)t,
					 id[0]);
		}
	}
}

static void route_model(struct selfcheck *sc, const struct moe_model_shape *m, enum moe_profile prof)
{
	struct moe_route_params p = moe_model_route_params(m, prof);
	const int E = p.num_experts, K = p.top_k;
	uint64_t rng = sc->seed * 1000003u + (uint64_t)E * 31u + (uint64_t)prof;
	float *logits = malloc(sizeof(float) * TOKENS * (size_t)E);
	float *bias = malloc(sizeof(float) * (size_t)E);
	int32_t *ids = malloc(sizeof(int32_t) * TOKENS * (size_t)K);
	float *w = malloc(sizeof(float) * TOKENS * (size_t)K);
	moe_bf16 *packed = malloc(sizeof(moe_bf16) * TOKENS * (size_t)E);
	char name[64];
	snprintf(name, sizeof name, "%s/%s", m->name, moe_profile_name(prof));
	selfcheck_row_begin(sc);
	if (!logits || !bias || !ids || !w || !packed) {
		selfcheck_expect(sc, false, "out of memory");
	} else {
		const bool bf16 = p.logits_dtype == MOE_DTYPE_BF16;
		for (int64_t i = 0; i < (int64_t)TOKENS * E; i++) {
			logits[i] = selfcheck_normal(&rng);
			if (bf16) /* the router reads bf16 codes; the checks read the same values as floats */
				logits[i] = moe_round_bf16(logits[i]);
		}
		for (int e = 0; e < E; e++)
			bias[e] = 0.1f * selfcheck_normal(&rng);
		const float *b = m->bias ? bias : NULL;
		if (bf16)
			for (int64_t i = 0; i < (int64_t)TOKENS * E; i++)
				packed[i] = moe_f32_to_bf16(logits[i]);
		enum moe_status s = moe_route_ref_checked(&p, TOKENS, bf16 ? (const void *)packed : (const void *)logits, b, ids, w);
		selfcheck_expect(sc, s == MOE_OK, "%s", moe_last_error());
		if (s == MOE_OK)
			check_rows(sc, &p, TOKENS, logits, b, ids, w);
	}
	selfcheck_row_end(sc, "route", name);
	free(logits);
	free(bias);
	free(ids);
	free(w);
	free(packed);
}

/* All logits equal: every method must pick experts 0..K-1 in order (lower index wins). */
static void route_all_equal(struct selfcheck *sc)
{
	enum { E = 16, K = 4 };
	float logits[E], bias[E];
	int32_t ids[K];
	float w[K];
	for (int e = 0; e < E; e++) {
		logits[e] = 0.25f;
		bias[e] = 0.0f;
	}
	selfcheck_row_begin(sc);
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
		for (int prof = 0; prof < MOE_PROFILE_COUNT; prof++) {
			struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, E,
									     m == MOE_ROUTE_LLAMA4 ? 1 : K);
			p.profile = (enum moe_profile)prof;
			if (m == MOE_ROUTE_DEEPSEEKV3) {
				p.n_group = 4;
				p.topk_group = 2;
			}
			const bool biased = m == MOE_ROUTE_DEEPSEEKV3 || m == MOE_ROUTE_MINIMAX2;
			p.bias_dtype = biased ? MOE_DTYPE_F32 : MOE_DTYPE_NONE;
			enum moe_status s = moe_route_ref_checked(&p, 1, logits, biased ? bias : NULL, ids, w);
			selfcheck_expect(sc, s == MOE_OK, "%s/%s: %s", moe_routing_method_name(p.method),
					 moe_profile_name(p.profile), moe_last_error());
			for (int k = 0; s == MOE_OK && k < p.top_k; k++)
				selfcheck_expect(sc, ids[k] == k, "%s/%s: slot %d holds expert %d, tie rule wants %d",
						 moe_routing_method_name(p.method), moe_profile_name(p.profile), k,
						 ids[k], k);
		}
	}
	selfcheck_row_end(sc, "route", "all-equal row, every method");
}

void selfcheck_route(struct selfcheck *sc)
{
	for (size_t i = 0; i < moe_model_count(); i++)
		for (int prof = 0; prof < MOE_PROFILE_COUNT; prof++)
			route_model(sc, moe_model_at(i), (enum moe_profile)prof);
	route_all_equal(sc);
}
