/* Internal to the reference quantizers: the per-format halves of moe_quantize__ref and
 * moe_dequantize__ref (one file each), and the absolute maximum they all take.
 *
 * The amax of a set of values is the largest |x| among its non-NaN elements (fmaxf drops a NaN
 * operand), 0 for an empty set or one holding only zeros and NaNs; an infinity counts. A NaN
 * element therefore never decides a scale: it encodes to the format's NaN (or +-6 in E2M1) on its
 * own. Each format file says what a zero or an infinite amax does. */
#ifndef MOE_REF_QUANTIZE_IMPL_H
#define MOE_REF_QUANTIZE_IMPL_H

#include <math.h>

#include "moe/codec.h"

/* amax over the rows x cols sub-matrix of x with row stride ld */
static inline float moe_ref_amax(const float *x, int64_t rows, int64_t cols, int64_t ld)
{
	float m = 0.0f;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			m = fmaxf(m, fabsf(x[r * ld + c]));
	return m;
}

moe_quantize_fn moe_quantize_fp8__ref;     /* FP8E4M3, FP8E5M2 with fp32 scales (quantize_fp8.c) */
moe_dequantize_fn moe_dequantize_fp8__ref;
moe_quantize_fn moe_quantize_nvfp4__ref;   /* quantize_nvfp4.c */
moe_dequantize_fn moe_dequantize_nvfp4__ref;
moe_quantize_fn moe_quantize_mx__ref;      /* MXFP4, MXFP8 (quantize_mx.c) */
moe_dequantize_fn moe_dequantize_mx__ref;

#endif
