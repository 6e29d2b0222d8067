/* moe_expert__avx512bf16_decode4: the expert MLP for few tokens (decode, weight streaming) with
 * 4-bit weights: NVFP4 (every scale layout) with bf16 or NVFP4 activations (W4A16, W4A4) and MXFP4
 * with bf16 activations, H and I multiples of 64. Built for one token, where the 4-bit decoders of
 * moe_expert__avx512bf16_decode are bound by their table decoding, not by DRAM.
 *
 * Why: the fp32 FMA of this core runs twice the MACs of vdpbf16ps (calibrate: fp32 FMA 214 against
 * bf16 dot 107 GFLOP/s on one Sapphire Rapids core), and the nibbles need no unpacking to index a
 * table: vpermps reads only the low 4 bits of each 32-bit index, so 64 bytes of weights (128
 * nibbles, 8 per dword) become 8 vectors of fp32 E2M1 values with 7 shifts and 8 vpermps against
 * one constant 16-entry table. The block scales are applied once per block sum instead of once per
 * weight: per row and 128 columns, 8 (NVFP4) or 4 (MX) scale bytes become one vector of 16 lane
 * factors with one vpshufb, one shift and one product.
 *
 * Layout. Dword l of a 64-byte weight chunk holds columns 8l .. 8l+7 (low nibble first), so nibble
 * j of every dword (d >> 4j) gives vector j with lane l = column 8l + j, and lane l belongs to
 * block l/2 (NVFP4, 16 columns) or l/4 (MX, 32). The activations (x, and a for the down
 * projection) are kept in fp32 in the same order: per 128-column group g and token m, 8 vectors
 * j of 16 lanes, x[g*128 + 8l + j] in lane l of vector j, all M tokens of a group together (64
 * columns and 8 lanes for a last half group), in the workspace regions of xq and a (the same
 * bytes as [M][K] fp32).
 *
 * Arithmetic, for one dot product of K columns (row w, token x), per 128-column chunk:
 *   bs = sum over j of x_j * e_j      (lane-wise, one vmulps then 7 FMAs: 8 products per lane)
 *   acc = acc + bs * sc               (one FMA; sc = RN(f(sf) * C) in the lanes of each block)
 * and at the end the 16 lanes of acc summed (_mm512_reduce_add_ps). Here e = e2m1(nibble) (exact
 * fp32), f(sf) the block scale's value (NVFP4: E4M3 from the bits (sf << 20) read as fp32, which is
 * f(sf) * 2^-120 exactly, normal or not, times 2^120 * C in one product; MX: 2^(c-127) = c << 23),
 * and C = RN(1 / gs_w) (bf16 activations; the reference's own factor), RN(RN(1 / gs_w) *
 * RN(1 / gs_x)) (NVFP4 activations, whose values x = e2m1 * f(sf_x) are then exact in fp32), 1 for
 * MX. Why moe_expert_ref_f64's bound holds (expert_f64.c step 1 and 5):
 *   - every product x * e is exact (a bf16 or 2-by-4-bit value times a 2-bit one) unless it is
 *     subnormal; the reference's term is x * w with w = RN(e * RN(f * RN(1 / gs))) (MX: exact), so
 *     the kernel's term x * e * f * C differs from it by a relative gamma(3) (NVFP4 activations:
 *     gamma(6)), and the kernel's own roundings are at most 8 in the lane, 1 for sc, 1 per FMA into
 *     acc along the row (K / 128), 4 in the final reduction: a depth d <= 14 + K / 128, and
 *     d + 6 <= K for K >= 64, so the result is within gamma(K) * sum|xq * w| of the exact sum;
 *   - subnormal products and sums (bf16 activations below 2^-118) round with an absolute error of
 *     at most 2^-150 each, at most 8 per lane; the lane sum is then multiplied by sc, so the kernel
 *     requires sc <= 2^24 (NVFP4: C <= 2^7 with f <= 448; MX: scale bytes <= 151), which keeps
 *     those errors within the bound's 2^-126 per column; FMA into acc never flushes (no FTZ/DAZ),
 *     and sc is normal (f >= 2^-9 and C >= 2^-100). NVFP4 activations are multiples of 2^-10
 *     and their products and sums never subnormal;
 *   - no intermediate overflows where the reference's does not: bf16 activations are required
 *     below 2^100 in magnitude (so a lane sum stays below 2^107), and a chunk's bs * sc is within a
 *     relative 16u of the reference's sum of |xq * w| over it, where the bound is +inf if that
 *     approaches the overflow threshold.
 * What the kernel does not take runs moe_expert__avx512bf16_decode for the whole call, checked
 * before any output is written except the activation checks: NVFP4 weight scale bytes that are
 * NaN (0x7f, 0xff) or negative, MX scale bytes 0 (2^-127, which c << 23 cannot give) or > 151,
 * C outside [2^-100, 2^7], bf16 activations (x, and a after GEMM 1) not below 2^100 (NaN and
 * infinities included), NVFP4 activation values that are not finite.
 * silu and the epilogue as expert_impl.h (a rounded to bf16 with act_quant BF16; quantized with this
 * ISA's NVFP4 codec, bit-exact with the reference's, with act_quant NVFP4).
 *
 * Tiles: R weight rows (gate and up of R/2 intermediate rows; R down rows) by MR tokens, R = 4 for
 * MR <= 2 and R = 2 for MR = 4; each row streamed with a software prefetch 1 KiB ahead into L1
 * and 8 KiB into L2 (as moe_expert__avx512bf16_decode, measured on cold weights). */
