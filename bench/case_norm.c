/* Norm benchmark: rows x cols inputs (normal(0, 1)) and weights (normal(1, 0.1)) in the case's
 * dtypes, normalized by the backend's norm kernel into a separate output. */
#include <stdlib.h>

#include "bench.h"

struct norm_inst {
	struct moe_norm_params p;
	void *x, *w, *y;
};

static void *make(enum moe_dtype t, size_t n, float mean, float sigma, uint64_t seed)
{
	float *x = moe_bench_alloc(n * sizeof *x);
	if (!x)
		return NULL;
	moe_bench_fill_normal(x, n, sigma, seed);
	for (size_t i = 0; i < n; i++)
		x[i] += mean;
	if (t == MOE_DTYPE_F32)
		return x;
	moe_bf16 *h = moe_bench_alloc(n * sizeof *h);
	for (size_t i = 0; h && i < n; i++)
		h[i] = moe_f32_to_bf16(x[i]);
	free(x);
	return h;
}

static void norm_teardown(void *inst)
{
	struct norm_inst *r = inst;
	if (!r)
		return;
	free(r->x);
	free(r->w);
	free(r->y);
	free(r);
}

static enum moe_status norm_setup(const struct moe_bench_case *c, size_t llc, void **inst)
{
	struct norm_inst *r = calloc(1, sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "norm: no memory");
	r->p = c->u.norm;
	const size_t n = (size_t)r->p.rows * (size_t)r->p.cols;
	r->x = make(r->p.in_dtype, n, 0.0f, 1.0f, 0x5eed0101u);
	r->w = make(r->p.weight_dtype, (size_t)r->p.cols, 1.0f, 0.1f, 0x5eed0102u);
	r->y = moe_bench_alloc(n * (r->p.out_dtype == MOE_DTYPE_F32 ? 4 : 2));
	if (!r->x || !r->w || !r->y) {
		norm_teardown(r);
		return moe_fail(MOE_ERR_NOMEM, "norm: no memory for %lldx%lld", (long long)c->u.norm.rows,
				(long long)c->u.norm.cols);
	}
	*inst = r;
	return MOE_OK;
}

static void norm_call(void *inst, const struct moe_backend *b, const struct moe_threads *th)
{
	(void)th; /* norms have no threaded slot */
	struct norm_inst *r = inst;
	b->norm(&r->p, r->x, r->w, r->y);
}

static void norm_cost(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out)
{
	moe_bench_cost_norm(&c->u.norm, out);
}

const struct moe_bench_op_impl moe_bench_norm_impl = { norm_setup, norm_call, norm_cost, norm_teardown, NULL, NULL };
