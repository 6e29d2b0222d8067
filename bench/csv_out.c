/* Results as CSV for spreadsheets: one row per benchmark with the summary of its repetitions
 * (times in ns per round), the derived rates, the roofline and the speedups. Empty fields mean
 * "does not apply" (e.g. GFLOP/s of routing) or "not measured" (skipped, with the reason in the
 * last column). Names contain no commas; the reason is quoted. */
#include <math.h>

#include "bench.h"

static void num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, ",%.6g", v);
	else
		fputs(",", f);
}

static enum moe_status write_csv(FILE *f, void *ctx)
{
	const struct moe_bench_results *r = ctx;
	fputs("name,op,model,backend,threads,cold,axis,reps,iterations,median_ns,mean_ns,min_ns,max_ns,cv,"
	      "cpu_median_ns,flops_per_call,bytes_per_call,tokens_per_call,gflops,gbps,tokens_per_second,"
	      "ceiling,roofline_fraction,speedup_vs_ref,speedup_vs_openblas,speedup_vs_torch,copies,cores,"
	      "weight_gbps,speedup_vs_ggml,speedup_vs_1_thread,pack_ns,packed_bytes,error\n", f);
	for (size_t i = 0; i < r->n; i++) {
		const struct moe_bench_result *e = &r->v[i];
		fprintf(f, "%s,%s,%s,%s,%d,%d", e->name, e->op, e->model, e->backend, e->threads, e->cold);
		num(f, e->axis);
		fprintf(f, ",%d,%lld", e->t.reps, (long long)e->t.iters);
		if (e->skipped) {
			fprintf(f, "%s,%d,%d,,,,,", ",,,,,,,,,,,,,,,,,", e->copies, e->cores);
		} else {
			num(f, e->real.median);
			num(f, e->real.mean);
			num(f, e->real.min);
			num(f, e->real.max);
			num(f, e->real.cv);
			num(f, e->cpu.median);
			num(f, e->cost.flops);
			num(f, e->cost.bytes);
			num(f, e->cost.tokens);
			num(f, e->gflops);
			num(f, e->gbps);
			num(f, e->tokens_per_s);
			fprintf(f, ",%s", moe_bench_level_name(e->level));
			num(f, e->roof_frac);
			num(f, e->speedup_ref);
			num(f, e->speedup_openblas);
			num(f, e->speedup_torch);
			fprintf(f, ",%d,%d", e->copies, e->cores);
			num(f, e->weight_gbps);
			num(f, e->speedup_ggml);
			num(f, e->speedup_1t);
			num(f, e->pack_ns);
			num(f, e->packed_bytes);
		}
		fputs(",\"", f);
		for (const char *c = e->error; *c; c++) {
			if (*c == '"')
				fputc('"', f);
			fputc(*c, f);
		}
		fputs("\"\n", f);
	}
	return ferror(f) ? moe_fail(MOE_ERR_IO, "bench: writing CSV failed") : MOE_OK;
}

enum moe_status moe_bench_write_csv(const char *path, const struct moe_bench_results *r)
{
	return moe_bench_write_atomic(path, write_csv, (void *)r);
}