#include "simd/simd_avx512.h"
#include "expert/expert_simd_avx512.h"

#define EK_DEC_MR 4
#define EK_PRE_MR 12

#include "expert/expert_impl.h"
#include "kernels.h"

enum {
	E4_R = 4,       /* weight rows per tile, at most */
	E4_PF = 1024,   /* prefetch distance into L1 along a weight row, in bytes */
	E4_PF2 = 8192,  /* and into L2 */
};
#ifndef E4_R4_BELOW
#define E4_R4_BELOW 4 /* token counts below this run 4-row tiles (of 1 or 2 tokens), the others 2-row tiles */
#endif

/* The weight rows of a tile: where their nibbles and scale bytes are, and the factor 2^120 * C
 * (NVFP4) that turns the scale bits into sc. */
struct e4_rows {
	const uint8_t *p[E4_R];
	const uint8_t *sf[E4_R]; /* NVFP4: the row's first group of 4 scale bytes; MX: its first byte */
	size_t sfstep;           /* NVFP4: bytes from one group of 4 blocks to the next (sf_layout.h) */
	float k1[E4_R];
};

/* One weight tensor: its rows' bytes, scales and factor. */
struct e4_wt {
	const uint8_t *data;
	const uint8_t *scales;
	enum moe_sf_layout layout;
	int64_t cols, kb; /* kb: scale blocks per row */
	float k1;         /* NVFP4: RN(2^120 * C) */
};

static inline uint32_t e4_ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint16_t e4_ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* The lane factors sc of one 128-column chunk (half: 64 columns, lanes 8-15 zero). NVFP4: lane l
 * gets block l/2 of the 8 blocks whose bytes are the 4 at sf and the 4 at sf + step; MX: lane l
 * gets byte l/4 at sf. */
