/* The whole "avx2" table (see backend_table.h). */
#define MOE_TABLE_ISA MOE_ISA_AVX2
#define MOE_TABLE_SYMBOL moe_backend_avx2
#define MOE_TABLE_NAME "avx2"
#define MOE_TABLE_DESCRIPTION "AVX2 + FMA + F16C kernels where they apply, the reference elsewhere"
#define MOE_TABLE_ABI2(name) name##__avx2
#include "backend_table.h"
