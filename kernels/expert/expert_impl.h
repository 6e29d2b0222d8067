/* The expert MLP y = down(silu(gate(x)) * up(x)) on MOE_VW lanes (expert_avx2.c, expert_avx512.c
 * and expert_avx512bf16.c are this file compiled for their ISA), for every weight format
 * moe_expert_validate accepts: f32, bf16, FP8 E4M3 (per-tensor, per-channel, 1x128, 128x128),
 * NVFP4 (every scale layout) and MXFP4, and every act_quant.
 *
 * Contract (mirrors reference/expert.c and is judged by moe_expert_ref_f64's bound):
 *   - the activations x and a = silu(g)*u are quantized exactly as the reference does (bf16 RNE
 *     per element; FP8/NVFP4 through this ISA's codec kernels, bit-exact with the reference codec,
 *     on the whole [M][H] / [M][I] tensor), so a correct kernel feeds the GEMMs the same xq;
 *   - every weight element is the very fp32 value moe_dequantize__ref gives (f(q) / gs, f(q) * s,
 *     e2m1(q) * d, each rounded once), decoded in registers, never materialized as a matrix;
 *   - the dot products accumulate in fp32 with FMA in an order of their own: MOE_VW-lane partial
 *     sums combined at the end (decode) or per output column over k (prefill), which the a-priori
 *     bound of expert_f64.c covers whatever the order;
 *   - silu(g) = g / (1 + exp(-g)) with the vector exp of simd_*.h (<= 2 ulp) and a true division:
 *     within the 16u + 4u*|g| budget of expert_f64.c step 2.
 *
 * Weight decoding, exact by construction:
 *   - FP8: an E4M3 magnitude is j * 2^(max(E,1) - 10) with j = m (E = 0) or 8 + m, so its scaled
 *     value rounds as 2^(max(E,1) - 10) * RN(j op s) whenever those values are normal fp32: a
 *     16-entry table RN(j op s) per scale (one vector division or product), a 16- or 32-entry table
 *     of signed powers of two, one product and a NaN select per vector. When the scale puts any
 *     value outside the normal range the decoder falls back to f(q) op s per element.
 *   - NVFP4/MXFP4: per 16-element block the 16 signed values e2m1(n) * d (one vector product, the
 *     reference's own rounding) are a table the nibbles index with one permute; the scales d of
 *     16 blocks at a time are decoded with one vector E4M3 (or UE8M0) decode. The nibbles come
 *     out as the block's even elements then its odd ones, so x and a are stored in that order
 *     within every 16-block (a dot product does not care about the order of its terms, and the
 *     activation quantizers work per 16- or 128-block, which the permutation maps onto themselves).
 *
 * Two shapes of work (moe_expert__<isa>_decode / _prefill):
 *   decode  (few tokens, weight streaming): dot form. For 6 weight rows at a time (gate and up rows
 *           i, i+1, i+2; down rows h .. h+5) and up to EK_DEC_MR tokens, MR x 6 vector accumulators
 *           over the whole row, the weights decoded once per token block straight from their
 *           storage; the activations interleaved by 64-byte blocks so that the tile reads one stream.
 *   prefill (many tokens, compute bound): broadcast form. A panel of 2 x MOE_VW output columns
 *           (MOE_VW gate + MOE_VW up rows; 2 x MOE_VW down rows) is decoded and transposed into a
 *           [KC][2 x MOE_VW] buffer on the stack, then an EK_PRE_MR x 2-vector register tile per
 *           token block runs over it; partial sums across KC blocks wait in y (GEMM 1, only when
 *           H > KC >= 2 x MOE_VW) or in y itself (GEMM 2). The epilogue of GEMM 1 applies SiLU * up.
 *           With AVX512_BF16 and W16A16, the same on bf16 pairs with vdpbf16ps
 *           (expert_bf16_prefill.h).
 * A call runs in phases (prepare x, GEMM 1, the intermediate's codec, GEMM 2) whose GEMMs take a
 * share of the output panels (struct ek_part), so that the layer kernels can spread one expert over
 * threads with results independent of their number.
 * Kernels never allocate: the workspace of moe_expert_workspace_bytes holds xq, a and the
 * activation codes at the reference's offsets. */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "moe/backend.h"
#include "codec/codec_vec.h"
#include "codec/sf_layout.h"

#define EK_ALWAYS static inline __attribute__((always_inline))
#define EK_KC 256
/* loops over the registers of a tile: unrolled, so that the tile stays in registers */
#define EK_UNROLL _Pragma("GCC unroll 16")

enum ek_fmt { EK_F32, EK_BF16, EK_FP8, EK_FP4 };

/* Which share of a GEMM's output panels a caller computes: part `index` of `count` contiguous
 * ranges. Every output element is computed by one part with the same operations whatever the
 * count, so results do not depend on how many threads share the work (layer kernels). */
struct ek_part {
	int index, count;
};

static const struct ek_part ek_whole = { 0, 1 };

/* Items [*lo, *hi) of n for part pt. */
static inline void ek_range(int64_t n, struct ek_part pt, int64_t *lo, int64_t *hi)
{
	*lo = n * pt.index / pt.count;
	*hi = n * (pt.index + 1) / pt.count;
}

/* One weight tensor as the decoders read it. */
struct ek_wt {
	const uint8_t *data;
	const void *scales;
	enum ek_fmt fmt;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	int64_t rows, cols;
	int64_t nbc;   /* FP8: 128-column blocks per row */
	int64_t kb;    /* NVFP4: 16-blocks per row; MX: 32-blocks per row */
	float inv_gs;  /* NVFP4: 1 / global_scale, as the reference rounds it */
};

