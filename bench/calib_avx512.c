/* Roofline calibration kernels, AVX-512 (built with -mavx512f -mavx512vl -mfma for this file only).
 *
 * FMA peak: 12 independent chains of vfmadd231ps on 16 fp32 lanes, enough to cover a 4-cycle FMA
 * latency on two FMA pipes; a = a * 0.999999 + 1e-7 stays near 0.1, never denormal, and the sum of
 * the chains is returned through *sink so the compiler keeps the work. One FMA counts 2 flops.
 * Read bandwidth: passes over buf[n] (n a multiple of 128) adding 64-byte loads into 8 vector
 * accumulators; only the loads touch memory. */
#include <immintrin.h>

#include "bench.h"

static volatile float fma_sink;

double moe_calib_fma_f32__avx512(int64_t reps)
{
	const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
	__m512 a[12];
	for (int i = 0; i < 12; i++)
		a[i] = _mm512_set1_ps(0.1f + 0.001f * (float)i);
	for (int64_t r = 0; r < reps; r++) {
		a[0] = _mm512_fmadd_ps(a[0], x, y);
		a[1] = _mm512_fmadd_ps(a[1], x, y);
		a[2] = _mm512_fmadd_ps(a[2], x, y);
		a[3] = _mm512_fmadd_ps(a[3], x, y);
		a[4] = _mm512_fmadd_ps(a[4], x, y);
		a[5] = _mm512_fmadd_ps(a[5], x, y);
		a[6] = _mm512_fmadd_ps(a[6], x, y);
		a[7] = _mm512_fmadd_ps(a[7], x, y);
		a[8] = _mm512_fmadd_ps(a[8], x, y);
		a[9] = _mm512_fmadd_ps(a[9], x, y);
		a[10] = _mm512_fmadd_ps(a[10], x, y);
		a[11] = _mm512_fmadd_ps(a[11], x, y);
	}
	__m512 s = a[0];
	for (int i = 1; i < 12; i++)
		s = _mm512_add_ps(s, a[i]);
	fma_sink = _mm512_reduce_add_ps(s);
	return (double)reps * 12 * 16 * 2;
}

double moe_calib_read__avx512(const float *buf, size_t n, int64_t reps, float *sink)
{
	__m512 acc[8];
	for (int i = 0; i < 8; i++)
		acc[i] = _mm512_setzero_ps();
	for (int64_t r = 0; r < reps; r++) {
		for (size_t i = 0; i < n; i += 128) {
			acc[0] = _mm512_add_ps(acc[0], _mm512_load_ps(buf + i));
			acc[1] = _mm512_add_ps(acc[1], _mm512_load_ps(buf + i + 16));
			acc[2] = _mm512_add_ps(acc[2], _mm512_load_ps(buf + i + 32));
			acc[3] = _mm512_add_ps(acc[3], _mm512_load_ps(buf + i + 48));
			acc[4] = _mm512_add_ps(acc[4], _mm512_load_ps(buf + i + 64));
			acc[5] = _mm512_add_ps(acc[5], _mm512_load_ps(buf + i + 80));
			acc[6] = _mm512_add_ps(acc[6], _mm512_load_ps(buf + i + 96));
			acc[7] = _mm512_add_ps(acc[7], _mm512_load_ps(buf + i + 112));
		}
	}
	__m512 s = acc[0];
	for (int i = 1; i < 8; i++)
		s = _mm512_add_ps(s, acc[i]);
	*sink = _mm512_reduce_add_ps(s);
	return (double)reps * (double)n * sizeof(float);
}
