/* moe_layer__avx512amx and the ABI-2 entry points of the avx512amx table, for AVX512_BF16 with AMX-TILE and AMX-BF16 (16 lanes; the W16A16 panel path of layer_impl.h with its whole 16-token blocks on AMX tiles, layer_amx.h):
 * the MoE layer on the host's threads (layer_mt; the version-1 layer on the calling thread), every
 * weight format and act_quant, bitwise identical results for any thread count and for packed or
 * plain weights; pack / release, expert_mt and the workspace query. The algorithm, the contract
 * and why the thread count does not matter: layer/layer_impl.h; the packed layout:
 * layer/layer_pack.h; the experts: the expert kernels moe_builtin_pick chooses for this ISA. */
#include "simd/simd_avx512.h"
#include "expert/expert_simd_avx512.h"

#define EK_DEC_MR 4
#define EK_PRE_MR 12

#include "expert/expert_impl.h"
#include "layer/layer_impl.h"
#include "kernels.h"

#define LK_ISA MOE_ISA_AVX512_AMX
#define LK_SUFFIX avx512amx
#include "layer/layer_entry.h"
