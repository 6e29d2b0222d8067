/* AVX-512 (F, BW, DQ, VL) vector helpers: 16 fp32 lanes, loads and stores of f32 or bf16 with
 * masked tails, and the elementwise math the kernels share. simd_avx2.h defines the same names for
 * 8 lanes, so an algorithm written once on these helpers (norm_impl.h, routing_impl.h) compiles
 * for either ISA; a kernel file includes exactly one of the two.
 *
 * Precision contract (measured by tests/test_kernels_routing.c over a dense sweep against libm;
 * the largest error seen there is 1 ulp):
 *   vf_exp      exp(x) for every float x, rounding to nearest: |error| <= 2 ulp for normal results
 *               (degree-6 polynomial on |r| <= ln2/2, truncation 0.29 ulp, plus the rounding of
 *               the reduction and Horner FMAs); subnormal results within one unit of 2^-149;
 *               overflow to +inf and underflow to +0 at libm's thresholds; exp(-inf) = 0;
 *               NaN in, NaN out.
 *   bf16 out    round to nearest even, NaN -> quiet NaN with its sign, exactly moe_f32_to_bf16. */
#ifndef MOE_KERNELS_SIMD_AVX512_H
#define MOE_KERNELS_SIMD_AVX512_H

#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "moe/dtype.h"

#define MOE_VW 16

typedef __m512 moe_vf;
typedef __m512i moe_vi;

static inline moe_vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline moe_vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline moe_vf vf_add(moe_vf a, moe_vf b) { return _mm512_add_ps(a, b); }
static inline moe_vf vf_sub(moe_vf a, moe_vf b) { return _mm512_sub_ps(a, b); }
static inline moe_vf vf_mul(moe_vf a, moe_vf b) { return _mm512_mul_ps(a, b); }
static inline moe_vf vf_div(moe_vf a, moe_vf b) { return _mm512_div_ps(a, b); }
static inline moe_vf vf_max(moe_vf a, moe_vf b) { return _mm512_max_ps(a, b); }
static inline moe_vf vf_min(moe_vf a, moe_vf b) { return _mm512_min_ps(a, b); }
static inline moe_vf vf_fmadd(moe_vf a, moe_vf b, moe_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline moe_vf vf_abs(moe_vf v) { return _mm512_abs_ps(v); }
/* |mag| with the sign of sgn. */
static inline moe_vf vf_copysign(moe_vf mag, moe_vf sgn)
{
	return _mm512_or_ps(_mm512_andnot_ps(vf_set1(-0.0f), mag), _mm512_and_ps(vf_set1(-0.0f), sgn));
}

static inline __mmask16 vm_first(int n)
{
	return (__mmask16)((1u << n) - 1u);
}

/* n < MOE_VW lanes from p (element offset i); the other lanes hold `fill`. */
static inline moe_vf vf_load_tail(const void *p, enum moe_dtype t, int64_t i, int n, float fill)
{
	const __mmask16 m = vm_first(n);
	if (t == MOE_DTYPE_BF16) {
		__m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
		return _mm512_mask_blend_ps(m, vf_set1(fill), _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
	}
	return _mm512_mask_loadu_ps(vf_set1(fill), m, (const float *)p + i);
}

static inline moe_vf vf_load(const void *p, enum moe_dtype t, int64_t i)
{
	if (t == MOE_DTYPE_BF16) {
		__m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
		return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
	}
	return _mm512_loadu_ps((const float *)p + i);
}

/* fp32 -> bf16 bits in the low half of each 32-bit lane, as moe_f32_to_bf16. */
static inline __m512i vi_bf16_bits(moe_vf v)
{
	const __m512i u = _mm512_castps_si512(v);
	const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
	const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
	return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

/* v rounded to bf16 (as moe_round_bf16), kept as fp32. */
static inline moe_vf vf_round_bf16(moe_vf v)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(vi_bf16_bits(v), 16));
}

static inline void vf_store_tail(void *p, enum moe_dtype t, int64_t i, moe_vf v, int n)
{
	const __mmask16 m = vm_first(n);
	if (t == MOE_DTYPE_BF16)
		_mm256_mask_storeu_epi16((uint16_t *)p + i, m, _mm512_cvtepi32_epi16(vi_bf16_bits(v)));
	else
		_mm512_mask_storeu_ps((float *)p + i, m, v);
}

static inline void vf_store(void *p, enum moe_dtype t, int64_t i, moe_vf v)
{
	if (t == MOE_DTYPE_BF16)
		_mm256_storeu_si256((__m256i *)((uint16_t *)p + i), _mm512_cvtepi32_epi16(vi_bf16_bits(v)));
	else
		_mm512_storeu_ps((float *)p + i, v);
}

static inline float vf_hsum(moe_vf v)
{
	return _mm512_reduce_add_ps(v);
}

static inline float vf_hmax(moe_vf v)
{
	return _mm512_reduce_max_ps(v);
}

/* Lane 0 of the xor butterfly over the 16 lanes (for h = 8, 4, 2, 1: lane i += lane i ^ h), the
 * lane-0 sum of flashinfer's warp reduction when its lanes past 16 hold 0. */
static inline float vf_sum_xor_lane0(moe_vf v)
{
	v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
	v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
	v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));
	v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));
	return _mm512_cvtss_f32(v);
}

