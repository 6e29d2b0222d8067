/* Template of a whole per-ISA table. For every op and problem the table runs the best kernel of
 * the per-op list files needing at most MOE_TABLE_ISA, and the reference where none accepts the
 * problem (moe_builtin_pick): the table below it with its own kernels written over, decided per
 * problem rather than per op, so it is as complete as the reference.
 *
 * Included once per ISA (backend_<isa>.c) after defining MOE_TABLE_ISA, MOE_TABLE_SYMBOL,
 * MOE_TABLE_NAME and MOE_TABLE_DESCRIPTION. The forwarding functions are static, one set per
 * including file. */
#include "kernels.h"

static void route(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		  int32_t *ids, float *weights)
{
	moe_builtin_pick_sized(MOE_TABLE_ISA, MOE_OP_ROUTE, p, T)->table->route(p, T, logits, bias, ids, weights);
}

static void norm(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_NORM, p)->table->norm(p, x, w, y);
}

static void quantize(const float *x, struct moe_qtensor *q)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_QUANTIZE, q)->table->quantize(x, q);
}

static void dequantize(const struct moe_qtensor *q, float *x)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_DEQUANTIZE, q)->table->dequantize(q, x);
}

static void expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		   float *y, void *workspace)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_EXPERT, p)->table->expert(p, x, w, y, workspace);
}

static void layer(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		  const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_LAYER, p)->table->layer(p, x, logits, bias, w, y, ids, weights,
									 workspace);
}

const struct moe_backend MOE_TABLE_SYMBOL = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = MOE_TABLE_NAME,
	.description = MOE_TABLE_DESCRIPTION,
	.route = route,
	.norm = norm,
	.quantize = quantize,
	.dequantize = dequantize,
	.expert = expert,
	.layer = layer,
	.supports = NULL,
};
