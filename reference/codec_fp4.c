/* The 4-bit element format E2M1 (NVFP4 and MXFP4 elements), bit-exact.
 *
 * A nibble is sign (bit 3), 2 exponent bits (bias 1) and 1 mantissa bit: magnitudes
 * {0, 0.5, 1, 1.5, 2, 3, 4, 6}. Encoding rounds to nearest with ties to the even code, which puts
 * the decision points at 0.25 (-> 0), 0.75 (-> 1), 1.25 (-> 1), 1.75 (-> 2), 2.5 (-> 2), 3.5 (-> 4)
 * and 5 (-> 4), and saturates everything beyond 6, +-inf included, to +-6. The format has no NaN:
 * a NaN becomes 6 with the NaN's sign bit (codec.h). The sign is kept everywhere, so -0.0f encodes
 * to 0x8 and 0x8 decodes to -0.0f. Decoding reads the low 4 bits of its argument only. */
#include "codec_bits.h"
#include "moe/codec.h"

uint8_t moe_e2m1_encode(float x)
{
	const uint32_t u = moe_f32_bits(x), a = u & 0x7fffffffu;
	const uint8_t sign = (uint8_t)((u >> 28) & 0x8u);
	if (a >= 0x7f800000u)
		return (uint8_t)(0x7u | sign);
	const uint32_t c = moe_minifloat_round(a, 1, 1);
	return (uint8_t)((c > 0x7u ? 0x7u : c) | sign);
}

float moe_e2m1_decode(uint8_t nibble)
{
	static const float magnitude[8] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };
	const float v = magnitude[nibble & 0x7];
	return (nibble & 0x8) ? -v : v;
}
