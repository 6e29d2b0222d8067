/* Routing benchmark: T tokens of logits[T][E] (normal(0, 1), in the model's router dtype) and, for
 * biased methods, a correction bias[E] (normal(0, 0.05)), routed by the backend's route kernel into
 * ids and weights. Inputs stay the same across calls: routing reads them once per call, so a warm
 * run measures the kernel, not the memory system (T = 4096, E = 256 is 4 MiB of fp32). */
#include <stdlib.h>

#include "bench.h"

struct route_inst {
	struct moe_route_params p;
	int64_t T;
	void *logits, *bias;
	int32_t *ids;
	float *weights;
};

static void *make_vector(enum moe_dtype t, size_t n, float sigma, uint64_t seed)
{
	float *x = moe_bench_alloc(n * sizeof *x);
	if (!x || t != MOE_DTYPE_BF16) {
		if (x)
			moe_bench_fill_normal(x, n, sigma, seed);
		return x;
	}
	moe_bf16 *h = moe_bench_alloc(n * sizeof *h);
	if (h) {
		moe_bench_fill_normal(x, n, sigma, seed);
		for (size_t i = 0; i < n; i++)
			h[i] = moe_f32_to_bf16(x[i]);
	}
	free(x);
	return h;
}

static void route_teardown(void *inst)
{
	struct route_inst *r = inst;
	if (!r)
		return;
	free(r->logits);
	free(r->bias);
	free(r->ids);
	free(r->weights);
	free(r);
}

static enum moe_status route_setup(const struct moe_bench_case *c, size_t llc, void **inst)
{
	struct route_inst *r = calloc(1, sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "route: no memory");
	r->p = c->u.route.p;
	r->T = c->u.route.tokens;
	const size_t TE = (size_t)r->T * (size_t)r->p.num_experts, TK = (size_t)r->T * (size_t)r->p.top_k;
	r->logits = make_vector(r->p.logits_dtype, TE, 1.0f, 0x5eed0001u);
	r->bias = r->p.bias_dtype != MOE_DTYPE_NONE
			  ? make_vector(r->p.bias_dtype, (size_t)r->p.num_experts, 0.05f, 0x5eed0002u)
			  : NULL;
	r->ids = moe_bench_alloc(TK * sizeof *r->ids);
	r->weights = moe_bench_alloc(TK * sizeof *r->weights);
	if (!r->logits || !r->ids || !r->weights || (r->p.bias_dtype != MOE_DTYPE_NONE && !r->bias)) {
		route_teardown(r);
		return moe_fail(MOE_ERR_NOMEM, "route: no memory for T=%lld E=%d", (long long)c->u.route.tokens,
				c->u.route.p.num_experts);
	}
	*inst = r;
	return MOE_OK;
}

static void route_call(void *inst, const struct moe_backend *b, const struct moe_threads *th)
{
	struct route_inst *r = inst;
	moe_backend_route(b, &r->p, r->T, r->logits, r->bias, r->ids, r->weights, th);
}

static void route_cost(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out)
{
	moe_bench_cost_route(&c->u.route.p, c->u.route.tokens, out);
}

const struct moe_bench_op_impl moe_bench_route_impl = { route_setup, route_call, route_cost, route_teardown, NULL, NULL };
