/* The whole "avx512" table (see backend_table.h). */
#define MOE_TABLE_ISA MOE_ISA_AVX512
#define MOE_TABLE_SYMBOL moe_backend_avx512
#define MOE_TABLE_NAME "avx512"
#define MOE_TABLE_DESCRIPTION "AVX-512 F/BW/DQ/VL kernels where they apply, the reference elsewhere"
#define MOE_TABLE_ABI2(name) name##__avx512
#include "backend_table.h"
