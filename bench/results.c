/* Results of a run and the numbers derived from their timings.
 *
 * Per result: summaries of the per-repetition times; GFLOP/s, GB/s and tokens/s from the median
 * time and the cost of one round (all threads); the roofline time max(flops / peak, bytes / bw)
 * with the compute peak of the op's dtype (bf16 dot for bf16 x bf16, fp32 FMA otherwise) and the
 * bandwidth of the level the data comes from (DRAM for cold runs, else the smallest level that
 * holds the working set: L1 and L2 per thread, L3 shared); the fraction of the roofline
 * reached = roofline time / median. Speedups against the reference and the baselines compare
 * medians of the same key (same op, model, shape, warm or cold) from this run; against ggml, the
 * fastest ggml row of the key (its bf16 or q4_0 graph). With --scaling, the speedup over one
 * thread compares a row with the same backend's row of the same case at 1 thread.
 * Threads and ceilings: the ceilings scale with the cores a measurement ran on, not its threads, so
 * N threads squeezed onto fewer cores are judged against the cores they had. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct moe_bench_result *moe_bench_results_add(struct moe_bench_results *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct moe_bench_result *v = realloc(r->v, cap * sizeof *v);
		if (!v)
			return NULL;
		r->v = v;
		r->cap = cap;
	}
	struct moe_bench_result *e = &r->v[r->n++];
	memset(e, 0, sizeof *e);
	e->threads = e->copies = e->cores = 1;
	e->roof_frac = e->speedup_ref = e->speedup_openblas = e->speedup_torch = NAN;
	e->speedup_ggml = e->speedup_1t = e->weight_gbps = e->pack_ns = e->packed_bytes = NAN;
	e->gflops = e->gbps = e->tokens_per_s = NAN;
	for (int i = 0; i < MOE_BENCH_COUNTERS; i++)
		e->t.counters[i] = NAN;
	return e;
}

void moe_bench_results_free(struct moe_bench_results *r)
{
	free(r->v);
	memset(r, 0, sizeof *r);
}

struct order {
	size_t first, index;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

enum moe_status moe_bench_results_group(struct moe_bench_results *r)
{
	if (r->n < 2)
		return MOE_OK;
	struct order *o = malloc(r->n * sizeof *o);
	struct moe_bench_result *v = malloc(r->n * sizeof *v);
	if (!o || !v) {
		free(o);
		free(v);
		return moe_fail(MOE_ERR_NOMEM, "bench: no memory to group %zu results", r->n);
	}
	for (size_t i = 0; i < r->n; i++) {
		size_t first = i;
		for (size_t j = 0; j < i; j++)
			if (strcmp(r->v[j].key, r->v[i].key) == 0) {
				first = j;
				break;
			}
		o[i] = (struct order){ first, i };
	}
	qsort(o, r->n, sizeof *o, cmp_order);
	for (size_t i = 0; i < r->n; i++)
		v[i] = r->v[o[i].index];
	memcpy(r->v, v, r->n * sizeof *v);
	free(v);
	free(o);
	return MOE_OK;
}

static enum moe_bench_level level_for(const struct moe_bench_result *e, const struct moe_bench_topo *t)
{
	if (e->cold || !t)
		return MOE_LEVEL_DRAM;
	const size_t per_thread = e->cost.working_set / (size_t)(e->threads > 0 ? e->threads : 1);
	if (t->cache_bytes[0] && per_thread <= t->cache_bytes[0])
		return MOE_LEVEL_L1;
	if (t->cache_bytes[1] && per_thread <= t->cache_bytes[1])
		return MOE_LEVEL_L2;
	if (t->cache_bytes[2] && e->cost.working_set <= t->cache_bytes[2])
		return MOE_LEVEL_L3;
	return MOE_LEVEL_DRAM;
}

static const struct moe_bench_result *find(const struct moe_bench_results *r, const char *key, const char *backend)
{
	for (size_t i = 0; i < r->n; i++)
		if (!r->v[i].skipped && strcmp(r->v[i].key, key) == 0 && strcmp(r->v[i].backend, backend) == 0)
			return &r->v[i];
	return NULL;
}

void moe_bench_results_derive(struct moe_bench_results *r, const struct moe_calibration *cal,
			      const struct moe_bench_topo *topo)
{
	for (size_t i = 0; i < r->n; i++) {
		struct moe_bench_result *e = &r->v[i];
		if (e->skipped)
			continue;
		if (e->t.reps > 0) {
			moe_bench_summarize(e->t.real_ns, (size_t)e->t.reps, &e->real);
			moe_bench_summarize(e->t.cpu_ns, (size_t)e->t.reps, &e->cpu);
		}
		const double ns = e->real.median;
		if (!(ns > 0))
			continue;
		e->gflops = e->cost.flops > 0 ? e->cost.flops / ns : NAN;
		e->gbps = e->cost.bytes > 0 ? e->cost.bytes / ns : NAN;
		e->weight_gbps = e->cost.weight_bytes > 0 ? e->cost.weight_bytes / ns : NAN;
		e->tokens_per_s = e->cost.tokens > 0 ? e->cost.tokens / ns * 1e9 : NAN;
		e->level = level_for(e, topo);
		const int cores = e->cores > 0 && e->cores < e->threads ? e->cores : e->threads;
		const struct moe_roofline *roof = moe_bench_roofline_for(cal, cores);
		if (roof) {
			/* bf16 work: the AMX tile peak for a backend of the AMX level, else the vdpbf16ps peak */
			const struct moe_builtin *bi = moe_builtin_find(e->backend);
			const bool amx = bi && bi->isa >= MOE_ISA_AVX512_AMX && roof->amx_gflops > 0;
			double peak = e->cost.compute == MOE_COMPUTE_BF16 && roof->bf16_gflops > 0
					      ? (amx ? roof->amx_gflops : roof->bf16_gflops)
					      : roof->fp32_gflops;
			/* A ceiling measured with fewer threads than this run scales with the threads. */
			double scale = (double)cores / roof->threads;
			double t_flop = e->cost.flops / (peak * scale);
			double t_mem = e->cost.bytes / (roof->bw_gbs[e->level] * scale);
			e->roof_ns = fmax(t_flop, t_mem);
			e->roof_frac = e->roof_ns > 0 ? e->roof_ns / ns : NAN;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		struct moe_bench_result *e = &r->v[i];
		if (e->skipped || !(e->real.median > 0))
			continue;
		const struct moe_bench_result *o;
		if ((o = find(r, e->key, "ref")) && o->real.median > 0)
			e->speedup_ref = o->real.median / e->real.median;
		if ((o = find(r, e->key, "openblas")) && o->real.median > 0)
			e->speedup_openblas = o->real.median / e->real.median;
		if ((o = find(r, e->key, "torch")) && o->real.median > 0)
			e->speedup_torch = o->real.median / e->real.median;
		double best_ggml = INFINITY;
		for (size_t j = 0; j < r->n; j++)
			if (!r->v[j].skipped && r->v[j].real.median > 0 && !strncmp(r->v[j].backend, "ggml", 4) &&
			    !strcmp(r->v[j].key, e->key))
				best_ggml = fmin(best_ggml, r->v[j].real.median);
		if (isfinite(best_ggml))
			e->speedup_ggml = best_ggml / e->real.median;
		if (e->threads > 1)
			for (size_t j = 0; j < r->n; j++) {
				const struct moe_bench_result *b = &r->v[j];
				if (!b->skipped && b->threads == 1 && b->copies == e->copies && b->real.median > 0 && b->base[0] &&
				    !strcmp(b->base, e->base) && !strcmp(b->backend, e->backend) && strcmp(b->key, e->key)) {
					e->speedup_1t = b->real.median / e->real.median;
					break;
				}
			}
	}
}
