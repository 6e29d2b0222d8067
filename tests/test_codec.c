/* Unit tests of the element codecs (reference/codec_fp8.c, codec_fp4.c): E4M3FN, E5M2, E2M1, UE8M0.
 *
 * Expected values come from two independent sources: hand-worked constants (arithmetic in the
 * comments), and an exhaustive nearest-value search in double over the grid of each format,
 * whose values the test derives from the bit fields with ldexp (never from the decoder under test).
 * The search breaks ties towards the even code, and extends each grid by the value the format would
 * have next (E4M3 480, E5M2 65536, E2M1 8) so that overflow is decided by the same nearest rule.
 * Double is exact here: near a grid point, a float and the point differ by a multiple of the
 * float's ulp that fits in 24 bits (and valgrind runs x87 long double at double precision anyway). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "moe/moe.h"

static const uint32_t canonical_nan = 0x7fc00000u;

/* ---- independent models of the formats ---- */

/* E4M3FN: s eeee mmm, bias 7; e = 0 subnormal m/8 * 2^-6; 0x7F/0xFF NaN; no infinity. */
static double e4m3_value(unsigned c, bool *nan)
{
	const unsigned e = (c >> 3) & 15, m = c & 7;
	*nan = e == 15 && m == 7;
	const double v = e ? ldexp(1.0 + m / 8.0, (int)e - 7) : ldexp(m / 8.0, -6);
	return (c & 0x80) ? -v : v;
}

/* E5M2: s eeeee mm, bias 15; e = 31: infinity (m = 0) or NaN; e = 0 subnormal m/4 * 2^-14. */
static double e5m2_value(unsigned c, bool *nan)
{
	const unsigned e = (c >> 2) & 31, m = c & 3;
	*nan = e == 31 && m != 0;
	const double v = e == 31 ? INFINITY : e ? ldexp(1.0 + m / 4.0, (int)e - 15) : ldexp(m / 4.0, -14);
	return (c & 0x80) ? -v : v;
}

/* grids of non-negative magnitudes, by code, plus the first value beyond the format */
static double g_e4m3[128], g_e5m2[125], g_e2m1[9];

static void build_grids(void)
{
	bool nan;
	for (unsigned c = 0; c <= 0x7e; c++)
		g_e4m3[c] = e4m3_value(c, &nan);
	g_e4m3[0x7f] = 480.0; /* 1.875 * 2^8: mantissa 111 at the top exponent, the NaN code */
	for (unsigned c = 0; c <= 0x7b; c++)
		g_e5m2[c] = e5m2_value(c, &nan);
	g_e5m2[0x7c] = 65536.0; /* 2^16: where the infinity code sits */
	static const double e2m1[9] = { 0, 0.5, 1, 1.5, 2, 3, 4, 6, 8 };
	for (unsigned c = 0; c < 9; c++)
		g_e2m1[c] = e2m1[c];
}

/* Index of the grid point nearest to ax among g[0..n]; a tie goes to the even index. */
static unsigned nearest_even(const double *g, unsigned n, double ax)
{
	if (ax >= g[n])
		return n; /* (beyond it the differences below would all round to the same double) */
	unsigned best = 0;
	for (unsigned i = 1; i <= n; i++) {
		const double di = fabs(ax - g[i]), db = fabs(ax - g[best]);
		if (di < db || (di == db && (best & 1)))
			best = i;
	}
	return best;
}

static unsigned model_e4m3(float x, enum moe_fp8_overflow mode)
{
	if (isnan(x))
		return 0x7f;
	const unsigned s = signbit(x) ? 0x80 : 0;
	const unsigned i = isinf(x) ? 0x7f : nearest_even(g_e4m3, 0x7f, fabs((double)x));
	if (i > 0x7e)
		return (mode == MOE_FP8_NAN_ON_OVERFLOW ? 0x7f : 0x7e) | s;
	return i | s;
}

static unsigned model_e5m2(float x, enum moe_fp8_overflow mode)
{
	if (isnan(x))
		return 0x7f;
	const unsigned s = signbit(x) ? 0x80 : 0;
	const unsigned i = isinf(x) ? 0x7c : nearest_even(g_e5m2, 0x7c, fabs((double)x));
	if (i > 0x7b)
		return (mode == MOE_FP8_NAN_ON_OVERFLOW ? 0x7c : 0x7b) | s;
	return i | s;
}