/* Lanes that are neither infinite nor NaN, as a bit mask. */
static inline unsigned vf_finite_mask(moe_vf v)
{
	const __m512i e = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7f800000));
	return _mm512_cmpneq_epi32_mask(e, _mm512_set1_epi32(0x7f800000));
}

/* vf_exp for -110 <= x <= 89 (or NaN): the same result without the clamp, for callers that know
 * the range (routing's softmax sums over rows whose spread is small), two operations fewer. */
static inline moe_vf vf_exp_in_range(moe_vf x)
{
	const moe_vf n = _mm512_roundscale_ps(_mm512_mul_ps(x, vf_set1(1.44269504088896341f)),
					      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	moe_vf r = _mm512_fnmadd_ps(n, vf_set1(0.693145751953125f), x);
	r = _mm512_fnmadd_ps(n, vf_set1(1.428606820309417e-06f), r);
	moe_vf p = vf_set1(0x1.6b5022p-10f);
	p = vf_fmadd(p, r, vf_set1(0x1.126c9ep-7f));
	p = vf_fmadd(p, r, vf_set1(0x1.55578ep-5f));
	p = vf_fmadd(p, r, vf_set1(0x1.55540cp-3f));
	p = vf_fmadd(p, r, vf_set1(0x1.fffffcp-2f));
	p = vf_fmadd(p, r, vf_set1(1.0f));
	p = vf_fmadd(p, r, vf_set1(1.0f));
	return _mm512_scalef_ps(p, n);
}

/* exp(x) = 2^n * p(r), n = round(x / ln2), r = x - n*ln2 in two pieces (n*LN2_HI is exact for
 * |n| < 512); vscalefps applies 2^n with a single rounding, so overflow, underflow and subnormal
 * results come out right. The clamp keeps r finite for x = -inf and changes no result. */
static inline moe_vf vf_exp(moe_vf x)
{
	/* NaN passes through the clamp */
	return vf_exp_in_range(_mm512_min_ps(vf_set1(89.0f), _mm512_max_ps(vf_set1(-110.0f), x)));
}

/* The flashinfer-style total-order key of a float: -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN
 * as unsigned 32-bit integers (negative: all bits flipped; positive: sign bit set). */
static inline moe_vi vi_key(moe_vf v)
{
	const __m512i u = _mm512_castps_si512(v);
	const __m512i neg = _mm512_srai_epi32(u, 31);
	return _mm512_xor_si512(u, _mm512_or_si512(neg, _mm512_set1_epi32((int)0x80000000u)));
}

static inline unsigned vf_gt_mask(moe_vf a, moe_vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ);
}

static inline unsigned vf_eq_mask(moe_vf a, moe_vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
}

/* v with the lanes of `mask` replaced by x. */
static inline moe_vf vf_mask_set(moe_vf v, unsigned mask, float x)
{
	return _mm512_mask_blend_ps((__mmask16)mask, v, vf_set1(x));
}

/* The float a total-order key (held as the bits of a float vector) was made from. */
static inline moe_vf vf_key_value(moe_vf k)
{
	const __m512i u = _mm512_castps_si512(k), neg = _mm512_srai_epi32(u, 31);
	return _mm512_castsi512_ps(_mm512_xor_si512(u, _mm512_or_si512(_mm512_andnot_si512(neg, _mm512_set1_epi32(-1)),
								      _mm512_set1_epi32((int)0x80000000u))));
}

static inline void vi_store_key(uint32_t *p, moe_vf v)
{
	_mm512_storeu_si512(p, vi_key(v));
}

/* ---- top-k over 32-bit total-order keys laid out as rows of 16 (routing_impl.h) ---- */

/* g[i] += 1 where the rotated column maximum exceeds m[i]. */
static inline __m512i count_greater(__m512i g, __m512i m, __m512i rotated)
{
	return _mm512_mask_sub_epi32(g, _mm512_cmpgt_epu32_mask(rotated, m), g, _mm512_set1_epi32(-1));
}

/* The K-th largest (K <= 16) of the 16 lanes of m: m[i] is among the K largest iff fewer than K
 * lanes exceed it; the 15 rotations compare every pair in registers. */
