/* The W16A16 expert MLP on vdpbf16ps, prefill blocking: bf16 weights, act_quant BF16, included by
 * expert_impl.h when the file is compiled with AVX512_BF16 (expert_avx512bf16.c).
 *
 * Contract (that of expert_impl.h, whose helpers it uses):
 *   - x and the intermediate a = silu(g) * u are rounded to bf16 per element (RNE) exactly as the
 *     reference does; a is rounded in fp32 from the fp32 g and u;
 *   - each vdpbf16ps adds two exact bf16 x bf16 products to an fp32 accumulator, rounding to
 *     nearest even: an fp32 accumulation in an order of its own (per output, k in pairs, pairs in
 *     increasing order within a K block, K blocks in increasing order), which the a-priori bound of
 *     expert_f64.c covers whatever the order;
 *   - vdpbf16ps flushes fp32-subnormal products and sums to zero (FTZ), which the bound covers
 *     (at most 2^-126 per term, expert_f64.c step 1), and treats subnormal inputs as zero (DAZ),
 *     which it does not for x and the weights, so every operand is checked: the weights while
 *     they are packed (the words pass through registers anyway), x and a with one scan each
 *     (a flushed a would be within the bound, but the contract is a rounded as the reference
 *     rounds it). On the first subnormal the GEMMs stop and the caller runs the whole expert
 *     again on the fp32 path of expert_impl.h, which overwrites everything the aborted run wrote.
 *
 * Blocking, as BLIS does it on bf16 pairs: for each panel of 32 output columns (16 gate + 16 up
 * rows for GEMM 1, 32 down rows for GEMM 2) and each K block of EK_BF16_KP pairs, the weights are
 * packed once per call into [pair][32] words (16 KiB, L1-resident), then a register tile of up to
 * EK_PRE_MR tokens x 2 vectors of fp32 accumulators runs over every token block: per pair, 2 panel
 * loads and MR activation words broadcast from memory feed 2 x MR vdpbf16ps. The token blocks are
 * balanced (sizes differ by at most one, 8 .. 12 when M > 16) so that no tile is short enough to
 * wait on the instruction's latency. Partial sums of GEMM 1 wait in a per-token buffer between K
 * blocks and the SiLU * up epilogue runs after the last; GEMM 2 accumulates in y. */
#ifndef MOE_KERNELS_EXPERT_BF16_PREFILL_H
#define MOE_KERNELS_EXPERT_BF16_PREFILL_H

/* pairs per K block: a 16 KiB panel, leaving L1 room for the tile's activation rows */
#define EK_BF16_KP 128

/* The lanes of w (bf16) holding a subnormal: exponent zero, magnitude not. */
EK_ALWAYS __mmask32 ek_bf16_sub_lanes(__m512i w)
{
	const __mmask32 e0 = _mm512_testn_epi16_mask(w, _mm512_set1_epi16(0x7f80));
	return _mm512_mask_test_epi16_mask(e0, w, _mm512_set1_epi16(0x7fff));
}

/* Whether n bf16 values hold no subnormal. */
static inline bool ek_no_bf16_subnormal(const uint16_t *v, int64_t n)
{
	__mmask32 sub = 0;
	int64_t i = 0;
	for (; i + 32 <= n; i += 32)
		sub |= ek_bf16_sub_lanes(_mm512_loadu_si512(v + i));
	if (i < n)
		sub |= ek_bf16_sub_lanes(_mm512_maskz_loadu_epi16((__mmask32)((1u << (n - i)) - 1u), v + i));
	return sub == 0;
}

/* The GEMM 1 operand: xq[m][0 .. H) = x[m] rounded to bf16 (as moe_f32_to_bf16), xq[m][H] = 0
 * when the stride ld is H + 1; 32 values per step, with the subnormal check on the rounded
 * values (what vdpbf16ps reads). Returns whether none is subnormal. */
static inline bool ek_bf16_prepare_x(const float *x, int64_t M, int64_t H, uint16_t *xq, int64_t ld)
{
	__mmask32 sub = 0;
	for (int64_t m = 0; m < M; m++) {
		const float *row = x + m * H;
		uint16_t *out = xq + m * ld;
		for (int64_t k = 0; k < H; k += 32) {
			const __mmask32 mk = H - k >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (H - k)) - 1u);
			const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)mk, row + k);
			const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(mk >> 16), row + k + 16);
			const __m512i b = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(vi_bf16_bits(lo))),
							     _mm512_cvtepi32_epi16(vi_bf16_bits(hi)), 1);
			sub |= ek_bf16_sub_lanes(b);
			_mm512_mask_storeu_epi16(out + k, mk, b);
		}
		if (ld > H)
			out[H] = 0;
	}
	return sub == 0;
}

