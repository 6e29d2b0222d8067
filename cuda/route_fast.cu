/* route.cu in fast-math mode: the cuda-fast backend's router (the contract is route.cu's). */
#define MOE_CUDA_FAST 1
#include "route.cu"