static inline uint32_t kth_largest16(__m512i m, int K)
{
	__m512i g = _mm512_setzero_si512(), h = _mm512_setzero_si512();
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 1));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 2));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 3));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 4));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 5));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 6));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 7));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 8));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 9));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 10));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 11));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 12));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 13));
	h = count_greater(h, m, _mm512_alignr_epi32(m, m, 14));
	g = count_greater(g, m, _mm512_alignr_epi32(m, m, 15));
	g = _mm512_add_epi32(g, h);
	return _mm512_mask_reduce_min_epu32(_mm512_cmplt_epi32_mask(g, _mm512_set1_epi32(K)), m);
}

/* One compare-exchange stage of a bitonic network on 8 packed keys: each lane meets lane `q`
 * holds for it and keeps the larger where takes_max has its bit. */
static inline __m512i bitonic_stage(__m512i v, __m512i q, __mmask8 takes_max)
{
	return _mm512_mask_max_epu64(_mm512_min_epu64(v, q), takes_max, v, q);
}

static inline __m512i swap1(__m512i v) { return _mm512_shuffle_epi32(v, _MM_PERM_BADC); }
static inline __m512i swap2(__m512i v) { return _mm512_permutex_epi64(v, 0x4e); }
static inline __m512i swap4(__m512i v) { return _mm512_shuffle_i64x2(v, v, 0x4e); }

/* Sorts 8 u64 descending (bitonic sort: 6 stages). */
static inline __m512i sort8_desc(__m512i v)
{
	v = bitonic_stage(v, swap1(v), 0x99);
	v = bitonic_stage(v, swap2(v), 0xc3);
	v = bitonic_stage(v, swap1(v), 0xa5);
	v = bitonic_stage(v, swap4(v), 0x0f);
	v = bitonic_stage(v, swap2(v), 0x33);
	return bitonic_stage(v, swap1(v), 0x55);
}

/* Sorts a bitonic sequence of 8 u64 descending (3 stages). */
static inline __m512i merge8_desc(__m512i v)
{
	v = bitonic_stage(v, swap4(v), 0x0f);
	v = bitonic_stage(v, swap2(v), 0x33);
	return bitonic_stage(v, swap1(v), 0x55);
}

/* The larger 8 of two descending 8-sequences, descending. */
static inline __m512i top8_of(__m512i a, __m512i b)
{
	return merge8_desc(_mm512_max_epu64(a, _mm512_permutexvar_epi64(_mm512_setr_epi64(7, 6, 5, 4, 3, 2, 1, 0), b)));
}

/* ids and keys of two descending 8-sequences of packed keys (top, then next), 16 lanes each. */
static inline void simd_store_sel(__m512i top, __m512i next, int32_t *ids, uint32_t *keys)
{
	const __m512i ones = _mm512_set1_epi64(-1);
	_mm512_storeu_si512(ids, _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_xor_si512(top, ones))),
						    _mm512_cvtepi64_epi32(_mm512_xor_si512(next, ones)), 1));
	_mm512_storeu_si512(keys, _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(top, 32))),
						     _mm512_cvtepi64_epi32(_mm512_srli_epi64(next, 32)), 1));
}

/* The keys of key[0..E) (rows of 16, zero-padded; 0 = not in the race) that are >= t, and their
 * indices, into ckey[0..nc) and cid[0..nc) in index order; returns nc. Writes nothing and returns
 * nc > max when more than max keys reach t. Row by row, register-form vpcompressd and overlapping
 * full-width stores (the memory form of vpcompressd is microcoded here): ckey and cid hold
 * max + 16. */
static inline unsigned simd_collect_above_max(const uint32_t *key, int E, uint32_t t, unsigned max, int32_t *cid,
					      uint32_t *ckey)
{
	enum { MAX_ROWS = 64 };
	const int rows = (E + 15) / 16;
	assert(rows <= MAX_ROWS);
	const __m512i vt = _mm512_set1_epi32((int)(t ? t : 1u));
	__mmask16 m[MAX_ROWS];
	unsigned nc = 0;
	for (int r = 0; r < rows; r++) {
		m[r] = _mm512_cmpge_epu32_mask(_mm512_loadu_si512(key + 16 * r), vt);
		nc += (unsigned)__builtin_popcount(m[r]);
	}
	if (nc > max)
		return nc;
	const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	unsigned c = 0;
	for (int r = 0; r < rows; r++) {
		_mm512_storeu_si512(cid + c, _mm512_maskz_compress_epi32(m[r], _mm512_add_epi32(iota, _mm512_set1_epi32(16 * r))));
		_mm512_storeu_si512(ckey + c, _mm512_maskz_compress_epi32(m[r], _mm512_loadu_si512(key + 16 * r)));
		c += (unsigned)__builtin_popcount(m[r]);
	}
	return nc;
}