/* bp[p][g * 16 + j] = the word of bf16 pair p (columns k0 + 2p, k0 + 2p + 1) of row r_g + j of
 * *w_g (0 past n_g rows or past the row's end), for p < ceil(kc / 2). Returns the lanes that held
 * a subnormal weight (0: none). */
static inline __mmask32 ek_bf16_pack(const struct ek_wt *const w[2], const int64_t r[2], const int nr[2], int64_t k0,
				     int64_t kc, uint32_t *bp)
{
	const int64_t pairs = (kc + 1) / 2;
	__mmask32 sub = 0;
	for (int g = 0; g < 2; g++) {
		const uint16_t *base = (const uint16_t *)w[g]->data + r[g] * w[g]->cols + k0;
		const int64_t cols = w[g]->cols;
		for (int64_t p = 0; p < pairs; p += 16) {
			const int64_t left = kc - 2 * p;
			__m512 v[16];
			if (nr[g] == 16 && left >= 32) {
				EK_UNROLL
				for (int j = 0; j < 16; j++)
					v[j] = _mm512_loadu_ps(base + j * cols + 2 * p);
			} else {
				const __mmask32 m = left >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << left) - 1u);
				EK_UNROLL
				for (int j = 0; j < 16; j++)
					v[j] = j < nr[g] ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, base + j * cols + 2 * p))
							 : _mm512_setzero_ps();
			}
			EK_UNROLL
			for (int j = 0; j < 16; j++)
				sub |= ek_bf16_sub_lanes(_mm512_castps_si512(v[j]));
			ek_transpose(v); /* 16 x 16 words: bf16 pairs move as fp32 lanes */
			if (pairs - p >= 16) {
				EK_UNROLL
				for (int t = 0; t < 16; t++)
					_mm512_store_ps(bp + (p + t) * 32 + g * 16, v[t]);
			} else {
				for (int t = 0; t < pairs - p; t++)
					_mm512_store_ps(bp + (p + t) * 32 + g * 16, v[t]);
			}
		}
	}
	return sub;
}

/* acc[m][0..1] += the pairs of A's rows m times the panel's words, over `pairs` pairs. */
EK_ALWAYS void ek_bf16_mk(int MR, const uint16_t *A, int64_t lda, const uint32_t *bp, int64_t pairs, moe_vf acc[][2])
{
	for (int64_t p = 0; p < pairs; p++) {
		const __m512bh b0 = (__m512bh)_mm512_load_si512(bp + p * 32);
		const __m512bh b1 = (__m512bh)_mm512_load_si512(bp + p * 32 + 16);
		EK_UNROLL
		for (int m = 0; m < MR; m++) {
			/* a memory broadcast of the pair (4-byte aligned: even stride, aligned rows) */
			const __m512bh xb = (__m512bh)_mm512_broadcastss_ps(_mm_load_ss((const float *)(A + m * lda + 2 * p)));
			acc[m][0] = _mm512_dpbf16_ps(acc[m][0], xb, b0);
			acc[m][1] = _mm512_dpbf16_ps(acc[m][1], xb, b1);
		}
	}
}

/* What one GEMM's token blocks share. */
struct ek_bf16_job {
	const uint16_t *A; /* at the K block's first column */
	int64_t lda, pairs;
	const uint32_t *bp;
	bool first, last;
	float *part;       /* GEMM 1: 2 vectors per token */
	const struct ek_aout *o;
	int64_t c0;
	int nc;
	float *y;          /* GEMM 2 */
	int64_t ldy;
};

/* acc[m][0..1] += the pairs of A's rows m times the panel's words over `pairs` pairs, in fp32:
 * each bf16 widened exactly, one FMA per product (for blocks where vdpbf16ps would flush). */