static unsigned model_e2m1(float x)
{
	const unsigned s = signbit(x) ? 0x8 : 0;
	if (isnan(x) || isinf(x))
		return 0x7 | s;
	const unsigned i = nearest_even(g_e2m1, 8, fabs((double)x));
	return (i > 7 ? 7 : i) | s;
}

/* xorshift64*: a fixed, reproducible stream of test inputs */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng32(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* A random float with a random sign and mantissa and an exponent in [lo, hi] (unbiased). */
static float random_float(int lo, int hi)
{
	const uint32_t e = (uint32_t)(lo + (int)(rng32() % (uint32_t)(hi - lo + 1)) + 127);
	return moe_f32_from_bits((rng32() & 0x807fffffu) | (e << 23));
}

static const enum moe_fp8_overflow modes[2] = { MOE_FP8_SATFINITE, MOE_FP8_NAN_ON_OVERFLOW };

/* ---- E4M3 ---- */

START_TEST(test_e4m3_decode_all_codes)
{
	for (unsigned c = 0; c < 256; c++) {
		bool nan;
		const double want = e4m3_value(c, &nan);
		const float got = moe_fp8e4m3_decode((uint8_t)c);
		if (nan) {
			ck_assert_msg(moe_f32_bits(got) == canonical_nan, "code %02x: bits %08x", c, moe_f32_bits(got));
			continue;
		}
		ck_assert_msg((double)got == want && !!signbit(got) == !!(c & 0x80), "code %02x: %a, want %a",
			      c, (double)got, want);
	}
	/* hand checks: 0x7E = 0 1111 110 = 1.75 * 2^8 = 448; 0x01 = 1/8 * 2^-6 = 2^-9; 0x08 = 2^-6;
	 * 0x38 = 0 0111 000 = 1.0; 0xB4 = 1 0110 100 = -1.5 * 2^-1 = -0.75 */
	ck_assert_float_eq(moe_fp8e4m3_decode(0x7e), 448.0f);
	ck_assert_float_eq(moe_fp8e4m3_decode(0x01), 0x1p-9f);
	ck_assert_float_eq(moe_fp8e4m3_decode(0x08), 0x1p-6f);
	ck_assert_float_eq(moe_fp8e4m3_decode(0x38), 1.0f);
	ck_assert_float_eq(moe_fp8e4m3_decode(0xb4), -0.75f);
	ck_assert_uint_eq(moe_f32_bits(moe_fp8e4m3_decode(0x80)), 0x80000000u);
	ck_assert_uint_eq(moe_f32_bits(moe_fp8e4m3_decode(0xff)), canonical_nan);
}
END_TEST

START_TEST(test_e4m3_round_trip)
{
	for (int mi = 0; mi < 2; mi++)
		for (unsigned c = 0; c < 256; c++)
			if ((c & 0x7f) != 0x7f)
				ck_assert_msg(moe_fp8e4m3_encode(moe_fp8e4m3_decode((uint8_t)c), modes[mi]) == c,
					      "code %02x mode %d", c, mi);
}
END_TEST

/* Every midpoint between adjacent codes (and the one between 448 and 480), and the floats either
 * side of it, against the model; midpoints have one more significant bit than the format, so they
 * are exact floats. */
START_TEST(test_e4m3_midpoints)
{
	for (int mi = 0; mi < 2; mi++) {
		for (unsigned c = 0; c < 0x7f; c++) {
			const float mid = (float)((g_e4m3[c] + g_e4m3[c + 1]) / 2);
			ck_assert((double)mid == (g_e4m3[c] + g_e4m3[c + 1]) / 2);
			const float xs[3] = { mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY) };
			for (int k = 0; k < 3; k++) {
				for (int neg = 0; neg < 2; neg++) {
					const float x = neg ? -xs[k] : xs[k];
					ck_assert_msg(moe_fp8e4m3_encode(x, modes[mi]) == model_e4m3(x, modes[mi]),
						      "x=%a mode %d: %02x, want %02x", (double)x, mi,
						      moe_fp8e4m3_encode(x, modes[mi]), model_e4m3(x, modes[mi]));
				}
			}
			/* the tie itself goes to the even code: c if c is even, else c + 1 */
			const unsigned even = (c & 1) ? c + 1 : c;
			const unsigned want = even > 0x7e ? (mi ? 0x7fu : 0x7eu) : even;
			ck_assert_uint_eq(moe_fp8e4m3_encode(mid, modes[mi]), want);
		}
	}
}
END_TEST

