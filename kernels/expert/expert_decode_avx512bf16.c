/* moe_expert__avx512bf16_decode: the expert MLP for <= 16 tokens (decode, weight streaming) with
 * vdpbf16ps (AVX512_BF16 + AVX512_VBMI), for the formats whose weights AND activations can be
 * written exactly in bf16, each up to a factor applied in fp32 afterwards:
 *   - bf16 weights with act_quant BF16 (W16A16);
 *   - FP8 E4M3 weights (every scaling) with FP8 activations (per tensor or 1x128): the unscaled
 *     codes' values f(q), the scales applied per 128-column block;
 *   - NVFP4 weights (every scale layout) with bf16 or NVFP4 activations: e2m1(n) * f(block scale
 *     byte), the global scales applied once per dot product;
 *   - MXFP4 weights with bf16 activations: e2m1(n) * 2^(byte - 127), the reference's very values.
 * H and I must be >= 64. Any other problem, or data that these paths cannot take exactly (below),
 * runs moe_expert__avx512_decode_lut for the whole call.
 *
 * Why: vdpbf16ps adds two bf16 x bf16 products per fp32 lane, 32 weights per instruction against 16
 * for an fp32 FMA, and takes bf16 weights as stored, FP8 after two byte-table lookups per 64 and
 * FP4 after one word-table lookup per 32, instead of a conversion and M fp32 FMAs per 16 weights.
 *
 * Contract (judged by moe_expert_ref_f64's bound, expert_f64.c):
 *   - activations are quantized exactly as the reference does (expert_impl.h: bf16 RNE, or this
 *     ISA's bit-exact FP8 / NVFP4 codec kernels on the whole [M][H] / [M][I] tensor, global scale
 *     given or derived); the kernel then uses their codes;
 *   - every product of two bf16 values is exact in fp32 (at most 8 by 8 significant bits), and
 *     vdpbf16ps rounds each of its two additions to nearest even: an fp32 accumulation in an order
 *     of its own (16 lane partial sums per (token, row), added at the end), which the bound covers
 *     whatever the order;
 *   - vdpbf16ps treats subnormal inputs as zero, which the bound does not cover: bf16 activations
 *     are checked before each GEMM and bf16 weights as each vector is read (two mask tests), MXFP4
 *     scale bytes < 2 or > 252 (NaN 255 aside), whose values bf16 holds subnormal or not at all,
 *     through a 256-entry flag table; any of them sends the call to the fp32 kernel. FP8 and NVFP4
 *     values are never subnormal in bf16 (>= 2^-9 and >= 2^-10), nor are their products or the
 *     partial sums of those (multiples of 2^-18, 2^-20); bf16 partial sums, flushed when subnormal,
 *     stay within the bound's 2^-126 per addition;
 *   - FP8: the reference's terms are RN(f(q_x) s_x) * RN(f(q_w) s_w) (s: a dequant scale, or 1 / gs
 *     of an encode scale, rounded). Here f(q) is decoded to bf16 exactly (vpermi2b tables of its
 *     high and low bytes by the 7-bit magnitude, the sign OR-ed in, NaN codes to NaN), the exact
 *     products of a 128-column block are summed by vdpbf16ps and the block sum is added to the fp32
 *     accumulator with one FMA by S = RN(s_x * s_w);
 *   - NVFP4: the reference's terms are RN(e2m1 * RN(f(sf) * RN(1 / gs))) for both operands (bf16
 *     activations: x itself). Here each operand is e2m1 * f(sf), exact in bf16 (2 by 4 significant
 *     bits), from a table row per scale byte, and the dot product is multiplied at the end by
 *     C = RN(RN(1 / gs_w) * RN(1 / gs_x)) (1 for bf16 activations);
 *     in both, each term differs from the reference's by a relative 6u at most (its roundings, the
 *     one or two of S or C, the final product) against the bound's gamma(K) with K >= 64, and the
 *     factors are required within [2^-60, 2^60] (scales of FP8, 1 / gs of NVFP4; checked for every
 *     one before the call runs) so that S and C are normal and the reference's values are normal;
 *   - silu and the epilogue as expert_impl.h (a rounded to bf16 with act_quant BF16).
 * The byte tables need AVX512_VBMI, checked at run time with CPUID: without it the whole call goes
 * to the fp32 kernel.
 *
 * Layout: the kernel keeps its own bf16 copies of x and a in the workspace regions of xq and a
 * (bf16 is half the fp32 size; K >= 64 leaves room for the padding), in groups of G columns (32
 * for bf16 weights, 64 for FP8 and FP4), all M tokens of a group together, zero past K, so a tile
 * reads one activation stream with full-vector loads. Within a group the columns are in the order
 * the weight decoder produces them (FP8: per 128-bit lane, bytes 0-7 then 8-15; FP4: the even
 * columns, then the odd ones), which a dot product does not see.
 * The tile is 2 weight rows (gate and up of one intermediate row, or 2 down rows) by up to 8
 * tokens (FP4 below 4 tokens: 4 rows), each row prefetched 1 KiB ahead into L1 and 8 KiB ahead
 * into L2, which measured best on cold weights with this machine's two cores.
 * Ceilings: one vdpbf16ps per token covers 64 bytes of bf16, 32 of FP8 and 16 of FP4 weights, so
 * at a bf16 peak of P GFLOP/s (P / 64 G instructions per second; `moebench calibrate`) the dot
 * products alone allow P/M, P/(2M) and P/(4M) GB/s of weights, and the decoding shuffles compete
 * for the same ports: FP8 from 4 tokens runs at the same rate warm and cold (instruction bound),
 * and FP4 is bound by its table decoding. Figures: results/amd-epyc-2c-2026-11-22-kernels2/expert-decode/. */