static inline struct ek_wt ek_wt(const struct moe_qtensor *q)
{
	struct ek_wt w = { .data = q->data, .scales = q->scales, .scaling = q->scaling, .layout = q->sf_layout,
			   .rows = q->rows, .cols = q->cols, .nbc = (q->cols + 127) / 128 };
	switch (q->dtype) {
	case MOE_DTYPE_F32: w.fmt = EK_F32; break;
	case MOE_DTYPE_BF16: w.fmt = EK_BF16; break;
	case MOE_DTYPE_FP8E4M3: w.fmt = EK_FP8; break;
	default:
		w.fmt = EK_FP4;
		w.kb = q->cols / (q->dtype == MOE_DTYPE_MXFP4 ? 32 : 16);
		w.inv_gs = q->dtype == MOE_DTYPE_NVFP4 ? 1.0f / q->global_scale : 0.0f;
		break;
	}
	return w;
}

/* Columns over which a row's decoding state stays the same. */
static inline int64_t ek_chunk_len(const struct ek_wt *w)
{
	if (w->fmt == EK_FP4)
		return 16;
	if (w->fmt == EK_FP8 && (w->scaling == MOE_SCALING_BLOCK_1x128 || w->scaling == MOE_SCALING_BLOCK_128x128))
		return 128;
	return w->cols;
}

/* One row's decoding state over one chunk. */
struct ek_rs {
	const uint8_t *p;  /* the row's bytes */
	int64_t row;
	struct moe_sf_row sfr; /* NVFP4: where the row's block scales are */
	int64_t dv_first;      /* FP4: the block dv[0] belongs to (-1: none yet) */
	float dv[16];          /* FP4: the decode scales d of 16 consecutive blocks */
	cv_f32 lut[2];     /* FP8: RN(j op s), j < 16; FP4: the 16 signed values times d */
	float s;           /* FP8 scale */
	bool fast;         /* FP8: the table path is exact for this scale */
};

static inline bool ek_fp8_enc(const struct ek_wt *w)
{
	return w->scaling == MOE_SCALING_PER_TENSOR || w->scaling == MOE_SCALING_PER_CHANNEL;
}

static inline cv_f32 ek_iota(int base)
{
	static const float iota[32] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
					16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
	cv_f32 v;
	memcpy(&v, iota + base, sizeof v);
	return v;
}

/* The 16 signed E2M1 values, in lanes 0..15 across the two vectors. */
static inline void ek_e2m1_table(cv_f32 t[2])
{
	static const float v[32] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
				     -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f };
	memcpy(&t[0], v, sizeof t[0]);
	memcpy(&t[1], v + MOE_VW, sizeof t[1]);
}

/* Starts reading row `row` of w. */
EK_ALWAYS void ek_row(enum ek_fmt fmt, const struct ek_wt *w, int64_t row, struct ek_rs *st)
{
	const size_t elems = (size_t)row * (size_t)w->cols;
	st->row = row;
	st->p = w->data + (fmt == EK_F32 ? elems * 4 : fmt == EK_BF16 ? elems * 2 : fmt == EK_FP8 ? elems : elems / 2);
	st->sfr = (struct moe_sf_row){ 0, 0 };
	st->dv_first = -1;
	if (fmt == EK_FP4 && w->inv_gs != 0.0f)
		st->sfr = moe_sf_row(w->layout, w->kb, row);
}

/* st->dv = the decode scales of blocks kb .. kb + 15 of the row (those that exist), exactly as the
 * reference computes them: NVFP4 d = f(sf8) * (1 / gs), MX d = 2^(byte - 127) (NaN for 255). */
static inline void ek_fp4_scales(const struct ek_wt *w, struct ek_rs *st, int64_t kb)
{
	const uint8_t *sf = w->scales;
	const bool nv = w->inv_gs != 0.0f;
	const int64_t n = w->kb - kb < 16 ? w->kb - kb : 16;
	uint8_t b[16] = { 0 };
	for (int64_t j = 0; j < n; j++)
		b[j] = nv ? sf[moe_sf_at(st->sfr, kb + j)] : sf[st->row * w->kb + kb + j];
	for (int h = 0; h < 16; h += MOE_VW) {
		const cv_u32 c = cv_load_u8(b + h, MOE_VW);
		cv_f32 d;
		if (nv) {
			d = cv_e4m3_decode(c) * w->inv_gs;
		} else {
			const cv_u32 bits = cv_select(c == 0, cv_splat(0x00400000u), c << 23);
			d = (cv_f32)cv_select(c == 255, cv_splat(0x7fc00000u), bits);
		}
		memcpy(st->dv + h, &d, sizeof d);
	}
	st->dv_first = kb;
}

/* The row's decoding state for the chunk starting at column k0 (FP8 and FP4: the scale's table). */
EK_ALWAYS void ek_chunk(enum ek_fmt fmt, const struct ek_wt *w, int64_t k0, struct ek_rs *st)
{
	const int64_t row = st->row;
	if (fmt == EK_FP8) {
		const float *fs = w->scales;
		switch (w->scaling) {
		case MOE_SCALING_PER_TENSOR: st->s = fs[0]; break;
		case MOE_SCALING_PER_CHANNEL: st->s = fs[row]; break;
		case MOE_SCALING_BLOCK_1x128: st->s = fs[row * w->nbc + k0 / 128]; break;
		default: st->s = fs[(row / 128) * w->nbc + k0 / 128]; break;
		}
		const bool enc = ek_fp8_enc(w);
		for (int h = 0; h < 2; h++)
			st->lut[h] = enc ? ek_iota(h * MOE_VW) / st->s : ek_iota(h * MOE_VW) * st->s;
		const float l1 = enc ? 1.0f / st->s : st->s, l15 = enc ? 15.0f / st->s : 15.0f * st->s;
		st->fast = l1 >= 0x1p-117f && l15 <= 0x1p122f;
	} else if (fmt == EK_FP4) {
		const bool nv = w->inv_gs != 0.0f;
		const int64_t kb = k0 / (nv ? 16 : 32);
		if (st->dv_first < 0 || kb >= st->dv_first + 16)
			ek_fp4_scales(w, st, kb);
		const float d = st->dv[kb - st->dv_first];
		cv_f32 t[2];
		ek_e2m1_table(t);
		st->lut[0] = t[0] * d;
		st->lut[1] = MOE_VW < 16 ? t[1] * d : st->lut[0]; /* 16 lanes: the first vector holds all 16 */
	}
}

