/* NVFP4 tensors: E2M1 elements in blocks of 16 along cols, one E4M3 scale per block (in the
 * tensor's scale-factor layout), one fp32 global encode scale gs per tensor.
 *
 * The IEEE-exact recipe of TransformerEngine and flashinfer (FLASHINFER_DISABLE_FP4_QUANT_FAST_MATH=1),
 * in fp32, one rounding per operation, in this order (formats.md):
 *   gs     = q->global_scale if > 0, else moe_nvfp4_global_scale(amax of the tensor), stored back
 *   vmax   = amax of the block
 *   SF     = vmax != 0 ? vmax * (gs * (1.0f / 6.0f)) : 0
 *   sf8    = e4m3 SATFINITE (SF);  SFq = f(sf8)
 *   oscale = vmax != 0 ? fminf(1.0f / (SFq * (1.0f / gs)), FLT_MAX) : 0
 *   q_i    = e2m1(x_i * oscale)
 * Decode: x'_i = e2m1(q_i) * (f(sf8) * (1.0f / gs)).
 * Consequences the recipe decides on its own, without special cases:
 *   - an all-zero block has sf8 = 0 and zero nibbles (-0.0f elements keep their sign: 0x8);
 *   - an SF below 2^-6 (E4M3's smallest normal) rounds with the absolute step 2^-9, a large
 *     relative change (2.5 * 2^-9 ties down to 2^-8, -20%); where it rounds down, the block's
 *     largest elements saturate at +-6;
 *   - an SF of at most 2^-10 rounds to sf8 = 0: oscale = FLT_MAX (1/0 clamped) and the whole block
 *     decodes to zeros;
 *   - an infinity makes vmax infinite, SF saturates to 448 and the infinity to +-6 (finite after
 *     decoding); a NaN element encodes to +-6 and does not affect its block's scale.
 * Nibble 2j of a row goes to the low half of byte j. Scale padding is written as zeros. */
#include <assert.h>
#include <float.h>

#include "quantize_impl.h"

void moe_quantize_nvfp4__ref(const float *x, struct moe_qtensor *q)
{
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 16;
	if (!(q->global_scale > 0.0f))
		q->global_scale = moe_nvfp4_global_scale(rows && cols ? moe_ref_amax(x, rows, cols, cols) : 0.0f);
	const float gs = q->global_scale;
	uint8_t *d = q->data, *sf = q->scales;
	const size_t sf_bytes = moe_qtensor_scale_bytes(q);
	if (sf_bytes)
		memset(sf, 0, sf_bytes);

	for (int64_t m = 0; m < rows; m++) {
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float *b = x + m * cols + kb * 16;
			const float vmax = moe_ref_amax(b, 1, 16, 16);
			const float s = vmax != 0.0f ? vmax * (gs * (1.0f / 6.0f)) : 0.0f;
			const uint8_t sf8 = moe_fp8e4m3_encode(s, MOE_FP8_SATFINITE);
			const float sfq = moe_fp8e4m3_decode(sf8);
			const float oscale = vmax != 0.0f ? fminf(1.0f / (sfq * (1.0f / gs)), FLT_MAX) : 0.0f;
			sf[moe_nvfp4_sf_offset(q->sf_layout, rows, kblocks, m, kb)] = sf8;
			uint8_t *out = d + (m * cols + kb * 16) / 2;
			for (int i = 0; i < 16; i += 2)
				out[i / 2] = (uint8_t)(moe_e2m1_encode(b[i] * oscale) |
						       (moe_e2m1_encode(b[i + 1] * oscale) << 4));
		}
	}
}

void moe_dequantize_nvfp4__ref(const struct moe_qtensor *q, float *x)
{
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 16;
	const float gs = q->global_scale;
	const uint8_t *d = q->data, *sf = q->scales;
	assert(gs > 0.0f || rows * cols == 0);

	for (int64_t m = 0; m < rows; m++) {
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const uint8_t sf8 = sf[moe_nvfp4_sf_offset(q->sf_layout, rows, kblocks, m, kb)];
			const float scale = moe_fp8e4m3_decode(sf8) * (1.0f / gs);
			const uint8_t *in = d + (m * cols + kb * 16) / 2;
			float *out = x + m * cols + kb * 16;
			for (int i = 0; i < 16; i += 2) {
				out[i] = moe_e2m1_decode(in[i / 2] & 0xf) * scale;
				out[i + 1] = moe_e2m1_decode(in[i / 2] >> 4) * scale;
			}
		}
	}
}
