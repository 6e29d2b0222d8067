/* The whole "avx512bf16" table (see backend_table.h). */
#define MOE_TABLE_ISA MOE_ISA_AVX512_BF16
#define MOE_TABLE_SYMBOL moe_backend_avx512bf16
#define MOE_TABLE_NAME "avx512bf16"
#define MOE_TABLE_DESCRIPTION "AVX-512 with AVX512_BF16 kernels where they apply, the reference elsewhere"
#define MOE_TABLE_ABI2(name) name##__avx512bf16
#include "backend_table.h"