/* simd_collect_above_max for at most 16 keys (ckey and cid hold 32). */
static inline unsigned simd_collect_above(const uint32_t *key, int E, uint32_t t, int32_t *cid, uint32_t *ckey)
{
	return simd_collect_above_max(key, E, t, 16, cid, ckey);
}

/* ids[0..16) and keys[0..16) of the n best of nc <= 16 candidates (cid, ckey; n <= nc) in slot
 * order, equal keys: lower index first (one full-width store each, lanes past n undefined). Packed
 * as (key << 32 | ~index) and sorted by bitonic networks: two sorted 8s, the larger 8 merged, and
 * the smaller 8 of the two merged where n > 8. */
static inline void simd_sort_candidates(const int32_t *cid, const uint32_t *ckey, unsigned nc, int n, int32_t *ids,
					uint32_t *keys)
{
	assert(nc <= 16 && n >= 1 && (unsigned)n <= nc);
	const __mmask16 all = (__mmask16)((1u << nc) - 1u);
	const __m512i k = _mm512_loadu_si512(ckey);
	const __m512i ni = _mm512_xor_si512(_mm512_loadu_si512(cid), _mm512_set1_epi32(-1));
	const __m512i p0 = _mm512_maskz_or_epi64((__mmask8)all, _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(k)), 32),
						 _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ni)));
	__m512i top = sort8_desc(p0), next = _mm512_setzero_si512();
	if (nc > 8) {
		const __m512i p1 = _mm512_maskz_or_epi64((__mmask8)(all >> 8),
							 _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(k, 1)), 32),
							 _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ni, 1)));
		const __m512i rb = _mm512_permutexvar_epi64(_mm512_setr_epi64(7, 6, 5, 4, 3, 2, 1, 0), sort8_desc(p1));
		if (n > 8)
			next = merge8_desc(_mm512_min_epu64(top, rb));
		top = merge8_desc(_mm512_max_epu64(top, rb));
	}
	simd_store_sel(top, next, ids, keys);
}

/* The n <= 16 best keys of key[0..E) among those >= t (t at most the n-th largest key), as
 * simd_sort_candidates leaves them; false, having written nothing, when more than 16 reach t. */
static inline bool simd_topk_above(const uint32_t *key, int E, int n, uint32_t t, int32_t *ids, uint32_t *keys)
{
	int32_t cid[32] __attribute__((aligned(64)));
	uint32_t ckey[32] __attribute__((aligned(64)));
	const unsigned nc = simd_collect_above(key, E, t, cid, ckey);
	if (nc > 16)
		return false;
	simd_sort_candidates(cid, ckey, nc, n, ids, keys);
	return true;
}

/* The top K (K <= 16) of key[0..E) (rows of 16, zero-padded; 0 = not in the race) in slot order:
 * ids[0..16) and keys[0..16) (one full-width store each, lanes past K undefined, so that the
 * weights' vector loads of them are forwarded from the stores). Returns false, having written
 * nothing, when K > 16 or more than 16 keys reach the threshold (many equal keys).
 *
 * One pass keeps, per column (lane), its best and second best key with their rows and its third
 * best key (equal keys: the earlier row first). t = the K-th largest column best is a lower bound
 * of the K-th largest key. For K <= 8 and no column holding three keys >= t (the usual case), the
 * top K are among the columns' best and second best >= t: those (about K + 2 of them) are
 * compressed into one register, packed as (key << 32 | ~index) so that equal keys order by lower
 * index, and sorted by a bitonic network in registers (two sorted 8s, the larger 8 of the two
 * merged). Otherwise the keys >= t are
 * collected by walking the set bits of the row masks (vpcompressd costs several cycles each
 * here) and sorted the same way. */
