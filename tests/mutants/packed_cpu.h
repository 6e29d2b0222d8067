/* A correct ABI 2 backend on the CPU for the mutants of the packed and threaded paths: pack copies
 * the experts into one backend-owned arena (a handle verify may use after the plain weights are
 * gone), expert_mt runs the reference expert on fixed 4-token chunks as parallel tasks (one task
 * when the activation scale is derived from every token), and layer_mt routes with the reference,
 * runs every expert (and the shared one) as one parallel job into per-slot outputs, then combines
 * per token in slot order as moe_layer__ref does. Nothing depends on th->count or on which thread
 * runs a task, so results are bitwise equal for any thread count.
 *
 * Each mutant installs it with moe_packed_cpu_install and breaks it in exactly one place through
 * the knobs below; abi2_plugin.c installs it unbroken and must pass. */
#ifndef MOE_TESTS_PACKED_CPU_H
#define MOE_TESTS_PACKED_CPU_H

#include "moe/backend.h"

enum moe_pcpu_combine {
	MOE_PCPU_COMBINE_ORDERED = 0, /* per token, slots k = 0..K-1 in order (correct) */
	MOE_PCPU_COMBINE_RACE,        /* every expert task adds into y as it finishes: the order (and
				       * lost updates) depend on the scheduling */
	MOE_PCPU_COMBINE_BY_COUNT,    /* the slot sum starts at slot (th->count - 1) mod K */
};

struct moe_pcpu_knobs {
	/* Called on each expert's copy right after pack copied it (index in the handle). */
	void (*damage)(struct moe_expert_weights *copy, int32_t index);
	/* pack hands out the first copy it made of each (format, count), whatever the weights. */
	bool stale;
	enum moe_pcpu_combine combine;
};

extern struct moe_pcpu_knobs moe_pcpu;

/* Fills b's pack, release, expert_mt, layer_mt and workspace slots (b stays the handles' owner). */
void moe_packed_cpu_install(struct moe_backend *b);

/* Rows [r0, r0 + n) and [r1, r1 + n) of q's data exchanged (row-major data, whole bytes per row). */
void moe_pcpu_swap_rows(struct moe_qtensor *q, int64_t r0, int64_t r1, int64_t n);

#endif
