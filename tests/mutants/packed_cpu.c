/* The correct ABI 2 slots the packed/threaded mutants break (packed_cpu.h), on top of the
 * reference expert and router. Handle: one 64-byte-aligned arena holding a deep copy of every
 * tensor (data and scales) and the expert table pointing into it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "packed_cpu.h"

struct moe_pcpu_knobs moe_pcpu;

static const struct moe_backend *owner;

struct pcpu_copy {
	struct moe_expert_weights *w; /* count experts, tensors in the arena */
	void *arena;
	size_t bytes;
	struct moe_expert_params key; /* for the stale cache */
	int32_t count;
};

struct pcpu_handle {
	struct moe_packed pub;
	struct pcpu_copy copy;
	bool borrowed; /* the copy belongs to the stale cache */
};

static size_t a64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static size_t tensor_bytes(const struct moe_qtensor *q)
{
	return a64(moe_qtensor_data_bytes(q)) + a64(moe_qtensor_scale_bytes(q));
}

static char *copy_tensor(struct moe_qtensor *dst, const struct moe_qtensor *src, char *at)
{
	const size_t nd = moe_qtensor_data_bytes(src), ns = moe_qtensor_scale_bytes(src);
	*dst = *src;
	dst->data = at;
	memcpy(at, src->data, nd);
	at += a64(nd);
	dst->scales = NULL;
	if (ns && src->scales) {
		dst->scales = at;
		memcpy(at, src->scales, ns);
		at += a64(ns);
	}
	return at;
}

static bool make_copy(const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
		      struct pcpu_copy *c)
{
	size_t bytes = a64((size_t)count * sizeof(struct moe_expert_weights));
	for (int32_t e = 0; e < count; e++)
		bytes += tensor_bytes(&w[e].gate) + tensor_bytes(&w[e].up) + tensor_bytes(&w[e].down);
	char *arena = aligned_alloc(64, bytes ? bytes : 64);
	if (!arena)
		return false;
	*c = (struct pcpu_copy){ (struct moe_expert_weights *)(void *)arena, arena, bytes, *p, count };
	char *at = arena + a64((size_t)count * sizeof(struct moe_expert_weights));
	for (int32_t e = 0; e < count; e++) {
		at = copy_tensor(&c->w[e].gate, &w[e].gate, at);
		at = copy_tensor(&c->w[e].up, &w[e].up, at);
		at = copy_tensor(&c->w[e].down, &w[e].down, at);
		if (moe_pcpu.damage)
			moe_pcpu.damage(&c->w[e], e);
	}
	return true;
}

/* ---- the stale cache (mutant): the first copy of each (format, count), never freed ---- */

#define PCPU_CACHE 64
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_copy cache[PCPU_CACHE];
static int ncache;

/* Freed when the plugin is unloaded (dlclose runs destructors): not a leak of the mutant's bug. */
__attribute__((destructor)) static void cache_free(void)
{
	for (int i = 0; i < ncache; i++)
		free(cache[i].arena);
	ncache = 0;
}

static bool same_format(const struct moe_expert_params *a, const struct moe_expert_params *b)
{
	return a->hidden == b->hidden && a->inter == b->inter && a->weight_dtype == b->weight_dtype &&
	       a->weight_scaling == b->weight_scaling && a->weight_sf_layout == b->weight_sf_layout &&
	       a->act_quant == b->act_quant;
}

static bool cached_copy(const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
			struct pcpu_copy *out)
{
	bool found = false;
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < ncache && !found; i++) {
		if (cache[i].count == count && same_format(&cache[i].key, p)) {
			*out = cache[i];
			found = true;
		}
	}
	if (!found && ncache < PCPU_CACHE && make_copy(p, count, w, &cache[ncache])) {
		*out = cache[ncache++];
		found = true;
	}
	pthread_mutex_unlock(&cache_lock);
	return found;
}

static enum moe_status pcpu_pack(const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
				 const struct moe_threads *th, struct moe_packed **out)
{
	(void)th;
	struct pcpu_handle *h = calloc(1, sizeof *h);
	if (!h)
		return MOE_ERR_NOMEM;
	h->borrowed = moe_pcpu.stale && cached_copy(p, count, w, &h->copy);
	if (!h->borrowed && !make_copy(p, count, w, &h->copy)) {
		free(h);
		return MOE_ERR_NOMEM;
	}
	h->pub = (struct moe_packed){ .owner = owner, .count = count, .format = *p, .bytes = h->copy.bytes, .impl = h };
	*out = &h->pub;
	return MOE_OK;
}

static void pcpu_release(struct moe_packed *packed)
{
	struct pcpu_handle *h = packed->impl;
	if (!h->borrowed)
		free(h->copy.arena);
	free(h);
}

static const struct moe_expert_weights *packed_expert(const struct moe_packed *packed, int32_t index)
{
	return &((const struct pcpu_handle *)packed->impl)->copy.w[index];
}

/* ---- expert_mt ---- */

