/* The ggml baseline: the MoE layer as ggml's graph (llama.cpp's tensor library, its public API only),
 * at the bench's shape, on the bench's threads. Built only when ggml was found at configure time.
 *
 * Graph per call (T tokens, K slots): g = mul_mat_id(W_gate, x, ids), u = mul_mat_id(W_up, x, ids),
 * h = silu(g) * u (ggml_swiglu_split, the fused op llama.cpp's MoE uses), d = mul_mat_id(W_down, h,
 * ids), y = sum over k of d[:, k, :] * weights[k] (a mul by the weights, then K-1 adds of views);
 * the shared expert, when the model has one, as plain mul_mat, silu*mul, mul_mat, added (and halved
 * for AVERAGE). W_gate/W_up are [E][I][H], W_down [E][H][I] (ggml ne: H, I, E / I, H, E).
 *
 * Routing is not part of ggml's graph here: the call routes with moebench's dispatched router and
 * feeds ids and weights to the graph, so the rows compare the expert work (a ggml user routes inside
 * the graph with soft_max/top_k, usually slower than moebench's router).
 *
 * Pack (the ggml user's load): the experts' weights converted to the ggml type (bf16: the bits, or
 * the fp32 values rounded; q4_0: ggml_quantize_chunk of the fp32 values, dequantized by the
 * reference from any moebench format) and set into the CPU device's extra buffer type that repacks
 * the type for mul_mat_id when there is one (ggml's CPU_REPACK: q4_0 to interleaved rows on
 * AVX2/AVX-512), else the plain CPU buffer. Each handle owns its ggml CPU backend and a graph for
 * the last T it ran (rebuilt when T changes). Without a handle (the bench's plain path) the call
 * packs, runs and releases: correct, and as slow as that is.
 *
 * Threads: ggml_backend_cpu_set_n_threads(th->count). ggml's threads (OpenMP in llama.cpp's build)
 * inherit the calling thread's CPU mask, which the bench pins to one core; for the call the mask is
 * widened to the bench's first th->count cores (moe_bench_pick_cpus) and restored after, so ggml's
 * threads get one core each as the host's pool does. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include "bench.h"

#ifndef MOE_GGML_VERSION
#define MOE_GGML_VERSION "?"
#endif
#ifndef MOE_GGML_DIR
#define MOE_GGML_DIR "?"
#endif

#define GRAPH_NODES 256

struct ggml_pack {
	enum ggml_type type;
	int64_t H, I;
	int32_t E;
	ggml_backend_t be;
	struct ggml_context *wctx;
	ggml_backend_buffer_t wbuf;
	struct ggml_tensor *gate, *up, *down; /* [H, I, E], [H, I, E], [I, H, E]; or 2-D for a shared expert */
	const char *buffer_name;
	/* the graph of the last call */
	int64_t T;
	int32_t K;
	struct ggml_context *gctx;
	ggml_backend_buffer_t ibuf;
	struct ggml_tensor *x, *ids, *wts, *out;
	struct ggml_cgraph *gf;
	ggml_gallocr_t galloc;
	int32_t *ids_host;
};

static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
	(void)user;
	if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR)
		fputs(text, stderr);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void set_log(void)
{
	ggml_log_set(quiet_log, NULL);
}

static struct ggml_context *meta_ctx(size_t ntensors)
{
	struct ggml_init_params ip = { .mem_size = ggml_tensor_overhead() * ntensors +
						   ggml_graph_overhead_custom(GRAPH_NODES, false) + 4096,
				       .mem_buffer = NULL, .no_alloc = true };
	return ggml_init(ip);
}

static void drop_graph(struct ggml_pack *g)
{
	if (g->galloc)
		ggml_gallocr_free(g->galloc);
	if (g->ibuf)
		ggml_backend_buffer_free(g->ibuf);
	if (g->gctx)
		ggml_free(g->gctx);
	free(g->ids_host);
	g->galloc = NULL;
	g->ibuf = NULL;
	g->gctx = NULL;
	g->ids_host = NULL;
	g->T = 0;
}

