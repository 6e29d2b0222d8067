/* Reference rank order of routing keys and the top-k built on it (routing.md "Top-k order").
 *
 * A candidate is a pair (key, index); pairs rank by key, best first, and equal keys by index,
 * lower first. Every pair differs from every other in its index, so the order is strict and
 * total, and a top-k never repeats an index.
 * - flashinfer: keys compare as its packed key does, by the float total order
 *   -NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN on the raw bits (flip all bits of a
 *   negative value, the sign bit of a positive one). +0.0 outranks -0.0, a positive NaN outranks
 *   +inf, and NaNs of one sign rank by payload. Computed keys carry the canonical +NaN
 *   (routing_score.c), so only raw logits show the sign and payload of a NaN.
 * - HF: keys compare as torch.topk on CPU does: every NaN, of either sign and any payload, ranks
 *   above +inf and equal to every other NaN (so the lower index wins); the other values by `>`,
 *   -0.0 equal to +0.0 (the lower index wins). Only raw logits (Renormalize, TopK, TopKSigmoid)
 *   see a difference from flashinfer's order: computed keys carry the canonical +NaN and are never
 *   -0.0 (a sum x + -x is +0.0).
 * - vLLM: keys compare as its CUDA kernels do, `(v > m) || (v == m && idx < m_idx)`: -0.0 equals
 *   +0.0 (so the lower index wins), and a NaN, which no `>` ever picks, ranks below -inf. vLLM's
 *   scores are NaN/inf-free by the time they are ranked (routing.c), so only a non-finite bias
 *   can put a NaN there.
 *
 * Top-k: one pass over the candidates, each key evaluated once and inserted into the sorted list
 * of the K best so far, kept in the caller's ids row with the keys parked in its weights row (which
 * the weights overwrite afterwards): no scratch memory whatever E is.
 * The walk returns the best candidate ranked strictly after a given pair, re-evaluating every key;
 * j walks from the top give the j-th best. DeepSeekV3 uses it to find its topk_group-th group,
 * where a sorted list of topk_group entries would need storage the caller does not provide. */
#include <assert.h>
#include <math.h>

#include "routing_internal.h"

static uint32_t total_order_bits(float x)
{
	uint32_t u = moe_f32_bits(x);
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

bool moe_route_before(enum moe_profile profile, float ka, int32_t ia, float kb, int32_t ib)
{
	if (profile == MOE_PROFILE_FLASHINFER) {
		uint32_t oa = total_order_bits(ka), ob = total_order_bits(kb);
		if (oa != ob)
			return oa > ob;
		return ia < ib;
	}
	bool na = isnan(ka), nb = isnan(kb);
	if (na != nb)
		return profile == MOE_PROFILE_HF ? na : nb;
	if (!na && ka != kb)
		return ka > kb;
	return ia < ib;
}

int32_t moe_route_next(struct moe_route_row *r, moe_route_key_fn *key, int32_t n, int32_t prev,
		       float prev_key, float *next_key)
{
	const enum moe_profile profile = r->p->profile;
	int32_t best = -1;
	float best_key = 0.0f;
	for (int32_t i = 0; i < n; i++) {
		float k;
		if (!key(r, i, &k))
			continue;
		if (prev >= 0 && !moe_route_before(profile, prev_key, prev, k, i))
			continue;
		if (best < 0 || moe_route_before(profile, k, i, best_key, best)) {
			best = i;
			best_key = k;
		}
	}
	*next_key = best_key;
	return best;
}

void moe_route_topk(struct moe_route_row *r, moe_route_key_fn *key, int32_t n, int32_t K, int32_t *ids,
		    float *keys)
{
	const enum moe_profile profile = r->p->profile;
	int32_t held = 0;
	for (int32_t i = 0; i < n; i++) {
		float k;
		if (!key(r, i, &k))
			continue;
		if (held == K && !moe_route_before(profile, k, i, keys[K - 1], ids[K - 1]))
			continue;
		int32_t j = held < K ? held++ : K - 1;
		for (; j > 0 && moe_route_before(profile, k, i, keys[j - 1], ids[j - 1]); j--) {
			keys[j] = keys[j - 1];
			ids[j] = ids[j - 1];
		}
		keys[j] = k;
		ids[j] = i;
	}
	assert(held == K);
}
