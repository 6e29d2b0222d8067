/* moe_route__avx2: the router of routing_impl.h (AVX2 + FMA, 8 lanes). All ten methods, f32/bf16 logits and
 * bias, profiles flashinfer, vllm and hf, E <= MOE_ROUTE_KERNEL_MAX_E; routing_impl.h states the
 * algorithm, the precision and where rows fall back to the reference. */
#include "simd/simd_avx2.h"
#include "routing/routing_impl.h"
#include "kernels.h"

void moe_route__avx2(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		   int32_t *ids, float *weights)
{
	route_rows(p, T, logits, bias, ids, weights);
}

bool moe_route__avx2_supports(enum moe_op op, const void *problem)
{
	return route_kernel_supports(op, problem);
}
