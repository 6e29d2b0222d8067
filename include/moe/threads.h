/* moebench public interface: the threads a host gives to one kernel call.
 *
 * The host owns the threads (as pthreadpool does for XNNPACK and the threadpool interop for
 * oneDNN): a kernel that wants more than its calling thread asks the struct moe_threads it was
 * given for a parallel-for and never starts threads of its own, so a pinned caller is never
 * oversubscribed and plugins do not each bring a pool. A kernel given count = 1 runs on the caller.
 *
 * Determinism: tasks of one parallel_for may run in any order, on any of the threads, several at
 * once. A kernel whose task i computes the same bits whichever thread runs it (per-thread scratch
 * indexed by `thread`, never results that depend on it) returns the same bits for any count, which
 * every built-in kernel promises and verify checks at 1, 2 and 3 threads. */
#ifndef MOE_THREADS_H
#define MOE_THREADS_H

#include <stdint.h>

#include "moe/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One task: `task` in [0, n) of the parallel_for that runs it, `thread` in [0, count) the thread
 * that runs it (for per-thread scratch). */
typedef void moe_task_fn(void *arg, int64_t task, int thread);

struct moe_threads {
	int count; /* threads that run the tasks, the caller included; >= 1 */
	/* Runs fn(arg, i, thread) once for every i in [0, n) and returns when all have returned. The
	 * caller is one of the threads. Not re-entrant: a task must not call parallel_for. */
	void (*parallel_for)(const struct moe_threads *th, int64_t n, moe_task_fn *fn, void *arg);
	void *impl; /* the host's state */
};

/* The calling thread alone (count 1): tasks run in increasing order. */
const struct moe_threads *moe_threads_serial(void);

/* fn over [0, n) on th, or serially when th is NULL. */
void moe_parallel_for(const struct moe_threads *th, int64_t n, moe_task_fn *fn, void *arg);

/* A host pool of `count` threads: the caller of parallel_for is thread 0, count - 1 workers sleep
 * between calls and take tasks from a shared counter. cpus (NULL: no pinning) gives the logical
 * CPU of each thread, cpus[0] for the caller; moe_pool_create pins the workers there and the
 * caller when it calls moe_pool_pin_caller. A pinning failure is not fatal: moe_pool_binding says
 * what happened per thread. */
struct moe_pool;
enum moe_status moe_pool_create(int count, const int *cpus, struct moe_pool **out);
const struct moe_threads *moe_pool_threads(const struct moe_pool *pool);
enum moe_status moe_pool_pin_caller(struct moe_pool *pool);
const char *moe_pool_binding(const struct moe_pool *pool); /* e.g. "0:cpu0 1:cpu1" or "0:unpinned" */
void moe_pool_destroy(struct moe_pool *pool);

/* Logical CPUs this process may run on (sched_getaffinity), at least 1. */
int moe_cpus_available(void);

#ifdef __cplusplus
}
#endif
#endif
