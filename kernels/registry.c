/* The registry of built-in backends and run-time dispatch.
 *
 * Order: the reference (index 0), the whole per-ISA tables (avx2, avx512, avx512bf16, avx512amx), then one
 * single-variant table per line of the per-op list files (lists.inc), in list order. A whole table
 * at ISA level L runs, for each problem, the first variant (highest ISA <= L first, then list
 * order) whose _supports() accepts it, and the reference when none does, so it is complete like
 * the reference while its single-variant tables report exactly what each kernel handles.
 * Variants whose ISA this CPU lacks stay listed: callers compare moe_builtin.isa with
 * moe_isa_hardware() before running them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define MOE_WHOLE_TABLES 5

static const struct moe_builtin builtin_list[] = {
	{ NULL, MOE_ISA_SCALAR, MOE_OP_COUNT }, /* the reference: its address is known at run time */
	{ &moe_backend_avx2, MOE_ISA_AVX2, MOE_OP_COUNT },
	{ &moe_backend_avx512, MOE_ISA_AVX512, MOE_OP_COUNT },
	{ &moe_backend_avx512bf16, MOE_ISA_AVX512_BF16, MOE_OP_COUNT },
	{ &moe_backend_avx512amx, MOE_ISA_AVX512_AMX, MOE_OP_COUNT },
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

/* ---- size-aware dispatch ----
 *
 * The candidates are taken in the order above (highest ISA first, then list order); a rule passes
 * a variant over for a class of problems (a predicate on the problem) and a range of sizes where a
 * measurement showed the next variant that accepts the problem to be faster by more than the
 * noise. Sizes: route T (the caller's), norm and quantize/dequantize rows * cols, expert and layer
 * tokens.
 *
 * Measured on this project's 2-core Xeon (AVX512_BF16), one thread, variants interleaved, the
 * fastest of 9-15 rounds; the figures and the commands that measured them (harnesses
 * route_sweep.c, norm_sweep.c) are in results/intel-xeon-2c-2026-12-07-dispatch/README.md:
 *   route   no rule. moe_route__avx512 routes a call of fewer than 16 tokens (and the last
 *           partial block of a longer one) on its per-token pipeline (routing_impl.h,
 *           block_min_tokens), which made it the fastest variant at every T in {1, 2, 4, 8, 16,
 *           64, 256, 4096}, all ten methods, flashinfer and vllm, f32 and bf16 logits: 1.0-3.5x
 *           moe_route__avx2 (Llama4, K = 1, at T = 1-2: level with it, 0.93-1.07x) and at least 3x
 *           the reference. Before, its 16-token block ran even for one token: 3-6x slower.
 *   norm    RMSNorm with bf16 output: moe_norm__avx512bf16 before moe_norm__avx512bf16_dot
 *           (1.07-1.63x at every size measured); LayerNorm and f32 output keep _dot.
 *   expert, layer, quantize, dequantize: not measured well enough on that loaded machine (samples
 *           10-100x apart) to make a rule; ISA then list order.
 * The rules are in dispatch_rules.inc, each with the figure that made it. */
struct dispatch_rule {
	enum moe_op op;
	const char *variant;               /* the variant passed over ... */
	bool (*when)(const void *problem); /* ... for the problems this matches (NULL: every one) ... */
	const char *when_text;
	int64_t lo, hi;                    /* ... whose size lies in [lo, hi] */
	const char *why;                   /* the measurement */
};

/* Problem classes the rules name. */
static bool norm_rms_bf16_out(const void *problem)
{
	const struct moe_norm_params *p = problem;
	return p->kind == MOE_NORM_RMSNORM && p->out_dtype == MOE_DTYPE_BF16;
}

static const struct dispatch_rule dispatch_rules[] = {
#include "dispatch_rules.inc"
	{ MOE_OP_COUNT, NULL, NULL, NULL, 0, 0, NULL }, /* end */
};

