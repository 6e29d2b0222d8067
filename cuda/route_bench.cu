/* moebench-cuda-route-bench: the CUDA router's kernel time alone, on device buffers, next to the
 * plugin call's time with the host-to-device and device-to-host copies that the ABI's host
 * pointers cost (what `moebench bench --backend libmoebench_cuda.so` measures).
 *
 *   moebench-cuda-route-bench [--method NAME] [--profile NAME] [-T N] [-E N] [-K N] [-G N] [--tg N]
 *                             [--rsf X] [--bias f32|bf16|none] [--logits f32|bf16] [--reps N] [--fast]
 *
 * Defaults: DeepSeekV3, vllm, T=16384, E=256, K=8, G=8, TG=4, rsf 2.5, f32 bias, f32 logits.
 * Logits are N(0,1) from a fixed seed. The kernel is timed with CUDA events over --reps launches
 * (default 200) per sample, 11 samples, median reported; the host call over 11 calls. One line of
 * key=value pairs, for the results/ README. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include <algorithm>

#include "cuda_internal.h"

static void check(cudaError_t e, const char *what)
{
	if (e != cudaSuccess) {
		fprintf(stderr, "moebench-cuda-route-bench: %s: %s\n", what, cudaGetErrorString(e));
		exit(2);
	}
}

static const char *method_names[] = { "Default", "Renormalize", "DeepSeekV3", "Llama4", "RenormalizeNaive",
				      "TopK", "SigmoidRenorm", "MiniMax2", "Sigmoid", "TopKSigmoid" };
static const char *profile_names[] = { "flashinfer", "vllm", "hf" };

static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(names[i], s) == 0)
			return i;
	fprintf(stderr, "moebench-cuda-route-bench: unknown name %s\n", s);
	exit(2);
}

static uint16_t to_bf16(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

static double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

int main(int argc, char **argv)
{
	struct moe_route_params p = {};
	p.method = MOE_ROUTE_DEEPSEEKV3;
	p.profile = MOE_PROFILE_VLLM;
	p.num_experts = 256;
	p.top_k = 8;
	p.n_group = 8;
	p.topk_group = 4;
	p.renormalize = true;
	p.routed_scaling_factor = 2.5f;
	p.logits_dtype = MOE_DTYPE_F32;
	p.bias_dtype = MOE_DTYPE_F32;
	long long T = 16384;
	int reps = 200;
	bool fast = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--fast")) {
			fast = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "moebench-cuda-route-bench: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--method"))
			p.method = (enum moe_routing_method)lookup(method_names, 10, v);
		else if (!strcmp(a, "--profile"))
			p.profile = (enum moe_profile)lookup(profile_names, 3, v);
		else if (!strcmp(a, "-T"))
			T = atoll(v);
		else if (!strcmp(a, "-E"))
			p.num_experts = atoi(v);
		else if (!strcmp(a, "-K"))
			p.top_k = atoi(v);
		else if (!strcmp(a, "-G"))
			p.n_group = atoi(v);
		else if (!strcmp(a, "--tg"))
			p.topk_group = atoi(v);
		else if (!strcmp(a, "--rsf"))
			p.routed_scaling_factor = (float)atof(v);
		else if (!strcmp(a, "--reps"))
			reps = atoi(v);
		else if (!strcmp(a, "--bias"))
			p.bias_dtype = !strcmp(v, "none") ? MOE_DTYPE_NONE : !strcmp(v, "bf16") ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
		else if (!strcmp(a, "--logits"))
			p.logits_dtype = !strcmp(v, "bf16") ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
		else {
			fprintf(stderr, "moebench-cuda-route-bench: unknown option %s\n", a);
			return 2;
		}
	}
	const int E = p.num_experts, K = p.top_k;
	const size_t le = p.logits_dtype == MOE_DTYPE_BF16 ? 2 : 4, be = p.bias_dtype == MOE_DTYPE_BF16 ? 2 : 4;
	std::vector<unsigned char> L((size_t)T * E * le), B((size_t)E * be);
	uint64_t st = 0x9e3779b97f4a7c15ull;
	auto unif = [&]() {
		st = st * 6364136223846793005ull + 1442695040888963407ull;
		return ((st >> 11) + 0.5) * 0x1p-53;
	};
	auto normal = [&]() { return (float)(sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif())); };
	for (size_t i = 0; i < (size_t)T * E; i++) {
		const float x = normal();
		if (le == 2)
			((uint16_t *)L.data())[i] = to_bf16(x);
		else
			((float *)L.data())[i] = x;
	}
	for (int e = 0; e < E; e++) {
		const float b = 0.1f * normal();
		if (be == 2)
			((uint16_t *)B.data())[e] = to_bf16(b);
		else
			((float *)B.data())[e] = b;
	}
	const bool bias = p.bias_dtype != MOE_DTYPE_NONE;
	cudaDeviceProp prop;
	check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
	void *dL, *dB = NULL, *dI, *dW;
	check(cudaMalloc(&dL, L.size()), "cudaMalloc");
	check(cudaMalloc(&dB, B.size()), "cudaMalloc");
	check(cudaMalloc(&dI, (size_t)T * K * 4), "cudaMalloc");
	check(cudaMalloc(&dW, (size_t)T * K * 4), "cudaMalloc");
	check(cudaMemcpy(dL, L.data(), L.size(), cudaMemcpyHostToDevice), "copy");
	check(cudaMemcpy(dB, B.data(), B.size(), cudaMemcpyHostToDevice), "copy");
	auto run_dev = fast ? moe_cuda_route_dev_fast : moe_cuda_route_dev;
	auto run_host = fast ? moe_cuda_route_fast : moe_cuda_route;
	cudaStream_t s;
	check(cudaStreamCreate(&s), "cudaStreamCreate");
	cudaEvent_t e0, e1;
	check(cudaEventCreate(&e0), "event");
	check(cudaEventCreate(&e1), "event");
	for (int i = 0; i < 10; i++)
		run_dev(&p, T, dL, bias ? dB : NULL, (int32_t *)dI, (float *)dW, s);
	check(cudaStreamSynchronize(s), "warm-up");
	std::vector<double> kern;
	for (int smp = 0; smp < 11; smp++) {
		check(cudaEventRecord(e0, s), "event");
		for (int i = 0; i < reps; i++)
			run_dev(&p, T, dL, bias ? dB : NULL, (int32_t *)dI, (float *)dW, s);
		check(cudaEventRecord(e1, s), "event");
		check(cudaEventSynchronize(e1), "run");
		float ms;
		check(cudaEventElapsedTime(&ms, e0, e1), "event");
		kern.push_back(ms * 1e3 / reps);
	}
	std::vector<int32_t> ids((size_t)T * K);
	std::vector<float> w((size_t)T * K);
	std::vector<double> host;
	run_host(&p, T, L.data(), bias ? B.data() : NULL, ids.data(), w.data());
	for (int smp = 0; smp < 11; smp++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		run_host(&p, T, L.data(), bias ? B.data() : NULL, ids.data(), w.data());
		clock_gettime(CLOCK_MONOTONIC, &b);
		host.push_back((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) * 1e-3);
	}
	const double k_us = median(kern), h_us = median(host);
	const double in_bytes = (double)L.size() + (bias ? B.size() : 0), out_bytes = 8.0 * T * K;
	printf("device=\"%s\" mode=%s method=%s profile=%s T=%lld E=%d K=%d G=%d TG=%d logits=%s bias=%s "
	       "kernel_us=%.2f kernel_Mtok_s=%.1f kernel_GB_s=%.0f host_call_us=%.1f host_call_Mtok_s=%.2f\n",
	       prop.name, fast ? "fast" : "ieee", method_names[p.method], profile_names[p.profile], T, E, K,
	       p.n_group, p.topk_group, le == 2 ? "bf16" : "f32", bias ? (be == 2 ? "bf16" : "f32") : "none", k_us,
	       T / k_us, (in_bytes + out_bytes) / (k_us * 1e3), h_us, T / h_us);
	return 0;
}
