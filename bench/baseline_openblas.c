/* The OpenBLAS baseline: an unfused f32 expert, the way a framework without a fused MoE kernel runs
 * it. g = x gate^T and u = x up^T (sgemm, or sgemv for one token), a = silu(g) * u in a plain loop
 * (silu(g) = g / (1 + exp(-g)), fp32), y = a down^T (sgemm/sgemv). g and u live in the workspace
 * (M*I floats each). OpenBLAS runs single-threaded: the bench runs one pinned instance per thread
 * and OpenBLAS's own threads would oversubscribe the cores. Only f32 weights with f32 activations
 * are supported: the same problem the reference computes for that format. */
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

static bool openblas_supports(enum moe_op op, const void *problem)
{
	const struct moe_expert_params *p = problem;
	return op == MOE_OP_EXPERT && p->weight_dtype == MOE_DTYPE_F32 && p->weight_scaling == MOE_SCALING_NONE &&
	       p->act_quant == MOE_ACT_NONE;
}

static const struct moe_backend openblas_backend = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = "openblas",
	.description = "baseline: unfused f32 expert on OpenBLAS sgemm/sgemv (single-threaded)",
	.expert = moe_expert_f32__openblas,
	.supports = openblas_supports,
};

const struct moe_backend *moe_bench_baseline_openblas(void)
{
	openblas_set_num_threads(1);
	return &openblas_backend;
}