/* Two-vector table lookup: lanes of idx (< 2 * MOE_VW) index the lanes of t[0] then t[1]. */
EK_ALWAYS cv_f32 ek_lookup(const cv_f32 t[2], cv_u32 idx)
{
	return __builtin_shuffle(t[0], t[1], (cv_i32)idx);
}

/* Signed powers 2^(max(E,1) - 10) by E (and, with 16 lanes, by sign << 4 | E: lanes 16..31 of the
 * pair are the negatives). */
static inline void ek_fp8_pow_table(cv_f32 t[2])
{
	static const float pw[48] = {
		0x1p-9f,  0x1p-9f,  0x1p-8f,  0x1p-7f,  0x1p-6f,  0x1p-5f,  0x1p-4f,  0x1p-3f,
		0x1p-2f,  0x1p-1f,  0x1p0f,   0x1p1f,   0x1p2f,   0x1p3f,   0x1p4f,   0x1p5f,
		-0x1p-9f, -0x1p-9f, -0x1p-8f, -0x1p-7f, -0x1p-6f, -0x1p-5f, -0x1p-4f, -0x1p-3f,
		-0x1p-2f, -0x1p-1f, -0x1p0f,  -0x1p1f,  -0x1p2f,  -0x1p3f,  -0x1p4f,  -0x1p5f,
	};
	memcpy(&t[0], pw, sizeof t[0]);
	memcpy(&t[1], pw + MOE_VW, sizeof t[1]);
}

/* MOE_VW weights of a row from column k (n <= MOE_VW valid, the rest 0), in the decoded order. */
EK_ALWAYS moe_vf ek_dec(enum ek_fmt fmt, const struct ek_wt *w, const struct ek_rs *st, const cv_f32 pow_t[2],
			int64_t k, int n)
{
	switch (fmt) {
	case EK_F32:
		return n == MOE_VW ? vf_load(st->p, MOE_DTYPE_F32, k) : vf_load_tail(st->p, MOE_DTYPE_F32, k, n, 0.0f);
	case EK_BF16:
		return n == MOE_VW ? vf_load(st->p, MOE_DTYPE_BF16, k) : vf_load_tail(st->p, MOE_DTYPE_BF16, k, n, 0.0f);
	case EK_FP8: {
		const cv_u32 c = n == MOE_VW ? (cv_u32)ek_u8_lanes(st->p + k) : cv_load_u8(st->p + k, n);
		if (__builtin_expect(!st->fast, 0)) {
			const cv_f32 v = cv_e4m3_decode(c);
			return (moe_vf)(ek_fp8_enc(w) ? v / st->s : v * st->s);
		}
		const cv_u32 idx = (c & 7u) | ((cv_u32)((c & 0x78u) != 0) & 8u);
		cv_f32 v = ek_lookup(st->lut, idx) * ek_lookup(pow_t, c >> 3);
		if (MOE_VW == 8)
			v = (cv_f32)((cv_u32)v ^ ((c & 0x80u) << 24));
		return (moe_vf)(cv_f32)cv_select((c & 0x7fu) == 0x7fu, cv_splat(0x7fc00000u), (cv_u32)v);
	}
	default: {
		/* the block's 8 bytes: low nibbles are its even elements, high nibbles its odd ones */
		const cv_u32 nib = (cv_u32)ek_nibble_lanes(st->p + (k & ~(int64_t)15) / 2, k);
		return (moe_vf)ek_lookup(st->lut, nib & 15u);
	}
	}
}

/* ---- activations ---- */

enum ek_afmt { EK_A_F32, EK_A_BF16 };

/* The workspace regions (the reference's layout, expert_rows.c). */
struct ek_ws {
	float *xq;    /* [M][H] f32, or bf16 [M][H + H % 2] */
	float *a;     /* [M][I] f32, or bf16 [M][I + I % 2] */
	void *qdata;
	void *qscale;
};

static inline size_t ek_round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static inline struct ek_ws ek_ws(const struct moe_expert_params *p, void *workspace)
{
	const size_t m = (size_t)p->tokens, h = (size_t)p->hidden, i = (size_t)p->inter, n = h > i ? h : i;
	const bool swizzled = p->weight_dtype == MOE_DTYPE_NVFP4 && p->weight_sf_layout != MOE_SF_LINEAR;
	char *base = workspace;
	struct ek_ws ws;
	size_t at = 0;
	ws.xq = (float *)(base + at);
	at += ek_round64(m * h * 4);
	ws.a = (float *)(base + at);
	at += ek_round64(m * i * 4);
	at += ek_round64((2 * h + i) * 4);
	at += ek_round64(swizzled ? n / 16 : 0);
	struct moe_qtensor q;
	size_t qd = 0;
	if (moe_act_qtensor_format(p->act_quant, p->tokens, (int64_t)n, &q))
		qd = moe_qtensor_data_bytes(&q);
	ws.qdata = base + at;
	ws.qscale = base + at + ek_round64(qd);
	return ws;
}

/* Within each 16-block of a row of n (a multiple of 16) floats: even elements first, then odd. */
static inline void ek_permute16(float *row, int64_t n)
{
	for (int64_t b = 0; b < n; b += 16) {
		float t[16];
		for (int j = 0; j < 16; j++)
			t[(j & 1) ? 8 + j / 2 : j / 2] = row[b + j];
		memcpy(row + b, t, sizeof t);
	}
}

static inline bool ek_act_coded(enum moe_act_quant aq)
{
	return aq == MOE_ACT_FP8_TENSOR || aq == MOE_ACT_FP8_1x128 || aq == MOE_ACT_NVFP4;
}

/* This ISA's codec kernels (bit-exact with the reference's), for the activations. */
struct ek_codecs {
	moe_quantize_fn *q_fp8;
	moe_dequantize_fn *d_fp8;
	moe_quantize_fn *q_nvfp4;
	moe_dequantize_fn *d_nvfp4;
};

