/* `moebench run`, the main job (also `moebench` with no command): in well under a minute, is every
 * kernel this CPU runs correct, and how fast is what dispatch runs?
 *
 * 1. verify --quick, in process (verify/engine.c), on every built-in table this CPU runs: the
 *    reference, each ISA table up to the hardware's (what dispatch runs at each MOE_MAX_ISA level)
 *    and every single-variant table on its own op. The layer variants are left to their ISA's
 *    table: each ISA table's layer slot runs its own ISA's layer variant first
 *    (kernels/layer/layer.inc, every weight format), and one layer table costs seconds;
 *    `moebench verify --quick` runs them on their own as well.
 * 2. A short bench of the dispatched table against the reference and OpenBLAS: routing, norm and
 *    expert at a decode and a prefill size, the layer at a decode and a prefill T, warm weights,
 *    one thread. It runs `moebench bench` as a child of this executable (/proc/self/exe), so the
 *    numbers come from exactly the code path of `moebench bench`, and reads its JSON.
 * 3. The tiny Cohere2-MoE preset once: `model init`, then `model bench` (prefill and decode).
 * Ends with a summary: PASS/FAIL counts, one speed row per benchmark, and the verdict.
 * Exit status: 0 when nothing FAILs and every step ran; 1 on a FAIL or a step that failed; 2 on a
 * usage error; 3 when verify could not get memory for some cases and nothing FAILed. */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "moe/moe.h"
#include "verify.h"

extern char **environ;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moebench run [--no-verify] [--no-bench] [--out DIR] [--jobs N]\n\n"
		"The main job (also what `moebench` alone runs), about a minute on 2 cores:\n"
		"  1. verify --quick of every built-in backend this CPU runs (the ISA tables and every\n"
		"     single-kernel variant; the layer variants through their ISA's table);\n"
		"  2. a short bench of the dispatched kernels against the reference and OpenBLAS on\n"
		"     Qwen3-30B-A3B shapes: route, norm and expert at a decode and a prefill size, the layer\n"
		"     (bf16) at T=1 and T=64, warm weights, one thread, with the roofline\n"
		"     fraction (calibrated ceilings; measured once and cached when missing);\n"
		"  3. the tiny Cohere2-MoE model (preset tiny-ln-softmax-avg): prefill and decode.\n"
		"It ends with a summary: PASS/FAIL counts and a small speed table.\n\n"
		"options:\n"
		"  --no-verify   skip step 1\n"
		"  --no-bench    skip steps 2 and 3\n"
		"  --out DIR     keep the bench and model JSON, the bench table and logs in DIR\n"
		"                (default: a temporary directory, removed at the end)\n"
		"  --jobs N      verify worker threads (default: the online CPUs, at most 16)\n"
		"  -h, --help    this text\n\n"
		"For the full picture: `moebench verify --quick` (every table on its own), `make bench`.\n"
		"exit status: 0 nothing FAILed and every step ran; 1 a FAIL, or a step that failed;\n"
		"2 usage error; 3 no FAIL, but some verify cases could not get their memory and did not run.\n");
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- step 1: verify ---- */

struct vcount {
	size_t n[4];
};

static void count_groups(const struct moe_vreport *rep, size_t from, struct vcount *c)
{
	for (size_t i = from; i < rep->n; i++)
		c->n[rep->g[i].status]++;
}

static void print_counts(const char *label, const struct vcount *c)
{
	printf("  %-34s %4zu PASS %4zu FAIL %4zu UNTRUSTED %4zu SKIP\n", label, c->n[MOE_V_PASS], c->n[MOE_V_FAIL],
	       c->n[MOE_V_UNTRUSTED], c->n[MOE_V_SKIP]);
}