EK_ALWAYS __m512 e4_scales(bool nv, bool half, const uint8_t *sf, size_t step, float k1)
{
	if (nv) {
		__m512i v = _mm512_set1_epi32((int)e4_ld32(sf));
		v = half ? _mm512_maskz_mov_epi32(0x5555, v)
			 : _mm512_mask_mov_epi32(v, 0xaaaa, _mm512_set1_epi32((int)e4_ld32(sf + step)));
		/* per 128-bit lane L (which holds the qword twice): dwords take its bytes 2L, 2L, 2L+1, 2L+1 */
		const __m512i idx = _mm512_setr_epi32((int)0x80808000, (int)0x80808000, (int)0x80808001,
						      (int)0x80808001, (int)0x80808002, (int)0x80808002,
						      (int)0x80808003, (int)0x80808003, (int)0x80808004, (int)0x80808004,
						      (int)0x80808005, (int)0x80808005, (int)0x80808006, (int)0x80808006,
						      (int)0x80808007, (int)0x80808007);
		const __m512i b = _mm512_shuffle_epi8(v, idx);
		return _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(b, 20)), _mm512_set1_ps(k1));
	}
	const __m512i v = _mm512_set1_epi32(half ? (int)e4_ld16(sf) : (int)e4_ld32(sf));
	const __m512i idx = _mm512_setr_epi32((int)0x80808000, (int)0x80808000, (int)0x80808000, (int)0x80808000,
					      (int)0x80808001, (int)0x80808001, (int)0x80808001, (int)0x80808001,
					      (int)0x80808002, (int)0x80808002, (int)0x80808002, (int)0x80808002,
					      (int)0x80808003, (int)0x80808003, (int)0x80808003, (int)0x80808003);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_shuffle_epi8(v, idx), 23));
}

/* The 16 E2M1 values as fp32, indexed by the low 4 bits of a lane. */
static inline __m512 e4_table(void)
{
	return _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f,
			      -4.0f, -6.0f);
}

/* acc[m][r] += x_m . w_r over one chunk: 128 columns (half: 64) at byte offset kh of the rows,
 * the tokens' activation vectors at xg + m * gw, vector j at + j * gw / 8. */
EK_ALWAYS void e4_step(bool nv, bool half, int MR, int R, const struct e4_rows *w, int64_t kh, const float *xg,
		       const __m512 tab, __m512 acc[4][E4_R])
{
	const int gw = half ? 64 : 128;
	const __mmask16 lanes = half ? 0x00ff : 0xffff;
	__m512i wd[E4_R];
	__m512 sc[E4_R];
	EK_UNROLL
	for (int r = 0; r < R; r++) {
		const uint8_t *row = w->p[r] + kh;
		_mm_prefetch((const char *)row + E4_PF, _MM_HINT_T0);
		_mm_prefetch((const char *)row + E4_PF2, _MM_HINT_T1);
		wd[r] = half ? _mm512_maskz_loadu_epi32(lanes, row) : _mm512_loadu_si512(row);
		const uint8_t *sf = nv ? w->sf[r] + (size_t)(kh / 32) * w->sfstep : w->sf[r] + kh / 16;
		sc[r] = e4_scales(nv, half, sf, w->sfstep, w->k1[r]);
	}
	__m512 bs[4][E4_R];
	EK_UNROLL
	for (int j = 0; j < 8; j++) {
		__m512 wv[E4_R];
		EK_UNROLL
		for (int r = 0; r < R; r++)
			wv[r] = _mm512_permutexvar_ps(j ? _mm512_srli_epi32(wd[r], 4 * j) : wd[r], tab);
		EK_UNROLL
		for (int m = 0; m < MR; m++) {
			const float *xp = xg + m * gw + j * (gw / 8);
			const __m512 xv = half ? _mm512_maskz_loadu_ps(lanes, xp) : _mm512_loadu_ps(xp);
			EK_UNROLL
			for (int r = 0; r < R; r++)
				bs[m][r] = j ? _mm512_fmadd_ps(xv, wv[r], bs[m][r]) : _mm512_mul_ps(xv, wv[r]);
		}
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_fmadd_ps(bs[m][r], sc[r], acc[m][r]);
}

/* out[m * R + r] = x_{m0 + m} . w_r for MR tokens and R rows over K columns; the activations
 * of M tokens at xb in the layout above. */
EK_ALWAYS void e4_dot(bool nv, int MR, int R, const struct e4_rows *w, const float *xb, int64_t M, int64_t m0,
		      int64_t K, float *out)
{
	const __m512 tab = e4_table();
	__m512 acc[4][E4_R];
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_setzero_ps();
	const float *xg = xb + m0 * 128;
	int64_t k = 0;
	for (; k + 128 <= K; k += 128, xg += M * 128)
		e4_step(nv, false, MR, R, w, k / 2, xg, tab, acc);
	if (k < K)
		e4_step(nv, true, MR, R, w, k / 2, xb + (k / 128) * M * 128 + m0 * 64, tab, acc);
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			out[m * R + r] = _mm512_reduce_add_ps(acc[m][r]);
}

/* Tiles of MR = 4, 2 or 1 tokens (R = 2: 4 at most; R = 4: 2 at most) over M tokens. */
EK_ALWAYS int e4_dot_some(bool nv, int R, const struct e4_rows *w, const float *xb, int64_t M, int64_t m0,
			  int64_t K, float *out)
{
	const int64_t left = M - m0;
	if (R == 2 && left >= 4) {
		e4_dot(nv, 4, R, w, xb, M, m0, K, out);
		return 4;
	}
	if (left >= 2) {
		e4_dot(nv, 2, R, w, xb, M, m0, K, out);
		return 2;
	}
	e4_dot(nv, 1, R, w, xb, M, m0, K, out);
	return 1;
}

static inline void e4_row(bool nv, const struct e4_wt *t, int64_t row, struct e4_rows *w, int r)
{
	w->p[r] = t->data + (size_t)row * (size_t)(t->cols / 2);
	w->k1[r] = t->k1;
	if (nv) {
		const struct moe_sf_row s = moe_sf_row(t->layout, t->kb, row);
		w->sf[r] = t->scales + s.base;
		w->sfstep = s.step;
	} else {
		w->sf[r] = t->scales + (size_t)row * (size_t)t->kb;
		w->sfstep = 0;
	}
}

/* Offset (in floats) of column k of token m in an activation of M tokens (the layout above). */
static inline int64_t e4_at(int64_t M, int64_t K, int64_t m, int64_t k)
{
	const int64_t g = k / 128, gw = K - g * 128 >= 128 ? 128 : 64, c = k % 128;
	return g * M * 128 + m * gw + (c % 8) * (gw / 8) + c / 8;
}

/* Activation checks accumulated over a call: false once a bf16 activation is not below 2^100 in
 * magnitude (or not finite). */
static inline bool e4_in_range(__m512 v)
{
	return _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(0x1p100f), _CMP_LT_OQ) == 0xffff;
}

