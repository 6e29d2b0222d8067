/* AVX-512 dense linear: y[t][n] = sum_k x[t][k] * W[n][k], W [N][K] of F32 or BF16.
 *
 * BF16 weights are widened exactly to fp32 in registers (a 16-bit shift), so the products equal the
 * reference's; only the order of the fp32 sum differs: every output keeps 16 lane sums over k
 * (lane j takes k = j, j+16, ... with explicit FMAs, the masked tail adding zeros), reduced by one
 * fixed shuffle tree. The same per-output sequence holds for every tile shape (6 rows x 4 tokens
 * for prefill, 8 rows x 1 token for decode) and every task split, so the bits depend neither on
 * T nor on the thread count. Decode streams each weight row once from memory: 2 bytes per weight
 * for BF16, the bound the roofline counts, with the next tile's rows prefetched into L2. Compiled
 * for AVX-512 (file name) and called only when moe_linear_avx512_available() (forward.c) says the
 * CPU and OS have it. */
#include <assert.h>
#include <immintrin.h>

#include "forward_impl.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define LIN_ROWS 48

/* Weight vector of row n at column k: bf16 widened by a 16-bit shift, or fp32. */
#define WLOAD(BF, w, n, k, m)                                                                           \
	((BF) ? _mm512_castsi512_ps(_mm512_slli_epi32(                                                  \
			_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((m), (const moe_bf16 *)(w)->data +     \
									(n) * (w)->cols + (k))), 16)) \
	      : _mm512_maskz_loadu_ps((m), (const float *)(w)->data + (n) * (w)->cols + (k)))

struct lin_task {
	const struct moe_qtensor *w;
	int64_t T;
	const float *x;
	float *y;
};

/* R rows x C tokens starting at (n, t), R*C <= 24; R, C and BF are constants at every call, so the R*C
 * accumulators stay in registers (a tile with run-time sizes kept them on the stack). */
#define AVX512_INLINE AVX512 static inline __attribute__((always_inline))
AVX512_INLINE void tile(const struct lin_task *a, const int64_t n, const int R, const int64_t t, const int C,
			const int BF)
{
	const int64_t K = a->w->cols, N = a->w->rows;
	__m512 acc[24];
#pragma GCC unroll 16
	for (int i = 0; i < R * C; i++)
		acc[i] = _mm512_setzero_ps();
	for (int64_t k = 0; k < K; k += 16) {
		const __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1u);
		__m512 xv[4];
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			xv[c] = _mm512_maskz_loadu_ps(m, a->x + (t + c) * K + k);
		if (C == 1 && BF && (k & 31) == 0 && n + 2 * R <= N) {
			/* decode: the next tile's rows, one cache line per row and step, into L2 (the hardware
			 * prefetcher restarts at every 4 KiB row; this keeps the stream at ~97% of DRAM) */
#pragma GCC unroll 16
			for (int r = 0; r < R; r++)
				_mm_prefetch((const char *)((const moe_bf16 *)a->w->data + (n + R + r) * K + k), _MM_HINT_T1);
		}
#pragma GCC unroll 16
		for (int r = 0; r < R; r++) {
			const __m512 wv = WLOAD(BF, a->w, n + r, k, m);
#pragma GCC unroll 4
			for (int c = 0; c < C; c++)
				acc[r * C + c] = _mm512_fmadd_ps(wv, xv[c], acc[r * C + c]);
		}
	}
#pragma GCC unroll 16
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < C; c++)
			a->y[(t + c) * N + n + r] = _mm512_reduce_add_ps(acc[r * C + c]);
}

AVX512_INLINE void lin_rows(const struct lin_task *a, int64_t n0, int64_t n1, const int BF)
{
	if (a->T == 1) {
		int64_t n = n0;
		for (; n + 8 <= n1; n += 8)
			tile(a, n, 8, 0, 1, BF);
		for (; n < n1; n++)
			tile(a, n, 1, 0, 1, BF);
		return;
	}
	int64_t t = 0;
	for (; t + 4 <= a->T; t += 4) {
		int64_t n = n0;
		for (; n + 6 <= n1; n += 6)
			tile(a, n, 6, t, 4, BF);
		for (; n < n1; n++)
			tile(a, n, 1, t, 4, BF);
	}
	for (; t < a->T; t++) {
		int64_t n = n0;
		for (; n + 8 <= n1; n += 8)
			tile(a, n, 8, t, 1, BF);
		for (; n < n1; n++)
			tile(a, n, 1, t, 1, BF);
	}
}

AVX512 static void lin_task_fn(void *arg, int64_t task, int thread)
{
	(void)thread;
	const struct lin_task *a = arg;
	const int64_t N = a->w->rows;
	const int64_t n0 = task * LIN_ROWS, n1 = n0 + LIN_ROWS < N ? n0 + LIN_ROWS : N;
	if (a->w->dtype == MOE_DTYPE_BF16)
		lin_rows(a, n0, n1, 1);
	else
		lin_rows(a, n0, n1, 0);
}

void moe_linear__avx512(const struct moe_qtensor *w, int64_t T, const float *x, float *y,
			const struct moe_threads *th)
{
	assert(w->dtype == MOE_DTYPE_F32 || w->dtype == MOE_DTYPE_BF16);
	struct lin_task a = { w, T, x, y };
	moe_parallel_for(th, (w->rows + LIN_ROWS - 1) / LIN_ROWS, lin_task_fn, &a);
}