static int run_verify(int jobs, struct moe_vreport *rep, struct vcount *total, int *ntables)
{
	const enum moe_isa hw = moe_isa_hardware();
	struct moe_verify_opts o = { .op_mask = (1u << MOE_OP_COUNT) - 1,
				     .profile_mask = (1u << MOE_PROFILE_COUNT) - 1,
				     .depth = MOE_DEPTH_QUICK, .seed = 1, .log = NULL, .jobs = jobs };
	struct vcount variants = { { 0 } };
	int nvariants = 0;
	printf("step 1/3: verify --quick (seed 1, %d job%s)\n", jobs, jobs == 1 ? "" : "s");
	for (size_t k = 0; k < moe_builtin_count(); k++) {
		const struct moe_builtin *bi = moe_builtin_at(k);
		const bool whole = bi->op >= MOE_OP_COUNT;
		if (bi->isa > hw || (!whole && bi->op == MOE_OP_LAYER))
			continue;
		const size_t first = rep->n;
		o.backend_arg = bi->table->name;
		o.op_mask = whole ? (1u << MOE_OP_COUNT) - 1 : 1u << bi->op;
		o.hide_declined = !whole;
		if (moe_verify_backend(bi->table, bi->isa, &o, rep) != MOE_OK) {
			fprintf(stderr, "moebench run: verify %s: %s\n", bi->table->name, moe_last_error());
			return -1;
		}
		struct vcount c = { { 0 } };
		count_groups(rep, first, &c);
		for (int s = 0; s < 4; s++)
			total->n[s] += c.n[s];
		if (whole) {
			char label[96];
			snprintf(label, sizeof label, "%s (every op)", bi->table->name);
			print_counts(label, &c);
		} else {
			for (int s = 0; s < 4; s++)
				variants.n[s] += c.n[s];
			nvariants++;
		}
		(*ntables)++;
		for (size_t g = first; g < rep->n; g++)
			if (rep->g[g].status == MOE_V_FAIL)
				moe_vreport_print_group(stdout, &rep->g[g], bi->table->name);
	}
	char label[96];
	snprintf(label, sizeof label, "%d single-kernel variants", nvariants);
	print_counts(label, &variants);
	return 0;
}

/* ---- children: this executable with other arguments ---- */

/* Runs /proc/self/exe ARGS with stdout to out_path and stderr to err_path (NULL: inherited);
 * returns its exit status, 128 + signal when killed, -1 when it could not start. */
static int run_self(char *const args[], const char *out_path, const char *err_path)
{
	char exe[4096];
	const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) {
		fprintf(stderr, "moebench run: cannot find this executable (/proc/self/exe): %s\n", strerror(errno));
		return -1;
	}
	exe[n] = '\0';
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (out_path)
		posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (err_path)
		posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *argv[64];
	int argc = 0;
	argv[argc++] = exe;
	for (int i = 0; args[i] && argc < 63; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	pid_t pid;
	fflush(NULL);
	const int e = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e) {
		fprintf(stderr, "moebench run: cannot start %s: %s\n", exe, strerror(e));
		return -1;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void show_tail(const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	static char buf[1 << 16];
	size_t n = 0;
	if (f) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	size_t start = n;
	while (start > 0 && lines >= 0)
		if (buf[--start] == '\n' && start + 1 < n)
			lines--;
	fprintf(stderr, "%s%s(full log: %s)\n", buf + (start ? start + 1 : 0), n && buf[n - 1] != '\n' ? "\n" : "",
		path);
}

/* ---- step 2: bench ---- */

struct speed_row {
	char what[64];
	double ns, roof, vs_ref, vs_blas, tok_s;
	char skipped[96];
};

#define MAX_ROWS 24

/* "expert/qwen3-30b-a3b/W=bf16.A=bf16/M:128/warm" -> "expert bf16 M=128" */
static void short_name(const char *op, const char *key, char *out, size_t n)
{
	char buf[192], shape[48] = "", fmt[48] = "";
	snprintf(buf, sizeof buf, "%s", key);
	char *save = NULL;
	int field = 0;
	for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save), field++) {
		char *colon = strchr(t, ':');
		if (field == 2) {
			const char *w = strncmp(t, "W=", 2) == 0 ? t + 2 : t;
			snprintf(fmt, sizeof fmt, "%.*s", (int)strcspn(w, ".-"), w);
		}
		if (colon && !shape[0]) {
			*colon = '\0';
			snprintf(shape, sizeof shape, "%s=%s", t, colon + 1);
		}
	}
	snprintf(out, n, "%s %s %s", op, fmt, shape);
}

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int read_bench(const char *path, const char *backend, struct speed_row *rows, int *nrows)
{
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	if (!root) {
		fprintf(stderr, "moebench run: cannot read %s: %s\n", path, err.text);
		return -1;
	}
	json_t *arr = json_object_get(root, "benchmarks"), *e;
	size_t i;
	json_array_foreach(arr, i, e) {
		const char *b = json_string_value(json_object_get(e, "backend"));
		const char *key = json_string_value(json_object_get(e, "key"));
		const char *op = json_string_value(json_object_get(e, "op"));
		const char *agg = json_string_value(json_object_get(e, "aggregate_name"));
		const bool error = json_is_true(json_object_get(e, "error_occurred"));
		if (!b || !key || !op || strcmp(b, backend) != 0 || !(error || (agg && !strcmp(agg, "median"))))
			continue;
		if (*nrows == MAX_ROWS)
			break;
		struct speed_row *r = &rows[(*nrows)++];
		memset(r, 0, sizeof *r);
		short_name(op, key, r->what, sizeof r->what);
		r->ns = num(e, "real_time");
		r->roof = num(e, "roofline_fraction");
		r->vs_ref = num(e, "speedup_vs_ref");
		r->vs_blas = num(e, "speedup_vs_openblas");
		r->tok_s = num(e, "tokens_per_second");
		if (error) {
			const char *m = json_string_value(json_object_get(e, "error_message"));
			snprintf(r->skipped, sizeof r->skipped, "%s", m ? m : "not run");
		}
	}
	json_decref(root);
	return 0;
}