#include "simd/simd_avx512.h"
#include "expert/expert_simd_avx512.h"

#define EK_DEC_MR 4
#define EK_PRE_MR 12

#include "expert/expert_impl.h"
#include "kernels.h"

/* Everything up to the entry point may use AVX512_VBMI; the entry point checks for it first. */
#pragma GCC push_options
#pragma GCC target("avx512vbmi")

enum {
	EKD_R = 4,      /* weight rows per tile, at most */
	EKD_PF = 1024,  /* prefetch distance into L1 along a weight row, in bytes */
	EKD_PF2 = 8192, /* and into L2, far enough to keep DRAM busy when few rows stream */
};

/* ---- shared tile driver ---- */

/* The weight rows a tile reads and their scale factors (FP8: per 128-column block; FP4: where
 * the block scale bytes are, and the factor of the whole dot product). */
struct ekd_rows {
	const uint8_t *p[EKD_R];
	const float *bs[EKD_R]; /* FP8 block scales of the row (NULL: one factor c for the row) */
	float c[EKD_R];         /* FP8: 1 / gs; FP4: the factor of the whole dot product */
	const uint8_t *sf[EKD_R];      /* FP4: NVFP4 scale base / the MX row's scale bytes */
	struct moe_sf_row sfr[EKD_R];  /* NVFP4: where the row's block scales are */
	bool nv;                       /* FP4: NVFP4 (else MX) */
};

/* The activation operand: bf16 words, group g of token m at base + (g * M + m) * G. */
struct ekd_act {
	const uint16_t *base;
	int64_t rows, cols;
	const float *sx; /* FP8 1x128: dequant factor of token m, block b at sx[m * nbx + b] */
	int64_t nbx;
	float c;         /* FP8 per tensor and NVFP4: 1 / gs; bf16: 1 */
};

static inline float ekd_fx(const struct ekd_act *A, int64_t m, int64_t b)
{
	return A->nbx ? A->sx[m * A->nbx + b] : A->c;
}

static inline float ekd_fw(const struct ekd_rows *w, int r, int64_t b)
{
	return w->bs[r] ? w->bs[r][b] : w->c[r];
}

/* acc[m][r] += x_m . w_r over one group of 32 bf16 columns at k (n valid, the rest 0). */
EK_ALWAYS void ekd_bf16_step(int MR, int R, const struct ekd_rows *w, const uint16_t *xg, int64_t k, int n,
			     __m512 acc[8][EKD_R], __mmask32 *sub)
{
	/* the R weight vectors first, then one activation vector at a time: R + 1 registers
	 * besides the accumulators */
	__m512i v[EKD_R];
	EK_UNROLL
	for (int r = 0; r < R; r++) {
		const uint16_t *row = (const uint16_t *)w->p[r] + k;
		_mm_prefetch((const char *)row + EKD_PF, _MM_HINT_T0);
		_mm_prefetch((const char *)row + EKD_PF2, _MM_HINT_T1);
		v[r] = n == 32 ? _mm512_loadu_si512(row) : _mm512_maskz_loadu_epi16((__mmask32)((1u << n) - 1u), row);
		/* exponent field 0, magnitude not 0 */
		*sub |= _mm512_mask_test_epi16_mask(_mm512_testn_epi16_mask(v[r], _mm512_set1_epi16(0x7f80)), v[r],
						    _mm512_set1_epi16(0x7fff));
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		const __m512bh xv = (__m512bh)_mm512_loadu_si512(xg + 32 * m);
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv, (__m512bh)v[r]);
	}
}

/* out[m * R + r] = x_{m0 + m} . w_r for MR tokens and R rows, bf16 weights. */
EK_ALWAYS void ekd_dot_bf16(int MR, int R, const struct ekd_rows *w, const struct ekd_act *A, int64_t m0, float *out,
			    __mmask32 *sub)
{
	const int64_t K = A->cols, gstep = A->rows * 32;
	const uint16_t *xg = A->base + m0 * 32;
	__m512 acc[8][EKD_R];
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_setzero_ps();
	__mmask32 s = 0;
	int64_t k = 0;
	for (; k + 32 <= K; k += 32, xg += gstep)
		ekd_bf16_step(MR, R, w, xg, k, 32, acc, &s);
	if (k < K)
		ekd_bf16_step(MR, R, w, xg, k, (int)(K - k), acc, &s);
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			out[m * R + r] = _mm512_reduce_add_ps(acc[m][r]);
	*sub |= s;
}

/* ---- FP8 E4M3 -> bf16 with byte tables ---- */

/* The decoding tables of a call. FP8: the high and low bytes of the bf16 value f(c) for the
 * magnitude codes c < 128, as two pairs of 64-byte vpermi2b tables (index bit 6 picks the second
 * of a pair). FP4: fp4[c][n] = bf16 of e2m1(n) * d(c) for the scale byte c (NVFP4 d = f(c), the
 * global scale left for the end; MX d = 2^(c - 127)), and fp4_bad[c] = 1 where that value is not
 * exact in bf16 or is subnormal there (MX bytes < 2 or > 252, NaN 255 aside). */
struct ekd_tabs {
	__m512i hi[2], lo[2];
	const uint16_t (*fp4)[16];
	const uint8_t *fp4_bad;
};

static void ekd_fp8_tables(struct ekd_tabs *t)
{
	uint8_t hi[128], lo[128];
	for (int c = 0; c < 128; c++) {
		const moe_bf16 h = moe_f32_to_bf16(moe_fp8e4m3_decode((uint8_t)c));
		hi[c] = (uint8_t)(h >> 8);
		lo[c] = (uint8_t)h;
	}
	for (int j = 0; j < 2; j++) {
		t->hi[j] = _mm512_loadu_si512(hi + 64 * j);
		t->lo[j] = _mm512_loadu_si512(lo + 64 * j);
	}
}

