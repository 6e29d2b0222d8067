/* The MoE layer on MOE_VW lanes with OpenMP threads (layer_avx2.c and layer_avx512.c are this file
 * compiled for their ISA, on top of expert/expert_impl.h). It computes what moe_layer__ref
 * computes, in its order (reference/layer.c):
 *   1. route with this ISA level's whole table (the best router variant, the reference where none
 *      applies), rsf = 1 at the router when rsf_site is OUTPUT;
 *   2. moe_dispatch__ref: counts, offsets, the stable permutation;
 *   3. experts in increasing order, each on its gathered tokens (decode blocking up to 16 tokens,
 *      prefill above), every token-set quantized as one tensor as the reference does;
 *   4. the shared expert on all tokens, into y;
 *   5. the combine per token and column: r = sum over k in slot order of weight * out (a product
 *      then a sum, each rounded), r * rsf at OUTPUT, then NONE / SUM / AVERAGE as the reference.
 * Threads share the work inside each expert: each takes a contiguous range of the output panels
 * of each GEMM (ek_part), while the steps that see a whole tensor (the activation quantization,
 * its derived scales) run on one thread between barriers. Every output element is therefore
 * computed by the same operations in the same order whatever the number of threads, and the
 * results are bitwise identical for 1, 2 or any count. The workspace is the reference's
 * (moe_layer_workspace_bytes): each expert in turn uses its expert region; the prefill GEMM's
 * partial sums (M * 2 * MOE_VW floats per thread, only when H > EK_KC) wait in that expert's
 * output rows, which caps the thread count at H / (2 * MOE_VW) there. */
#include <omp.h>

#include "moe/registry.h"

/* The reference's layer workspace regions (reference/layer.c), each 64-byte aligned. */
struct lk_ws {
	int32_t *counts, *offsets, *perm, *inv;
	float *xg, *out;
	void *expert;
};

static inline struct lk_ws lk_ws(const struct moe_layer_params *p, void *workspace)
{
	const size_t E = (size_t)p->route.num_experts, T = (size_t)p->tokens, K = (size_t)p->route.top_k;
	const size_t H = (size_t)p->expert.hidden;
	char *base = workspace;
	struct lk_ws ws;
	size_t at = 0;
	ws.counts = (int32_t *)(base + at);
	at += ek_round64(E * 4);
	ws.offsets = (int32_t *)(base + at);
	at += ek_round64((E + 1) * 4);
	ws.perm = (int32_t *)(base + at);
	at += ek_round64(T * K * 4);
	ws.inv = (int32_t *)(base + at);
	at += ek_round64(T * K * 4);
	ws.xg = (float *)(base + at);
	at += ek_round64(T * H * 4);
	ws.out = (float *)(base + at);
	at += ek_round64(T * K * H * 4);
	ws.expert = base + at;
	return ws;
}

/* One expert call shared by the threads of the enclosing parallel region. */
static inline void lk_expert(const struct moe_expert_params *ep, const float *x, const struct moe_expert_weights *w,
			     float *y, void *workspace, const struct ek_codecs *cd)
{
	const struct ek_run r = ek_run_init(ep, x, w, y, workspace, cd);
	const struct ek_part pt = { omp_get_thread_num(), omp_get_num_threads() };
#pragma omp single
	ek_run_prepare(&r);
	ek_run_gemm(&r, false, pt);
#pragma omp barrier
#pragma omp single
	ek_run_mid(&r);
	ek_run_gemm(&r, true, pt);
#pragma omp barrier
}

static inline void lk_layer(enum moe_isa isa, const struct ek_codecs *cd, const struct moe_layer_params *p,
			    const float *x, const void *logits, const void *bias, const struct moe_layer_weights *w,
			    float *y, int32_t *ids, float *weights, void *workspace)
{
	assert(moe_layer_validate(p, w) == MOE_OK);
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	if (T == 0)
		return;
	assert(x && logits && y && ids && weights && workspace && ((uintptr_t)workspace & 63) == 0);
	const struct lk_ws ws = lk_ws(p, workspace);

	struct moe_route_params route = p->route;
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	moe_backend_for_isa(isa)->route(&route, T, logits, bias, ids, weights);
	moe_dispatch__ref(E, T, K, ids, ws.counts, ws.offsets, ws.perm);
	for (int32_t j = 0; j < ws.offsets[E]; j++)
		ws.inv[ws.perm[j]] = j;

	int threads = omp_get_max_threads();
	if (H > EK_KC && threads > H / (2 * MOE_VW))
		threads = (int)(H / (2 * MOE_VW));
	const float rsf = p->route.routed_scaling_factor;
#pragma omp parallel num_threads(threads)
	{
		struct moe_expert_params ep = p->expert;
		for (int32_t e = 0; e < E; e++) {
			const int32_t n = ws.counts[e], off = ws.offsets[e];
			if (n == 0)
				continue;
#pragma omp for schedule(static)
			for (int32_t j = 0; j < n; j++)
				memcpy(ws.xg + (int64_t)j * H, x + (int64_t)(ws.perm[off + j] / K) * H, (size_t)H * sizeof(float));
			ep.tokens = n;
			lk_expert(&ep, ws.xg, &w->experts[e], ws.out + (int64_t)off * H, ws.expert, cd);
		}
		if (p->shared != MOE_SHARED_NONE) {
			struct moe_expert_params sp = p->expert;
			sp.tokens = T;
			sp.inter = p->shared_inter;
			lk_expert(&sp, x, w->shared, y, ws.expert, cd);
		}
#pragma omp for schedule(static)
		for (int64_t t = 0; t < T; t++) {
			for (int64_t h = 0; h < H; h += MOE_VW) {
				const int c = H - h < MOE_VW ? (int)(H - h) : MOE_VW;
				moe_vf r = vf_zero();
				for (int32_t k = 0; k < K; k++) {
					const float *o = ws.out + (int64_t)ws.inv[t * K + k] * H;
					r = vf_add(r, vf_mul(vf_set1(weights[t * K + k]), vf_load_tail(o, MOE_DTYPE_F32, h, c, 0.0f)));
				}
				if (p->rsf_site == MOE_RSF_AT_OUTPUT)
					r = vf_mul(r, vf_set1(rsf));
				if (p->shared == MOE_SHARED_SUM)
					r = vf_add(r, vf_load_tail(y + t * H, MOE_DTYPE_F32, h, c, 0.0f));
				else if (p->shared == MOE_SHARED_AVERAGE)
					r = vf_mul(vf_add(r, vf_load_tail(y + t * H, MOE_DTYPE_F32, h, c, 0.0f)), vf_set1(0.5f));
				vf_store_tail(y + t * H, MOE_DTYPE_F32, h, r, c);
			}
		}
	}
}
