/* DeepSeekV3 grouped selection as routing.md writes it, for the mutants that break one step of it
 * (group_max.c, mask_zero.c). Each mutant runs it twice, once as the reference does it and once
 * with its bug, and changes a row only where the two choices differ, so whatever this file does
 * not reproduce of the reference (NaN order, flashinfer's butterfly sum) never shows. */
#include <assert.h>
#include <math.h>

#include "mutant.h"

#define MOE_MUTANT_MAX_E 4096
#define MOE_MUTANT_MAX_G 256

static float dsv3_key(const struct moe_route_params *p, const void *logits, const void *bias, int64_t t,
		      int32_t e)
{
	const float s = moe_mutant_sigmoid(p->profile, moe_mutant_logit(p, logits, t * p->num_experts + e));
	float b = moe_mutant_bias(p, bias, e);
	if (p->profile == MOE_PROFILE_FLASHINFER)
		b = moe_round_bf16(b);
	return s + b;
}

/* Index of the best of n values not yet taken: larger first, lower index on equal values. */
static int32_t best_untaken(const float *v, int32_t n, const bool *taken)
{
	int32_t best = -1;
	for (int32_t i = 0; i < n; i++)
		if (!taken[i] && (best < 0 || v[i] > v[best]))
			best = i;
	return best;
}

bool moe_mutant_dsv3_groups_by_max(const struct moe_route_params *p)
{
	return p->profile == MOE_PROFILE_VLLM && p->bias_dtype == MOE_DTYPE_NONE;
}

float moe_mutant_dsv3_mask(const struct moe_route_params *p)
{
	return p->profile == MOE_PROFILE_HF ? 0.0f : -INFINITY;
}

bool moe_mutant_dsv3_ids(const struct moe_route_params *p, const void *logits, const void *bias, int64_t t,
			 bool group_by_max, float mask, int32_t *ids)
{
	const int32_t E = p->num_experts, G = p->n_group, per = E / G;
	assert(E <= MOE_MUTANT_MAX_E && G <= MOE_MUTANT_MAX_G && G > 1);
	float key[MOE_MUTANT_MAX_E], gscore[MOE_MUTANT_MAX_G];
	bool taken[MOE_MUTANT_MAX_E] = { false }, gtaken[MOE_MUTANT_MAX_G] = { false };
	for (int32_t e = 0; e < E; e++) {
		key[e] = dsv3_key(p, logits, bias, t, e);
		if (isnan(key[e]))
			return false;
	}
	for (int32_t g = 0; g < G; g++) {
		float top1 = -INFINITY, top2 = -INFINITY;
		for (int32_t e = g * per; e < (g + 1) * per; e++) {
			if (key[e] > top1) {
				top2 = top1;
				top1 = key[e];
			} else if (key[e] > top2) {
				top2 = key[e];
			}
		}
		gscore[g] = group_by_max ? top1 : top1 + top2;
	}
	for (int32_t k = 0; k < p->topk_group; k++)
		gtaken[best_untaken(gscore, G, gtaken)] = true;
	/* gtaken now marks the selected groups: mask the others */
	for (int32_t e = 0; e < E; e++)
		if (!gtaken[e / per])
			key[e] = mask;
	for (int32_t k = 0; k < p->top_k; k++) {
		ids[k] = best_untaken(key, E, taken);
		taken[ids[k]] = true;
	}
	return true;
}

void moe_mutant_dsv3_weights(const struct moe_route_params *p, const void *logits, int64_t t,
			     const int32_t *ids, float *w)
{
	const int32_t K = p->top_k;
	float S = 0.0f;
	for (int32_t k = 0; k < K; k++) {
		w[k] = moe_mutant_sigmoid(p->profile, moe_mutant_logit(p, logits, t * p->num_experts + ids[k]));
		S += w[k];
	}
	for (int32_t k = 0; k < K; k++) {
		const float rsf = p->routed_scaling_factor;
		switch (p->profile) {
		case MOE_PROFILE_VLLM: w[k] = (w[k] / (S > 0.0f ? S : 1.0f)) * rsf; break;
		case MOE_PROFILE_HF: w[k] = (w[k] / (S + 1e-20f)) * rsf; break;
		default: w[k] = w[k] * rsf / (S + 1e-20f); break;
		}
		w[k] = moe_mutant_out(p->profile, w[k]);
	}
}
