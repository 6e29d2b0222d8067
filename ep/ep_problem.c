/* The configuration of an expert-parallel run and its seeded problem.
 *
 * The layer is a model of moe/models.h (vLLM routing profile, rsf at the router, as `moebench bench`
 * runs it) with optional overrides of T, H, I and E. Inputs come from the benchmark engine's seeded
 * generators (bench/data.c): x ~ normal(0, 1), logits ~ normal(0, 1) in the router's dtype, bias ~
 * normal(0, 0.05); expert e's weights from seed (seed, e) alone, so a rank can build just the
 * experts it holds and every rank builds identical ones. The configuration text lists every value
 * that must agree across ranks; its FNV-1a hash is what the ranks compare first. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ep.h"
#include "moe/rng.h"

uint64_t moe_ep_hash(const void *data, size_t n, uint64_t h)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Whether an activation mode quantizes with a scale taken from the whole input (the shared expert
 * on a rank sees only that rank's tokens, so its result would change). */
static bool act_scale_from_all_rows(const struct moe_expert_params *p)
{
	switch (p->act_quant) {
	case MOE_ACT_FP8_TENSOR:
		return true;
	case MOE_ACT_NVFP4:
		return p->act_global_scale[0] <= 0 || p->act_global_scale[1] <= 0;
	default:
		return false;
	}
}

enum moe_status moe_ep_layer_params(const struct moe_ep_config *c, struct moe_layer_params *out)
{
	const struct moe_model_shape *m = moe_model_find(c->model);
	if (!m)
		return MOE_ERR_INVALID_ARG;
	struct moe_layer_params p = { 0 };
	p.route = moe_model_route_params(m, MOE_PROFILE_VLLM);
	p.expert = moe_model_expert_params(m);
	p.rsf_site = MOE_RSF_AT_ROUTER;
	p.shared = c->no_shared ? MOE_SHARED_NONE : m->shared;
	p.shared_inter = p.shared == MOE_SHARED_NONE ? 0 : m->shared_inter;
	p.tokens = c->tokens;
	if (c->hidden)
		p.expert.hidden = c->hidden;
	if (c->inter) {
		p.expert.inter = c->inter;
		if (p.shared != MOE_SHARED_NONE)
			p.shared_inter = c->inter;
	}
	if (c->experts)
		p.route.num_experts = c->experts;
	if (c->tokens < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "ep: --tokens %lld: need at least 1 token", (long long)c->tokens);
	enum moe_status s = moe_route_validate(&p.route);
	if (s != MOE_OK)
		return moe_fail(s, "ep: model %s with E=%d: %s", m->name, p.route.num_experts, moe_last_error());
	struct moe_expert_params ep = p.expert;
	ep.tokens = 1;
	struct moe_qtensor q = { .dtype = ep.weight_dtype, .scaling = ep.weight_scaling, .sf_layout = ep.weight_sf_layout,
				 .rows = ep.inter, .cols = ep.hidden };
	if (ep.hidden < 1 || ep.inter < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "ep: H=%lld I=%lld: both must be >= 1", (long long)ep.hidden,
				(long long)ep.inter);
	if (moe_expert_workspace_bytes(&ep) == 0 || moe_qtensor_alloc(&q) != MOE_OK)
		return moe_fail(MOE_ERR_INVALID_ARG, "ep: H=%lld I=%lld do not fit the %s weight format: %s",
				(long long)ep.hidden, (long long)ep.inter, moe_dtype_name(ep.weight_dtype), moe_last_error());
	moe_qtensor_free(&q);
	if (p.shared != MOE_SHARED_NONE && act_scale_from_all_rows(&p.expert))
		return moe_fail(MOE_ERR_UNSUPPORTED,
				"ep: model %s: its shared expert quantizes activations (%s) with a scale taken from all T "
				"tokens, which a rank's shared expert on its own tokens cannot reproduce: use --no-shared",
				m->name, moe_act_quant_name(p.expert.act_quant));
	*out = p;
	return MOE_OK;
}

void moe_ep_config_text(const struct moe_ep_config *c, const struct moe_ep_placement *pl, char *buf, size_t n)
{
	uint64_t ph = MOE_EP_HASH_INIT;
	if (pl && pl->rank_of)
		ph = moe_ep_hash(pl->rank_of, (size_t)pl->experts * sizeof(int32_t), ph);
	snprintf(buf, n,
		 "model=%s tokens=%lld hidden=%lld inter=%lld experts=%d shared=%s seed=%llu backend=%s placement=%s "
		 "placement-map=%016llx chunks=%d bench=%d reps=%d check=%d",
		 c->model, (long long)c->tokens, (long long)c->hidden, (long long)c->inter, c->experts,
		 c->no_shared ? "off" : "model", (unsigned long long)c->seed, c->backend,
		 moe_ep_placement_kind_name(c->placement), (unsigned long long)ph, c->chunks, (int)c->bench, c->reps,
		 (int)c->check);
}

