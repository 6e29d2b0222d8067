/* The AVX2 pieces of the expert kernels that generic vectors do not express well: byte and nibble
 * expansion for the FP8 / FP4 decoders, and the 8 x 8 transpose of the prefill packing. */
#ifndef MOE_KERNELS_EXPERT_SIMD_AVX2_H
#define MOE_KERNELS_EXPERT_SIMD_AVX2_H

#include <immintrin.h>
#include <stdint.h>

/* 8 bytes zero-extended to 32-bit lanes. */
static inline __m256i ek_u8_lanes(const uint8_t *p)
{
	return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* 8 nibbles of the 8 bytes at p: the low ones (a 16-block's even elements) when column k is in the
 * block's first half, else the high ones (its odd elements), in the low 4 bits of each lane (bits
 * above are garbage). */
static inline __m256i ek_nibble_lanes(const uint8_t *p, int64_t k)
{
	const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
	return (k & 8) ? _mm256_srli_epi32(v, 4) : v;
}

/* In-register transpose of an 8 x 8 fp32 tile (v[i] = row i in, column i out), for packing decoded
 * weight rows into the prefill panels: unpack pairs, shuffle quads, swap 128-bit halves. */
static inline void ek_transpose(__m256 v[8])
{
	__m256 t[8], s[8];
	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
	}
	/* s[4q + c], 128-bit half L: column 4L + c of rows 4q .. 4q + 3 */
	for (int i = 0; i < 8; i += 4) {
		s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
		s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
		s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
		s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
	}
	for (int c = 0; c < 4; c++) {
		v[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
		v[4 + c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
	}
}

#endif
