/* Mutant: an expert prefill kernel that loses the last token of a partial 16-token tile when more
 * than 8 of its rows are live (M > 16, M % 16 > 8): the tail is run as an 8-row half tile plus a
 * masked remainder whose mask drops its last row, which keeps whatever the accumulator was cleared
 * to (0). Token counts 17, 64 and 257 (remainders 1, 0, 1) never show it. Written as the reference
 * expert with the last token's output row zeroed. */
#include <string.h>

#include "mutant.h"

static void expert__tail_drop(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			      float *y, void *ws)
{
	moe_expert__ref(p, x, w, y, ws);
	if (p->tokens > 16 && p->tokens % 16 > 8)
		memset(y + (p->tokens - 1) * p->hidden, 0, (size_t)p->hidden * sizeof(float));
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-expert-tail-drop";
	b->description = "expert: last token of a partial 16-token tile lost when M % 16 > 8";
	b->expert = expert__tail_drop;
}
