/* A pool of pinned threads that run one function together: thread 0 is the caller, threads
 * 1..n-1 sleep on a condition variable between rounds (a generation counter says a round has
 * started; a pending count says when every worker is done). With one thread nothing is created
 * and fn runs directly. Each thread pins itself through hwloc when it starts (topo.c); the outcome
 * is recorded, a failure is not fatal (the thread runs unpinned and the binding line says so). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MOE_POOL_MAX 64

struct worker {
	struct moe_bench_pool *pool;
	int tid;
	pthread_t thread;
};

struct moe_bench_pool {
	int threads;
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	uint64_t generation;
	int pending;
	bool quit;
	void (*fn)(void *arg, int tid);
	void *arg;
	struct worker workers[MOE_POOL_MAX];
	char why[MOE_POOL_MAX][96];
	char binding[2048];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct moe_bench_pool *p = w->pool;
	uint64_t seen = 0;
	moe_bench_bind_thread(w->tid, p->why[w->tid], sizeof p->why[w->tid]);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->generation == seen && !p->quit)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->quit)
			break;
		seen = p->generation;
		void (*fn)(void *, int) = p->fn;
		void *fn_arg = p->arg;
		pthread_mutex_unlock(&p->lock);
		if (fn)
			fn(fn_arg, w->tid);
		pthread_mutex_lock(&p->lock);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void describe(struct moe_bench_pool *p)
{
	size_t used = 0;
	for (int i = 0; i < p->threads && used < sizeof p->binding; i++) {
		int n = snprintf(p->binding + used, sizeof p->binding - used, "%sthread %d: %s",
				 i ? "; " : "", i, p->why[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

enum moe_status moe_bench_pool_create(int threads, struct moe_bench_pool **out)
{
	if (threads < 1 || threads > MOE_POOL_MAX)
		return moe_fail(MOE_ERR_INVALID_ARG, "bench: threads=%d (valid 1..%d)", threads, MOE_POOL_MAX);
	struct moe_bench_pool *p = calloc(1, sizeof *p);
	if (!p)
		return moe_fail(MOE_ERR_NOMEM, "bench: no memory for a pool of %d threads", threads);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = 1;
	moe_bench_bind_thread(0, p->why[0], sizeof p->why[0]);
	for (int i = 1; i < threads; i++) {
		p->workers[i] = (struct worker){ p, i, 0 };
		if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
			moe_bench_pool_destroy(p);
			return moe_fail(MOE_ERR_INTERNAL, "bench: could start only %d of %d threads", i, threads);
		}
		p->threads = i + 1;
	}
	/* An empty round, so that every worker has pinned itself before describe() reads why[]. */
	moe_bench_pool_run(p, NULL, NULL);
	describe(p);
	*out = p;
	return MOE_OK;
}

int moe_bench_pool_threads(const struct moe_bench_pool *p)
{
	return p->threads;
}

void moe_bench_pool_run(struct moe_bench_pool *p, void (*fn)(void *arg, int tid), void *arg)
{
	if (p->threads > 1) {
		pthread_mutex_lock(&p->lock);
		p->fn = fn;
		p->arg = arg;
		p->pending = p->threads - 1;
		p->generation++;
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->lock);
	}
	if (fn)
		fn(arg, 0);
	if (p->threads > 1) {
		pthread_mutex_lock(&p->lock);
		while (p->pending > 0)
			pthread_cond_wait(&p->done, &p->lock);
		pthread_mutex_unlock(&p->lock);
	}
}

const char *moe_bench_pool_binding(const struct moe_bench_pool *p)
{
	return p->binding;
}

void moe_bench_pool_destroy(struct moe_bench_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (int i = 1; i < p->threads; i++)
		pthread_join(p->workers[i].thread, NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	free(p);
}
