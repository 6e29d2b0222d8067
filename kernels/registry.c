/* The registry of built-in backends. Index 0 is the reference; optimized tables and their
 * single-variant tables follow in ISA order. */
#include <stdio.h>
#include <stdlib.h>

#include "moe/registry.h"

static const struct moe_builtin *builtins(size_t *count)
{
	static struct moe_builtin list[1];
	static size_t n;
	if (n == 0)
		list[n++] = (struct moe_builtin){ moe_backend_reference(), MOE_ISA_SCALAR, MOE_OP_COUNT };
	*count = n;
	return list;
}

size_t moe_builtin_count(void)
{
	size_t n;
	builtins(&n);
	return n;
}

const struct moe_builtin *moe_builtin_at(size_t i)
{
	size_t n;
	const struct moe_builtin *l = builtins(&n);
	return i < n ? &l[i] : NULL;
}

const struct moe_builtin *moe_builtin_find(const char *name)
{
	size_t n;
	const struct moe_builtin *l = builtins(&n);
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(l[i].table->name, name) == 0)
			return &l[i];
	return NULL;
}

const struct moe_backend *moe_backend_dispatched(void)
{
	return moe_backend_reference();
}
