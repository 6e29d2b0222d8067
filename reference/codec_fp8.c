/* The 8-bit element and scale formats: FP8 E4M3FN, FP8 E5M2 and UE8M0, bit-exact.
 *
 * Encoding is fp32 -> code with one rounding, to nearest with ties to the even code, subnormals
 * included (codec_bits.h does it on the integer bits, never through a table or a division).
 * What happens beyond the largest finite value is the overflow mode:
 *   SATFINITE        mirrors CUDA __nv_cvt_float_to_fp8(x, __NV_SATFINITE, ...): every value that
 *                    rounds beyond the largest finite value, and +-inf, becomes +-max
 *                    (E4M3 448 = 0x7E: |x| > 464; E5M2 57344 = 0x7B: |x| >= 61440).
 *   NAN_ON_OVERFLOW  mirrors PyTorch's .to(float8_e4m3fn) / .to(float8_e5m2): E4M3 has no infinity,
 *                    so what rounds beyond 448 (|x| > 464) and +-inf become NaN with the sign of x
 *                    (0x7F / 0xFF, as PyTorch writes it); E5M2 overflows IEEE-style to +-inf
 *                    (0x7C / 0xFC, |x| >= 61440 because 57344 has an odd mantissa).
 * 464 itself is the midpoint between 448 (mantissa 110, even) and the first value E4M3FN lacks
 * (480, mantissa 111), so it rounds to 448 in both modes.
 * A NaN input becomes 0x7F in every mode and format: CUDA makes every NaN its canonical positive
 * NaN before converting (PyTorch would keep the sign of a NaN; we do not follow it there).
 *
 * Decoding is exact (every code is an fp32 value); every NaN code decodes to the canonical NaN
 * 0x7FC00000 (codec_bits.h), and -0 codes to -0.0f. */
#include <math.h>

#include "codec_bits.h"
#include "moe/codec.h"

uint8_t moe_fp8e4m3_encode(float x, enum moe_fp8_overflow mode)
{
	const uint32_t u = moe_f32_bits(x), a = u & 0x7fffffffu;
	const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
	if (a > 0x7f800000u)
		return 0x7f;
	const uint32_t c = a == 0x7f800000u ? 0xffu : moe_minifloat_round(a, 3, 7);
	if (c > 0x7eu)
		return (uint8_t)((mode == MOE_FP8_NAN_ON_OVERFLOW ? 0x7fu : 0x7eu) | sign);
	return (uint8_t)(c | sign);
}

float moe_fp8e4m3_decode(uint8_t code)
{
	const int e = (code >> 3) & 0xf, m = code & 0x7;
	if ((code & 0x7f) == 0x7f)
		return moe_canonical_nan();
	/* normal: (1 + m/8) * 2^(e-7) = (8 + m) * 2^(e-10); subnormal: m/8 * 2^-6 = m * 2^-9 */
	const float v = e ? ldexpf((float)(8 + m), e - 10) : ldexpf((float)m, -9);
	return (code & 0x80) ? -v : v;
}

uint8_t moe_fp8e5m2_encode(float x, enum moe_fp8_overflow mode)
{
	const uint32_t u = moe_f32_bits(x), a = u & 0x7fffffffu;
	const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
	if (a > 0x7f800000u)
		return 0x7f;
	const uint32_t c = a == 0x7f800000u ? 0xffu : moe_minifloat_round(a, 2, 15);
	if (c > 0x7bu)
		return (uint8_t)((mode == MOE_FP8_NAN_ON_OVERFLOW ? 0x7cu : 0x7bu) | sign);
	return (uint8_t)(c | sign);
}

float moe_fp8e5m2_decode(uint8_t code)
{
	const int e = (code >> 2) & 0x1f, m = code & 0x3;
	float v;
	if (e == 0x1f) {
		if (m)
			return moe_canonical_nan();
		v = INFINITY;
	} else {
		/* normal: (1 + m/4) * 2^(e-15) = (4 + m) * 2^(e-17); subnormal: m * 2^-16 */
		v = e ? ldexpf((float)(4 + m), e - 17) : ldexpf((float)m, -16);
	}
	return (code & 0x80) ? -v : v;
}

float moe_ue8m0_decode(uint8_t code)
{
	/* 2^-127 is an fp32 subnormal, still exact */
	return code == 0xff ? moe_canonical_nan() : ldexpf(1.0f, (int)code - 127);
}