/* GEMM 1 and its epilogue: a[m][i] = silu(gate_i . x_m) * (up_i . x_m), rounded to bf16 into the
 * layout at a_lay (BF16), or left in fp32 [M][I] at a_f32 (NVFP4); false when a bf16 a is out of range. */
EK_ALWAYS bool e4_gemm1(bool nv, int R, const struct e4_wt *gate, const struct e4_wt *up, const float *xb,
			int64_t M, int64_t H, int64_t I, float *a_lay, float *a_f32)
{
	bool ok = true;
	for (int64_t i0 = 0; i0 < I; i0 += 16) {
		const int ni = I - i0 < 16 ? (int)(I - i0) : 16;
		float gb[16][16] __attribute__((aligned(64))), ub[16][16] __attribute__((aligned(64)));
		for (int r = 0; r < ni; r += R / 2) {
			struct e4_rows w;
			for (int j = 0; j < R / 2; j++) { /* past the end: the last row again */
				const int64_t row = i0 + (r + j < ni ? r + j : ni - 1);
				e4_row(nv, gate, row, &w, 2 * j);
				e4_row(nv, up, row, &w, 2 * j + 1);
			}
			for (int64_t m0 = 0; m0 < M;) {
				float out[16];
				const int mr = e4_dot_some(nv, R, &w, xb, M, m0, H, out);
				for (int q = 0; q < mr; q++)
					for (int j = 0; j < R / 2 && r + j < ni; j++) {
						gb[m0 + q][r + j] = out[q * R + 2 * j];
						ub[m0 + q][r + j] = out[q * R + 2 * j + 1];
					}
				m0 += mr;
			}
		}
		const __mmask16 lanes = (__mmask16)((1u << ni) - 1u);
		for (int64_t m = 0; m < M; m++) {
			const __m512 g = _mm512_maskz_load_ps(lanes, gb[m]), u = _mm512_maskz_load_ps(lanes, ub[m]);
			const __m512 a = ek_silu_mul(g, u, a_lay != NULL);
			if (a_lay) {
				ok &= e4_in_range(a);
				/* 16 columns of a 16-aligned span: lanes c/8 and c/8 + 1 of the vectors c % 8 */
				const __m512 pr = _mm512_permutexvar_ps(
					_mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15), a);
				float t[16] __attribute__((aligned(64)));
				_mm512_store_ps(t, pr);
				float *dst = a_lay + e4_at(M, I, m, i0);
				const int64_t vs = I - i0 / 128 * 128 >= 128 ? 16 : 8;
				for (int j = 0; j < 8; j++)
					memcpy(dst + j * vs, t + 2 * j, 8);
			} else {
				_mm512_mask_storeu_ps(a_f32 + m * I + i0, lanes, a);
			}
		}
	}
	return ok;
}

