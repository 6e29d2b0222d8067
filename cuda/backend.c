/* The CUDA backend plugin: its table, its entry point and supports().
 *
 * Two shared objects are built from these sources: libmoebench_cuda.so ("cuda", IEEE mode: the
 * numbers verify judges against the reference) and, with MOE_CUDA_FAST, libmoebench_cuda_fast.so
 * ("cuda-fast": __expf, tanh.approx, approximate division, as engines build their kernels). Both
 * run routing (every method under every profile, fp32 and bf16 logits and biases), LayerNorm /
 * RMSNorm and the W16A16 expert MLP on tensor cores, whose pack uploads the weights to device memory
 * once (expert_mt runs on that handle); quantize, dequantize and layer are NULL ("not provided").
 *
 * No CUDA call happens in the entry point or at load: moebench loads a plugin in its own process
 * and forks children that call the kernels, and a CUDA context does not survive fork(). The device
 * is probed on the first supports() of a process (the children's); without a usable device
 * (no driver, no GPU, or a GPU this build has no code for) supports() declines every problem, so
 * that verify and bench report SKIP, and says why once on stderr. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "moe/backend.h"
#include "cuda_internal.h"

#ifdef MOE_CUDA_FAST
#define ROUTE moe_cuda_route_fast
#define NORM moe_cuda_norm_fast
#define EXPERT_PACK moe_cuda_expert_pack_fast
#define EXPERT_RELEASE moe_cuda_expert_release_fast
#define EXPERT_RUN moe_cuda_expert_fast
#define NAME "cuda-fast"
#define MODE "fast-math mode (__expf, tanh.approx, approximate division)"
#else
#define ROUTE moe_cuda_route
#define NORM moe_cuda_norm
#define EXPERT_PACK moe_cuda_expert_pack
#define EXPERT_RELEASE moe_cuda_expert_release
#define EXPERT_RUN moe_cuda_expert
#define NAME "cuda"
#define MODE "IEEE mode"
#endif

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool device_ok;
static char device_why[320];

static void probe(void)
{
	int n = 0, major = 0, minor = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e == cudaErrorInsufficientDriver) {
		snprintf(device_why, sizeof device_why, "no usable CUDA driver (no libcuda.so.1 on this machine, or "
			 "one older than the plugin's CUDA %d.%d runtime; cudaGetDeviceCount: %s)",
			 CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, cudaGetErrorName(e));
	} else if (e != cudaSuccess) {
		snprintf(device_why, sizeof device_why, "no usable CUDA device: cudaGetDeviceCount: %s (%s)",
			 cudaGetErrorString(e), cudaGetErrorName(e));
	} else if (n == 0) {
		snprintf(device_why, sizeof device_why, "no CUDA device is visible");
	} else if ((e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0)) != cudaSuccess ||
		   (e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0)) != cudaSuccess) {
		snprintf(device_why, sizeof device_why, "CUDA device 0: cannot read its compute capability: %s",
			 cudaGetErrorString(e));
	} else if (major != 9 || minor != 0) {
		snprintf(device_why, sizeof device_why, "CUDA device 0 is sm_%d%d; this plugin holds code for sm_90a "
			 "(H100/H200) only", major, minor);
	} else {
		device_ok = true;
	}
	if (!device_ok)
		fprintf(stderr, "moebench-cuda: %s: every problem is declined (SKIP)\n", device_why);
}

bool moe_cuda_device_ok(const char **why)
{
	pthread_once(&probe_once, probe);
	if (why)
		*why = device_ok ? NULL : device_why;
	return device_ok;
}

static bool route_supported(const struct moe_route_params *p)
{
	if (p->num_experts > MOE_CUDA_MAX_EXPERTS)
		return false;
	if (p->method == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1) {
		/* a group score adds the two best keys of a group (vLLM without a bias: the best) */
		const bool top2 = p->bias_dtype != MOE_DTYPE_NONE || p->profile != MOE_PROFILE_VLLM;
		if (top2 && p->num_experts / p->n_group < 2)
			return false;
	}
	return true;
}

/* The tensor-core expert: bf16 weights without scales, bf16 activations, whole 16x16 tiles. */
static bool expert_supported(const struct moe_expert_params *p)
{
	return p->weight_dtype == MOE_DTYPE_BF16 && p->weight_scaling == MOE_SCALING_NONE &&
	       p->act_quant == MOE_ACT_BF16 && p->hidden % 16 == 0 && p->inter % 16 == 0 &&
	       p->hidden <= (1 << 24) && p->inter <= (1 << 24);
}

static bool cuda_supports(enum moe_op op, const void *problem)
{
	if (!moe_cuda_device_ok(NULL))
		return false;
	switch (op) {
	case MOE_OP_ROUTE:
		return route_supported(problem);
	case MOE_OP_NORM:
		return true;
	case MOE_OP_EXPERT:
		return expert_supported(problem);
	default:
		return false;
	}
}

static const struct moe_backend cuda_backend;

/* pack: the upload of count experts to device memory, once. */
static enum moe_status cuda_pack(const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
				 const struct moe_threads *th, struct moe_packed **out)
{
	(void)th;
	*out = NULL;
	if (!moe_cuda_device_ok(NULL) || !expert_supported(p))
		return MOE_ERR_UNSUPPORTED; /* the host runs the plain weights through the same slots */
	struct moe_packed *h = malloc(sizeof *h);
	if (!h)
		return MOE_ERR_NOMEM;
	size_t bytes = 0;
	void *impl = EXPERT_PACK(p, count, w, &bytes);
	if (!impl) {
		free(h);
		return MOE_ERR_NOMEM;
	}
	*h = (struct moe_packed){ .owner = &cuda_backend, .count = count, .format = *p, .bytes = bytes, .impl = impl };
	*out = h;
	return MOE_OK;
}

static void cuda_release(struct moe_packed *packed)
{
	if (packed) {
		EXPERT_RELEASE(packed->impl);
		free(packed);
	}
}

static void cuda_expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w, float *y,
			void *workspace)
{
	(void)workspace;
	EXPERT_RUN(p, x, w, NULL, 0, y);
}

static void cuda_expert_mt(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			   const struct moe_packed *packed, int32_t index, float *y, void *workspace,
			   const struct moe_threads *th)
{
	(void)workspace;
	(void)th; /* the GPU does the work; the host threads have nothing to add */
	EXPERT_RUN(p, x, w, packed ? packed->impl : NULL, index, y);
}

static const struct moe_backend cuda_backend = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = NAME,
	.description = "CUDA kernels for sm_90a, " MODE ": routing (10 methods, 3 profiles, one warp per token), "
		       "LayerNorm/RMSNorm, the bf16 expert on tensor cores (weights uploaded by pack); "
		       "host buffers copied to and from the GPU on every call",
	.route = ROUTE,
	.norm = NORM,
	.expert = cuda_expert,
	.supports = cuda_supports,
	.pack = cuda_pack,
	.release = cuda_release,
	.expert_mt = cuda_expert_mt,
};

__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v2;

const struct moe_backend *moe_backend_entry_v2(uint32_t host_abi_version)
{
	return host_abi_version == MOE_BACKEND_ABI_VERSION ? &cuda_backend : NULL;
}
