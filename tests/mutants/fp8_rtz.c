/* Mutant: FP8 E4M3 quantization rounding toward zero instead of to nearest even. Wraps the
 * reference quantizer and, for every E4M3 element whose code lies farther from zero than the
 * scaled input, steps the code one magnitude toward zero (E4M3 magnitudes grow with the code, so
 * code - 1 is the next value down). The scaled input is recomputed as the reference forms it
 * (codec.h): x * gs for the per-tensor and per-channel encode scales, x / s for the 1x128 and
 * 128x128 dequant scales. Saturated values and NaN are left as they are. */
#include <math.h>

#include "mutant.h"

static void quantize__fp8_rtz(const float *x, struct moe_qtensor *q)
{
	moe_quantize__ref(x, q);
	if (q->dtype != MOE_DTYPE_FP8E4M3)
		return;
	const int64_t rows = q->rows, cols = q->cols;
	const float *scales = q->scales;
	uint8_t *d = q->data;
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c = 0; c < cols; c++) {
			float y;
			switch (q->scaling) {
			case MOE_SCALING_PER_TENSOR: y = x[r * cols + c] * scales[0]; break;
			case MOE_SCALING_PER_CHANNEL: y = x[r * cols + c] * scales[r]; break;
			case MOE_SCALING_BLOCK_1x128:
				y = x[r * cols + c] / scales[r * ((cols + 127) / 128) + c / 128];
				break;
			case MOE_SCALING_BLOCK_128x128:
				y = x[r * cols + c] / scales[(r / 128) * ((cols + 127) / 128) + c / 128];
				break;
			default: return;
			}
			uint8_t code = d[r * cols + c];
			const float v = moe_fp8e4m3_decode(code);
			if (isnan(v) || isnan(y) || (code & 0x7f) == 0)
				continue;
			if (fabsf(v) > fabsf(y))
				d[r * cols + c] = (uint8_t)((code & 0x80) | ((code & 0x7f) - 1));
		}
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-fp8-rtz";
	b->description = "quantize: FP8 E4M3 rounds toward zero instead of to nearest even";
	b->quantize = quantize__fp8_rtz;
}