/* GEMM 2: y[m][h] = down_h . a_m, R rows at a time. */
EK_ALWAYS void e4_gemm2(bool nv, int R, const struct e4_wt *down, const float *ab, int64_t M, int64_t H, int64_t I,
			float *y)
{
	for (int64_t h = 0; h < H; h += R) {
		const int nh = H - h < R ? (int)(H - h) : R;
		struct e4_rows w;
		EK_UNROLL
		for (int j = 0; j < R; j++)
			e4_row(nv, down, h + (j < nh ? j : nh - 1), &w, j);
		for (int64_t m0 = 0; m0 < M;) {
			float out[16];
			const int mr = e4_dot_some(nv, R, &w, ab, M, m0, I, out);
			for (int q = 0; q < mr; q++)
				for (int j = 0; j < nh; j++)
					y[(m0 + q) * H + h + j] = out[q * R + j];
			m0 += mr;
		}
	}
}

static bool e4_gemm1_any(bool nv, int64_t M, const struct e4_wt *gate, const struct e4_wt *up, const float *xb,
			 int64_t H, int64_t I, float *a_lay, float *a_f32)
{
	if (nv)
		return M < E4_R4_BELOW ? e4_gemm1(true, 4, gate, up, xb, M, H, I, a_lay, a_f32)
			     : e4_gemm1(true, 2, gate, up, xb, M, H, I, a_lay, a_f32);
	return M < E4_R4_BELOW ? e4_gemm1(false, 4, gate, up, xb, M, H, I, a_lay, a_f32)
		     : e4_gemm1(false, 2, gate, up, xb, M, H, I, a_lay, a_f32);
}

static void e4_gemm2_any(bool nv, int64_t M, const struct e4_wt *down, const float *ab, int64_t H, int64_t I,
			 float *y)
{
	if (nv) {
		if (M < E4_R4_BELOW)
			e4_gemm2(true, 4, down, ab, M, H, I, y);
		else
			e4_gemm2(true, 2, down, ab, M, H, I, y);
	} else if (M < E4_R4_BELOW) {
		e4_gemm2(false, 4, down, ab, M, H, I, y);
	} else {
		e4_gemm2(false, 2, down, ab, M, H, I, y);
	}
}

/* ---- activations ---- */

/* dst (the layout) = src [M][K] fp32 rounded to bf16 (RNE); false when one is not below 2^100. */
static bool e4_put_bf16(const float *src, int64_t M, int64_t K, float *dst)
{
	bool ok = true;
	const __m512i ix = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
	for (int64_t m = 0; m < M; m++)
		for (int64_t k = 0; k < K; k += 16) {
			const __m512 v = ek_round_bf16(_mm512_loadu_ps(src + m * K + k));
			ok &= e4_in_range(v);
			float t[16] __attribute__((aligned(64)));
			_mm512_store_ps(t, _mm512_permutexvar_ps(ix, v));
			float *d = dst + e4_at(M, K, m, k);
			const int64_t vs = K - k / 128 * 128 >= 128 ? 16 : 8;
			for (int j = 0; j < 8; j++)
				memcpy(d + j * vs, t + 2 * j, 8);
		}
	return ok;
}

