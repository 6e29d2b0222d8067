/* MoE layer benchmark: T tokens x[T][H] (normal(0, 1)) with router logits[T][E] (normal(0, 1), the
 * model's router dtype) and bias, through E experts (+ the shared expert) of the model's format.
 *
 * Memory: every expert the layer reads is a distinct copy in memory (same values), so a layer whose
 * experts exceed the cache streams them as a real decode step does. The copies are capped at
 * MOE_LAYER_CAP bytes: a model whose E experts exceed it gets N < E copies and expert e reads copy
 * e mod N (aliasing). The byte count is exact either way: `distinct` counts the distinct copies a
 * call reads, found by routing the benchmark's logits with the reference router at setup.
 *
 * Warm: one set of logits, one view of the experts: every call reads the same experts, which stay
 * in whatever cache level holds them. Cold: L rotations, call j using rotation j mod L. Rotation j
 * shifts the logits' (and bias') expert columns by s_j (a multiple of the group size, so grouped
 * routers pick the same pattern shifted: ids + s_j) so that decode touches other experts, and reads
 * layer copy j mod C: C whole-layer copies when one layer is smaller than 2x the last-level cache,
 * so that prefill, which reads every expert, streams too. L grows until the rotation reads more
 * than 2x the LLC of distinct copies (at most 64 rotations; the row says when that was not reached).
 * distinct is then the mean over the rotations.
 *
 * Reuse: the expert copies outlive their case when the next case has the same weights (the T
 * sweep), so a model's weights are made once per warm and once per cold sweep.
 *
 * Pack (prepare): the backend packs each of the C layer views once (E experts + the shared one),
 * timed together; the time and bytes are reported for one view (one layer). When the copies are
 * aliased (N < E) or C packed views would exceed MOE_PACK_CAP, fewer handles are made and the row
 * says so (aliased: plain weights, except for the baselines, whose plain path converts every
 * expert per call and is skipped with the reason; one packed view larger than 2x LLC is cold by
 * its size). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MOE_LAYER_CAP ((double)(2ull << 30))
#define MOE_PACK_CAP ((double)(4ull << 30))
#define MAX_ROT 64

struct layer_inst {
	struct moe_layer_params p;
	float *x, *y, *weights;
	void *workspace;
	size_t ws_bytes;
	int32_t *ids;
	void *logits[MAX_ROT], *bias[MAX_ROT];
	int rot, next;                        /* rotations L, the next call's */
	int views;                            /* C */
	int32_t ncopies;                      /* N distinct expert copies */
	struct moe_expert_weights *copies;    /* [N] */
	struct moe_expert_weights *shared;    /* [C] */
	struct moe_expert_weights *view_w;    /* [C][E]: struct copies pointing at copies[] */
	struct moe_layer_weights *w;          /* [C] */
	struct moe_packed **packed, **packed_shared; /* [C] */
	int npacked;
	double distinct, cold_bytes;
	size_t llc;
	bool aliased, cold;
	bool complete;                        /* set up: its copies may be kept for the next case */
};

static void free_expert(struct moe_expert_weights *e)
{
	moe_qtensor_free(&e->gate);
	moe_qtensor_free(&e->up);
	moe_qtensor_free(&e->down);
}

/* The expert copies (and shared experts) of the last layer case, kept for the next case with the
 * same weights: the T sweep of a model makes them once per warm and once per cold sweep instead of
 * once per token count. Key: the expert format and sizes, E, the shared expert, copies and views. */
static struct {
	bool valid;
	struct moe_expert_params expert; /* tokens 0 */
	int32_t E, ncopies;
	int views;
	enum moe_shared_combine shared;
	int64_t shared_inter;
	struct moe_expert_weights *copies, *shared_w;
} cache;

static void free_set(struct moe_expert_weights *copies, int32_t n, struct moe_expert_weights *shared, int views)
{
	for (int32_t e = 0; copies && e < n; e++)
		free_expert(&copies[e]);
	for (int v = 0; shared && v < views; v++)
		free_expert(&shared[v]);
	free(copies);
	free(shared);
}

static void cache_clear(void)
{
	if (cache.valid)
		free_set(cache.copies, cache.ncopies, cache.shared_w, cache.views);
	memset(&cache, 0, sizeof cache);
}

static bool cache_matches(const struct layer_inst *r)
{
	struct moe_expert_params k = r->p.expert;
	k.tokens = 0;
	return cache.valid && memcmp(&k, &cache.expert, sizeof k) == 0 && cache.E == r->p.route.num_experts &&
	       cache.ncopies == r->ncopies && cache.views == r->views && cache.shared == r->p.shared &&
	       cache.shared_inter == r->p.shared_inter;
}

