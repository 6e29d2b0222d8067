/* The W16A16 expert MLP with AVX512_BF16 (vdpbf16ps), bf16 weights and act_quant BF16 only:
 *   moe_expert__avx512bf16_prefill  up to 12 tokens x 32 columns of fp32 accumulators over panels
 *                                   of 128 bf16 pairs x 32 columns, packed once per call, two
 *                                   products per lane and instruction: twice the fp32 FMA rate
 * Order of operations, bound and blocking: expert_bf16_prefill.h (vdpbf16ps rounds each of its
 * two additions to nearest even, an fp32 accumulation like any other). vdpbf16ps flushes
 * subnormal inputs to zero, so the kernel checks weights and activations as it goes and runs the
 * fp32 AVX-512 path of expert_impl.h from the start when one holds any. Fewer tokens go to the
 * decode variants, which stream the weights. */
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

void moe_expert__avx512bf16_prefill(const struct moe_expert_params *p, const float *x,
				    const struct moe_expert_weights *w, float *y, void *workspace)
{
	assert(moe_expert_validate(p, w) == MOE_OK && moe_expert__avx512bf16_prefill_supports(MOE_OP_EXPERT, p));
	if (p->tokens == 0)
		return;
	if (!ek_expert_bf16_dot(p, x, w, y, workspace))
		ek_expert_fmt(true, p, x, w, y, workspace, &codecs);
}

bool moe_expert__avx512bf16_prefill_supports(enum moe_op op, const void *problem)
{
	const struct moe_expert_params *p = problem;
	return ek_supports(op, problem, INT64_MAX) &&
	       (!p || (p->tokens > 16 && p->weight_dtype == MOE_DTYPE_BF16 && p->act_quant == MOE_ACT_BF16));
}
