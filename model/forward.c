/* The Cohere2-MoE forward pass (forward.h): embedding, per layer one norm feeding attention and the
 * MLP in parallel, x = (x + attn) + mlp in fp32, final norm, tied LM head times logit_scale.
 *
 * Which code runs: the REF path takes every op from the reference table and this folder's plain C
 * linear and attention, and where a double-precision twin exists it gives the values: the norms
 * (moe_norm_ref_f64), the dense MLP (moe_expert_ref_f64) and the MoE block's experts and combine
 * (moe_layer_ref_f64 on the reference router's ids and weights), each rounded once to fp32; the
 * OPT path takes norm, route, expert and layer from the chosen table
 * (ops it lacks from the dispatched one) and the AVX-512 linear and attention when the CPU has
 * AVX-512. Expert weights are packed once, at create, by the table that runs them, unless the model
 * already holds handles of that table. Norms are run per block of rows as tasks, the rest of the ops
 * split their own work; no result depends on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward_impl.h"
#include "moe/classify.h"
#include "moe/memory.h"
#include "moe/registry.h"

struct moe_forward {
	const struct moe_model *m;
	struct moe_fwd_options opt;
	const struct moe_backend *t_norm, *t_route, *t_expert, *t_layer;
	moe_linear_fn *linear;
	moe_attention_fn *attention;
	struct moe_kv_cache kv;
	struct moe_rope rope;
	bool have_rope;
	int64_t pos;
	struct moe_route_params route;
	/* per layer: the handles the runs pass (model's or ours), and the ones we made and release */
	const struct moe_packed **pk_exp, **pk_sh, **pk_dense;
	struct moe_packed **own_exp, **own_sh, **own_dense;
	/* buffers, grown to the largest T seen */
	int64_t cap;
	float *x, *h, *q, *k, *v, *att, *a, *mo, *rl, *wts, *xf;
	int32_t *ids;
	float *yslot, *xg, *yg, *ysh;
	int32_t *counts, *offsets, *perm;
	double *yd, *bd; /* reference path: the double-precision twins' outputs and bounds, T x H */
	float *scratch;
	int scratch_threads;
	void *ws;
	size_t ws_bytes;
	double phase[MOE_PH_COUNT];
};

static const char *const phase_names[MOE_PH_COUNT] = {
	"norms", "attn_proj", "attention", "router_gemm", "moe_layer", "routing", "experts",
	"shared_expert", "combine", "dense_mlp", "lm_head",
};

const char *moe_fwd_phase_name(enum moe_fwd_phase p)
{
	return (unsigned)p < MOE_PH_COUNT ? phase_names[p] : "?";
}