/* The 64 codes c[0..63] as bf16: v[0] holds, per 128-bit lane L, the codes 16L .. 16L + 7, v[1]
 * the codes 16L + 8 .. 16L + 15. */
EK_ALWAYS void ekd_fp8_dec(const struct ekd_tabs *t, __m512i c,
								  __m512i v[2])
{
	const __m512i h = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(t->hi[0], c, t->hi[1]), c,
						    _mm512_set1_epi8((char)0x80), 0xf8); /* h | (c & 0x80) */
	const __m512i l = _mm512_permutex2var_epi8(t->lo[0], c, t->lo[1]);
	v[0] = _mm512_unpacklo_epi8(l, h);
	v[1] = _mm512_unpackhi_epi8(l, h);
}

/* blk[m][r] += x_m . w_r over one group of 64 FP8 columns at k (n valid). */
EK_ALWAYS void ekd_fp8_step(int MR, int R, const struct ekd_tabs *t,
								   const struct ekd_rows *w, const uint16_t *xg,
								   int64_t k, int n, __m512 blk[8][EKD_R])
{
	__m512i wv[EKD_R][2];
	EK_UNROLL
	for (int r = 0; r < R; r++) {
		const uint8_t *row = w->p[r] + k;
		_mm_prefetch((const char *)row + EKD_PF, _MM_HINT_T0);
		_mm_prefetch((const char *)row + EKD_PF2, _MM_HINT_T1);
		const __m512i c = n == 64 ? _mm512_loadu_si512(row)
					  : _mm512_maskz_loadu_epi8(((__mmask64)1 << n) - 1u, row);
		ekd_fp8_dec(t, c, wv[r]);
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		const __m512bh x0 = (__m512bh)_mm512_loadu_si512(xg + 64 * m);
		const __m512bh x1 = (__m512bh)_mm512_loadu_si512(xg + 64 * m + 32);
		EK_UNROLL
		for (int r = 0; r < R; r++)
			blk[m][r] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(blk[m][r], x0, (__m512bh)wv[r][0]), x1,
						     (__m512bh)wv[r][1]);
	}
}

/* out[m * R + r] = x_{m0 + m} . w_r for MR tokens and R rows, FP8 weights and activations: per
 * 128-column block the exact products summed in blk, then acc += blk * RN(s_x * s_w). */
EK_ALWAYS void ekd_dot_fp8(int MR, int R, const struct ekd_tabs *t,
								  const struct ekd_rows *w, const struct ekd_act *A,
								  int64_t m0, float *out)
{
	const int64_t K = A->cols, gstep = A->rows * 64;
	const uint16_t *xg = A->base + m0 * 64;
	__m512 acc[8][EKD_R];
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_setzero_ps();
	int64_t k = 0;
	for (int64_t b = 0; k < K; b++) {
		__m512 blk[8][EKD_R];
		EK_UNROLL
		for (int m = 0; m < MR; m++)
			EK_UNROLL
			for (int r = 0; r < R; r++)
				blk[m][r] = _mm512_setzero_ps();
		if (k + 128 <= K) {
			ekd_fp8_step(MR, R, t, w, xg, k, 64, blk);
			ekd_fp8_step(MR, R, t, w, xg + gstep, k + 64, 64, blk);
			k += 128;
			xg += 2 * gstep;
		} else {
			for (; k < K; k += 64, xg += gstep)
				ekd_fp8_step(MR, R, t, w, xg, k, K - k < 64 ? (int)(K - k) : 64, blk);
		}
		float fw[EKD_R];
		EK_UNROLL
		for (int r = 0; r < R; r++)
			fw[r] = ekd_fw(w, r, b);
		EK_UNROLL
		for (int m = 0; m < MR; m++) {
			const float fx = ekd_fx(A, m0 + m, b);
			EK_UNROLL
			for (int r = 0; r < R; r++)
				acc[m][r] = _mm512_fmadd_ps(blk[m][r], _mm512_set1_ps(fx * fw[r]), acc[m][r]);
		}
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			out[m * R + r] = _mm512_reduce_add_ps(acc[m][r]);
}

/* ---- FP4 (NVFP4, MXFP4) -> bf16 with per-scale-byte table rows ---- */

/* The 64 weights of a row from column k (a multiple of 64; n = 16, 32, 48 or 64 valid, 0 beyond)
 * as bf16, v[0] the even columns k, k + 2, ..., v[1] the odd ones: each byte's two nibbles,
 * with the number of their 16-block above them, index the four table rows tab[s[b]] with one
 * vpermt2w per vector. */
EK_ALWAYS void ekd_fp4_dec(const struct ekd_tabs *t, const uint8_t *nib, int n, const unsigned s[4], __m512i v[2])
{
	const __mmask32 valid = n == 64 ? ~(__mmask32)0 : (__mmask32)((1u << (n / 2)) - 1u);
	const __m512i w = _mm512_cvtepu8_epi16(n == 64 ? _mm256_loadu_si256((const __m256i *)nib)
						      : _mm256_maskz_loadu_epi8(valid, nib));
	/* word j holds byte j of the group, of block j / 8 */
	const __m512i blk = _mm512_set_epi64(0x0030003000300030, 0x0030003000300030, 0x0020002000200020,
					     0x0020002000200020, 0x0010001000100010, 0x0010001000100010, 0, 0);
	const __m512i lo = _mm512_ternarylogic_epi32(w, _mm512_set1_epi16(0x0f), blk, 0xea); /* (a & b) | c */
	const __m512i hi = _mm512_or_si512(_mm512_srli_epi16(w, 4), blk);
	const __m512i ta = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)t->fp4[s[0]])),
					      _mm256_load_si256((const __m256i *)t->fp4[s[1]]), 1);
	const __m512i tb = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)t->fp4[s[2]])),
					      _mm256_load_si256((const __m256i *)t->fp4[s[3]]), 1);
	v[0] = _mm512_maskz_permutex2var_epi16(valid, ta, lo, tb);
	v[1] = _mm512_maskz_permutex2var_epi16(valid, ta, hi, tb);
}

