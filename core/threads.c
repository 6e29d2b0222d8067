/* The host's threads (moe/threads.h): the serial runner and a pool.
 *
 * Pool: the caller of parallel_for is thread 0; workers 1..count-1 sleep on a condition variable
 * between calls. A call publishes (fn, arg, n) under the lock with a new generation number, then
 * every thread, the caller included, takes task indices from one atomic counter until it passes n,
 * and the caller waits until every worker has left the round. Tasks are claimed one at a time, so
 * a thread that finishes early takes more work (balance by work, not by count). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/threads.h"

static void serial_for(const struct moe_threads *th, int64_t n, moe_task_fn *fn, void *arg)
{
	(void)th;
	for (int64_t i = 0; i < n; i++)
		fn(arg, i, 0);
}

static const struct moe_threads serial = { 1, serial_for, NULL };

const struct moe_threads *moe_threads_serial(void)
{
	return &serial;
}

void moe_parallel_for(const struct moe_threads *th, int64_t n, moe_task_fn *fn, void *arg)
{
	if (!th || th->count <= 1 || n <= 1)
		serial_for(th, n, fn, arg);
	else
		th->parallel_for(th, n, fn, arg);
}

int moe_cpus_available(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

#define POOL_MAX 256

struct pool_worker {
	struct moe_pool *pool;
	int tid;
	pthread_t thread;
};

struct moe_pool {
	struct moe_threads threads;
	int count;
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	uint64_t generation;
	int busy; /* workers still in the current round */
	int quit;
	moe_task_fn *fn;
	void *arg;
	int64_t n;
	atomic_llong next;
	int *cpus;
	struct pool_worker *workers;
	char binding[POOL_MAX * 16];
};

static void run_tasks(struct moe_pool *p, moe_task_fn *fn, void *arg, int64_t n, int tid)
{
	for (;;) {
		long long i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (i >= n)
			return;
		fn(arg, (int64_t)i, tid);
	}
}

static int pin_self(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void note_binding(struct moe_pool *p, int tid, int rc)
{
	char item[32];
	if (!p->cpus)
		snprintf(item, sizeof item, "%s%d:unpinned", tid ? " " : "", tid);
	else if (rc)
		snprintf(item, sizeof item, "%s%d:cpu%d-failed", tid ? " " : "", tid, p->cpus[tid]);
	else
		snprintf(item, sizeof item, "%s%d:cpu%d", tid ? " " : "", tid, p->cpus[tid]);
	pthread_mutex_lock(&p->lock);
	size_t len = strlen(p->binding);
	if (len + strlen(item) + 1 < sizeof p->binding) {
		/* keep the entries in thread order whatever order the threads start in */
		strcat(p->binding, item);
	}
	pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *a)
{
	struct pool_worker *w = a;
	struct moe_pool *p = w->pool;
	uint64_t seen = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->quit && p->generation == seen)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->quit)
			break;
		seen = p->generation;
		moe_task_fn *fn = p->fn;
		void *arg = p->arg;
		int64_t n = p->n;
		pthread_mutex_unlock(&p->lock);
		run_tasks(p, fn, arg, n, w->tid);
		pthread_mutex_lock(&p->lock);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void pool_for(const struct moe_threads *th, int64_t n, moe_task_fn *fn, void *arg)
{
	struct moe_pool *p = th->impl;
	if (n <= 0)
		return;
	if (p->count == 1 || n == 1) {
		serial_for(th, n, fn, arg);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	p->busy = p->count - 1;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	run_tasks(p, fn, arg, n, 0);
	pthread_mutex_lock(&p->lock);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

enum moe_status moe_pool_create(int count, const int *cpus, struct moe_pool **out)
{
	if (!out)
		return moe_fail(MOE_ERR_INVALID_ARG, "thread pool: no output pointer given");
	*out = NULL;
	if (count < 1 || count > POOL_MAX)
		return moe_fail(MOE_ERR_INVALID_ARG, "thread pool: %d threads (1..%d)", count, POOL_MAX);
	struct moe_pool *p = calloc(1, sizeof *p);
	if (!p)
		return moe_fail(MOE_ERR_NOMEM, "thread pool: out of memory");
	p->workers = calloc((size_t)count, sizeof *p->workers);
	if (cpus)
		p->cpus = malloc((size_t)count * sizeof *p->cpus);
	if (!p->workers || (cpus && !p->cpus)) {
		free(p->workers);
		free(p->cpus);
		free(p);
		return moe_fail(MOE_ERR_NOMEM, "thread pool: out of memory");
	}
	if (cpus)
		memcpy(p->cpus, cpus, (size_t)count * sizeof *cpus);
	p->count = count;
	p->threads = (struct moe_threads){ count, pool_for, p };
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	atomic_init(&p->next, 0);
	int started = 1;
	for (int t = 1; t < count; t++) {
		p->workers[t] = (struct pool_worker){ p, t, 0 };
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (p->cpus) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(p->cpus[t], &set);
			pthread_attr_setaffinity_np(&attr, sizeof set, &set);
		}
		int rc = pthread_create(&p->workers[t].thread, &attr, worker_main, &p->workers[t]);
		if (rc != 0 && p->cpus) /* a CPU we may not use: start it unpinned, say so below */
			rc = pthread_create(&p->workers[t].thread, NULL, worker_main, &p->workers[t]);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			p->count = started;
			moe_pool_destroy(p);
			return moe_fail(MOE_ERR_NOMEM, "thread pool: cannot start thread %d of %d: %s", t, count,
					strerror(rc));
		}
		started++;
	}
	p->binding[0] = '\0';
	for (int t = 0; t < count; t++) {
		int rc = 0;
		if (p->cpus && t > 0) {
			cpu_set_t set;
			rc = pthread_getaffinity_np(p->workers[t].thread, sizeof set, &set);
			rc = rc || !CPU_ISSET(p->cpus[t], &set) || CPU_COUNT(&set) != 1;
		}
		note_binding(p, t, rc);
	}
	*out = p;
	return MOE_OK;
}

const struct moe_threads *moe_pool_threads(const struct moe_pool *pool)
{
	return pool ? &pool->threads : moe_threads_serial();
}

enum moe_status moe_pool_pin_caller(struct moe_pool *pool)
{
	if (!pool || !pool->cpus)
		return MOE_OK;
	int rc = pin_self(pool->cpus[0]);
	if (rc)
		return moe_fail(MOE_ERR_UNSUPPORTED, "thread pool: cannot pin the caller to cpu %d: %s",
				pool->cpus[0], strerror(rc));
	return MOE_OK;
}

const char *moe_pool_binding(const struct moe_pool *pool)
{
	return pool ? pool->binding : "0:unpinned";
}

void moe_pool_destroy(struct moe_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->quit = 1;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (int t = 1; t < pool->count; t++)
		pthread_join(pool->workers[t].thread, NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->done);
	free(pool->workers);
	free(pool->cpus);
	free(pool);
}