static void layer_teardown(void *inst)
{
	struct layer_inst *r = inst;
	if (!r)
		return;
	if (r->complete) { /* keep the weights for the next case */
		static bool registered;
		cache_clear();
		cache.valid = true;
		cache.expert = r->p.expert;
		cache.expert.tokens = 0;
		cache.E = r->p.route.num_experts;
		cache.ncopies = r->ncopies;
		cache.views = r->views;
		cache.shared = r->p.shared;
		cache.shared_inter = r->p.shared_inter;
		cache.copies = r->copies;
		cache.shared_w = r->shared;
		r->copies = r->shared = NULL;
		if (!registered)
			registered = atexit(cache_clear) == 0;
	}
	for (int32_t e = 0; r->copies && e < r->ncopies; e++)
		free_expert(&r->copies[e]);
	for (int v = 0; r->shared && v < r->views; v++)
		free_expert(&r->shared[v]);
	for (int j = 0; j < r->rot; j++) {
		free(r->logits[j]);
		free(r->bias[j]);
	}
	free(r->copies);
	free(r->shared);
	free(r->view_w);
	free(r->w);
	free(r->packed);
	free(r->packed_shared);
	free(r->x);
	free(r->y);
	free(r->weights);
	free(r->workspace);
	free(r->ids);
	free(r);
}

static enum moe_status make_expert(const struct moe_expert_params *p, int64_t inter, uint64_t seed,
				   struct moe_expert_weights *e)
{
	enum moe_status s = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, inter,
						  p->hidden, seed, &e->gate);
	if (s == MOE_OK)
		s = moe_bench_copy_qtensor(&e->gate, &e->up);
	if (s == MOE_OK)
		s = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, p->hidden, inter,
					  seed + 1, &e->down);
	return s;
}

static enum moe_status copy_expert(const struct moe_expert_weights *src, struct moe_expert_weights *dst)
{
	enum moe_status s = moe_bench_copy_qtensor(&src->gate, &dst->gate);
	if (s == MOE_OK)
		s = moe_bench_copy_qtensor(&src->up, &dst->up);
	if (s == MOE_OK)
		s = moe_bench_copy_qtensor(&src->down, &dst->down);
	return s;
}

static size_t elem_bytes(enum moe_dtype t)
{
	return t == MOE_DTYPE_BF16 ? 2 : 4;
}

/* normal(0, sigma) values [rows][E] in dtype t, then every row's columns shifted right by `shift`. */
static void *router_input(enum moe_dtype t, int64_t rows, int32_t E, int32_t shift, float sigma, uint64_t seed)
{
	const size_t n = (size_t)rows * (size_t)E;
	float *x = moe_bench_alloc(n * sizeof *x);
	void *out = moe_bench_alloc(n * elem_bytes(t));
	if (!x || !out) {
		free(x);
		free(out);
		return NULL;
	}
	moe_bench_fill_normal(x, n, sigma, seed);
	for (int64_t i = 0; i < rows; i++)
		for (int32_t e = 0; e < E; e++) {
			const float v = x[(size_t)i * (size_t)E + (size_t)((e - shift + E) % E)];
			const size_t k = (size_t)i * (size_t)E + (size_t)e;
			if (t == MOE_DTYPE_BF16)
				((moe_bf16 *)out)[k] = moe_f32_to_bf16(v);
			else
				((float *)out)[k] = v;
		}
	free(x);
	return out;
}

