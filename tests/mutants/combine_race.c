/* Mutant: a race on the combine. layer_mt's expert tasks add their weighted outputs straight into
 * y as they finish, without ordering or atomics: with one thread the sum runs in expert order
 * (within the error bound), with more threads the order of the additions, and some updates, depend
 * on the scheduling. Only verify's 1/2/3-thread comparison can see it. */
#include "mutant.h"
#include "packed_cpu.h"

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-combine-race";
	b->description = "layer_mt: experts accumulate into y unordered across threads";
	moe_packed_cpu_install(b);
	moe_pcpu.combine = MOE_PCPU_COMBINE_RACE;
}