/* dst (the layout) = the NVFP4 activation q [M][K] decoded without its global scale: e2m1 * f(sf),
 * exact in fp32; false when one is not finite. */
static bool e4_put_nvfp4(const struct moe_qtensor *q, float *dst)
{
	const int64_t M = q->rows, K = q->cols, kb = K / 16;
	const __m512 tab = e4_table();
	__mmask16 bad = 0;
	for (int64_t m = 0; m < M; m++) {
		const struct moe_sf_row s = moe_sf_row(q->sf_layout, kb, m);
		const uint8_t *codes = (const uint8_t *)q->data + m * (K / 2), *sf = (const uint8_t *)q->scales + s.base;
		for (int64_t k = 0; k < K; k += 128) {
			const bool half = K - k < 128;
			const __m512i wd = half ? _mm512_maskz_loadu_epi32(0x00ff, codes + k / 2)
						: _mm512_loadu_si512(codes + k / 2);
			const __m512 sc = half ? e4_scales(true, true, sf + (size_t)(k / 64) * s.step, s.step, 0x1p120f)
					       : e4_scales(true, false, sf + (size_t)(k / 64) * s.step, s.step, 0x1p120f);
			float *d = dst + e4_at(M, K, m, k);
			for (int j = 0; j < 8; j++) {
				const __m512 v = _mm512_mul_ps(
					_mm512_permutexvar_ps(_mm512_srlv_epi32(wd, _mm512_set1_epi32(4 * j)), tab), sc);
				bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(FLT_MAX), _CMP_NLE_UQ);
				if (half)
					_mm256_storeu_ps(d + 8 * j, _mm512_castps512_ps256(v));
				else
					_mm512_storeu_ps(d + 16 * j, v);
			}
		}
	}
	return bad == 0;
}

static const struct ek_codecs e4_codecs = {
	moe_quantize_fp8e4m3__avx512, moe_dequantize_fp8e4m3__avx512, moe_quantize_nvfp4__avx512,
	moe_dequantize_nvfp4__avx512,
};

/* NVFP4 activations: in [M][K] quantized (global scale given_gs or derived) with the codes in the
 * workspace, decoded into dst; *inv = RN(1 / gs). */
static bool e4_act_nvfp4(const struct ek_ws *ws, int64_t M, int64_t K, const float *in, float given_gs, float *dst,
			 float *inv)
{
	struct moe_qtensor q;
	moe_act_qtensor_format(MOE_ACT_NVFP4, M, K, &q);
	q.data = ws->qdata;
	q.scales = ws->qscale;
	q.global_scale = given_gs > 0.0f ? given_gs : 0.0f;
	e4_codecs.q_nvfp4(in, &q);
	*inv = 1.0f / q.global_scale;
	return e4_put_nvfp4(&q, dst);
}

/* ---- weights ---- */

/* Whether every scale byte of a tensor is one the kernel takes (NVFP4: not NaN, not negative;
 * MX: 1 .. 151), padding of the swizzled layouts included. */
static bool e4_scales_ok(const struct moe_qtensor *q)
{
	const uint8_t *s = q->scales;
	const size_t n = moe_qtensor_scale_bytes(q);
	const bool nv = q->dtype == MOE_DTYPE_NVFP4;
	__mmask64 bad = 0;
	for (size_t i = 0; i < n; i += 64) {
		const __mmask64 in = n - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - i)) - 1u;
		const __m512i v = _mm512_maskz_loadu_epi8(in, s + i);
		bad |= nv ? _mm512_mask_cmpge_epu8_mask(in, v, _mm512_set1_epi8(0x7f))
			  : _mm512_mask_cmpgt_epu8_mask(in, _mm512_sub_epi8(v, _mm512_set1_epi8(1)),
							_mm512_set1_epi8((char)150));
	}
	return bad == 0;
}

