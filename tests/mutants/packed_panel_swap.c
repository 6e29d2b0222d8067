/* Mutant: a packed-layout error that shows in some panels only. pack lays every expert out
 * correctly except that, for experts at index >= 1 of a handle, the first and the last 8-row panel
 * of the down projection trade places: expert 0 of a handle is right, and of the others only the
 * outputs of those 16 hidden rows are wrong. */
#include "mutant.h"
#include "packed_cpu.h"

#define PANEL 8

static void swap_panels(struct moe_expert_weights *copy, int32_t index)
{
	if (index >= 1 && copy->down.rows >= 2 * PANEL)
		moe_pcpu_swap_rows(&copy->down, 0, copy->down.rows - PANEL, PANEL);
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-panel-swap";
	b->description = "pack: first and last down panels swapped for experts 1..count-1";
	moe_packed_cpu_install(b);
	moe_pcpu.damage = swap_panels;
}