bool moe_linear_avx512_available(void)
{
	return moe_isa_effective() >= MOE_ISA_AVX512;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum moe_routing_method moe_forward_method(const struct moe_model_config *c, enum moe_profile profile,
					   const char **why)
{
	const enum moe_scoring sc = c->selection == MOE_MODEL_SELECT_SIGMOID ? MOE_SCORING_SIGMOID : MOE_SCORING_SOFTMAX;
	/* transformers renormalizes the softmax top-k even without norm_topk_prob (routing.md) */
	if (profile == MOE_PROFILE_HF && sc == MOE_SCORING_SOFTMAX && !c->norm_topk_prob) {
		if (why)
			*why = "hf profile: softmax top-k renormalized whatever norm_topk_prob says: RenormalizeNaive";
		return MOE_ROUTE_RENORMALIZE_NAIVE;
	}
	return moe_classify_sglang_cohere2(sc, c->norm_topk_prob, why);
}

int32_t moe_argmax_f32(const float *v, int64_t n)
{
	int64_t best = 0;
	for (int64_t i = 1; i < n; i++)
		if (v[i] > v[best] || (isnan(v[best]) && !isnan(v[i])))
			best = i;
	return (int32_t)best;
}

static struct moe_layer_params layer_params(const struct moe_forward *f, int64_t T)
{
	const struct moe_model_config *c = &f->m->cfg;
	struct moe_layer_params lp = { 0 };
	lp.route = f->route;
	lp.expert = f->m->expert_params;
	lp.expert.tokens = 0;
	lp.expert.hidden = c->hidden_size;
	lp.expert.inter = c->intermediate_size;
	lp.rsf_site = MOE_RSF_AT_ROUTER;
	lp.shared = c->num_shared_experts > 0 ? c->shared_combine : MOE_SHARED_NONE;
	lp.shared_inter = c->num_shared_experts > 0 ? c->intermediate_size * c->num_shared_experts : 0;
	lp.tokens = T;
	return lp;
}

static struct moe_expert_params expert_params(const struct moe_forward *f, int64_t inter, int64_t T)
{
	struct moe_expert_params ep = f->m->expert_params;
	ep.tokens = T;
	ep.hidden = f->m->cfg.hidden_size;
	ep.inter = inter;
	return ep;
}

static const struct moe_backend *pick(const struct moe_backend *b, enum moe_op op)
{
	if (b && moe_backend_slot(b, op))
		return b;
	return moe_backend_dispatched();
}

static bool plain_weights(const struct moe_expert_weights *w)
{
	return w->gate.data && w->up.data && w->down.data;
}

/* The handle the run passes for layer l: the model's when the running table made it, else ours. */
static enum moe_status pack_one(const struct moe_backend *b, const struct moe_expert_params *ep, int32_t count,
				const struct moe_expert_weights *w, const struct moe_packed *model_pk,
				const struct moe_threads *th, const struct moe_packed **use, struct moe_packed **own)
{
	*use = NULL;
	*own = NULL;
	if (model_pk && model_pk->owner == b) {
		*use = model_pk;
		return MOE_OK;
	}
	for (int32_t e = 0; e < count; e++)
		if (!plain_weights(&w[e]))
			return moe_fail(MOE_ERR_INVALID_ARG, "forward: expert %d has no plain weights and no handle of "
					"backend %s", (int)e, b->name);
	enum moe_status s = moe_backend_pack(b, ep, count, w, th, own);
	if (s == MOE_ERR_UNSUPPORTED) { /* the backend runs these plain */
		*own = NULL;
		return MOE_OK;
	}
	*use = *own;
	return s;
}

enum moe_status moe_forward_create(const struct moe_model *m, const struct moe_fwd_options *opt,
				   const struct moe_threads *th, struct moe_forward **out)
{
	if (!out)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: no output pointer");
	*out = NULL;
	if (!m || !opt)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: no model or options");
	const struct moe_model_config *c = &m->cfg;
	if (opt->context < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: context must be >= 1 (got %lld)", (long long)opt->context);
	if (c->num_hidden_layers < 1 || c->num_hidden_layers > MOE_MODEL_MAX_LAYERS || c->hidden_size < 1 ||
	    c->vocab_size < 1 || c->num_attention_heads < 1 || c->num_key_value_heads < 1 || c->head_dim < 2 ||
	    c->num_attention_heads % c->num_key_value_heads)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: config has %d layers, H=%lld, V=%lld, %d heads, %d kv heads, "
				"head_dim %d (need >= 1 each, heads a multiple of kv heads)", (int)c->num_hidden_layers,
				(long long)c->hidden_size, (long long)c->vocab_size, (int)c->num_attention_heads,
				(int)c->num_key_value_heads, (int)c->head_dim);
	struct moe_forward *f = calloc(1, sizeof *f);
	if (!f)
		return moe_fail(MOE_ERR_NOMEM, "forward: no memory");
	f->m = m;
	f->opt = *opt;
	const int32_t L = c->num_hidden_layers;
	enum moe_status s = MOE_OK;
	if (opt->path == MOE_FWD_REF) {
		f->t_norm = f->t_route = f->t_expert = f->t_layer = moe_backend_reference();
		f->linear = moe_linear__ref;
		f->attention = moe_attention__ref;
		f->opt.split_moe = false;
	} else {
		f->t_norm = pick(opt->backend, MOE_OP_NORM);
		f->t_route = pick(opt->backend, MOE_OP_ROUTE);
		f->t_expert = pick(opt->backend, MOE_OP_EXPERT);
		f->t_layer = pick(opt->backend, MOE_OP_LAYER);
		const bool v = moe_linear_avx512_available();
		f->linear = v ? moe_linear__avx512 : moe_linear__ref;
		f->attention = v && c->head_dim % 16 == 0 && c->head_dim <= 256 ? moe_attention__avx512 : moe_attention__ref;
	}
	const char *why = NULL;
	const enum moe_routing_method method = moe_forward_method(c, opt->profile, &why);
	f->route = moe_route_params_default(method, c->num_experts > 0 ? c->num_experts : 1,
					    c->num_experts_per_tok > 0 ? c->num_experts_per_tok : 1);
	f->route.profile = opt->profile;
	f->route.renormalize = c->norm_topk_prob;
	f->route.logits_dtype = MOE_DTYPE_F32;
	f->route.bias_dtype = MOE_DTYPE_NONE;

	f->pk_exp = calloc((size_t)L, sizeof *f->pk_exp);
	f->pk_sh = calloc((size_t)L, sizeof *f->pk_sh);
	f->pk_dense = calloc((size_t)L, sizeof *f->pk_dense);
	f->own_exp = calloc((size_t)L, sizeof *f->own_exp);
	f->own_sh = calloc((size_t)L, sizeof *f->own_sh);
	f->own_dense = calloc((size_t)L, sizeof *f->own_dense);
	if (!f->pk_exp || !f->pk_sh || !f->pk_dense || !f->own_exp || !f->own_sh || !f->own_dense) {
		s = moe_fail(MOE_ERR_NOMEM, "forward: no memory");
		goto fail;
	}
	for (int32_t l = 0; l < L && s == MOE_OK; l++) {
		const struct moe_model_layer *ly = &m->layers[l];
		if (c->dense[l]) {
			const struct moe_expert_params ep = expert_params(f, c->prefix_dense_intermediate_size, 0);
			s = moe_expert_validate(&ep, &ly->dense_mlp);
			if (s != MOE_OK) {
				s = moe_fail(s, "layer %d dense MLP: %s", (int)l, moe_last_error());
				break;
			}
			s = pack_one(f->t_expert, &ep, 1, &ly->dense_mlp, ly->packed_dense, th, &f->pk_dense[l], &f->own_dense[l]);
			continue;
		}
		const struct moe_layer_params lp = layer_params(f, 1);
		const struct moe_layer_weights lw = { ly->experts, lp.shared != MOE_SHARED_NONE ? &ly->shared : NULL };
		s = moe_layer_validate(&lp, &lw);
		if (s != MOE_OK) {
			s = moe_fail(s, "layer %d MoE block (routing %s, profile %s): %s", (int)l,
				     moe_routing_method_name(method), moe_profile_name(opt->profile), moe_last_error());
			break;
		}
		if (ly->router.rows != c->num_experts || ly->router.cols != c->hidden_size) {
			s = moe_fail(MOE_ERR_INVALID_ARG, "layer %d router is [%lld][%lld], expected [%d][%lld]", (int)l,
				     (long long)ly->router.rows, (long long)ly->router.cols, (int)c->num_experts,
				     (long long)c->hidden_size);
			break;
		}
		s = pack_one(f->t_layer, &lp.expert, c->num_experts, ly->experts, ly->packed_experts, th, &f->pk_exp[l],
			     &f->own_exp[l]);
		if (s == MOE_OK && lp.shared != MOE_SHARED_NONE) {
			struct moe_expert_params sp = lp.expert;
			sp.inter = lp.shared_inter;
			s = pack_one(f->t_layer, &sp, 1, &ly->shared, ly->packed_shared, th, &f->pk_sh[l], &f->own_sh[l]);
		}
		/* a split run hands the layer table's handles to the expert op */
		if (s == MOE_OK && f->opt.split_moe && f->t_expert != f->t_layer)
			f->opt.split_moe = false;
	}
	if (s != MOE_OK)
		goto fail;
	s = moe_kv_cache_init(&f->kv, L, opt->context, (int64_t)c->num_key_value_heads * c->head_dim);
	if (s != MOE_OK)
		goto fail;
	bool any_rope = false;
	for (int32_t l = 0; l < L; l++)
		any_rope |= c->rope[l];
	if (any_rope) {
		s = moe_rope_init(&f->rope, opt->context, c->head_dim, c->rope_theta);
		if (s != MOE_OK)
			goto fail;
		f->have_rope = true;
	}
	*out = f;
	return MOE_OK;
fail:
	moe_forward_free(f);
	return s;
}

static void free_buffers(struct moe_forward *f)
{
	float **fl[] = { &f->x, &f->h, &f->q, &f->k, &f->v, &f->att, &f->a, &f->mo, &f->rl, &f->wts, &f->xf,
			 &f->yslot, &f->xg, &f->yg, &f->ysh };
	for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
		free(*fl[i]);
		*fl[i] = NULL;
	}
	free(f->yd);
	free(f->bd);
	f->yd = f->bd = NULL;
	free(f->ids);
	free(f->counts);
	free(f->offsets);
	free(f->perm);
	f->ids = f->counts = f->offsets = f->perm = NULL;
	f->cap = 0;
}

