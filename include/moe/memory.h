/* moebench public interface: memory for large weight buffers.
 *
 * Streaming a weight matrix from DRAM at the bandwidth the roofline counts needs huge pages: with
 * 4 KiB pages every 4 KiB row of a bf16 matrix costs a TLB miss and a page walk, and a one-thread
 * GEMV streams ~25% slower (measured on the LM head of a 30B-A3B-shape model: 9.7 against 12.3
 * GB/s). Linux hands out transparent huge pages to anonymous memory only where it is asked to
 * (transparent_hugepage=madvise, the Debian default) and only for 2 MiB-aligned ranges advised
 * before their first touch; glibc's malloc does neither. These helpers do both. They are plain
 * allocations where huge pages are not available, and with MOE_HUGEPAGES=0 in the environment (to
 * measure the difference): nothing but speed depends on them. */
#ifndef MOE_MEMORY_H
#define MOE_MEMORY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* At least `bytes` (rounded up to a multiple of 64), 64-byte aligned; from 2 MiB on, 2 MiB aligned
 * and its whole 2 MiB blocks advised for huge pages before anything touches them (the tail keeps
 * 4 KiB pages, so nothing beyond `bytes` becomes resident). Contents undefined; NULL when out of
 * memory or bytes == 0. Released with free(). */
void *moe_alloc_large(size_t bytes);

/* moe_alloc_large, zero-filled. */
void *moe_calloc_large(size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
