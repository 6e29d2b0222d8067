/* The seeded generator the kernel tests share: splitmix64 (every seed, 0 included, gives a
 * full-period stream), uniforms in (0, 1) and Box-Muller normals. Each test file has its own
 * stream; seed it by assigning rng_state. */
#ifndef MOE_TESTS_TEST_RNG_H
#define MOE_TESTS_TEST_RNG_H

#include <math.h>
#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
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
