/* The quantize and dequantize kernels for AVX-512 F/BW/DQ/VL (16 lanes): FP8 E4M3 (per-tensor, per-channel, 1x128,
 * 128x128, both overflow modes), NVFP4 (linear, 128x4 and 8x4 scale layouts) and MXFP4,
 * bit-exact with moe_quantize__ref / moe_dequantize__ref. The algorithm and its exactness
 * argument are codec_impl.h's; this file instantiates it. */
#include "simd/simd_avx512.h"
#include "codec/codec_impl.h"
#include "kernels.h"

void moe_quantize_fp8e4m3__avx512(const float *x, struct moe_qtensor *q)
{
	ck_quantize_fp8(x, q);
}

bool moe_quantize_fp8e4m3__avx512_supports(enum moe_op op, const void *problem)
{
	return ck_supports(op, problem, MOE_OP_QUANTIZE, MOE_DTYPE_FP8E4M3);
}

void moe_dequantize_fp8e4m3__avx512(const struct moe_qtensor *q, float *x)
{
	ck_dequantize_fp8(q, x);
}

bool moe_dequantize_fp8e4m3__avx512_supports(enum moe_op op, const void *problem)
{
	return ck_supports(op, problem, MOE_OP_DEQUANTIZE, MOE_DTYPE_FP8E4M3);
}

void moe_quantize_nvfp4__avx512(const float *x, struct moe_qtensor *q)
{
	ck_quantize_nvfp4(x, q);
}

bool moe_quantize_nvfp4__avx512_supports(enum moe_op op, const void *problem)
{
	return ck_supports(op, problem, MOE_OP_QUANTIZE, MOE_DTYPE_NVFP4);
}

void moe_dequantize_nvfp4__avx512(const struct moe_qtensor *q, float *x)
{
	ck_dequantize_nvfp4(q, x);
}

bool moe_dequantize_nvfp4__avx512_supports(enum moe_op op, const void *problem)
{
	return ck_supports(op, problem, MOE_OP_DEQUANTIZE, MOE_DTYPE_NVFP4);
}

void moe_quantize_mxfp4__avx512(const float *x, struct moe_qtensor *q)
{
	ck_quantize_mxfp4(x, q);
}

bool moe_quantize_mxfp4__avx512_supports(enum moe_op op, const void *problem)
{
	return ck_supports(op, problem, MOE_OP_QUANTIZE, MOE_DTYPE_MXFP4);
}

void moe_dequantize_mxfp4__avx512(const struct moe_qtensor *q, float *x)
{
	ck_dequantize_mxfp4(q, x);
}

bool moe_dequantize_mxfp4__avx512_supports(enum moe_op op, const void *problem)
{
	return ck_supports(op, problem, MOE_OP_DEQUANTIZE, MOE_DTYPE_MXFP4);
}