/* Quantize-dequantize in[rows][cols] (f32, row-major) into out (may be in) as act_quant says for
 * FP8 / NVFP4, as one tensor (a derived scale from the amax of all of it). */
static inline void ek_act_codec(const struct ek_codecs *cd, enum moe_act_quant aq, float given_gs, int64_t rows,
				int64_t cols, const float *in, float *out, const struct ek_ws *ws)
{
	struct moe_qtensor q;
	const bool coded = moe_act_qtensor_format(aq, rows, cols, &q);
	assert(coded);
	(void)coded;
	q.data = ws->qdata;
	q.scales = ws->qscale;
	q.global_scale = aq == MOE_ACT_NVFP4 && given_gs > 0.0f ? given_gs : 0.0f;
	if (aq == MOE_ACT_NVFP4) {
		cd->q_nvfp4(in, &q);
		cd->d_nvfp4(&q, out);
	} else {
		cd->q_fp8(in, &q);
		cd->d_fp8(&q, out);
	}
}

/* Each lane rounded to the nearest bf16 value (moe_round_bf16), as fp32. */
static inline moe_vf ek_round_bf16(moe_vf v)
{
	return (moe_vf)((cv_u32)vi_bf16_bits(v) << 16);
}

/* Row stride of a bf16 activation: even, so that pairs never straddle rows. */
static inline int64_t ek_bf16_ld(int64_t n)
{
	return n + (n & 1);
}

/* The SiLU * up epilogue of GEMM 1 on one vector of g and u (expert_f64.c step 2 and 3). */
static inline moe_vf ek_silu_mul(moe_vf g, moe_vf u, bool to_bf16)
{
	const moe_vf s = vf_div(g, vf_add(vf_set1(1.0f), vf_exp(vf_sub(vf_zero(), g))));
	const moe_vf a = vf_mul(s, u);
	return to_bf16 ? ek_round_bf16(a) : a;
}

/* An activation operand [M][K] as the GEMMs read it: row-major with row stride ld, or interleaved
 * by blocks of blk columns (64 bytes), all M rows of a block together, element (m, k) at
 * (k / blk) * M * blk + m * nb + k % blk with nb the block's width (blk, or what is left of K for
 * the last one). The interleaved form keeps the few rows a decode tile reads in one stream instead
 * of M streams a power-of-two stride apart, which alias in the L1 sets. */
struct ek_act {
	void *base;
	enum ek_afmt afmt;
	bool inter;
	int64_t ld;   /* row-major: elements per row */
	int64_t rows; /* M */
	int64_t cols; /* K */
};

static inline int64_t ek_blk(enum ek_afmt afmt)
{
	return afmt == EK_A_BF16 ? 2 * MOE_VW : MOE_VW;
}

static inline int64_t ek_act_off(const struct ek_act *A, int64_t m, int64_t k)
{
	if (!A->inter)
		return m * A->ld + k;
	const int64_t blk = ek_blk(A->afmt), b = k / blk;
	const int64_t nb = A->cols - b * blk < blk ? A->cols - b * blk : blk;
	return b * A->rows * blk + m * nb + k % blk;
}

/* For the tile of rows m0, m0 + 1, ... at column k (a multiple of MOE_VW): the offset of row m0
 * and the distance between rows, with the layout's block width a constant. */
EK_ALWAYS void ek_act_at(enum ek_afmt afmt, const struct ek_act *A, int64_t m0, int64_t k, int64_t *off, int64_t *step)
{
	if (!A->inter) {
		*off = m0 * A->ld + k;
		*step = A->ld;
		return;
	}
	const uint64_t blk = afmt == EK_A_BF16 ? 2 * MOE_VW : MOE_VW, b = (uint64_t)k / blk;
	const int64_t nb = A->cols - (int64_t)(b * blk) < (int64_t)blk ? A->cols - (int64_t)(b * blk) : (int64_t)blk;
	*off = (int64_t)(b * blk) * A->rows + m0 * nb + (int64_t)((uint64_t)k % blk);
	*step = nb;
}

EK_ALWAYS moe_vf ek_act_vec(enum ek_afmt afmt, const void *base, int64_t off, int n)
{
	const enum moe_dtype t = afmt == EK_A_BF16 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
	return n == MOE_VW ? vf_load(base, t, off) : vf_load_tail(base, t, off, n, 0.0f);
}

/* Where GEMM 1 writes a. */
struct ek_aout {
	struct ek_act a;
	bool permute;    /* FP4 weights: columns in the decoded order of each 16-block */
	bool round_bf16; /* act_quant BF16 */
};

/* a[m][i0 .. i0 + n) = v (lanes 0 .. n-1), i0 a multiple of MOE_VW. */
static inline void ek_store_a(const struct ek_aout *o, int64_t m, int64_t i0, moe_vf v, int n)
{
	const struct ek_act *A = &o->a;
	const enum moe_dtype t = A->afmt == EK_A_BF16 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
	if (!o->permute) {
		const int64_t off = ek_act_off(A, m, i0);
		if (n == MOE_VW)
			vf_store(A->base, t, off, v);
		else
			vf_store_tail(A->base, t, off, v, n);
		return;
	}
	float tmp[MOE_VW];
	vf_store(tmp, MOE_DTYPE_F32, 0, v);
	for (int j = 0; j < n; j++) {
		const int64_t i = i0 + j, r = i & 15;
		((float *)A->base)[ek_act_off(A, m, (i & ~(int64_t)15) + ((r & 1) ? 8 + r / 2 : r / 2))] = tmp[j];
	}
}

/* x -> the GEMM 1 operand X (in the workspace's xq region, laid out as X says) per act_quant:
 * FP8 / NVFP4 through the codec (row-major), BF16 rounded per element, NONE copied; with FP4
 * weights, each 16-block in the decoded order. */
