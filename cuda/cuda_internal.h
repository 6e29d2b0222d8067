/* Internal interface of the CUDA backend plugin (cuda/); not installed.
 *
 * backend.c holds the table, the entry point and supports(); it never touches the GPU before a
 * kernel slot or supports() is called, because moebench forks the children that run a plugin's
 * cases from a parent that has loaded it, and a CUDA context does not survive fork(). The .cu files
 * hold the kernels and their host launchers, which take HOST pointers (the ABI's), copy the inputs
 * to the device, run, and copy the outputs back on the calling thread's per-thread stream. Each
 * launcher is compiled twice: in IEEE mode (-fmad=false, IEEE division and square root, expf and
 * tanhf of CUDA's math library) and in fast-math mode (__expf, tanh.approx, approximate division),
 * the `_fast` symbols. */
#ifndef MOE_CUDA_INTERNAL_H
#define MOE_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "moe/expert.h"
#include "moe/norm.h"
#include "moe/routing.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most experts a router row may have: a warp keeps a row's keys in shared memory
 * (12 bytes per expert plus 12 per group). */
#define MOE_CUDA_MAX_EXPERTS 4096

/* Whether a usable device is present (probed once per process, on first use); when not, why, in
 * a sentence (also printed once on stderr by supports()). */
bool moe_cuda_device_ok(const char **why);

/* The host launchers: host pointers in, host pointers out, synchronous. A CUDA error is fatal: the
 * message goes to stderr and the process aborts (moebench runs plugin calls in a child process,
 * where that becomes a FAIL naming the signal, never a wrong number). */
void moe_cuda_route(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		    int32_t *ids, float *weights);
void moe_cuda_route_fast(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			 int32_t *ids, float *weights);
void moe_cuda_norm(const struct moe_norm_params *p, const void *x, const void *w, void *y);
void moe_cuda_norm_fast(const struct moe_norm_params *p, const void *x, const void *w, void *y);

/* The W16A16 expert (expert.cu): pack uploads count experts and returns the device handle (NULL
 * when device memory is short) with its bytes; run takes that handle and an index, or NULL and
 * the plain weights w (uploaded for the call). */
void *moe_cuda_expert_pack(const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
			   size_t *bytes);
void *moe_cuda_expert_pack_fast(const struct moe_expert_params *p, int32_t count,
				const struct moe_expert_weights *w, size_t *bytes);
void moe_cuda_expert_release(void *impl);
void moe_cuda_expert_release_fast(void *impl);
void moe_cuda_expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		     const void *impl, int32_t index, float *y);
void moe_cuda_expert_fast(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			  const void *impl, int32_t index, float *y);

/* Device-pointer forms for the kernel-only benchmark (cuda/route_bench.cu): logits, bias, ids and
 * weights live on the device; launches on `stream` and returns without synchronizing. */
void moe_cuda_route_dev(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			int32_t *ids, float *weights, void *stream);
void moe_cuda_route_dev_fast(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			     int32_t *ids, float *weights, void *stream);

#ifdef __cplusplus
}
#endif
#endif