void moe_forward_free(struct moe_forward *f)
{
	if (!f)
		return;
	const int32_t L = f->m->cfg.num_hidden_layers;
	for (int32_t l = 0; l < L; l++) {
		if (f->own_exp)
			moe_backend_release(f->t_layer, f->own_exp[l]);
		if (f->own_sh)
			moe_backend_release(f->t_layer, f->own_sh[l]);
		if (f->own_dense)
			moe_backend_release(f->t_expert, f->own_dense[l]);
	}
	free(f->pk_exp);
	free(f->pk_sh);
	free(f->pk_dense);
	free(f->own_exp);
	free(f->own_sh);
	free(f->own_dense);
	free_buffers(f);
	free(f->scratch);
	free(f->ws);
	moe_kv_cache_free(&f->kv);
	if (f->have_rope)
		moe_rope_free(&f->rope);
	free(f);
}

void moe_forward_reset(struct moe_forward *f)
{
	f->pos = 0;
}

int64_t moe_forward_position(const struct moe_forward *f)
{
	return f->pos;
}

const struct moe_model *moe_forward_model(const struct moe_forward *f)
{
	return f->m;
}

enum moe_status moe_forward_seek(struct moe_forward *f, int64_t pos)
{
	if (pos < 0 || pos >= f->opt.context)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: position %lld outside the context of %lld", (long long)pos,
				(long long)f->opt.context);
	f->pos = pos;
	return MOE_OK;
}

