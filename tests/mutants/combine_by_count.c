/* Mutant: results that depend on th->count, deterministically. layer_mt's combine starts each
 * token's slot sum at slot (th->count - 1) mod K: every order is within the error bound, so only
 * verify's bitwise 1/2/3-thread comparison catches it. */
#include "mutant.h"
#include "packed_cpu.h"

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-combine-by-count";
	b->description = "layer_mt: the combine order depends on the thread count";
	moe_packed_cpu_install(b);
	moe_pcpu.combine = MOE_PCPU_COMBINE_BY_COUNT;
}
