/* The reference MoE layer in fp32: route, group token-slots by expert, run each expert on its
 * tokens, combine, add the shared expert. It mirrors the unfused reference of vLLM's and
 * flashinfer's MoE tests (permute, per-expert MLP, weighted un-permute), with a fixed order.
 *
 * For T tokens, E experts, top K (slot s = t*K + k):
 *   1. moe_route__ref(route, logits, bias) -> ids[T*K], weights[T*K]. With rsf_site = OUTPUT the
 *      router runs with routed_scaling_factor = 1 (so weights[] exclude rsf); with ROUTER it runs
 *      as given and applies rsf itself (moe_layer_validate refuses rsf != 1 at the router for the
 *      methods that do not apply it: the factor would silently never be applied).
 *   2. moe_dispatch__ref: counts[E], offsets[E+1] (prefix sums), perm[T*K] = the slots grouped by
 *      expert, each group in increasing slot order (a stable counting sort).
 *   3. For each expert e in increasing order with counts[e] > 0: its tokens x[s / K] for s in its
 *      group are gathered in perm order into the workspace and moe_expert__ref runs on them
 *      (tokens = counts[e]), writing its outputs in perm order. Experts without tokens are skipped.
 *      Each expert call is independent: a scale derived from an amax (FP8 per-tensor, NVFP4 with
 *      act_global_scale <= 0) comes from that expert's own tokens. (flashinfer's test derives one
 *      hidden-state scale from the whole input and one for all intermediates; pass
 *      act_global_scale to get a single scale.)
 *   4. The shared expert (shared != NONE) runs on all T tokens with inter = shared_inter.
 *   5. Combine, per token t and column h, in fp32:
 *          r = 0; for k in 0..K-1: r = r + weights[t*K + k] * out[slot t*K + k][h]   (slot order)
 *          OUTPUT site: r = r * rsf
 *          NONE: y = r;  SUM: y = r + shared;  AVERAGE: y = (r + shared) * 0.5f
 *      ((r + shared) * 0.5f equals (r + shared) / 2 bit for bit: halving is exact.)
 * The kernel never allocates: every buffer lives in the workspace (layout below), sized for the
 * worst case of one expert receiving all T tokens (a router never selects an expert twice for one
 * token), the outputs of all T*K slots at once. T = 0 is a no-op. */
#include <assert.h>
#include <stdint.h>

#include "expert_impl.h"

void moe_dispatch__ref(int32_t E, int64_t T, int32_t K, const int32_t *ids, int32_t *counts,
		       int32_t *offsets, int32_t *perm)
{
	assert(E >= 1 && K >= 1 && T >= 0 && T * K <= INT32_MAX && counts && offsets);
	assert(T == 0 || (ids && perm));
	const int32_t slots = (int32_t)(T * K);
	for (int32_t e = 0; e < E; e++)
		counts[e] = 0;
	for (int32_t s = 0; s < slots; s++) {
		assert(ids[s] >= 0 && ids[s] < E);
		counts[ids[s]]++;
	}
	offsets[0] = 0;
	for (int32_t e = 0; e < E; e++) {
		offsets[e + 1] = offsets[e] + counts[e];
		counts[e] = 0;
	}
	/* counts doubles as the fill cursor of each group and ends where it started */
	for (int32_t s = 0; s < slots; s++)
		perm[offsets[ids[s]] + counts[ids[s]]++] = s;
}

