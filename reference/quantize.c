/* The reference quantizer and dequantizer: moe_quantize__ref / moe_dequantize__ref dispatch on the
 * dtype, and handle the unscaled formats here.
 *   F32   a copy, bit for bit (NaN payloads included).
 *   BF16  fp32 -> bf16 rounds to nearest even, NaN stays a quiet NaN (moe_f32_to_bf16); back is exact.
 * The scaled formats are in quantize_fp8.c, quantize_nvfp4.c and quantize_mx.c. Preconditions
 * (asserted): moe_qtensor_validate(q) == MOE_OK and x non-NULL unless the tensor is empty. */
#include <assert.h>

#include "quantize_impl.h"

void moe_quantize__ref(const float *x, struct moe_qtensor *q)
{
	assert(moe_qtensor_validate(q) == MOE_OK);
	const int64_t n = q->rows * q->cols;
	assert(x || n == 0);
	switch (q->dtype) {
	case MOE_DTYPE_F32:
		if (n)
			memcpy(q->data, x, (size_t)n * sizeof(float));
		break;
	case MOE_DTYPE_BF16: {
		moe_bf16 *d = q->data;
		for (int64_t i = 0; i < n; i++)
			d[i] = moe_f32_to_bf16(x[i]);
		break;
	}
	case MOE_DTYPE_FP8E4M3:
	case MOE_DTYPE_FP8E5M2:
		moe_quantize_fp8__ref(x, q);
		break;
	case MOE_DTYPE_NVFP4:
		moe_quantize_nvfp4__ref(x, q);
		break;
	case MOE_DTYPE_MXFP4:
	case MOE_DTYPE_MXFP8:
		moe_quantize_mx__ref(x, q);
		break;
	default:
		assert(!"quantize: dtype accepted by validate but not handled");
	}
}

void moe_dequantize__ref(const struct moe_qtensor *q, float *x)
{
	assert(moe_qtensor_validate(q) == MOE_OK);
	const int64_t n = q->rows * q->cols;
	assert(x || n == 0);
	switch (q->dtype) {
	case MOE_DTYPE_F32:
		if (n)
			memcpy(x, q->data, (size_t)n * sizeof(float));
		break;
	case MOE_DTYPE_BF16: {
		const moe_bf16 *d = q->data;
		for (int64_t i = 0; i < n; i++)
			x[i] = moe_bf16_to_f32(d[i]);
		break;
	}
	case MOE_DTYPE_FP8E4M3:
	case MOE_DTYPE_FP8E5M2:
		moe_dequantize_fp8__ref(q, x);
		break;
	case MOE_DTYPE_NVFP4:
		moe_dequantize_nvfp4__ref(q, x);
		break;
	case MOE_DTYPE_MXFP4:
	case MOE_DTYPE_MXFP8:
		moe_dequantize_mx__ref(q, x);
		break;
	default:
		assert(!"dequantize: dtype accepted by validate but not handled");
	}
}
