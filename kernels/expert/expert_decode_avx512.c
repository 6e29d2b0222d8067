/* moe_expert__avx512_decode_lut: the expert MLP for <= 16 tokens (decode, weight streaming) with
 * AVX-512 F/BW/DQ/VL, every weight format and act_quant, built to decode each weight vector in as
 * few instructions as the format allows, so that quantized weights stream near the DRAM rate.
 *
 * Contract: that of expert_impl.h (it shares its activation preparation, intermediate codec and
 * epilogue): the activations are quantized exactly as the reference does, every weight element
 * is the very fp32 value moe_dequantize__ref gives, decoded in registers, and the dot products
 * accumulate in fp32 with FMA, 16 lane partial sums per (token, row) added at the end, which the
 * a-priori bound of expert_f64.c covers whatever the order. The tile is 4 weight rows (GEMM 1:
 * gate and up of 2 intermediate rows) by up to 4 tokens.
 *
 * Weight decoding per 16 weights, exact by construction:
 *   - f32: the load itself; bf16: zero-extend and shift.
 *   - NVFP4 / MXFP4: every value e2m1(n) * d of a tensor is one of 256 x 16 products (d is a
 *     function of the scale byte), so a per-tensor table tab[byte][n] = RN(e2m1(n) * d(byte)),
 *     built on the stack with the reference's own products and roundings, turns a block into one
 *     nibble expansion and one vpermps whose table operand is the row tab[scale byte] in memory.
 *   - FP8 E4M3, 128-column block scales (x' = f(q) * s): the code's magnitude shifted to bit 20
 *     is, as an fp32 bit pattern, exactly f(q) * 2^-120 (E4M3 subnormals land on fp32 subnormals
 *     by the same shift), so RN(bits * (s * 2^120)) = RN(f(q) * s) with one multiply, exact
 *     while s * 2^120 is (|s| < 2^7, checked for every scale before the call starts); the sign
 *     is the code's bit 7 moved to bit 31, and the two NaN codes are selected by a mask.
 *   - FP8 E4M3, per-tensor / per-channel encode scale (x' = f(q) / gs, a division): f(q) / gs =
 *     2^(max(E,1) - 10) * (j / gs) with j = m or 8 + m, so a 16-entry register table RN(j / gs)
 *     per row times a 32-entry table of signed powers of two rounds like the reference whenever
 *     those values are normal fp32 (checked for every scale before the call starts).
 * A tensor whose scales fall outside those ranges runs the general decoders of expert_impl.h
 * (the moe_expert__avx512_decode code) for the whole call.
 *
 * Streaming: the rows are read 64 columns at a time (the 4 NVFP4 scale bytes of a group are one
 * 4-byte load in every layout) and prefetched EKL_PF bytes ahead, the swizzled NVFP4 scales 16
 * groups ahead (their groups are 512 or 32 bytes apart, which the hardware prefetcher misses).
 * f32 rows (4 lines a group) get every line prefetched in tiles of 4 tokens, and the last token
 * tile over a set of rows (unless it is a lone 1-token tile) also prefetches the same columns of
 * the next set into L2, so that DRAM keeps streaming while the tiles after the first re-read their
 * rows from L1 (M = 8: two 4-token tiles) or while a lone tile's FMAs run (M = 2, 4); compare
 * results/amd-epyc-2c-2026-11-22-kernels2/expert-decode-f32/ with expert-decode/.
 * The three FP4 tables take 48 KiB of stack. The FP4 and FP8 decoders are bound by their shuffles
 * and ALU work (their warm and cold rates agree), f32 and bf16 at 1 token by DRAM; figures in
 * results/amd-epyc-2c-2026-11-22-expert-decode/ and results/amd-epyc-2c-2026-11-22-kernels2/expert-decode/. */
#include "simd/simd_avx512.h"
#include "expert/expert_simd_avx512.h"

#define EK_DEC_MR 4
#define EK_PRE_MR 12