#define PCPU_CHUNK 4

/* Whether each token's output depends on that token alone (no activation scale derived from all). */
static bool token_independent(const struct moe_expert_params *p)
{
	switch (p->act_quant) {
	case MOE_ACT_NONE:
	case MOE_ACT_BF16:
	case MOE_ACT_FP8_1x128:
		return true;
	case MOE_ACT_NVFP4:
		return p->act_global_scale[0] > 0 && p->act_global_scale[1] > 0;
	default:
		return false;
	}
}

static size_t expert_slot(const struct moe_expert_params *p)
{
	return a64(moe_expert_workspace_bytes(p));
}

struct expert_job {
	const struct moe_expert_params *p;
	const float *x;
	const struct moe_expert_weights *w;
	float *y;
	char *ws;
	size_t slot;
	int64_t chunk;
};

static void expert_task(void *arg, int64_t task, int thread)
{
	const struct expert_job *j = arg;
	struct moe_expert_params ep = *j->p;
	const int64_t m0 = task * j->chunk, H = ep.hidden;
	ep.tokens = ep.tokens - m0 < j->chunk ? ep.tokens - m0 : j->chunk;
	moe_expert__ref(&ep, j->x + m0 * H, j->w, j->y + m0 * H, j->ws + (size_t)thread * j->slot);
}

static void pcpu_expert_mt(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			   const struct moe_packed *packed, int32_t index, float *y, void *workspace,
			   const struct moe_threads *th)
{
	if (p->tokens == 0)
		return;
	struct expert_job j = { p, x, packed ? packed_expert(packed, index) : w, y, workspace, expert_slot(p),
				token_independent(p) ? PCPU_CHUNK : p->tokens };
	th->parallel_for(th, (p->tokens + j.chunk - 1) / j.chunk, expert_task, &j);
}

/* ---- layer_mt ---- */

struct layer_ws {
	size_t counts, offsets, perm, inv, out, sout, slots, xg, ews, slot, total;
};

static void layer_layout(const struct moe_layer_params *p, int threads, struct layer_ws *l)
{
	const size_t E = (size_t)p->route.num_experts, T = (size_t)p->tokens, K = (size_t)p->route.top_k;
	const size_t H = (size_t)p->expert.hidden;
	struct moe_expert_params ep = p->expert, sp = p->expert;
	ep.tokens = sp.tokens = p->tokens;
	sp.inter = p->shared_inter;
	size_t ews = expert_slot(&ep);
	if (p->shared != MOE_SHARED_NONE && expert_slot(&sp) > ews)
		ews = expert_slot(&sp);
	size_t at = 0;
	l->counts = at, at += a64(E * 4);
	l->offsets = at, at += a64((E + 1) * 4);
	l->perm = at, at += a64(T * K * 4);
	l->inv = at, at += a64(T * K * 4);
	l->out = at, at += a64(T * K * H * 4);
	l->sout = at, at += a64(T * H * 4);
	l->xg = 0;
	l->ews = a64(T * H * 4);
	l->slot = l->ews + ews;
	l->slots = at;
	l->total = at + (size_t)threads * l->slot;
}

struct layer_job {
	const struct moe_layer_params *p;
	const float *x;
	const struct moe_layer_weights *w;
	const struct moe_packed *packed, *packed_shared;
	const float *weights;
	char *base;
	struct layer_ws l;
	float *y;
	int count; /* th->count */
};

static void layer_expert_task(void *arg, int64_t task, int thread)
{
	const struct layer_job *j = arg;
	const struct moe_layer_params *p = j->p;
	const int64_t H = p->expert.hidden, T = p->tokens;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	const int32_t *counts = (const int32_t *)(void *)(j->base + j->l.counts);
	const int32_t *offsets = (const int32_t *)(void *)(j->base + j->l.offsets);
	const int32_t *perm = (const int32_t *)(void *)(j->base + j->l.perm);
	float *out = (float *)(void *)(j->base + j->l.out), *sout = (float *)(void *)(j->base + j->l.sout);
	char *slot = j->base + j->l.slots + (size_t)thread * j->l.slot;
	float *xg = (float *)(void *)(slot + j->l.xg);
	void *ews = slot + j->l.ews;
	if (task == E) { /* the shared expert, on every token */
		struct moe_expert_params sp = p->expert;
		sp.tokens = T;
		sp.inter = p->shared_inter;
		moe_expert__ref(&sp, j->x, j->packed_shared ? packed_expert(j->packed_shared, 0) : j->w->shared, sout,
				ews);
		return;
	}
	const int32_t e = (int32_t)task, n = counts[e];
	if (n == 0)
		return;
	for (int32_t i = 0; i < n; i++)
		memcpy(xg + (int64_t)i * H, j->x + (int64_t)(perm[offsets[e] + i] / K) * H, (size_t)H * sizeof(float));
	struct moe_expert_params ep = p->expert;
	ep.tokens = n;
	float *o = out + (int64_t)offsets[e] * H;
	moe_expert__ref(&ep, xg, j->packed ? packed_expert(j->packed, e) : &j->w->experts[e], o, ews);
	if (moe_pcpu.combine == MOE_PCPU_COMBINE_RACE) {
		/* the bug: accumulate straight into y, in whatever order the tasks finish */
		for (int32_t i = 0; i < n; i++) {
			const int32_t s = perm[offsets[e] + i];
			for (int64_t h = 0; h < H; h++)
				j->y[(int64_t)(s / K) * H + h] += j->weights[s] * o[(int64_t)i * H + h];
		}
	}
}

