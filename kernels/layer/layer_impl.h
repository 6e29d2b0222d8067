/* The MoE layer on the host's threads (layer_avx2.c, layer_avx512.c, layer_avx512bf16.c and
 * layer_avx512amx.c are this file compiled for their ISA, on top of expert/expert_impl.h), with the ABI-2 entry points of the
 * ISA's whole table: pack / release (layer_pack.h), workspace, expert_mt and layer_mt. No thread
 * is started here: every parallel step is one moe_parallel_for on the struct moe_threads the host
 * gave (the version-1 `layer` slot runs on the calling thread, moe_threads_serial).
 *
 * It computes what moe_layer__ref computes, in its order (reference/layer.c):
 *   1. route with this ISA level's whole table through moe_backend_route (its route_mt: token
 *      chunks of a fixed size, so the same router call per token whatever the thread count),
 *      rsf = 1 at the router when rsf_site is OUTPUT;
 *   2. moe_dispatch__ref: counts, offsets, the stable permutation;
 *   3. every expert on its gathered tokens, every token set quantized as one tensor as the reference
 *      does, the shared expert on all T tokens into y;
 *   4. the combine per token and column: r = sum over k in slot order of weight * out (a product
 *      then a sum, each rounded), r * rsf at OUTPUT, then NONE / SUM / AVERAGE as the reference.
 * Two ways to run step 3, decided by the format alone (never by the thread count):
 *   - the W16A16 panel path (bf16 weights, act_quant BF16, AVX512_BF16 tables): one parallel job
 *     for all experts (the shared expert included) in phases: gather + bf16 rounding of x (a task
 *     per expert; an expert of at most LK_DECODE_MAX tokens runs whole in this phase instead,
 *     with the decode kernel moe_builtin_pick gives, which streams the weight rows), GEMM 1 with SiLU * up (tasks = (expert, range of 16-row panels), sized by
 *     tokens x panels), the subnormal scan of a (a task per expert), GEMM 2 (tasks = (expert,
 *     range of 32-row panels)). The GEMMs are those of expert_bf16_prefill.h for every token
 *     count (token blocks of 1 .. 12, balanced), over the packed panels of layer_pack.h or, on
 *     plain weights, over the same words packed per depth block on the stack. Where vdpbf16ps
 *     would read a subnormal (a weight depth block, an expert's x or a) that block runs fp32 FMAs
 *     on the same words widened, exact products, so nothing is flushed that the reference keeps;
 *     on AMX tables the whole 16-token blocks of the other depth blocks run on AMX tiles
 *     (layer_amx.h) over the same words;
 *   - every other format: a task per expert (the largest first), each the expert kernel
 *     moe_builtin_pick chooses for this ISA and the expert's token count, on its gathered tokens,
 *     with per-thread scratch; the packed handle holds a copy of the weights.
 * Every output element is computed by one task with the same operations in the same order
 * whatever the number of threads and however the tasks are cut, so results are bitwise identical
 * for any th->count, and packed and plain weights give the same bits. The combine is a parallel
 * job over token ranges. The workspace of layer_mt is this file's (lk_mt_layout); the version-1
 * `layer` runs the same tasks one after the other in the reference's workspace. */
#include "moe/memory.h"
#include "moe/registry.h"
#include "layer/layer_pack.h"

#if defined(__AVX512BF16__)
#define LK_PANELS 1
#else
#define LK_PANELS 0
#endif
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
#define LK_AMX 1
#else
#define LK_AMX 0
#endif

/* ---- workspace ---- */

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

/* Experts of at most this many tokens run the decode kernel moe_builtin_pick gives (weight
 * streaming), also on the panel path: moe_builtin_pick's own threshold between decode and
 * prefill variants. */
#define LK_DECODE_MAX 16

/* Whether the layer runs the W16A16 panel path (a property of the format only). */
static inline bool lk_panel_path(const struct moe_expert_params *ep)
{
	return LK_PANELS && ep->weight_dtype == MOE_DTYPE_BF16 && ep->act_quant == MOE_ACT_BF16;
}

/* One expert of the job (index E: the shared expert). */
struct lk_exp {
	int64_t M, I;          /* tokens, intermediate width */
	const float *x;        /* token rows: x[rows[j] / K] (rows NULL: x[j]) */
	const int32_t *rows;
	int32_t K;
	const struct moe_expert_weights *w; /* plain weights or the generic packed copy */
	const struct lp_exp *pk;            /* panel path: packed panels (NULL: plain) */
	bool panel;                         /* runs the panel GEMMs (else the picked kernel, whole) */
	uint16_t *xq, *a;      /* panel path: bf16 x [M][ldH], a [M][ldI] */
	float *y;              /* output rows [M][H] */
	bool xsub, asub;       /* panel path: x / a hold a bf16 subnormal */
};

/* A task of a GEMM phase: panels [q0, q1) of expert e. */
struct lk_task {
	int32_t e, q0, q1;
};

