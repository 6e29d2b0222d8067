/* moe_layer__avx2: the MoE layer for AVX2 + FMA + F16C (8 lanes) with OpenMP threads, every weight format and
 * act_quant, bitwise identical results for any thread count. The algorithm and why the thread
 * count does not matter: layer/layer_impl.h; the experts: expert/expert_impl.h; the router: the
 * avx2 table's. */
#include "simd/simd_avx2.h"
#include "expert/expert_simd_avx2.h"

#define EK_DEC_MR 2
#define EK_PRE_MR 6

#include "expert/expert_impl.h"
#include "layer/layer_impl.h"
#include "kernels.h"

static const struct ek_codecs codecs = {
	moe_quantize_fp8e4m3__avx2, moe_dequantize_fp8e4m3__avx2, moe_quantize_nvfp4__avx2,
	moe_dequantize_nvfp4__avx2,
};

void moe_layer__avx2(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		    const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	lk_layer(MOE_ISA_AVX2, &codecs, p, x, logits, bias, w, y, ids, weights, workspace);
}

bool moe_layer__avx2_supports(enum moe_op op, const void *problem)
{
	return op == MOE_OP_LAYER;
}
