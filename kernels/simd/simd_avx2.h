/* AVX2 + FMA vector helpers: 8 fp32 lanes, loads and stores of f32 or bf16 with masked tails, and
 * the elementwise math the kernels share. The same names as simd_avx512.h (which see), so the
 * algorithms in norm_impl.h and routing_impl.h compile for either ISA.
 *
 * Precision contract (measured by tests/test_kernels_routing.c over a dense sweep against libm;
 * the largest error seen there is 1 ulp):
 *   vf_exp      exp(x) for every float x: |error| <= 2 ulp for normal results (the polynomial and
 *               reduction of simd_avx512.h); 2^n is applied as two exact-range factors 2^(n/2),
 *               the second multiply rounding once, so subnormal results are within one unit of
 *               2^-149; overflow to +inf, underflow to +0; exp(-inf) = 0; NaN in, NaN out.
 *   bf16 out    round to nearest even, NaN -> quiet NaN with its sign, exactly moe_f32_to_bf16. */
#ifndef MOE_KERNELS_SIMD_AVX2_H
#define MOE_KERNELS_SIMD_AVX2_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "moe/dtype.h"

#define MOE_VW 8

typedef __m256 moe_vf;
typedef __m256i moe_vi;

static inline moe_vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline moe_vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline moe_vf vf_add(moe_vf a, moe_vf b) { return _mm256_add_ps(a, b); }
static inline moe_vf vf_sub(moe_vf a, moe_vf b) { return _mm256_sub_ps(a, b); }
static inline moe_vf vf_mul(moe_vf a, moe_vf b) { return _mm256_mul_ps(a, b); }
static inline moe_vf vf_div(moe_vf a, moe_vf b) { return _mm256_div_ps(a, b); }
static inline moe_vf vf_max(moe_vf a, moe_vf b) { return _mm256_max_ps(a, b); }
static inline moe_vf vf_min(moe_vf a, moe_vf b) { return _mm256_min_ps(a, b); }
static inline moe_vf vf_fmadd(moe_vf a, moe_vf b, moe_vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline moe_vf vf_abs(moe_vf v) { return _mm256_andnot_ps(vf_set1(-0.0f), v); }
/* |mag| with the sign of sgn. */
static inline moe_vf vf_copysign(moe_vf mag, moe_vf sgn)
{
	return _mm256_or_ps(_mm256_andnot_ps(vf_set1(-0.0f), mag), _mm256_and_ps(vf_set1(-0.0f), sgn));
}

/* All-ones in the first n 32-bit lanes. */
static inline __m256i vm_first(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* n < MOE_VW lanes from p (element offset i); the other lanes hold `fill`. */
static inline moe_vf vf_load_tail(const void *p, enum moe_dtype t, int64_t i, int n, float fill)
{
	const __m256i m = vm_first(n);
	moe_vf v;
	if (t == MOE_DTYPE_BF16) {
		uint16_t h[MOE_VW] = { 0 };
		memcpy(h, (const uint16_t *)p + i, (size_t)n * sizeof h[0]);
		__m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)h));
		v = _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
	} else {
		v = _mm256_maskload_ps((const float *)p + i, m);
	}
	return _mm256_blendv_ps(vf_set1(fill), v, _mm256_castsi256_ps(m));
}

static inline moe_vf vf_load(const void *p, enum moe_dtype t, int64_t i)
{
	if (t == MOE_DTYPE_BF16) {
		__m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
		return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
	}
	return _mm256_loadu_ps((const float *)p + i);
}

/* fp32 -> bf16 bits in the low half of each 32-bit lane, as moe_f32_to_bf16. */
static inline __m256i vi_bf16_bits(moe_vf v)
{
	const __m256i u = _mm256_castps_si256(v);
	const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
	const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
	const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
	const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
	return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(q), nan));
}

/* The 8 low halves of vi_bf16_bits, packed. */
static inline __m128i vi_bf16_pack(moe_vf v)
{
	const __m256i b = vi_bf16_bits(v);
	return _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}

/* v rounded to bf16 (as moe_round_bf16), kept as fp32. */
static inline moe_vf vf_round_bf16(moe_vf v)
{
	return _mm256_castsi256_ps(_mm256_slli_epi32(vi_bf16_bits(v), 16));
}