/* acc[m][r] += x_m . w_r over the 64-group at k (n valid), the rows' scale bytes at sfg. */
EK_ALWAYS void ekd_fp4_step(int MR, int R, const struct ekd_tabs *t, const struct ekd_rows *w, const uint16_t *xg,
			    int64_t k, int n, const uint8_t *sfg[], const size_t sfstep[], __m512 acc[8][EKD_R],
			    unsigned *flag)
{
	__m512i v[EKD_R][2];
	EK_UNROLL
	for (int r = 0; r < R; r++) {
		const uint8_t *row = w->p[r] + k / 2;
		_mm_prefetch((const char *)row + EKD_PF, _MM_HINT_T0);
		_mm_prefetch((const char *)row + EKD_PF2, _MM_HINT_T1);
		unsigned sc[4];
		if (w->nv && n == 64) {
			/* the swizzled layouts put the next groups 512 or 32 bytes on */
			_mm_prefetch((const char *)sfg[r] + 16 * sfstep[r], _MM_HINT_T0);
			uint32_t q;
			memcpy(&q, sfg[r], 4);
			for (int b = 0; b < 4; b++)
				sc[b] = (q >> (8 * b)) & 255u;
		} else if (w->nv) {
			for (int b = 0; b < 4; b++)
				sc[b] = w->sf[r][moe_sf_at(w->sfr[r], (k + 16 * (16 * b < n ? b : 0)) / 16)];
		} else {
			sc[0] = sc[1] = w->sf[r][k / 32];
			sc[2] = sc[3] = n > 32 ? w->sf[r][k / 32 + 1] : sc[0];
			*flag |= t->fp4_bad[sc[0]] | t->fp4_bad[sc[2]];
		}
		sfg[r] += sfstep[r];
		ekd_fp4_dec(t, row, n, sc, v[r]);
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		const __m512bh x0 = (__m512bh)_mm512_loadu_si512(xg + 64 * m);
		const __m512bh x1 = (__m512bh)_mm512_loadu_si512(xg + 64 * m + 32);
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(acc[m][r], x0, (__m512bh)v[r][0]), x1,
						     (__m512bh)v[r][1]);
	}
}

/* out[m * R + r] = (x_{m0 + m} . w_r) * c_r for MR tokens and R rows, FP4 weights, 64 columns at
 * a time (one 4-byte load for 4 NVFP4 scale bytes, 2 MX bytes), the activation groups in the
 * even / odd order of ekd_fp4_dec. A scale byte whose values bf16 cannot hold sets *bad. */
EK_ALWAYS void ekd_dot_fp4(int MR, int R, const struct ekd_tabs *t, const struct ekd_rows *w,
			   const struct ekd_act *A, int64_t m0, float *out, __mmask32 *bad)
{
	const int64_t K = A->cols, gstep = A->rows * 64;
	const uint16_t *xg = A->base + m0 * 64;
	__m512 acc[8][EKD_R];
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_setzero_ps();
	const uint8_t *sfg[EKD_R];
	size_t sfstep[EKD_R];
	EK_UNROLL
	for (int r = 0; r < R; r++) {
		sfg[r] = w->nv ? w->sf[r] + w->sfr[r].base : w->sf[r];
		sfstep[r] = w->nv ? w->sfr[r].step : 2;
	}
	unsigned flag = 0;
	int64_t k = 0;
	for (; k + 64 <= K; k += 64, xg += gstep)
		ekd_fp4_step(MR, R, t, w, xg, k, 64, sfg, sfstep, acc, &flag);
	if (k < K)
		ekd_fp4_step(MR, R, t, w, xg, k, (int)(K - k), sfg, sfstep, acc, &flag);
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			out[m * R + r] = _mm512_reduce_add_ps(acc[m][r]) * w->c[r];
	*bad |= flag;
}

/* ---- the GEMMs, for one weight kind (a constant, so each kind gets its own loops) ---- */

enum ekd_kind { EKD_BF16, EKD_FP8, EKD_FP4 };

/* The row's pointer and, FP8, its scale factors (dequant block scales, or 1 / gs). */
static inline void ekd_row(enum ekd_kind kind, const struct ek_wt *wt, int64_t row, float c_x, struct ekd_rows *w,
			   int r)
{
	const size_t elems = (size_t)row * (size_t)wt->cols;
	w->p[r] = wt->data + (kind == EKD_BF16 ? 2 * elems : kind == EKD_FP8 ? elems : elems / 2);
	w->bs[r] = NULL;
	w->c[r] = 0.0f;
	if (kind == EKD_FP4) {
		w->nv = wt->inv_gs != 0.0f;
		w->c[r] = (w->nv ? wt->inv_gs : 1.0f) * c_x;
		w->sf[r] = w->nv ? wt->scales : (const uint8_t *)wt->scales + row * wt->kb;
		w->sfr[r] = w->nv ? moe_sf_row(wt->layout, wt->kb, row) : (struct moe_sf_row){ 0, 0 };
		return;
	}
	if (kind != EKD_FP8)
		return;
	const float *fs = wt->scales;
	switch (wt->scaling) {
	case MOE_SCALING_PER_TENSOR: w->c[r] = 1.0f / fs[0]; break;
	case MOE_SCALING_PER_CHANNEL: w->c[r] = 1.0f / fs[row]; break;
	case MOE_SCALING_BLOCK_1x128: w->bs[r] = fs + row * wt->nbc; break;
	default: w->bs[r] = fs + (row / 128) * wt->nbc; break;
	}
}

