/* Benchmark input data: deterministic, approximately normal values and quantized weights.
 *
 * Timing does not need exact normals, only realistic magnitudes without denormals, NaN or
 * saturation (each of which can change a kernel's speed). Values are Irwin-Hall sums of four
 * uniforms from splitmix64, centred and scaled to variance sigma^2: cheap enough to fill gigabytes
 * of weights in seconds. Weights are normal(0, 1/sqrt(cols)), the scale of trained projections,
 * and are quantized by the dispatched backend's quantize kernel (the verified one). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "moe/rng.h"

void moe_bench_fill_normal(float *x, size_t n, float sigma, uint64_t seed)
{
	/* Four 16-bit uniforms per draw: sum in [0, 4), mean 2, variance 4/12; scale by sqrt(3). */
	const float scale = sigma * 1.7320508f / 65536.0f;
	uint64_t s = seed;
	for (size_t i = 0; i < n; i++) {
		uint64_t r = moe_splitmix64(&s);
		float u = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) +
			  (float)(r >> 48);
		x[i] = (u - 2 * 65535.5f) * scale;
	}
}

enum moe_status moe_bench_make_weight(enum moe_dtype dt, enum moe_scaling sc, enum moe_sf_layout l,
				      int64_t rows, int64_t cols, uint64_t seed, struct moe_qtensor *q)
{
	memset(q, 0, sizeof *q);
	q->dtype = dt;
	q->scaling = sc;
	q->sf_layout = l;
	q->rows = rows;
	q->cols = cols;
	/* moe_qtensor_alloc checks dtype, scaling, layout and shape before it allocates. */
	enum moe_status s = moe_qtensor_alloc(q);
	if (s != MOE_OK)
		return s;
	const float sigma = 1.0f / sqrtf((float)cols);
	if (dt == MOE_DTYPE_F32) {
		moe_bench_fill_normal(q->data, (size_t)(rows * cols), sigma, seed);
		return MOE_OK;
	}
	float *x = malloc((size_t)(rows * cols) * sizeof *x);
	if (!x) {
		moe_qtensor_free(q);
		return moe_fail(MOE_ERR_NOMEM, "bench: no memory for a %lldx%lld weight", (long long)rows,
				(long long)cols);
	}
	moe_bench_fill_normal(x, (size_t)(rows * cols), sigma, seed);
	const struct moe_backend *b = moe_backend_dispatched();
	if (!moe_backend_provides(b, MOE_OP_QUANTIZE, q))
		b = moe_backend_reference();
	q->global_scale = 0;
	b->quantize(x, q);
	free(x);
	return MOE_OK;
}

enum moe_status moe_bench_copy_qtensor(const struct moe_qtensor *src, struct moe_qtensor *dst)
{
	*dst = *src;
	dst->data = dst->scales = NULL;
	enum moe_status s = moe_qtensor_alloc(dst);
	if (s != MOE_OK)
		return s;
	memcpy(dst->data, src->data, moe_qtensor_data_bytes(src));
	if (src->scales)
		memcpy(dst->scales, src->scales, moe_qtensor_scale_bytes(src));
	return MOE_OK;
}