EK_ALWAYS void ek_prepare_x(const struct moe_expert_params *p, const float *x, const struct ek_ws *ws, bool permute,
			    const struct ek_act *X, const struct ek_codecs *cd)
{
	const int64_t M = p->tokens, H = p->hidden;
	const enum moe_dtype t = X->afmt == EK_A_BF16 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
	if (ek_act_coded(p->act_quant)) {
		assert(!X->inter && X->afmt == EK_A_F32 && X->ld == H);
		ek_act_codec(cd, p->act_quant, p->act_global_scale[0], M, H, x, ws->xq, ws);
		for (int64_t m = 0; permute && m < M; m++)
			ek_permute16(ws->xq + m * H, H);
		return;
	}
	for (int64_t m = 0; m < M; m++) {
		const float *row = x + m * H;
		float blk[16];
		for (int64_t k = 0; k < H; k += MOE_VW) {
			const int n = H - k < MOE_VW ? (int)(H - k) : MOE_VW;
			if (permute && k % 16 == 0) {
				memcpy(blk, row + k, sizeof blk); /* H % 16 == 0 with FP4 weights */
				ek_permute16(blk, 16);
			}
			moe_vf v = permute ? vf_load(blk, MOE_DTYPE_F32, k % 16) : vf_load_tail(row, MOE_DTYPE_F32, k, n, 0.0f);
			if (p->act_quant == MOE_ACT_BF16)
				v = ek_round_bf16(v);
			vf_store_tail(X->base, t, ek_act_off(X, m, k), v, n);
		}
		if (!X->inter && X->afmt == EK_A_BF16 && X->ld > H)
			((uint16_t *)X->base)[m * X->ld + H] = 0;
	}
}

/* ---- decode: dot form ---- */

#define EK_DEC_R 6

/* out[m * EK_DEC_R + r] = sum_k A[m0 + m][k] * W_r[k] for MR tokens and EK_DEC_R weight rows (row
 * wr[r] of *wt[r]), over the K columns. */
EK_ALWAYS void ek_dot(enum ek_fmt fmt, enum ek_afmt afmt, int MR, const struct ek_wt *const wt[EK_DEC_R], const int64_t wr[EK_DEC_R],
		      const struct ek_act *A, int64_t m0, float *out)
{
	enum { R = EK_DEC_R };
	const int64_t K = A->cols;
	moe_vf acc[EK_DEC_MR][R];
	cv_f32 pow_t[2] = { { 0 }, { 0 } };
	if (fmt == EK_FP8)
		ek_fp8_pow_table(pow_t);
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			acc[m][r] = vf_zero();
	const int64_t chunk = ek_chunk_len(wt[0]);
	struct ek_rs st[R];
	EK_UNROLL
	for (int r = 0; r < R; r++)
		ek_row(fmt, wt[r], wr[r], &st[r]);
	for (int64_t k0 = 0; k0 < K; k0 += chunk) {
		const int64_t k1 = K - k0 < chunk ? K : k0 + chunk;
		EK_UNROLL
		for (int r = 0; r < R; r++)
			ek_chunk(fmt, wt[r], k0, &st[r]);
		for (int64_t k = k0; k < k1; k += MOE_VW) {
			const int n = k1 - k < MOE_VW ? (int)(k1 - k) : MOE_VW;
			int64_t off, step;
			ek_act_at(afmt, A, m0, k, &off, &step);
			moe_vf xv[EK_DEC_MR];
			EK_UNROLL
			for (int m = 0; m < MR; m++)
				xv[m] = ek_act_vec(afmt, A->base, off + m * step, n);
			EK_UNROLL
			for (int r = 0; r < R; r++) {
				const moe_vf wv = ek_dec(fmt, wt[r], &st[r], pow_t, k, n);
				EK_UNROLL
				for (int m = 0; m < MR; m++)
					acc[m][r] = vf_fmadd(xv[m], wv, acc[m][r]);
			}
		}
	}
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int r = 0; r < R; r++)
			out[m * R + r] = vf_hsum(acc[m][r]);
}

/* The dot tile for the largest power-of-two token count <= min(left, EK_DEC_MR); returns it. */
EK_ALWAYS int ek_dot_some(enum ek_fmt fmt, enum ek_afmt afmt, int64_t left, const struct ek_wt *const wt[EK_DEC_R],
			  const int64_t wr[EK_DEC_R], const struct ek_act *A, int64_t m0, float *out)
{
#if EK_DEC_MR >= 4
	if (left >= 4) {
		ek_dot(fmt, afmt, 4, wt, wr, A, m0, out);
		return 4;
	}
#endif
	if (left >= 2) {
		ek_dot(fmt, afmt, 2, wt, wr, A, m0, out);
		return 2;
	}
	ek_dot(fmt, afmt, 1, wt, wr, A, m0, out);
	return 1;
}