START_TEST(test_e4m3_specials)
{
	const enum moe_fp8_overflow sat = MOE_FP8_SATFINITE, nan = MOE_FP8_NAN_ON_OVERFLOW;
	/* 464 = (448 + 480) / 2 ties to 448 (mantissa 110 even) in both modes */
	ck_assert_uint_eq(moe_fp8e4m3_encode(464.0f, sat), 0x7e);
	ck_assert_uint_eq(moe_fp8e4m3_encode(464.0f, nan), 0x7e);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-464.0f, nan), 0xfe);
	/* one ulp above 464 rounds towards 480: saturated, or NaN with the sign */
	ck_assert_uint_eq(moe_fp8e4m3_encode(nextafterf(464.0f, INFINITY), sat), 0x7e);
	ck_assert_uint_eq(moe_fp8e4m3_encode(nextafterf(464.0f, INFINITY), nan), 0x7f);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-nextafterf(464.0f, INFINITY), nan), 0xff);
	ck_assert_uint_eq(moe_fp8e4m3_encode(1e6f, sat), 0x7e);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-FLT_MAX, sat), 0xfe);
	ck_assert_uint_eq(moe_fp8e4m3_encode(FLT_MAX, nan), 0x7f);
	ck_assert_uint_eq(moe_fp8e4m3_encode(INFINITY, sat), 0x7e);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-INFINITY, sat), 0xfe);
	ck_assert_uint_eq(moe_fp8e4m3_encode(INFINITY, nan), 0x7f);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-INFINITY, nan), 0xff);
	/* every NaN input becomes 0x7F, whatever its sign or payload */
	for (int mi = 0; mi < 2; mi++) {
		ck_assert_uint_eq(moe_fp8e4m3_encode(NAN, modes[mi]), 0x7f);
		ck_assert_uint_eq(moe_fp8e4m3_encode(copysignf(NAN, -1.0f), modes[mi]), 0x7f);
		ck_assert_uint_eq(moe_fp8e4m3_encode(moe_f32_from_bits(0xff800001u), modes[mi]), 0x7f);
	}
	ck_assert_uint_eq(moe_fp8e4m3_encode(0.0f, sat), 0x00);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-0.0f, sat), 0x80);
	/* subnormals: 2^-9 is code 1; 2^-10 ties between 0 and 2^-9 -> 0 (even), keeping the sign;
	 * 3 * 2^-10 = 1.5 * 2^-9 ties between codes 1 and 2 -> 2; 7.5 * 2^-9 ties between code 7
	 * (7 * 2^-9) and code 8 (2^-6, the smallest normal) -> 8 */
	ck_assert_uint_eq(moe_fp8e4m3_encode(0x1p-9f, sat), 0x01);
	ck_assert_uint_eq(moe_fp8e4m3_encode(0x1p-10f, sat), 0x00);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-0x1p-10f, sat), 0x80);
	ck_assert_uint_eq(moe_fp8e4m3_encode(nextafterf(0x1p-10f, 1.0f), sat), 0x01);
	ck_assert_uint_eq(moe_fp8e4m3_encode(0x3p-10f, sat), 0x02);
	ck_assert_uint_eq(moe_fp8e4m3_encode(7.5f * 0x1p-9f, sat), 0x08);
	ck_assert_uint_eq(moe_fp8e4m3_encode(FLT_TRUE_MIN, sat), 0x00);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-FLT_TRUE_MIN, nan), 0x80);
	/* normals: 1 + 1/16 ties between 1.0 (0x38) and 1.125 (0x39) -> 0x38; 1 + 3/16 ties between
	 * 1.125 (0x39) and 1.25 (0x3A) -> 0x3A; 0.1 = 1.6 * 2^-4: mantissa 4.8/8 -> 5, 0 0011 101 */
	ck_assert_uint_eq(moe_fp8e4m3_encode(1.0625f, sat), 0x38);
	ck_assert_uint_eq(moe_fp8e4m3_encode(1.1875f, sat), 0x3a);
	ck_assert_uint_eq(moe_fp8e4m3_encode(0.1f, sat), 0x1d);
	ck_assert_uint_eq(moe_fp8e4m3_encode(-0.1f, nan), 0x9d);
}
END_TEST

