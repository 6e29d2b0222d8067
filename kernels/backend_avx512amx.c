/* The whole "avx512amx" table (see backend_table.h): the avx512bf16 table whose layer (and its
 * ABI-2 slots) runs the bf16 panel GEMMs on AMX tiles. */
#define MOE_TABLE_ISA MOE_ISA_AVX512_AMX
#define MOE_TABLE_SYMBOL moe_backend_avx512amx
#define MOE_TABLE_NAME "avx512amx"
#define MOE_TABLE_DESCRIPTION "AVX512_BF16 kernels, the layer's bf16 GEMMs on AMX tiles, the reference elsewhere"
#define MOE_TABLE_ABI2(name) name##__avx512amx
#include "backend_table.h"