static double qbytes(const struct moe_qtensor *q)
{
	return q->data ? (double)moe_qtensor_data_bytes(q) + (double)moe_qtensor_scale_bytes(q) : 0.0;
}

static double ebytes(const struct moe_expert_weights *w)
{
	return qbytes(&w->gate) + qbytes(&w->up) + qbytes(&w->down);
}

double moe_forward_decode_bytes(const struct moe_forward *f, int64_t pos)
{
	const struct moe_model *m = f->m;
	const struct moe_model_config *c = &m->cfg;
	double b = qbytes(&m->lm_head) + qbytes(&m->final_norm) + (double)c->hidden_size * 4.0; /* + embedding row */
	for (int32_t l = 0; l < c->num_hidden_layers; l++) {
		const struct moe_model_layer *ly = &m->layers[l];
		b += qbytes(&ly->input_norm) + qbytes(&ly->q_proj) + qbytes(&ly->k_proj) + qbytes(&ly->v_proj) +
		     qbytes(&ly->o_proj);
		/* the weights' bytes in their format, not a packed handle's: a handle may hold more than
		 * one layout (the bf16 panels and the rows the decode kernel streams: twice the bytes, of
		 * which a decode token reads one) */
		if (c->dense[l]) {
			b += ebytes(&ly->dense_mlp);
		} else {
			b += qbytes(&ly->router);
			b += ebytes(&ly->experts[0]) * c->num_experts_per_tok;
			if (c->num_shared_experts > 0)
				b += ebytes(&ly->shared);
		}
		const int64_t W = c->sliding[l] ? c->sliding_window + (f->opt.window == MOE_WINDOW_PLUS1 ? 1 : 0) : 0;
		const int64_t keys = (pos + 1) - moe_attn_first_key(pos, W);
		b += 2.0 * (double)keys * (double)f->kv.stride * 4.0;
	}
	return b;
}

