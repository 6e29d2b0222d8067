/* moe_expert_validate: the boundary check of an expert problem, shared by every expert kernel.
 *
 * Accepted weight formats (dtype / scaling; sf_layout LINEAR except for NVFP4):
 *   F32 / none, BF16 / none, FP8E4M3 / tensor, channel, 1x128 or 128x128, NVFP4 / nvfp4 (any
 *   layout; its global_scale must be finite and > 0, decoding divides by it), MXFP4 / mx.
 * Activation handling against the weight dtype: NONE and BF16 go with every weight format (fp32
 * emulation, W16A16, W8A16, W4A16); FP8_TENSOR and FP8_1x128 need FP8E4M3 weights (W8A8, any of
 * its scalings); NVFP4 needs NVFP4 weights (W4A4). act_global_scale[0..1] must not be NaN or
 * infinite for NVFP4 activations (<= 0 means "derive from amax") and is ignored otherwise.
 * Shapes: tokens >= 0, hidden >= 1, inter >= 1; gate and up [I][H], down [H][I], each of the
 * declared format and valid for moe_qtensor_validate; the workspace size must fit in size_t.
 * Every failure is MOE_ERR_INVALID_ARG with a message "expert: ..." naming the tensor and values. */
#include <math.h>
#include <stdio.h>

#include "expert_impl.h"

static bool weight_format_ok(enum moe_dtype t, enum moe_scaling s)
{
	switch (t) {
	case MOE_DTYPE_F32:
	case MOE_DTYPE_BF16:
		return s == MOE_SCALING_NONE;
	case MOE_DTYPE_FP8E4M3:
		return s == MOE_SCALING_PER_TENSOR || s == MOE_SCALING_PER_CHANNEL || s == MOE_SCALING_BLOCK_1x128 ||
		       s == MOE_SCALING_BLOCK_128x128;
	case MOE_DTYPE_NVFP4:
		return s == MOE_SCALING_NVFP4;
	case MOE_DTYPE_MXFP4:
		return s == MOE_SCALING_MX;
	default:
		return false;
	}
}

static bool act_ok(enum moe_act_quant a, enum moe_dtype t)
{
	switch (a) {
	case MOE_ACT_NONE:
	case MOE_ACT_BF16:
		return true;
	case MOE_ACT_FP8_TENSOR:
	case MOE_ACT_FP8_1x128:
		return t == MOE_DTYPE_FP8E4M3;
	case MOE_ACT_NVFP4:
		return t == MOE_DTYPE_NVFP4;
	default:
		return false;
	}
}

static enum moe_status check_tensor(const struct moe_expert_params *p, const char *name,
				    const struct moe_qtensor *q, int64_t rows, int64_t cols, const char *shape)
{
	if (q->dtype != p->weight_dtype)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: %s has dtype %s, params say weight_dtype %s", name,
				moe_dtype_name(q->dtype), moe_dtype_name(p->weight_dtype));
	if (q->scaling != p->weight_scaling)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: %s has scaling %s, params say weight_scaling %s", name,
				moe_scaling_name(q->scaling), moe_scaling_name(p->weight_scaling));
	if (q->sf_layout != p->weight_sf_layout)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: %s has scale layout %s, params say weight_sf_layout %s",
				name, moe_sf_layout_name(q->sf_layout), moe_sf_layout_name(p->weight_sf_layout));
	if (q->rows != rows || q->cols != cols)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: %s is [%lld][%lld], expected %s = [%lld][%lld]", name,
				(long long)q->rows, (long long)q->cols, shape, (long long)rows, (long long)cols);
	if (moe_qtensor_validate(q) != MOE_OK) {
		char why[512];
		snprintf(why, sizeof why, "%s", moe_last_error());
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: %s: %s", name, why);
	}
	if (q->dtype == MOE_DTYPE_NVFP4 && !(q->global_scale > 0.0f && isfinite(q->global_scale)))
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: %s: nvfp4 global_scale %g must be finite and > 0", name,
				(double)q->global_scale);
	return MOE_OK;
}

enum moe_status moe_expert_validate(const struct moe_expert_params *p, const struct moe_expert_weights *w)
{
	if (!p)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: params is NULL");
	if (!w)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: weights is NULL");
	if (p->tokens < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: tokens=%lld must be >= 0", (long long)p->tokens);
	if (p->hidden < 1 || p->inter < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: hidden=%lld and inter=%lld must both be >= 1",
				(long long)p->hidden, (long long)p->inter);
	if (!weight_format_ok(p->weight_dtype, p->weight_scaling))
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: weight format %s with scaling %s not supported (f32/none, "
				"bf16/none, fp8e4m3/tensor|channel|1x128|128x128, nvfp4/nvfp4, mxfp4/mx)",
				moe_dtype_name(p->weight_dtype), moe_scaling_name(p->weight_scaling));
	if (p->weight_sf_layout < 0 || p->weight_sf_layout >= MOE_SF_LAYOUT_COUNT ||
	    (p->weight_sf_layout != MOE_SF_LINEAR && p->weight_dtype != MOE_DTYPE_NVFP4))
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: weight_sf_layout %s (%d) with %s weights (only nvfp4 "
				"takes a swizzled layout)", moe_sf_layout_name(p->weight_sf_layout),
				(int)p->weight_sf_layout, moe_dtype_name(p->weight_dtype));
	if (p->act_quant < 0 || p->act_quant >= MOE_ACT_COUNT)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: act_quant %d out of range (none, bf16, fp8, fp8-1x128, "
				"nvfp4)", (int)p->act_quant);
	if (!act_ok(p->act_quant, p->weight_dtype))
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: act_quant %s needs %s weights, not %s",
				moe_act_quant_name(p->act_quant),
				p->act_quant == MOE_ACT_NVFP4 ? "nvfp4" : "fp8e4m3", moe_dtype_name(p->weight_dtype));
	for (int j = 0; j < 2 && p->act_quant == MOE_ACT_NVFP4; j++)
		if (!isfinite(p->act_global_scale[j]))
			return moe_fail(MOE_ERR_INVALID_ARG, "expert: act_global_scale[%d] = %g is not finite (<= 0 "
					"derives it from amax)", j, (double)p->act_global_scale[j]);
	enum moe_status s = check_tensor(p, "gate", &w->gate, p->inter, p->hidden, "[I][H]");
	if (s == MOE_OK)
		s = check_tensor(p, "up", &w->up, p->inter, p->hidden, "[I][H]");
	if (s == MOE_OK)
		s = check_tensor(p, "down", &w->down, p->hidden, p->inter, "[H][I]");
	if (s != MOE_OK)
		return s;
	/* after the tensors: an NVFP4 activation needs H and I % 16, which they have checked */
	struct moe_ref_expert_ws ws;
	if (!moe_ref_expert_ws_layout(p, &ws))
		return moe_fail(MOE_ERR_INVALID_ARG, "expert: tokens=%lld hidden=%lld inter=%lld: workspace size "
				"overflows size_t", (long long)p->tokens, (long long)p->hidden, (long long)p->inter);
	return MOE_OK;
}
