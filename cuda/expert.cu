/* The expert MLP on tensor cores: bf16 weights, bf16 activations (weight_dtype BF16, act_quant
 * BF16: the W16A16 expert of moe/expert.h), fp32 accumulation, H and I multiples of 16.
 *
 * As reference/expert.c: xq = bf16(x) (RNE); g = xq . gate[i], u = xq . up[i] in fp32;
 * a = (g / (1 + expf(-g))) * u, rounded to bf16; y = a . down[h] in fp32. The dot products run on
 * the tensor cores (WMMA 16x16x16 bf16 tiles, fp32 accumulators): exact bf16 products summed in
 * fp32 in the MMA's order, another order than the reference's sequential sum, inside the a-priori
 * bound verify applies (verification.md). One warp computes one 16x16 tile of g and u (both
 * accumulators share the x fragment), applies SiLU * up through shared memory and writes the bf16
 * a tile; a second kernel computes 16x16 tiles of y. Token rows are padded to 16 with zeros on the
 * device; only the M real rows are copied back.
 *
 * Weights: pack uploads `count` experts once (gate, up, down as bf16 [count][rows][cols] in device
 * memory; `bytes` counts them) and expert_mt runs expert `index` of the handle. Without a handle
 * (the version-1 slot, or a format pack declined) the call uploads the one expert's weights
 * itself and frees them after. x is copied in and y out on every call (host pointers). */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_internal.h"
#define MOE_CUDA_OP "expert"
#include "cuda_check.cuh"

#ifdef MOE_CUDA_FAST
#define SUFFIX(name) name##_fast
#else
#define SUFFIX(name) name
#endif

namespace {

using namespace nvcuda;

struct expert_dev {
	int64_t H, I;
	int32_t count;
	__nv_bfloat16 *gate, *up, *down; /* [count][I][H], [count][I][H], [count][H][I] */
	size_t bytes;
};

__device__ __forceinline__ float silu(float g)
{
#ifdef MOE_CUDA_FAST
	return __fdividef(g, 1.0f + __expf(-g));
#else
	return g / (1.0f + expf(-g));
#endif
}

__global__ void to_bf16_kernel(const float *x, __nv_bfloat16 *xb, long long n_real, long long n_all)
{
	const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n_all)
		xb[i] = i < n_real ? __float2bfloat16_rn(x[i]) : __float2bfloat16_rn(0.0f);
}

/* One warp per 16x16 tile of (tokens, inter): g and u, then a = bf16(silu(g) * u). */
__global__ void gate_up_kernel(const __nv_bfloat16 *xb, const __nv_bfloat16 *gate, const __nv_bfloat16 *up,
			       __nv_bfloat16 *a, int H, int I)
{
	__shared__ __align__(32) float gs[4][16 * 16];
	__shared__ __align__(32) float us[4][16 * 16];
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int it = blockIdx.x * 4 + warp, mt = blockIdx.y;
	if (it * 16 >= I)
		return;
	wmma::fragment<wmma::accumulator, 16, 16, 16, float> g, u;
	wmma::fill_fragment(g, 0.0f);
	wmma::fill_fragment(u, 0.0f);
	wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> xf;
	wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> gf, uf;
	const __nv_bfloat16 *xrow = xb + (size_t)mt * 16 * H;
	const __nv_bfloat16 *grow = gate + (size_t)it * 16 * H, *urow = up + (size_t)it * 16 * H;
	for (int k = 0; k < H; k += 16) {
		wmma::load_matrix_sync(xf, xrow + k, H);
		wmma::load_matrix_sync(gf, grow + k, H);
		wmma::load_matrix_sync(uf, urow + k, H);
		wmma::mma_sync(g, xf, gf, g);
		wmma::mma_sync(u, xf, uf, u);
	}
	wmma::store_matrix_sync(gs[warp], g, 16, wmma::mem_row_major);
	wmma::store_matrix_sync(us[warp], u, 16, wmma::mem_row_major);
	__syncwarp();
	for (int e = lane; e < 256; e += 32) {
		const int r = e >> 4, c = e & 15;
		const float v = silu(gs[warp][e]) * us[warp][e];
		a[(size_t)(mt * 16 + r) * I + it * 16 + c] = __float2bfloat16_rn(v);
	}
}

/* One warp per 16x16 tile of (tokens, hidden): y = a . down. */
__global__ void down_kernel(const __nv_bfloat16 *a, const __nv_bfloat16 *down, float *y, int H, int I)
{
	const int warp = threadIdx.x >> 5;
	const int ht = blockIdx.x * 4 + warp, mt = blockIdx.y;
	if (ht * 16 >= H)
		return;
	wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
	wmma::fill_fragment(acc, 0.0f);
	wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af;
	wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> df;
	const __nv_bfloat16 *arow = a + (size_t)mt * 16 * I, *drow = down + (size_t)ht * 16 * I;
	for (int k = 0; k < I; k += 16) {
		wmma::load_matrix_sync(af, arow + k, I);
		wmma::load_matrix_sync(df, drow + k, I);
		wmma::mma_sync(acc, af, df, acc);
	}
	wmma::store_matrix_sync(y + (size_t)mt * 16 * H + ht * 16, acc, H, wmma::mem_row_major);
}