const double *moe_forward_phase_seconds(const struct moe_forward *f)
{
	return f->phase;
}

void moe_forward_phase_clear(struct moe_forward *f)
{
	memset(f->phase, 0, sizeof f->phase);
}

static enum moe_status grow(struct moe_forward *f, int64_t T, int threads)
{
	const struct moe_model_config *c = &f->m->cfg;
	if (T > f->cap) {
		free_buffers(f);
		const size_t H = (size_t)c->hidden_size, nq = (size_t)c->num_attention_heads * (size_t)c->head_dim;
		const size_t nkv = (size_t)c->num_key_value_heads * (size_t)c->head_dim, t = (size_t)T;
		const size_t E = c->num_experts > 0 ? (size_t)c->num_experts : 1;
		const size_t K = c->num_experts_per_tok > 0 ? (size_t)c->num_experts_per_tok : 1;
		f->x = malloc(t * H * sizeof(float));
		f->h = malloc(t * H * sizeof(float));
		f->a = malloc(t * H * sizeof(float));
		f->mo = malloc(t * H * sizeof(float));
		f->xf = malloc(t * H * sizeof(float));
		f->q = malloc(t * nq * sizeof(float));
		f->att = malloc(t * nq * sizeof(float));
		f->k = malloc(t * nkv * sizeof(float));
		f->v = malloc(t * nkv * sizeof(float));
		f->rl = malloc(t * E * sizeof(float));
		f->wts = malloc(t * K * sizeof(float));
		f->ids = malloc(t * K * sizeof(int32_t));
		bool ok = f->x && f->h && f->a && f->mo && f->xf && f->q && f->att && f->k && f->v && f->rl && f->wts && f->ids;
		if (ok && f->opt.path == MOE_FWD_REF) {
			f->yd = malloc(t * H * sizeof(double));
			f->bd = malloc(t * H * sizeof(double));
			ok = f->yd && f->bd;
		}
		if (ok && f->opt.split_moe) {
			f->yslot = malloc(t * K * H * sizeof(float));
			f->xg = malloc(t * H * sizeof(float));
			f->yg = malloc(t * H * sizeof(float));
			f->ysh = malloc(t * H * sizeof(float));
			f->counts = malloc(E * sizeof(int32_t));
			f->offsets = malloc((E + 1) * sizeof(int32_t));
			f->perm = malloc(t * K * sizeof(int32_t));
			ok = f->yslot && f->xg && f->yg && f->ysh && f->counts && f->offsets && f->perm;
		}
		if (!ok) {
			free_buffers(f);
			return moe_fail(MOE_ERR_NOMEM, "forward: no memory for the activations of %lld tokens", (long long)T);
		}
		f->cap = T;
	}
	if (threads > f->scratch_threads) {
		free(f->scratch);
		f->scratch = malloc((size_t)threads * (size_t)f->opt.context * sizeof(float));
		if (!f->scratch) {
			f->scratch_threads = 0;
			return moe_fail(MOE_ERR_NOMEM, "forward: no memory for attention scratch");
		}
		f->scratch_threads = threads;
	}
	return MOE_OK;
}

static enum moe_status need_ws(struct moe_forward *f, size_t bytes)
{
	if (bytes <= f->ws_bytes)
		return MOE_OK;
	free(f->ws);
	const size_t b = (bytes + 63) / 64 * 64;
	f->ws = moe_alloc_large(b);
	f->ws_bytes = f->ws ? b : 0;
	return f->ws ? MOE_OK : moe_fail(MOE_ERR_NOMEM, "forward: no memory for a %zu-byte workspace", bytes);
}

struct norm_task {
	const struct moe_backend *b;
	struct moe_norm_params p; /* rows = all rows */
	const float *x;
	const void *w;
	float *y;
};

