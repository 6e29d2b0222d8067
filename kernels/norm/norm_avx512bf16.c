/* moe_norm__avx512bf16: centered LayerNorm and RMSNorm with bf16 output (f32 or bf16 input and
 * weight), fp32 arithmetic: norm_impl.h's algorithm and order of operations, bit for bit the output
 * of moe_norm__avx512, with the fp32 -> bf16 rounding done by AVX512_BF16's vcvtneps2bf16.
 *
 * vcvtneps2bf16 rounds to nearest even like moe_f32_to_bf16, but treats subnormal inputs as zero
 * and quiets NaNs differently. vfpclassps finds the vectors holding a subnormal or a NaN (one
 * instruction and a mask test per 16 elements); those go through simd_avx512.h's exact integer
 * rounding, every other vector through the instruction. Zeros, infinities and normal values that
 * round up to infinity come out the same either way. bf16 loads are widened by one vpermw, with
 * the same values as vf_load. Problems with f32 output are not accepted: the avx512 variant
 * handles them. */
#include "simd/simd_avx512.h"

/* vfpclassps categories: quiet NaN, denormal, signalling NaN. */
#define MOE_NORM_CLASS_INEXACT_BF16 (0x01 | 0x20 | 0x80)

static inline __m256i norm_bf16_bits(moe_vf v)
{
	if (_mm512_fpclass_ps_mask(v, MOE_NORM_CLASS_INEXACT_BF16))
		return _mm512_cvtepi32_epi16(vi_bf16_bits(v));
	return (__m256i)_mm512_cvtneps_pbh(v);
}

static inline void norm_store_bf16(void *p, enum moe_dtype t, int64_t i, moe_vf v)
{
	assert(t == MOE_DTYPE_BF16);
	_mm256_storeu_si256((__m256i *)((uint16_t *)p + i), norm_bf16_bits(v));
}

static inline void norm_store_bf16_tail(void *p, enum moe_dtype t, int64_t i, moe_vf v, int n)
{
	assert(t == MOE_DTYPE_BF16);
	_mm256_mask_storeu_epi16((uint16_t *)p + i, vm_first(n), norm_bf16_bits(v));
}

/* vf_load's result with the bf16 widening in one vpermw (word k to the upper half of lane k, the
 * lower halves zeroed by the mask) instead of vpmovzxwd and vpslld. bf16 input is read three
 * times per row and the kernel is bound by 512-bit vector operations, so the saved one per load
 * shows: on the AMD EPYC it was written on, a bf16 LayerNorm of 16 x 8192 went from 14.3 to
 * 11.9 us with it. */
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
#define MOE_NORM_STORE norm_store_bf16
#define MOE_NORM_STORE_TAIL norm_store_bf16_tail
#include "norm/norm_impl.h"
#include "kernels.h"

/* norm_rows on a local copy of the parameters with the input and weight dtypes given as constants.
 * The copy cannot alias y, and with everything inlined (flatten) each dtype pair gets its own
 * loops, with no dtype or row_sum mode tests per vector. */
static inline void norm_rows_as(const struct moe_norm_params *p, enum moe_dtype in, enum moe_dtype wt,
				const void *x, const void *w, void *y)
{
	struct moe_norm_params q = *p;
	q.in_dtype = in;
	q.weight_dtype = wt;
	q.out_dtype = MOE_DTYPE_BF16;
	norm_rows(&q, x, w, y);
}

__attribute__((flatten)) void moe_norm__avx512bf16(const struct moe_norm_params *p, const void *x, const void *w,
						     void *y)
{
	assert(p->out_dtype == MOE_DTYPE_BF16);
	const bool xb = p->in_dtype == MOE_DTYPE_BF16, wb = p->weight_dtype == MOE_DTYPE_BF16;
	if (xb && wb)
		norm_rows_as(p, MOE_DTYPE_BF16, MOE_DTYPE_BF16, x, w, y);
	else if (xb)
		norm_rows_as(p, MOE_DTYPE_BF16, MOE_DTYPE_F32, x, w, y);
	else if (wb)
		norm_rows_as(p, MOE_DTYPE_F32, MOE_DTYPE_BF16, x, w, y);
	else
		norm_rows_as(p, MOE_DTYPE_F32, MOE_DTYPE_F32, x, w, y);
}

bool moe_norm__avx512bf16_supports(enum moe_op op, const void *problem)
{
	return op == MOE_OP_NORM && ((const struct moe_norm_params *)problem)->out_dtype == MOE_DTYPE_BF16;
}
