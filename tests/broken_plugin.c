/* Plugins that misbehave the ways a kernel under development does, for the isolation of plugins
 * in `moebench verify` and `moebench bench` (tests/test-plugin-isolation.sh). One source built as
 * several MODULE libraries that differ in MOE_BROKEN; each is the reference table with a norm that
 * is the reference's except on one case group of the catalogue, "layernorm in=bf16 w=bf16
 * out=bf16" (the second norm group: a good group runs before it and good groups after it):
 *   1 the kernel dereferences NULL (SIGSEGV);   2 supports() calls abort() (SIGABRT);
 *   3 the kernel never returns;                 4 the kernel calls exit(0);
 *   5 a constructor dereferences NULL while the library loads;
 *   6 moe_backend_entry_v2 is exported as a data object, not a function. */
#include <stdlib.h>

#include "moe/backend.h"
#include "moe/norm.h"

#ifndef MOE_BROKEN
#error "build with -DMOE_BROKEN=<1..6>"
#endif

static bool broken_group(const struct moe_norm_params *p)
{
	return p->kind == MOE_NORM_LAYERNORM && p->in_dtype == MOE_DTYPE_BF16 && p->weight_dtype == MOE_DTYPE_BF16 &&
	       p->out_dtype == MOE_DTYPE_BF16;
}

/* Through a volatile pointer, so that the compiler cannot prove the crash and drop the code. */
static int *volatile nowhere;

static void broken_norm(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	if (broken_group(p) && p->rows > 0) {
		if (MOE_BROKEN == 1)
			*nowhere = 1;
		if (MOE_BROKEN == 3)
			for (volatile int spin = 1; spin;)
				;
		if (MOE_BROKEN == 4)
			exit(0);
	}
	moe_norm__ref(p, x, w, y);
}

static bool broken_supports(enum moe_op op, const void *problem)
{
	if (MOE_BROKEN == 2 && op == MOE_OP_NORM && problem && broken_group(problem))
		abort();
	const struct moe_backend *ref = moe_backend_reference();
	return !ref->supports || ref->supports(op, problem);
}

#if MOE_BROKEN == 5
__attribute__((constructor)) static void broken_constructor(void)
{
	*nowhere = 1;
}
#endif

static struct moe_backend table;

__attribute__((unused)) static const struct moe_backend *entry(uint32_t host_abi)
{
	if (host_abi != MOE_BACKEND_ABI_VERSION)
		return NULL;
	table = *moe_backend_reference();
	table.name = "broken";
	table.description = "the reference with a norm that misbehaves on one case group";
	table.norm = broken_norm;
	table.supports = broken_supports;
	return &table;
}

#if MOE_BROKEN == 6
/* A table of bytes under the entry's name: a host that called it would jump into data. */
__attribute__((visibility("default"))) const unsigned char moe_backend_entry_v2[64] = { 0 };
#else
__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v2;
const struct moe_backend *moe_backend_entry_v2(uint32_t host_abi)
{
	return entry(host_abi);
}
#endif