#define NORM_ROWS 4

static void norm_task_fn(void *arg, int64_t task, int thread)
{
	(void)thread;
	const struct norm_task *a = arg;
	struct moe_norm_params p = a->p;
	const int64_t r0 = task * NORM_ROWS;
	p.rows = a->p.rows - r0 < NORM_ROWS ? a->p.rows - r0 : NORM_ROWS;
	a->b->norm(&p, a->x + r0 * p.cols, a->w, a->y + r0 * p.cols);
}

static void run_norm(struct moe_forward *f, const struct moe_qtensor *w, int64_t T, const float *x, float *y,
		     const struct moe_threads *th)
{
	const struct moe_model_config *c = &f->m->cfg;
	struct norm_task a = { f->t_norm, { c->norm, T, c->hidden_size, c->norm_eps, MOE_DTYPE_F32, w->dtype, MOE_DTYPE_F32 },
			       x, w->data, y };
	if (f->opt.path == MOE_FWD_REF) { /* the double twin, rounded once to fp32 */
		moe_norm_ref_f64(&a.p, x, w->data, f->yd);
		for (int64_t i = 0; i < T * c->hidden_size; i++)
			y[i] = (float)f->yd[i];
		return;
	}
	moe_parallel_for(th, (T + NORM_ROWS - 1) / NORM_ROWS, norm_task_fn, &a);
}

static void embed_rows(const struct moe_qtensor *e, const int32_t *ids, int64_t T, float *x)
{
	const int64_t H = e->cols;
	for (int64_t t = 0; t < T; t++) {
		if (e->dtype == MOE_DTYPE_F32) {
			memcpy(x + t * H, (const float *)e->data + (int64_t)ids[t] * H, (size_t)H * sizeof(float));
		} else {
			const moe_bf16 *r = (const moe_bf16 *)e->data + (int64_t)ids[t] * H;
			for (int64_t i = 0; i < H; i++)
				x[t * H + i] = moe_bf16_to_f32(r[i]);
		}
	}
}

/* split MoE: route, the routed experts on their gathered tokens, the shared expert, the combine */
static void moe_split(struct moe_forward *f, int32_t l, int64_t T, const struct moe_threads *th, double *t0)
{
	const struct moe_model_config *c = &f->m->cfg;
	const struct moe_model_layer *ly = &f->m->layers[l];
	const int32_t E = c->num_experts, K = c->num_experts_per_tok;
	const int64_t H = c->hidden_size;
	const bool tm = f->opt.timing;
	moe_backend_route(f->t_route, &f->route, T, f->rl, NULL, f->ids, f->wts, th);
	if (tm) {
		double t1 = now();
		f->phase[MOE_PH_ROUTING] += t1 - *t0;
		*t0 = t1;
	}
	moe_dispatch__ref(E, T, K, f->ids, f->counts, f->offsets, f->perm);
	for (int32_t e = 0; e < E; e++) {
		const int32_t n = f->counts[e];
		if (!n)
			continue;
		for (int32_t i = 0; i < n; i++)
			memcpy(f->xg + (int64_t)i * H, f->h + (int64_t)(f->perm[f->offsets[e] + i] / K) * H,
			       (size_t)H * sizeof(float));
		const struct moe_expert_params ep = expert_params(f, c->intermediate_size, n);
		moe_backend_expert(f->t_expert, &ep, f->xg, &ly->experts[e], f->pk_exp[l], e, f->yg, f->ws, th);
		for (int32_t i = 0; i < n; i++)
			memcpy(f->yslot + (int64_t)f->perm[f->offsets[e] + i] * H, f->yg + (int64_t)i * H,
			       (size_t)H * sizeof(float));
	}
	if (tm) {
		double t1 = now();
		f->phase[MOE_PH_EXPERTS] += t1 - *t0;
		*t0 = t1;
	}
	const bool sh = c->num_shared_experts > 0 && c->shared_combine != MOE_SHARED_NONE;
	if (sh) {
		const struct moe_expert_params ep = expert_params(f, c->intermediate_size * c->num_shared_experts, T);
		moe_backend_expert(f->t_expert, &ep, f->h, &ly->shared, f->pk_sh[l], 0, f->ysh, f->ws, th);
		if (tm) {
			double t1 = now();
			f->phase[MOE_PH_SHARED] += t1 - *t0;
			*t0 = t1;
		}
	}
	for (int64_t t = 0; t < T; t++) {
		float *y = f->mo + t * H;
		for (int64_t i = 0; i < H; i++) {
			float acc = 0.0f;
			for (int32_t k = 0; k < K; k++)
				acc += f->wts[t * K + k] * f->yslot[(t * K + k) * H + i];
			if (sh)
				acc = c->shared_combine == MOE_SHARED_AVERAGE ? (acc + f->ysh[t * H + i]) * 0.5f
									      : acc + f->ysh[t * H + i];
			y[i] = acc;
		}
	}
}

