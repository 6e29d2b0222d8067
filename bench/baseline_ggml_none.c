/* The ggml baseline when ggml was not found at configure time (or MOE_GGML=OFF): no backends, and the
 * line the table prints instead of the ggml rows. baseline_ggml.c replaces this file when ggml is
 * found (bench/CMakeLists.txt). */
#include "bench.h"

const struct moe_backend *moe_bench_baseline_ggml_bf16(void)
{
	return NULL;
}

const struct moe_backend *moe_bench_baseline_ggml_q4_0(void)
{
	return NULL;
}

const char *moe_bench_ggml_status(void)
{
#ifdef MOE_GGML_OFF
	return "not built (MOE_GGML=OFF at configure time)";
#else
	return "not built (ggml not found at configure time)";
#endif
}