static int32_t gcd(int32_t a, int32_t b)
{
	while (b) {
		int32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* The copy expert e of view v reads. */
static int32_t copy_of(const struct layer_inst *r, int v, int32_t e)
{
	return (int32_t)(((int64_t)v * r->p.route.num_experts + e) % r->ncopies);
}

/* Routes rotation j with the reference and marks the copies it reads in seen[]; returns how many
 * distinct copies it reads. */
static int32_t route_rotation(struct layer_inst *r, int j, bool *seen, bool *hit)
{
	const struct moe_layer_params *p = &r->p;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	moe_backend_reference()->route(&p->route, p->tokens, r->logits[j], r->bias[j], r->ids, r->weights);
	memset(hit, 0, (size_t)r->ncopies * sizeof *hit);
	int32_t n = 0;
	for (int64_t i = 0; i < p->tokens * K; i++) {
		const int32_t e = r->ids[i];
		if (e < 0 || e >= E)
			continue;
		const int32_t c = copy_of(r, j % r->views, e);
		if (!hit[c]) {
			hit[c] = true;
			n++;
		}
		seen[(size_t)(j % r->views) * (size_t)r->ncopies + (size_t)c] = true;
	}
	return n;
}

static enum moe_status alloc_views(struct layer_inst *r)
{
	const struct moe_layer_params *p = &r->p;
	const int32_t E = p->route.num_experts;
	r->view_w = calloc((size_t)r->views * (size_t)E, sizeof *r->view_w);
	r->w = calloc((size_t)r->views, sizeof *r->w);
	if (!r->shared)
		r->shared = calloc((size_t)r->views, sizeof *r->shared);
	r->packed = calloc((size_t)r->views, sizeof *r->packed);
	r->packed_shared = calloc((size_t)r->views, sizeof *r->packed_shared);
	if (!r->view_w || !r->w || !r->shared || !r->packed || !r->packed_shared)
		return moe_fail(MOE_ERR_NOMEM, "layer: no memory for %d views", r->views);
	for (int v = 0; v < r->views; v++) {
		for (int32_t e = 0; e < E; e++)
			r->view_w[(size_t)v * (size_t)E + (size_t)e] = r->copies[copy_of(r, v, e)];
		r->w[v].experts = &r->view_w[(size_t)v * (size_t)E];
		r->w[v].shared = p->shared != MOE_SHARED_NONE ? &r->shared[v] : NULL;
	}
	return MOE_OK;
}

static enum moe_status layer_setup(const struct moe_bench_case *c, size_t llc, void **inst)
{
	const struct moe_layer_params *p = &c->u.layer;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	const int64_t T = p->tokens, H = p->expert.hidden;
	const double B = moe_bench_expert_weight_bytes(&p->expert, p->expert.inter);
	const double Bs = p->shared != MOE_SHARED_NONE ? moe_bench_expert_weight_bytes(&p->expert, p->shared_inter) : 0;
	if (!(B > 0) || E < 1 || K < 1 || T < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer: empty problem (E=%d K=%d T=%lld)", E, K, (long long)T);
	const int32_t nmax = (int32_t)((MOE_LAYER_CAP - Bs) / B);
	if (nmax < 1)
		return moe_fail(MOE_ERR_UNSUPPORTED, "layer: one expert needs %.2f GiB, above the bench's cap of %.0f GiB",
				B / (1u << 30), MOE_LAYER_CAP / (1u << 30));
	struct layer_inst *r = calloc(1, sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "layer: no memory");
	r->p = *p;
	r->llc = llc;
	r->cold = c->cold;
	r->views = 1;
	if (c->cold && E * B < 2.0 * (double)llc && nmax >= 2 * E) {
		int v = (int)((2.0 * (double)llc) / (E * B)) + 1;
		r->views = v < nmax / E ? v : nmax / E;
	}
	r->ncopies = E * r->views < nmax ? E * r->views : nmax;
	r->aliased = r->ncopies < E;
	const bool reuse = cache_matches(r);
	if (reuse) { /* the previous case's weights: same values, same memory */
		r->copies = cache.copies;
		r->shared = cache.shared_w;
		cache.valid = false;
		cache.copies = cache.shared_w = NULL;
	} else {
		cache_clear(); /* before making new ones: never two sets in memory */
		r->copies = calloc((size_t)r->ncopies, sizeof *r->copies);
	}
	r->x = moe_bench_alloc((size_t)(T * H) * sizeof(float));
	r->y = moe_bench_alloc((size_t)(T * H) * sizeof(float));
	r->ids = moe_bench_alloc((size_t)(T * K) * sizeof *r->ids);
	r->weights = moe_bench_alloc((size_t)(T * K) * sizeof *r->weights);
	r->ws_bytes = moe_layer_workspace_bytes(p);
	r->workspace = moe_bench_alloc(r->ws_bytes > 64 ? r->ws_bytes : 64);
	enum moe_status s = MOE_OK;
	if (!r->copies || !r->x || !r->y || !r->ids || !r->weights || !r->workspace)
		s = moe_fail(MOE_ERR_NOMEM, "layer: no memory for T=%lld E=%d H=%lld", (long long)T, E, (long long)H);
	if (s == MOE_OK && !reuse)
		s = make_expert(&p->expert, p->expert.inter, 0x5eed0410u, &r->copies[0]);
	for (int32_t e = 1; s == MOE_OK && !reuse && e < r->ncopies; e++)
		s = copy_expert(&r->copies[0], &r->copies[e]);
	if (s == MOE_OK)
		s = alloc_views(r);
	for (int v = 0; s == MOE_OK && !reuse && p->shared != MOE_SHARED_NONE && v < r->views; v++)
		s = v == 0 ? make_expert(&p->expert, p->shared_inter, 0x5eed0420u, &r->shared[0])
			   : copy_expert(&r->shared[0], &r->shared[v]);
	if (s == MOE_OK)
		s = moe_layer_validate(p, &r->w[0]);
	if (s != MOE_OK) {
		layer_teardown(r);
		return s;
	}
	moe_bench_fill_normal(r->x, (size_t)(T * H), 1.0f, 0x5eed0403u);

	/* Rotations: shifts by multiples of the group size, in a stride coprime with the shift count so
	 * that the first E/g rotations use every shift once. */
	const int32_t g = p->route.n_group > 1 ? E / p->route.n_group : 1, shifts = E / g;
	int32_t stride = 1;
	static const int32_t strides[] = { 5, 7, 3, 11, 13 };
	for (size_t i = 0; i < sizeof strides / sizeof strides[0] && stride == 1; i++)
		if (strides[i] < shifts && gcd(strides[i], shifts) == 1)
			stride = strides[i];
	int lmax = c->cold ? shifts * r->views : 1;
	lmax = lmax < MAX_ROT ? lmax : MAX_ROT;
	bool *seen = calloc((size_t)r->views * (size_t)r->ncopies, sizeof *seen);
	bool *hit = calloc((size_t)r->ncopies, sizeof *hit);
	if (!seen || !hit)
		s = moe_fail(MOE_ERR_NOMEM, "layer: no memory");
	double sum = 0;
	for (int j = 0; s == MOE_OK && j < lmax; j++) {
		const int32_t shift = (int32_t)(((int64_t)j * stride % shifts) * g);
		r->logits[j] = router_input(p->route.logits_dtype, T, E, shift, 1.0f, 0x5eed0401u);
		r->bias[j] = p->route.bias_dtype != MOE_DTYPE_NONE ? router_input(p->route.bias_dtype, 1, E, shift, 0.05f,
										  0x5eed0402u) : NULL;
		r->rot = j + 1;
		if (!r->logits[j] || (p->route.bias_dtype != MOE_DTYPE_NONE && !r->bias[j])) {
			s = moe_fail(MOE_ERR_NOMEM, "layer: no memory for the router inputs");
			break;
		}
		sum += route_rotation(r, j, seen, hit);
		/* Distinct memory read over the rotation so far (a copy is memory, whatever view reads it). */
		size_t n = 0;
		memset(hit, 0, (size_t)r->ncopies * sizeof *hit);
		for (size_t k = 0; k < (size_t)r->views * (size_t)r->ncopies; k++)
			if (seen[k] && !hit[k % (size_t)r->ncopies]) {
				hit[k % (size_t)r->ncopies] = true;
				n++;
			}
		r->cold_bytes = (double)n * B + (p->shared != MOE_SHARED_NONE ? Bs * (j < r->views ? j + 1 : r->views) : 0);
		if (c->cold && j + 1 >= r->views && j >= 1 && r->cold_bytes > 2.0 * (double)llc)
			break;
	}
	free(seen);
	free(hit);
	if (s != MOE_OK) {
		layer_teardown(r);
		return s;
	}
	r->distinct = sum / r->rot;
	r->complete = true;
	*inst = r;
	return MOE_OK;
}

static void layer_call(void *inst, const struct moe_backend *b, const struct moe_threads *th)
{
	struct layer_inst *r = inst;
	const int j = r->next, v = j % r->views;
	r->next = r->next + 1 == r->rot ? 0 : r->next + 1;
	const int pv = r->npacked ? v % r->npacked : 0;
	moe_backend_layer(b, &r->p, r->x, r->logits[j], r->bias[j], &r->w[v], r->npacked ? r->packed[pv] : NULL,
			  r->npacked ? r->packed_shared[pv] : NULL, r->y, r->ids, r->weights, r->workspace, th);
}

static void layer_unprepare(void *inst, const struct moe_backend *b)
{
	struct layer_inst *r = inst;
	for (int v = 0; v < r->npacked; v++) {
		moe_backend_release(b, r->packed[v]);
		moe_backend_release(b, r->packed_shared[v]);
		r->packed[v] = r->packed_shared[v] = NULL;
	}
	r->npacked = 0;
	r->next = 0;
}

/* Packs view v; its handles' bytes into *bytes. */
static enum moe_status pack_view(struct layer_inst *r, const struct moe_backend *b, int v,
				 const struct moe_threads *th, double *bytes)
{
	const struct moe_layer_params *p = &r->p;
	enum moe_status s = moe_backend_pack(b, &p->expert, p->route.num_experts, r->w[v].experts, th, &r->packed[v]);
	if (s == MOE_OK && p->shared != MOE_SHARED_NONE) {
		struct moe_expert_params q = p->expert;
		q.inter = p->shared_inter;
		s = moe_backend_pack(b, &q, 1, r->w[v].shared, th, &r->packed_shared[v]);
	}
	if (s != MOE_OK) {
		moe_backend_release(b, r->packed[v]);
		r->packed[v] = NULL;
		return s;
	}
	*bytes = (r->packed[v] ? (double)r->packed[v]->bytes : 0) +
		 (r->packed_shared[v] ? (double)r->packed_shared[v]->bytes : 0);
	return MOE_OK;
}

static enum moe_status layer_prepare(void *inst, const struct moe_backend *b, const struct moe_threads *th,
				     struct moe_bench_pack *out)
{
	struct layer_inst *r = inst;
	memset(out, 0, sizeof *out);
	const size_t need = moe_backend_workspace(b, MOE_OP_LAYER, &r->p, th ? th->count : 1);
	if (need > r->ws_bytes) {
		void *ws = moe_bench_alloc(need);
		if (!ws)
			return moe_fail(MOE_ERR_NOMEM, "layer: no memory for a %zu-byte workspace", need);
		free(r->workspace);
		r->workspace = ws;
		r->ws_bytes = need;
	}
	if (r->cold && r->cold_bytes <= 2.0 * (double)r->llc)
		snprintf(out->note, sizeof out->note, "cold rotation reads only %.0f MiB (< 2x LLC): partly cached",
			 r->cold_bytes / (1u << 20));
	if (!b->pack || !b->layer_mt) /* only the _mt slot runs packed weights */
		return MOE_OK;
	if (r->aliased && (b == moe_bench_baseline_openblas() || b == moe_bench_baseline_ggml_bf16() ||
			   b == moe_bench_baseline_ggml_q4_0()))
		return moe_fail(MOE_ERR_UNSUPPORTED, "%s needs its packed weights: %d experts would need %.1f GiB "
				"(the bench keeps %d copies)", b->name, r->p.route.num_experts, r->p.route.num_experts *
				moe_bench_expert_weight_bytes(&r->p.expert, r->p.expert.inter) / (1u << 30), r->ncopies);
	if (r->aliased) {
		snprintf(out->note, sizeof out->note, "not packed: %d experts would need %.1f GiB packed (the bench keeps "
			 "%d copies)", r->p.route.num_experts, r->p.route.num_experts *
			 moe_bench_expert_weight_bytes(&r->p.expert, r->p.expert.inter) / (1u << 30), r->ncopies);
		return MOE_OK;
	}
	double bytes = 0, t0 = moe_bench_now_ns();
	enum moe_status s = pack_view(r, b, 0, th, &bytes);
	double t1 = moe_bench_now_ns();
	if (s == MOE_ERR_UNSUPPORTED) {
		snprintf(out->note, sizeof out->note, "not packed (%.140s)", moe_last_error());
		return MOE_OK;
	}
	if (s != MOE_OK)
		return s;
	r->npacked = 1;
	out->packed = true;
	out->ns = t1 - t0;
	out->bytes = bytes;
	if (r->views > 1 && bytes * r->views > MOE_PACK_CAP) {
		snprintf(out->note, sizeof out->note, "1 packed copy of the layer (%.2f GiB; %d would exceed the %.0f GiB "
			 "cap)%s", bytes / (1u << 30), r->views, MOE_PACK_CAP / (1u << 30),
			 bytes > 2.0 * (double)r->llc ? "" : ": cold prefill partly cached");
		return MOE_OK;
	}
	for (int v = 1; v < r->views; v++) {
		double more = 0;
		if ((s = pack_view(r, b, v, th, &more)) != MOE_OK) {
			layer_unprepare(r, b);
			return s;
		}
		r->npacked = v + 1;
	}
	return MOE_OK;
}

static void layer_cost(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out)
{
	const struct layer_inst *r = inst;
	moe_bench_cost_layer(&c->u.layer, r ? r->distinct : c->u.layer.route.num_experts, out);
}

const struct moe_bench_op_impl moe_bench_layer_impl = { layer_setup, layer_call, layer_cost, layer_teardown,
							layer_prepare, layer_unprepare };