static size_t split_ws(const struct moe_forward *f, int64_t T, int threads)
{
	const struct moe_model_config *c = &f->m->cfg;
	struct moe_expert_params ep = expert_params(f, c->intermediate_size, T);
	size_t a = moe_backend_workspace(f->t_expert, MOE_OP_EXPERT, &ep, threads);
	if (c->num_shared_experts > 0) {
		ep.inter = c->intermediate_size * c->num_shared_experts;
		const size_t b = moe_backend_workspace(f->t_expert, MOE_OP_EXPERT, &ep, threads);
		a = b > a ? b : a;
	}
	return a;
}

enum moe_status moe_forward_run(struct moe_forward *f, const int32_t *ids, int64_t T, float *logits,
				float *hidden, const struct moe_threads *th)
{
	if (!f || !ids || T < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: %s", !f ? "no state" : !ids ? "no ids" : "no tokens");
	if (!th)
		th = moe_threads_serial();
	const struct moe_model *m = f->m;
	const struct moe_model_config *c = &m->cfg;
	for (int64_t t = 0; t < T; t++)
		if (ids[t] < 0 || ids[t] >= c->vocab_size)
			return moe_fail(MOE_ERR_INVALID_ARG, "forward: token id %d at index %lld is outside the vocabulary "
					"[0, %lld)", (int)ids[t], (long long)t, (long long)c->vocab_size);
	if (f->pos + T > f->opt.context)
		return moe_fail(MOE_ERR_INVALID_ARG, "forward: %lld more tokens at position %lld overflow the context "
				"of %lld", (long long)T, (long long)f->pos, (long long)f->opt.context);
	enum moe_status s = grow(f, T, th->count);
	if (s != MOE_OK)
		return s;
	const int64_t H = c->hidden_size, hd = c->head_dim;
	const int32_t nh = c->num_attention_heads, nkv = c->num_key_value_heads;
	const bool tm = f->opt.timing;
	double t0 = tm ? now() : 0.0;
#define LAP(ph)                                   \
	do {                                      \
		if (tm) {                         \
			double t1_ = now();       \
			f->phase[ph] += t1_ - t0; \
			t0 = t1_;                 \
		}                                 \
	} while (0)

	embed_rows(&m->embed, ids, T, f->x);
	for (int32_t l = 0; l < c->num_hidden_layers; l++) {
		const struct moe_model_layer *ly = &m->layers[l];
		run_norm(f, &ly->input_norm, T, f->x, f->h, th);
		LAP(MOE_PH_NORM);
		f->linear(&ly->q_proj, T, f->h, f->q, th);
		f->linear(&ly->k_proj, T, f->h, f->k, th);
		f->linear(&ly->v_proj, T, f->h, f->v, th);
		LAP(MOE_PH_ATTN_PROJ);
		if (c->rope[l]) {
			moe_rope_apply(&f->rope, T, f->pos, nh, (int32_t)hd, f->q);
			moe_rope_apply(&f->rope, T, f->pos, nkv, (int32_t)hd, f->k);
		}
		const int64_t stride = f->kv.stride;
		memcpy(moe_kv_k(&f->kv, l) + f->pos * stride, f->k, (size_t)(T * stride) * sizeof(float));
		memcpy(moe_kv_v(&f->kv, l) + f->pos * stride, f->v, (size_t)(T * stride) * sizeof(float));
		const int64_t W = c->sliding[l] ? c->sliding_window + (f->opt.window == MOE_WINDOW_PLUS1 ? 1 : 0) : 0;
		const struct moe_attn_params ap = { nh, nkv, (int32_t)hd, W, stride, (float)(1.0 / sqrt((double)hd)) };
		f->attention(&ap, T, f->pos, f->q, moe_kv_k(&f->kv, l), moe_kv_v(&f->kv, l), f->att, f->scratch, th);
		LAP(MOE_PH_ATTN);
		f->linear(&ly->o_proj, T, f->att, f->a, th);
		LAP(MOE_PH_ATTN_PROJ);
		if (c->dense[l]) {
			const struct moe_expert_params ep = expert_params(f, c->prefix_dense_intermediate_size, T);
			if ((s = need_ws(f, moe_backend_workspace(f->t_expert, MOE_OP_EXPERT, &ep, th->count))) != MOE_OK)
				return s;
			if (f->opt.path == MOE_FWD_REF) {
				if ((s = moe_expert_ref_f64(&ep, f->h, &ly->dense_mlp, f->yd, f->bd)) != MOE_OK)
					return moe_fail(s, "layer %d dense MLP: %s", (int)l, moe_last_error());
				for (int64_t i = 0; i < T * H; i++)
					f->mo[i] = (float)f->yd[i];
			} else {
				moe_backend_expert(f->t_expert, &ep, f->h, &ly->dense_mlp, f->pk_dense[l], 0, f->mo, f->ws, th);
			}
			LAP(MOE_PH_DENSE_MLP);
		} else {
			f->linear(&ly->router, T, f->h, f->rl, th);
			LAP(MOE_PH_ROUTER);
			if (f->opt.split_moe) {
				if ((s = need_ws(f, split_ws(f, T, th->count))) != MOE_OK)
					return s;
				moe_split(f, l, T, th, &t0);
			} else {
				const struct moe_layer_params lp = layer_params(f, T);
				const struct moe_layer_weights lw = { ly->experts, lp.shared != MOE_SHARED_NONE ? &ly->shared : NULL };
				if ((s = need_ws(f, moe_backend_workspace(f->t_layer, MOE_OP_LAYER, &lp, th->count))) != MOE_OK)
					return s;
				moe_backend_layer(f->t_layer, &lp, f->h, f->rl, NULL, &lw, f->pk_exp[l], f->pk_sh[l], f->mo,
						  f->ids, f->wts, f->ws, th);
				if (f->opt.path == MOE_FWD_REF) {
					/* the reference's routing, then the experts and the combine in double */
					if ((s = moe_layer_ref_f64(&lp, f->h, f->ids, f->wts, &lw, f->yd, f->bd, NULL)) != MOE_OK)
						return moe_fail(s, "layer %d MoE: %s", (int)l, moe_last_error());
					for (int64_t i = 0; i < T * H; i++)
						f->mo[i] = (float)f->yd[i];
				}
				LAP(MOE_PH_MOE);
			}
		}
		for (int64_t i = 0; i < T * H; i++)
			f->x[i] = (f->x[i] + f->a[i]) + f->mo[i];
		if (hidden)
			memcpy(hidden + (size_t)l * (size_t)(T * H), f->x, (size_t)(T * H) * sizeof(float));
		LAP(MOE_PH_COMBINE);
	}
	if (logits) {
		const int64_t r0 = f->opt.logits_last ? T - 1 : 0, n = T - r0;
		run_norm(f, &m->final_norm, n, f->x + r0 * H, f->xf, th);
		LAP(MOE_PH_NORM);
		f->linear(&m->lm_head, n, f->xf, logits, th);
		const float ls = c->logit_scale;
		for (int64_t i = 0; i < n * c->vocab_size; i++)
			logits[i] *= ls;
		LAP(MOE_PH_LM_HEAD);
	}
#undef LAP
	f->pos += T;
	return MOE_OK;
}