/* One tile: MR tokens by R rows, out[m * R + r]. */
EK_ALWAYS void ekd_tile(enum ekd_kind kind, int MR, int R, const struct ekd_tabs *t, const struct ekd_rows *w,
			const struct ekd_act *A, int64_t m0, float *out, __mmask32 *sub)
{
	if (kind == EKD_BF16)
		ekd_dot_bf16(MR, R, w, A, m0, out, sub);
	else if (kind == EKD_FP8)
		ekd_dot_fp8(MR, R, t, w, A, m0, out);
	else
		ekd_dot_fp4(MR, R, t, w, A, m0, out, sub);
}

/* The tile of R rows for the largest power-of-two token count <= min(left, 16 / R): 16
 * accumulators, which for FP8 come with 16 block sums; a few of those spill, but decoding each
 * weight vector once for 8 tokens measured faster than twice for 2 x 4; returns the count. */
EK_ALWAYS int ekd_dot_some(enum ekd_kind kind, int R, const struct ekd_tabs *t, int64_t left,
			   const struct ekd_rows *w, const struct ekd_act *A, int64_t m0, float *out, __mmask32 *sub)
{
	const int most = 16 / R;
	if (most >= 8 && left >= 8) {
		ekd_tile(kind, 8, R, t, w, A, m0, out, sub);
		return 8;
	}
	if (most >= 4 && left >= 4) {
		ekd_tile(kind, 4, R, t, w, A, m0, out, sub);
		return 4;
	}
	if (most >= 2 && left >= 2) {
		ekd_tile(kind, 2, R, t, w, A, m0, out, sub);
		return 2;
	}
	ekd_tile(kind, 1, R, t, w, A, m0, out, sub);
	return 1;
}

/* Word offset of group g of token m in an operand of M tokens and G-column groups. */
static inline int64_t ekd_at(int64_t M, int64_t G, int64_t g, int64_t m)
{
	return (g * M + m) * G;
}

/* GEMM 1 and its epilogue: a[m][i] = silu(gate_i . x_m) * (up_i . x_m), rounded to bf16 (BF16) or
 * left in fp32 for the codec (FP8: a_f32 [M][I] row-major); R / 2 rows of each at a time. */
EK_ALWAYS void ekd_gemm1(enum ekd_kind kind, int R, const struct ekd_tabs *t, const struct ek_wt *gate,
			 const struct ek_wt *up, const struct ekd_act *X, int64_t I, uint16_t *a_bf16, float *a_f32,
			 __mmask32 *sub)
{
	const int64_t M = X->rows;
	for (int64_t i0 = 0; i0 < I; i0 += 16) {
		const int ni = I - i0 < 16 ? (int)(I - i0) : 16;
		float gb[16][16] __attribute__((aligned(64))), ub[16][16] __attribute__((aligned(64)));
		for (int r = 0; r < ni; r += R / 2) {
			struct ekd_rows w;
			for (int j = 0; j < R / 2; j++) { /* past the end: the last row again */
				const int64_t row = i0 + (r + j < ni ? r + j : ni - 1);
				ekd_row(kind, gate, row, X->c, &w, 2 * j);
				ekd_row(kind, up, row, X->c, &w, 2 * j + 1);
			}
			for (int64_t m0 = 0; m0 < M;) {
				float out[16];
				const int mr = ekd_dot_some(kind, R, t, M - m0, &w, X, m0, out, sub);
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
			const __m512 a = ek_silu_mul(g, u, a_bf16 != NULL);
			if (a_bf16 && kind == EKD_FP4) {
				/* 16 columns of a 64-group (I % 16 == 0): 8 even ones, 8 odd ones */
				const __m256i h = _mm256_permutexvar_epi16(
					_mm256_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15),
					_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(a), 16)));
				uint16_t *dst = a_bf16 + ekd_at(M, 64, i0 / 64, m) + i0 % 64 / 2;
				_mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(h));
				_mm_storeu_si128((__m128i *)(dst + 32), _mm256_extracti128_si256(h, 1));
			} else if (a_bf16) {
				const __m256i h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(a), 16));
				_mm256_storeu_si256((__m256i *)(a_bf16 + ekd_at(M, 32, i0 / 32, m) + i0 % 32),
						    _mm256_maskz_mov_epi16(lanes, h));
			} else {
				_mm512_mask_storeu_ps(a_f32 + m * I + i0, lanes, a);
			}
		}
	}
}

/* GEMM 2: y[m][h] = down_h . a_m, R rows at a time. */
EK_ALWAYS void ekd_gemm2(enum ekd_kind kind, int R, const struct ekd_tabs *t, const struct ek_wt *down,
			 const struct ekd_act *A, int64_t H, float *y, __mmask32 *sub)
{
	const int64_t M = A->rows;
	for (int64_t h = 0; h < H; h += R) {
		const int nh = H - h < R ? (int)(H - h) : R;
		struct ekd_rows w;
		EK_UNROLL
		for (int j = 0; j < R; j++)
			ekd_row(kind, down, h + (j < nh ? j : nh - 1), A->c, &w, j);
		for (int64_t m0 = 0; m0 < M;) {
			float out[16];
			const int mr = ekd_dot_some(kind, R, t, M - m0, &w, A, m0, out, sub);
			for (int q = 0; q < mr; q++)
				for (int j = 0; j < nh; j++)
					y[(m0 + q) * H + h + j] = out[q * R + j];
			m0 += mr;
		}
	}
}