EK_ALWAYS void ek_f32_pair_mk(int MR, const uint16_t *A, int64_t lda, const uint32_t *bp, int64_t pairs, moe_vf acc[][2])
{
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
	for (int64_t p = 0; p < pairs; p++) {
		const __m512i b0 = _mm512_load_si512(bp + p * 32), b1 = _mm512_load_si512(bp + p * 32 + 16);
		const __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(b0, 16));
		const __m512 o0 = _mm512_castsi512_ps(_mm512_and_si512(b0, hi));
		const __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(b1, 16));
		const __m512 o1 = _mm512_castsi512_ps(_mm512_and_si512(b1, hi));
		EK_UNROLL
		for (int m = 0; m < MR; m++) {
			uint32_t word;
			memcpy(&word, A + m * lda + 2 * p, sizeof word);
			const uint32_t ebits = word << 16, obits = word & 0xffff0000u;
			float xe, xo;
			memcpy(&xe, &ebits, sizeof xe);
			memcpy(&xo, &obits, sizeof xo);
			const __m512 ve = _mm512_set1_ps(xe), vo = _mm512_set1_ps(xo);
			acc[m][0] = _mm512_fmadd_ps(ve, e0, acc[m][0]);
			acc[m][0] = _mm512_fmadd_ps(vo, o0, acc[m][0]);
			acc[m][1] = _mm512_fmadd_ps(ve, e1, acc[m][1]);
			acc[m][1] = _mm512_fmadd_ps(vo, o1, acc[m][1]);
		}
	}
}

/* Tokens m0 .. m0 + MR - 1 of one panel over one K block; GEMM 1: partial sums in part, the
 * SiLU * up epilogue after the last block; GEMM 2: accumulating in y[m][c0 .. c0 + nc). The
 * products by vdpbf16ps, or with f32 by the widened FMAs of ek_f32_pair_mk (the layer's blocks
 * where vdpbf16ps would flush a subnormal). */
EK_ALWAYS void ek_bf16_block(int MR, bool f32, bool gemm1, const struct ek_bf16_job *j, int64_t m0)
{
	moe_vf acc[EK_PRE_MR][2];
	const int n0 = j->nc < MOE_VW ? j->nc : MOE_VW, n1 = j->nc - n0;
	/* part is used across K blocks only (with one K block it may be shorter than M * 2 vectors) */
	float *part = gemm1 && !(j->first && j->last) ? j->part + m0 * 2 * MOE_VW : NULL;
	float *y = gemm1 ? NULL : j->y + m0 * j->ldy;
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		if (gemm1) {
			acc[m][0] = j->first ? vf_zero() : vf_load(part, MOE_DTYPE_F32, (m * 2) * MOE_VW);
			acc[m][1] = j->first ? vf_zero() : vf_load(part, MOE_DTYPE_F32, (m * 2 + 1) * MOE_VW);
		} else {
			acc[m][0] = j->first ? vf_zero() : vf_load_tail(y + m * j->ldy, MOE_DTYPE_F32, j->c0, n0, 0.0f);
			acc[m][1] = j->first || n1 == 0 ? vf_zero()
						       : vf_load_tail(y + m * j->ldy, MOE_DTYPE_F32, j->c0 + MOE_VW, n1, 0.0f);
		}
	}
	if (f32)
		ek_f32_pair_mk(MR, j->A + m0 * j->lda, j->lda, j->bp, j->pairs, acc);
	else
		ek_bf16_mk(MR, j->A + m0 * j->lda, j->lda, j->bp, j->pairs, acc);
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		if (gemm1 && j->last) {
			ek_store_a(j->o, m0 + m, j->c0, ek_silu_mul(acc[m][0], acc[m][1], true), j->nc);
		} else if (gemm1) {
			vf_store(part, MOE_DTYPE_F32, (m * 2) * MOE_VW, acc[m][0]);
			vf_store(part, MOE_DTYPE_F32, (m * 2 + 1) * MOE_VW, acc[m][1]);
		} else {
			vf_store_tail(y + m * j->ldy, MOE_DTYPE_F32, j->c0, acc[m][0], n0);
			if (n1)
				vf_store_tail(y + m * j->ldy, MOE_DTYPE_F32, j->c0 + MOE_VW, acc[m][1], n1);
		}
	}
}

/* One token block of 8 .. EK_PRE_MR tokens (the sizes the balanced blocks of M > 16 tokens
 * take), each size its own unrolled tile. */
EK_ALWAYS void ek_bf16_block_any(bool gemm1, const struct ek_bf16_job *j, int64_t m0, int mr)
{
	switch (mr) {
	case 12: ek_bf16_block(12, false, gemm1, j, m0); break;
	case 11: ek_bf16_block(11, false, gemm1, j, m0); break;
	case 10: ek_bf16_block(10, false, gemm1, j, m0); break;
	case 9: ek_bf16_block(9, false, gemm1, j, m0); break;
	default: assert(mr == 8); ek_bf16_block(8, false, gemm1, j, m0); break;
	}
}

