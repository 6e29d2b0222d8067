/* Internal to the reference codecs: rounding an fp32 magnitude onto the grid of a small binary
 * float format (E4M3, E5M2, E2M1), exactly, on the integer bits of the fp32 value.
 *
 * A format with `mbits` mantissa bits and exponent bias `bias` has its smallest normal at 2^emin,
 * emin = 1 - bias, and subnormals k * 2^(emin - mbits). Its non-negative codes are ordered like
 * their values, and the code of the next value up is always code + 1, also from the largest
 * subnormal to the smallest normal and from one binade to the next. So rounding reduces to: take
 * the fp32 significand, shift it right until one unit is one step of the target grid at that
 * magnitude, round the shifted-out bits to nearest with ties to even (the parity of the kept part is
 * the parity of the code), and add the code of the binade's first value. A carry out of the mantissa
 * lands on the next binade's first code by construction. The result may exceed the format's
 * largest finite code; the caller decides what overflow means (saturate, NaN, infinity). */
#ifndef MOE_REF_CODEC_BITS_H
#define MOE_REF_CODEC_BITS_H

#include <assert.h>

#include "moe/dtype.h"

/* Every NaN a decoder returns: positive quiet NaN with an empty payload, as CUDA's conversions
 * return their canonical NaN, so that all implementations agree on the bits. */
#define MOE_CANONICAL_NAN_BITS 0x7fc00000u

static inline float moe_canonical_nan(void)
{
	return moe_f32_from_bits(MOE_CANONICAL_NAN_BITS);
}

/* abs_bits: the fp32 bits of a finite, non-negative value. Returns its magnitude code, rounded to
 * nearest even; codes above the format's maximum mean overflow. */
static inline uint32_t moe_minifloat_round(uint32_t abs_bits, int mbits, int bias)
{
	assert(abs_bits < 0x7f800000u);
	const int emin = 1 - bias;
	int e = (int)(abs_bits >> 23);
	uint32_t sig = abs_bits & 0x7fffffu;
	if (e != 0)
		sig |= 0x800000u;
	else
		e = 1; /* fp32 subnormals have the exponent of 2^-126 without the implicit bit */
	e -= 127;

	int shift = 23 - mbits; /* one unit of sig >> shift is one grid step in a normal binade */
	uint32_t base = 0;
	if (e >= emin)
		base = (uint32_t)(e - emin) << mbits; /* the code of the binade's first value, minus 2^mbits */
	else
		shift += emin - e; /* subnormal range: the step stays 2^(emin - mbits) */

	/* sig < 2^24, so with 25 or more bits shifted out the value is below half a step. */
	if (shift >= 25)
		return 0;
	const uint32_t half = 1u << (shift - 1);
	const uint32_t rem = sig & ((half << 1) - 1u);
	uint32_t q = sig >> shift;
	if (rem > half || (rem == half && (q & 1u)))
		q++;
	return base + q;
}

#endif
