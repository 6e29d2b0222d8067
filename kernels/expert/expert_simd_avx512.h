/* The AVX-512 pieces of the expert kernels that generic vectors do not express well: byte and
 * nibble expansion for the FP8 / FP4 decoders, and the 16 x 16 transpose of the prefill packing. */
#ifndef MOE_KERNELS_EXPERT_SIMD_AVX512_H
#define MOE_KERNELS_EXPERT_SIMD_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* 16 bytes zero-extended to 32-bit lanes. */
static inline __m512i ek_u8_lanes(const uint8_t *p)
{
	return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
}

/* The 16 nibbles of 8 bytes: lanes 0-7 the low nibbles (a block's even elements), lanes 8-15 the
 * high ones (its odd elements), each in the low 4 bits of its lane (bits above are garbage). */
static inline __m512i ek_nibble_lanes(const uint8_t *p, int64_t k)
{
	uint64_t b;
	memcpy(&b, p, 8);
	(void)k;
	const __m512i v = _mm512_cvtepu8_epi32(_mm_set1_epi64x((long long)b));
	return _mm512_srlv_epi32(v, _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4));
}

/* In-register transpose of a 16 x 16 fp32 tile (v[i] = row i in, column i out), for packing
 * decoded weight rows into the prefill panels: unpack pairs, shuffle quads, then move 128-bit
 * lanes twice. 64 shuffles per 256 elements. Inlined and unrolled so that the 16 vectors never
 * leave the registers (a called copy passed them through memory). */
static inline __attribute__((always_inline)) void ek_transpose(__m512 v[16])
{
	__m512 t[16];
	_Pragma("GCC unroll 16")
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
	}
	/* v[4q + c], 128-bit lane L: column 4L + c of rows 4q .. 4q + 3 */
	_Pragma("GCC unroll 16")
	for (int i = 0; i < 16; i += 4) {
		v[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
		v[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
		v[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
		v[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
	}
	_Pragma("GCC unroll 16")
	for (int c = 0; c < 4; c++) {
		const __m512 a = _mm512_shuffle_f32x4(v[c], v[4 + c], 0x88), b = _mm512_shuffle_f32x4(v[c], v[4 + c], 0xdd);
		const __m512 e = _mm512_shuffle_f32x4(v[8 + c], v[12 + c], 0x88);
		const __m512 d = _mm512_shuffle_f32x4(v[8 + c], v[12 + c], 0xdd);
		t[c] = _mm512_shuffle_f32x4(a, e, 0x88);
		t[8 + c] = _mm512_shuffle_f32x4(a, e, 0xdd);
		t[4 + c] = _mm512_shuffle_f32x4(b, d, 0x88);
		t[12 + c] = _mm512_shuffle_f32x4(b, d, 0xdd);
	}
	_Pragma("GCC unroll 16")
	for (int i = 0; i < 16; i++)
		v[i] = t[i];
}

#endif
