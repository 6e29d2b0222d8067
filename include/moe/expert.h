/* moebench public interface: one expert MLP, y = down(silu(gate(x)) * up(x)).
 *
 * x[M][H] fp32, y[M][H] fp32, gate and up [I][H], down [H][I], each a struct moe_qtensor of the
 * weight format in the params. silu(g) = g / (1 + exp(-g)). Activation handling (act_quant):
 *   NONE    fp32 activations throughout (fp32 accumulation).
 *   BF16    x and the intermediate a = silu(g)*u are rounded to bf16 before their GEMM (W16A16, W4A16).
 *   FP8_TENSOR / FP8_1x128   x and a quantized to E4M3 (per-tensor / DeepSeek 1x128) and dequantized.
 *   NVFP4   x and a quantized to NVFP4 (W4A4) with global scales act_global_scale[0] and [1]
 *           (<= 0: derived from the amax of that activation, as flashinfer's tests do).
 * The exact order of operations is the reference's contract (reference/expert.c). */
#ifndef MOE_EXPERT_H
#define MOE_EXPERT_H

#include "moe/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_act_quant {
	MOE_ACT_NONE = 0,
	MOE_ACT_BF16 = 1,
	MOE_ACT_FP8_TENSOR = 2,
	MOE_ACT_FP8_1x128 = 3,
	MOE_ACT_NVFP4 = 4,
	MOE_ACT_COUNT
};

struct moe_expert_params {
	int64_t tokens; /* M, may be 0 */
	int64_t hidden; /* H */
	int64_t inter;  /* I */
	enum moe_dtype weight_dtype;    /* F32, BF16, FP8E4M3, NVFP4, MXFP4 */
	enum moe_scaling weight_scaling;
	enum moe_sf_layout weight_sf_layout;
	enum moe_act_quant act_quant;
	float act_global_scale[2];
};

struct moe_expert_weights {
	struct moe_qtensor gate; /* [I][H] */
	struct moe_qtensor up;   /* [I][H] */
	struct moe_qtensor down; /* [H][I] */
};

/* workspace: at least moe_expert_workspace_bytes(p) bytes, 64-byte aligned. */
typedef void moe_expert_fn(const struct moe_expert_params *p, const float *x,
			   const struct moe_expert_weights *w, float *y, void *workspace);

const char *moe_act_quant_name(enum moe_act_quant a); /* "none", "bf16", "fp8", "fp8-1x128", "nvfp4" */
enum moe_status moe_act_quant_parse(const char *name, enum moe_act_quant *out);

/* Checks the params and that the three weight tensors have the declared format and shapes. */
enum moe_status moe_expert_validate(const struct moe_expert_params *p, const struct moe_expert_weights *w);
size_t moe_expert_workspace_bytes(const struct moe_expert_params *p);

/* The quantized-tensor format an activation mode quantizes x or the intermediate into, for a
 * [rows][cols] activation (FP8 per-tensor, FP8 1x128, NVFP4); false for NONE and BF16, which are
 * plain fp32 roundings. Data and scale pointers are left NULL. */
bool moe_act_qtensor_format(enum moe_act_quant aq, int64_t rows, int64_t cols, struct moe_qtensor *q);

moe_expert_fn moe_expert__ref;

/* Reference in double on the dequantized weights and (quantize-dequantized) activations, with an
 * a-priori bound per output (verification.md): any correct fp32-accumulating kernel satisfies
 * |y - y_ref| <= bound elementwise. y_ref and bound: M*H doubles each. */
enum moe_status moe_expert_ref_f64(const struct moe_expert_params *p, const float *x,
				   const struct moe_expert_weights *w, double *y_ref, double *bound);

/* What moe_expert_ref_f64_ex found out about the quantized intermediate activation a. */
struct moe_expert_f64_info {
	int64_t a_uncertain;      /* elements of Q(a) whose value a correct kernel may change: a rounding
				   * boundary within the error bound of a, or a scale of its own uncertain */
	int64_t scales_uncertain; /* scales of Q(a) (per tensor, per block, NVFP4 global) that a correct
				   * kernel's rounding may change; propagated as intervals */
	bool unbounded;           /* no finite bound: non-finite values, or every element of a may be 0
				   * while its scale is derived from amax; every bound is then +inf */
};

/* moe_expert_ref_f64, also reporting what it found (info may be NULL). */
enum moe_status moe_expert_ref_f64_ex(const struct moe_expert_params *p, const float *x,
				      const struct moe_expert_weights *w, double *y_ref, double *bound,
				      struct moe_expert_f64_info *info);

#ifdef __cplusplus
}
#endif
#endif