/* Regions of this file's layer workspace (layer_mt), 64-byte aligned offsets. */
struct lk_mt_layout {
	size_t counts, offsets, perm, inv, out, exps, tasks, order, xq, a, part, xg, ews, total;
	size_t part_bytes, xg_bytes, ews_bytes; /* per thread */
	int64_t max_tasks;
};

static inline size_t lk_expert_ws_bytes(const struct moe_layer_params *p)
{
	struct moe_expert_params ep = p->expert, sp = p->expert;
	ep.tokens = sp.tokens = p->tokens;
	sp.inter = p->shared_inter;
	const size_t a = moe_expert_workspace_bytes(&ep);
	const size_t b = p->shared != MOE_SHARED_NONE ? moe_expert_workspace_bytes(&sp) : 0;
	return ek_round64(a > b ? a : b);
}

static inline struct lk_mt_layout lk_mt_layout(const struct moe_layer_params *p, int threads)
{
	const size_t E = (size_t)p->route.num_experts, T = (size_t)p->tokens, K = (size_t)p->route.top_k;
	const size_t H = (size_t)p->expert.hidden, I = (size_t)p->expert.inter;
	const size_t SI = p->shared != MOE_SHARED_NONE ? (size_t)p->shared_inter : 0;
	const size_t n = threads < 1 ? 1 : (size_t)threads;
	struct lk_mt_layout l = { 0 };
	size_t at = 0;
#define LK_REGION(field, bytes) (l.field = at, at += ek_round64(bytes))
	LK_REGION(counts, E * 4);
	LK_REGION(offsets, (E + 1) * 4);
	LK_REGION(perm, T * K * 4);
	LK_REGION(inv, T * K * 4);
	LK_REGION(out, T * K * H * 4);
	LK_REGION(exps, (E + 1) * sizeof(struct lk_exp));
	/* experts x (at most 8 * threads + 1 parts each) per GEMM, bounded by the panels */
	l.max_tasks = (int64_t)((E + 1) * (8 * n + 1));
	LK_REGION(tasks, (size_t)l.max_tasks * sizeof(struct lk_task));
	LK_REGION(order, (E + 1) * sizeof(int32_t));
	if (lk_panel_path(&p->expert)) {
		const size_t ldh = H + (H & 1), ldi = I + (I & 1), ldsi = SI + (SI & 1);
		LK_REGION(xq, (T * K + (SI ? T : 0)) * ldh * 2);
		LK_REGION(a, T * K * ldi * 2 + (SI ? T * ldsi * 2 : 0));
		l.part_bytes = ek_round64(T * 32 * 4);
		LK_REGION(part, n * l.part_bytes);
		/* the experts of at most LK_DECODE_MAX tokens: the decode kernel, whole */
		struct moe_layer_params q = *p;
		q.tokens = T < LK_DECODE_MAX ? (int64_t)T : LK_DECODE_MAX;
		l.xg_bytes = ek_round64((size_t)q.tokens * H * 4);
		l.ews_bytes = lk_expert_ws_bytes(&q);
		LK_REGION(xg, n * l.xg_bytes);
		LK_REGION(ews, n * l.ews_bytes);
	} else {
		l.xg_bytes = ek_round64(T * H * 4);
		l.ews_bytes = lk_expert_ws_bytes(p);
		LK_REGION(xg, n * l.xg_bytes);
		LK_REGION(ews, n * l.ews_bytes);
	}
#undef LK_REGION
	l.total = at;
	return l;
}

/* ---- the W16A16 panel path ---- */

#if LK_PANELS
#if LK_AMX
#include "layer/layer_amx.h"
#endif

#define LK_CASE(n)                                            \
	case n:                                               \
		if (f32)                                      \
			ek_bf16_block(n, true, gemm1, j, m0);      \
		else                                          \
			ek_bf16_block(n, false, gemm1, j, m0);     \
		break;

/* One token block of 1 .. EK_PRE_MR tokens, each size its own unrolled tile. */
static void lk_block_any(bool f32, bool gemm1, const struct ek_bf16_job *j, int64_t m0, int mr)
{
	_Static_assert(EK_PRE_MR == 12, "lk_block_any has a case per tile height");
	switch (mr) {
		LK_CASE(12) LK_CASE(11) LK_CASE(10) LK_CASE(9) LK_CASE(8) LK_CASE(7)
		LK_CASE(6) LK_CASE(5) LK_CASE(4) LK_CASE(3) LK_CASE(2)
	default:
		assert(mr == 1);
		if (f32)
			ek_bf16_block(1, true, gemm1, j, m0);
		else
			ek_bf16_block(1, false, gemm1, j, m0);
		break;
	}
}
#undef LK_CASE

/* Panels [q0, q1) of one GEMM of expert x: GEMM 1 (gate/up, 16 + 16 rows per panel, epilogue into
 * x->a) or GEMM 2 (32 down rows per panel into x->y). Panels come from x->pk or are packed here
 * per depth block from the plain weights; token blocks: nb = ceil(M / 12) of floor or ceil(M / nb)
 * tokens. part: M * 2 * MOE_VW floats of this thread (GEMM 1). */