static inline bool simd_topk_fast(const uint32_t *key, int E, int K, int32_t *ids, uint32_t *keys)
{
	enum { MAX_WORDS = 16 };
	const int rows = (E + 15) / 16, words = (rows + 3) / 4;
	if (K > 16 || words > MAX_WORDS)
		return false;
	__m512i m1 = _mm512_setzero_si512(), m2 = m1, m3 = m1, r1 = m1, r2 = m1, rv = m1;
	for (int r = 0; r < rows; r++, rv = _mm512_add_epi32(rv, _mm512_set1_epi32(1))) {
		const __m512i v = _mm512_loadu_si512(key + 16 * r);
		const __mmask16 g1 = _mm512_cmpgt_epu32_mask(v, m1);
		const __m512i b = _mm512_mask_blend_epi32(g1, v, m1), br = _mm512_mask_blend_epi32(g1, rv, r1);
		m1 = _mm512_max_epu32(m1, v);
		r1 = _mm512_mask_mov_epi32(r1, g1, rv);
		const __mmask16 g2 = _mm512_cmpgt_epu32_mask(b, m2);
		m3 = _mm512_max_epu32(m3, _mm512_mask_blend_epi32(g2, b, m2));
		m2 = _mm512_max_epu32(m2, b);
		r2 = _mm512_mask_mov_epi32(r2, g2, br);
	}
	uint32_t t = rows > 1 ? kth_largest16(m1, K) : 1u;
	const __m512i vt = _mm512_set1_epi32((int)(t ? t : 1u));
	__m512i top, next = _mm512_setzero_si512();
	const __mmask16 t1 = _mm512_cmpge_epu32_mask(m1, vt), t2 = _mm512_cmpge_epu32_mask(m2, vt);
	const unsigned c1 = (unsigned)__builtin_popcount(t1), c2 = (unsigned)__builtin_popcount(t2);
	if (K <= 8 && !_mm512_cmpge_epu32_mask(m3, vt) && c1 + c2 <= 16) {
		/* the c1 bests and c2 seconds >= t, compressed into one register (seconds after bests) */
		const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
		const __m512i shift = _mm512_sub_epi32(iota, _mm512_set1_epi32((int)c1));
		const __mmask16 put = (__mmask16)(((1u << (c1 + c2)) - 1u) & ~((1u << c1) - 1u));
		const __m512i k = _mm512_mask_permutexvar_epi32(_mm512_maskz_compress_epi32(t1, m1), put, shift,
								_mm512_maskz_compress_epi32(t2, m2));
		const __m512i i1 = _mm512_or_si512(_mm512_slli_epi32(r1, 4), iota);
		const __m512i i2 = _mm512_or_si512(_mm512_slli_epi32(r2, 4), iota);
		const __m512i rows_of = _mm512_mask_permutexvar_epi32(_mm512_maskz_compress_epi32(t1, i1), put, shift,
								      _mm512_maskz_compress_epi32(t2, i2));
		const __mmask16 all = (__mmask16)((1u << (c1 + c2)) - 1u);
		/* pack_half with row = 0 and lanes = the compressed indices */
		const __m512i ni = _mm512_xor_si512(rows_of, _mm512_set1_epi32(-1));
		const __m512i p0 = _mm512_maskz_or_epi64((__mmask8)all,
							 _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(k)), 32),
							 _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ni)));
		top = sort8_desc(p0);
		if (c1 + c2 > 8) {
			const __m512i p1 = _mm512_maskz_or_epi64((__mmask8)(all >> 8),
								 _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(k, 1)), 32),
								 _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ni, 1)));
			top = top8_of(top, sort8_desc(p1));
		}
	} else {
		return simd_topk_above(key, E, K, t, ids, keys);
	}
	simd_store_sel(top, next, ids, keys);
	return true;
}

/* ---- one token per lane: blocks of 16 tokens (routing_impl.h's block path) ---- */

/* r[i] lane j becomes r[j] lane i (a 16 x 16 matrix of 32-bit values): 32-bit and 64-bit
 * interleaves of row pairs, then two rounds of 128-bit block shuffles, 64 shuffles in all. */
static inline void vi_transpose16(__m512i r[16])
{
	__m512i t[16], u[16];
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
	}
	for (int i = 0; i < 4; i++) {
		u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
		u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
		u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
		u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
	}
	/* u[4i + j], 128-bit block L: column 4L + j of rows 4i .. 4i + 3 */
	for (int j = 0; j < 4; j++) {
		const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);
		const __m512i w0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
		const __m512i w1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
		r[j] = _mm512_shuffle_i32x4(v0, w0, 0x88);
		r[8 + j] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
		r[4 + j] = _mm512_shuffle_i32x4(v1, w1, 0x88);
		r[12 + j] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
	}
}

/* Sorts r[0..16) descending in every lane (unsigned 32-bit), each lane on its own: a bitonic
 * network of 80 compare-exchanges, a max and a min each. */
static inline void vi_sort16_desc(__m512i r[16])
{
#pragma GCC unroll 8
	for (int k = 2; k <= 16; k <<= 1) {
#pragma GCC unroll 8
		for (int j = k >> 1; j > 0; j >>= 1) {
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++) {
				const int l = (i ^ j) & 15; /* i, j < 16: the mask only tells the compiler */
				if (l <= i)
					continue;
				const __m512i hi = _mm512_max_epu32(r[i], r[l]), lo = _mm512_min_epu32(r[i], r[l]);
				const bool desc = (i & k) == 0;
				r[i] = desc ? hi : lo;
				r[l] = desc ? lo : hi;
			}
		}
	}
}

