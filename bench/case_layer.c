/* MoE layer benchmark: T tokens x[T][H] (normal(0, 1)) with router logits[T][E] (normal(0, 1), the
 * model's router dtype) and bias, through E experts (+ the shared expert) of the model's format.
 * Every expert has its own weights in memory (same values, distinct copies), so a layer whose
 * experts exceed the last-level cache streams them as a real decode step does. Layers whose expert
 * weights exceed MOE_LAYER_CAP are refused with a message rather than aliased, because aliasing
 * would let the cache serve what DRAM must. The count of experts that receive a token (for the
 * byte count) comes from routing the benchmark's logits once with the reference router. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MOE_LAYER_CAP ((double)(2ull << 30))

struct layer_inst {
	struct moe_layer_params p;
	float *x, *y, *weights;
	void *logits, *bias, *workspace;
	int32_t *ids;
	struct moe_expert_weights *experts, shared;
	struct moe_layer_weights w;
	int32_t distinct;
};

static void free_expert(struct moe_expert_weights *e)
{
	moe_qtensor_free(&e->gate);
	moe_qtensor_free(&e->up);
	moe_qtensor_free(&e->down);
}

static void layer_teardown(void *inst)
{
	struct layer_inst *r = inst;
	if (!r)
		return;
	for (int32_t e = 0; r->experts && e < r->p.route.num_experts; e++)
		free_expert(&r->experts[e]);
	free_expert(&r->shared);
	free(r->experts);
	free(r->x);
	free(r->y);
	free(r->weights);
	free(r->logits);
	free(r->bias);
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

static void *router_input(enum moe_dtype t, size_t n, float sigma, uint64_t seed)
{
	float *x = moe_bench_alloc(n * sizeof *x);
	if (!x)
		return NULL;
	moe_bench_fill_normal(x, n, sigma, seed);
	if (t == MOE_DTYPE_F32)
		return x;
	moe_bf16 *h = moe_bench_alloc(n * sizeof *h);
	for (size_t i = 0; h && i < n; i++)
		h[i] = moe_f32_to_bf16(x[i]);
	free(x);
	return h;
}

static enum moe_status layer_setup(const struct moe_bench_case *c, size_t llc, void **inst)
{
	const struct moe_layer_params *p = &c->u.layer;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	const int64_t T = p->tokens, H = p->expert.hidden;
	const double all = E * moe_bench_expert_weight_bytes(&p->expert, p->expert.inter);
	if (all > MOE_LAYER_CAP)
		return moe_fail(MOE_ERR_UNSUPPORTED, "layer: %d experts need %.2f GiB of weights, above the "
				"bench's cap of %.0f GiB", E, all / (1u << 30), MOE_LAYER_CAP / (1u << 30));
	struct layer_inst *r = calloc(1, sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "layer: no memory");
	r->p = *p;
	r->experts = calloc((size_t)E, sizeof *r->experts);
	r->x = moe_bench_alloc((size_t)(T * H) * sizeof(float));
	r->y = moe_bench_alloc((size_t)(T * H) * sizeof(float));
	r->ids = moe_bench_alloc((size_t)(T * K) * sizeof *r->ids);
	r->weights = moe_bench_alloc((size_t)(T * K) * sizeof *r->weights);
	r->logits = router_input(p->route.logits_dtype, (size_t)(T * E), 1.0f, 0x5eed0401u);
	r->bias = p->route.bias_dtype != MOE_DTYPE_NONE ? router_input(p->route.bias_dtype, (size_t)E, 0.05f,
								       0x5eed0402u) : NULL;
	r->workspace = moe_bench_alloc(moe_layer_workspace_bytes(p));
	enum moe_status s = MOE_OK;
	if (!r->experts || !r->x || !r->y || !r->ids || !r->weights || !r->logits || !r->workspace ||
	    (p->route.bias_dtype != MOE_DTYPE_NONE && !r->bias))
		s = moe_fail(MOE_ERR_NOMEM, "layer: no memory for T=%lld E=%d H=%lld", (long long)T, E, (long long)H);
	if (s == MOE_OK)
		s = make_expert(&p->expert, p->expert.inter, 0x5eed0410u, &r->experts[0]);
	for (int32_t e = 1; s == MOE_OK && e < E; e++)
		s = copy_expert(&r->experts[0], &r->experts[e]);
	if (s == MOE_OK && p->shared != MOE_SHARED_NONE)
		s = make_expert(&p->expert, p->shared_inter, 0x5eed0420u, &r->shared);
	r->w.experts = r->experts;
	r->w.shared = p->shared != MOE_SHARED_NONE ? &r->shared : NULL;
	if (s == MOE_OK)
		s = moe_layer_validate(p, &r->w);
	if (s != MOE_OK) {
		layer_teardown(r);
		return s;
	}
	moe_bench_fill_normal(r->x, (size_t)(T * H), 1.0f, 0x5eed0403u);
	moe_backend_reference()->route(&p->route, T, r->logits, r->bias, r->ids, r->weights);
	bool *hit = calloc((size_t)E, sizeof *hit);
	for (int64_t i = 0; hit && i < T * K; i++)
		if (r->ids[i] >= 0 && r->ids[i] < E && !hit[r->ids[i]]) {
			hit[r->ids[i]] = true;
			r->distinct++;
		}
	free(hit);
	*inst = r;
	return MOE_OK;
}

static void layer_call(void *inst, const struct moe_backend *b)
{
	struct layer_inst *r = inst;
	b->layer(&r->p, r->x, r->logits, r->bias, &r->w, r->y, r->ids, r->weights, r->workspace);
}

static void layer_cost(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out)
{
	const struct layer_inst *r = inst;
	moe_bench_cost_layer(&c->u.layer, r ? r->distinct : c->u.layer.route.num_experts, out);
}

const struct moe_bench_op_impl moe_bench_layer_impl = { layer_setup, layer_call, layer_cost, layer_teardown };