static void lk_panel_gemm(bool gemm1, const struct lk_exp *x, int64_t H, int64_t q0, int64_t q1, float *part)
{
	uint32_t buf[EK_BF16_KP * 2 * MOE_VW] __attribute__((aligned(64)));
	const int64_t M = x->M, I = x->I;
	const int64_t K = gemm1 ? H : I, N = gemm1 ? I : H, step = gemm1 ? 16 : 32;
	const int64_t kc_max = 2 * EK_BF16_KP, nkb = lp_kblocks(K);
	struct ek_wt w0 = { 0 }, w1 = { 0 };
	if (!x->pk) {
		w0 = ek_wt(gemm1 ? &x->w->gate : &x->w->down);
		w1 = ek_wt(gemm1 ? &x->w->up : &x->w->down);
	}
	const struct ek_wt *const w[2] = { &w0, &w1 };
	const struct ek_aout o = { .a = { .base = x->a, .afmt = EK_A_BF16, .ld = ek_bf16_ld(I), .rows = M, .cols = I },
				   .round_bf16 = true };
	const bool act_sub = gemm1 ? x->xsub : x->asub;
	const int64_t nb = (M + EK_PRE_MR - 1) / EK_PRE_MR;
	struct ek_bf16_job j = { .A = NULL, .lda = ek_bf16_ld(K), .part = part, .o = &o, .y = x->y, .ldy = H };
	const uint16_t *A = gemm1 ? x->xq : x->a;
#if LK_AMX
	/* AMX tiles for the whole 16-token blocks (layer_amx.h), vdpbf16ps for the rest */
	const bool amx = lk_amx_fits(H, I) && M >= 16;
	const int64_t mt = M / 16 * 16, nbr = (M - mt + EK_PRE_MR - 1) / EK_PRE_MR;
	if (amx)
		lk_amx_begin();
#endif
	for (int64_t q = q0; q < q1; q++) {
		const int64_t c0 = q * step;
		const int nc = N - c0 < step ? (int)(N - c0) : (int)step;
		const int n0 = nc < MOE_VW ? nc : MOE_VW;
		const int64_t r[2] = { c0, gemm1 ? c0 : c0 + MOE_VW };
		const int nr[2] = { gemm1 ? nc : n0, gemm1 ? nc : nc - n0 };
		for (int64_t k0 = 0, kb = 0; k0 < K; k0 += kc_max, kb++) {
			const int64_t kc = K - k0 < kc_max ? K - k0 : kc_max;
			bool sub;
			if (x->pk) {
				j.bp = (gemm1 ? x->pk->p1 : x->pk->p2) + (size_t)q * lp_panel_words(K) + (size_t)k0 / 2 * 32;
				sub = (gemm1 ? x->pk->f1 : x->pk->f2)[q * nkb + kb] != 0;
			} else {
				sub = ek_bf16_pack(w, r, nr, k0, kc, buf) != 0;
				j.bp = buf;
			}
			j.A = A + k0;
			j.pairs = (kc + 1) / 2;
			j.first = k0 == 0;
			j.last = k0 + kc == K;
			j.c0 = c0;
			j.nc = nc;
#if LK_AMX
			if (amx && !sub && !act_sub) {
				lk_amx_panel_block(gemm1, &j, mt);
				for (int64_t b = 0; b < nbr; b++) {
					const int64_t m0 = mt + (M - mt) * b / nbr, m1 = mt + (M - mt) * (b + 1) / nbr;
					lk_block_any(false, gemm1, &j, m0, (int)(m1 - m0));
				}
				continue;
			}
#endif
			for (int64_t b = 0; b < nb; b++) {
				const int64_t m0 = M * b / nb, m1 = M * (b + 1) / nb;
				lk_block_any(sub || act_sub, gemm1, &j, m0, (int)(m1 - m0));
			}
		}
	}
#if LK_AMX
	if (amx)
		lk_amx_end();
#endif
}

/* Gathers and rounds the expert's tokens into x->xq (bf16, stride ldH, zero pad), zeroes a's pad
 * column, records whether x holds a subnormal. */
static void lk_panel_prepare(struct lk_exp *x, int64_t H)
{
	const int64_t ldh = ek_bf16_ld(H), ldi = ek_bf16_ld(x->I);
	bool ok = true;
	for (int64_t m = 0; m < x->M; m++) {
		const float *row = x->x + (x->rows ? (int64_t)(x->rows[m] / x->K) : m) * H;
		ok &= ek_bf16_prepare_x(row, 1, H, x->xq + m * ldh, ldh);
		if (ldi > x->I)
			x->a[m * ldi + x->I] = 0;
	}
	x->xsub = !ok;
}

static void lk_panel_scan_a(struct lk_exp *x)
{
	x->asub = !ek_no_bf16_subnormal(x->a, x->M * ek_bf16_ld(x->I));
}

