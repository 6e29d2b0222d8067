/* Packed expert weights of the built-in tables (struct moe_packed, ABI 2): what moe_pack__<isa>
 * lays out once so that the layer and expert_mt never read the plain weights again.
 *
 * Numerical contract: packing moves bits, never rounds: a packed expert computes exactly what the
 * same kernel computes on the plain weights (the layer test checks packed against plain bitwise).
 *   - bf16 weights with act_quant BF16 on an AVX512_BF16 table (the W16A16 panel path of
 *     layer_impl.h): the bf16 pair panels the prefill kernel builds per call
 *     (expert_bf16_prefill.h, ek_bf16_pack), for every panel and depth block: GEMM 1 panels of 16
 *     gate + 16 up rows, GEMM 2 panels of 32 down rows, each [pairs][32] 32-bit words (pair p of
 *     row j in lane j, zero past the rows and past K), panel after panel, the depth blocks of one
 *     panel contiguous, so a task over a range of panels reads one linear stream. With them one
 *     byte per (panel, depth block): whether that block held a subnormal weight (the panel path
 *     then runs its fp32 arithmetic there, as the plain path decides from the same words); and,
 *     for the experts that get at most 16 tokens (the decode kernel, which streams rows), a copy
 *     of the plain tensors as below: twice the weights' bytes in all.
 *   - every other format: a deep copy of the three tensors (data and scales), which the expert
 *     kernels read as before. (Their per-call scans, scale range checks and tables are still
 *     made per call: not precomputed yet.)
 * The handle owns all its memory; release frees it. */
#ifndef MOE_KERNELS_LAYER_PACK_H
#define MOE_KERNELS_LAYER_PACK_H

#include <stdlib.h>
#include <string.h>

#include "moe/backend.h"

/* One packed expert. */
struct lp_exp {
	struct moe_expert_weights w; /* copy of the plain tensors */
	const uint32_t *p1, *p2;     /* panel path: GEMM 1 and GEMM 2 panels */
	const uint8_t *f1, *f2;      /* panel path: subnormal flag per (panel, depth block) */
};

struct lp_impl {
	bool panels;
	int64_t hidden, inter;
	struct lp_exp *exp; /* [count] */
	void *mem;          /* the panels and flags (panel path) */
};

/* bf16 pairs per depth block (EK_BF16_KP of expert_bf16_prefill.h) */
#define LP_KP 128

static inline int64_t lp_pairs(int64_t K)
{
	return (K + 1) / 2;
}

static inline int64_t lp_kblocks(int64_t K)
{
	return (lp_pairs(K) + LP_KP - 1) / LP_KP;
}

/* Panels of GEMM 1 (16 intermediate rows each) and GEMM 2 (32 hidden rows each). */
static inline int64_t lp_panels1(int64_t I)
{
	return (I + 15) / 16;
}

static inline int64_t lp_panels2(int64_t H)
{
	return (H + 31) / 32;
}

/* 32-bit words of one panel over depth K. */
static inline size_t lp_panel_words(int64_t K)
{
	return (size_t)lp_pairs(K) * 32;
}

static inline const struct lp_impl *lp_of(const struct moe_packed *pk)
{
	return pk->impl;
}

static inline void lp_free_copy(struct moe_expert_weights *w)
{
	moe_qtensor_free(&w->gate);
	moe_qtensor_free(&w->up);
	moe_qtensor_free(&w->down);
}

static inline void lp_release(struct moe_packed *pk)
{
	if (!pk)
		return;
	struct lp_impl *im = pk->impl;
	if (im) {
		if (im->exp)
			for (int32_t e = 0; e < pk->count; e++)
				lp_free_copy(&im->exp[e].w);
		free(im->mem);
		free(im->exp);
		free(im);
	}
	free(pk);
}

/* dst = a deep copy of src (same format and shape). */
static inline enum moe_status lp_copy_tensor(const struct moe_qtensor *src, struct moe_qtensor *dst)
{
	*dst = *src;
	dst->data = dst->scales = NULL;
	enum moe_status s = moe_qtensor_alloc(dst);
	if (s != MOE_OK)
		return s;
	memcpy(dst->data, src->data, moe_qtensor_data_bytes(src));
	const size_t sb = moe_qtensor_scale_bytes(src);
	if (sb && src->scales)
		memcpy(dst->scales, src->scales, sb);
	return MOE_OK;
}

#endif