/* Both GEMMs' row count per tile: 2 (gate and up of one intermediate row; 2 down rows), which
 * measured best on the cold streams (fewer concurrent streams, the L2 prefetch far ahead; 4 or 8
 * rows at 1 and 2 tokens measured no faster for bf16, FP8 or FP4), with up to 8 tokens; 4 rows
 * for FP4 below 4 tokens, where the table decoding is the cost and 2 rows leave it exposed. */
static inline int ekd_rows_for(enum ekd_kind kind, int64_t M)
{
	return kind == EKD_FP4 && M < 4 ? 4 : 2;
}

/* GEMM 1 for the call's kind and the row count ekd_rows_for picks (constants in each case). */
static void ekd_gemm1_any(enum ekd_kind kind, const struct ekd_tabs *t, const struct ek_wt *gate,
			  const struct ek_wt *up, const struct ekd_act *X, int64_t I, uint16_t *a_bf16, float *a_f32,
			  __mmask32 *sub)
{
	const int R = ekd_rows_for(kind, X->rows);
	switch (kind) {
	case EKD_BF16:
		if (R == 2)
			ekd_gemm1(EKD_BF16, 2, t, gate, up, X, I, a_bf16, a_f32, sub);
		else
			ekd_gemm1(EKD_BF16, 4, t, gate, up, X, I, a_bf16, a_f32, sub);
		break;
	case EKD_FP8:
		if (R == 2)
			ekd_gemm1(EKD_FP8, 2, t, gate, up, X, I, a_bf16, a_f32, sub);
		else
			ekd_gemm1(EKD_FP8, 4, t, gate, up, X, I, a_bf16, a_f32, sub);
		break;
	default:
		if (R == 2)
			ekd_gemm1(EKD_FP4, 2, t, gate, up, X, I, a_bf16, a_f32, sub);
		else
			ekd_gemm1(EKD_FP4, 4, t, gate, up, X, I, a_bf16, a_f32, sub);
		break;
	}
}

/* GEMM 2 likewise. */
static void ekd_gemm2_any(enum ekd_kind kind, const struct ekd_tabs *t, const struct ek_wt *down,
			  const struct ekd_act *A, int64_t H, float *y, __mmask32 *sub)
{
	const int R = ekd_rows_for(kind, A->rows);
	switch (kind) {
	case EKD_BF16:
		if (R == 2)
			ekd_gemm2(EKD_BF16, 2, t, down, A, H, y, sub);
		else
			ekd_gemm2(EKD_BF16, 4, t, down, A, H, y, sub);
		break;
	case EKD_FP8:
		if (R == 2)
			ekd_gemm2(EKD_FP8, 2, t, down, A, H, y, sub);
		else
			ekd_gemm2(EKD_FP8, 4, t, down, A, H, y, sub);
		break;
	default:
		if (R == 2)
			ekd_gemm2(EKD_FP4, 2, t, down, A, H, y, sub);
		else
			ekd_gemm2(EKD_FP4, 4, t, down, A, H, y, sub);
		break;
	}
}

/* ---- activations ---- */

/* dst (M tokens, groups of G = 32 columns, or with eo of 64 columns stored even columns first,
 * as ekd_fp4_dec decodes them; zero past K) = src [M][K] fp32 rounded to bf16 (RNE). */
static void ekd_put_bf16(const float *src, int64_t M, int64_t K, bool eo, uint16_t *dst)
{
	const int64_t G = eo ? 64 : 32;
	__m512i idx[2];
	for (int h = 0; h < 2; h++) {
		uint16_t ix[32];
		for (int j = 0; j < 32; j++)
			ix[j] = (uint16_t)(2 * j + h);
		idx[h] = _mm512_loadu_si512(ix);
	}
	for (int64_t m = 0; m < M; m++)
		for (int64_t k0 = 0; k0 < K; k0 += G) {
			__m512i z[2];
			for (int h = 0; h < G / 32; h++) {
				__m256i q[2];
				for (int e = 0; e < 2; e++) {
					const int64_t k = k0 + 32 * h + 16 * e;
					const int n = K - k >= 16 ? 16 : K - k > 0 ? (int)(K - k) : 0;
					const __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), src + m * K + k);
					q[e] = _mm512_cvtepi32_epi16(vi_bf16_bits(v));
				}
				z[h] = _mm512_inserti64x4(_mm512_castsi256_si512(q[0]), q[1], 1);
			}
			uint16_t *g = dst + ekd_at(M, G, k0 / G, m);
			if (!eo) {
				_mm512_storeu_si512(g, z[0]);
			} else {
				_mm512_storeu_si512(g, _mm512_permutex2var_epi16(z[0], idx[0], z[1]));
				_mm512_storeu_si512(g + 32, _mm512_permutex2var_epi16(z[0], idx[1], z[1]));
			}
		}
}

/* dst (M tokens, 64-column groups in the decoder's order, zero past K) = the FP8 codes [M][K]
 * decoded to bf16. */
static void ekd_put_fp8(const struct ekd_tabs *t, const uint8_t *codes,
								int64_t M, int64_t K, uint16_t *dst)
{
	const int64_t ng = (K + 63) / 64;
	for (int64_t m = 0; m < M; m++)
		for (int64_t g = 0; g < ng; g++) {
			const int64_t n = K - 64 * g < 64 ? K - 64 * g : 64;
			const __m512i c = _mm512_maskz_loadu_epi8(n == 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1u,
								  codes + m * K + 64 * g);
			__m512i v[2];
			ekd_fp8_dec(t, c, v);
			_mm512_storeu_si512(dst + ekd_at(M, 64, g, m), v[0]);
			_mm512_storeu_si512(dst + ekd_at(M, 64, g, m) + 32, v[1]);
		}
}

