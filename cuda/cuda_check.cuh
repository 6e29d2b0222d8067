/* CUDA errors in the plugin's launchers: fatal, reported once with the op and the step
 * (cuda_internal.h says why: the plugin runs in a child process, where an abort becomes a FAIL
 * naming the signal). Include after defining MOE_CUDA_OP, the op's name in the message. */
#ifndef MOE_CUDA_CHECK_CUH
#define MOE_CUDA_CHECK_CUH

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef MOE_CUDA_OP
#error "define MOE_CUDA_OP before including cuda_check.cuh"
#endif

namespace {

[[noreturn]] void die(const char *what, cudaError_t e)
{
	fprintf(stderr, "moebench-cuda: " MOE_CUDA_OP ": %s: %s (%s)\n", what, cudaGetErrorString(e), cudaGetErrorName(e));
	abort();
}

void check(cudaError_t e, const char *what)
{
	if (e != cudaSuccess)
		die(what, e);
}

} /* namespace */

#endif