/* The packed form of one expert (layer_pack.h): panels and flags at p1/p2, f1/f2. */
static void lk_pack_panels(const struct moe_expert_weights *w, int64_t H, int64_t I, uint32_t *p1, uint32_t *p2,
			   uint8_t *f1, uint8_t *f2)
{
	for (int g = 0; g < 2; g++) {
		const bool gemm1 = g == 0;
		const struct ek_wt w0 = ek_wt(gemm1 ? &w->gate : &w->down), w1 = ek_wt(gemm1 ? &w->up : &w->down);
		const struct ek_wt *const wp[2] = { &w0, &w1 };
		const int64_t K = gemm1 ? H : I, N = gemm1 ? I : H, step = gemm1 ? 16 : 32;
		const int64_t np = gemm1 ? lp_panels1(I) : lp_panels2(H), nkb = lp_kblocks(K), kc_max = 2 * EK_BF16_KP;
		uint32_t *dst = gemm1 ? p1 : p2;
		uint8_t *fl = gemm1 ? f1 : f2;
		for (int64_t q = 0; q < np; q++) {
			const int64_t c0 = q * step;
			const int nc = N - c0 < step ? (int)(N - c0) : (int)step;
			const int n0 = nc < MOE_VW ? nc : MOE_VW;
			const int64_t r[2] = { c0, gemm1 ? c0 : c0 + MOE_VW };
			const int nr[2] = { gemm1 ? nc : n0, gemm1 ? nc : nc - n0 };
			for (int64_t k0 = 0, kb = 0; k0 < K; k0 += kc_max, kb++) {
				const int64_t kc = K - k0 < kc_max ? K - k0 : kc_max;
				fl[q * nkb + kb] = ek_bf16_pack(wp, r, nr, k0, kc, dst + (size_t)q * lp_panel_words(K) + (size_t)k0 / 2 * 32) != 0;
			}
		}
	}
}

#endif /* LK_PANELS */

/* ---- the job ---- */

/* Output panels of a GEMM of expert x (panel path). */
static inline int64_t lk_panels(bool gemm1, const struct lk_exp *x, int64_t H)
{
	return gemm1 ? lp_panels1(x->I) : lp_panels2(H);
}

struct lk_job {
	const struct moe_layer_params *p;
	const struct moe_expert_params *ep; /* formats */
	struct lk_exp *exps;  /* [E + 1] */
	int32_t nexp;         /* E + 1 */
	const int32_t *order; /* experts with tokens, the largest first */
	int32_t norder;
	int32_t npanel;       /* panel path: the first npanel of the order run the panel GEMMs */
	struct lk_task *tasks;
	int64_t ntasks;
	bool gemm1;
	enum moe_isa isa;
	/* generic path: per-thread scratch */
	char *xg, *ews;
	size_t xg_bytes, ews_bytes;
	/* panel path: per-thread GEMM 1 partial sums */
	char *part;
	size_t part_bytes;
	/* combine */
	const int32_t *inv;
	const float *out, *weights;
	float *y;
	int64_t T, tchunk;
};

/* The generic path: the whole expert x on one thread with the kernel picked for its size. */
static void lk_generic_expert(const struct lk_job *jb, struct lk_exp *x, float *xg, void *ews)
{
	const int64_t H = jb->ep->hidden;
	struct moe_expert_params ep = *jb->ep;
	ep.tokens = x->M;
	ep.inter = x->I;
	const float *in = x->x;
	if (x->rows) {
		for (int64_t j = 0; j < x->M; j++)
			memcpy(xg + j * H, x->x + (int64_t)(x->rows[j] / x->K) * H, (size_t)H * sizeof(float));
		in = xg;
	}
	moe_builtin_pick(jb->isa, MOE_OP_EXPERT, &ep)->table->expert(&ep, in, x->w, x->y, ews);
}

static void lk_task_generic(void *arg, int64_t i, int thread)
{
	const struct lk_job *jb = arg;
	lk_generic_expert(jb, &jb->exps[jb->order[i]], (float *)(jb->xg + (size_t)thread * jb->xg_bytes),
			  jb->ews + (size_t)thread * jb->ews_bytes);
}

#if LK_PANELS
/* Phase 1: the panel experts' prepare (the first npanel of the order), the others whole. */
static void lk_task_prepare(void *arg, int64_t i, int thread)
{
	const struct lk_job *jb = arg;
	struct lk_exp *x = &jb->exps[jb->order[i]];
	if (x->panel)
		lk_panel_prepare(x, jb->ep->hidden);
	else
		lk_generic_expert(jb, x, (float *)(jb->xg + (size_t)thread * jb->xg_bytes),
				  jb->ews + (size_t)thread * jb->ews_bytes);
}

static void lk_task_scan(void *arg, int64_t i, int thread)
{
	const struct lk_job *jb = arg;
	(void)thread;
	lk_panel_scan_a(&jb->exps[jb->order[i]]); /* i < npanel */
}

static void lk_task_gemm(void *arg, int64_t i, int thread)
{
	const struct lk_job *jb = arg;
	const struct lk_task *t = &jb->tasks[i];
	lk_panel_gemm(jb->gemm1, &jb->exps[t->e], jb->ep->hidden, t->q0, t->q1,
		      (float *)(jb->part + (size_t)thread * jb->part_bytes));
}