#define MOE_RULE_COUNT (sizeof dispatch_rules / sizeof dispatch_rules[0] - 1)

static const char *const size_names[MOE_OP_COUNT] = { "T", "elements", "elements", "elements", "tokens", "tokens" };

/* The size the rules read for op: the caller's for route, the problem's own for the others. */
static int64_t problem_size(enum moe_op op, const void *problem, int64_t size)
{
	if (!problem)
		return op == MOE_OP_ROUTE ? size : -1;
	switch (op) {
	case MOE_OP_NORM: {
		const struct moe_norm_params *np = problem;
		return np->rows * np->cols;
	}
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: {
		const struct moe_qtensor *q = problem;
		return q->rows * q->cols;
	}
	case MOE_OP_EXPERT:
		return ((const struct moe_expert_params *)problem)->tokens;
	case MOE_OP_LAYER:
		return ((const struct moe_layer_params *)problem)->tokens;
	default:
		return size;
	}
}

/* The rule passing b over for this problem and size, or -1. */
static int rule_against(const struct moe_builtin *b, enum moe_op op, const void *problem, int64_t size)
{
	for (size_t r = 0; dispatch_rules[r].variant; r++) {
		const struct dispatch_rule *d = &dispatch_rules[r];
		if (d->op != op || strcmp(d->variant, b->table->name) != 0)
			continue;
		/* an unknown size (< 0) meets only a rule of every size */
		const bool sized = size >= 0 ? size >= d->lo && size <= d->hi : d->lo <= 0 && d->hi == INT64_MAX;
		if (sized && (!d->when || (problem && d->when(problem))))
			return (int)r;
	}
	return -1;
}

/* The candidates of each level and op in pick order, and which variants a rule names: worked out
 * once, so that a pick (once per kernel call through a whole table) walks two or three entries
 * instead of the registry, and compares names only for variants a rule names. */
static unsigned char order[MOE_ISA_COUNT][MOE_OP_COUNT][MOE_BUILTIN_COUNT];
static unsigned char order_n[MOE_ISA_COUNT][MOE_OP_COUNT];
static bool ruled[MOE_BUILTIN_COUNT];
static pthread_once_t order_once = PTHREAD_ONCE_INIT;
static atomic_bool order_ready; /* order_init has run: the hot path skips pthread_once */

static void order_init(void)
{
	pthread_once(&registry_once, registry_init);
	_Static_assert(MOE_BUILTIN_COUNT <= 256, "order[] holds indices in bytes");
	for (int isa = 0; isa < MOE_ISA_COUNT; isa++)
		for (int op = 0; op < MOE_OP_COUNT; op++)
			for (int level = isa; level >= MOE_ISA_SCALAR; level--)
				for (size_t i = MOE_WHOLE_TABLES; i < MOE_BUILTIN_COUNT; i++)
					if ((int)builtin_list[i].isa == level && (int)builtin_list[i].op == op)
						order[isa][op][order_n[isa][op]++] = (unsigned char)i;
	for (size_t r = 0; dispatch_rules[r].variant; r++)
		for (size_t i = MOE_WHOLE_TABLES; i < MOE_BUILTIN_COUNT; i++)
			if (strcmp(dispatch_rules[r].variant, builtin_list[i].table->name) == 0)
				ruled[i] = true;
	atomic_store_explicit(&order_ready, true, memory_order_release);
}


/* The decision: the builtin's index, and through *rule the first rule that passed a variant over
 * on the way to it (-1: none). */
