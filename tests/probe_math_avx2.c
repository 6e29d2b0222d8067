/* Test probe: the AVX2 kernels' elementwise math (kernels/simd/simd_avx2.h, the sigmoid forms of
 * kernels/routing/routing_impl.h) over arrays, so tests/test_kernels_routing.c can measure its
 * error against libm. Built with the AVX2 flags; called only where the CPU has AVX2. */
#include "simd/simd_avx2.h"
#include "routing/routing_impl.h"
#include "probe_math.h"

void probe_exp__avx2(const float *x, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i += MOE_VW) {
		const int m = n - i < MOE_VW ? (int)(n - i) : MOE_VW;
		vf_store_tail(y, MOE_DTYPE_F32, i, vf_exp(vf_load_tail(x, MOE_DTYPE_F32, i, m, 0.0f)), m);
	}
}

void probe_sigmoid__avx2(enum moe_profile profile, const float *x, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i += MOE_VW) {
		const int m = n - i < MOE_VW ? (int)(n - i) : MOE_VW;
		vf_store_tail(y, MOE_DTYPE_F32, i, vf_sigmoid(vf_load_tail(x, MOE_DTYPE_F32, i, m, 0.0f), profile), m);
	}
}
