/* The OpenBLAS baseline: an unfused f32 expert, the way a framework without a fused MoE kernel runs
 * it (the layer, on weights its pack dequantizes to f32 once, is in baseline_openblas_layer.c).
 * g = x gate^T and u = x up^T (sgemm, or sgemv for one token), a = silu(g) * u in a plain loop
 * (silu(g) = g / (1 + exp(-g)), fp32), y = a down^T (sgemm/sgemv). g and u live in the workspace
 * (M*I floats each). Threads: the version-1 slot runs OpenBLAS on one thread (copies mode runs one
 * pinned instance per core, and OpenBLAS's own threads would oversubscribe them); the _mt slot sets
 * OpenBLAS's thread count to the host's for the call. Only f32 weights with f32 activations are
 * supported: the same problem the reference computes for that format. */
#include <assert.h>
#include <cblas.h>
#include <math.h>

#include "bench.h"

size_t moe_bench_openblas_workspace_bytes(const struct moe_expert_params *p)
{
	return 2 * (size_t)p->tokens * (size_t)p->inter * sizeof(float);
}

static void project(int64_t M, int64_t N, int64_t K, const float *a, const float *w, float *out)
{
	if (M == 1)
		cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)N, (blasint)K, 1.0f, w, (blasint)K, a, 1, 0.0f,
			    out, 1);
	else
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)N, (blasint)K, 1.0f, a,
			    (blasint)K, w, (blasint)K, 0.0f, out, (blasint)N);
}

static void moe_expert_f32__openblas(const struct moe_expert_params *p, const float *x,
				     const struct moe_expert_weights *w, float *y, void *workspace)
{
	assert(p->weight_dtype == MOE_DTYPE_F32 && p->act_quant == MOE_ACT_NONE);
	/* cblas.h pulls in complex.h, whose macro I rules out the usual name of the width. */
	const int64_t M = p->tokens, H = p->hidden, inter = p->inter;
	if (M == 0)
		return;
	float *g = workspace, *u = g + M * inter;
	project(M, inter, H, x, w->gate.data, g);
	project(M, inter, H, x, w->up.data, u);
	for (int64_t i = 0; i < M * inter; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
	project(M, H, inter, g, w->down.data, y);
}

/* The threaded slot: OpenBLAS's own threads, as many as the host gives (plain f32 weights). */
static void moe_expert_f32__openblas_mt(const struct moe_expert_params *p, const float *x,
					const struct moe_expert_weights *w, const struct moe_packed *packed, int32_t index,
					float *y, void *workspace, const struct moe_threads *th)
{
	openblas_set_num_threads(th && th->count > 0 ? th->count : 1);
	struct moe_expert_weights fw = *w;
	if (packed) /* its pack's f32 copy (the same values for f32 weights) */
		moe_bench_openblas_packed_weights(packed, index, &fw);
	moe_expert_f32__openblas(p, x, &fw, y, workspace);
}

/* The version-1 layer slot: plain weights on the calling thread (each expert dequantized per call). */
static void moe_layer__openblas(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
				const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	moe_bench_openblas_layer(p, x, logits, bias, w, NULL, NULL, y, ids, weights, workspace, moe_threads_serial());
}

static bool openblas_supports(enum moe_op op, const void *problem)
{
	if (op == MOE_OP_LAYER)
		return true; /* every format: the pack dequantizes to f32 */
	const struct moe_expert_params *p = problem;
	return op == MOE_OP_EXPERT && p->weight_dtype == MOE_DTYPE_F32 && p->weight_scaling == MOE_SCALING_NONE &&
	       p->act_quant == MOE_ACT_NONE;
}

static const struct moe_backend openblas_backend = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = "openblas",
	.description = "baseline: unfused f32 expert and per-expert sgemm layer on OpenBLAS",
	.expert = moe_expert_f32__openblas,
	.layer = moe_layer__openblas,
	.supports = openblas_supports,
	.pack = moe_bench_openblas_pack,
	.release = moe_bench_openblas_release,
	.expert_mt = moe_expert_f32__openblas_mt,
	.layer_mt = moe_bench_openblas_layer,
	.workspace = moe_bench_openblas_workspace,
};

const struct moe_backend *moe_bench_baseline_openblas(void)
{
	openblas_set_num_threads(1);
	return &openblas_backend;
}
