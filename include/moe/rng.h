/* moebench public interface: the seed expander every generator in the suite starts from.
 * splitmix64: each call advances *state by the golden-ratio increment and returns a mixed 64-bit
 * value; every seed, 0 included, gives a full-period stream, identical on every machine, so a
 * seed reproduces a case exactly. */
#ifndef MOE_RNG_H
#define MOE_RNG_H

#include <stdint.h>

static inline uint64_t moe_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
