/* The entry points of one ISA's layer file (layer_<isa>.c), written once: the version-1 layer
 * and its supports, layer_mt, expert_mt, pack / release and the workspace query, each a thin call
 * into layer/layer_impl.h and layer/layer_pack.h compiled for that ISA. Included once per layer
 * file after layer_impl.h, with LK_ISA (the enum moe_isa) and LK_SUFFIX (the name's ISA part,
 * e.g. avx512) defined; the names come out as moe_<op>__<suffix>[_supports], the ones the list
 * file and kernels.h declare. */
#define LK_CAT3(a, b, c) a##b##c
#define LK_CAT3X(a, b, c) LK_CAT3(a, b, c)
#define LK_NAME(stem, tail) LK_CAT3X(stem, LK_SUFFIX, tail)

void LK_NAME(moe_layer__, )(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		    const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	lk_layer(LK_ISA, p, x, logits, bias, w, y, ids, weights, workspace);
}

bool LK_NAME(moe_layer__, _supports)(enum moe_op op, const void *problem)
{
	(void)problem;
	return op == MOE_OP_LAYER;
}

void LK_NAME(moe_layer_mt__, )(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		       const struct moe_layer_weights *w, const struct moe_packed *packed,
		       const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights, void *workspace,
		       const struct moe_threads *th)
{
	lk_layer_mt(LK_ISA, p, x, logits, bias, w, packed, packed_shared, y, ids, weights, workspace, th);
}

void LK_NAME(moe_expert_mt__, )(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			const struct moe_packed *packed, int32_t index, float *y, void *workspace,
			const struct moe_threads *th)
{
	lk_expert_mt(LK_ISA, p, x, w, packed, index, y, workspace, th);
}

enum moe_status LK_NAME(moe_pack__, )(const struct moe_backend *owner, const struct moe_expert_params *p, int32_t count,
			      const struct moe_expert_weights *w, const struct moe_threads *th, struct moe_packed **out)
{
	return lk_pack(owner, p, count, w, th, out);
}

void LK_NAME(moe_release__, )(struct moe_packed *packed)
{
	lp_release(packed);
}

size_t LK_NAME(moe_workspace__, )(enum moe_op op, const void *problem, int threads)
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
