/* Codec benchmarks on one tensor [rows][cols] of the case's format.
 * quantize: fp32 normal(0, 1/sqrt(cols)) input -> data and scales (an NVFP4 global scale is
 * derived from the input on every call: it is reset to 0 before each call, as a fresh tensor has).
 * dequantize: the quantized tensor -> fp32, every call on the same input. */
#include <stdlib.h>

#include "bench.h"

struct codec_inst {
	struct moe_qtensor q;
	float *x;
};

static void codec_teardown(void *inst)
{
	struct codec_inst *r = inst;
	if (!r)
		return;
	moe_qtensor_free(&r->q);
	free(r->x);
	free(r);
}

static enum moe_status codec_setup(const struct moe_bench_case *c, size_t llc, void **inst)
{
	const struct moe_qtensor *shape = &c->u.codec;
	struct codec_inst *r = calloc(1, sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "%s: no memory", moe_op_name(c->op));
	enum moe_status s = moe_bench_make_weight(shape->dtype, shape->scaling, shape->sf_layout, shape->rows,
						  shape->cols, 0x5eed0201u, &r->q);
	const size_t n = (size_t)shape->rows * (size_t)shape->cols;
	r->x = s == MOE_OK ? moe_bench_alloc(n * sizeof *r->x) : NULL;
	if (s == MOE_OK && !r->x)
		s = moe_fail(MOE_ERR_NOMEM, "%s: no memory for %zu floats", moe_op_name(c->op), n);
	if (s != MOE_OK) {
		codec_teardown(r);
		return s;
	}
	moe_bench_fill_normal(r->x, n, 1.0f / 32, 0x5eed0202u);
	r->q.flags = shape->flags;
	*inst = r;
	return MOE_OK;
}

static void quantize_call(void *inst, const struct moe_backend *b, const struct moe_threads *th)
{
	(void)th; /* codecs have no threaded slot */
	struct codec_inst *r = inst;
	r->q.global_scale = 0;
	b->quantize(r->x, &r->q);
}

static void dequantize_call(void *inst, const struct moe_backend *b, const struct moe_threads *th)
{
	(void)th;
	struct codec_inst *r = inst;
	b->dequantize(&r->q, r->x);
}

static void codec_cost(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out)
{
	moe_bench_cost_codec(c->op, &c->u.codec, out);
}

const struct moe_bench_op_impl moe_bench_quantize_impl = { codec_setup, quantize_call, codec_cost, codec_teardown,
							  NULL, NULL };
const struct moe_bench_op_impl moe_bench_dequantize_impl = { codec_setup, dequantize_call, codec_cost,
							    codec_teardown, NULL, NULL };