/* GEMM 1 and its epilogue: a[m][i] = silu(gate_i . x_m) * (up_i . x_m), 3 rows of each at a time. */
EK_ALWAYS void ek_decode_gemm1(enum ek_fmt fmt, enum ek_afmt afmt, const struct ek_wt *gate, const struct ek_wt *up,
			       const struct ek_act *X, int64_t I, const struct ek_aout *o, struct ek_part pt)
{
	const int64_t M = X->rows;
	int64_t qlo, qhi;
	ek_range((I + MOE_VW - 1) / MOE_VW, pt, &qlo, &qhi);
	const struct ek_wt *const wt[EK_DEC_R] = { gate, up, gate, up, gate, up };
	for (int64_t mb = 0; mb < M; mb += 16) {
		const int64_t mc = M - mb < 16 ? M - mb : 16;
		for (int64_t i0 = qlo * MOE_VW; i0 < I && i0 < qhi * MOE_VW; i0 += MOE_VW) {
			const int ni = I - i0 < MOE_VW ? (int)(I - i0) : MOE_VW;
			float gb[16][MOE_VW] __attribute__((aligned(64))), ub[16][MOE_VW] __attribute__((aligned(64)));
			for (int r = 0; r < ni; r += EK_DEC_R / 2) {
				int64_t wr[EK_DEC_R];
				EK_UNROLL
				for (int j = 0; j < EK_DEC_R / 2; j++) /* past the end: the last row again */
					wr[2 * j] = wr[2 * j + 1] = i0 + (r + j < ni ? r + j : ni - 1);
				for (int64_t m0 = 0; m0 < mc;) {
					float out[EK_DEC_MR * EK_DEC_R];
					const int mr = ek_dot_some(fmt, afmt, mc - m0, wt, wr, X, mb + m0, out);
					for (int t = 0; t < mr; t++)
						for (int j = 0; j < EK_DEC_R / 2 && r + j < ni; j++) {
							gb[m0 + t][r + j] = out[t * EK_DEC_R + 2 * j];
							ub[m0 + t][r + j] = out[t * EK_DEC_R + 2 * j + 1];
						}
					m0 += mr;
				}
			}
			for (int64_t m = 0; m < mc; m++)
				ek_store_a(o, mb + m, i0, ek_silu_mul(vf_load(gb[m], MOE_DTYPE_F32, 0), vf_load(ub[m], MOE_DTYPE_F32, 0),
								      o->round_bf16), ni);
		}
	}
}

/* GEMM 2: y[m][h] = down_h . a_m, 6 rows at a time. */
EK_ALWAYS void ek_decode_gemm2(enum ek_fmt fmt, enum ek_afmt afmt, const struct ek_wt *down, const struct ek_act *A,
			       int64_t H, float *y, struct ek_part pt)
{
	const int64_t M = A->rows;
	int64_t qlo, qhi;
	ek_range((H + EK_DEC_R - 1) / EK_DEC_R, pt, &qlo, &qhi);
	const struct ek_wt *const wt[EK_DEC_R] = { down, down, down, down, down, down };
	for (int64_t mb = 0; mb < M; mb += 16) {
		const int64_t mc = M - mb < 16 ? M - mb : 16;
		for (int64_t h = qlo * EK_DEC_R; h < H && h < qhi * EK_DEC_R; h += EK_DEC_R) {
			const int nh = H - h < EK_DEC_R ? (int)(H - h) : EK_DEC_R;
			int64_t wr[EK_DEC_R];
			EK_UNROLL
			for (int j = 0; j < EK_DEC_R; j++)
				wr[j] = h + (j < nh ? j : nh - 1);
			for (int64_t m0 = 0; m0 < mc;) {
				float out[EK_DEC_MR * EK_DEC_R];
				const int mr = ek_dot_some(fmt, afmt, mc - m0, wt, wr, A, mb + m0, out);
				for (int t = 0; t < mr; t++)
					for (int j = 0; j < nh; j++)
						y[(mb + m0 + t) * H + h + j] = out[t * EK_DEC_R + j];
				m0 += mr;
			}
		}
	}
}

/* ---- prefill: broadcast form over packed panels ---- */

/* bp[kk][g * MOE_VW + j] = row (r_g + j) of *w_g at column k0 + kk (decoded order), for kk < kc,
 * j < n_g (0 beyond), g = 0, 1. */
EK_ALWAYS void ek_pack(enum ek_fmt fmt, const struct ek_wt *const w[2], const int64_t r[2], const int nr[2], int64_t k0,
		       int64_t kc, float *bp)
{
	cv_f32 pow_t[2] = { { 0 }, { 0 } };
	if (fmt == EK_FP8)
		ek_fp8_pow_table(pow_t);
	const int64_t chunk = ek_chunk_len(w[0]);
	for (int g = 0; g < 2; g++) {
		struct ek_rs st[MOE_VW];
		for (int64_t k = k0; k < k0 + kc; k += MOE_VW) {
			if ((k - k0) % chunk == 0)
				for (int j = 0; j < nr[g]; j++) {
					if (k == k0)
						ek_row(fmt, w[g], r[g] + j, &st[j]);
					ek_chunk(fmt, w[g], k, &st[j]);
				}
			const int n = k0 + kc - k < MOE_VW ? (int)(k0 + kc - k) : MOE_VW;
			moe_vf v[MOE_VW];
			EK_UNROLL
			for (int j = 0; j < MOE_VW; j++)
				v[j] = j < nr[g] ? ek_dec(fmt, w[g], &st[j], pow_t, k, n) : vf_zero();
			ek_transpose(v);
			for (int t = 0; t < n; t++)
				vf_store(bp, MOE_DTYPE_F32, (k - k0 + t) * 2 * MOE_VW + g * MOE_VW, v[t]);
		}
	}
}

/* acc[m][0..1] += A[m][kk] * bp[kk][0 .. 2 MOE_VW) over kk < kc, MR tokens. */
EK_ALWAYS void ek_mk(int MR, const float *A, int64_t lda, const float *bp, int64_t kc, moe_vf acc[][2])
{
	for (int64_t kk = 0; kk < kc; kk++) {
		const moe_vf b0 = vf_load(bp, MOE_DTYPE_F32, kk * 2 * MOE_VW);
		const moe_vf b1 = vf_load(bp, MOE_DTYPE_F32, kk * 2 * MOE_VW + MOE_VW);
		EK_UNROLL
		for (int m = 0; m < MR; m++) {
			const moe_vf xb = vf_set1(A[m * lda + kk]);
			acc[m][0] = vf_fmadd(xb, b0, acc[m][0]);
			acc[m][1] = vf_fmadd(xb, b1, acc[m][1]);
		}
	}
}

/* One token block of one panel of GEMM 1 over one KC block: partial sums wait in part (2 vectors
 * per token) between KC blocks; after the last one the epilogue writes a[m][i0 .. i0 + ni). */