bool moe_ref_layer_ws_layout(const struct moe_layer_params *p, struct moe_ref_layer_ws *ws)
{
	*ws = (struct moe_ref_layer_ws){ 0 };
	const size_t e = (size_t)p->route.num_experts, t = (size_t)p->tokens, k = (size_t)p->route.top_k;
	const size_t h = (size_t)p->expert.hidden;
	struct moe_expert_params ep = p->expert, sp = p->expert;
	ep.tokens = sp.tokens = p->tokens;
	sp.inter = p->shared_inter;
	struct moe_ref_expert_ws ews, sws = { 0 };
	size_t slots, th, slots_h, at = 0;
	if (!moe_ref_expert_ws_layout(&ep, &ews) || (p->shared != MOE_SHARED_NONE && !moe_ref_expert_ws_layout(&sp, &sws)))
		return false;
	if (__builtin_mul_overflow(t, k, &slots) || __builtin_mul_overflow(t, h, &th) ||
	    __builtin_mul_overflow(slots, h, &slots_h))
		return false;
	bool ok = moe_ref_ws_region(&at, e, sizeof(int32_t), &ws->counts);
	ok = ok && moe_ref_ws_region(&at, e + 1, sizeof(int32_t), &ws->offsets);
	ok = ok && moe_ref_ws_region(&at, slots, sizeof(int32_t), &ws->perm);
	ok = ok && moe_ref_ws_region(&at, slots, sizeof(int32_t), &ws->inv);
	ok = ok && moe_ref_ws_region(&at, th, sizeof(float), &ws->xg);
	ok = ok && moe_ref_ws_region(&at, slots_h, sizeof(float), &ws->out);
	ok = ok && moe_ref_ws_region(&at, ews.total > sws.total ? ews.total : sws.total, 1, &ws->expert);
	if (!ok)
		return false;
	ws->total = at;
	return true;
}

size_t moe_layer_workspace_bytes(const struct moe_layer_params *p)
{
	struct moe_ref_layer_ws ws;
	if (!p || p->tokens < 0 || p->route.num_experts < 1 || p->route.top_k < 1 || p->expert.hidden < 1 ||
	    p->expert.inter < 1 || (p->shared != MOE_SHARED_NONE && p->shared_inter < 1))
		return 0;
	return moe_ref_layer_ws_layout(p, &ws) ? ws.total : SIZE_MAX;
}

void moe_layer__ref(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		    const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	assert(moe_layer_validate(p, w) == MOE_OK);
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	if (T == 0)
		return;
	struct moe_ref_layer_ws ws;
	const bool fits = moe_ref_layer_ws_layout(p, &ws);
	assert(fits && x && logits && y && ids && weights && workspace && ((uintptr_t)workspace & 63) == 0);
	(void)fits;
	char *base = workspace;
	int32_t *counts = (int32_t *)(base + ws.counts), *offsets = (int32_t *)(base + ws.offsets);
	int32_t *perm = (int32_t *)(base + ws.perm), *inv = (int32_t *)(base + ws.inv);
	float *xg = (float *)(base + ws.xg), *out = (float *)(base + ws.out);
	void *ews = base + ws.expert;

	struct moe_route_params route = p->route;
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	moe_route__ref(&route, T, logits, bias, ids, weights);
	moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
	for (int32_t j = 0; j < offsets[E]; j++)
		inv[perm[j]] = j;

	struct moe_expert_params ep = p->expert;
	for (int32_t e = 0; e < E; e++) {
		if (counts[e] == 0)
			continue;
		assert(counts[e] <= T);
		for (int32_t j = 0; j < counts[e]; j++)
			memcpy(xg + (int64_t)j * H, x + (int64_t)(perm[offsets[e] + j] / K) * H, (size_t)H * sizeof(float));
		ep.tokens = counts[e];
		moe_expert__ref(&ep, xg, &w->experts[e], out + (int64_t)offsets[e] * H, ews);
	}
	if (p->shared != MOE_SHARED_NONE) {
		struct moe_expert_params sp = p->expert;
		sp.tokens = T;
		sp.inter = p->shared_inter;
		moe_expert__ref(&sp, x, w->shared, y, ews);
	}

	const float rsf = p->route.routed_scaling_factor;
	for (int64_t t = 0; t < T; t++) {
		for (int64_t h = 0; h < H; h++) {
			float r = 0.0f;
			for (int32_t k = 0; k < K; k++)
				r = r + weights[t * K + k] * out[(int64_t)inv[t * K + k] * H + h];
			if (p->rsf_site == MOE_RSF_AT_OUTPUT)
				r = r * rsf;
			float *yt = y + t * H + h;
			switch (p->shared) {
			case MOE_SHARED_SUM:
				*yt = r + *yt;
				break;
			case MOE_SHARED_AVERAGE:
				*yt = (r + *yt) * 0.5f;
				break;
			default:
				*yt = r;
				break;
			}
		}
	}
}