#include "expert/expert_impl.h"
#include "kernels.h"

#define EKL_R 4

enum ekl_fmt { EKL_F32, EKL_BF16, EKL_FP8_MUL, EKL_FP8_DIV, EKL_NV4, EKL_MX4 };

static const struct ek_codecs ekl_codecs = {
	moe_quantize_fp8e4m3__avx512, moe_dequantize_fp8e4m3__avx512, moe_quantize_nvfp4__avx512,
	moe_dequantize_nvfp4__avx512,
};

/* One weight tensor as this file's decoders read it. */
struct ekl_wt {
	const struct ek_wt *w;
	const float *tab; /* FP4: [256][16] */
};

/* Decoding state of one weight row. */
struct ekl_rs {
	const uint8_t *p;      /* the row's elements */
	const uint8_t *sf;     /* FP4: NVFP4 scale base / the MX row's scale bytes */
	struct moe_sf_row sfr; /* NVFP4: where the row's block scales are */
	const uint8_t *sfg;    /* FP4: the scale bytes of the next 64-column group */
	size_t sfstep;         /* FP4: from one group's scale bytes to the next */
	const float *tab;      /* FP4: [256][16] */
	const float *bs;       /* FP8 block scales: the row's scales, one per 128 columns */
	__m512 lut;            /* FP8 encode scale: RN(j / gs), j < 16 */
	__m512 s;              /* FP8 block scales: the current block's s * 2^120 */
};

static inline enum ekl_fmt ekl_fmt_of(const struct ek_wt *w)
{
	switch (w->fmt) {
	case EK_F32: return EKL_F32;
	case EK_BF16: return EKL_BF16;
	case EK_FP8: return ek_fp8_enc(w) ? EKL_FP8_DIV : EKL_FP8_MUL;
	default: return w->inv_gs != 0.0f ? EKL_NV4 : EKL_MX4;
	}
}

/* tab[c][n] = e2m1(n) * d(c) as ek_chunk computes it for the scale byte c (d: NVFP4
 * f(c) * (1 / gs), MX 2^(c - 127), NaN for 255), the 16 values in nibble order. */
static void ekl_fp4_table(const struct ek_wt *w, float (*tab)[16])
{
	const bool nv = w->inv_gs != 0.0f;
	cv_f32 t[2];
	ek_e2m1_table(t);
	for (int c0 = 0; c0 < 256; c0 += 16) {
		uint8_t b[16];
		for (int j = 0; j < 16; j++)
			b[j] = (uint8_t)(c0 + j);
		const cv_u32 c = cv_load_u8(b, 16);
		cv_f32 d;
		if (nv) {
			d = cv_e4m3_decode(c) * w->inv_gs;
		} else {
			const cv_u32 bits = cv_select(c == 0, cv_splat(0x00400000u), c << 23);
			d = (cv_f32)cv_select(c == 255, cv_splat(0x7fc00000u), bits);
		}
		for (int j = 0; j < 16; j++) {
			const cv_f32 v = t[0] * d[j];
			memcpy(tab[c0 + j], &v, sizeof v);
		}
	}
}

/* Whether the FP8 scale s (the reference's own: a dequant scale, or an encode scale gs) takes the
 * fast decoder of its kind; see the file's contract. */
static inline bool ekl_fp8_scale_ok(bool enc, float s)
{
	if (!enc)
		return fabsf(s) < 0x1p7f;
	return 1.0f / s >= 0x1p-117f && 15.0f / s <= 0x1p122f;
}

