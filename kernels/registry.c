/* The registry of built-in backends and run-time dispatch.
 *
 * Order: the reference (index 0), the whole per-ISA tables (avx2, avx512, avx512bf16), then one
 * single-variant table per line of the per-op list files (lists.inc), in list order. A whole table
 * at ISA level L runs, for each problem, the first variant (highest ISA <= L first, then list
 * order) whose _supports() accepts it, and the reference when none does, so it is complete like
 * the reference while its single-variant tables report exactly what each kernel handles.
 * Variants whose ISA this CPU lacks stay listed: callers compare moe_builtin.isa with
 * moe_isa_hardware() before running them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"

enum {
	op_of_route = MOE_OP_ROUTE,
	op_of_norm = MOE_OP_NORM,
	op_of_quantize = MOE_OP_QUANTIZE,
	op_of_dequantize = MOE_OP_DEQUANTIZE,
	op_of_expert = MOE_OP_EXPERT,
	op_of_layer = MOE_OP_LAYER,
};

#define MOE_KERNEL(slot, fn, isa_, desc)                                                          \
	static const struct moe_backend variant_##fn = {                                          \
		.abi_version = MOE_BACKEND_ABI_VERSION, .struct_size = sizeof(struct moe_backend), \
		.name = #fn, .description = desc, .slot = fn, .supports = fn##_supports,           \
	};
#include "lists.inc"
#undef MOE_KERNEL

#define MOE_WHOLE_TABLES 4

static const struct moe_builtin builtin_list[] = {
	{ NULL, MOE_ISA_SCALAR, MOE_OP_COUNT }, /* the reference: its address is known at run time */
	{ &moe_backend_avx2, MOE_ISA_AVX2, MOE_OP_COUNT },
	{ &moe_backend_avx512, MOE_ISA_AVX512, MOE_OP_COUNT },
	{ &moe_backend_avx512bf16, MOE_ISA_AVX512_BF16, MOE_OP_COUNT },
#define MOE_KERNEL(slot, fn, isa_, desc) { &variant_##fn, isa_, (enum moe_op)op_of_##slot },
#include "lists.inc"
#undef MOE_KERNEL
};

#define MOE_BUILTIN_COUNT (sizeof builtin_list / sizeof builtin_list[0])

static struct moe_builtin reference_entry;
static const struct moe_backend *dispatched;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
	reference_entry = (struct moe_builtin){ moe_backend_reference(), MOE_ISA_SCALAR, MOE_OP_COUNT };
}

size_t moe_builtin_count(void)
{
	return MOE_BUILTIN_COUNT;
}

const struct moe_builtin *moe_builtin_at(size_t i)
{
	pthread_once(&registry_once, registry_init);
	if (i == 0)
		return &reference_entry;
	return i < MOE_BUILTIN_COUNT ? &builtin_list[i] : NULL;
}

const struct moe_builtin *moe_builtin_find(const char *name)
{
	for (size_t i = 0; name && i < MOE_BUILTIN_COUNT; i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (strcmp(b->table->name, name) == 0)
			return b;
	}
	return NULL;
}

const struct moe_builtin *moe_builtin_pick(enum moe_isa isa, enum moe_op op, const void *problem)
{
	for (int level = (int)isa; level >= MOE_ISA_SCALAR; level--) {
		for (size_t i = MOE_WHOLE_TABLES; i < MOE_BUILTIN_COUNT; i++) {
			const struct moe_builtin *b = &builtin_list[i];
			if ((int)b->isa == level && b->op == op && moe_backend_provides(b->table, op, problem))
				return b;
		}
	}
	return moe_builtin_at(0);
}

const struct moe_backend *moe_backend_for_isa(enum moe_isa isa)
{
	if (isa <= MOE_ISA_SCALAR)
		return moe_backend_reference();
	if (isa >= MOE_ISA_COUNT)
		isa = MOE_ISA_COUNT - 1;
	return builtin_list[isa].table;
}

/* One line per op: the variants the table tries, best first. */
static void print_dispatch(enum moe_isa isa)
{
	const char *cap = getenv("MOE_MAX_ISA");
	enum moe_isa parsed;
	fprintf(stderr, "moebench: dispatch uses table '%s' (hardware %s, MOE_MAX_ISA %s%s)\n",
		moe_backend_for_isa(isa)->name, moe_isa_name(moe_isa_hardware()), cap ? cap : "unset",
		cap && *cap && moe_isa_parse(cap, &parsed) != MOE_OK ? ": not an ISA name, ignored" : "");
	for (int op = 0; op < MOE_OP_COUNT; op++) {
		fprintf(stderr, "moebench:   %-10s", moe_op_name((enum moe_op)op));
		for (int level = (int)isa; level >= MOE_ISA_SCALAR; level--)
			for (size_t i = MOE_WHOLE_TABLES; i < MOE_BUILTIN_COUNT; i++)
				if ((int)builtin_list[i].isa == level && builtin_list[i].op == (enum moe_op)op)
					fprintf(stderr, " %s,", builtin_list[i].table->name);
		fprintf(stderr, " ref\n");
	}
}

static void dispatch_init(void)
{
	enum moe_isa isa = moe_isa_effective();
	const char *verbose = getenv("MOE_VERBOSE");
	dispatched = moe_backend_for_isa(isa);
	if (verbose && strcmp(verbose, "0") != 0 && *verbose)
		print_dispatch(isa);
}

const struct moe_backend *moe_backend_dispatched(void)
{
	pthread_once(&dispatch_once, dispatch_init);
	return dispatched;
}
