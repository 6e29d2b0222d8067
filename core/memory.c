/* Large buffers on transparent huge pages (include/moe/memory.h). */
#define _GNU_SOURCE
#include "moe/memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_BYTES ((size_t)2 << 20)

void *moe_alloc_large(size_t bytes)
{
	if (!bytes || bytes > SIZE_MAX - HUGE_BYTES)
		return NULL;
	if (bytes < HUGE_BYTES)
		return aligned_alloc(64, (bytes + 63) / 64 * 64);
	/* posix_memalign: C11's aligned_alloc wants the size a multiple of the alignment (ASan aborts
	 * otherwise), and rounding the size up would make the tail resident again */
	void *p = NULL;
	if (posix_memalign(&p, HUGE_BYTES, (bytes + 63) / 64 * 64) != 0)
		return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
	/* only the whole 2 MiB blocks: a huge page over the tail would make up to 2 MiB resident that
	 * the caller never asked for (+33% on a 3 MiB tensor) */
	const char *env = getenv("MOE_HUGEPAGES");
	if (p && !(env && strcmp(env, "0") == 0))
		(void)madvise(p, bytes / HUGE_BYTES * HUGE_BYTES, MADV_HUGEPAGE); /* advice only */
#endif
	return p;
}

void *moe_calloc_large(size_t bytes)
{
	void *p = moe_alloc_large(bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}
