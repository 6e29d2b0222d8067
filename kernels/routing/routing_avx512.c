/* moe_route__avx512: the router of routing_impl.h (AVX-512 F/BW/DQ/VL, 16 lanes). All ten methods, f32/bf16 logits and
 * bias, profiles flashinfer, vllm and hf, E <= MOE_ROUTE_KERNEL_MAX_E; routing_impl.h states the
 * algorithm, the precision and where rows fall back to the reference. */
#include "simd/simd_avx512.h"
#include "routing/routing_impl.h"
#include "kernels.h"

void moe_route__avx512(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		   int32_t *ids, float *weights)
{
	route_rows(p, T, logits, bias, ids, weights);
}

bool moe_route__avx512_supports(enum moe_op op, const void *problem)
{
	return route_kernel_supports(op, problem);
}