static inline void vf_store_tail(void *p, enum moe_dtype t, int64_t i, moe_vf v, int n)
{
	if (t == MOE_DTYPE_BF16) {
		uint16_t h[MOE_VW];
		_mm_storeu_si128((__m128i *)h, vi_bf16_pack(v));
		memcpy((uint16_t *)p + i, h, (size_t)n * sizeof h[0]);
	} else {
		_mm256_maskstore_ps((float *)p + i, vm_first(n), v);
	}
}

static inline void vf_store(void *p, enum moe_dtype t, int64_t i, moe_vf v)
{
	if (t == MOE_DTYPE_BF16)
		_mm_storeu_si128((__m128i *)((uint16_t *)p + i), vi_bf16_pack(v));
	else
		_mm256_storeu_ps((float *)p + i, v);
}

static inline float vf_hsum(moe_vf v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline float vf_hmax(moe_vf v)
{
	__m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Lane 0 of the xor butterfly over the 8 lanes (for h = 4, 2, 1: lane i += lane i ^ h), the
 * lane-0 sum of flashinfer's warp reduction when its lanes past 8 hold 0. */
static inline float vf_sum_xor_lane0(moe_vf v)
{
	v = _mm256_add_ps(v, _mm256_permute2f128_ps(v, v, 1));
	v = _mm256_add_ps(v, _mm256_permute_ps(v, 0x4e));
	v = _mm256_add_ps(v, _mm256_permute_ps(v, 0xb1));
	return _mm256_cvtss_f32(v);
}

/* Lanes that are neither infinite nor NaN, as a bit mask. */
static inline unsigned vf_finite_mask(moe_vf v)
{
	const __m256i e = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7f800000));
	const __m256i inf = _mm256_cmpeq_epi32(e, _mm256_set1_epi32(0x7f800000));
	return ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(inf)) & 0xffu;
}

/* exp(x) = 2^n * p(r) as in simd_avx512.h; 2^n = 2^n1 * 2^n2 with n1 = n >> 1, both factors normal
 * for the clamped range, the first product exact, so the result is rounded once. */
static inline moe_vf vf_exp(moe_vf x)
{
	x = _mm256_min_ps(vf_set1(89.0f), _mm256_max_ps(vf_set1(-110.0f), x)); /* NaN passes through */
	const moe_vf n = _mm256_round_ps(_mm256_mul_ps(x, vf_set1(1.44269504088896341f)),
					 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	moe_vf r = _mm256_fnmadd_ps(n, vf_set1(0.693145751953125f), x);
	r = _mm256_fnmadd_ps(n, vf_set1(1.428606820309417e-06f), r);
	moe_vf p = vf_set1(0x1.6b5022p-10f);
	p = vf_fmadd(p, r, vf_set1(0x1.126c9ep-7f));
	p = vf_fmadd(p, r, vf_set1(0x1.55578ep-5f));
	p = vf_fmadd(p, r, vf_set1(0x1.55540cp-3f));
	p = vf_fmadd(p, r, vf_set1(0x1.fffffcp-2f));
	p = vf_fmadd(p, r, vf_set1(1.0f));
	p = vf_fmadd(p, r, vf_set1(1.0f));
	const __m256i ni = _mm256_cvtps_epi32(n);
	const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
	const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
	const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
	return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* The flashinfer-style total-order key of a float (see simd_avx512.h). */
static inline moe_vi vi_key(moe_vf v)
{
	const __m256i u = _mm256_castps_si256(v);
	const __m256i neg = _mm256_srai_epi32(u, 31);
	return _mm256_xor_si256(u, _mm256_or_si256(neg, _mm256_set1_epi32((int)0x80000000u)));
}

static inline unsigned vf_gt_mask(moe_vf a, moe_vf b)
{
	return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ));
}

static inline unsigned vf_eq_mask(moe_vf a, moe_vf b)
{
	return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ));
}