/* The tasks of one GEMM: each expert's panels cut into parts of about equal work (tokens + 4 per
 * panel: the weight stream counts as a few tokens), about 4 parts per thread over the whole job.
 * The cut changes which thread computes a panel, never how. */
static void lk_make_tasks(struct lk_job *jb, bool gemm1, int threads, int64_t max_tasks)
{
	const int64_t H = jb->ep->hidden;
	double total = 0.0;
	for (int32_t i = 0; i < jb->npanel; i++) {
		const struct lk_exp *x = &jb->exps[jb->order[i]];
		total += (double)(x->M + 4) * (double)lk_panels(gemm1, x, H);
	}
	const double target = threads > 1 ? total / (4.0 * threads) : total + 1.0;
	int64_t n = 0;
	for (int32_t i = 0; i < jb->npanel; i++) {
		const struct lk_exp *x = &jb->exps[jb->order[i]];
		const int64_t np = lk_panels(gemm1, x, H);
		int64_t parts = (int64_t)((double)(x->M + 4) * (double)np / target) + 1;
		if (parts > np)
			parts = np;
		if (parts > 8 * threads + 1)
			parts = 8 * threads + 1;
		for (int64_t s = 0; s < parts && n < max_tasks; s++)
			jb->tasks[n++] = (struct lk_task){ jb->order[i], (int32_t)(np * s / parts), (int32_t)(np * (s + 1) / parts) };
	}
	jb->ntasks = n;
	jb->gemm1 = gemm1;
}
#endif

