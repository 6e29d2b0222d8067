/* expert.cu in fast-math mode: the cuda-fast backend's expert (the contract is expert.cu's). */
#define MOE_CUDA_FAST 1
#include "expert.cu"