/* v with the lanes of `mask` replaced by x. */
static inline moe_vf vf_mask_set(moe_vf v, unsigned mask, float x)
{
	const __m256i bits = _mm256_and_si256(_mm256_set1_epi32((int)mask), _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128));
	const __m256 sel = _mm256_castsi256_ps(_mm256_cmpeq_epi32(bits, _mm256_setzero_si256()));
	return _mm256_blendv_ps(vf_set1(x), v, sel);
}

/* The float a total-order key (held as the bits of a float vector) was made from. */
static inline moe_vf vf_key_value(moe_vf k)
{
	const __m256i u = _mm256_castps_si256(k), neg = _mm256_srai_epi32(u, 31);
	return _mm256_castsi256_ps(_mm256_xor_si256(u, _mm256_or_si256(_mm256_andnot_si256(neg, _mm256_set1_epi32(-1)),
								      _mm256_set1_epi32((int)0x80000000u))));
}

static inline void vi_store_key(uint32_t *p, moe_vf v)
{
	_mm256_storeu_si256((__m256i *)p, vi_key(v));
}

/* ---- top-k over 32-bit total-order keys laid out as rows of 16 (routing_impl.h) ---- */

/* Unsigned order as signed: flip the sign bit. */
static inline __m256i vi_flip(__m256i v)
{
	return _mm256_xor_si256(v, _mm256_set1_epi32((int)0x80000000u));
}

/* The K-th largest (K <= 16) of the 16 column maxima of rows*16 keys (see simd_avx512.h). */
static inline uint32_t simd_topk_threshold(const uint32_t *key, int rows, int K)
{
	__m256i m0 = _mm256_loadu_si256((const __m256i *)key), m1 = _mm256_loadu_si256((const __m256i *)(key + 8));
	for (int r = 1; r < rows; r++) {
		m0 = _mm256_max_epu32(m0, _mm256_loadu_si256((const __m256i *)(key + 16 * r)));
		m1 = _mm256_max_epu32(m1, _mm256_loadu_si256((const __m256i *)(key + 16 * r + 8)));
	}
	uint32_t c[16];
	_mm256_storeu_si256((__m256i *)c, m0);
	_mm256_storeu_si256((__m256i *)(c + 8), m1);
	const __m256i f0 = vi_flip(m0), f1 = vi_flip(m1);
	__m256i g0 = _mm256_setzero_si256(), g1 = _mm256_setzero_si256();
	for (int j = 0; j < 16; j++) {
		const __m256i b = vi_flip(_mm256_set1_epi32((int)c[j]));
		g0 = _mm256_sub_epi32(g0, _mm256_cmpgt_epi32(b, f0));
		g1 = _mm256_sub_epi32(g1, _mm256_cmpgt_epi32(b, f1));
	}
	const __m256i kk = _mm256_set1_epi32(K), none = _mm256_set1_epi32(-1);
	__m256i s = _mm256_min_epu32(_mm256_blendv_epi8(none, m0, _mm256_cmpgt_epi32(kk, g0)),
				     _mm256_blendv_epi8(none, m1, _mm256_cmpgt_epi32(kk, g1)));
	__m128i h = _mm_min_epu32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
	h = _mm_min_epu32(h, _mm_shuffle_epi32(h, 0x4e));
	h = _mm_min_epu32(h, _mm_shuffle_epi32(h, 0xb1));
	return (uint32_t)_mm_cvtsi128_si32(h);
}

/* Appends the keys >= t among the first `valid` of 16 (and their indices base + lane) to ck, ci;
 * returns how many. AVX2 has no compress: walk the set bits. */
static inline int simd_topk_compress(const uint32_t *key, uint32_t base, int valid, uint32_t t, uint32_t *ck,
				     uint32_t *ci)
{
	const __m256i ft = vi_flip(_mm256_set1_epi32((int)(t - 1u)));
	const __m256i k0 = _mm256_loadu_si256((const __m256i *)key), k1 = _mm256_loadu_si256((const __m256i *)(key + 8));
	unsigned m = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(vi_flip(k0), ft))) |
		     (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(vi_flip(k1), ft))) << 8;
	m &= valid >= 16 ? 0xffffu : (1u << valid) - 1u;
	int n = 0;
	for (; m; m &= m - 1, n++) {
		const int lane = __builtin_ctz(m);
		ck[n] = key[lane];
		ci[n] = base + (uint32_t)lane;
	}
	return n;
}