/* Combine of tokens [t0, t1). */
static void lk_combine(const struct lk_job *jb, int64_t t0, int64_t t1)
{
	const struct moe_layer_params *p = jb->p;
	const int64_t H = p->expert.hidden;
	const int32_t K = p->route.top_k;
	const float rsf = p->route.routed_scaling_factor;
	float *y = jb->y;
	for (int64_t t = t0; t < t1; t++) {
		for (int64_t h = 0; h < H; h += MOE_VW) {
			const int c = H - h < MOE_VW ? (int)(H - h) : MOE_VW;
			moe_vf r = vf_zero();
			for (int32_t k = 0; k < K; k++) {
				const float *o = jb->out + (int64_t)jb->inv[t * K + k] * H;
				r = vf_add(r, vf_mul(vf_set1(jb->weights[t * K + k]), vf_load_tail(o, MOE_DTYPE_F32, h, c, 0.0f)));
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

static void lk_task_combine(void *arg, int64_t i, int thread)
{
	const struct lk_job *jb = arg;
	(void)thread;
	const int64_t t0 = i * jb->tchunk, t1 = t0 + jb->tchunk < jb->T ? t0 + jb->tchunk : jb->T;
	lk_combine(jb, t0, t1);
}

/* Route and dispatch: ids, weights, counts, offsets, perm, inv. */
static void lk_route(enum moe_isa isa, const struct moe_layer_params *p, const void *logits, const void *bias,
		     int32_t *ids, float *weights, int32_t *counts, int32_t *offsets, int32_t *perm, int32_t *inv,
		     const struct moe_threads *th)
{
	const int64_t T = p->tokens;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	struct moe_route_params route = p->route;
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	moe_backend_route(moe_backend_for_isa(isa), &route, T, logits, bias, ids, weights, th);
	moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
	for (int32_t j = 0; j < offsets[E]; j++)
		inv[perm[j]] = j;
}

/* Fills jb->exps and jb->order from the dispatch: expert e reads x rows perm[off ..] and writes
 * out rows off ..; the shared expert (index E) reads x and writes y. */
static void lk_setup(struct lk_job *jb, const float *x, const struct moe_layer_weights *w,
		     const struct moe_packed *packed, const struct moe_packed *packed_shared, const int32_t *counts,
		     const int32_t *offsets, const int32_t *perm, float *out, float *y, int32_t *order)
{
	const struct moe_layer_params *p = jb->p;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	const int64_t H = p->expert.hidden;
	int32_t n = 0;
	for (int32_t e = 0; e <= E; e++) {
		struct lk_exp *xe = &jb->exps[e];
		const bool shared = e == E;
		*xe = (struct lk_exp){ 0 };
		if (shared && p->shared == MOE_SHARED_NONE)
			continue;
		const struct moe_packed *pk = shared ? packed_shared : packed;
		const int32_t idx = shared ? 0 : e;
		xe->M = shared ? p->tokens : counts[e];
		xe->I = shared ? p->shared_inter : p->expert.inter;
		xe->x = x;
		xe->rows = shared ? NULL : perm + offsets[e];
		xe->K = K;
		xe->y = shared ? y : out + (int64_t)offsets[e] * H;
		if (pk) {
			const struct lp_impl *im = lp_of(pk);
			assert(pk->count > idx && im->hidden == H && im->inter == xe->I);
			xe->pk = im->panels ? &im->exp[idx] : NULL;
			xe->w = &im->exp[idx].w;
		} else {
			xe->w = shared ? w->shared : &w->experts[e];
		}
		if (xe->M > 0)
			order[n++] = e;
	}
	/* the largest first (insertion sort, stable: ties in expert order) */
	for (int32_t i = 1; i < n; i++) {
		const int32_t v = order[i];
		int32_t j = i;
		while (j > 0 && jb->exps[order[j - 1]].M < jb->exps[v].M) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = v;
	}
	jb->order = order;
	jb->norder = n;
}

/* Step 3 and the combine on th. */
static void lk_run(struct lk_job *jb, const struct moe_threads *th, int64_t max_tasks)
{
#if LK_PANELS
	if (lk_panel_path(jb->ep)) {
		int32_t np = 0;
		for (int32_t i = 0; i < jb->norder; i++) {
			struct lk_exp *x = &jb->exps[jb->order[i]];
			x->panel = x->M > LK_DECODE_MAX;
			np += x->panel; /* the order is by decreasing M: these come first */
		}
		jb->npanel = np;
		moe_parallel_for(th, jb->norder, lk_task_prepare, jb);
		if (np == 0)
			return;
		lk_make_tasks(jb, true, th->count, max_tasks);
		moe_parallel_for(th, jb->ntasks, lk_task_gemm, jb);
		moe_parallel_for(th, np, lk_task_scan, jb);
		lk_make_tasks(jb, false, th->count, max_tasks);
		moe_parallel_for(th, jb->ntasks, lk_task_gemm, jb);
	} else
#endif
	{
		(void)max_tasks;
		moe_parallel_for(th, jb->norder, lk_task_generic, jb);
	}
}

static inline void lk_finish(struct lk_job *jb, const struct moe_threads *th)
{
	jb->tchunk = jb->T / (4 * th->count) + 1;
	if (jb->tchunk < 4)
		jb->tchunk = 4;
	moe_parallel_for(th, (jb->T + jb->tchunk - 1) / jb->tchunk, lk_task_combine, jb);
}

/* layer_mt: the layer on th with this file's workspace (lk_mt_layout(p, th->count)). */
static inline void lk_layer_mt(enum moe_isa isa, const struct moe_layer_params *p, const float *x, const void *logits,
			       const void *bias, const struct moe_layer_weights *w, const struct moe_packed *packed,
			       const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights,
			       void *workspace, const struct moe_threads *th)
{
	assert(p && th && th->count >= 1);
	assert(packed || moe_layer_validate(p, w) == MOE_OK);
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts;
	if (T == 0)
		return;
	assert(x && logits && y && ids && weights && workspace && ((uintptr_t)workspace & 63) == 0);
	const struct lk_mt_layout l = lk_mt_layout(p, th->count);
	char *base = workspace;
	int32_t *counts = (int32_t *)(base + l.counts), *offsets = (int32_t *)(base + l.offsets);
	int32_t *perm = (int32_t *)(base + l.perm), *inv = (int32_t *)(base + l.inv);
	float *out = (float *)(base + l.out);
	lk_route(isa, p, logits, bias, ids, weights, counts, offsets, perm, inv, th);
	struct lk_job jb = { .p = p, .ep = &p->expert, .exps = (struct lk_exp *)(base + l.exps), .nexp = E + 1,
			     .tasks = (struct lk_task *)(base + l.tasks), .isa = isa, .xg = base + l.xg, .ews = base + l.ews,
			     .xg_bytes = l.xg_bytes, .ews_bytes = l.ews_bytes, .part = base + l.part,
			     .part_bytes = l.part_bytes, .inv = inv, .out = out, .weights = weights, .y = y, .T = T };
	lk_setup(&jb, x, w, packed, packed_shared, counts, offsets, perm, out, y, (int32_t *)(base + l.order));
	if (lk_panel_path(&p->expert)) {
		/* each expert's bf16 x and a: slots in offset order, then the shared expert */
		const int64_t ldh = ek_bf16_ld(H), ldi = ek_bf16_ld(p->expert.inter);
		uint16_t *xq = (uint16_t *)(base + l.xq), *a = (uint16_t *)(base + l.a);
		for (int32_t e = 0; e < E; e++) {
			jb.exps[e].xq = xq + (int64_t)offsets[e] * ldh;
			jb.exps[e].a = a + (int64_t)offsets[e] * ldi;
		}
		jb.exps[E].xq = xq + (int64_t)offsets[E] * ldh;
		jb.exps[E].a = a + (int64_t)offsets[E] * ldi;
	}
	lk_run(&jb, th, l.max_tasks);
	lk_finish(&jb, th);
}

/* The version-1 layer: the same tasks on the calling thread, one expert at a time, in the
 * reference's workspace (moe_layer_workspace_bytes): the gathered tokens or bf16 x and a in the
 * expert region, GEMM 1's partial sums in xg. */
static inline void lk_layer(enum moe_isa isa, const struct moe_layer_params *p, const float *x, const void *logits,
			    const void *bias, const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights,
			    void *workspace)
{
	assert(moe_layer_validate(p, w) == MOE_OK);
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts;
	if (T == 0)
		return;
	assert(x && logits && y && ids && weights && workspace && ((uintptr_t)workspace & 63) == 0);
	const struct moe_threads *th = moe_threads_serial();
	const struct lk_ws ws = lk_ws(p, workspace);
	lk_route(isa, p, logits, bias, ids, weights, ws.counts, ws.offsets, ws.perm, ws.inv, th);
	struct lk_exp xe;
	int32_t order = 0;
	struct lk_task task;
	struct lk_job jb = { .p = p, .ep = &p->expert, .exps = &xe, .nexp = 1, .order = &order, .norder = 1,
			     .tasks = &task, .ntasks = 1, .isa = isa, .part = (char *)ws.xg, .inv = ws.inv, .out = ws.out,
			     .weights = weights, .y = y, .T = T };
	struct moe_expert_params eT = p->expert;
	eT.tokens = T;
	const struct ek_ws ews = ek_ws(&eT, ws.expert);
	(void)ews;
	for (int32_t e = 0; e <= E; e++) {
		const bool shared = e == E;
		if (shared && p->shared == MOE_SHARED_NONE)
			break;
		xe = (struct lk_exp){ .M = shared ? T : ws.counts[e], .I = shared ? p->shared_inter : p->expert.inter, .x = x,
				      .rows = shared ? NULL : ws.perm + ws.offsets[e], .K = p->route.top_k,
				      .y = shared ? y : ws.out + (int64_t)ws.offsets[e] * H,
				      .w = shared ? w->shared : &w->experts[e] };
		if (xe.M == 0)
			continue;
#if LK_PANELS
		if (lk_panel_path(&p->expert) && xe.M > LK_DECODE_MAX) {
			/* the expert region holds xq and a of T tokens in fp32: room for bf16 x and a */
			xe.xq = (uint16_t *)ews.xq;
			xe.a = (uint16_t *)ews.a;
			lk_panel_prepare(&xe, H);
			task = (struct lk_task){ 0, 0, (int32_t)lk_panels(true, &xe, H) };
			jb.gemm1 = true;
			lk_task_gemm(&jb, 0, 0);
			lk_panel_scan_a(&xe);
			task.q1 = (int32_t)lk_panels(false, &xe, H);
			jb.gemm1 = false;
			lk_task_gemm(&jb, 0, 0);
			continue;
		}
#endif
		lk_generic_expert(&jb, &xe, ws.xg, ws.expert);
	}
	lk_finish(&jb, th);
}

/* ---- expert_mt ---- */

static inline size_t lk_expert_mt_bytes(const struct moe_expert_params *p, int threads)
{
	const size_t ref = ek_round64(moe_expert_workspace_bytes(p));
	if (!lk_panel_path(p))
		return ref;
	const size_t M = (size_t)p->tokens, H = (size_t)p->hidden, I = (size_t)p->inter;
	const size_t n = threads < 1 ? 1 : (size_t)threads;
	const size_t panels = ek_round64(M * (H + 1) * 2) + ek_round64(M * (I + 1) * 2) + n * ek_round64(M * 32 * 4) +
			      ek_round64(sizeof(struct lk_task) * (8 * n + 1));
	/* at most LK_DECODE_MAX tokens run the generic path (lk_expert_mt), which takes the expert
	 * kernel's own workspace: the panel regions alone were smaller there (a decode kernel wrote
	 * past them) */
	return p->tokens > LK_DECODE_MAX ? panels : (panels > ref ? panels : ref);
}

static inline void lk_expert_mt(enum moe_isa isa, const struct moe_expert_params *p, const float *x,
				const struct moe_expert_weights *w, const struct moe_packed *packed, int32_t index, float *y,
				void *workspace, const struct moe_threads *th)
{
	if (p->tokens == 0)
		return;
	assert(x && y && workspace && ((uintptr_t)workspace & 63) == 0);
	struct moe_layer_params lp = { .expert = *p, .tokens = p->tokens };
	struct lk_job jb = { .p = &lp, .ep = p, .isa = isa, .nexp = 1 };
	struct lk_exp xe = { .M = p->tokens, .I = p->inter, .x = x, .y = y, .K = 1 };
	if (packed) {
		const struct lp_impl *im = lp_of(packed);
		assert(index >= 0 && index < packed->count && im->hidden == p->hidden && im->inter == p->inter);
		xe.pk = im->panels ? &im->exp[index] : NULL;
		xe.w = &im->exp[index].w;
	} else {
		assert(moe_expert_validate(p, w) == MOE_OK);
		xe.w = w;
	}
	int32_t order = 0;
	jb.exps = &xe;
	jb.order = &order;
	jb.norder = 1;
#if LK_PANELS
	if (lk_panel_path(p) && p->tokens > LK_DECODE_MAX) {
		const size_t M = (size_t)p->tokens, H = (size_t)p->hidden, I = (size_t)p->inter;
		const size_t n = (size_t)th->count;
		char *base = workspace;
		size_t at = 0;
		xe.xq = (uint16_t *)(base + at);
		at += ek_round64(M * (H + 1) * 2);
		xe.a = (uint16_t *)(base + at);
		at += ek_round64(M * (I + 1) * 2);
		jb.part = base + at;
		jb.part_bytes = ek_round64(M * 32 * 4);
		at += n * jb.part_bytes;
		jb.tasks = (struct lk_task *)(base + at);
		xe.panel = true;
		lk_run(&jb, th, (int64_t)(8 * n + 1));
		return;
	}
#endif
	lk_generic_expert(&jb, &xe, NULL, workspace);
}

/* ---- pack ---- */

struct lk_pack_job {
	const struct moe_expert_weights *w;
	struct lp_impl *im;
	char *mem;
	size_t per;
	int64_t H, I;
	enum moe_status *st;
};

static void lk_task_pack(void *arg, int64_t e, int thread)
{
	const struct lk_pack_job *pj = arg;
	(void)thread;
	struct lp_exp *x = &pj->im->exp[e];
#if LK_PANELS
	if (pj->im->panels) {
		const int64_t H = pj->H, I = pj->I;
		char *m = pj->mem + (size_t)e * pj->per;
		const size_t b1 = (size_t)lp_panels1(I) * lp_panel_words(H) * 4, b2 = (size_t)lp_panels2(H) * lp_panel_words(I) * 4;
		uint32_t *p1 = (uint32_t *)m, *p2 = (uint32_t *)(m + b1);
		uint8_t *f1 = (uint8_t *)(m + b1 + b2), *f2 = f1 + lp_panels1(I) * lp_kblocks(H);
		lk_pack_panels(&pj->w[e], H, I, p1, p2, f1, f2);
		x->p1 = p1;
		x->p2 = p2;
		x->f1 = f1;
		x->f2 = f2;
		/* and the plain copy below, for the experts of few tokens (the decode kernel) */
	}
#endif
	enum moe_status s = lp_copy_tensor(&pj->w[e].gate, &x->w.gate);
	if (s == MOE_OK)
		s = lp_copy_tensor(&pj->w[e].up, &x->w.up);
	if (s == MOE_OK)
		s = lp_copy_tensor(&pj->w[e].down, &x->w.down);
	pj->st[e] = s;
}

static inline enum moe_status lk_pack(const struct moe_backend *owner, const struct moe_expert_params *p, int32_t count,
				      const struct moe_expert_weights *w, const struct moe_threads *th, struct moe_packed **out)
{
	*out = NULL;
	struct moe_packed *pk = calloc(1, sizeof *pk);
	struct lp_impl *im = calloc(1, sizeof *im);
	struct lp_exp *exps = calloc((size_t)(count > 0 ? count : 1), sizeof *exps);
	enum moe_status *st = calloc((size_t)(count > 0 ? count : 1), sizeof *st);
	if (!pk || !im || !exps || !st) {
		free(pk);
		free(im);
		free(exps);
		free(st);
		return moe_fail(MOE_ERR_NOMEM, "pack: no memory for the handle of %d experts", (int)count);
	}
	im->exp = exps;
	im->hidden = p->hidden;
	im->inter = p->inter;
	im->panels = lk_panel_path(p);
	*pk = (struct moe_packed){ .owner = owner, .count = count, .format = *p, .impl = im };
	pk->format.tokens = 0;
	struct lk_pack_job pj = { .w = w, .im = im, .H = p->hidden, .I = p->inter, .st = st };
	if (im->panels) {
		const int64_t H = p->hidden, I = p->inter;
		pj.per = ek_round64((size_t)lp_panels1(I) * lp_panel_words(H) * 4 + (size_t)lp_panels2(H) * lp_panel_words(I) * 4 +
				    (size_t)(lp_panels1(I) * lp_kblocks(H) + lp_panels2(H) * lp_kblocks(I)));
		size_t total;
		if (__builtin_mul_overflow(pj.per, (size_t)count, &total) || !(im->mem = moe_alloc_large(total ? total : 64))) {
			free(st);
			lp_release(pk);
			return moe_fail(MOE_ERR_NOMEM, "pack: no memory for %d experts' bf16 panels (%zu bytes each)", (int)count,
					pj.per);
		}
		pj.mem = im->mem;
		pk->bytes = total;
	}
	moe_parallel_for(th, count, lk_task_pack, &pj);
	enum moe_status s = MOE_OK;
	for (int32_t e = 0; e < count; e++) {
		if (st[e] != MOE_OK && s == MOE_OK)
			s = st[e];
		pk->bytes += moe_qtensor_data_bytes(&exps[e].w.gate) + moe_qtensor_scale_bytes(&exps[e].w.gate) +
			     moe_qtensor_data_bytes(&exps[e].w.up) + moe_qtensor_scale_bytes(&exps[e].w.up) +
			     moe_qtensor_data_bytes(&exps[e].w.down) + moe_qtensor_scale_bytes(&exps[e].w.down);
	}
	free(st);
	if (s != MOE_OK) {
		lp_release(pk);
		return moe_fail(s, "pack: no memory for a copy of the expert weights");
	}
	*out = pk;
	return MOE_OK;
}
