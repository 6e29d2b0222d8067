/* Exact element codecs on MOE_VW lanes, for the quantize/dequantize kernels and the expert kernels'
 * weight decoding: E4M3 (FP8) and E2M1 (NVFP4/MXFP4) encode and decode, bit for bit what the
 * reference's scalar codecs (reference/codec_fp8.c, codec_fp4.c) return for every input, NaN,
 * infinity, signed zero and subnormals included.
 *
 * Written with GCC's generic vector types on 32-bit lanes rather than intrinsics: the same source
 * compiles to AVX2 or AVX-512 (whichever of simd_avx2.h / simd_avx512.h the including file chose,
 * which fixes MOE_VW), and the variable per-lane shifts the rounding needs (vpsrlvd/vpsllvd) exist
 * in both. Encoding rounds on the integer bits of the fp32 value, as the reference does: shift the
 * significand right until one unit is one step of the target grid, round the shifted-out bits to
 * nearest with ties to even, add the code of the binade's first value (codec_bits.h explains why
 * the codes then come out right across binades and into the subnormals). */
#ifndef MOE_KERNELS_CODEC_VEC_H
#define MOE_KERNELS_CODEC_VEC_H

#include <stdint.h>
#include <string.h>

#include "moe/codec.h"

typedef uint32_t cv_u32 __attribute__((vector_size(MOE_VW * 4)));
typedef int32_t cv_i32 __attribute__((vector_size(MOE_VW * 4)));
typedef float cv_f32 __attribute__((vector_size(MOE_VW * 4)));
typedef uint8_t cv_u8 __attribute__((vector_size(MOE_VW)));

static inline cv_u32 cv_splat(uint32_t k)
{
	return (cv_u32){ 0 } + k;
}

/* Lanes where m is all ones take a, the others b (m a comparison result). */
static inline cv_u32 cv_select(cv_i32 m, cv_u32 a, cv_u32 b)
{
	return ((cv_u32)m & a) | (~(cv_u32)m & b);
}

/* MOE_VW bytes from p, zero-extended to 32-bit lanes; n < MOE_VW reads only n (the rest are 0). */
static inline cv_u32 cv_load_u8(const uint8_t *p, int n)
{
	cv_u8 b = { 0 };
	if (n == MOE_VW)
		memcpy(&b, p, MOE_VW);
	else
		memcpy(&b, p, (size_t)n);
	return __builtin_convertvector(b, cv_u32);
}

/* The low byte of the first n lanes to p. */
static inline void cv_store_u8(uint8_t *p, cv_u32 v, int n)
{
	const cv_u8 b = __builtin_convertvector(v, cv_u8);
	if (n == MOE_VW)
		memcpy(p, &b, MOE_VW);
	else
		memcpy(p, &b, (size_t)n);
}

/* abs_bits: fp32 bits of a non-negative value (an infinity or NaN gives some code above every
 * format's maximum, which the callers map). Returns the magnitude code rounded to nearest even
 * on the grid of a format with mbits mantissa bits and exponent bias `bias`; moe_minifloat_round
 * (reference/codec_bits.h) lane by lane. */
static inline cv_u32 cv_minifloat_round(cv_u32 abs_bits, int mbits, int bias)
{
	const int emin = 1 - bias;
	cv_i32 e = (cv_i32)(abs_bits >> 23);
	const cv_i32 normal = e != 0;
	const cv_u32 sig = (abs_bits & 0x7fffffu) | ((cv_u32)normal & 0x800000u);
	e = e + (~normal & 1) - 127; /* fp32 subnormals have the exponent of 2^-126 */
	const cv_i32 below = e < emin;
	cv_i32 shift = (23 - mbits) + (below & (emin - e));
	shift = (cv_i32)cv_select(shift > 25, cv_splat(25), (cv_u32)shift); /* >= 25: rounds to 0 */
	const cv_u32 base = (cv_u32)(~below & ((e - emin) << mbits));
	const cv_u32 ush = (cv_u32)shift;
	const cv_u32 half = cv_splat(1) << (ush - 1);
	const cv_u32 rem = sig & ((half << 1) - 1);
	const cv_u32 q = sig >> ush;
	const cv_i32 up = (rem > half) | ((rem == half) & ((q & 1) != 0));
	return base + q - (cv_u32)up;
}

/* E4M3FN codes of x (moe_fp8e4m3_encode): SATFINITE or NaN on overflow; a NaN gives 0x7F. */
static inline cv_u32 cv_e4m3_encode(cv_f32 x, bool nan_on_overflow)
{
	const cv_u32 u = (cv_u32)x, a = u & 0x7fffffffu;
	cv_u32 c = cv_minifloat_round(a, 3, 7);
	c = cv_select(c > 0x7eu, cv_splat(nan_on_overflow ? 0x7fu : 0x7eu), c) | ((u >> 24) & 0x80u);
	return cv_select(a > 0x7f800000u, cv_splat(0x7fu), c);
}

/* The value of E4M3FN codes (moe_fp8e4m3_decode): every NaN code gives the canonical NaN. */
static inline cv_f32 cv_e4m3_decode(cv_u32 c)
{
	const cv_u32 e = (c >> 3) & 15u, m = c & 7u;
	const cv_f32 sub = __builtin_convertvector((cv_i32)m, cv_f32) * 0x1p-9f;
	cv_u32 v = cv_select(e == 0, (cv_u32)sub, ((e + 120u) << 23) | (m << 20));
	v |= (c & 0x80u) << 24;
	return (cv_f32)cv_select((c & 0x7fu) == 0x7fu, cv_splat(0x7fc00000u), v);
}

/* E2M1 nibbles of x (moe_e2m1_encode): saturating to +-6, a NaN to 6 with its sign. */
static inline cv_u32 cv_e2m1_encode(cv_f32 x)
{
	const cv_u32 u = (cv_u32)x;
	cv_u32 c = cv_minifloat_round(u & 0x7fffffffu, 1, 1);
	c = cv_select(c > 7u, cv_splat(7u), c);
	return c | ((u >> 28) & 8u);
}

/* The value of the E2M1 nibbles in the low 4 bits of each lane (moe_e2m1_decode). */
static inline cv_f32 cv_e2m1_decode(cv_u32 nib)
{
	static const float mag[16] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
				       0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };
	cv_f32 t;
	memcpy(&t, mag, sizeof t);
	const cv_u32 v = (cv_u32)__builtin_shuffle(t, (cv_i32)(nib & 7u));
	return (cv_f32)(v | ((nib & 8u) << 28));
}

#endif
