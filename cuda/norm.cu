/* Centered LayerNorm and RMSNorm on the GPU (moe/norm.h, reference/norm.c): fp32 or bf16 input,
 * weight and output, fp32 arithmetic, one thread block per row.
 *
 * Per row of n columns: LayerNorm sums x (per thread, then a warp xor tree, then across warps),
 * mu = s / n, then sums (x - mu)^2 the same way, var = q / n; RMSNorm sums x^2, ms = q / n; then
 * r = 1 / sqrtf(v + eps) (IEEE division and square root, two roundings as the reference) and
 * y = out(w * ((x - mu) * r)) (RMSNorm: w * (x * r)), rounded once to the output dtype (bf16 RNE).
 * The sums are in another order than the reference's left-to-right loop: verify's a-priori bound
 * for a sum of n terms in any order covers it. -fmad=false keeps d * d and the sums unfused. NaN and
 * infinity propagate as IEEE arithmetic makes them (a NaN row stays NaN, inf - inf is NaN). The
 * fast-math build (norm_fast.cu) uses rsqrtf and approximate division.
 *
 * Host pointers: x and w are copied in and y out on every call (first version). */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_internal.h"
#define MOE_CUDA_OP "norm"
#include "cuda_check.cuh"

#ifdef MOE_CUDA_FAST
#define SUFFIX(name) name##_fast
#else
#define SUFFIX(name) name
#endif

namespace {

constexpr int kThreads = 256;

struct norm_args {
	bool layer, in_bf16, w_bf16, out_bf16;
	long long rows, cols;
	float eps;
	const void *x, *w;
	void *y;
};

__device__ __forceinline__ float ld(const void *base, bool bf16, long long i)
{
	return bf16 ? __uint_as_float((uint32_t)((const uint16_t *)base)[i] << 16) : ((const float *)base)[i];
}

__device__ __forceinline__ void st(void *base, bool bf16, long long i, float v)
{
	if (!bf16) {
		((float *)base)[i] = v;
		return;
	}
	uint32_t u = __float_as_uint(v);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		((uint16_t *)base)[i] = (uint16_t)((u >> 16) | 0x40u);
	else
		((uint16_t *)base)[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Sum over the block; every thread gets the same bits. */
__device__ float block_sum(float v, float *red)
{
	for (int m = 16; m >= 1; m >>= 1)
		v = v + __shfl_xor_sync(0xffffffffu, v, m);
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	__syncthreads(); /* red may still be read from the previous call */
	if (lane == 0)
		red[warp] = v;
	__syncthreads();
	float s = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0f;
	for (int m = 16; m >= 1; m >>= 1)
		s = s + __shfl_xor_sync(0xffffffffu, s, m);
	return __shfl_sync(0xffffffffu, s, 0);
}

__global__ void norm_kernel(norm_args a)
{
	__shared__ float red[32];
	const long long row = blockIdx.x, n = a.cols;
	const void *xb = a.in_bf16 ? (const void *)((const uint16_t *)a.x + row * n) : (const void *)((const float *)a.x + row * n);
	const float fn = (float)n;
	float mu = 0.0f, q = 0.0f;
	if (a.layer) {
		float s = 0.0f;
		for (long long j = threadIdx.x; j < n; j += blockDim.x)
			s = s + ld(xb, a.in_bf16, j);
		mu = block_sum(s, red) / fn;
		for (long long j = threadIdx.x; j < n; j += blockDim.x) {
			const float d = ld(xb, a.in_bf16, j) - mu;
			q = q + d * d;
		}
	} else {
		for (long long j = threadIdx.x; j < n; j += blockDim.x) {
			const float v = ld(xb, a.in_bf16, j);
			q = q + v * v;
		}
	}
	q = block_sum(q, red);
#ifdef MOE_CUDA_FAST
	const float r = rsqrtf(__fdividef(q, fn) + a.eps);
#else
	const float r = 1.0f / sqrtf(q / fn + a.eps);
#endif
	for (long long j = threadIdx.x; j < n; j += blockDim.x) {
		const float v = ld(xb, a.in_bf16, j);
		const float z = (a.layer ? v - mu : v) * r;
		st(a.y, a.out_bf16, row * n + j, ld(a.w, a.w_bf16, j) * z);
	}
}

size_t esize(enum moe_dtype t)
{
	return t == MOE_DTYPE_BF16 ? 2 : 4;
}

} /* namespace */

extern "C" void SUFFIX(moe_cuda_norm)(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	if (p->rows == 0)
		return;
	const cudaStream_t s = cudaStreamPerThread;
	const size_t xb = (size_t)p->rows * p->cols * esize(p->in_dtype), wb = (size_t)p->cols * esize(p->weight_dtype);
	const size_t yb = (size_t)p->rows * p->cols * esize(p->out_dtype);
	const size_t at_w = (xb + 255) & ~(size_t)255, at_y = at_w + ((wb + 255) & ~(size_t)255);
	char *d = nullptr;
	check(cudaMallocAsync((void **)&d, at_y + yb, s), "cudaMallocAsync");
	check(cudaMemcpyAsync(d, x, xb, cudaMemcpyHostToDevice, s), "copying x in");
	check(cudaMemcpyAsync(d + at_w, w, wb, cudaMemcpyHostToDevice, s), "copying the weight in");
	norm_args a{};
	a.layer = p->kind == MOE_NORM_LAYERNORM;
	a.in_bf16 = p->in_dtype == MOE_DTYPE_BF16;
	a.w_bf16 = p->weight_dtype == MOE_DTYPE_BF16;
	a.out_bf16 = p->out_dtype == MOE_DTYPE_BF16;
	a.rows = p->rows;
	a.cols = p->cols;
	a.eps = p->eps;
	a.x = d;
	a.w = d + at_w;
	a.y = d + at_y;
	const int threads = p->cols >= 1024 ? kThreads : p->cols >= 128 ? 128 : 32;
	for (long long r0 = 0; r0 < p->rows; r0 += 0x7fffffffLL) {
		norm_args c = a;
		const long long nr = p->rows - r0 < 0x7fffffffLL ? p->rows - r0 : 0x7fffffffLL;
		c.x = (const char *)a.x + (size_t)r0 * p->cols * esize(p->in_dtype);
		c.y = (char *)a.y + (size_t)r0 * p->cols * esize(p->out_dtype);
		c.rows = nr;
		norm_kernel<<<(unsigned)nr, threads, 0, s>>>(c);
		check(cudaGetLastError(), "kernel launch");
	}
	check(cudaMemcpyAsync(y, d + at_y, yb, cudaMemcpyDeviceToHost, s), "copying y out");
	check(cudaFreeAsync(d, s), "cudaFreeAsync");
	check(cudaStreamSynchronize(s), "running the norm");
}