static void free_pack(struct ggml_pack *g)
{
	if (!g)
		return;
	drop_graph(g);
	if (g->wbuf)
		ggml_backend_buffer_free(g->wbuf);
	if (g->wctx)
		ggml_free(g->wctx);
	if (g->be)
		ggml_backend_free(g->be);
	free(g);
}

/* The CPU device's extra buffer type that runs mul_mat_id on `type` repacked, or NULL. */
static ggml_backend_buffer_type_t repack_buft(ggml_backend_dev_t dev, enum ggml_type type, int64_t H, int64_t I,
					      int32_t E, int32_t K)
{
	ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
	ggml_backend_dev_get_extra_bufts_t get = (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(
		reg, "ggml_backend_dev_get_extra_bufts");
	if (!get)
		return NULL;
	struct ggml_context *c = meta_ctx(8);
	if (!c)
		return NULL;
	struct ggml_tensor *w = ggml_new_tensor_3d(c, type, H, I, E);
	struct ggml_tensor *x = ggml_new_tensor_3d(c, GGML_TYPE_F32, H, 1, 4);
	struct ggml_tensor *ids = ggml_new_tensor_2d(c, GGML_TYPE_I32, K, 4);
	struct ggml_tensor *mm = ggml_mul_mat_id(c, w, x, ids);
	ggml_backend_buffer_type_t found = NULL;
	for (ggml_backend_buffer_type_t *b = get(dev); b && *b && !found; b++) {
		ggml_backend_buffer_t buf = ggml_backend_buft_alloc_buffer(*b, 0);
		if (!buf)
			continue;
		w->buffer = buf;
		if (ggml_backend_dev_supports_op(dev, mm))
			found = *b;
		w->buffer = NULL;
		ggml_backend_buffer_free(buf);
	}
	ggml_free(c);
	return found;
}

/* One moebench weight matrix [rows][cols] as `type` rows, into dst (rows x ggml_row_size bytes). */
static enum moe_status convert(const struct moe_qtensor *q, enum ggml_type type, void *dst, float *tmp)
{
	const int64_t n = q->rows * q->cols;
	if (type == GGML_TYPE_BF16 && q->dtype == MOE_DTYPE_BF16 && q->scaling == MOE_SCALING_NONE) {
		memcpy(dst, q->data, (size_t)n * sizeof(moe_bf16)); /* the same 16 bits */
		return MOE_OK;
	}
	moe_dequantize__ref(q, tmp);
	if (type == GGML_TYPE_BF16)
		ggml_fp32_to_bf16_row(tmp, dst, n);
	else
		ggml_quantize_chunk(type, tmp, dst, 0, q->rows, q->cols, NULL);
	return MOE_OK;
}

/* Packs count experts of p (3-D tensors when count > 1 or always for routed experts). */
static enum moe_status ggml_pack_type(enum ggml_type type, const struct moe_backend *owner,
				      const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
				      struct moe_packed **out)
{
	pthread_once(&log_once, set_log);
	const int64_t H = p->hidden, I = p->inter;
	if (H % ggml_blck_size(type) || I % ggml_blck_size(type))
		return moe_fail(MOE_ERR_UNSUPPORTED, "ggml %s: H=%lld and I=%lld must be multiples of %lld",
				ggml_type_name(type), (long long)H, (long long)I, (long long)ggml_blck_size(type));
	struct ggml_pack *g = calloc(1, sizeof *g);
	struct moe_packed *pk = calloc(1, sizeof *pk);
	float *tmp = malloc((size_t)(H * I) * sizeof(float));
	if (!g || !pk || !tmp) {
		free(g);
		free(pk);
		free(tmp);
		return moe_fail(MOE_ERR_NOMEM, "ggml: no memory");
	}
	g->type = type;
	g->H = H;
	g->I = I;
	g->E = count;
	enum moe_status s = MOE_OK;
	g->be = ggml_backend_cpu_init();
	g->wctx = meta_ctx(4);
	if (!g->be || !g->wctx)
		s = moe_fail(MOE_ERR_INTERNAL, "ggml: cannot start the CPU backend");
	ggml_backend_buffer_type_t buft = NULL;
	if (s == MOE_OK) {
		g->gate = ggml_new_tensor_3d(g->wctx, type, H, I, count);
		g->up = ggml_new_tensor_3d(g->wctx, type, H, I, count);
		g->down = ggml_new_tensor_3d(g->wctx, type, I, H, count);
		buft = repack_buft(ggml_backend_get_device(g->be), type, H, I, count, 8);
		g->buffer_name = buft ? ggml_backend_buft_name(buft) : "CPU";
		g->wbuf = ggml_backend_alloc_ctx_tensors_from_buft(g->wctx, buft ? buft : ggml_backend_cpu_buffer_type());
		if (!g->wbuf)
			s = moe_fail(MOE_ERR_NOMEM, "ggml: cannot allocate %d experts of %s weights", (int)count,
				     ggml_type_name(type));
		else
			ggml_backend_buffer_set_usage(g->wbuf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
	}
	const size_t gate_b = ggml_row_size(type, H) * (size_t)I, down_b = ggml_row_size(type, I) * (size_t)H;
	/* ggml's repacking buffer takes a tensor whole: each matrix set is staged for all experts */
	uint8_t *stage = s == MOE_OK ? malloc((gate_b > down_b ? gate_b : down_b) * (size_t)count) : NULL;
	if (s == MOE_OK && !stage)
		s = moe_fail(MOE_ERR_NOMEM, "ggml: no memory to stage %d experts", (int)count);
	for (int m = 0; s == MOE_OK && m < 3; m++) {
		struct ggml_tensor *t = m == 0 ? g->gate : m == 1 ? g->up : g->down;
		const size_t b = m == 2 ? down_b : gate_b;
		for (int32_t e = 0; e < count; e++)
			convert(m == 0 ? &w[e].gate : m == 1 ? &w[e].up : &w[e].down, type, stage + (size_t)e * b, tmp);
		ggml_backend_tensor_set(t, stage, 0, b * (size_t)count);
	}
	free(stage);
	free(tmp);
	if (s != MOE_OK) {
		free_pack(g);
		free(pk);
		return s;
	}
	pk->owner = owner;
	pk->count = count;
	pk->format = *p;
	pk->bytes = ggml_backend_buffer_get_size(g->wbuf);
	pk->impl = g;
	*out = pk;
	return MOE_OK;
}

static void ggml_release(struct moe_packed *packed)
{
	if (!packed)
		return;
	free_pack(packed->impl);
	free(packed);
}

/* The shared expert's FFN of x [H, T] -> [H, T] (its handle holds one expert: [H, I, 1] tensors, which
 * mul_mat broadcasts over x). */
static struct ggml_tensor *shared_ffn(struct ggml_context *c, const struct ggml_pack *s, struct ggml_tensor *x)
{
	struct ggml_tensor *g = ggml_mul_mat(c, s->gate, x), *u = ggml_mul_mat(c, s->up, x);
	return ggml_mul_mat(c, s->down, ggml_swiglu_split(c, g, u));
}

static bool build(struct ggml_pack *g, const struct ggml_pack *sh, enum moe_shared_combine comb, int64_t T, int32_t K)
{
	drop_graph(g);
	g->gctx = meta_ctx(GRAPH_NODES + 8);
	if (!g->gctx)
		return false;
	struct ggml_context *c = g->gctx;
	const int64_t H = g->H;
	g->x = ggml_new_tensor_2d(c, GGML_TYPE_F32, H, T);
	g->ids = ggml_new_tensor_2d(c, GGML_TYPE_I32, K, T);
	g->wts = ggml_new_tensor_3d(c, GGML_TYPE_F32, 1, K, T);
	g->ibuf = ggml_backend_alloc_ctx_tensors(c, g->be);
	g->ids_host = malloc((size_t)(T * K) * sizeof *g->ids_host);
	if (!g->ibuf || !g->ids_host)
		return false;
	g->gf = ggml_new_graph_custom(c, GRAPH_NODES, false);
	struct ggml_tensor *cur = ggml_reshape_3d(c, g->x, H, 1, T);
	struct ggml_tensor *gt = ggml_mul_mat_id(c, g->gate, cur, g->ids);
	struct ggml_tensor *ut = ggml_mul_mat_id(c, g->up, cur, g->ids);
	struct ggml_tensor *d = ggml_mul_mat_id(c, g->down, ggml_swiglu_split(c, gt, ut), g->ids); /* [H, K, T] */
	d = ggml_mul(c, d, g->wts);
	struct ggml_tensor *y = ggml_view_2d(c, d, H, T, d->nb[2], 0);
	for (int32_t k = 1; k < K; k++)
		y = ggml_add(c, y, ggml_view_2d(c, d, H, T, d->nb[2], (size_t)k * d->nb[1]));
	if (sh) {
		y = ggml_add(c, y, shared_ffn(c, sh, g->x));
		if (comb == MOE_SHARED_AVERAGE)
			y = ggml_scale(c, y, 0.5f);
	}
	if (K == 1 && !sh)
		y = ggml_cont(c, y);
	g->out = y;
	ggml_build_forward_expand(g->gf, y);
	g->galloc = ggml_gallocr_new(ggml_backend_cpu_buffer_type());
	if (!g->galloc || !ggml_gallocr_alloc_graph(g->galloc, g->gf))
		return false;
	g->T = T;
	g->K = K;
	return true;
}

static void run_packed(const struct moe_layer_params *p, const float *x, const int32_t *ids, const float *weights,
		       struct ggml_pack *g, const struct ggml_pack *sh, float *y, const struct moe_threads *th)
{
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t K = p->route.top_k;
	if (g->T != T || g->K != K || !g->gctx) {
		if (!build(g, sh, p->shared, T, K)) {
			fprintf(stderr, "ggml baseline: graph construction failed (T=%lld)\n", (long long)T);
			abort(); /* a baseline that cannot run must not report a time */
		}
	} else {
		ggml_gallocr_alloc_graph(g->galloc, g->gf);
	}
	ggml_backend_tensor_set(g->x, x, 0, (size_t)(T * H) * sizeof(float));
	ggml_backend_tensor_set(g->ids, ids, 0, (size_t)(T * K) * sizeof(int32_t));
	ggml_backend_tensor_set(g->wts, weights, 0, (size_t)(T * K) * sizeof(float));
	const int n = th && th->count > 0 ? th->count : 1;
	ggml_backend_cpu_set_n_threads(g->be, n);
	cpu_set_t saved, wide;
	bool widened = false;
	if (n > 1 && pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0) {
		int cpus[256];
		moe_bench_pick_cpus(n < 256 ? n : 256, cpus);
		CPU_ZERO(&wide);
		for (int i = 0; i < n && i < 256; i++)
			CPU_SET(cpus[i], &wide);
		widened = pthread_setaffinity_np(pthread_self(), sizeof wide, &wide) == 0;
	}
	enum ggml_status st = ggml_backend_graph_compute(g->be, g->gf);
	if (widened)
		pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
	if (st != GGML_STATUS_SUCCESS) {
		fprintf(stderr, "ggml baseline: graph compute failed (%d)\n", (int)st);
		abort();
	}
	ggml_backend_tensor_get(g->out, y, 0, (size_t)(T * H) * sizeof(float));
}

static void route(const struct moe_layer_params *p, const void *logits, const void *bias, int32_t *ids,
		  float *weights, const struct moe_threads *th)
{
	moe_backend_route(moe_backend_dispatched(), &p->route, p->tokens, logits, bias, ids, weights, th);
}

static void layer_type(enum ggml_type type, const struct moe_backend *owner, const struct moe_layer_params *p,
		       const float *x, const void *logits, const void *bias, const struct moe_layer_weights *w,
		       const struct moe_packed *packed, const struct moe_packed *packed_shared, float *y, int32_t *ids,
		       float *weights, const struct moe_threads *th)
{
	if (p->tokens == 0)
		return;
	route(p, logits, bias, ids, weights, th);
	struct moe_packed *own = NULL, *own_shared = NULL;
	if (!packed) { /* plain weights: pack now (timed: this path is what it costs) */
		enum moe_status s = ggml_pack_type(type, owner, &p->expert, p->route.num_experts, w->experts, &own);
		if (s == MOE_OK && p->shared != MOE_SHARED_NONE) {
			struct moe_expert_params q = p->expert;
			q.inter = p->shared_inter;
			s = ggml_pack_type(type, owner, &q, 1, w->shared, &own_shared);
		}
		if (s != MOE_OK) {
			fprintf(stderr, "ggml baseline: %s\n", moe_last_error());
			abort();
		}
		packed = own;
		packed_shared = own_shared;
	}
	run_packed(p, x, ids, weights, packed->impl, packed_shared ? packed_shared->impl : NULL, y, th);
	ggml_release(own);
	ggml_release(own_shared);
}

static bool ggml_supports(enum ggml_type type, enum moe_op op, const void *problem)
{
	if (op != MOE_OP_LAYER)
		return false;
	const struct moe_layer_params *p = problem;
	const int64_t b = ggml_blck_size(type);
	return p->expert.hidden % b == 0 && p->expert.inter % b == 0 &&
	       (p->shared == MOE_SHARED_NONE || p->shared_inter % b == 0) && p->rsf_site == MOE_RSF_AT_ROUTER &&
	       p->route.top_k <= GRAPH_NODES / 4;
}

/* One table per ggml type: the pack's owner is the table that packed. */
#define GGML_TABLE(SUFFIX, TYPE, NAME, DESC)                                                                     \
	static const struct moe_backend ggml_##SUFFIX;                                                           \
	static enum moe_status pack_##SUFFIX(const struct moe_expert_params *p, int32_t count,                   \
					     const struct moe_expert_weights *w, const struct moe_threads *th,        \
					     struct moe_packed **out)                                                 \
	{                                                                                                         \
		(void)th;                                                                                         \
		return ggml_pack_type(TYPE, &ggml_##SUFFIX, p, count, w, out);                                    \
	}                                                                                                         \
	static void layer_mt_##SUFFIX(const struct moe_layer_params *p, const float *x, const void *logits,      \
				      const void *bias, const struct moe_layer_weights *w,                           \
				      const struct moe_packed *packed, const struct moe_packed *packed_shared,      \
				      float *y, int32_t *ids, float *weights, void *workspace,                     \
				      const struct moe_threads *th)                                                \
	{                                                                                                         \
		(void)workspace;                                                                                  \
		layer_type(TYPE, &ggml_##SUFFIX, p, x, logits, bias, w, packed, packed_shared, y, ids, weights, th); \
	}                                                                                                         \
	static void layer_##SUFFIX(const struct moe_layer_params *p, const float *x, const void *logits,         \
				   const void *bias, const struct moe_layer_weights *w, float *y, int32_t *ids,      \
				   float *weights, void *workspace)                                                   \
	{                                                                                                         \
		layer_mt_##SUFFIX(p, x, logits, bias, w, NULL, NULL, y, ids, weights, workspace,                  \
				  moe_threads_serial());                                                          \
	}                                                                                                         \
	static bool supports_##SUFFIX(enum moe_op op, const void *problem)                                       \
	{                                                                                                         \
		return ggml_supports(TYPE, op, problem);                                                          \
	}                                                                                                         \
	static const struct moe_backend ggml_##SUFFIX = {                                                        \
		.abi_version = MOE_BACKEND_ABI_VERSION,                                                           \
		.struct_size = sizeof(struct moe_backend),                                                        \
		.name = NAME,                                                                                     \
		.description = DESC,                                                                              \
		.layer = layer_##SUFFIX,                                                                          \
		.supports = supports_##SUFFIX,                                                                    \
		.pack = pack_##SUFFIX,                                                                            \
		.release = ggml_release,                                                                          \
		.layer_mt = layer_mt_##SUFFIX,                                                                    \
	};

GGML_TABLE(bf16, GGML_TYPE_BF16, "ggml-bf16", "baseline: ggml's MoE FFN graph (mul_mat_id), bf16 weights")
GGML_TABLE(q4_0, GGML_TYPE_Q4_0, "ggml-q4_0", "baseline: ggml's MoE FFN graph (mul_mat_id), q4_0 weights, repacked")

const struct moe_backend *moe_bench_baseline_ggml_bf16(void)
{
	return &ggml_bf16;
}

const struct moe_backend *moe_bench_baseline_ggml_q4_0(void)
{
	return &ggml_q4_0;
}

const char *moe_bench_ggml_status(void)
{
	return "ggml " MOE_GGML_VERSION " (" MOE_GGML_DIR ")";
}