/* r[i] lane j becomes r[j] lane i for an 8 x 8 matrix of 64-bit values: 64-bit interleaves of
 * row pairs, then two rounds of 128-bit block shuffles, 24 shuffles in all. */
static inline void vi_transpose8x64(__m512i r[8])
{
	__m512i t[8];
	for (int i = 0; i < 4; i++) {
		t[2 * i] = _mm512_unpacklo_epi64(r[2 * i], r[2 * i + 1]);     /* columns 0, 2, 4, 6 */
		t[2 * i + 1] = _mm512_unpackhi_epi64(r[2 * i], r[2 * i + 1]); /* columns 1, 3, 5, 7 */
	}
	/* a: blocks (column c, rows 0-1), (c + 4, rows 0-1), (c, rows 2-3), (c + 4, rows 2-3) */
	for (int odd = 0; odd < 2; odd++) {
		const __m512i a0 = _mm512_shuffle_i64x2(t[odd], t[2 + odd], 0x88), a1 = _mm512_shuffle_i64x2(t[odd], t[2 + odd], 0xdd);
		const __m512i b0 = _mm512_shuffle_i64x2(t[4 + odd], t[6 + odd], 0x88);
		const __m512i b1 = _mm512_shuffle_i64x2(t[4 + odd], t[6 + odd], 0xdd);
		r[odd] = _mm512_shuffle_i64x2(a0, b0, 0x88);
		r[4 + odd] = _mm512_shuffle_i64x2(a0, b0, 0xdd);
		r[2 + odd] = _mm512_shuffle_i64x2(a1, b1, 0x88);
		r[6 + odd] = _mm512_shuffle_i64x2(a1, b1, 0xdd);
	}
}

/* vi_sort16_desc on unsigned 64-bit lanes (8 independent columns). */
static inline void vi_sort16_desc_u64(__m512i r[16])
{
#pragma GCC unroll 8
	for (int k = 2; k <= 16; k <<= 1) {
#pragma GCC unroll 8
		for (int j = k >> 1; j > 0; j >>= 1) {
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++) {
				const int l = (i ^ j) & 15;
				if (l <= i)
					continue;
				const __m512i hi = _mm512_max_epu64(r[i], r[l]), lo = _mm512_min_epu64(r[i], r[l]);
				const bool desc = (i & k) == 0;
				r[i] = desc ? hi : lo;
				r[l] = desc ? lo : hi;
			}
		}
	}
}

/* nc <= 16 candidates (cid, ckey) packed as (key << 32 | ~index) into p[0..16), 0 past nc. */
static inline void simd_pack_candidates(const int32_t *cid, const uint32_t *ckey, unsigned nc, uint64_t *p)
{
	const __mmask16 all = (__mmask16)((1u << nc) - 1u);
	const __m512i k = _mm512_loadu_si512(ckey);
	const __m512i ni = _mm512_xor_si512(_mm512_loadu_si512(cid), _mm512_set1_epi32(-1));
	_mm512_storeu_si512(p, _mm512_maskz_or_epi64((__mmask8)all, _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(k)), 32),
						     _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ni))));
	_mm512_storeu_si512(p + 8, _mm512_maskz_or_epi64((__mmask8)(all >> 8),
							 _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(k, 1)), 32),
							 _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ni, 1))));
}

/* The 16 best of 16 < nc <= 32 candidates (cid, ckey), packed as (key << 32 | ~index), into
 * p[0..16) in descending order: four sorted 8s, merged pairwise into two sorted 16s (each as a
 * larger and a smaller 8), and the larger 16 of those two taken by one half-cleaner step and
 * sorted by the bitonic merge. */
static inline void simd_top16_candidates(const int32_t *cid, const uint32_t *ckey, unsigned nc, uint64_t *p)
{
	assert(nc > 16 && nc <= 32);
	const __m512i rev = _mm512_setr_epi64(7, 6, 5, 4, 3, 2, 1, 0);
	__m512i hi[2], lo[2];
	for (int h = 0; h < 2; h++) {
		const __mmask16 all = (__mmask16)(h ? (1u << (nc - 16)) - 1u : 0xffffu);
		const __m512i k = _mm512_loadu_si512(ckey + 16 * h);
		const __m512i ni = _mm512_xor_si512(_mm512_loadu_si512(cid + 16 * h), _mm512_set1_epi32(-1));
		const __m512i a = sort8_desc(_mm512_maskz_or_epi64((__mmask8)all,
								    _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(k)), 32),
								    _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ni))));
		const __m512i b = sort8_desc(_mm512_maskz_or_epi64((__mmask8)(all >> 8),
								    _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(k, 1)), 32),
								    _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ni, 1))));
		const __m512i rb = _mm512_permutexvar_epi64(rev, b);
		hi[h] = merge8_desc(_mm512_max_epu64(a, rb));
		lo[h] = merge8_desc(_mm512_min_epu64(a, rb));
	}
	/* (hi[0], lo[0]) against (hi[1], lo[1]) reversed: the lane-wise maxima are the best 16, a
	 * bitonic sequence; one exchange at distance 8, then each 8 merged */
	const __m512i z0 = _mm512_max_epu64(hi[0], _mm512_permutexvar_epi64(rev, lo[1]));
	const __m512i z1 = _mm512_max_epu64(lo[0], _mm512_permutexvar_epi64(rev, hi[1]));
	_mm512_storeu_si512(p, merge8_desc(_mm512_max_epu64(z0, z1)));
	_mm512_storeu_si512(p + 8, merge8_desc(_mm512_min_epu64(z0, z1)));
}

