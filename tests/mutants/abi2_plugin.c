/* Not a mutant: the reference with correct ABI 2 slots (packed_cpu.c: pack into a backend-owned
 * copy, expert_mt and layer_mt on the host's threads). Verifying it must pass everything, packed
 * path and 1/2/3 threads included, which shows the packed/threaded mutants fail for their bug. */
#include "mutant.h"
#include "packed_cpu.h"

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "abi2-plugin";
	b->description = "the scalar reference with pack, expert_mt and layer_mt (ABI 2)";
	moe_packed_cpu_install(b);
}
