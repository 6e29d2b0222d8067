/* The expert MLP kernels for AVX-512 F/BW/DQ/VL (16 lanes), every weight format and act_quant:
 *   moe_expert__avx512_decode   dot form, up to 4 tokens x 6 weight rows per register tile;
 *                               chosen for <= 16 tokens
 *   moe_expert__avx512_prefill  12 tokens x 32 columns register tile over 256 x 32 packed panels
 * The algorithm, its order of operations and why it meets moe_expert_ref_f64's bound are
 * expert_impl.h's; activation quantization goes through this ISA's codec kernels. */
#include "simd/simd_avx512.h"
#include "expert/expert_simd_avx512.h"

#define EK_DEC_MR 4
#define EK_PRE_MR 12

#include "expert/expert_impl.h"
#include "kernels.h"

static const struct ek_codecs codecs = {
	moe_quantize_fp8e4m3__avx512, moe_dequantize_fp8e4m3__avx512, moe_quantize_nvfp4__avx512,
	moe_dequantize_nvfp4__avx512,
};

void moe_expert__avx512_decode(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			       float *y, void *workspace)
{
	ek_expert(false, p, x, w, y, workspace, &codecs);
}

bool moe_expert__avx512_decode_supports(enum moe_op op, const void *problem)
{
	return ek_supports(op, problem, 16);
}

void moe_expert__avx512_prefill(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
				float *y, void *workspace)
{
	ek_expert(true, p, x, w, y, workspace, &codecs);
}

bool moe_expert__avx512_prefill_supports(enum moe_op op, const void *problem)
{
	return ek_supports(op, problem, INT64_MAX);
}