/* Slot order of nc <= 16 candidates (keys ck, indices ci in increasing index order): each one's
 * slot is the number of candidates whose packed (key << 32 | ~index) is larger, so equal keys go
 * to the lower index; packed keys compare as signed after flipping bit 63. */
static inline void topk_rank(const uint32_t *ck, const uint32_t *ci, int nc, int K, int32_t *ids, uint32_t *keys)
{
	int64_t pk[16];
	for (int i = 0; i < 16; i++)
		pk[i] = i < nc ? (int64_t)(((uint64_t)ck[i] << 32 | (uint32_t)~ci[i]) ^ (1ull << 63)) : INT64_MIN;
	__m256i p[4], r[4];
	for (int v = 0; v < 4; v++) {
		p[v] = _mm256_loadu_si256((const __m256i *)(pk + 4 * v));
		r[v] = _mm256_setzero_si256();
	}
	for (int j = 0; j < nc; j++) {
		const __m256i b = _mm256_set1_epi64x(pk[j]);
		for (int v = 0; v < 4; v++)
			r[v] = _mm256_sub_epi64(r[v], _mm256_cmpgt_epi64(b, p[v]));
	}
	int64_t rank[16];
	int32_t slot[16];
	for (int v = 0; v < 4; v++)
		_mm256_storeu_si256((__m256i *)(rank + 4 * v), r[v]);
	for (int i = 0; i < nc; i++) {
		slot[rank[i]] = (int32_t)ci[i];
		keys[rank[i]] = ck[i];
	}
	for (int k = 0; k < K; k++)
		ids[k] = slot[k];
}

/* The top K (K <= 16) of key[0..E) (rows of 16, zero-padded; 0 = not in the race) in slot order:
 * ids[0..K) and keys[0..K) (the arrays hold 16); false, having written nothing, when K > 16 or more than 16 keys reach the
 * threshold. */
static inline bool simd_topk_fast(const uint32_t *key, int E, int K, int32_t *ids, uint32_t *keys)
{
	if (K > 16)
		return false;
	const int rows = (E + 15) / 16;
	uint32_t t = E > 16 ? simd_topk_threshold(key, rows, K) : 1u;
	t = t ? t : 1u;
	uint32_t ck[32], ci[32];
	int nc = 0;
	for (int r = 0; r < rows; r++) {
		nc += simd_topk_compress(key + 16 * r, (uint32_t)(16 * r), E - 16 * r, t, ck + nc, ci + nc);
		if (nc > 16)
			return false;
	}
	topk_rank(ck, ci, nc, K, ids, keys);
	return true;
}

/* ---- DeepSeekV3 group scores (routing_impl.h) ---- */

/* t1[g], t2[g] = the best and second best of v[g*gs .. (g+1)*gs) for the ng <= 8 groups there
 * (finite values; equal values count twice): per group, each lane's best two, then the best of
 * the lane bests and the best of the other lanes' bests and every lane's second. */
static inline void simd_group_top2(const float *v, int gs, int ng, float *t1, float *t2)
{
	for (int g = 0; g < ng; g++) {
		moe_vf hi = vf_set1(-INFINITY), lo = hi;
		for (int i = 0; i < gs; i += MOE_VW) {
			const moe_vf a = gs - i >= MOE_VW ? vf_load(v, MOE_DTYPE_F32, g * gs + i)
							  : vf_load_tail(v, MOE_DTYPE_F32, g * gs + i, gs - i, -INFINITY);
			lo = vf_max(lo, vf_min(hi, a));
			hi = vf_max(hi, a);
		}
		const float m1 = vf_hmax(hi);
		const unsigned eq = vf_eq_mask(hi, vf_set1(m1));
		const float m2 = __builtin_popcount(eq) > 1 ? m1 : vf_hmax(vf_mask_set(hi, eq, -INFINITY));
		const float l = vf_hmax(lo);
		t1[g] = m1;
		t2[g] = l > m2 ? l : m2;
	}
}

#endif
