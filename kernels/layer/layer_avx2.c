/* moe_layer__avx2 and the ABI-2 entry points of the avx2 table, for AVX2 + FMA + F16C (8 lanes):
 * the MoE layer on the host's threads (layer_mt; the version-1 layer on the calling thread), every
 * weight format and act_quant, bitwise identical results for any thread count and for packed or
 * plain weights; pack / release, expert_mt and the workspace query. The algorithm, the contract
 * and why the thread count does not matter: layer/layer_impl.h; the packed layout:
 * layer/layer_pack.h; the experts: the expert kernels moe_builtin_pick chooses for this ISA. */
#include "simd/simd_avx2.h"
#include "expert/expert_simd_avx2.h"

#define EK_DEC_MR 2
#define EK_PRE_MR 6

#include "expert/expert_impl.h"
#include "layer/layer_impl.h"
#include "kernels.h"

#define LK_ISA MOE_ISA_AVX2
#define LK_SUFFIX avx2
#include "layer/layer_entry.h"
