/* Test probes of the kernels' elementwise math (tests/probe_math_<isa>.c). */
#ifndef MOE_TESTS_PROBE_MATH_H
#define MOE_TESTS_PROBE_MATH_H

#include "moe/routing.h"

void probe_exp__avx2(const float *x, float *y, int64_t n);
void probe_sigmoid__avx2(enum moe_profile profile, const float *x, float *y, int64_t n);
void probe_exp__avx512(const float *x, float *y, int64_t n);
void probe_sigmoid__avx512(enum moe_profile profile, const float *x, float *y, int64_t n);

#endif