/* Whether every scale factor of an FP8 tensor (dequant scales, or 1 / gs) lies in [2^-60, 2^60]. */
static bool ekd_fp8_scales_ok(const float *s, int64_t n, bool encode)
{
	for (int64_t i = 0; i < n; i++) {
		const float f = encode ? 1.0f / s[i] : s[i];
		if (!(fabsf(f) >= 0x1p-60f && fabsf(f) <= 0x1p60f))
			return false;
	}
	return true;
}

static bool ekd_fp8_weights_ok(const struct moe_qtensor *q)
{
	const int64_t nbc = (q->cols + 127) / 128;
	switch (q->scaling) {
	case MOE_SCALING_PER_TENSOR: return ekd_fp8_scales_ok(q->scales, 1, true);
	case MOE_SCALING_PER_CHANNEL: return ekd_fp8_scales_ok(q->scales, q->rows, true);
	case MOE_SCALING_BLOCK_1x128: return ekd_fp8_scales_ok(q->scales, q->rows * nbc, false);
	default: return ekd_fp8_scales_ok(q->scales, (q->rows + 127) / 128 * nbc, false);
	}
}

static const struct ek_codecs ekd_codecs = {
	moe_quantize_fp8e4m3__avx512, moe_dequantize_fp8e4m3__avx512, moe_quantize_nvfp4__avx512,
	moe_dequantize_nvfp4__avx512,
};

/* Quantizes in [M][K] (fp32) as act_quant says and fills A (decoded codes, their scales) from the
 * workspace; false when a scale is outside [2^-60, 2^60]. */
static bool ekd_act_fp8(const struct moe_expert_params *p, const struct ek_ws *ws,
							        const struct ekd_tabs *t, int64_t K, const float *in,
							        float *tmp, uint16_t *dst, struct ekd_act *A)
{
	const int64_t M = p->tokens;
	ek_act_codec(&ekd_codecs, p->act_quant, 0.0f, M, K, in, tmp, ws);
	const bool blocks = p->act_quant == MOE_ACT_FP8_1x128;
	const int64_t nbx = blocks ? (K + 127) / 128 : 0;
	if (!ekd_fp8_scales_ok(ws->qscale, blocks ? M * nbx : 1, !blocks))
		return false;
	ekd_put_fp8(t, ws->qdata, M, K, dst);
	*A = (struct ekd_act){ .base = dst, .rows = M, .cols = K, .sx = ws->qscale, .nbx = nbx,
			       .c = 1.0f / *(const float *)ws->qscale };
	return true;
}

/* The FP4 tables of struct ekd_tabs, from the reference's own element and scale decoders. */
static void ekd_fp4_tables(bool nv, uint16_t (*tab)[16], uint8_t *bad)
{
	for (int c = 0; c < 256; c++) {
		const float d = nv ? moe_fp8e4m3_decode((uint8_t)c) : moe_ue8m0_decode((uint8_t)c);
		bad[c] = 0;
		for (int n = 0; n < 16; n++) {
			const float v = moe_e2m1_decode((uint8_t)n) * d;
			const moe_bf16 h = moe_f32_to_bf16(v);
			tab[c][n] = h;
			if ((moe_bf16_to_f32(h) != v && v == v) || ((h & 0x7f80) == 0 && (h & 0x7fff) != 0))
				bad[c] = 1;
		}
	}
}

/* NVFP4 activations: quantizes in [M][K] (the reference's codec, global scale given_gs or derived)
 * and fills A with the decoded values e2m1 * f(scale byte), exact in bf16, and the factor
 * 1 / gs; false when that factor is outside [2^-60, 2^60]. dst may overlap in. */
static bool ekd_act_fp4(const struct moe_expert_params *p, const struct ek_ws *ws, const struct ekd_tabs *t, int64_t K,
			const float *in, float given_gs, uint16_t *dst, struct ekd_act *A)
{
	const int64_t M = p->tokens, kb = K / 16;
	struct moe_qtensor q;
	moe_act_qtensor_format(MOE_ACT_NVFP4, M, K, &q);
	q.data = ws->qdata;
	q.scales = ws->qscale;
	q.global_scale = given_gs > 0.0f ? given_gs : 0.0f;
	ekd_codecs.q_nvfp4(in, &q);
	const float inv = 1.0f / q.global_scale;
	if (!(fabsf(inv) >= 0x1p-60f && fabsf(inv) <= 0x1p60f))
		return false;
	const uint8_t *codes = q.data, *sf = q.scales;
	for (int64_t m = 0; m < M; m++)
		for (int64_t k = 0; k < K; k += 64) {
			const int n = K - k < 64 ? (int)(K - k) : 64;
			unsigned sc[4];
			for (int b = 0; b < 4; b++)
				sc[b] = sf[moe_nvfp4_sf_offset(q.sf_layout, M, kb, m, (k + 16 * (16 * b < n ? b : 0)) / 16)];
			__m512i v[2];
			ekd_fp4_dec(t, codes + (m * K + k) / 2, n, sc, v);
			_mm512_storeu_si512(dst + ekd_at(M, 64, k / 64, m), v[0]);
			_mm512_storeu_si512(dst + ekd_at(M, 64, k / 64, m) + 32, v[1]);
		}
	*A = (struct ekd_act){ .base = dst, .rows = M, .cols = K, .c = inv };
	return true;
}

/* bf16 activations: in [M][K] rounded into dst (groups of 64 in even / odd order with eo, else of
 * 32), factor 1; false when one is subnormal. */