/* One GEMM with vdpbf16ps: gemm1 (gate/up panels of 16 + 16 rows, epilogue into o) or GEMM 2 (32
 * down rows per panel into y), M > 16 tokens. A: bf16 [M][K + K % 2]. part: M * 2 * MOE_VW floats
 * (GEMM 1). false (stopped) when a weight is subnormal. Token blocks: nb = ceil(M / 12) blocks of
 * floor or ceil(M / nb) tokens, which is 8 .. 12 for every M > 16. */
EK_ALWAYS bool ek_bf16_gemm(bool gemm1, const struct ek_wt *w0, const struct ek_wt *w1, const uint16_t *A, int64_t M,
			    int64_t K, int64_t N, float *part, const struct ek_aout *o, float *y, int64_t ldy)
{
	_Static_assert(EK_PRE_MR == 12, "ek_bf16_block_any has a case per tile height");
	assert(M > 16);
	uint32_t bp[EK_BF16_KP * 2 * MOE_VW] __attribute__((aligned(64)));
	const struct ek_wt *const w[2] = { w0, w1 };
	const int64_t lda = ek_bf16_ld(K), step = gemm1 ? MOE_VW : 2 * MOE_VW, kc_max = 2 * EK_BF16_KP;
	const int64_t nb = (M + EK_PRE_MR - 1) / EK_PRE_MR;
	struct ek_bf16_job j = { .lda = lda, .bp = bp, .part = part, .o = o, .y = y, .ldy = ldy };
	for (int64_t c0 = 0; c0 < N; c0 += step) {
		const int nc = N - c0 < step ? (int)(N - c0) : (int)step;
		const int n0 = nc < MOE_VW ? nc : MOE_VW;
		const int64_t r[2] = { c0, gemm1 ? c0 : c0 + MOE_VW };
		const int nr[2] = { gemm1 ? nc : n0, gemm1 ? nc : nc - n0 };
		for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
			const int64_t kc = K - k0 < kc_max ? K - k0 : kc_max;
			if (ek_bf16_pack(w, r, nr, k0, kc, bp))
				return false;
			j.A = A + k0;
			j.pairs = (kc + 1) / 2;
			j.first = k0 == 0;
			j.last = k0 + kc == K;
			j.c0 = c0;
			j.nc = nc;
			for (int64_t b = 0; b < nb; b++) {
				const int64_t m0 = M * b / nb, m1 = M * (b + 1) / nb;
				ek_bf16_block_any(gemm1, &j, m0, (int)(m1 - m0));
			}
		}
	}
	return true;
}

/* The W16A16 expert with vdpbf16ps, prefill blocking; false when an operand holds a subnormal
 * (y and the workspace then hold garbage), which the caller then runs on the fp32 path. */
static inline bool ek_expert_bf16_dot(const struct moe_expert_params *p, const float *x,
				      const struct moe_expert_weights *w, float *y, void *workspace)
{
	assert(p->weight_dtype == MOE_DTYPE_BF16 && p->act_quant == MOE_ACT_BF16);
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	const struct ek_ws ws = ek_ws(p, workspace);
	const struct ek_wt gate = ek_wt(&w->gate), up = ek_wt(&w->up), down = ek_wt(&w->down);
	const struct ek_aout o = { .a = { .base = ws.a, .afmt = EK_A_BF16, .ld = ek_bf16_ld(I), .rows = M, .cols = I },
				   .round_bf16 = true };
	if (!ek_bf16_prepare_x(x, M, H, (uint16_t *)ws.xq, ek_bf16_ld(H)))
		return false;
	if (!ek_bf16_gemm(true, &gate, &up, (const uint16_t *)ws.xq, M, H, I, y, &o, NULL, 0))
		return false;
	uint16_t *a = (uint16_t *)ws.a;
	for (int64_t m = 0; o.a.ld > I && m < M; m++)
		a[m * o.a.ld + I] = 0;
	if (!ek_no_bf16_subnormal(a, M * o.a.ld))
		return false;
	return ek_bf16_gemm(false, &down, &down, a, M, I, H, NULL, NULL, y, H);
}

#endif
