/* Roofline calibration kernel for the bf16 dot-product peak, AVX512_BF16 (built with -mavx512f
 * -mavx512bf16 for this file only). 12 independent chains of vdpbf16ps; each instruction multiplies
 * 32 bf16 pairs and adds them pairwise into 16 fp32 lanes: 32 multiplies + 32 adds = 64 flops.
 * Inputs of 1e-3 keep the accumulators small and finite for any realistic run length. */
#include <immintrin.h>

#include "bench.h"

static volatile float dot_sink;

double moe_calib_dot_bf16__avx512bf16(int64_t reps)
{
	const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
	const __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(3e-3f), _mm512_set1_ps(1e-3f));
	__m512 a[12];
	for (int i = 0; i < 12; i++)
		a[i] = _mm512_setzero_ps();
	for (int64_t r = 0; r < reps; r++) {
		a[0] = _mm512_dpbf16_ps(a[0], x, y);
		a[1] = _mm512_dpbf16_ps(a[1], x, y);
		a[2] = _mm512_dpbf16_ps(a[2], x, y);
		a[3] = _mm512_dpbf16_ps(a[3], x, y);
		a[4] = _mm512_dpbf16_ps(a[4], x, y);
		a[5] = _mm512_dpbf16_ps(a[5], x, y);
		a[6] = _mm512_dpbf16_ps(a[6], x, y);
		a[7] = _mm512_dpbf16_ps(a[7], x, y);
		a[8] = _mm512_dpbf16_ps(a[8], x, y);
		a[9] = _mm512_dpbf16_ps(a[9], x, y);
		a[10] = _mm512_dpbf16_ps(a[10], x, y);
		a[11] = _mm512_dpbf16_ps(a[11], x, y);
	}
	__m512 s = a[0];
	for (int i = 1; i < 12; i++)
		s = _mm512_add_ps(s, a[i]);
	dot_sink = _mm512_reduce_add_ps(s);
	return (double)reps * 12 * 64;
}