static bool ekl_fp8_ok(const struct moe_qtensor *q)
{
	const float *s = q->scales;
	const int64_t nbc = (q->cols + 127) / 128;
	int64_t n;
	switch (q->scaling) {
	case MOE_SCALING_PER_TENSOR: n = 1; break;
	case MOE_SCALING_PER_CHANNEL: n = q->rows; break;
	case MOE_SCALING_BLOCK_1x128: n = q->rows * nbc; break;
	default: n = (q->rows + 127) / 128 * nbc; break;
	}
	const bool enc = q->scaling == MOE_SCALING_PER_TENSOR || q->scaling == MOE_SCALING_PER_CHANNEL;
	for (int64_t i = 0; i < n; i++)
		if (!ekl_fp8_scale_ok(enc, s[i]))
			return false;
	return true;
}

/* Starts row `row` of t. */
EK_ALWAYS void ekl_row(enum ekl_fmt fmt, const struct ekl_wt *t, int64_t row, struct ekl_rs *st)
{
	const struct ek_wt *w = t->w;
	const size_t elems = (size_t)row * (size_t)w->cols;
	switch (fmt) {
	case EKL_F32: st->p = w->data + elems * 4; break;
	case EKL_BF16: st->p = w->data + elems * 2; break;
	case EKL_FP8_MUL:
		st->p = w->data + elems;
		st->s = _mm512_setzero_ps(); /* set per 128-column block by ekl_dot */
		st->bs = (const float *)w->scales +
			 (w->scaling == MOE_SCALING_BLOCK_1x128 ? row : row / 128) * w->nbc;
		break;
	case EKL_FP8_DIV: {
		st->p = w->data + elems;
		const float *fs = w->scales;
		const float gs = fs[w->scaling == MOE_SCALING_PER_TENSOR ? 0 : row];
		st->lut = _mm512_div_ps((__m512)ek_iota(0), _mm512_set1_ps(gs));
		break;
	}
	case EKL_NV4:
		st->p = w->data + elems / 2;
		st->sf = w->scales;
		st->sfr = moe_sf_row(w->layout, w->kb, row);
		st->sfg = st->sf + st->sfr.base;
		st->sfstep = st->sfr.step;
		st->tab = t->tab;
		break;
	case EKL_MX4:
		st->p = w->data + elems / 2;
		st->sf = (const uint8_t *)w->scales + row * w->kb;
		st->sfg = st->sf;
		st->sfstep = 2;
		st->tab = t->tab;
		break;
	}
}

/* The 16 weights of the row from column k (n <= 16 valid, 0 beyond), in the decoded order; FP4:
 * sc is the scale byte of their block. */
EK_ALWAYS __m512 ekl_dec(enum ekl_fmt fmt, const struct ekl_rs *st, const __m512 pow_t[2], int64_t k, int n,
			 unsigned sc)
{
	const __mmask16 m = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
	switch (fmt) {
	case EKL_F32:
		return n == 16 ? _mm512_loadu_ps(st->p + 4 * k) : _mm512_maskz_loadu_ps(m, st->p + 4 * k);
	case EKL_BF16: {
		const __m256i h = n == 16 ? _mm256_loadu_si256((const __m256i *)(st->p + 2 * k))
					  : _mm256_maskz_loadu_epi16(m, st->p + 2 * k);
		return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	}
	case EKL_FP8_MUL: {
		const __m128i b = n == 16 ? _mm_loadu_si128((const __m128i *)(st->p + k)) : _mm_maskz_loadu_epi8(m, st->p + k);
		/* sign-extended code << 20: magnitude in bits 20-26, copies of the sign above */
		const __m512i t = _mm512_slli_epi32(_mm512_cvtepi8_epi32(b), 20);
		const __m512i bits = _mm512_and_si512(t, _mm512_set1_epi32((int)0x87f00000u));
		/* the NaN codes 0x7f and 0xff, found on the bytes (cheaper than on 32-bit lanes) */
		const __mmask16 num = _mm_cmpneq_epi8_mask(_mm_or_si128(b, _mm_set1_epi8((char)0x80)), _mm_set1_epi8(-1));
		return _mm512_mask_mul_ps(_mm512_castsi512_ps(_mm512_set1_epi32(0x7fc00000)), num,
					  _mm512_castsi512_ps(bits), st->s);
	}
	case EKL_FP8_DIV: {
		const __m128i b = n == 16 ? _mm_loadu_si128((const __m128i *)(st->p + k)) : _mm_maskz_loadu_epi8(m, st->p + k);
		const __m512i c = _mm512_cvtepu8_epi32(b);
		/* j = m + 8 (E != 0) in the low 4 bits: bit 3 of c is E's lowest bit, 0 when E is */
		const __mmask16 normal = _mm512_test_epi32_mask(c, _mm512_set1_epi32(0x78));
		const __m512i j = _mm512_mask_or_epi32(c, normal, c, _mm512_set1_epi32(8));
		const __m512 lv = _mm512_permutexvar_ps(j, st->lut);
		const __m512 pw = _mm512_permutex2var_ps(pow_t[0], _mm512_srli_epi32(c, 3), pow_t[1]);
		const __mmask16 num = _mm512_cmpneq_epi32_mask(_mm512_and_si512(c, _mm512_set1_epi32(0x7f)),
							       _mm512_set1_epi32(0x7f));
		return _mm512_mask_mul_ps(_mm512_castsi512_ps(_mm512_set1_epi32(0x7fc00000)), num, lv, pw);
	}
	default:
		return _mm512_permutexvar_ps(ek_nibble_lanes(st->p + k / 2, k), _mm512_load_ps(st->tab + 16 * sc));
	}
}