/* ---- DeepSeekV3 group scores (routing_impl.h) ---- */

/* The best two of x and y, each a (best, second) pair per lane: equal values count twice. */
static inline void top2_merge(__m512 *hi, __m512 *lo, __m512 xh, __m512 xl, __m512 yh, __m512 yl)
{
	*hi = _mm512_max_ps(xh, yh);
	*lo = _mm512_max_ps(_mm512_min_ps(xh, yh), _mm512_max_ps(xl, yl));
}

/* t1[g], t2[g] = the best and second best of v[g*gs .. (g+1)*gs) for the ng <= 8 groups there
 * (finite values). Each group's lanes first keep their own best two; the eight groups are then
 * reduced across lanes together, every step halving the lanes per group and pairing groups in
 * one register (256-bit halves, then 128-bit blocks, then lane pairs, then lanes), instead of
 * three horizontal reductions per group one after another. */
static inline void simd_group_top2(const float *v, int gs, int ng, float *t1, float *t2)
{
	const __m512 ninf = _mm512_set1_ps(-INFINITY);
	__m512 hi[8], lo[8];
	for (int g = 0; g < 8; g++) {
		hi[g] = lo[g] = ninf;
		for (int i = 0; g < ng && i < gs; i += 16) {
			const __m512 a = gs - i >= 16 ? _mm512_loadu_ps(v + g * gs + i)
						      : _mm512_mask_loadu_ps(ninf, vm_first(gs - i), v + g * gs + i);
			lo[g] = _mm512_max_ps(lo[g], _mm512_min_ps(hi[g], a));
			hi[g] = _mm512_max_ps(hi[g], a);
		}
	}
	__m512 ah[4], al[4], bh[2], bl[2], ch, cl, dh, dl;
	for (int p = 0; p < 4; p++)
		top2_merge(&ah[p], &al[p], _mm512_shuffle_f32x4(hi[2 * p], hi[2 * p + 1], 0x44),
			   _mm512_shuffle_f32x4(lo[2 * p], lo[2 * p + 1], 0x44),
			   _mm512_shuffle_f32x4(hi[2 * p], hi[2 * p + 1], 0xee),
			   _mm512_shuffle_f32x4(lo[2 * p], lo[2 * p + 1], 0xee));
	for (int q = 0; q < 2; q++)
		top2_merge(&bh[q], &bl[q], _mm512_shuffle_f32x4(ah[2 * q], ah[2 * q + 1], 0x88),
			   _mm512_shuffle_f32x4(al[2 * q], al[2 * q + 1], 0x88),
			   _mm512_shuffle_f32x4(ah[2 * q], ah[2 * q + 1], 0xdd),
			   _mm512_shuffle_f32x4(al[2 * q], al[2 * q + 1], 0xdd));
	/* block k of bh[0] holds group k, of bh[1] group 4 + k */
	top2_merge(&ch, &cl, _mm512_shuffle_ps(bh[0], bh[1], 0x44), _mm512_shuffle_ps(bl[0], bl[1], 0x44),
		   _mm512_shuffle_ps(bh[0], bh[1], 0xee), _mm512_shuffle_ps(bl[0], bl[1], 0xee));
	top2_merge(&dh, &dl, _mm512_shuffle_ps(ch, ch, 0x88), _mm512_shuffle_ps(cl, cl, 0x88),
		   _mm512_shuffle_ps(ch, ch, 0xdd), _mm512_shuffle_ps(cl, cl, 0xdd));
	/* lane 4k: group k, lane 4k + 1: group 4 + k */
	float h[16], l[16];
	_mm512_storeu_ps(h, dh);
	_mm512_storeu_ps(l, dl);
	for (int g = 0; g < ng; g++) {
		t1[g] = h[4 * (g & 3) + (g >> 2)];
		t2[g] = l[4 * (g & 3) + (g >> 2)];
	}
}

