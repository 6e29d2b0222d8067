/* moe_norm__avx2: centered LayerNorm and RMSNorm, f32 or bf16 input, weight and output, fp32
 * arithmetic, AVX2 + FMA (8 lanes). The algorithm, its order of operations and its error bound are those of
 * norm_impl.h; it mirrors the reference (reference/norm.c, Hugging Face's CohereLayerNorm) except
 * for the summation order. It handles every problem moe_norm_validate accepts. */
#include "simd/simd_avx2.h"
#include "norm/norm_impl.h"
#include "kernels.h"

void moe_norm__avx2(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	norm_rows(p, x, w, y);
}

bool moe_norm__avx2_supports(enum moe_op op, const void *problem)
{
	return op == MOE_OP_NORM;
}