static int run_bench(const char *dir, const char *backend, struct speed_row *rows, int *nrows)
{
	char json[8192], table[8192], log[8192];
	snprintf(json, sizeof json, "%s/bench.json", dir);
	snprintf(table, sizeof table, "%s/bench-table.txt", dir);
	snprintf(log, sizeof log, "%s/bench.log", dir);
	/* two children, both on Qwen3-30B-A3B shapes (the smallest layer of the real models: 128 bf16
	 * experts, H=2048, I=768): the per-op kernels, then the layer at T=1 and T=64, whose setup and
	 * pack dominate the step's time */
	char *ops[] = { "bench", "--backend", (char *)backend, "--op", "route,norm,expert", "--model",
			"qwen3-30b-a3b", "--shape", "T=1,512", "--shape", "M=1,128", "--shape", "rows=1,512",
			"--warm", "--reps", "7", "--min-time", "0.005", "--budget", "2", "--no-torch",
			"--json", json, NULL };
	printf("\nstep 2/3: bench of the dispatched kernels (%s) against ref and OpenBLAS, 1 thread, warm\n",
	       backend);
	int rc = run_self(ops, table, log);
	if (rc != 0 || read_bench(json, backend, rows, nrows) != 0) {
		fprintf(stderr, "moebench run: `moebench bench` (ops) exited with status %d; its log:\n", rc);
		show_tail(log, 8);
		return -1;
	}
	snprintf(json, sizeof json, "%s/bench-layer.json", dir);
	snprintf(table, sizeof table, "%s/bench-layer-table.txt", dir);
	snprintf(log, sizeof log, "%s/bench-layer.log", dir);
	char *layer[] = { "bench", "--backend", (char *)backend, "--op", "layer", "--model", "qwen3-30b-a3b",
			  "--shape", "T=1,64", "--warm", "--reps", "7", "--min-time", "0.005", "--budget", "3",
			  "--no-torch", "--json", json, NULL };
	rc = run_self(layer, table, log);
	if (rc != 0 || read_bench(json, backend, rows, nrows) != 0) {
		fprintf(stderr, "moebench run: `moebench bench` (layer) exited with status %d; its log:\n", rc);
		show_tail(log, 8);
		return -1;
	}
	return 0;
}

/* ---- step 3: the tiny model ---- */

