/* Clocks and the measurement loop.
 *
 * Wall time is CLOCK_MONOTONIC (never steps backwards; NTP slews it at most by parts per million).
 * CPU time is CLOCK_PROCESS_CPUTIME_ID, the sum over every thread, the quantity Google Benchmark
 * reports with MeasureProcessCPUTime. One sample (a "repetition") runs `iters` calls on every
 * thread and lasts at least min_time, so the clock's resolution and the pool's barriers are
 * negligible; the reported time of a repetition is the sample's wall time divided by iters, the
 * time of one round of calls.
 * Long calls: when the first call shows that first call + one warm-up call + reps samples of one
 * call would exceed the budget, fewer samples are taken (down to MOE_BENCH_FLOOR_REPS), each still
 * one call at least; the median and spread are then those of the 3..reps samples taken, and the
 * count is reported with them (t->reps). */
#include <math.h>
#include <time.h>

#include "bench.h"

double moe_bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double moe_bench_cpu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct batch {
	moe_bench_body_fn *body;
	void *arg;
	int64_t iters;
};

static void run_batch(void *arg, int tid)
{
	const struct batch *b = arg;
	b->body(b->arg, tid, b->iters);
}

static double timed(struct moe_bench_pool *pool, struct batch *b, double *cpu_ns)
{
	double c0 = moe_bench_cpu_now_ns(), w0 = moe_bench_now_ns();
	moe_bench_pool_run(pool, run_batch, b);
	double w1 = moe_bench_now_ns(), c1 = moe_bench_cpu_now_ns();
	if (cpu_ns)
		*cpu_ns = c1 - c0;
	return w1 - w0;
}

enum moe_status moe_bench_measure(struct moe_bench_pool *pool, moe_bench_body_fn *body, void *arg,
				  const struct moe_bench_config *cfg, struct moe_bench_timing *t)
{
	if (cfg->reps < MOE_BENCH_MIN_REPS || cfg->reps > MOE_BENCH_MAX_REPS || !(cfg->min_time > 0))
		return moe_fail(MOE_ERR_INVALID_ARG, "bench: reps=%d (valid %d..%d), min_time=%g s (must be > 0)",
				cfg->reps, MOE_BENCH_MIN_REPS, MOE_BENCH_MAX_REPS, cfg->min_time);
	const double min_ns = cfg->min_time * 1e9;
	struct batch b = { body, arg, 1 };
	t->reps = 0;
	for (int i = 0; i < MOE_BENCH_COUNTERS; i++)
		t->counters[i] = NAN;

	t->first_call_ns = timed(pool, &b, NULL);
	int reps = cfg->reps;
	if (cfg->budget > 0 && t->first_call_ns * (reps + 2) > cfg->budget * 1e9) {
		double fit = floor(cfg->budget * 1e9 / t->first_call_ns) - 2;
		if (fit < MOE_BENCH_FLOOR_REPS)
			return moe_fail(MOE_ERR_UNSUPPORTED, "one call takes %.3g s: %d repetitions (+ first call and "
					"warm-up) are over the %g s budget", t->first_call_ns * 1e-9, MOE_BENCH_FLOOR_REPS,
					cfg->budget);
		reps = (int)fit;
	}

	/* Warm-up doubles as calibration: grow the batch (at most 10x a step, aiming 20% above
	 * min_time) until a batch lasts min_time; that last batch is discarded too. A body whose time
	 * does not grow with its calls stops at Google Benchmark's cap of 1e9 calls. */
	for (;;) {
		double ns = timed(pool, &b, NULL);
		if (ns >= min_ns || b.iters >= 1000000000)
			break;
		double grow = ns > 0 ? 1.2 * min_ns / ns : 10;
		grow = fmin(10, fmax(grow, 1.1));
		int64_t next = (int64_t)ceil((double)b.iters * grow);
		b.iters = next > b.iters ? next : b.iters + 1;
	}
	t->iters = b.iters;

	moe_bench_papi_start();
	for (int r = 0; r < reps; r++) {
		double cpu = 0, ns = timed(pool, &b, &cpu);
		t->real_ns[r] = ns / (double)b.iters;
		t->cpu_ns[r] = cpu / (double)b.iters;
		t->reps = r + 1;
	}
	moe_bench_papi_stop((double)b.iters * reps, t->counters);
	return MOE_OK;
}