START_TEST(test_e4m3_random)
{
	for (int i = 0; i < 60000; i++) {
		const float x = random_float(-14, 10);
		for (int mi = 0; mi < 2; mi++)
			ck_assert_msg(moe_fp8e4m3_encode(x, modes[mi]) == model_e4m3(x, modes[mi]), "x=%a mode %d",
				      (double)x, mi);
	}
	/* values near fp32's own subnormal range and far beyond 448 */
	for (int i = 0; i < 2000; i++) {
		const float tiny = moe_f32_from_bits(rng32() & 0x80ffffffu), huge = random_float(9, 127);
		ck_assert_uint_eq(moe_fp8e4m3_encode(tiny, MOE_FP8_SATFINITE), model_e4m3(tiny, MOE_FP8_SATFINITE));
		ck_assert_uint_eq(moe_fp8e4m3_encode(huge, MOE_FP8_NAN_ON_OVERFLOW),
				  model_e4m3(huge, MOE_FP8_NAN_ON_OVERFLOW));
	}
}
END_TEST

/* ---- E5M2 ---- */

START_TEST(test_e5m2_decode_all_codes)
{
	for (unsigned c = 0; c < 256; c++) {
		bool nan;
		const double want = e5m2_value(c, &nan);
		const float got = moe_fp8e5m2_decode((uint8_t)c);
		if (nan) {
			ck_assert_msg(moe_f32_bits(got) == canonical_nan, "code %02x: bits %08x", c, moe_f32_bits(got));
			continue;
		}
		ck_assert_msg((double)got == want && !!signbit(got) == !!(c & 0x80), "code %02x: %a, want %a",
			      c, (double)got, want);
	}
	/* 0x7B = 0 11110 11 = 1.75 * 2^15 = 57344; 0x7C = +inf; 0x01 = 1/4 * 2^-14 = 2^-16 */
	ck_assert_float_eq(moe_fp8e5m2_decode(0x7b), 57344.0f);
	ck_assert(isinf(moe_fp8e5m2_decode(0x7c)) && moe_fp8e5m2_decode(0x7c) > 0);
	ck_assert(isinf(moe_fp8e5m2_decode(0xfc)) && moe_fp8e5m2_decode(0xfc) < 0);
	ck_assert_float_eq(moe_fp8e5m2_decode(0x01), 0x1p-16f);
	ck_assert_uint_eq(moe_f32_bits(moe_fp8e5m2_decode(0xfd)), canonical_nan);
}
END_TEST

START_TEST(test_e5m2_round_trip)
{
	for (int mi = 0; mi < 2; mi++) {
		for (unsigned c = 0; c < 256; c++) {
			bool nan;
			e5m2_value(c, &nan);
			if (nan)
				continue;
			/* SATFINITE sends the infinities to +-57344 (0x7B / 0xFB) by definition */
			const unsigned want = (c & 0x7f) == 0x7c && modes[mi] == MOE_FP8_SATFINITE ? (c & 0x80) | 0x7b : c;
			ck_assert_msg(moe_fp8e5m2_encode(moe_fp8e5m2_decode((uint8_t)c), modes[mi]) == want,
				      "code %02x mode %d", c, mi);
		}
	}
}
END_TEST

START_TEST(test_e5m2_midpoints)
{
	for (int mi = 0; mi < 2; mi++) {
		for (unsigned c = 0; c < 0x7c; c++) {
			const float mid = (float)((g_e5m2[c] + g_e5m2[c + 1]) / 2);
			ck_assert((double)mid == (g_e5m2[c] + g_e5m2[c + 1]) / 2);
			const float xs[3] = { mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY) };
			for (int k = 0; k < 3; k++)
				for (int neg = 0; neg < 2; neg++) {
					const float x = neg ? -xs[k] : xs[k];
					ck_assert_msg(moe_fp8e5m2_encode(x, modes[mi]) == model_e5m2(x, modes[mi]),
						      "x=%a mode %d", (double)x, mi);
				}
		}
	}
}
END_TEST