static bool ekd_act_bf16(const float *in, int64_t M, int64_t K, bool eo, uint16_t *dst, struct ekd_act *A)
{
	const int64_t G = eo ? 64 : 32;
	ekd_put_bf16(in, M, K, eo, dst);
	*A = (struct ekd_act){ .base = dst, .rows = M, .cols = K, .c = 1.0f };
	return ek_no_bf16_subnormal(dst, M * ((K + G - 1) / G) * G);
}

/* The whole expert on this file's paths; false (y unspecified) when the data need the fp32 kernel. */
static bool ekd_expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		       float *y, void *workspace)
{
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	const struct ek_ws ws = ek_ws(p, workspace);
	const struct ek_wt gate = ek_wt(&w->gate), up = ek_wt(&w->up), down = ek_wt(&w->down);
	uint16_t *xb = (uint16_t *)ws.xq, *ab = (uint16_t *)ws.a;
	const enum moe_act_quant aq = p->act_quant;
	uint16_t fp4[256][16] __attribute__((aligned(64)));
	uint8_t bad[256];
	struct ekd_tabs t = { .fp4 = fp4, .fp4_bad = bad };
	enum ekd_kind kind;
	switch (p->weight_dtype) {
	case MOE_DTYPE_BF16:
		kind = EKD_BF16;
		break;
	case MOE_DTYPE_FP8E4M3:
		if (!ekd_fp8_weights_ok(&w->gate) || !ekd_fp8_weights_ok(&w->up) || !ekd_fp8_weights_ok(&w->down))
			return false;
		kind = EKD_FP8;
		ekd_fp8_tables(&t);
		break;
	default:
		for (int j = 0; j < 3; j++) {
			const float inv = (j == 0 ? gate : j == 1 ? up : down).inv_gs;
			if (p->weight_dtype == MOE_DTYPE_NVFP4 && !(fabsf(inv) >= 0x1p-60f && fabsf(inv) <= 0x1p60f))
				return false;
		}
		kind = EKD_FP4;
		ekd_fp4_tables(p->weight_dtype == MOE_DTYPE_NVFP4, fp4, bad);
		break;
	}
	struct ekd_act X, A;
	bool ok;
	/* codes decoded into xq's region overwrite the codec's fp32 output, which nothing reads */
	if (aq == MOE_ACT_BF16)
		ok = ekd_act_bf16(x, M, H, kind == EKD_FP4, xb, &X);
	else if (aq == MOE_ACT_NVFP4)
		ok = ekd_act_fp4(p, &ws, &t, H, x, p->act_global_scale[0], xb, &X);
	else
		ok = ekd_act_fp8(p, &ws, &t, H, x, ws.xq, xb, &X);
	if (!ok)
		return false;
	__mmask32 sub = 0;
	if (aq == MOE_ACT_BF16) {
		/* the last group's columns past I, which no epilogue store reaches */
		const int64_t G = kind == EKD_FP4 ? 64 : 32;
		memset(ab + ekd_at(M, G, (I - 1) / G, 0), 0, (size_t)(M * G) * sizeof *ab);
		ekd_gemm1_any(kind, &t, &gate, &up, &X, I, ab, NULL, &sub);
		A = (struct ekd_act){ .base = ab, .rows = M, .cols = I, .c = 1.0f };
		ok = ek_no_bf16_subnormal(ab, M * ((I + G - 1) / G) * G);
	} else {
		ekd_gemm1_any(kind, &t, &gate, &up, &X, I, NULL, ws.a, &sub);
		if (aq == MOE_ACT_NVFP4)
			ok = ekd_act_fp4(p, &ws, &t, I, ws.a, p->act_global_scale[1], ab, &A);
		else
			ok = ekd_act_fp8(p, &ws, &t, I, ws.a, ws.a, ab, &A);
	}
	if (!ok || sub)
		return false;
	ekd_gemm2_any(kind, &t, &down, &A, H, y, &sub);
	return sub == 0;
}

#pragma GCC pop_options

/* Whether the problem is one this file's arithmetic takes (the data may still send it on). */
static bool ekd_takes(const struct moe_expert_params *p)
{
	if (p->hidden < 64 || p->inter < 64)
		return false;
	switch (p->weight_dtype) {
	case MOE_DTYPE_BF16:
	case MOE_DTYPE_MXFP4:
		return p->act_quant == MOE_ACT_BF16;
	case MOE_DTYPE_NVFP4:
		return p->act_quant == MOE_ACT_BF16 || p->act_quant == MOE_ACT_NVFP4;
	case MOE_DTYPE_FP8E4M3:
		return p->act_quant == MOE_ACT_FP8_TENSOR || p->act_quant == MOE_ACT_FP8_1x128;
	default:
		return false;
	}
}

void moe_expert__avx512bf16_decode(const struct moe_expert_params *p, const float *x,
				   const struct moe_expert_weights *w, float *y, void *workspace)
{
	assert(moe_expert_validate(p, w) == MOE_OK && moe_expert__avx512bf16_decode_supports(MOE_OP_EXPERT, p));
	assert(p->tokens == 0 || (x && y && workspace && ((uintptr_t)workspace & 63) == 0));
	if (p->tokens == 0)
		return;
	if (!ekd_takes(p) || !__builtin_cpu_supports("avx512vbmi") || !ekd_expert(p, x, w, y, workspace))
		moe_expert__avx512_decode_lut(p, x, w, y, workspace);
}

bool moe_expert__avx512bf16_decode_supports(enum moe_op op, const void *problem)
{
	const struct moe_expert_params *p = problem;
	return ek_supports(op, problem, 16) && (!p || ekd_takes(p));
}
