/* FP8 tensors (E4M3FN, E5M2) with fp32 scales, all in fp32 arithmetic, one rounding per operation.
 * FMAX is the format's largest finite value: 448 for E4M3, 57344 for E5M2. Elements convert with
 * the tensor's overflow mode (SATFINITE, or NAN_ON_OVERFLOW when the flag is set; codec_fp8.c).
 *
 * PER_TENSOR, PER_CHANNEL (vLLM / TensorRT-LLM FP8): one encode scale per tensor or per row,
 *   gs = FMAX / amax;  q = fp8(x * gs);  x' = f(q) / gs.
 *   amax 0 (all zeros) or infinite: gs = 1, so zeros stay zeros and an infinity converts as itself
 *   (FMAX, or NaN / inf with the flag). An amax so small that FMAX / amax overflows: gs = FLT_MAX
 *   (an infinite gs would turn every zero into NaN on the way back, 0 * inf).
 * BLOCK_1x128, BLOCK_128x128 (DeepSeek-V3 activations / weights): one dequant scale per block of
 *   1x128 or 128x128 elements of [rows][cols], the blocks at the right and bottom edges partial,
 *   scales row-major over the block grid,
 *   s = max(amax, 1e-12f) / FMAX;  q = fp8(x / s);  x' = f(q) * s.
 *   A block containing an infinity (amax = inf) gets s = 1, for the same reason as gs = 1 above.
 * With a finite amax nothing overflows: |x * gs| and |x / s| stay within an fp32 rounding of FMAX,
 * which converts to FMAX. The overflow mode matters only where an infinity forced the scale to 1:
 * for the infinity, and for finite elements beyond FMAX that share its scale. */
#include <assert.h>
#include <float.h>

#include "quantize_impl.h"

static float fp8_max(enum moe_dtype t)
{
	return t == MOE_DTYPE_FP8E5M2 ? 57344.0f : 448.0f;
}

static uint8_t fp8_encode(enum moe_dtype t, float v, enum moe_fp8_overflow mode)
{
	return t == MOE_DTYPE_FP8E5M2 ? moe_fp8e5m2_encode(v, mode) : moe_fp8e4m3_encode(v, mode);
}

static float fp8_decode(enum moe_dtype t, uint8_t c)
{
	return t == MOE_DTYPE_FP8E5M2 ? moe_fp8e5m2_decode(c) : moe_fp8e4m3_decode(c);
}

static float encode_scale(float amax, float fmax)
{
	if (amax == 0.0f || isinf(amax))
		return 1.0f;
	const float gs = fmax / amax;
	return isinf(gs) ? FLT_MAX : gs;
}

static float block_scale(float amax, float fmax)
{
	return isinf(amax) ? 1.0f : fmaxf(amax, 1e-12f) / fmax;
}

/* The scale grid: nbr x nbc blocks of br x bc elements (the last ones partial). PER_TENSOR is one
 * block of rows x cols and PER_CHANNEL a block of 1 x cols per row, even when cols is 0: their
 * scales exist for empty blocks too (gs = 1). The DeepSeek layouts have no block over nothing. */
struct fp8_grid {
	int64_t br, bc, nbr, nbc;
};

static struct fp8_grid fp8_grid(const struct moe_qtensor *q)
{
	const int64_t rows = q->rows, cols = q->cols;
	switch (q->scaling) {
	case MOE_SCALING_PER_TENSOR:
		return (struct fp8_grid){ rows, cols, 1, 1 };
	case MOE_SCALING_PER_CHANNEL:
		return (struct fp8_grid){ 1, cols, rows, 1 };
	case MOE_SCALING_BLOCK_1x128:
		return (struct fp8_grid){ 1, 128, rows, (cols + 127) / 128 };
	default:
		assert(q->scaling == MOE_SCALING_BLOCK_128x128);
		return (struct fp8_grid){ 128, 128, (rows + 127) / 128, (cols + 127) / 128 };
	}
}

static bool is_encode_scale(enum moe_scaling s)
{
	return s == MOE_SCALING_PER_TENSOR || s == MOE_SCALING_PER_CHANNEL;
}

void moe_quantize_fp8__ref(const float *x, struct moe_qtensor *q)
{
	const enum moe_fp8_overflow mode =
		(q->flags & MOE_Q_FP8_NAN_ON_OVERFLOW) ? MOE_FP8_NAN_ON_OVERFLOW : MOE_FP8_SATFINITE;
	const float fmax = fp8_max(q->dtype);
	const bool enc = is_encode_scale(q->scaling);
	const int64_t rows = q->rows, cols = q->cols;
	const struct fp8_grid g = fp8_grid(q);
	uint8_t *d = q->data;
	float *scales = q->scales;

	for (int64_t rb = 0; rb < g.nbr; rb++) {
		for (int64_t cb = 0; cb < g.nbc; cb++) {
			const int64_t r0 = rb * g.br, c0 = cb * g.bc;
			const int64_t nr = rows - r0 < g.br ? rows - r0 : g.br;
			const int64_t nc = cols - c0 < g.bc ? cols - c0 : g.bc;
			const float amax = nr && nc ? moe_ref_amax(x + r0 * cols + c0, nr, nc, cols) : 0.0f;
			const float s = enc ? encode_scale(amax, fmax) : block_scale(amax, fmax);
			scales[rb * g.nbc + cb] = s;
			for (int64_t r = r0; r < r0 + nr; r++)
				for (int64_t c = c0; c < c0 + nc; c++)
					d[r * cols + c] = fp8_encode(q->dtype, enc ? x[r * cols + c] * s : x[r * cols + c] / s,
								     mode);
		}
	}
}

void moe_dequantize_fp8__ref(const struct moe_qtensor *q, float *x)
{
	const bool enc = is_encode_scale(q->scaling);
	const int64_t rows = q->rows, cols = q->cols;
	const struct fp8_grid g = fp8_grid(q);
	const uint8_t *d = q->data;
	const float *scales = q->scales;

	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c = 0; c < cols; c++) {
			const float s = scales[(r / g.br) * g.nbc + c / g.bc];
			const float v = fp8_decode(q->dtype, d[r * cols + c]);
			x[r * cols + c] = enc ? v / s : v * s;
		}
	}
}
