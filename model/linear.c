/* Reference dense linear: y[t][n] = sum_k x[t][k] * W[n][k], W [N][K] of F32 or BF16 (widened
 * exactly), fp32 products and an fp32 sum in increasing k. Built without FMA contraction (the
 * library's -ffp-contract=off), so every y is one fixed sequence of roundings. Tasks are blocks of
 * output rows; each y depends only on its own row and token, whatever the thread count. */
#include <assert.h>

#include "forward_impl.h"

#define LIN_ROWS 16

struct lin_task {
	const struct moe_qtensor *w;
	int64_t T;
	const float *x;
	float *y;
};

static void lin_ref_task(void *arg, int64_t task, int thread)
{
	(void)thread;
	const struct lin_task *a = arg;
	const int64_t N = a->w->rows, K = a->w->cols;
	const int64_t n0 = task * LIN_ROWS, n1 = n0 + LIN_ROWS < N ? n0 + LIN_ROWS : N;
	for (int64_t n = n0; n < n1; n++) {
		for (int64_t t = 0; t < a->T; t++) {
			const float *x = a->x + t * K;
			float acc = 0.0f;
			if (a->w->dtype == MOE_DTYPE_F32) {
				const float *wr = (const float *)a->w->data + n * K;
				for (int64_t k = 0; k < K; k++)
					acc += x[k] * wr[k];
			} else {
				const moe_bf16 *wr = (const moe_bf16 *)a->w->data + n * K;
				for (int64_t k = 0; k < K; k++)
					acc += x[k] * moe_bf16_to_f32(wr[k]);
			}
			a->y[t * N + n] = acc;
		}
	}
}

void moe_linear__ref(const struct moe_qtensor *w, int64_t T, const float *x, float *y,
		     const struct moe_threads *th)
{
	assert(w->dtype == MOE_DTYPE_F32 || w->dtype == MOE_DTYPE_BF16);
	struct lin_task a = { w, T, x, y };
	moe_parallel_for(th, (w->rows + LIN_ROWS - 1) / LIN_ROWS, lin_ref_task, &a);
}
