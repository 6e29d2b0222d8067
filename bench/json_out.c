/* Results as Google Benchmark JSON, so its tools (compare.py, dashboards) read them unchanged.
 *
 * {"context": {...}, "benchmarks": [...]}. Per benchmark, as `--benchmark_repetitions=N
 * --benchmark_report_aggregates_only=false` writes them: N entries with run_type "iteration" and
 * repetition_index 0..N-1, then the aggregates "mean", "median", "stddev", "cv", "min", "max"
 * (run_type "aggregate", name suffixed "_<aggregate>", aggregate_unit "time" or "percentage" for
 * cv). Times are ns per round ("iterations" rounds per sample). User counters are top-level numbers:
 * every entry has Google Benchmark's bytes_per_second and items_per_second (tokens/s) from its own
 * time; the aggregates also carry the per-call cost, gflops, gbps, roofline_fraction, the ceiling
 * used, the speedups, and PAPI counts when the machine has them (kept off the repetitions so that
 * a full suite's file stays small enough to commit).
 * Non-finite values are left out (JSON has no NaN). Extra string fields (op, model, backend,
 * ceiling) and "label" = backend are ignored by Google Benchmark's readers. A benchmark that did
 * not run is one entry with error_occurred and error_message.
 * Threads: "threads" is the threads of one call (or the copies in throughput mode), "copies" the
 * concurrent instances, "cores" the distinct cores it ran on. Pack: "packed", "pack_ns" and
 * "packed_bytes" (measured once at setup, not part of the times); "note" says e.g. why a backend
 * with pack ran plain weights. */
#include <math.h>
#include <string.h>

#include "bench.h"

static void set_num(json_t *o, const char *k, double v)
{
	if (isfinite(v))
		json_object_set_new(o, k, json_real(v));
}

static json_t *entry(const struct moe_bench_result *e, int family, int instance)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(e->name));
	json_object_set_new(o, "family_index", json_integer(family));
	json_object_set_new(o, "per_family_instance_index", json_integer(instance));
	json_object_set_new(o, "run_name", json_string(e->name));
	json_object_set_new(o, "threads", json_integer(e->threads));
	json_object_set_new(o, "label", json_string(e->backend));
	json_object_set_new(o, "op", json_string(e->op));
	json_object_set_new(o, "model", json_string(e->model));
	json_object_set_new(o, "backend", json_string(e->backend));
	json_object_set_new(o, "key", json_string(e->key));
	json_object_set_new(o, "cold", json_boolean(e->cold));
	json_object_set_new(o, "dispatched", json_boolean(e->dispatched));
	json_object_set_new(o, "copies", json_integer(e->copies));
	json_object_set_new(o, "cores", json_integer(e->cores));
	json_object_set_new(o, "packed", json_boolean(e->packed));
	set_num(o, "pack_ns", e->pack_ns);
	set_num(o, "packed_bytes", e->packed_bytes);
	if (e->note[0])
		json_object_set_new(o, "note", json_string(e->note));
	set_num(o, "axis", e->axis);
	return o;
}

/* Google Benchmark's standard rate counters, on every entry. */
static void std_rates(json_t *o, const struct moe_bench_result *e, double ns)
{
	if (!(ns > 0))
		return;
	set_num(o, "bytes_per_second", e->cost.bytes / ns * 1e9);
	if (e->cost.tokens > 0)
		set_num(o, "items_per_second", e->cost.tokens / ns * 1e9);
}

/* All counters, on the aggregates: cost, ceilings, and the rates of the aggregate's time. */
static void counters(json_t *o, const struct moe_bench_result *e, double ns, bool rates)
{
	set_num(o, "flops_per_call", e->cost.flops);
	set_num(o, "bytes_per_call", e->cost.bytes);
	if (e->cost.tokens > 0)
		set_num(o, "tokens_per_call", e->cost.tokens);
	json_object_set_new(o, "ceiling", json_string(moe_bench_level_name(e->level)));
	json_object_set_new(o, "compute_ceiling",
			    json_string(e->cost.compute == MOE_COMPUTE_BF16 ? "bf16-dot" : "fp32-fma"));
	if (!rates || !(ns > 0))
		return;
	std_rates(o, e, ns);
	if (e->cost.tokens > 0)
		set_num(o, "tokens_per_second", e->cost.tokens / ns * 1e9);
	if (e->cost.flops > 0)
		set_num(o, "gflops", e->cost.flops / ns);
	set_num(o, "gbps", e->cost.bytes / ns);
	if (e->roof_ns > 0)
		set_num(o, "roofline_fraction", e->roof_ns / ns);
	set_num(o, "speedup_vs_ref", e->speedup_ref);
	set_num(o, "speedup_vs_openblas", e->speedup_openblas);
	set_num(o, "speedup_vs_torch", e->speedup_torch);
	set_num(o, "speedup_vs_ggml", e->speedup_ggml);
	set_num(o, "speedup_vs_1_thread", e->speedup_1t);
	if (e->cost.weight_bytes > 0) {
		set_num(o, "weight_bytes_per_call", e->cost.weight_bytes);
		set_num(o, "weight_gbps", e->cost.weight_bytes / ns);
	}
	for (int i = 0; e->counters_valid && i < MOE_BENCH_COUNTERS; i++)
		set_num(o, moe_bench_counter_names[i], e->t.counters[i]);
}