START_TEST(test_e5m2_specials)
{
	const enum moe_fp8_overflow sat = MOE_FP8_SATFINITE, nan = MOE_FP8_NAN_ON_OVERFLOW;
	/* 61440 = (57344 + 65536) / 2; 57344 has mantissa 11 (odd), so the tie goes up: infinity in
	 * IEEE mode, 57344 when saturating; one ulp below stays 57344 in both */
	ck_assert_uint_eq(moe_fp8e5m2_encode(61440.0f, nan), 0x7c);
	ck_assert_uint_eq(moe_fp8e5m2_encode(-61440.0f, nan), 0xfc);
	ck_assert_uint_eq(moe_fp8e5m2_encode(61440.0f, sat), 0x7b);
	ck_assert_uint_eq(moe_fp8e5m2_encode(nextafterf(61440.0f, 0.0f), nan), 0x7b);
	ck_assert_uint_eq(moe_fp8e5m2_encode(INFINITY, sat), 0x7b);
	ck_assert_uint_eq(moe_fp8e5m2_encode(-INFINITY, sat), 0xfb);
	ck_assert_uint_eq(moe_fp8e5m2_encode(INFINITY, nan), 0x7c);
	ck_assert_uint_eq(moe_fp8e5m2_encode(-1e30f, nan), 0xfc);
	ck_assert_uint_eq(moe_fp8e5m2_encode(-1e30f, sat), 0xfb);
	for (int mi = 0; mi < 2; mi++) {
		ck_assert_uint_eq(moe_fp8e5m2_encode(NAN, modes[mi]), 0x7f);
		ck_assert_uint_eq(moe_fp8e5m2_encode(copysignf(NAN, -1.0f), modes[mi]), 0x7f);
	}
	/* 2^-16 is code 1; 2^-17 ties to 0; 3 * 2^-17 ties between codes 1 and 2 -> 2; 2^-14 = 0x04 */
	ck_assert_uint_eq(moe_fp8e5m2_encode(0x1p-16f, sat), 0x01);
	ck_assert_uint_eq(moe_fp8e5m2_encode(0x1p-17f, sat), 0x00);
	ck_assert_uint_eq(moe_fp8e5m2_encode(-0x3p-17f, sat), 0x82);
	ck_assert_uint_eq(moe_fp8e5m2_encode(0x1p-14f, sat), 0x04);
	ck_assert_uint_eq(moe_fp8e5m2_encode(-0.0f, sat), 0x80);
}
END_TEST

START_TEST(test_e5m2_random)
{
	for (int i = 0; i < 60000; i++) {
		const float x = random_float(-19, 17);
		for (int mi = 0; mi < 2; mi++)
			ck_assert_msg(moe_fp8e5m2_encode(x, modes[mi]) == model_e5m2(x, modes[mi]), "x=%a mode %d",
				      (double)x, mi);
	}
}
END_TEST

/* ---- E2M1 ---- */

START_TEST(test_e2m1_decode_all_codes)
{
	static const float mag[8] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };
	for (unsigned c = 0; c < 16; c++) {
		const float got = moe_e2m1_decode((uint8_t)c), want = (c & 8) ? -mag[c & 7] : mag[c & 7];
		ck_assert_msg(moe_f32_bits(got) == moe_f32_bits(want), "nibble %x: %a", c, (double)got);
		ck_assert_uint_eq(moe_e2m1_encode(got), c);
	}
}
END_TEST

