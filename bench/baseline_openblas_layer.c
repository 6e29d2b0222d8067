/* The OpenBLAS layer baseline: the MoE layer written the way a user of a BLAS would write it.
 *
 * Pack (once, at load): every expert's gate, up and down dequantized to fp32 (the reference's
 * dequantize), one allocation per expert. Call: route with the reference router (rsf as
 * moe_layer__ref applies it), group the token-slots by expert (moe_dispatch__ref), then per expert
 * with tokens: gather its tokens into xg, g = xg gate^T and u = xg up^T (sgemm), a = silu(g) * u
 * (fp32 loop), o = a down^T (sgemm), and y[t] += weight * o (a weighted scatter-add). The shared
 * expert runs the same way on all tokens. Activations are never quantized (the baseline's
 * numbers are fp32 whatever the model's activation format): it times the same work, not the same
 * bits. Threads: OpenBLAS's own, set to the host's count for the call (a user of OpenBLAS has no
 * other way); with plain weights (no pack) each expert is dequantized inside the call. */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct blas_expert {
	float *gate, *up, *down; /* [I][H], [I][H], [H][I] in one allocation */
};

struct blas_pack {
	int32_t count;
	struct blas_expert *e;
};

static enum moe_status dequant_expert(const struct moe_expert_params *p, const struct moe_expert_weights *w,
				      struct blas_expert *out)
{
	const size_t IH = (size_t)p->inter * (size_t)p->hidden;
	out->gate = moe_bench_alloc(3 * IH * sizeof(float));
	if (!out->gate)
		return moe_fail(MOE_ERR_NOMEM, "openblas: no memory for %zu MiB of f32 weights", 3 * IH * 4 >> 20);
	out->up = out->gate + IH;
	out->down = out->up + IH;
	moe_dequantize__ref(&w->gate, out->gate);
	moe_dequantize__ref(&w->up, out->up);
	moe_dequantize__ref(&w->down, out->down);
	return MOE_OK;
}

void moe_bench_openblas_release(struct moe_packed *packed)
{
	if (!packed)
		return;
	struct blas_pack *bp = packed->impl;
	for (int32_t e = 0; bp && e < bp->count; e++)
		free(bp->e[e].gate);
	if (bp)
		free(bp->e);
	free(bp);
	free(packed);
}

enum moe_status moe_bench_openblas_pack(const struct moe_expert_params *p, int32_t count,
					const struct moe_expert_weights *w, const struct moe_threads *th,
					struct moe_packed **out)
{
	(void)th;
	struct moe_packed *pk = calloc(1, sizeof *pk);
	struct blas_pack *bp = calloc(1, sizeof *bp);
	if (bp)
		bp->e = calloc((size_t)count > 0 ? (size_t)count : 1, sizeof *bp->e);
	if (!pk || !bp || !bp->e) {
		free(pk);
		if (bp)
			free(bp->e);
		free(bp);
		return moe_fail(MOE_ERR_NOMEM, "openblas: no memory");
	}
	pk->owner = moe_bench_baseline_openblas();
	pk->count = count;
	pk->format = *p;
	pk->impl = bp;
	for (int32_t e = 0; e < count; e++) {
		enum moe_status s = dequant_expert(p, &w[e], &bp->e[e]);
		if (s != MOE_OK) {
			moe_bench_openblas_release(pk);
			return s;
		}
		bp->count = e + 1;
		pk->bytes += 3 * (size_t)p->inter * (size_t)p->hidden * sizeof(float);
	}
	*out = pk;
	return MOE_OK;
}

void moe_bench_openblas_packed_weights(const struct moe_packed *packed, int32_t index, struct moe_expert_weights *w)
{
	const struct blas_expert *e = &((const struct blas_pack *)packed->impl)->e[index];
	w->gate.data = e->gate;
	w->up.data = e->up;
	w->down.data = e->down;
}

struct blas_ws {
	int32_t *counts, *offsets, *perm;
	float *xg, *g, *u, *o, *tmp; /* tmp: dequantized weights when running plain */
};

static size_t align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* Lays out the workspace; returns its size. */
static size_t layout(const struct moe_layer_params *p, char *base, struct blas_ws *ws)
{
	const size_t E = (size_t)p->route.num_experts, T = (size_t)p->tokens, K = (size_t)p->route.top_k;
	const size_t H = (size_t)p->expert.hidden;
	/* cblas.h pulls in complex.h, whose macro I rules out the usual name of the width */
	size_t NI = (size_t)p->expert.inter;
	if (p->shared != MOE_SHARED_NONE && (size_t)p->shared_inter > NI)
		NI = (size_t)p->shared_inter;
	const size_t sizes[8] = { E * 4, (E + 1) * 4, T * K * 4, T * H * 4, T * NI * 4, T * NI * 4, T * H * 4,
				  3 * NI * H * 4 };
	void *slot[8];
	size_t at = 0;
	for (int i = 0; i < 8; i++) {
		slot[i] = base ? base + at : NULL;
		at += align64(sizes[i]);
	}
	if (ws)
		*ws = (struct blas_ws){ slot[0], slot[1], slot[2], slot[3], slot[4], slot[5], slot[6], slot[7] };
	return at;
}

