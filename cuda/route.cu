/* The router on the GPU: the ten methods of routing.md under the flashinfer, vLLM and HF profiles,
 * fp32 or bf16 logits and biases, one warp per token as the engines' routing kernels run it.
 *
 * Semantics are the reference's (reference/routing.c and the contract at its top); this file
 * follows the same per-token steps so that a reader can check one against the other:
 *   1. keys: lane l computes the keys of experts l, l+32, ... (softmax probability, raw logit,
 *      sigmoid, or sigmoid + bias, clamped as a vLLM score, NaN made the canonical +qNaN), and
 *      parks them in the warp's shared memory with a 64-bit rank word: the profile's key order
 *      (flashinfer: the float total order of the bits; vLLM: NaN last, -0 == +0; HF: NaN first,
 *      -0 == +0) in the high half, 0xffffffff - index in the low half, so that the largest word is
 *      the best candidate and equal keys go to the lower index. 0 means "out of the race";
 *   2. DeepSeekV3 with n_group > 1: lane g scores group g (top-1 + top-2 key, vLLM without a bias
 *      top-1), topk_group rounds of a warp arg-max keep the best groups (equal scores: the lower
 *      group), and the experts of the other groups leave the race (HF: their key becomes 0.0);
 *   3. K rounds of a warp arg-max (xor-shuffle max of the rank words), each lane keeping the best
 *      of its own experts and rescanning only when its best was taken;
 *   4. weights per slot in the profile's order: flashinfer sums over the K by the 32-lane xor
 *      butterfly (bit for bit the reference's), vLLM and HF left to right; the epsilons, the
 *      S > 0 guard and the routed scaling order of routing.c; bf16 (RNE) outputs except vLLM.
 * The softmax over E takes the row max (fmaxf, NaN ignored) and sums expf(x - max) per lane then
 * across the warp: another order than the reference's left-to-right sum, inside the gamma_{E-1}
 * verify allows for it.
 *
 * Arithmetic: IEEE mode (this file as is) builds with -fmad=false, IEEE division, and CUDA's expf
 * and tanhf (2 ulp at most, inside the 4-ulp budget verify gives a kernel's elementary functions).
 * Fast-math mode (route_fast.cu includes this file with MOE_CUDA_FAST) uses __expf, tanh.approx.f32
 * and __fdividef, as flashinfer's kernels are built (--use_fast_math); that mode is judged by
 * verify's tolerances only as far as they allow, and is a separate backend name.
 *
 * Host pointers in and out: each call allocates device memory from the stream-ordered pool of the
 * calling thread's per-thread stream, copies logits and bias in, runs, copies ids and weights
 * out, and synchronizes. The copies are part of every call (first version; see
 * docs/cuda-backend.md). */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_internal.h"
#define MOE_CUDA_OP "route"
#include "cuda_check.cuh"

#ifdef MOE_CUDA_FAST
#define SUFFIX(name) name##_fast
#else
#define SUFFIX(name) name
#endif

