/* The seeded generator the kernel tests share: moe_splitmix64 (include/moe/rng.h), uniforms in
 * (0, 1) and Box-Muller normals. Each test file has its own stream; seed it by assigning rng_state. */
#ifndef MOE_TESTS_TEST_RNG_H
#define MOE_TESTS_TEST_RNG_H

#include <math.h>
#include <stdint.h>

#include "moe/rng.h"

static uint64_t rng_state;

static inline uint64_t rng_next(void)
{
	return moe_splitmix64(&rng_state);
}

static inline double rng_uniform(void)
{
	return ((double)(rng_next() >> 11) + 0.5) * 0x1p-53;
}

static inline double rng_normal(void)
{
	return sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
}

#endif