#define PCPU_TOKENS_PER_TASK 8

static void layer_combine_task(void *arg, int64_t task, int thread)
{
	(void)thread;
	const struct layer_job *j = arg;
	const struct moe_layer_params *p = j->p;
	const int64_t H = p->expert.hidden, T = p->tokens;
	const int32_t K = p->route.top_k;
	const int32_t *inv = (const int32_t *)(void *)(j->base + j->l.inv);
	const float *out = (const float *)(void *)(j->base + j->l.out), *sout = (const float *)(void *)(j->base + j->l.sout);
	const float rsf = p->route.routed_scaling_factor;
	const int32_t first = moe_pcpu.combine == MOE_PCPU_COMBINE_BY_COUNT ? (j->count - 1) % K : 0;
	for (int64_t t = task * PCPU_TOKENS_PER_TASK; t < T && t < (task + 1) * PCPU_TOKENS_PER_TASK; t++) {
		for (int64_t h = 0; h < H; h++) {
			float r = 0.0f;
			if (moe_pcpu.combine == MOE_PCPU_COMBINE_RACE) {
				r = j->y[t * H + h];
			} else {
				for (int32_t i = 0; i < K; i++) {
					const int32_t k = (first + i) % K;
					r = r + j->weights[t * K + k] * out[(int64_t)inv[t * K + k] * H + h];
				}
			}
			if (p->rsf_site == MOE_RSF_AT_OUTPUT)
				r = r * rsf;
			switch (p->shared) {
			case MOE_SHARED_SUM: r = r + sout[t * H + h]; break;
			case MOE_SHARED_AVERAGE: r = (r + sout[t * H + h]) * 0.5f; break;
			default: break;
			}
			j->y[t * H + h] = r;
		}
	}
}

static void pcpu_layer_mt(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
			  const struct moe_layer_weights *w, const struct moe_packed *packed,
			  const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights,
			  void *workspace, const struct moe_threads *th)
{
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	if (T == 0)
		return;
	struct layer_job j = { p, x, w, packed, packed_shared, weights, workspace, { 0 }, y, th->count };
	layer_layout(p, th->count, &j.l);
	int32_t *counts = (int32_t *)(void *)(j.base + j.l.counts), *offsets = (int32_t *)(void *)(j.base + j.l.offsets);
	int32_t *perm = (int32_t *)(void *)(j.base + j.l.perm), *inv = (int32_t *)(void *)(j.base + j.l.inv);

	struct moe_route_params route = p->route;
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	moe_route__ref(&route, T, logits, bias, ids, weights);
	moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
	for (int32_t s = 0; s < offsets[E]; s++)
		inv[perm[s]] = s;
	if (moe_pcpu.combine == MOE_PCPU_COMBINE_RACE)
		memset(y, 0, (size_t)(T * H) * sizeof(float));
	/* experts (and the shared one) as one parallel job, then the combine by token blocks */
	th->parallel_for(th, E + (p->shared != MOE_SHARED_NONE), layer_expert_task, &j);
	th->parallel_for(th, (T + PCPU_TOKENS_PER_TASK - 1) / PCPU_TOKENS_PER_TASK, layer_combine_task, &j);
}

static size_t pcpu_workspace(enum moe_op op, const void *problem, int threads)
{
	switch (op) {
	case MOE_OP_EXPERT: return (size_t)threads * expert_slot(problem);
	case MOE_OP_LAYER: {
		struct layer_ws l;
		layer_layout(problem, threads, &l);
		return l.total;
	}
	default: return 0;
	}
}

void moe_packed_cpu_install(struct moe_backend *b)
{
	owner = b;
	b->pack = pcpu_pack;
	b->release = pcpu_release;
	b->expert_mt = pcpu_expert_mt;
	b->layer_mt = pcpu_layer_mt;
	b->workspace = pcpu_workspace;
}

void moe_pcpu_swap_rows(struct moe_qtensor *q, int64_t r0, int64_t r1, int64_t n)
{
	const size_t row = moe_qtensor_data_bytes(q) / (size_t)q->rows;
	unsigned char *d = q->data;
	for (size_t i = 0; i < (size_t)n * row; i++) {
		const unsigned char t = d[(size_t)r0 * row + i];
		d[(size_t)r0 * row + i] = d[(size_t)r1 * row + i];
		d[(size_t)r1 * row + i] = t;
	}
}
