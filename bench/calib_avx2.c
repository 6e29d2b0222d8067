/* Roofline calibration kernels, AVX2 + FMA (built with -mavx2 -mfma for this file only), for
 * machines without AVX-512. Same structure as calib_avx512.c on 8-lane vectors: 12 FMA chains
 * (2 flops per lane per FMA), and 8 accumulators of 32-byte loads for the read bandwidth. */
#include <immintrin.h>

#include "bench.h"

static volatile float fma_sink;

static float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

double moe_calib_fma_f32__avx2(int64_t reps)
{
	const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
	__m256 a[12];
	for (int i = 0; i < 12; i++)
		a[i] = _mm256_set1_ps(0.1f + 0.001f * (float)i);
	for (int64_t r = 0; r < reps; r++) {
		a[0] = _mm256_fmadd_ps(a[0], x, y);
		a[1] = _mm256_fmadd_ps(a[1], x, y);
		a[2] = _mm256_fmadd_ps(a[2], x, y);
		a[3] = _mm256_fmadd_ps(a[3], x, y);
		a[4] = _mm256_fmadd_ps(a[4], x, y);
		a[5] = _mm256_fmadd_ps(a[5], x, y);
		a[6] = _mm256_fmadd_ps(a[6], x, y);
		a[7] = _mm256_fmadd_ps(a[7], x, y);
		a[8] = _mm256_fmadd_ps(a[8], x, y);
		a[9] = _mm256_fmadd_ps(a[9], x, y);
		a[10] = _mm256_fmadd_ps(a[10], x, y);
		a[11] = _mm256_fmadd_ps(a[11], x, y);
	}
	__m256 s = a[0];
	for (int i = 1; i < 12; i++)
		s = _mm256_add_ps(s, a[i]);
	fma_sink = hsum(s);
	return (double)reps * 12 * 8 * 2;
}

double moe_calib_read__avx2(const float *buf, size_t n, int64_t reps, float *sink)
{
	__m256 acc[8];
	for (int i = 0; i < 8; i++)
		acc[i] = _mm256_setzero_ps();
	for (int64_t r = 0; r < reps; r++) {
		for (size_t i = 0; i < n; i += 64) {
			acc[0] = _mm256_add_ps(acc[0], _mm256_load_ps(buf + i));
			acc[1] = _mm256_add_ps(acc[1], _mm256_load_ps(buf + i + 8));
			acc[2] = _mm256_add_ps(acc[2], _mm256_load_ps(buf + i + 16));
			acc[3] = _mm256_add_ps(acc[3], _mm256_load_ps(buf + i + 24));
			acc[4] = _mm256_add_ps(acc[4], _mm256_load_ps(buf + i + 32));
			acc[5] = _mm256_add_ps(acc[5], _mm256_load_ps(buf + i + 40));
			acc[6] = _mm256_add_ps(acc[6], _mm256_load_ps(buf + i + 48));
			acc[7] = _mm256_add_ps(acc[7], _mm256_load_ps(buf + i + 56));
		}
	}
	__m256 s = acc[0];
	for (int i = 1; i < 8; i++)
		s = _mm256_add_ps(s, acc[i]);
	*sink = hsum(s);
	return (double)reps * (double)n * sizeof(float);
}
