/* The whole "avx512" table: for every op and problem it runs the best kernel of the per-op list
 * files needing at most AVX-512 F/BW/DQ/VL, and the reference where none accepts the problem
 * (moe_builtin_pick). It is the table below it with its own kernels written over, decided per
 * problem rather than per op, so it is as complete as the reference. */
#include "kernels.h"

static void route(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		  int32_t *ids, float *weights)
{
	moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_ROUTE, p)->table->route(p, T, logits, bias, ids, weights);
}

static void norm(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_NORM, p)->table->norm(p, x, w, y);
}

static void quantize(const float *x, struct moe_qtensor *q)
{
	moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_QUANTIZE, q)->table->quantize(x, q);
}

static void dequantize(const struct moe_qtensor *q, float *x)
{
	moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_DEQUANTIZE, q)->table->dequantize(q, x);
}

static void expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		   float *y, void *workspace)
{
	moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_EXPERT, p)->table->expert(p, x, w, y, workspace);
}

static void layer(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		  const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_LAYER, p)->table->layer(p, x, logits, bias, w, y, ids, weights,
									 workspace);
}

const struct moe_backend moe_backend_avx512 = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = "avx512",
	.description = "AVX-512 F/BW/DQ/VL kernels where they apply, the reference elsewhere",
	.route = route,
	.norm = norm,
	.quantize = quantize,
	.dequantize = dequantize,
	.expert = expert,
	.layer = layer,
	.supports = NULL,
};
