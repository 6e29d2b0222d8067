/* moe_norm__avx512bf16: centered LayerNorm and RMSNorm with bf16 output (f32 or bf16 input and
 * weight), fp32 arithmetic: norm_impl.h's algorithm and order of operations, bit for bit the output
 * of moe_norm__avx512, with norm_avx512bf16_io.h's loads and stores: bf16 widened by one vpermw,
 * the fp32 -> bf16 rounding done by AVX512_BF16's vcvtneps2bf16 except for the vectors holding a
 * subnormal or a NaN, which take the exact integer rounding. The vpermw widening matters because
 * the kernel reads bf16 input three times per row and is bound by 512-bit vector operations
 * (measured against moe_norm__avx512 in results/amd-epyc-2c-2026-11-22-route-norm/).
 * Problems with f32 output are not accepted: the avx512 variant handles them; bf16 input goes to
 * moe_norm__avx512bf16_dot first. */
#include "norm/norm_avx512bf16_io.h"
#include "norm/norm_impl.h"
#include "kernels.h"

/* norm_rows on a local copy of the parameters with the input and weight dtypes given as constants.
 * The copy cannot alias y, and with everything inlined (flatten) each dtype pair gets its own
 * loops, with no dtype or row_sum mode tests per vector. */
static inline void norm_rows_as(const struct moe_norm_params *p, enum moe_dtype in, enum moe_dtype wt,
				const void *x, const void *w, void *y)
{
	struct moe_norm_params q = *p;
	q.in_dtype = in;
	q.weight_dtype = wt;
	q.out_dtype = MOE_DTYPE_BF16;
	norm_rows(&q, x, w, y);
}

__attribute__((flatten)) void moe_norm__avx512bf16(const struct moe_norm_params *p, const void *x, const void *w,
						     void *y)
{
	assert(p->out_dtype == MOE_DTYPE_BF16);
	const bool xb = p->in_dtype == MOE_DTYPE_BF16, wb = p->weight_dtype == MOE_DTYPE_BF16;
	if (xb && wb)
		norm_rows_as(p, MOE_DTYPE_BF16, MOE_DTYPE_BF16, x, w, y);
	else if (xb)
		norm_rows_as(p, MOE_DTYPE_BF16, MOE_DTYPE_F32, x, w, y);
	else if (wb)
		norm_rows_as(p, MOE_DTYPE_F32, MOE_DTYPE_BF16, x, w, y);
	else
		norm_rows_as(p, MOE_DTYPE_F32, MOE_DTYPE_F32, x, w, y);
}

bool moe_norm__avx512bf16_supports(enum moe_op op, const void *problem)
{
	return op == MOE_OP_NORM && ((const struct moe_norm_params *)problem)->out_dtype == MOE_DTYPE_BF16;
}