namespace {

constexpr int kFlash = MOE_PROFILE_FLASHINFER, kVllm = MOE_PROFILE_VLLM, kHf = MOE_PROFILE_HF;
constexpr unsigned kFull = 0xffffffffu;

struct route_args {
	int method, profile, E, K, G, TG;
	bool renorm, bf16_logits;
	int bias_kind; /* 0 none, 1 f32, 2 bf16 */
	float rsf;
	long long T;
	unsigned per_warp; /* shared bytes per warp */
	const void *logits, *bias;
	int32_t *ids;
	float *w;
};

__device__ __forceinline__ float fexp(float x)
{
#ifdef MOE_CUDA_FAST
	return __expf(x);
#else
	return expf(x);
#endif
}

__device__ __forceinline__ float ftanh(float x)
{
#ifdef MOE_CUDA_FAST
	float y;
	asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
	return y;
#else
	return tanhf(x);
#endif
}

__device__ __forceinline__ float fdiv(float a, float b)
{
#ifdef MOE_CUDA_FAST
	return __fdividef(a, b);
#else
	return a / b;
#endif
}

__device__ __forceinline__ float canon(float x)
{
	return isnan(x) ? __uint_as_float(0x7fc00000u) : x;
}

__device__ __forceinline__ float clampv(int prof, float s)
{
	return prof == kVllm && !isfinite(s) ? 0.0f : s;
}

__device__ __forceinline__ float sigm(int prof, float x)
{
	if (prof == kFlash)
		return canon(0.5f * ftanh(0.5f * x) + 0.5f);
	return canon(fdiv(1.0f, 1.0f + fexp(-x)));
}

__device__ __forceinline__ float bf16_to_f32(uint16_t h)
{
	return __uint_as_float((uint32_t)h << 16);
}

/* moe_round_bf16: RNE, a NaN stays a quiet NaN with its sign. */
__device__ __forceinline__ float round_bf16(float x)
{
	uint32_t u = __float_as_uint(x);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return __uint_as_float(((u >> 16) | 0x40u) << 16);
	u += 0x7fffu + ((u >> 16) & 1u);
	return __uint_as_float(u & 0xffff0000u);
}

/* The key order of the profile as an unsigned rank, larger = better (routing_select.c). */
__device__ __forceinline__ uint32_t rank_bits(int prof, float x)
{
	uint32_t u = __float_as_uint(x);
	if (prof != kFlash) {
		if (isnan(x))
			return prof == kHf ? 0xffffffffu : 0u;
		if (x == 0.0f)
			u = 0;
	}
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Never 0 for an index below 2^32 - 1: 0 is "out of the race". */
__device__ __forceinline__ unsigned long long rank_word(int prof, float key, int idx)
{
	return ((unsigned long long)rank_bits(prof, key) << 32) | (unsigned long long)(0xffffffffu - (uint32_t)idx);
}

__device__ __forceinline__ int word_index(unsigned long long v)
{
	return (int)(0xffffffffu - (uint32_t)v);
}

__device__ __forceinline__ unsigned long long umax(unsigned long long a, unsigned long long b)
{
	return a > b ? a : b;
}

__device__ __forceinline__ unsigned long long warp_max(unsigned long long v)
{
	for (int m = 16; m >= 1; m >>= 1)
		v = umax(v, __shfl_xor_sync(kFull, v, m));
	return v;
}

__device__ __forceinline__ float warp_fmax(float v)
{
	for (int m = 16; m >= 1; m >>= 1)
		v = fmaxf(v, __shfl_xor_sync(kFull, v, m));
	return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
	for (int m = 16; m >= 1; m >>= 1)
		v = v + __shfl_xor_sync(kFull, v, m);
	return __shfl_sync(kFull, v, 0);
}

struct row_ctx {
	const route_args *a;
	const void *row;
	int lane;
	float smax, ssum;
	bool round_bias;
};

__device__ __forceinline__ float logit_in(const row_ctx &r, int e)
{
	return r.a->bf16_logits ? bf16_to_f32(((const uint16_t *)r.row)[e]) : ((const float *)r.row)[e];
}

__device__ __forceinline__ float bias_at(const row_ctx &r, int e)
{
	float b = r.a->bias_kind == 2 ? bf16_to_f32(((const uint16_t *)r.a->bias)[e]) : ((const float *)r.a->bias)[e];
	return r.round_bias ? round_bf16(b) : b;
}

__device__ __forceinline__ float prob_at(const row_ctx &r, int e)
{
	return clampv(r.a->profile, canon(fdiv(fexp(logit_in(r, e) - r.smax), r.ssum)));
}

__device__ __forceinline__ float sigmoid_at(const row_ctx &r, int e)
{
	const int prof = r.a->profile;
	return clampv(prof, sigm(prof, logit_in(r, e)));
}

/* Sum over the K values w[0..K) in the profile's order; every lane gets the same bits. */
__device__ float sum_k(const row_ctx &r, const float *w, int K)
{
	float s = 0.0f;
	if (r.a->profile == kFlash) {
		/* K <= 32 (validated): lane k holds w[k], the others 0; the reference's butterfly */
		s = warp_sum(r.lane < K ? w[r.lane] : 0.0f);
	} else {
		for (int k = 0; k < K; k++)
			s = s + w[k];
	}
	return canon(s);
}

__global__ void route_kernel(route_args a)
{
	extern __shared__ __align__(16) unsigned char smem[];
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const long long t = (long long)blockIdx.x * (blockDim.x >> 5) + warp;
	if (t >= a.T)
		return; /* the whole warp: t is per warp */
	const int E = a.E, K = a.K, prof = a.profile;
	unsigned long long *kp = (unsigned long long *)(smem + (size_t)warp * a.per_warp);
	unsigned long long *gk = kp + E;
	float *kf = (float *)(gk + a.G);
	float *gs = kf + E;
	int32_t *ids = a.ids + t * K;
	float *w = a.w + t * K;

	int m = a.method;
	if (m == MOE_ROUTE_RENORMALIZE_NAIVE && prof == kFlash)
		m = MOE_ROUTE_RENORMALIZE;
	const bool grouped = m == MOE_ROUTE_DEEPSEEKV3 && a.G > 1;
	const bool has_bias = a.bias_kind != 0;

	row_ctx r;
	r.a = &a;
	r.row = (const char *)a.logits + (size_t)t * E * (a.bf16_logits ? 2 : 4);
	r.lane = lane;
	r.smax = 0.0f;
	r.ssum = 0.0f;
	r.round_bias = grouped && has_bias && prof == kFlash;

	if (m == MOE_ROUTE_DEFAULT || m == MOE_ROUTE_RENORMALIZE_NAIVE) {
		float mx = -INFINITY, z = 0.0f;
		for (int e = lane; e < E; e += 32)
			mx = fmaxf(mx, logit_in(r, e));
		mx = warp_fmax(mx);
		for (int e = lane; e < E; e += 32)
			z = z + fexp(logit_in(r, e) - mx);
		r.smax = mx;
		r.ssum = warp_sum(z);
	}

	/* 1. keys */
	for (int e = lane; e < E; e += 32) {
		float k;
		switch (m) {
		case MOE_ROUTE_DEFAULT:
		case MOE_ROUTE_RENORMALIZE_NAIVE:
			k = prob_at(r, e);
			break;
		case MOE_ROUTE_DEEPSEEKV3:
		case MOE_ROUTE_MINIMAX2: {
			const float s = sigmoid_at(r, e);
			k = has_bias ? canon(s + bias_at(r, e)) : s;
			break;
		}
		case MOE_ROUTE_SIGMOID_RENORM:
		case MOE_ROUTE_SIGMOID:
			k = sigmoid_at(r, e);
			break;
		default: /* Renormalize, TopK, TopKSigmoid, Llama4: the (clamped) logit */
			k = clampv(prof, logit_in(r, e));
			break;
		}
		kf[e] = k;
		if (m == MOE_ROUTE_LLAMA4) /* strict > from the first non-NaN: NaN out, -0 == +0 */
			kp[e] = isnan(k) ? 0ull : rank_word(kVllm, k, e);
		else
			kp[e] = rank_word(prof, k, e);
	}
	__syncwarp();

	/* 2. DeepSeekV3 groups */
	if (grouped) {
		const int G = a.G, gsz = E / G;
		const bool top2 = has_bias || prof != kVllm;
		for (int g = lane; g < G; g += 32) {
			unsigned long long b1 = 0, b2 = 0;
			for (int e = g * gsz; e < (g + 1) * gsz; e++) {
				const unsigned long long v = kp[e];
				if (v > b1) {
					b2 = b1;
					b1 = v;
				} else if (v > b2) {
					b2 = v;
				}
			}
			float sc = kf[word_index(b1)];
			if (top2)
				sc = canon(sc + kf[word_index(b2)]);
			gs[g] = sc;
			gk[g] = rank_word(prof, sc, g);
		}
		__syncwarp();
		for (int j = 0; j < a.TG; j++) {
			unsigned long long b = 0;
			for (int g = lane; g < G; g += 32)
				b = umax(b, gk[g]);
			b = warp_max(b);
			__syncwarp();
			if (lane == 0)
				gk[word_index(b)] = 0; /* kept */
			__syncwarp();
		}
		for (int e = lane; e < E; e += 32)
			if (gk[e / gsz] != 0)
				kp[e] = prof == kHf ? rank_word(kHf, 0.0f, e) : 0ull;
		__syncwarp();
	}

	/* 3. top-K: K rounds of a warp arg-max */
	unsigned long long mine = 0;
	for (int e = lane; e < E; e += 32)
		mine = umax(mine, kp[e]);
	for (int k = 0; k < K; k++) {
		const unsigned long long best = warp_max(mine);
		const int id = best ? word_index(best) : 0; /* none: Llama4 on an all-NaN row */
		if (lane == 0)
			ids[k] = id;
		if (best && (id & 31) == lane) {
			kp[id] = 0;
			mine = 0;
			for (int e = lane; e < E; e += 32)
				mine = umax(mine, kp[e]);
		}
	}
	__syncwarp();

	/* 4. weights */
	for (int k = lane; k < K; k += 32) {
		const int id = ids[k];
		float v;
		switch (m) {
		case MOE_ROUTE_DEFAULT:
		case MOE_ROUTE_RENORMALIZE_NAIVE:
			v = prob_at(r, id);
			break;
		case MOE_ROUTE_DEEPSEEKV3:
		case MOE_ROUTE_MINIMAX2:
		case MOE_ROUTE_SIGMOID_RENORM:
		case MOE_ROUTE_SIGMOID:
			v = sigmoid_at(r, id);
			break;
		case MOE_ROUTE_LLAMA4:
		case MOE_ROUTE_TOPK_SIGMOID:
			v = sigm(prof, clampv(prof, logit_in(r, id)));
			break;
		default: /* Renormalize, TopK */
			v = clampv(prof, logit_in(r, id));
			break;
		}
		w[k] = v;
	}
	__syncwarp();

	if (m == MOE_ROUTE_RENORMALIZE) {
		float mx = -INFINITY;
		for (int k = 0; k < K; k++)
			mx = fmaxf(mx, w[k]);
		__syncwarp();
		for (int k = lane; k < K; k += 32)
			w[k] = canon(fexp(w[k] - mx));
		__syncwarp();
		const float S = sum_k(r, w, K);
		__syncwarp();
		for (int k = lane; k < K; k += 32)
			w[k] = fdiv(w[k], S);
	} else if (m == MOE_ROUTE_RENORMALIZE_NAIVE || (m == MOE_ROUTE_SIGMOID_RENORM && a.renorm)) {
		float S = sum_k(r, w, K);
		if (prof == kFlash && m == MOE_ROUTE_SIGMOID_RENORM)
			S = fmaxf(S, 1e-20f);
		else if (prof == kVllm && !(S > 0.0f))
			S = 1.0f;
		__syncwarp();
		for (int k = lane; k < K; k += 32)
			w[k] = fdiv(w[k], S);
	} else if (m == MOE_ROUTE_DEEPSEEKV3 || m == MOE_ROUTE_MINIMAX2) {
		float S = sum_k(r, w, K);
		__syncwarp();
		for (int k = lane; k < K; k += 32) {
			if (prof == kFlash) {
				w[k] = fdiv(w[k] * a.rsf, S + 1e-20f);
			} else if (prof == kVllm) {
				w[k] = fdiv(w[k], S > 0.0f ? S : 1.0f) * a.rsf;
			} else {
				const float D = m == MOE_ROUTE_DEEPSEEKV3 ? S + 1e-20f : S;
				w[k] = fdiv(w[k], D) * a.rsf;
			}
		}
	}
	__syncwarp();
	for (int k = lane; k < K; k += 32) {
		const float v = m == MOE_ROUTE_TOPK ? w[k] : canon(w[k]);
		w[k] = prof == kVllm ? v : round_bf16(v);
	}
}

route_args make_args(const struct moe_route_params *p, int64_t T)
{
	route_args a{};
	a.method = p->method;
	a.profile = p->profile;
	a.E = p->num_experts;
	a.K = p->top_k;
	a.G = p->method == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1 ? p->n_group : 0;
	a.TG = p->topk_group;
	a.renorm = p->renormalize;
	a.bf16_logits = p->logits_dtype == MOE_DTYPE_BF16;
	a.bias_kind = p->bias_dtype == MOE_DTYPE_F32 ? 1 : p->bias_dtype == MOE_DTYPE_BF16 ? 2 : 0;
	a.rsf = p->routed_scaling_factor;
	a.T = T;
	/* kp: E words, gk: G words, kf: E floats, gs: G floats; 16-byte aligned per warp */
	a.per_warp = (unsigned)(((size_t)(a.E + a.G) * 12 + 15) & ~(size_t)15);
	return a;
}

void launch(route_args a, cudaStream_t s)
{
	if (a.T == 0)
		return;
	int warps = 4;
	while (warps > 1 && (size_t)warps * a.per_warp > 48 * 1024)
		warps /= 2;
	const size_t shmem = (size_t)warps * a.per_warp;
	if (shmem > 48 * 1024)
		check(cudaFuncSetAttribute(route_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shmem),
		      "cudaFuncSetAttribute");
	const long long blocks = (a.T + warps - 1) / warps;
	route_kernel<<<(unsigned)blocks, warps * 32, shmem, s>>>(a);
	check(cudaGetLastError(), "kernel launch");
}

} /* namespace */

extern "C" void SUFFIX(moe_cuda_route_dev)(const struct moe_route_params *p, int64_t T, const void *logits,
					    const void *bias, int32_t *ids, float *weights, void *stream)
{
	route_args a = make_args(p, T);
	a.logits = logits;
	a.bias = bias;
	a.ids = ids;
	a.w = weights;
	launch(a, (cudaStream_t)stream);
}

extern "C" void SUFFIX(moe_cuda_route)(const struct moe_route_params *p, int64_t T, const void *logits,
					const void *bias, int32_t *ids, float *weights)
{
	if (T == 0)
		return;
	const cudaStream_t s = cudaStreamPerThread;
	const size_t E = (size_t)p->num_experts, K = (size_t)p->top_k;
	const size_t lbytes = (size_t)T * E * (p->logits_dtype == MOE_DTYPE_BF16 ? 2 : 4);
	const size_t bbytes = p->bias_dtype == MOE_DTYPE_NONE ? 0 : E * (p->bias_dtype == MOE_DTYPE_BF16 ? 2 : 4);
	const size_t obytes = (size_t)T * K * 4;
	const size_t at_b = (lbytes + 255) & ~(size_t)255, at_i = at_b + ((bbytes + 255) & ~(size_t)255);
	const size_t at_w = at_i + ((obytes + 255) & ~(size_t)255), total = at_w + obytes;
	char *d = nullptr;
	check(cudaMallocAsync((void **)&d, total, s), "cudaMallocAsync");
	check(cudaMemcpyAsync(d, logits, lbytes, cudaMemcpyHostToDevice, s), "copying the logits in");
	if (bbytes)
		check(cudaMemcpyAsync(d + at_b, bias, bbytes, cudaMemcpyHostToDevice, s), "copying the bias in");
	SUFFIX(moe_cuda_route_dev)(p, T, d, bbytes ? d + at_b : nullptr, (int32_t *)(d + at_i), (float *)(d + at_w), s);
	check(cudaMemcpyAsync(ids, d + at_i, obytes, cudaMemcpyDeviceToHost, s), "copying the ids out");
	check(cudaMemcpyAsync(weights, d + at_w, obytes, cudaMemcpyDeviceToHost, s), "copying the weights out");
	check(cudaFreeAsync(d, s), "cudaFreeAsync");
	check(cudaStreamSynchronize(s), "running the router");
}
