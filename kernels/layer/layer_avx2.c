/* moe_layer__avx2 and the ABI-2 entry points of the avx2 table, for AVX2 + FMA + F16C (8 lanes):
 * the MoE layer on the host's threads (layer_mt; the version-1 layer on the calling thread), every
 * weight format and act_quant, bitwise identical results for any thread count and for packed or
 * plain weights; pack / release, expert_mt and the workspace query. The algorithm, the contract
 * and why the thread count does not matter: layer/layer_impl.h; the packed layout:
 * layer/layer_pack.h; the experts: the expert kernels moe_builtin_pick chooses for this ISA. */
#include "simd/simd_avx2.h"
#include "expert/expert_simd_avx2.h"

#define EK_DEC_MR 2
#define EK_PRE_MR 6

#include "expert/expert_impl.h"
#include "layer/layer_impl.h"
#include "kernels.h"

void moe_layer__avx2(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		    const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	lk_layer(MOE_ISA_AVX2, p, x, logits, bias, w, y, ids, weights, workspace);
}

bool moe_layer__avx2_supports(enum moe_op op, const void *problem)
{
	(void)problem;
	return op == MOE_OP_LAYER;
}

void moe_layer_mt__avx2(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		       const struct moe_layer_weights *w, const struct moe_packed *packed,
		       const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights, void *workspace,
		       const struct moe_threads *th)
{
	lk_layer_mt(MOE_ISA_AVX2, p, x, logits, bias, w, packed, packed_shared, y, ids, weights, workspace, th);
}

void moe_expert_mt__avx2(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			const struct moe_packed *packed, int32_t index, float *y, void *workspace,
			const struct moe_threads *th)
{
	lk_expert_mt(MOE_ISA_AVX2, p, x, w, packed, index, y, workspace, th);
}

enum moe_status moe_pack__avx2(const struct moe_backend *owner, const struct moe_expert_params *p, int32_t count,
			      const struct moe_expert_weights *w, const struct moe_threads *th, struct moe_packed **out)
{
	return lk_pack(owner, p, count, w, th, out);
}

void moe_release__avx2(struct moe_packed *packed)
{
	lp_release(packed);
}

size_t moe_workspace__avx2(enum moe_op op, const void *problem, int threads)
{
	switch (op) {
	case MOE_OP_LAYER: {
		const struct moe_layer_params *p = problem;
		const struct lk_mt_layout l = lk_mt_layout(p, threads);
		const size_t ref = moe_layer_workspace_bytes(p);
		return l.total > ref ? l.total : ref;
	}
	case MOE_OP_EXPERT: return lk_expert_mt_bytes(problem, threads);
	default: return 0;
	}
}