/* Bytes of one row per column, times 2 (FP4 has half a byte). */
static inline int ekl_bytes2(enum ekl_fmt fmt)
{
	return fmt == EKL_F32 ? 8 : fmt == EKL_BF16 ? 4 : fmt == EKL_NV4 || fmt == EKL_MX4 ? 1 : 2;
}

/* How far ahead of the columns being read the rows are prefetched, in bytes. */
#define EKL_PF 1024

/* Lines of each row prefetched per 64-column group: one, except f32 rows (4 lines a group) in
 * tiles of 4 tokens, whose FMAs slow the group enough that the hardware prefetcher alone left
 * the stream short of DRAM rate; with 1 or 2 tokens the extra prefetches cost more than they
 * gain (interleaved A/B runs). */
static inline int ekl_pf_lines(enum ekl_fmt fmt, int MR)
{
	return fmt == EKL_F32 && MR >= 4 ? 4 : 1;
}

/* acc[m][r] += A[m0 + m][k .. k + n) * W_r[k .. k + n) for one vector of columns at the activation
 * offset off (rows step apart). */
EK_ALWAYS void ekl_vec(enum ekl_fmt fmt, int MR, int R, const struct ekl_rs st[EKL_R], const __m512 pow_t[2],
		       const float *xb, int64_t off, int64_t step, int64_t k, int n, const unsigned sc[EKL_R],
		       __m512 acc[4][EKL_R])
{
	__m512 xv[4];
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		xv[m] = ek_act_vec(EK_A_F32, xb, off + m * step, n);
	EK_UNROLL
	for (int r = 0; r < R; r++) {
		const __m512 wv = ekl_dec(fmt, &st[r], pow_t, k, n, sc ? sc[r] : 0);
		EK_UNROLL
		for (int m = 0; m < MR; m++)
			acc[m][r] = _mm512_fmadd_ps(xv[m], wv, acc[m][r]);
	}
}

/* The scale byte of the FP4 block holding column k of the row. */
EK_ALWAYS unsigned ekl_fp4_sc(enum ekl_fmt fmt, const struct ekl_rs *st, int64_t k)
{
	return fmt == EKL_NV4 ? st->sf[moe_sf_at(st->sfr, k / 16)] : st->sf[k / 32];
}

/* out[m * EKL_R + r] = sum_k A[m0 + m][k] * W_r[k] for MR tokens and R <= EKL_R weight rows (row
 * wr[r] of *wt[r]), over the K columns: groups of 64 columns (one 4-byte load for 4 NVFP4 scales),
 * then vectors, then the tail. f32 with ahead != 0: the same columns of the rows ahead bytes on
 * (the next tile's rows) are prefetched into L2 group by group, as the file's contract says. */
