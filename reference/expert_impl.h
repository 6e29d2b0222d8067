/* Internal to the reference expert and layer (reference/expert*.c, layer*.c): the pieces the fp32
 * oracle and the double-precision reference must share so that they see the very same inputs.
 *
 *   - one row of a weight tensor dequantized with moe_dequantize__ref semantics, through a one-row
 *     view of the tensor (its data, its scales, the NVFP4 swizzled scales gathered into a linear
 *     row), so that no caller ever materializes a whole dequantized matrix;
 *   - an activation [rows][cols] quantized and dequantized as act_quant says (expert.h), as ONE
 *     tensor: the per-tensor FP8 scale and a derived NVFP4 global scale come from the amax of the
 *     whole [rows][cols] block (flashinfer's tests quantize x and the intermediate this way);
 *   - the byte layouts of the expert and layer kernels' workspaces. */
#ifndef MOE_REF_EXPERT_IMPL_H
#define MOE_REF_EXPERT_IMPL_H

#include "moe/layer.h"

/* Byte offsets of the workspace regions of moe_expert__ref, each 64-byte aligned. */
struct moe_ref_expert_ws {
	size_t xq;     /* [M][H] float: the activation x after act_quant */
	size_t a;      /* [M][I] float: silu(g) * u, then after act_quant */
	size_t wrow;   /* 2H + I floats: one gate row, one up row, one down row */
	size_t sfrow;  /* max(H, I) / 16 bytes: one NVFP4 row of scales gathered from a swizzled layout */
	size_t qdata;  /* the quantized activation, [M][max(H, I)] elements */
	size_t qscale; /* and its scales */
	size_t total;
};

/* Reserves count * elem bytes, rounded up to 64, at offset *at (advanced past them); the offset
 * goes to *off. false on overflow. */
bool moe_ref_ws_region(size_t *at, size_t count, size_t elem, size_t *off);

/* false when a size overflows size_t. */
bool moe_ref_expert_ws_layout(const struct moe_expert_params *p, struct moe_ref_expert_ws *ws);

/* Byte offsets of the workspace regions of moe_layer__ref, each 64-byte aligned. */
struct moe_ref_layer_ws {
	size_t counts;  /* [E] int32 */
	size_t offsets; /* [E + 1] int32 */
	size_t perm;    /* [T*K] int32: slots grouped by expert */
	size_t inv;     /* [T*K] int32: position of each slot in perm */
	size_t xg;      /* [T][H] float: one expert's tokens gathered */
	size_t out;     /* [T*K][H] float: expert outputs, in perm order */
	size_t expert;  /* the expert kernel's workspace for T tokens, routed or shared width */
	size_t total;
};

/* false when a size overflows size_t (p valid apart from that). */
bool moe_ref_layer_ws_layout(const struct moe_layer_params *p, struct moe_ref_layer_ws *ws);

/* Row r of q (a valid tensor) into out[q->cols]. sf_scratch: q->cols / 16 bytes, used only for an
 * NVFP4 tensor whose scales are swizzled. */
void moe_ref_dequant_row(const struct moe_qtensor *q, int64_t r, float *out, uint8_t *sf_scratch);


/* The NVFP4 global scale used for an activation: `given` when > 0, else derived from amax. */
float moe_ref_act_global_scale(float given, float amax);

/* in[rows][cols] quantized per aq and dequantized into out (out may be in). given_gs: the NVFP4
 * global scale (act_global_scale[0] or [1]); qdata/qscale: the buffers moe_act_qtensor_format sizes. */
void moe_ref_act_quant(enum moe_act_quant aq, float given_gs, int64_t rows, int64_t cols, const float *in,
		       float *out, void *qdata, void *qscale);

/* The interval of values the act_quant quantize-dequantize of a correct kernel's intermediate can
 * take (expert_hull.c): val[rows*cols] = a_ref and err = its bound in, midpoint and half width out.
 * Adds its counts to *info; MOE_ERR_NOMEM when its scratch cannot be allocated. */
enum moe_status moe_ref_act_hull(enum moe_act_quant aq, float given_gs, int64_t rows, int64_t cols, double *val,
				 double *err, struct moe_expert_f64_info *info);

#endif