/* The tensor for the kernel, with c_x the activation's factor; false when C = RN(1 / gs * c_x) is
 * outside [2^-100, 2^7]. */
static bool e4_weight(const struct moe_qtensor *q, float c_x, struct e4_wt *t)
{
	const bool nv = q->dtype == MOE_DTYPE_NVFP4;
	*t = (struct e4_wt){ .data = q->data, .scales = q->scales, .layout = q->sf_layout, .cols = q->cols,
			     .kb = q->cols / (nv ? 16 : 32), .k1 = 1.0f };
	if (!nv)
		return true;
	const float c = (1.0f / q->global_scale) * c_x;
	t->k1 = c * 0x1p120f;
	return fabsf(c) >= 0x1p-100f && fabsf(c) <= 0x1p7f;
}

/* The whole expert on this file's path; false (y unspecified) when the data need the other kernel. */
static bool e4_expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		      float *y, void *workspace)
{
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	const bool nv = p->weight_dtype == MOE_DTYPE_NVFP4;
	const struct ek_ws ws = ek_ws(p, workspace);
	if (!e4_scales_ok(&w->gate) || !e4_scales_ok(&w->up) || !e4_scales_ok(&w->down))
		return false;
	struct e4_wt gate, up, down;
	float cx = 1.0f, ca = 1.0f;
	bool ok;
	if (p->act_quant == MOE_ACT_NVFP4)
		ok = e4_act_nvfp4(&ws, M, H, x, p->act_global_scale[0], ws.xq, &cx);
	else
		ok = e4_put_bf16(x, M, H, ws.xq);
	if (!ok || !e4_weight(&w->gate, cx, &gate) || !e4_weight(&w->up, cx, &up))
		return false;
	if (p->act_quant == MOE_ACT_NVFP4) {
		e4_gemm1_any(nv, M, &gate, &up, ws.xq, H, I, NULL, ws.a);
		ok = e4_act_nvfp4(&ws, M, I, ws.a, p->act_global_scale[1], ws.a, &ca);
	} else {
		ok = e4_gemm1_any(nv, M, &gate, &up, ws.xq, H, I, ws.a, NULL);
	}
	if (!ok || !e4_weight(&w->down, ca, &down))
		return false;
	e4_gemm2_any(nv, M, &down, ws.a, H, I, y);
	return true;
}

/* Whether the problem is one this file's arithmetic takes (the data may still send it on). */
static bool e4_takes(const struct moe_expert_params *p)
{
	if (p->hidden < 64 || p->inter < 64 || p->hidden % 64 || p->inter % 64)
		return false;
	switch (p->weight_dtype) {
	case MOE_DTYPE_MXFP4:
		return p->act_quant == MOE_ACT_BF16;
	case MOE_DTYPE_NVFP4:
		return p->act_quant == MOE_ACT_BF16 || p->act_quant == MOE_ACT_NVFP4;
	default:
		return false;
	}
}

void moe_expert__avx512bf16_decode4(const struct moe_expert_params *p, const float *x,
				    const struct moe_expert_weights *w, float *y, void *workspace)
{
	assert(moe_expert_validate(p, w) == MOE_OK && moe_expert__avx512bf16_decode4_supports(MOE_OP_EXPERT, p));
	assert(p->tokens == 0 || (x && y && workspace && ((uintptr_t)workspace & 63) == 0));
	if (p->tokens == 0)
		return;
	if (!e4_expert(p, x, w, y, workspace))
		moe_expert__avx512bf16_decode(p, x, w, y, workspace);
}

bool moe_expert__avx512bf16_decode4_supports(enum moe_op op, const void *problem)
{
	const struct moe_expert_params *p = problem;
	return ek_supports(op, problem, 8) && (!p || e4_takes(p));
}
