/* The single-process result an expert-parallel run must equal bit for bit.
 *
 * Reference backend: moe_layer__ref itself. Another backend: its route and expert ops (single
 * thread, weights packed once when it packs) over the moe_dispatch__ref grouping, each expert on its
 * tokens gathered in increasing slot order, then moe_ep_combine_token - the layer of
 * reference/layer.c with the backend's ops, which is what one rank computes when R = 1. (A
 * backend's own fused layer may order its sums differently; it is not the oracle.) */
#include <stdlib.h>
#include <string.h>

#include "ep.h"

static enum moe_status oracle_backend(const struct moe_ep_problem *pr, float *y)
{
	const struct moe_layer_params *p = &pr->p;
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	const struct moe_threads *th = moe_threads_serial();
	struct moe_expert_params fmt = p->expert;
	fmt.tokens = 0;
	struct moe_packed *packed = NULL;
	enum moe_status s = moe_backend_pack(pr->b, &fmt, E, pr->experts, th, &packed);
	if (s == MOE_ERR_UNSUPPORTED)
		packed = NULL;
	else if (s != MOE_OK)
		return s;
	struct moe_expert_params ep = p->expert;
	ep.tokens = T;
	size_t wsb = moe_backend_workspace(pr->b, MOE_OP_EXPERT, &ep, 1);
	if (p->shared != MOE_SHARED_NONE) {
		struct moe_expert_params sp = ep;
		sp.inter = p->shared_inter;
		const size_t sb = moe_backend_workspace(pr->b, MOE_OP_EXPERT, &sp, 1);
		wsb = sb > wsb ? sb : wsb;
	}
	int32_t *ids = malloc((size_t)(T * K) * sizeof *ids), *counts = malloc((size_t)E * sizeof *counts);
	int32_t *offsets = malloc((size_t)(E + 1) * sizeof *offsets), *perm = malloc((size_t)(T * K) * sizeof *perm);
	int32_t *inv = malloc((size_t)(T * K) * sizeof *inv);
	float *w = malloc((size_t)(T * K) * sizeof *w), *xg = malloc((size_t)(T * H) * sizeof *xg);
	float *out = malloc((size_t)(T * K * H) * sizeof *out), *ysh = malloc((size_t)(T * H) * sizeof *ysh);
	void *ws = aligned_alloc(64, (wsb + 63) / 64 * 64 + 64);
	s = MOE_OK;
	if (!ids || !counts || !offsets || !perm || !inv || !w || !xg || !out || !ysh || !ws) {
		s = moe_fail(MOE_ERR_NOMEM, "ep oracle: no memory for T=%lld H=%lld K=%d", (long long)T, (long long)H, K);
		goto done;
	}
	moe_backend_route(pr->b, &p->route, T, pr->logits, pr->bias, ids, w, th);
	moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
	for (int32_t j = 0; j < offsets[E]; j++)
		inv[perm[j]] = j;
	for (int32_t e = 0; e < E; e++) {
		if (counts[e] == 0)
			continue;
		for (int32_t j = 0; j < counts[e]; j++)
			memcpy(xg + (int64_t)j * H, pr->x + (int64_t)(perm[offsets[e] + j] / K) * H, (size_t)H * sizeof(float));
		ep.tokens = counts[e];
		moe_backend_expert(pr->b, &ep, xg, &pr->experts[e], packed, e, out + (int64_t)offsets[e] * H, ws, th);
	}
	if (p->shared != MOE_SHARED_NONE) {
		struct moe_expert_params sp = p->expert;
		sp.tokens = T;
		sp.inter = p->shared_inter;
		moe_backend_expert(pr->b, &sp, pr->x, &pr->shared, NULL, 0, ysh, ws, th);
	}
	const float **rows = malloc((size_t)K * sizeof *rows);
	if (!rows) {
		s = moe_fail(MOE_ERR_NOMEM, "ep oracle: no memory");
		goto done;
	}
	for (int64_t t = 0; t < T; t++) {
		for (int32_t k = 0; k < K; k++)
			rows[k] = out + (int64_t)inv[t * K + k] * H;
		moe_ep_combine_token(p, w + t * K, rows, ysh + t * H, y + t * H, false);
	}
	free(rows);
done:
	moe_backend_release(pr->b, packed);
	free(ids), free(counts), free(offsets), free(perm), free(inv), free(w), free(xg), free(out), free(ysh), free(ws);
	return s;
}

enum moe_status moe_ep_oracle(const struct moe_ep_problem *pr, float *y)
{
	if (pr->b != moe_backend_reference())
		return oracle_backend(pr, y);
	const struct moe_layer_params *p = &pr->p;
	const size_t wsb = moe_layer_workspace_bytes(p);
	void *ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
	int32_t *ids = malloc((size_t)(p->tokens * p->route.top_k) * sizeof *ids);
	float *w = malloc((size_t)(p->tokens * p->route.top_k) * sizeof *w);
	if (!ws || !ids || !w) {
		free(ws), free(ids), free(w);
		return moe_fail(MOE_ERR_NOMEM, "ep oracle: no memory for the layer workspace (%zu bytes)", wsb);
	}
	struct moe_layer_weights lw = { pr->experts, p->shared != MOE_SHARED_NONE ? &pr->shared : NULL };
	moe_layer__ref(p, pr->x, pr->logits, pr->bias, &lw, y, ids, w, ws);
	free(ws), free(ids), free(w);
	return MOE_OK;
}