START_TEST(test_e2m1_thresholds)
{
	/* midpoint -> even code: 0.25 between 0 (code 0) and 0.5 (1) -> 0; 0.75 between 0.5 (1) and 1 (2)
	 * -> 2; 1.25 between 1 (2) and 1.5 (3) -> 2; 1.75 between 1.5 (3) and 2 (4) -> 4; 2.5 between
	 * 2 (4) and 3 (5) -> 4; 3.5 between 3 (5) and 4 (6) -> 6; 5 between 4 (6) and 6 (7) -> 6 */
	static const struct {
		float mid;
		unsigned tie, below, above;
	} t[] = {
		{ 0.25f, 0, 0, 1 }, { 0.75f, 2, 1, 2 }, { 1.25f, 2, 2, 3 }, { 1.75f, 4, 3, 4 },
		{ 2.5f, 4, 4, 5 },  { 3.5f, 6, 5, 6 },  { 5.0f, 6, 6, 7 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const float lo = nextafterf(t[i].mid, 0.0f), hi = nextafterf(t[i].mid, INFINITY);
		ck_assert_uint_eq(moe_e2m1_encode(t[i].mid), t[i].tie);
		ck_assert_uint_eq(moe_e2m1_encode(lo), t[i].below);
		ck_assert_uint_eq(moe_e2m1_encode(hi), t[i].above);
		ck_assert_uint_eq(moe_e2m1_encode(-t[i].mid), t[i].tie | 8);
		ck_assert_uint_eq(moe_e2m1_encode(-lo), t[i].below | 8);
		ck_assert_uint_eq(moe_e2m1_encode(-hi), t[i].above | 8);
	}
	/* saturation, infinities, NaN (-> 6 with the NaN's sign), signed zero */
	ck_assert_uint_eq(moe_e2m1_encode(6.0f), 0x7);
	ck_assert_uint_eq(moe_e2m1_encode(7.0f), 0x7);
	ck_assert_uint_eq(moe_e2m1_encode(1e30f), 0x7);
	ck_assert_uint_eq(moe_e2m1_encode(-100.0f), 0xf);
	ck_assert_uint_eq(moe_e2m1_encode(INFINITY), 0x7);
	ck_assert_uint_eq(moe_e2m1_encode(-INFINITY), 0xf);
	ck_assert_uint_eq(moe_e2m1_encode(NAN), 0x7);
	ck_assert_uint_eq(moe_e2m1_encode(copysignf(NAN, -1.0f)), 0xf);
	ck_assert_uint_eq(moe_e2m1_encode(0.0f), 0x0);
	ck_assert_uint_eq(moe_e2m1_encode(-0.0f), 0x8);
	ck_assert_uint_eq(moe_e2m1_encode(-FLT_TRUE_MIN), 0x8);
	ck_assert_uint_eq(moe_f32_bits(moe_e2m1_decode(0x8)), 0x80000000u);
}
END_TEST

START_TEST(test_e2m1_random)
{
	for (int i = 0; i < 40000; i++) {
		const float x = random_float(-5, 4);
		ck_assert_msg(moe_e2m1_encode(x) == model_e2m1(x), "x=%a", (double)x);
	}
}
END_TEST

/* ---- UE8M0 ---- */

START_TEST(test_ue8m0_all_codes)
{
	for (unsigned c = 0; c < 255; c++) {
		const float got = moe_ue8m0_decode((uint8_t)c);
		ck_assert_msg((double)got == ldexp(1.0, (int)c - 127), "code %u: %a", c, (double)got);
	}
	/* 2^-127 is the fp32 subnormal with only mantissa bit 22 set; 2^127 = exponent field 254 */
	ck_assert_uint_eq(moe_f32_bits(moe_ue8m0_decode(0)), 0x00400000u);
	ck_assert_uint_eq(moe_f32_bits(moe_ue8m0_decode(254)), 0x7f000000u);
	ck_assert_float_eq(moe_ue8m0_decode(127), 1.0f);
	ck_assert_uint_eq(moe_f32_bits(moe_ue8m0_decode(255)), canonical_nan);
}
END_TEST

int main(void)
{
	build_grids();
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, test_e4m3_decode_all_codes);
	tcase_add_test(tc, test_e4m3_round_trip);
	tcase_add_test(tc, test_e4m3_midpoints);
	tcase_add_test(tc, test_e4m3_specials);
	tcase_add_test(tc, test_e4m3_random);
	tcase_add_test(tc, test_e5m2_decode_all_codes);
	tcase_add_test(tc, test_e5m2_round_trip);
	tcase_add_test(tc, test_e5m2_midpoints);
	tcase_add_test(tc, test_e5m2_specials);
	tcase_add_test(tc, test_e5m2_random);
	tcase_add_test(tc, test_e2m1_decode_all_codes);
	tcase_add_test(tc, test_e2m1_thresholds);
	tcase_add_test(tc, test_e2m1_random);
	tcase_add_test(tc, test_ue8m0_all_codes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