static int run_model(const char *dir, double *prefill_tok_s, double *decode_tok_s)
{
	char mdir[8192], json[8192], log[8192];
	snprintf(mdir, sizeof mdir, "%s/tiny-model", dir);
	snprintf(json, sizeof json, "%s/model.json", dir);
	snprintf(log, sizeof log, "%s/model.log", dir);
	printf("\nstep 3/3: the tiny Cohere2-MoE model (preset tiny-ln-softmax-avg): prefill 64 tokens, decode\n");
	char *init[] = { "model", "init", "--out", mdir, "--preset", "tiny-ln-softmax-avg", NULL };
	char *bench[] = { "model", "bench", "--model", mdir, "--threads", "1", "--prompt-lengths", "64",
			  "--contexts", "64", "--json", json, NULL };
	int rc = run_self(init, log, log);
	if (rc == 0)
		rc = run_self(bench, log, log);
	if (rc != 0) {
		fprintf(stderr, "moebench run: `moebench model` exited with status %d; its log:\n", rc);
		show_tail(log, 8);
		return -1;
	}
	json_error_t err;
	json_t *root = json_load_file(json, 0, &err), *e;
	if (!root) {
		fprintf(stderr, "moebench run: cannot read %s: %s\n", json, err.text);
		return -1;
	}
	size_t i;
	json_array_foreach(json_object_get(root, "benchmarks"), i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		if (name && !strncmp(name, "model/prefill/", 14) && isnan(*prefill_tok_s))
			*prefill_tok_s = num(e, "items_per_second");
		if (name && !strncmp(name, "model/decode/", 13) && isnan(*decode_tok_s))
			*decode_tok_s = num(e, "items_per_second");
	}
	json_decref(root);
	return isnan(*prefill_tok_s) || isnan(*decode_tok_s) ? -1 : 0;
}

/* ---- summary ---- */