/* simd_group_top2 on total-order keys (routing_impl.h's block path): *t1 and *t2 receive, in lanes
 * 0..ng-1 (group order), the largest and second largest key of each of the ng <= 8 groups of gs
 * keys at key[g*gs ..]; for finite values the unsigned key order is the float order, so the float
 * values of these keys are the floats' best two. The same reduction tree, on epu32 max/min, read
 * straight from the keys (no float copy) and left in registers. Lanes past ng hold 0. */
static inline void simd_group_top2_keys(const uint32_t *key, int gs, int ng, __m512i *t1, __m512i *t2)
{
	__m512i hi[8], lo[8];
#pragma GCC unroll 8
	for (int g = 0; g < 8; g++) {
		hi[g] = lo[g] = _mm512_setzero_si512();
		if (g >= ng)
			continue;
		const uint32_t *k = key + g * gs;
		int i = 0;
		if (gs >= 32) {
			/* the usual group of 32: its two rows need no running pair */
			const __m512i a = _mm512_loadu_si512(k), b = _mm512_loadu_si512(k + 16);
			hi[g] = _mm512_max_epu32(a, b);
			lo[g] = _mm512_min_epu32(a, b);
			i = 32;
		}
		for (; i < gs; i += 16) {
			const __m512i a = gs - i >= 16 ? _mm512_loadu_si512(k + i) : _mm512_maskz_loadu_epi32(vm_first(gs - i), k + i);
			lo[g] = _mm512_max_epu32(lo[g], _mm512_min_epu32(hi[g], a));
			hi[g] = _mm512_max_epu32(hi[g], a);
		}
	}
	__m512i ah[4], al[4], bh[2], bl[2];
	for (int q = 0; q < 4; q++) {
		const __m512i xh = _mm512_shuffle_i64x2(hi[2 * q], hi[2 * q + 1], 0x44), yh = _mm512_shuffle_i64x2(hi[2 * q], hi[2 * q + 1], 0xee);
		const __m512i xl = _mm512_shuffle_i64x2(lo[2 * q], lo[2 * q + 1], 0x44), yl = _mm512_shuffle_i64x2(lo[2 * q], lo[2 * q + 1], 0xee);
		ah[q] = _mm512_max_epu32(xh, yh);
		al[q] = _mm512_max_epu32(_mm512_min_epu32(xh, yh), _mm512_max_epu32(xl, yl));
	}
	for (int q = 0; q < 2; q++) {
		const __m512i xh = _mm512_shuffle_i64x2(ah[2 * q], ah[2 * q + 1], 0x88), yh = _mm512_shuffle_i64x2(ah[2 * q], ah[2 * q + 1], 0xdd);
		const __m512i xl = _mm512_shuffle_i64x2(al[2 * q], al[2 * q + 1], 0x88), yl = _mm512_shuffle_i64x2(al[2 * q], al[2 * q + 1], 0xdd);
		bh[q] = _mm512_max_epu32(xh, yh);
		bl[q] = _mm512_max_epu32(_mm512_min_epu32(xh, yh), _mm512_max_epu32(xl, yl));
	}
	/* block k of bh[0] holds group k, of bh[1] group 4 + k: pair the lanes within each block */
	const __m512i ph0 = _mm512_unpacklo_epi64(bh[0], bh[1]), ph1 = _mm512_unpackhi_epi64(bh[0], bh[1]);
	const __m512i pl0 = _mm512_unpacklo_epi64(bl[0], bl[1]), pl1 = _mm512_unpackhi_epi64(bl[0], bl[1]);
	const __m512i ch = _mm512_max_epu32(ph0, ph1);
	const __m512i cl = _mm512_max_epu32(_mm512_min_epu32(ph0, ph1), _mm512_max_epu32(pl0, pl1));
	/* lanes 4k, 4k + 1 of ch: group k; lanes 4k + 2, 4k + 3: group 4 + k (two lanes each) */
	const __m512i sh = _mm512_shuffle_epi32(ch, _MM_PERM_CDAB), sl = _mm512_shuffle_epi32(cl, _MM_PERM_CDAB);
	const __m512i dh = _mm512_max_epu32(ch, sh);
	const __m512i dl = _mm512_max_epu32(_mm512_min_epu32(ch, sh), _mm512_max_epu32(cl, sl));
	/* group g at lane 4 (g & 3) + 2 (g >> 2) */
	const __m512i at = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
	*t1 = _mm512_maskz_permutexvar_epi32(vm_first(ng), at, dh);
	*t2 = _mm512_maskz_permutexvar_epi32(vm_first(ng), at, dl);
}

#endif