static void add_aggregate(json_t *arr, const struct moe_bench_result *e, int family, int instance,
			  const char *agg, double real, double cpu, bool percentage)
{
	json_t *o = entry(e, family, instance);
	char name[256];
	snprintf(name, sizeof name, "%s_%s", e->name, agg);
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "run_type", json_string("aggregate"));
	json_object_set_new(o, "repetitions", json_integer(e->t.reps));
	json_object_set_new(o, "aggregate_name", json_string(agg));
	json_object_set_new(o, "aggregate_unit", json_string(percentage ? "percentage" : "time"));
	json_object_set_new(o, "iterations", json_integer(e->t.iters));
	set_num(o, "real_time", real);
	set_num(o, "cpu_time", cpu);
	json_object_set_new(o, "time_unit", json_string("ns"));
	counters(o, e, real, !percentage && strcmp(agg, "stddev") != 0);
	json_array_append_new(arr, o);
}

json_t *moe_bench_json(const struct moe_bench_results *r, json_t *context)
{
	json_t *root = json_object(), *arr = json_array();
	json_object_set_new(root, "context", context ? json_incref(context) : json_object());
	char last_op[16] = "";
	int family = -1, instance = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct moe_bench_result *e = &r->v[i];
		if (strcmp(e->op, last_op) != 0) {
			snprintf(last_op, sizeof last_op, "%s", e->op);
			family++;
			instance = 0;
		}
		if (e->skipped || e->t.reps == 0) {
			json_t *o = entry(e, family, instance);
			json_object_set_new(o, "run_type", json_string("iteration"));
			json_object_set_new(o, "repetitions", json_integer(0));
			json_object_set_new(o, "repetition_index", json_integer(0));
			json_object_set_new(o, "iterations", json_integer(0));
			json_object_set_new(o, "real_time", json_real(0));
			json_object_set_new(o, "cpu_time", json_real(0));
			json_object_set_new(o, "time_unit", json_string("ns"));
			json_object_set_new(o, "error_occurred", json_true());
			json_object_set_new(o, "error_message", json_string(e->error[0] ? e->error : "not run"));
			json_array_append_new(arr, o);
			instance++;
			continue;
		}
		for (int k = 0; k < e->t.reps; k++) {
			json_t *o = entry(e, family, instance);
			json_object_set_new(o, "run_type", json_string("iteration"));
			json_object_set_new(o, "repetitions", json_integer(e->t.reps));
			json_object_set_new(o, "repetition_index", json_integer(k));
			json_object_set_new(o, "iterations", json_integer(e->t.iters));
			json_object_set_new(o, "real_time", json_real(e->t.real_ns[k]));
			json_object_set_new(o, "cpu_time", json_real(e->t.cpu_ns[k]));
			json_object_set_new(o, "time_unit", json_string("ns"));
			std_rates(o, e, e->t.real_ns[k]);
			json_array_append_new(arr, o);
		}
		add_aggregate(arr, e, family, instance, "mean", e->real.mean, e->cpu.mean, false);
		add_aggregate(arr, e, family, instance, "median", e->real.median, e->cpu.median, false);
		add_aggregate(arr, e, family, instance, "stddev", e->real.stddev, e->cpu.stddev, false);
		add_aggregate(arr, e, family, instance, "cv", e->real.cv, e->cpu.cv, true);
		add_aggregate(arr, e, family, instance, "min", e->real.min, e->cpu.min, false);
		add_aggregate(arr, e, family, instance, "max", e->real.max, e->cpu.max, false);
		instance++;
	}
	json_object_set_new(root, "benchmarks", arr);
	return root;
}

static enum moe_status dump(FILE *f, void *ctx)
{
	if (json_dumpf(ctx, f, JSON_INDENT(1) | JSON_REAL_PRECISION(10)) != 0 || fputc('\n', f) == EOF)
		return moe_fail(MOE_ERR_IO, "bench: writing JSON failed");
	return MOE_OK;
}

enum moe_status moe_bench_write_json(const char *path, const struct moe_bench_results *r, json_t *context)
{
	json_t *root = moe_bench_json(r, context);
	enum moe_status s = moe_bench_write_atomic(path, dump, root);
	json_decref(root);
	return s;
}
