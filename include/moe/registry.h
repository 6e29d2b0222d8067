/* moebench public interface: the built-in backends, ISA detection and run-time dispatch.
 *
 * The registry lists the reference table, one table per ISA (each a copy of the one below with its
 * own kernels written over: avx512 <- avx2 <- ref), and one single-op table per optimized variant
 * (from the per-op list files), so verify and bench can iterate every variant, not only the one
 * dispatch picks. */
#ifndef MOE_REGISTRY_H
#define MOE_REGISTRY_H

#include "moe/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_isa {
	MOE_ISA_SCALAR = 0,
	MOE_ISA_AVX2 = 1,        /* AVX2 + FMA + F16C */
	MOE_ISA_AVX512 = 2,      /* AVX-512 F, BW, DQ, VL */
	MOE_ISA_AVX512_BF16 = 3, /* AVX-512 + AVX512_BF16 (vdpbf16ps) */
	MOE_ISA_AVX512_AMX = 4,  /* AVX512_BF16 + AMX-TILE + AMX-BF16, tile data granted by the OS */
	MOE_ISA_COUNT
};

const char *moe_isa_name(enum moe_isa isa); /* "scalar", "avx2", "avx512", "avx512bf16", "avx512amx" */
enum moe_status moe_isa_parse(const char *name, enum moe_isa *out);
/* Highest ISA the CPU supports and the OS has enabled (CPUID + XCR0), ignoring MOE_MAX_ISA. */
enum moe_isa moe_isa_hardware(void);
/* moe_isa_hardware() capped by the environment variable MOE_MAX_ISA (if set and valid). */
enum moe_isa moe_isa_effective(void);

struct moe_builtin {
	const struct moe_backend *table;
	enum moe_isa isa;  /* the ISA its kernels need */
	enum moe_op op;    /* for a single-variant table: its op; MOE_OP_COUNT for a whole table */
};

size_t moe_builtin_count(void);
const struct moe_builtin *moe_builtin_at(size_t i); /* 0 is always the reference */
/* By table name ("ref", "avx2", "avx512", or a variant name); NULL if none. */
const struct moe_builtin *moe_builtin_find(const char *name);
/* The whole table dispatch picks for this machine (honouring MOE_MAX_ISA). With MOE_VERBOSE=1
 * set in the environment it prints the chosen table per op to stderr once. */
const struct moe_backend *moe_backend_dispatched(void);

/* The whole table of an ISA level ("ref" for SCALAR): what dispatch picks when that level is the
 * effective one. Lets tests and tools look at any level without touching MOE_MAX_ISA. */
const struct moe_backend *moe_backend_for_isa(enum moe_isa isa);
/* The built-in the whole table of level `isa` runs for one problem of op (problem as in
 * moe_supports_fn; NULL = any): the first single-variant table of ISA <= isa, highest ISA first and
 * then in list-file order, that accepts the problem; the reference (index 0) when none does. */
const struct moe_builtin *moe_builtin_pick(enum moe_isa isa, enum moe_op op, const void *problem);

/* Size-aware dispatch: moe_builtin_pick for a problem of a known size. `size` is the one a
 * problem struct lacks: for ROUTE the token count T (struct moe_route_params has none); the other
 * ops' problems carry theirs (norm, quantize, dequantize: rows * cols; expert, layer: tokens) and
 * ignore it. size < 0: unknown, only rules of every size apply. The candidates are taken in the
 * order above, and a variant is passed over where a dispatch rule (kernels/dispatch_rules.inc,
 * each from a measurement in results/) says the next one is faster for that class of problem at
 * that size. moe_builtin_pick(isa, op,
 * problem) is moe_builtin_pick_sized(isa, op, problem, -1). With MOE_VERBOSE=1 every distinct
 * decision (table level, op, chosen variant, the rule that chose it) is printed once to stderr. */
const struct moe_builtin *moe_builtin_pick_sized(enum moe_isa isa, enum moe_op op, const void *problem, int64_t size);

/* The same decision with its reason: writes to why (n bytes, NUL-terminated, may be truncated) the
 * rule that chose the variant, e.g. "first of avx512 <= ... that accepts the problem" or the rule
 * passing a variant over. Prints nothing. */
const struct moe_builtin *moe_builtin_pick_explain(enum moe_isa isa, enum moe_op op, const void *problem,
						   int64_t size, char *why, size_t n);

#ifdef __cplusplus
}
#endif
#endif
