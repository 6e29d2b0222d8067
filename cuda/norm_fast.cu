/* norm.cu in fast-math mode: the cuda-fast backend's norms (the contract is norm.cu's). */
#define MOE_CUDA_FAST 1
#include "norm.cu"
