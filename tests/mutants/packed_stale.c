/* Mutant: a stale handle. pack keeps the first copy it made of each (format, expert count) in a
 * global cache and hands that copy out again for every later pack of the same format, whatever
 * weights it is given (a load-once cache keyed on the shape instead of the weights). */
#include "mutant.h"
#include "packed_cpu.h"

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-stale-handle";
	b->description = "pack: returns the first weights it packed for a format, not the given ones";
	moe_packed_cpu_install(b);
	moe_pcpu.stale = true;
}