static void fmt_time(double ns, char *out, size_t n)
{
	if (!isfinite(ns))
		snprintf(out, n, "-");
	else if (ns < 1e3)
		snprintf(out, n, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(out, n, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(out, n, "%.2f ms", ns / 1e6);
	else
		snprintf(out, n, "%.2f s", ns / 1e9);
}

static void fmt_x(double v, char *out, size_t n)
{
	if (isfinite(v))
		snprintf(out, n, "%.1fx", v);
	else
		snprintf(out, n, "-");
}

static void fmt_rate(double v, char *out, size_t n)
{
	if (!isfinite(v))
		snprintf(out, n, "-");
	else if (v >= 1e6)
		snprintf(out, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, n, "%.1fk", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

static int rmrf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int moe_cmd_run(int argc, char **argv)
{
	enum { O_NO_VERIFY = 256, O_NO_BENCH, O_OUT, O_JOBS };
	static const struct option longopts[] = {
		{ "no-verify", no_argument, NULL, O_NO_VERIFY }, { "no-bench", no_argument, NULL, O_NO_BENCH },
		{ "out", required_argument, NULL, O_OUT },       { "jobs", required_argument, NULL, O_JOBS },
		{ "help", no_argument, NULL, 'h' },              { NULL, 0, NULL, 0 },
	};
	bool verify = true, bench = true;
	const char *out = NULL;
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_NO_VERIFY: verify = false; break;
		case O_NO_BENCH: bench = false; break;
		case O_OUT: out = optarg; break;
		case O_JOBS: {
			char *end;
			jobs = strtol(optarg, &end, 10);
			if (end == optarg || *end || jobs < 1 || jobs > 16) {
				fprintf(stderr, "moebench run: --jobs %s is not an integer in [1, 16]\n", optarg);
				return 2;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		default:
			moe_cli_bad_option("run", argv[optind - 1], longopts);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moebench run: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (jobs < 1)
		jobs = 1;
	if (jobs > 16)
		jobs = 16;
	setvbuf(stdout, NULL, _IOLBF, 0);

	const double t0 = now_s();
	const char *backend = moe_backend_dispatched()->name;
	printf("moebench %s: the main job on this CPU (hardware %s, dispatch %s)\n\n", MOE_VERSION_STRING,
	       moe_isa_name(moe_isa_hardware()), backend);

	char dir[4096];
	bool remove_dir = false;
	if (bench) {
		if (out) {
			snprintf(dir, sizeof dir, "%s", out);
			if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
				fprintf(stderr, "moebench run: cannot create %s: %s\n", dir, strerror(errno));
				return 2;
			}
		} else {
			const char *tmp = getenv("TMPDIR");
			snprintf(dir, sizeof dir, "%s/moebench-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
			if (!mkdtemp(dir)) {
				fprintf(stderr, "moebench run: cannot create a temporary directory %s: %s\n", dir,
					strerror(errno));
				return 1;
			}
			remove_dir = true;
		}
	}

	int rc = 0, ntables = 0;
	struct moe_vreport rep = { 0 };
	struct vcount vc = { { 0 } };
	double tv = 0;
	if (verify) {
		const double t = now_s();
		if (run_verify((int)jobs, &rep, &vc, &ntables) != 0)
			rc = 1;
		tv = now_s() - t;
	}
	struct speed_row rows[MAX_ROWS];
	int nrows = 0;
	double prefill = NAN, decode = NAN, tb = 0;
	bool bench_ok = true, model_ok = true;
	if (bench) {
		const double t = now_s();
		bench_ok = run_bench(dir, backend, rows, &nrows) == 0;
		model_ok = run_model(dir, &prefill, &decode) == 0;
		tb = now_s() - t;
		if (!bench_ok || !model_ok)
			rc = 1;
	}

	printf("\n== summary ==\n");
	if (verify) {
		printf("verify: %zu PASS, %zu FAIL, %zu UNTRUSTED, %zu SKIP  (case groups; %d tables, %lld cases, %.1f s)\n",
		       vc.n[MOE_V_PASS], vc.n[MOE_V_FAIL], vc.n[MOE_V_UNTRUSTED], vc.n[MOE_V_SKIP], ntables,
		       (long long)rep.cases, tv);
		if (vc.n[MOE_V_FAIL])
			rc = 1;
		else if (rep.nomem && rc == 0) {
			printf("verify: %lld case(s) could not get their memory and did not run\n", (long long)rep.nomem);
			rc = 3;
		}
	} else {
		printf("verify: not run (--no-verify)\n");
	}
	if (bench) {
		printf("speed of the dispatched kernels (%s, 1 thread, warm weights; %.1f s):\n", backend, tb);
		printf("  %-26s %10s %9s %8s %9s %10s\n", "benchmark", "median", "roofline", "vs ref", "vs BLAS",
		       "tokens/s");
		for (int i = 0; i < nrows; i++) {
			const struct speed_row *r = &rows[i];
			char t[32], roof[32], x1[32], x2[32], tok[32];
			if (r->skipped[0]) {
				printf("  %-26s skipped: %.70s\n", r->what, r->skipped);
				continue;
			}
			fmt_time(r->ns, t, sizeof t);
			if (isfinite(r->roof))
				snprintf(roof, sizeof roof, "%.1f%%", 100 * r->roof);
			else
				snprintf(roof, sizeof roof, "-");
			fmt_x(r->vs_ref, x1, sizeof x1);
			fmt_x(r->vs_blas, x2, sizeof x2);
			fmt_rate(r->tok_s, tok, sizeof tok);
			printf("  %-26s %10s %9s %8s %9s %10s\n", r->what, t, roof, x1, x2, tok);
		}
		if (!bench_ok)
			printf("  bench: FAILED (see above)\n");
		if (model_ok) {
			char p[32], d[32];
			fmt_rate(prefill, p, sizeof p);
			fmt_rate(decode, d, sizeof d);
			printf("  %-26s %10s %9s %8s %9s %10s\n", "model tiny prefill T=64", "", "", "", "", p);
			printf("  %-26s %10s %9s %8s %9s %10s\n", "model tiny decode ctx=64", "", "", "", "", d);
		} else {
			printf("  model: FAILED (see above)\n");
		}
		printf("  (roofline: fraction of the calibrated ceiling; vs ref / vs BLAS: speedup over the scalar\n"
		       "   reference and OpenBLAS in the same run; full table: moebench bench, make bench)\n");
	} else {
		printf("bench: not run (--no-bench)\n");
	}
	printf("%s: %s in %.1f s\n", rc == 0 ? "PASS" : "FAIL",
	       rc == 0 ? "every check passed" : rc == 3 ? "incomplete verdict" : "see above", now_s() - t0);
	if (out && bench)
		printf("results kept in %s\n", out);
	if (remove_dir)
		nftw(dir, rmrf_one, 16, FTW_DEPTH | FTW_PHYS);
	moe_vreport_free(&rep);
	return rc;
}