size_t moe_bench_openblas_workspace(enum moe_op op, const void *problem, int threads)
{
	(void)threads;
	if (op == MOE_OP_LAYER)
		return layout(problem, NULL, NULL);
	if (op == MOE_OP_EXPERT)
		return moe_bench_openblas_workspace_bytes(problem);
	return 0;
}

/* o[M][H] = silu(xg gate^T) * (xg up^T) down^T on fp32 weights. */
static void mlp(int64_t M, int64_t H, int64_t NI, const float *xg, const struct blas_expert *w, float *g, float *u,
		float *o)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)NI, (blasint)H, 1.0f, xg,
		    (blasint)H, w->gate, (blasint)H, 0.0f, g, (blasint)NI);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)NI, (blasint)H, 1.0f, xg,
		    (blasint)H, w->up, (blasint)H, 0.0f, u, (blasint)NI);
	for (int64_t i = 0; i < M * NI; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)H, (blasint)NI, 1.0f, g,
		    (blasint)NI, w->down, (blasint)NI, 0.0f, o, (blasint)H);
}

/* The expert's fp32 weights: packed, or dequantized now into tmp. */
static struct blas_expert weights_of(const struct moe_packed *packed, int32_t e, const struct moe_expert_params *p,
				     const struct moe_expert_weights *w, float *tmp)
{
	if (packed)
		return ((const struct blas_pack *)packed->impl)->e[e];
	const size_t IH = (size_t)p->inter * (size_t)p->hidden;
	struct blas_expert b = { tmp, tmp + IH, tmp + 2 * IH };
	moe_dequantize__ref(&w->gate, b.gate);
	moe_dequantize__ref(&w->up, b.up);
	moe_dequantize__ref(&w->down, b.down);
	return b;
}

void moe_bench_openblas_layer(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
			      const struct moe_layer_weights *w, const struct moe_packed *packed,
			      const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights,
			      void *workspace, const struct moe_threads *th)
{
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	if (T == 0)
		return;
	openblas_set_num_threads(th && th->count > 0 ? th->count : 1);
	struct blas_ws ws;
	layout(p, workspace, &ws);
	struct moe_route_params route = p->route;
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	moe_backend_reference()->route(&route, T, logits, bias, ids, weights);
	moe_dispatch__ref(E, T, K, ids, ws.counts, ws.offsets, ws.perm);
	memset(y, 0, (size_t)(T * H) * sizeof *y);
	for (int32_t e = 0; e < E; e++) {
		const int32_t n = ws.counts[e];
		if (n == 0)
			continue;
		const int32_t *slots = ws.perm + ws.offsets[e];
		for (int32_t j = 0; j < n; j++)
			memcpy(ws.xg + (int64_t)j * H, x + (int64_t)(slots[j] / K) * H, (size_t)H * sizeof(float));
		struct blas_expert be = weights_of(packed, e, &p->expert, &w->experts[e], ws.tmp);
		mlp(n, H, p->expert.inter, ws.xg, &be, ws.g, ws.u, ws.o);
		for (int32_t j = 0; j < n; j++)
			cblas_saxpy((blasint)H, weights[slots[j]], ws.o + (int64_t)j * H, 1, y + (int64_t)(slots[j] / K) * H, 1);
	}
	if (p->rsf_site == MOE_RSF_AT_OUTPUT && p->route.routed_scaling_factor != 1.0f)
		cblas_sscal((blasint)(T * H), p->route.routed_scaling_factor, y, 1);
	if (p->shared != MOE_SHARED_NONE) {
		struct moe_expert_params sp = p->expert;
		sp.inter = p->shared_inter;
		struct blas_expert be = weights_of(packed_shared, 0, &sp, w->shared, ws.tmp);
		mlp(T, H, p->shared_inter, x, &be, ws.g, ws.u, ws.o);
		cblas_saxpy((blasint)(T * H), 1.0f, ws.o, 1, y, 1);
		if (p->shared == MOE_SHARED_AVERAGE)
			cblas_sscal((blasint)(T * H), 0.5f, y, 1);
	}
}
