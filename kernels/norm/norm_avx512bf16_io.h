/* Loads and stores of the AVX512_BF16 norm kernels, with the results of simd_avx512.h's vf_load,
 * vf_store and vf_store_tail, for an including file to pass to norm_impl.h as MOE_NORM_LOAD,
 * MOE_NORM_STORE and MOE_NORM_STORE_TAIL.
 *
 * bf16 loads are widened by one vpermw (word k to the upper half of lane k, the lower halves zeroed
 * by the mask) instead of vpmovzxwd and vpslld: the norm kernels are bound by 512-bit vector
 * operations, so the saved one per load shows.
 *
 * bf16 stores round with vcvtneps2bf16. It rounds to nearest even like moe_f32_to_bf16, but treats
 * subnormal inputs as zero and quiets NaNs differently. vfpclassps finds the vectors holding a
 * subnormal or a NaN (one instruction and a mask test per 16 elements); those go through
 * simd_avx512.h's exact integer rounding, every other vector through the instruction. Zeros,
 * infinities and normal values that round up to infinity come out the same either way. f32 stores
 * are plain stores. */
#ifndef MOE_KERNELS_NORM_AVX512BF16_IO_H
#define MOE_KERNELS_NORM_AVX512BF16_IO_H

#include "simd/simd_avx512.h"

/* vfpclassps categories: quiet NaN, denormal, signalling NaN. */
#define MOE_NORM_CLASS_INEXACT_BF16 (0x01 | 0x20 | 0x80)

static inline __m256i norm_bf16_bits(moe_vf v)
{
	if (_mm512_fpclass_ps_mask(v, MOE_NORM_CLASS_INEXACT_BF16))
		return _mm512_cvtepi32_epi16(vi_bf16_bits(v));
	return (__m256i)_mm512_cvtneps_pbh(v);
}

static inline void norm_store(void *p, enum moe_dtype t, int64_t i, moe_vf v)
{
	if (t == MOE_DTYPE_BF16)
		_mm256_storeu_si256((__m256i *)((uint16_t *)p + i), norm_bf16_bits(v));
	else
		_mm512_storeu_ps((float *)p + i, v);
}

static inline void norm_store_tail(void *p, enum moe_dtype t, int64_t i, moe_vf v, int n)
{
	if (t == MOE_DTYPE_BF16)
		_mm256_mask_storeu_epi16((uint16_t *)p + i, vm_first(n), norm_bf16_bits(v));
	else
		_mm512_mask_storeu_ps((float *)p + i, vm_first(n), v);
}

static inline moe_vf norm_load(const void *p, enum moe_dtype t, int64_t i)
{
	if (t == MOE_DTYPE_BF16) {
		const __m512i to_upper = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,
							  7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
		const __m512i h = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
		return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xaaaaaaaau, to_upper, h));
	}
	return _mm512_loadu_ps((const float *)p + i);
}

#define MOE_NORM_LOAD norm_load
#define MOE_NORM_STORE norm_store
#define MOE_NORM_STORE_TAIL norm_store_tail

#endif
