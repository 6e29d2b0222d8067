/* The PyTorch routing baseline, measured in the same run by scripts/bench-torch-routing.
 *
 * The routing cases go to the script as a JSON spec (method, E, K, groups, bias, dtype, T, the key
 * to report under, min_time, reps, threads); the script times torch's ops with the same discipline
 * (warm-up, samples >= min_time, repetitions) and writes Google Benchmark JSON with backend
 * "torch", which json_in.c reads back into the results. The script exits 3 when `import torch`
 * fails: the reason it prints is returned, and the run carries on without the baseline. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static enum moe_status dump(FILE *f, void *ctx)
{
	return json_dumpf(ctx, f, JSON_INDENT(1)) == 0 ? MOE_OK : moe_fail(MOE_ERR_IO, "torch: writing the spec failed");
}

bool moe_bench_run_torch(const char *script, const struct moe_bench_case *cases, size_t ncases,
			 const struct moe_bench_config *cfg, struct moe_bench_results *out, char *why, size_t n)
{
	if (access(script, R_OK) != 0) {
		snprintf(why, n, "%s not found", script);
		return false;
	}
	json_t *spec = json_object(), *arr = json_array();
	json_object_set_new(spec, "min_time", json_real(cfg->min_time));
	json_object_set_new(spec, "reps", json_integer(cfg->reps));
	json_object_set_new(spec, "threads", json_integer(cfg->threads));
	for (size_t i = 0; i < ncases; i++) {
		const struct moe_bench_case *c = &cases[i];
		if (c->op != MOE_OP_ROUTE)
			continue;
		const struct moe_route_params *p = &c->u.route.p;
		json_t *e = json_object();
		json_object_set_new(e, "key", json_string(c->key));
		json_object_set_new(e, "model", json_string(c->model));
		json_object_set_new(e, "method", json_string(moe_routing_method_name(p->method)));
		json_object_set_new(e, "experts", json_integer(p->num_experts));
		json_object_set_new(e, "top_k", json_integer(p->top_k));
		json_object_set_new(e, "n_group", json_integer(p->n_group));
		json_object_set_new(e, "topk_group", json_integer(p->topk_group));
		json_object_set_new(e, "renormalize", json_boolean(p->renormalize));
		json_object_set_new(e, "rsf", json_real(p->routed_scaling_factor));
		json_object_set_new(e, "logits_dtype", json_string(moe_dtype_name(p->logits_dtype)));
		json_object_set_new(e, "bias", json_boolean(p->bias_dtype != MOE_DTYPE_NONE));
		json_object_set_new(e, "tokens", json_integer(c->u.route.tokens));
		struct moe_bench_cost cost;
		moe_bench_cost_route(p, c->u.route.tokens, &cost);
		json_object_set_new(e, "bytes_per_call", json_real(cost.bytes));
		json_array_append_new(arr, e);
	}
	json_object_set_new(spec, "cases", arr);
	bool ok = false;
	if (json_array_size(arr) == 0) {
		snprintf(why, n, "no routing case in this run");
		json_decref(spec);
		return false;
	}
	char dir[] = "/tmp/moebench-torch-XXXXXX", in[64], res[64], cmd[8192];
	if (!mkdtemp(dir)) {
		snprintf(why, n, "cannot create a temporary directory");
		json_decref(spec);
		return false;
	}
	snprintf(in, sizeof in, "%s/spec.json", dir);
	snprintf(res, sizeof res, "%s/torch.json", dir);
	if (moe_bench_write_atomic(in, dump, spec) != MOE_OK) {
		snprintf(why, n, "%s", moe_last_error());
		goto out;
	}
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' --spec '%s' --json '%s' 2>&1", script, in, res);
	FILE *p = popen(cmd, "r");
	if (!p) {
		snprintf(why, n, "cannot run /usr/bin/python3");
		goto out;
	}
	char line[512], last[512] = "";
	while (fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(last, sizeof last, "%s", line);
		fprintf(stderr, "torch: %s\n", line);
	}
	int st = pclose(p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, n, "%s", last[0] ? last : "the script failed");
		goto out;
	}
	if (moe_bench_read_json(res, out) != MOE_OK) {
		snprintf(why, n, "%s", moe_last_error());
		goto out;
	}
	ok = true;
out:
	unlink(in);
	unlink(res);
	rmdir(dir);
	json_decref(spec);
	return ok;
}