static size_t pick_index(enum moe_isa isa, enum moe_op op, const void *problem, int64_t size, int *rule)
{
	*rule = -1;
	if ((unsigned)op >= MOE_OP_COUNT)
		return 0;
	if ((unsigned)isa >= MOE_ISA_COUNT)
		isa = (int)isa < 0 ? MOE_ISA_SCALAR : MOE_ISA_COUNT - 1;
	if (!atomic_load_explicit(&order_ready, memory_order_acquire))
		pthread_once(&order_once, order_init);
	size = problem_size(op, problem, size);
	for (unsigned k = 0; k < order_n[isa][op]; k++) {
		const size_t i = order[isa][op][k];
		const struct moe_builtin *b = &builtin_list[i];
		if (!moe_backend_provides(b->table, op, problem))
			continue;
		const int r = ruled[i] ? rule_against(b, op, problem, size) : -1;
		if (r < 0)
			return i;
		if (*rule < 0)
			*rule = r;
	}
	return 0;
}

static void explain(enum moe_isa isa, enum moe_op op, const void *problem, int64_t size, size_t chosen, int rule,
		    char *why, size_t n)
{
	const char *level = moe_isa_name(isa);
	size = problem_size(op, problem, size);
	char sz[48] = "";
	if (size >= 0)
		snprintf(sz, sizeof sz, " at %s=%lld", size_names[op], (long long)size);
	if (rule >= 0) {
		const struct dispatch_rule *d = &dispatch_rules[rule];
		const char *v = d->variant ? d->variant : "?";
		char range[96] = "";
		if (d->hi != INT64_MAX || d->lo > 0)
			snprintf(range, sizeof range, ", %s in [%lld, %lld]", size_names[op], (long long)d->lo, (long long)d->hi);
		snprintf(why, n, "rule%s: %s passed over (%s%s): %s", sz, v, d->when_text ? d->when_text : "every problem",
			 range, d->why ? d->why : "");
	}
	else if (chosen)
		snprintf(why, n, "the first variant of ISA <= %s (highest ISA, then list order) that accepts the problem%s; "
			 "no size rule applies", level, sz);
	else
		snprintf(why, n, "no variant of ISA <= %s accepts the problem%s: the reference", level, sz);
}

const struct moe_builtin *moe_builtin_pick_explain(enum moe_isa isa, enum moe_op op, const void *problem,
						   int64_t size, char *why, size_t n)
{
	int rule;
	const size_t i = pick_index(isa, op, problem, size, &rule);
	if (why && n)
		explain(isa, op, problem, size, i, rule, why, n);
	return moe_builtin_at(i);
}

/* MOE_VERBOSE: -1 not read yet, 0 off, 1 on; each decision printed once (seen). */
static atomic_int verbose_state = -1;
static atomic_uchar seen[MOE_ISA_COUNT][MOE_OP_COUNT][MOE_BUILTIN_COUNT][MOE_RULE_COUNT + 1];

static bool verbose_on(void)
{
	int v = atomic_load_explicit(&verbose_state, memory_order_relaxed);
	if (v < 0) {
		const char *e = getenv("MOE_VERBOSE");
		v = e && *e && strcmp(e, "0") != 0;
		atomic_store_explicit(&verbose_state, v, memory_order_relaxed);
	}
	return v;
}

const struct moe_builtin *moe_builtin_pick_sized(enum moe_isa isa, enum moe_op op, const void *problem, int64_t size)
{
	int rule;
	const size_t i = pick_index(isa, op, problem, size, &rule);
	if (verbose_on() && (unsigned)isa < MOE_ISA_COUNT && (unsigned)op < MOE_OP_COUNT &&
	    !atomic_exchange(&seen[isa][op][i][rule + 1], 1)) {
		char why[640];
		explain(isa, op, problem, size, i, rule, why, sizeof why);
		fprintf(stderr, "moebench: dispatch %s (table level %s): %s, because %s\n", moe_op_name(op),
			moe_isa_name(isa), moe_builtin_at(i)->table->name, why);
	}
	return i ? &builtin_list[i] : moe_builtin_at(0);
}

const struct moe_builtin *moe_builtin_pick(enum moe_isa isa, enum moe_op op, const void *problem)
{
	return moe_builtin_pick_sized(isa, op, problem, -1);
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