void moe_ep_problem_free(struct moe_ep_problem *pr)
{
	for (int32_t e = 0; pr->experts && e < pr->p.route.num_experts; e++)
		if (pr->have[e]) {
			moe_qtensor_free(&pr->experts[e].gate);
			moe_qtensor_free(&pr->experts[e].up);
			moe_qtensor_free(&pr->experts[e].down);
		}
	if (pr->p.shared != MOE_SHARED_NONE && pr->shared.gate.data) {
		moe_qtensor_free(&pr->shared.gate);
		moe_qtensor_free(&pr->shared.up);
		moe_qtensor_free(&pr->shared.down);
	}
	free(pr->experts);
	free(pr->have);
	free(pr->x);
	free(pr->logits);
	free(pr->bias);
	memset(pr, 0, sizeof *pr);
}

static enum moe_status make_expert(const struct moe_expert_params *p, int64_t inter, uint64_t seed,
				   struct moe_expert_weights *w)
{
	uint64_t s = seed;
	const uint64_t sg = moe_splitmix64(&s), su = moe_splitmix64(&s), sd = moe_splitmix64(&s);
	memset(w, 0, sizeof *w);
	enum moe_status st = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, inter,
						   p->hidden, sg, &w->gate);
	if (st == MOE_OK)
		st = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, inter, p->hidden, su,
					   &w->up);
	if (st == MOE_OK)
		st = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, p->hidden, inter, sd,
					   &w->down);
	if (st != MOE_OK) {
		moe_qtensor_free(&w->gate);
		moe_qtensor_free(&w->up);
		moe_qtensor_free(&w->down);
	}
	return st;
}

static void *router_input(enum moe_dtype t, size_t n, float sigma, uint64_t seed)
{
	float *x = malloc(n * sizeof *x);
	if (!x)
		return NULL;
	moe_bench_fill_normal(x, n, sigma, seed);
	if (t != MOE_DTYPE_BF16)
		return x;
	moe_bf16 *b = malloc(n * sizeof *b);
	for (size_t i = 0; b && i < n; i++)
		b[i] = moe_f32_to_bf16(x[i]);
	free(x);
	return b;
}

enum moe_status moe_ep_problem_make(const struct moe_ep_config *c, const bool *want, struct moe_ep_problem *out)
{
	memset(out, 0, sizeof *out);
	enum moe_status s = moe_ep_layer_params(c, &out->p);
	if (s != MOE_OK)
		return s;
	if (!strcmp(c->backend, "ref")) {
		out->b = moe_backend_reference();
	} else if (!strcmp(c->backend, "dispatched")) {
		out->b = moe_backend_dispatched();
	} else {
		const struct moe_builtin *bi = moe_builtin_find(c->backend);
		if (!bi || bi->op != MOE_OP_COUNT)
			return moe_fail(MOE_ERR_INVALID_ARG, "ep: --backend %s: not a built-in backend table (see `moebench info`)",
					c->backend);
		if (bi->isa > moe_isa_effective())
			return moe_fail(MOE_ERR_UNSUPPORTED, "ep: --backend %s needs %s, this CPU (or MOE_MAX_ISA) gives %s",
					c->backend, moe_isa_name(bi->isa), moe_isa_name(moe_isa_effective()));
		out->b = bi->table;
	}
	out->backend_name = out->b->name;
	struct moe_ep_problem *pr = out;
	const int64_t T = pr->p.tokens, H = pr->p.expert.hidden;
	const int32_t E = pr->p.route.num_experts;
	uint64_t st = c->seed;
	const uint64_t sx = moe_splitmix64(&st), sl = moe_splitmix64(&st), sb = moe_splitmix64(&st),
		       sw = moe_splitmix64(&st), ss = moe_splitmix64(&st);
	pr->x = malloc((size_t)(T * H) * sizeof(float));
	pr->logits = router_input(pr->p.route.logits_dtype, (size_t)(T * E), 1.0f, sl);
	pr->bias = pr->p.route.bias_dtype != MOE_DTYPE_NONE ? router_input(pr->p.route.bias_dtype, (size_t)E, 0.05f, sb)
							    : NULL;
	pr->experts = calloc((size_t)E, sizeof *pr->experts);
	pr->have = calloc((size_t)E, sizeof *pr->have);
	if (!pr->x || !pr->logits || (pr->p.route.bias_dtype != MOE_DTYPE_NONE && !pr->bias) || !pr->experts || !pr->have) {
		moe_ep_problem_free(pr);
		return moe_fail(MOE_ERR_NOMEM, "ep: no memory for T=%lld H=%lld E=%d inputs", (long long)T, (long long)H, E);
	}
	moe_bench_fill_normal(pr->x, (size_t)(T * H), 1.0f, sx);
	for (int32_t e = 0; e < E && s == MOE_OK; e++) {
		if (want && !want[e])
			continue;
		s = make_expert(&pr->p.expert, pr->p.expert.inter, sw ^ (0x9e3779b97f4a7c15ull * (uint64_t)(e + 1)),
				&pr->experts[e]);
		pr->have[e] = s == MOE_OK;
	}
	if (s == MOE_OK && pr->p.shared != MOE_SHARED_NONE)
		s = make_expert(&pr->p.expert, pr->p.shared_inter, ss, &pr->shared);
	if (s != MOE_OK) {
		s = moe_fail(s, "ep: building the experts: %s", moe_last_error());
		moe_ep_problem_free(pr);
	}
	return s;
}