EK_ALWAYS void ekl_dot(enum ekl_fmt fmt, int MR, int R, const struct ekl_wt *const wt[], const int64_t wr[],
		       const struct ek_act *A, int64_t m0, int64_t ahead, float *out)
{
	const bool fp4 = fmt == EKL_NV4 || fmt == EKL_MX4;
	const int64_t K = A->cols;
	__m512 acc[4][EKL_R];
	__m512 pow_t[2] = { _mm512_setzero_ps(), _mm512_setzero_ps() };
	if (fmt == EKL_FP8_DIV) {
		cv_f32 t[2];
		ek_fp8_pow_table(t);
		pow_t[0] = (__m512)t[0];
		pow_t[1] = (__m512)t[1];
	}
	struct ekl_rs st[EKL_R];
	EK_UNROLL
	for (int r = 0; r < R; r++)
		ekl_row(fmt, wt[r], wr[r], &st[r]);
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = _mm512_setzero_ps();
	const float *xb = A->base;
	int64_t off, step;
	ek_act_at(EK_A_F32, A, m0, 0, &off, &step);
	/* full 16-column blocks of an interleaved operand sit rows * 16 floats apart */
	const int64_t adv = A->inter ? A->rows * 16 : 16;
	int64_t k = 0;
	for (; k + 64 <= K; k += 64, off += 4 * adv) {
		unsigned sc[4][EKL_R];
		EK_UNROLL
		for (int r = 0; r < R; r++) {
			EK_UNROLL
			for (int l = 0; l < ekl_pf_lines(fmt, MR); l++)
				_mm_prefetch((const char *)st[r].p + k * ekl_bytes2(fmt) / 2 + EKL_PF + 64 * l, _MM_HINT_T0);
			if (fmt == EKL_F32 && ahead)
				EK_UNROLL
				for (int l = 0; l < 4; l++)
					_mm_prefetch((const char *)st[r].p + k * 4 + ahead + 64 * l, _MM_HINT_T1);
			if (fmt == EKL_FP8_MUL && k % 128 == 0)
				st[r].s = _mm512_set1_ps(st[r].bs[k / 128] * 0x1p120f);
			if (fmt == EKL_NV4) {
				/* the swizzled layouts put the next groups 512 or 32 bytes on */
				_mm_prefetch((const char *)st[r].sfg + 16 * st[r].sfstep, _MM_HINT_T0);
				uint32_t q;
				memcpy(&q, st[r].sfg, 4);
				EK_UNROLL
				for (int b = 0; b < 4; b++)
					sc[b][r] = (q >> (8 * b)) & 255u;
			} else if (fmt == EKL_MX4) {
				uint16_t q;
				memcpy(&q, st[r].sfg, 2);
				sc[0][r] = sc[1][r] = q & 255u;
				sc[2][r] = sc[3][r] = q >> 8;
			}
			if (fp4)
				st[r].sfg += st[r].sfstep;
		}
		EK_UNROLL
		for (int b = 0; b < 4; b++)
			ekl_vec(fmt, MR, R, st, pow_t, xb, off + b * adv, step, k + 16 * b, 16, fp4 ? sc[b] : NULL, acc);
	}
	for (; k < K; k += 16) {
		const int n = K - k < 16 ? (int)(K - k) : 16;
		unsigned sc[EKL_R];
		ek_act_at(EK_A_F32, A, m0, k, &off, &step);
		EK_UNROLL
		for (int r = 0; r < R; r++) {
			if (fmt == EKL_FP8_MUL && k % 128 == 0)
				st[r].s = _mm512_set1_ps(st[r].bs[k / 128] * 0x1p120f);
			sc[r] = fp4 ? ekl_fp4_sc(fmt, &st[r], k) : 0;
		}
		ekl_vec(fmt, MR, R, st, pow_t, xb, off, step, k, n, sc, acc);
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			out[m * EKL_R + r] = _mm512_reduce_add_ps(acc[m][r]);
}

/* ekl_dot for EKL_R rows and mr (1, 2 or 4) tokens; ahead a constant 0 where no prefetch of the
 * next rows is wanted, so that those tiles keep no trace of it. */
EK_ALWAYS void ekl_dot_mr(enum ekl_fmt fmt, int mr, const struct ekl_wt *const wt[EKL_R], const int64_t wr[EKL_R],
			  const struct ek_act *A, int64_t m0, int64_t ahead, float *out)
{
	if (mr == 4)
		ekl_dot(fmt, 4, EKL_R, wt, wr, A, m0, ahead, out);
	else if (mr == 2)
		ekl_dot(fmt, 2, EKL_R, wt, wr, A, m0, ahead, out);
	else
		ekl_dot(fmt, 1, EKL_R, wt, wr, A, m0, ahead, out);
}

/* out[m * EKL_R + r] for the EKL_R rows and the largest power-of-two token count <= min(left,
 * 4), returned; ahead: as for ekl_dot, where the next rows of each tensor lie. Tiles of 8 tokens
 * (f32: 8 tokens x 2 rows), a variant decoding 4 rows once into an L1 buffer for all the tokens,
 * and one transposed reduction of the 16 sums of a tile measured slower or no faster in
 * interleaved A/B runs against this shape. */
EK_ALWAYS int ekl_dot_some(enum ekl_fmt fmt, int64_t left, const struct ekl_wt *const wt[EKL_R],
			   const int64_t wr[EKL_R], const struct ek_act *A, int64_t m0, int64_t ahead, float *out)
{
	const int mr = left >= 4 ? 4 : left >= 2 ? 2 : 1;
	/* the last tile of the rows fetches the next rows; a lone 1-token tile measured slower so */
	if (fmt == EKL_F32 && mr == left && (m0 > 0 || mr > 1))
		ekl_dot_mr(fmt, mr, wt, wr, A, m0, ahead, out);
	else
		ekl_dot_mr(fmt, mr, wt, wr, A, m0, 0, out);
	return mr;
}

/* GEMM 1 and its epilogue: a[m][i] = silu(gate_i . x_m) * (up_i . x_m), 2 rows of each at a time. */
EK_ALWAYS void ekl_gemm1(enum ekl_fmt fmt, const struct ekl_wt *gate, const struct ekl_wt *up, const struct ek_act *X,
			 int64_t I, const struct ek_aout *o)
{
	const int64_t M = X->rows;
	const struct ekl_wt *const wt[EKL_R] = { gate, up, gate, up };
	for (int64_t i0 = 0; i0 < I; i0 += 16) {
		const int ni = I - i0 < 16 ? (int)(I - i0) : 16;
		float gb[16][16] __attribute__((aligned(64))), ub[16][16] __attribute__((aligned(64)));
		for (int r = 0; r < ni; r += EKL_R / 2) {
			int64_t wr[EKL_R];
			EK_UNROLL
			for (int j = 0; j < EKL_R / 2; j++) /* past the end: the last row again */
				wr[2 * j] = wr[2 * j + 1] = i0 + (r + j < ni ? r + j : ni - 1);
			for (int64_t m0 = 0; m0 < M;) {
				float out[4 * EKL_R];
				const int mr = ekl_dot_some(fmt, M - m0, wt, wr, X, m0, X->cols * 4 * (EKL_R / 2), out);
				for (int t = 0; t < mr; t++)
					for (int j = 0; j < EKL_R / 2 && r + j < ni; j++) {
						gb[m0 + t][r + j] = out[t * EKL_R + 2 * j];
						ub[m0 + t][r + j] = out[t * EKL_R + 2 * j + 1];
					}
				m0 += mr;
			}
		}
		for (int64_t m = 0; m < M; m++)
			ek_store_a(o, m, i0, ek_silu_mul(_mm512_load_ps(gb[m]), _mm512_load_ps(ub[m]), o->round_bf16), ni);
	}
}

/* GEMM 2: y[m][h] = down_h . a_m, 4 rows at a time. */
EK_ALWAYS void ekl_gemm2(enum ekl_fmt fmt, const struct ekl_wt *down, const struct ek_act *A, int64_t H, float *y)
{
	const int64_t M = A->rows;
	const struct ekl_wt *const wt[EKL_R] = { down, down, down, down };
	for (int64_t h = 0; h < H; h += EKL_R) {
		const int nh = H - h < EKL_R ? (int)(H - h) : EKL_R;
		int64_t wr[EKL_R];
		EK_UNROLL
		for (int j = 0; j < EKL_R; j++)
			wr[j] = h + (j < nh ? j : nh - 1);
		for (int64_t m0 = 0; m0 < M;) {
			float out[4 * EKL_R];
			const int mr = ekl_dot_some(fmt, M - m0, wt, wr, A, m0, A->cols * 4 * EKL_R, out);
			for (int t = 0; t < mr; t++)
				for (int j = 0; j < nh; j++)
					y[(m0 + t) * H + h + j] = out[t * EKL_R + j];
			m0 += mr;
		}
	}
}

/* Both GEMMs of the run for one format (a constant, so each format gets its own loops). */
EK_ALWAYS void ekl_run(enum ekl_fmt fmt, const struct ek_run *r, const struct ekl_wt t[3])
{
	ekl_gemm1(fmt, &t[0], &t[1], &r->X, r->p->inter, &r->o);
	ek_run_mid(r);
	ekl_gemm2(fmt, &t[2], &r->o.a, r->p->hidden, r->y);
}

void moe_expert__avx512_decode_lut(const struct moe_expert_params *p, const float *x,
				   const struct moe_expert_weights *w, float *y, void *workspace)
{
	assert(moe_expert_validate(p, w) == MOE_OK && moe_expert__avx512_decode_lut_supports(MOE_OP_EXPERT, p));
	assert(p->tokens == 0 || (x && y && workspace && ((uintptr_t)workspace & 63) == 0));
	if (p->tokens == 0)
		return;
	if (p->weight_dtype == MOE_DTYPE_FP8E4M3 && !(ekl_fp8_ok(&w->gate) && ekl_fp8_ok(&w->up) && ekl_fp8_ok(&w->down))) {
		ek_expert_fmt(false, p, x, w, y, workspace, &ekl_codecs);
		return;
	}
	const struct ek_run r = ek_run_init(p, x, w, y, workspace, &ekl_codecs);
	struct ekl_wt t[3] = { { &r.gate, NULL }, { &r.up, NULL }, { &r.down, NULL } };
	ek_run_prepare(&r);
	switch (ekl_fmt_of(&r.gate)) {
	case EKL_F32: ekl_run(EKL_F32, &r, t); break;
	case EKL_BF16: ekl_run(EKL_BF16, &r, t); break;
	case EKL_FP8_MUL: ekl_run(EKL_FP8_MUL, &r, t); break;
	case EKL_FP8_DIV: ekl_run(EKL_FP8_DIV, &r, t); break;
	default: {
		float tab[3][256][16] __attribute__((aligned(64)));
		for (int j = 0; j < 3; j++) {
			ekl_fp4_table(t[j].w, tab[j]);
			t[j].tab = &tab[j][0][0];
		}
		if (r.gate.inv_gs != 0.0f)
			ekl_run(EKL_NV4, &r, t);
		else
			ekl_run(EKL_MX4, &r, t);
		break;
	}
	}
}

bool moe_expert__avx512_decode_lut_supports(enum moe_op op, const void *problem)
{
	return ek_supports(op, problem, 16);
}