size_t up16(int64_t n)
{
	return (size_t)((n + 15) / 16 * 16);
}

/* Uploads count experts; NULL when the device memory is not there. */
expert_dev *upload(int64_t H, int64_t I, int32_t count, const struct moe_expert_weights *w, cudaStream_t s)
{
	expert_dev *d = (expert_dev *)calloc(1, sizeof *d);
	if (!d)
		return NULL;
	const size_t per = (size_t)H * I * sizeof(__nv_bfloat16);
	d->H = H;
	d->I = I;
	d->count = count;
	d->bytes = 3 * per * count;
	if (cudaMalloc((void **)&d->gate, d->bytes) != cudaSuccess) {
		(void)cudaGetLastError();
		free(d);
		return NULL;
	}
	d->up = d->gate + (size_t)H * I * count;
	d->down = d->up + (size_t)H * I * count;
	for (int32_t e = 0; e < count; e++) {
		check(cudaMemcpyAsync(d->gate + (size_t)e * H * I, w[e].gate.data, per, cudaMemcpyHostToDevice, s), "uploading gate");
		check(cudaMemcpyAsync(d->up + (size_t)e * H * I, w[e].up.data, per, cudaMemcpyHostToDevice, s), "uploading up");
		check(cudaMemcpyAsync(d->down + (size_t)e * H * I, w[e].down.data, per, cudaMemcpyHostToDevice, s), "uploading down");
	}
	check(cudaStreamSynchronize(s), "uploading the experts");
	return d;
}

void release(expert_dev *d)
{
	if (d) {
		check(cudaFree(d->gate), "cudaFree");
		free(d);
	}
}

} /* namespace */

extern "C" void *SUFFIX(moe_cuda_expert_pack)(const struct moe_expert_params *p, int32_t count,
					     const struct moe_expert_weights *w, size_t *bytes)
{
	expert_dev *d = upload(p->hidden, p->inter, count, w, cudaStreamPerThread);
	if (d)
		*bytes = d->bytes;
	return d;
}

extern "C" void SUFFIX(moe_cuda_expert_release)(void *impl)
{
	release((expert_dev *)impl);
}

extern "C" void SUFFIX(moe_cuda_expert)(const struct moe_expert_params *p, const float *x,
				       const struct moe_expert_weights *w, const void *impl, int32_t index, float *y)
{
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	if (M == 0)
		return;
	const cudaStream_t s = cudaStreamPerThread;
	expert_dev *own = NULL;
	const expert_dev *d = (const expert_dev *)impl;
	if (!d) {
		own = upload(H, I, 1, w, s);
		if (!own)
			die("no device memory for the expert's weights", cudaErrorMemoryAllocation);
		d = own;
		index = 0;
	}
	const size_t Mp = up16(M);
	const size_t at_xb = (M * H * 4 + 255) & ~(size_t)255, at_a = at_xb + ((Mp * H * 2 + 255) & ~(size_t)255);
	const size_t at_y = at_a + ((Mp * I * 2 + 255) & ~(size_t)255), total = at_y + Mp * H * 4;
	char *buf = NULL;
	check(cudaMallocAsync((void **)&buf, total, s), "cudaMallocAsync");
	check(cudaMemcpyAsync(buf, x, (size_t)M * H * 4, cudaMemcpyHostToDevice, s), "copying x in");
	__nv_bfloat16 *xb = (__nv_bfloat16 *)(buf + at_xb), *a = (__nv_bfloat16 *)(buf + at_a);
	float *yd = (float *)(buf + at_y);
	const long long n_all = (long long)(Mp * H);
	to_bf16_kernel<<<(unsigned)((n_all + 255) / 256), 256, 0, s>>>((const float *)buf, xb, (long long)M * H, n_all);
	const size_t off = (size_t)index * H * I;
	gate_up_kernel<<<dim3((unsigned)((I / 16 + 3) / 4), (unsigned)(Mp / 16)), 128, 0, s>>>(xb, d->gate + off, d->up + off, a,
												   (int)H, (int)I);
	down_kernel<<<dim3((unsigned)((H / 16 + 3) / 4), (unsigned)(Mp / 16)), 128, 0, s>>>(a, d->down + off, yd, (int)H, (int)I);
	check(cudaGetLastError(), "kernel launch");
	check(cudaMemcpyAsync(y, yd, (size_t)M * H * 4, cudaMemcpyDeviceToHost, s), "copying y out");
	check(cudaFreeAsync(buf, s), "cudaFreeAsync");
	check(cudaStreamSynchronize(s), "running the expert");
	release(own);
}
