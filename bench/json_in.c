/* Reading Google Benchmark JSON back: `moebench compare` and the merge of the PyTorch baseline.
 *
 * Entries are grouped by run_name (name when absent) in file order. run_type "iteration" entries
 * contribute their real_time, converted to ns from time_unit (ns, us, ms, s); an "aggregate" entry
 * named "median" records the median for files that carry aggregates only. Entries with
 * error_occurred become skipped results. Our extra fields (key, op, model, backend, axis,
 * flops/bytes/tokens_per_call, threads, cold) are read when present so merged results take part in
 * speedups and plots. Anything malformed is reported with the file and the entry index, including
 * times that are negative or not finite once in ns and counts that are negative or not finite. */
#include <math.h>
#include <string.h>

#include "bench.h"

static double unit_ns(const char *u)
{
	if (!u || !strcmp(u, "ns"))
		return 1;
	if (!strcmp(u, "us"))
		return 1e3;
	if (!strcmp(u, "ms"))
		return 1e6;
	if (!strcmp(u, "s"))
		return 1e9;
	return 0;
}

static void copy_str(char *dst, size_t n, json_t *v, const char *fallback)
{
	const char *s = json_string_value(v);
	snprintf(dst, n, "%s", s ? s : fallback);
}

static struct moe_bench_result *lookup(struct moe_bench_results *out, size_t first, const char *name)
{
	for (size_t i = first; i < out->n; i++)
		if (strcmp(out->v[i].name, name) == 0)
			return &out->v[i];
	return NULL;
}

enum moe_status moe_bench_read_json(const char *path, struct moe_bench_results *out)
{
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	if (!root) {
		if (err.line <= 0)
			return moe_fail(MOE_ERR_IO, "%s: cannot read: %s", path, err.text);
		return moe_fail(MOE_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", path, err.line, err.column, err.text);
	}
	enum moe_status s = MOE_OK;
	json_t *arr = json_object_get(root, "benchmarks");
	if (!json_is_array(arr)) {
		s = moe_fail(MOE_ERR_FORMAT, "%s: no \"benchmarks\" array (not Google Benchmark JSON)", path);
		goto out;
	}
	const size_t first = out->n;
	size_t i;
	json_t *b;
	json_array_foreach(arr, i, b) {
		const char *name = json_string_value(json_object_get(b, "run_name"));
		if (!name)
			name = json_string_value(json_object_get(b, "name"));
		const char *type = json_string_value(json_object_get(b, "run_type"));
		json_t *rt = json_object_get(b, "real_time");
		double scale = unit_ns(json_string_value(json_object_get(b, "time_unit")));
		bool error = json_is_true(json_object_get(b, "error_occurred"));
		if (!name || (!error && (!json_is_number(rt) || scale == 0))) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: benchmarks[%zu] lacks a name, a numeric real_time or a known "
				     "time_unit", path, i);
			goto out;
		}
		if (strlen(name) >= sizeof out->v[0].name) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: benchmarks[%zu]: name longer than %zu characters", path, i,
				     sizeof out->v[0].name - 1);
			goto out;
		}
		struct moe_bench_result *e = lookup(out, first, name);
		if (!e) {
			if (!(e = moe_bench_results_add(out))) {
				s = moe_fail(MOE_ERR_NOMEM, "%s: no memory", path);
				goto out;
			}
			snprintf(e->name, sizeof e->name, "%s", name);
			copy_str(e->key, sizeof e->key, json_object_get(b, "key"), name);
			copy_str(e->op, sizeof e->op, json_object_get(b, "op"), "");
			copy_str(e->model, sizeof e->model, json_object_get(b, "model"), "");
			copy_str(e->backend, sizeof e->backend, json_object_get(b, "backend"), "");
			json_t *th = json_object_get(b, "threads");
			e->threads = json_is_integer(th) && json_integer_value(th) > 0 ? (int)json_integer_value(th) : 1;
			e->cold = json_is_true(json_object_get(b, "cold"));
			e->dispatched = json_is_true(json_object_get(b, "dispatched"));
			e->axis = json_number_value(json_object_get(b, "axis"));
			e->cost.flops = json_number_value(json_object_get(b, "flops_per_call"));
			e->cost.bytes = json_number_value(json_object_get(b, "bytes_per_call"));
			e->cost.tokens = json_number_value(json_object_get(b, "tokens_per_call"));
			/* counts: finite, >= 0 and within an exact double; a negative one cast to size_t is
			 * undefined behaviour, an infinite one poisons every rate */
			const double cnt[3] = { e->cost.flops, e->cost.bytes, e->cost.tokens };
			static const char *const cnt_name[3] = { "flops_per_call", "bytes_per_call", "tokens_per_call" };
			for (int k = 0; k < 3; k++) {
				if (!(cnt[k] >= 0 && cnt[k] <= 0x1p53)) {
					s = moe_fail(MOE_ERR_FORMAT, "%s: benchmarks[%zu] (%s): %s %g is not a count in "
						     "[0, 2^53]", path, i, name, cnt_name[k], cnt[k]);
					goto out;
				}
			}
			e->cost.working_set = (size_t)e->cost.bytes;
			e->real.median = NAN;
		}
		if (error) {
			e->skipped = true;
			copy_str(e->error, sizeof e->error, json_object_get(b, "error_message"), "error");
			continue;
		}
		double ns = json_number_value(rt) * scale;
		json_t *ct = json_object_get(b, "cpu_time");
		const double cpu = json_is_number(ct) ? json_number_value(ct) * scale : ns;
		/* 1e308 s is infinite in ns: a time that is not finite cannot be compared or summarized */
		if (!(ns >= 0 && isfinite(ns)) || !(cpu >= 0 && isfinite(cpu))) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: benchmarks[%zu] (%s): real_time or cpu_time is negative or not "
				     "finite in ns (real_time %g, scale %g)", path, i, name, json_number_value(rt), scale);
			goto out;
		}
		if (!type || !strcmp(type, "iteration")) {
			if (e->t.reps == MOE_BENCH_MAX_REPS) {
				s = moe_fail(MOE_ERR_FORMAT, "%s: %s has more than %d repetitions", path, name,
					     MOE_BENCH_MAX_REPS);
				goto out;
			}
			e->t.real_ns[e->t.reps] = ns;
			e->t.cpu_ns[e->t.reps] = cpu;
			e->t.iters = json_integer_value(json_object_get(b, "iterations"));
			e->t.reps++;
		} else if (!strcmp(type, "aggregate")) {
			const char *agg = json_string_value(json_object_get(b, "aggregate_name"));
			if (agg && !strcmp(agg, "median") && e->t.reps == 0)
				e->real.median = ns;
		}
	}
	for (size_t k = first; k < out->n; k++) {
		struct moe_bench_result *e = &out->v[k];
		if (e->t.reps > 0) {
			moe_bench_summarize(e->t.real_ns, (size_t)e->t.reps, &e->real);
			moe_bench_summarize(e->t.cpu_ns, (size_t)e->t.reps, &e->cpu);
		}
	}
out:
	json_decref(root);
	return s;
}