EK_ALWAYS void ek_pre1_block(int MR, const float *A, int64_t lda, const float *bp, int64_t kc, bool first, bool last,
			     float *part, const struct ek_aout *o, int64_t m0, int64_t i0, int ni)
{
	moe_vf acc[EK_PRE_MR][2];
	EK_UNROLL
	for (int m = 0; m < MR; m++)
		EK_UNROLL
		for (int h = 0; h < 2; h++)
			acc[m][h] = first ? vf_zero() : vf_load(part, MOE_DTYPE_F32, (m * 2 + h) * MOE_VW);
	ek_mk(MR, A, lda, bp, kc, acc);
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		if (last) {
			ek_store_a(o, m0 + m, i0, ek_silu_mul(acc[m][0], acc[m][1], o->round_bf16), ni);
		} else {
			vf_store(part, MOE_DTYPE_F32, (m * 2) * MOE_VW, acc[m][0]);
			vf_store(part, MOE_DTYPE_F32, (m * 2 + 1) * MOE_VW, acc[m][1]);
		}
	}
}

/* One token block of one panel of GEMM 2 over one KC block, accumulating in y[m][h0 .. h0 + nh). */
EK_ALWAYS void ek_pre2_block(int MR, const float *A, int64_t lda, const float *bp, int64_t kc, bool first, float *y,
			     int64_t ldy, int64_t h0, int nh)
{
	moe_vf acc[EK_PRE_MR][2];
	const int n0 = nh < MOE_VW ? nh : MOE_VW, n1 = nh - n0;
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		acc[m][0] = first ? vf_zero() : vf_load_tail(y + m * ldy, MOE_DTYPE_F32, h0, n0, 0.0f);
		acc[m][1] = first || n1 == 0 ? vf_zero() : vf_load_tail(y + m * ldy, MOE_DTYPE_F32, h0 + MOE_VW, n1, 0.0f);
	}
	ek_mk(MR, A, lda, bp, kc, acc);
	EK_UNROLL
	for (int m = 0; m < MR; m++) {
		vf_store_tail(y + m * ldy, MOE_DTYPE_F32, h0, acc[m][0], n0);
		if (n1)
			vf_store_tail(y + m * ldy, MOE_DTYPE_F32, h0 + MOE_VW, acc[m][1], n1);
	}
}

/* GEMM 1 with its epilogue, prefill blocking. A: f32 [M][H] (lda = H). part: M * 2 * MOE_VW floats
 * for each part (pt.index selects its own), used only when H > EK_KC. */
EK_ALWAYS void ek_prefill_gemm1(enum ek_fmt fmt, const struct ek_wt *gate, const struct ek_wt *up, const float *A,
				int64_t M, int64_t H, int64_t I, float *part, const struct ek_aout *o, struct ek_part pt)
{
	float bp[EK_KC * 2 * MOE_VW] __attribute__((aligned(64)));
	const struct ek_wt *const w[2] = { gate, up };
	int64_t qlo, qhi;
	ek_range((I + MOE_VW - 1) / MOE_VW, pt, &qlo, &qhi);
	part += (size_t)pt.index * (size_t)M * 2 * MOE_VW;
	for (int64_t i0 = qlo * MOE_VW; i0 < I && i0 < qhi * MOE_VW; i0 += MOE_VW) {
		const int ni = I - i0 < MOE_VW ? (int)(I - i0) : MOE_VW;
		const int64_t r[2] = { i0, i0 };
		const int nr[2] = { ni, ni };
		for (int64_t k0 = 0; k0 < H; k0 += EK_KC) {
			const int64_t kc = H - k0 < EK_KC ? H - k0 : EK_KC;
			const bool first = k0 == 0, last = k0 + kc == H;
			ek_pack(fmt, w, r, nr, k0, kc, bp);
			int64_t m0 = 0;
			for (; m0 + EK_PRE_MR <= M; m0 += EK_PRE_MR)
				ek_pre1_block(EK_PRE_MR, A + m0 * H + k0, H, bp, kc, first, last, part + m0 * 2 * MOE_VW, o, m0,
					      i0, ni);
			for (int mr = EK_PRE_MR / 2; mr >= 1; mr /= 2) {
				if (M - m0 < mr)
					continue;
				ek_pre1_block(mr, A + m0 * H + k0, H, bp, kc, first, last, part + m0 * 2 * MOE_VW, o, m0, i0, ni);
				m0 += mr;
			}
			for (; m0 < M; m0++)
				ek_pre1_block(1, A + m0 * H + k0, H, bp, kc, first, last, part + m0 * 2 * MOE_VW, o, m0, i0, ni);
		}
	}
}

/* GEMM 2, prefill blocking: y[M][H] = A[M][I] (f32, lda = I) times down^T. */
EK_ALWAYS void ek_prefill_gemm2(enum ek_fmt fmt, const struct ek_wt *down, const float *A, int64_t M, int64_t H,
				int64_t I, float *y, struct ek_part pt)
{
	float bp[EK_KC * 2 * MOE_VW] __attribute__((aligned(64)));
	const struct ek_wt *const w[2] = { down, down };
	int64_t qlo, qhi;
	ek_range((H + 2 * MOE_VW - 1) / (2 * MOE_VW), pt, &qlo, &qhi);
	for (int64_t h0 = qlo * 2 * MOE_VW; h0 < H && h0 < qhi * 2 * MOE_VW; h0 += 2 * MOE_VW) {
		const int nh = H - h0 < 2 * MOE_VW ? (int)(H - h0) : 2 * MOE_VW;
		const int n0 = nh < MOE_VW ? nh : MOE_VW;
		const int64_t r[2] = { h0, h0 + MOE_VW };
		const int nr[2] = { n0, nh - n0 };
		for (int64_t k0 = 0; k0 < I; k0 += EK_KC) {
			const int64_t kc = I - k0 < EK_KC ? I - k0 : EK_KC;
			const bool first = k0 == 0;
			ek_pack(fmt, w, r, nr, k0, kc, bp);
			int64_t m0 = 0;
			for (; m0 + EK_PRE_MR <= M; m0 += EK_PRE_MR)
				ek_pre2_block(EK_PRE_MR, A + m0 * I + k0, I, bp, kc, first, y + m0 * H, H, h0, nh);
			for (int mr = EK_PRE_MR / 2; mr >= 1; mr /= 2) {
				if (M - m0 < mr)
					continue;
				ek_pre2_block(mr, A + m0 * I + k0, I, bp, kc, first, y + m0 * H, H, h0, nh);
				m0 += mr;
			}
			for (; m0 < M; m0++)
				ek_pre2_block(1, A + m0 * I + k0, I, bp, kc, first, y + m0 * H, H, h0, nh);
		}
	}
}

