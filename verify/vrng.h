/* The seeded generator behind every verify case: splitmix64 to expand a seed, xoshiro256** for the
 * stream. Identical output on every machine, so a case spec with its seed reproduces exactly. */
#ifndef MOE_VERIFY_VRNG_H
#define MOE_VERIFY_VRNG_H

#include <math.h>
#include <stdint.h>

#include "moe/rng.h"

struct moe_vrng {
	uint64_t s[4];
};

static inline void moe_vrng_seed(struct moe_vrng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = moe_splitmix64(&seed);
}

static inline uint64_t moe_vrng_u64(struct moe_vrng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t res = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double moe_vrng_unit(struct moe_vrng *r)
{
	return (double)(moe_vrng_u64(r) >> 11) * 0x1p-53;
}

static inline double moe_vrng_uniform(struct moe_vrng *r, double lo, double hi)
{
	return lo + (hi - lo) * moe_vrng_unit(r);
}

/* Uniform integer in [0, n). */
static inline uint64_t moe_vrng_below(struct moe_vrng *r, uint64_t n)
{
	return n ? moe_vrng_u64(r) % n : 0;
}

/* Standard normal (Box-Muller on two uniforms; the first uniform is kept away from 0). */
static inline double moe_vrng_normal(struct moe_vrng *r)
{
	double u1 = (double)((moe_vrng_u64(r) >> 11) + 1) * 0x1p-53;
	double u2 = moe_vrng_unit(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
