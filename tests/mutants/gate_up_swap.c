/* Mutant: gate and up projections swapped: y = down(silu(up(x)) * gate(x)). Wraps the reference
 * expert with the two weight tensors exchanged (they have the same shape and format). */
#include "mutant.h"

static void expert__gate_up_swap(const struct moe_expert_params *p, const float *x,
				 const struct moe_expert_weights *w, float *y, void *workspace)
{
	struct moe_expert_weights swapped = *w;
	swapped.gate = w->up;
	swapped.up = w->gate;
	moe_expert__ref(p, x, &swapped, y, workspace);
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-gate-up-swap";
	b->description = "expert: gate and up projections swapped";
	b->expert = expert__gate_up_swap;
}