#ifdef __AVX512BF16__
#include "expert/expert_bf16_prefill.h"
#endif

/* ---- the whole expert ---- */

/* One expert call, in phases a layer kernel can share among threads: prepare (x -> xq, one
 * thread), gemm1 (any partition), mid (the intermediate's codec, one thread), gemm2 (any
 * partition), with a barrier after each. */
struct ek_run {
	const struct moe_expert_params *p;
	const float *x;
	float *y;
	const struct ek_codecs *cd;
	struct ek_ws ws;
	struct ek_wt gate, up, down;
	struct ek_act X;
	struct ek_aout o;
	bool prefill, coded;
};

static inline struct ek_run ek_run_init(const struct moe_expert_params *p, const float *x,
					const struct moe_expert_weights *w, float *y, void *workspace, const struct ek_codecs *cd)
{
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	struct ek_run r = { .p = p, .x = x, .y = y, .cd = cd, .ws = ek_ws(p, workspace), .gate = ek_wt(&w->gate),
			    .up = ek_wt(&w->up), .down = ek_wt(&w->down), .prefill = M > 16,
			    .coded = ek_act_coded(p->act_quant) };
	/* decode reads the activations interleaved, except those the codec writes row-major */
	const bool inter = !r.prefill && !r.coded;
	r.X = (struct ek_act){ .base = r.ws.xq, .afmt = EK_A_F32, .inter = inter, .ld = H, .rows = M, .cols = H };
	r.o = (struct ek_aout){ .a = { .base = r.ws.a, .afmt = EK_A_F32, .inter = inter, .ld = I, .rows = M, .cols = I },
				.permute = r.gate.fmt == EK_FP4, .round_bf16 = p->act_quant == MOE_ACT_BF16 };
	return r;
}

static inline void ek_run_prepare(const struct ek_run *r)
{
	ek_prepare_x(r->p, r->x, &r->ws, r->o.permute, &r->X, r->cd);
}

EK_ALWAYS void ek_run_gemm1(enum ek_fmt fmt, const struct ek_run *r, struct ek_part pt)
{
	if (r->prefill)
		ek_prefill_gemm1(fmt, &r->gate, &r->up, r->ws.xq, r->p->tokens, r->p->hidden, r->p->inter, r->y, &r->o, pt);
	else
		ek_decode_gemm1(fmt, EK_A_F32, &r->gate, &r->up, &r->X, r->p->inter, &r->o, pt);
}

static inline void ek_run_mid(const struct ek_run *r)
{
	if (r->coded)
		ek_act_codec(r->cd, r->p->act_quant, r->p->act_global_scale[1], r->p->tokens, r->p->inter, r->ws.a, r->ws.a,
			     &r->ws);
}

EK_ALWAYS void ek_run_gemm2(enum ek_fmt fmt, const struct ek_run *r, struct ek_part pt)
{
	if (r->prefill)
		ek_prefill_gemm2(fmt, &r->down, r->ws.a, r->p->tokens, r->p->hidden, r->p->inter, r->y, pt);
	else
		ek_decode_gemm2(fmt, EK_A_F32, &r->down, &r->o.a, r->p->hidden, r->y, pt);
}

/* The GEMMs for the run's weight format (a constant in each case, so each format gets its loops). */
static inline void ek_run_gemm(const struct ek_run *r, bool second, struct ek_part pt)
{
	switch (r->gate.fmt) {
	case EK_F32:
		second ? ek_run_gemm2(EK_F32, r, pt) : ek_run_gemm1(EK_F32, r, pt);
		break;
	case EK_BF16:
		second ? ek_run_gemm2(EK_BF16, r, pt) : ek_run_gemm1(EK_BF16, r, pt);
		break;
	case EK_FP8:
		second ? ek_run_gemm2(EK_FP8, r, pt) : ek_run_gemm1(EK_FP8, r, pt);
		break;
	default:
		second ? ek_run_gemm2(EK_FP4, r, pt) : ek_run_gemm1(EK_FP4, r, pt);
		break;
	}
}

/* The whole expert on one thread, decode or prefill blocking as asked. */
static inline void ek_expert_fmt(bool prefill, const struct moe_expert_params *p, const float *x,
				 const struct moe_expert_weights *w, float *y, void *workspace, const struct ek_codecs *cd)
{
	struct ek_run r = ek_run_init(p, x, w, y, workspace, cd);
	if (r.prefill != prefill) {
		r.prefill = prefill;
		r.X.inter = r.o.a.inter = !prefill && !r.coded;
	}
	ek_run_prepare(&r);
	ek_run_gemm(&r, false, ek_whole);
	ek_run_mid(&r);
	ek_run_gemm(&r, true, ek_whole);
}

static inline void ek_expert(bool prefill, const struct moe_expert_params *p, const float *x,
			     const struct moe_expert_weights *w, float *y, void *workspace, const struct ek_codecs *cd)
{
	assert(moe_expert_validate(p, w) == MOE_OK);
	assert(p->tokens == 0 || (x && y && workspace && ((uintptr_t)workspace & 63) == 0));
	if (p->tokens > 0)
		ek_expert_fmt(prefill, p, x, w, y, workspace, cd);
}

/* The formats every variant of this file takes: all of moe_expert_validate's. */
static inline bool ek_supports(enum moe_op op, const void *problem, int64_t max_tokens)
{
	const struct moe_expert_params *p = problem;
	return op == MOE_OP_EXPERT && (!p || p->tokens <= max_tokens);
}
