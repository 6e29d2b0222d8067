/* MX tensors (OCP microscaling): MXFP4 (E2M1 elements) and MXFP8 (E4M3 elements) in blocks of 32
 * along cols, one UE8M0 scale byte per block, [rows][cols/32], the byte b meaning 2^(b-127).
 *
 * The scale of a block is the smallest power of two 2^e, e in [-127, 127], with EMAX * 2^e >= amax
 * (EMAX = 6 for MXFP4, 448 for MXFP8): amax / EMAX rounded up to a power of two (formats.md), so no
 * element is clipped (the OCP spec's floor(log2 amax) - emax_elem may clip). It is found by comparing
 * EMAX * 2^e with amax in fp32, which is exact (EMAX * 2^e is representable, or +inf above FLT_MAX,
 * where the comparison still holds), never through a rounded division amax / EMAX.
 * Edge cases, decided here:
 *   - amax = 0 (an all-zero block): every e qualifies, so e = -127, byte 0; the elements are zeros
 *     (with their signs);
 *   - amax tiny (EMAX * 2^-127 >= amax): byte 0 as well; the elements then round coarsely;
 *   - an infinity in the block: no e qualifies; byte 254 (2^127), the infinity converts to +-6
 *     (+-448) and decodes to +-inf again (6 * 2^127 overflows fp32), the finite elements mostly to 0;
 *   - a NaN element: does not affect the scale; it encodes to +-6 (MXFP4) or 0x7F (MXFP8).
 * Elements: MXFP4 q = e2m1(x * 2^-e); MXFP8 q = e4m3(clamp(x * 2^-e, +-448)), computed as e4m3
 * SATFINITE, which is the same for every number (x * 2^-e exceeds 448 only when infinite) and keeps
 * a NaN a NaN (0x7F) where an fminf/fmaxf clamp would turn it into 448.
 * x * 2^-e is exact except where it falls below 2^-126, far under every element rounding point.
 * Decode: x' = f(q) * 2^(b-127), exact except for fp32 overflow. */
#include "quantize_impl.h"

/* The UE8M0 byte of a block with the given amax (see above). */
static uint8_t mx_scale_byte(float amax, float emax)
{
	if (isinf(amax))
		return 254;
	if (amax == 0.0f)
		return 0;
	/* with e = ea - em, EMAX * 2^e lies in the binade of amax, [2^(ea-1), 2^ea): the answer is e or
	 * e + 1. Below e = -127 the comparison may meet fp32 subnormal rounding, but every such e clamps
	 * to -127 anyway. */
	int ea, em;
	frexpf(amax, &ea);
	frexpf(emax, &em);
	int e = ea - em;
	if (ldexpf(emax, e) < amax)
		e++;
	return (uint8_t)((e < -127 ? -127 : e) + 127);
}

void moe_quantize_mx__ref(const float *x, struct moe_qtensor *q)
{
	const bool fp4 = q->dtype == MOE_DTYPE_MXFP4;
	const float emax = fp4 ? 6.0f : 448.0f;
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 32;
	uint8_t *d = q->data, *sf = q->scales;

	for (int64_t m = 0; m < rows; m++) {
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float *b = x + m * cols + kb * 32;
			const uint8_t byte = mx_scale_byte(moe_ref_amax(b, 1, 32, 32), emax);
			const int e = (int)byte - 127;
			sf[m * kblocks + kb] = byte;
			if (fp4) {
				uint8_t *out = d + (m * cols + kb * 32) / 2;
				for (int i = 0; i < 32; i += 2)
					out[i / 2] = (uint8_t)(moe_e2m1_encode(ldexpf(b[i], -e)) |
							       (moe_e2m1_encode(ldexpf(b[i + 1], -e)) << 4));
			} else {
				uint8_t *out = d + m * cols + kb * 32;
				for (int i = 0; i < 32; i++)
					out[i] = moe_fp8e4m3_encode(ldexpf(b[i], -e), MOE_FP8_SATFINITE);
			}
		}
	}
}

void moe_dequantize_mx__ref(const struct moe_qtensor *q, float *x)
{
	const bool fp4 = q->dtype == MOE_DTYPE_MXFP4;
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 32;
	const uint8_t *d = q->data, *sf = q->scales;

	for (int64_t m = 0; m < rows; m++) {
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float scale = moe_ue8m0_decode(sf[m * kblocks + kb]);
			float *out = x + m * cols + kb * 32;
			for (int i = 0; i < 32; i++) {
				const int64_t k = m * cols + kb * 32 + i;
				const float v = fp4 ? moe_e2m1_decode((uint8_t)(d[k / 2] >> (4 * (k % 2)))) :
						      moe_fp8e4m3_decode(d[k]);
				out[i] = v * scale;
			}
		}
	}
}
