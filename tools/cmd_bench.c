/* `moebench bench`: run the benchmark suite and write its results.
 *
 * Options select backends, ops, models and shapes; the measurement discipline (min-time, reps,
 * threads, copies, budget, warm/cold) goes to the engine in bench/. --threads N: one call on N
 * threads, a host pool (moe/threads.h) pinned to N distinct cores and handed to the kernels;
 * --copies N: N independent single-thread instances at once (throughput); --scaling: the layer and
 * expert prefill at 1..cores threads. A measurement on fewer cores than threads is warned about on
 * stderr, in the table and in context.json. The roofline ceilings come from the
 * calibration cache (measured first when missing or from another machine). Outputs: JSON (Google
 * Benchmark schema), CSV, context and table, each written atomically, also after Ctrl-C with what
 * was measured so far (exit status 130 then). Exit 2 on bad options, 1 when the run failed. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli_util.h"
#include "commands.h"
#include "isolate.h"
#include "plugin.h"

#define MOE_MAX_PLUGINS 8

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moebench bench [--backend NAME|PATH.so]... [--op OP[,OP...]] [--model NAME[,NAME...]]\n"
		"                      [--shape T=..|M=..|rows=..|E=..|K=..|G=..|TG=..] [--method M[,M...]]\n"
		"                      [--threads N | --copies N] [--scaling] [--min-time S] [--reps N]\n"
		"                      [--cold|--warm] [--json FILE] [--csv FILE] [--out DIR] [options]\n\n"
		"Measures every op the backends provide on the shapes of real models (DeepSeek-V3, Qwen3-30B-A3B,\n"
		"Command A+, MiniMax-M2, gpt-oss, Mixtral) and reports time, GFLOP/s, GB/s, tokens/s, the fraction\n"
		"of the measured roofline and the speedup against the reference and the baselines of the same run.\n\n"
		"  --backend B        a built-in backend (see `moebench info`) or a plugin .so; repeatable.\n"
		"                     Default: the table dispatch picks on this CPU (with --variants: also\n"
		"                     every single-kernel variant this CPU runs), plus the reference and the\n"
		"                     baselines.\n"
		"  --variants         also every single-kernel variant this CPU runs (kernel authors: which\n"
		"                     variant wins where); the default suite measures what users run\n"
		"  --op LIST          route, norm, quantize, dequantize, expert, layer (default: all)\n"
		"  --model LIST       qwen3-30b-a3b, deepseek-v3, command-a-plus, minimax-m2, gpt-oss-20b,\n"
		"                     mixtral-8x7b (default: all)\n"
		"  --shape K=V[,V]    replace a shape list: T (routing and layer tokens), M (tokens per expert),\n"
		"                     rows (norm rows); or, with --method, one value of E, K, G or TG for the\n"
		"                     synthetic router; repeatable\n"
		"  --method LIST      time these routing methods (Default, Renormalize, DeepSeekV3, Llama4,\n"
		"                     RenormalizeNaive, TopK, SigmoidRenorm, MiniMax2, Sigmoid, TopKSigmoid, or\n"
		"                     all) on a synthetic router instead of the models': E=128 K=8 (DeepSeekV3\n"
		"                     E=256 G=8 TG=4 rsf 2.5; Llama4 K=1), fp32 logits, normal(0,1); implies\n"
		"                     --op route unless --op is given\n"
		"  --profile LIST     flashinfer, vllm, hf: the profiles --method runs (default vllm)\n"
		"  --logits DTYPE     f32 or bf16 logits for --method (default f32)\n"
		"  --threads N        one call on N threads: a host pool pinned to N distinct cores, handed to the\n"
		"                     kernels (the backends' _mt slots; a table without them runs on one) (default 1)\n"
		"  --copies N         throughput mode: N independent single-thread instances run concurrently,\n"
		"                     one per pinned core; rates count all N (not with --threads)\n"
		"  --scaling          the layer and the expert prefill (M >= 64) at 1, 2, .. cores threads (or\n"
		"                     up to --threads N), with the speedup over one thread\n"
		"  --min-time S       seconds per sample, at least (default 0.02)\n"
		"  --reps N           repetitions, %d..%d (default 7)\n"
		"  --budget S         seconds a benchmark should take (default 20; 0 = unlimited): long calls\n"
		"                     run fewer repetitions (down to %d, each one call, reported with the count);\n"
		"                     a benchmark whose %d repetitions would exceed S is skipped with the reason\n"
		"  --weights FMT      expert and layer cases in FMT instead of each model's format: f32,\n"
		"                     bf16 (bf16 activations), fp8 (128x128 blocks, 1x128 fp8 activations),\n"
		"                     nvfp4 (W4A4), mxfp4 (bf16 activations)\n"
		"  --cold, --warm     expert and layer benchmarks cold only (weights, and for the layer the\n"
		"                     routed experts, rotated through > 2x the LLC) or warm only (default: both)\n"
		"  --quick            fewer models and shapes\n"
		"  --json FILE, --csv FILE   write the results there\n"
		"  --out DIR          write DIR/bench.json, bench.csv, context.json and table.txt\n"
		"  --no-baselines     only the selected backends (no reference, OpenBLAS, ggml or PyTorch rows)\n"
		"                     (ggml's MoE graph is a layer baseline when ggml was found at configure time)\n"
		"  --no-torch         no PyTorch routing baseline\n"
		"  --torch-script F   the PyTorch script (default %s/scripts/bench-torch-routing)\n"
		"  --calibration F    calibration cache (default $XDG_CACHE_HOME/moebench/calibration.json,\n"
		"                     else ~/.cache/moebench/calibration.json)\n"
		"  --no-calibrate     do not measure the ceilings when the cache is missing (no roofline)\n"
		"  --list             print the benchmark cases and exit\n"
		"  --machine-name     print the machine's short name (results/<machine>-<date>) and exit\n"
		"  --plugin-timeout S seconds one call of a plugin (or its load) may take before it is killed\n"
		"                     (default %g). Plugins run in child processes: one that crashes, hangs or\n"
		"                     exits gives a FAILED row with the signal or status, the run goes on, and\n"
		"                     the exit status is 1\n",
		MOE_BENCH_MIN_REPS, MOE_BENCH_MAX_REPS, MOE_BENCH_FLOOR_REPS, MOE_BENCH_FLOOR_REPS, MOE_SOURCE_DIR,
		MOE_ISOLATE_DEFAULT_TIMEOUT);
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_int(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

/* "Default,Sigmoid" or "all" into 1 << method bits; false with moe_last_error() naming the bad one. */
static bool parse_methods(char *arg, unsigned *mask)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		enum moe_routing_method m;
		if (!strcmp(tok, "all"))
			*mask |= (1u << MOE_ROUTE_METHOD_COUNT) - 1;
		else if (moe_routing_method_parse(tok, &m) != MOE_OK || m >= MOE_ROUTE_METHOD_COUNT)
			return false;
		else
			*mask |= 1u << m;
	}
	return *mask != 0;
}

/* "T=1,16,256" into the option's list; "E=128" (also K, G, TG) into the synthetic router. */
static bool parse_shape(const char *arg, struct moe_bench_options *o)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", arg);
	char *eq = strchr(buf, '=');
	if (!eq)
		return false;
	*eq = '\0';
	int32_t *one = !strcmp(buf, "E") ? &o->route_E : !strcmp(buf, "K") ? &o->route_K :
		       !strcmp(buf, "G") ? &o->route_G : !strcmp(buf, "TG") ? &o->route_TG : NULL;
	if (one) {
		long v;
		if (!parse_int(eq + 1, &v) || v < 1 || v > 4096)
			return false;
		*one = (int32_t)v;
		return true;
	}
	int64_t *list;
	int *n;
	if (!strcmp(buf, "T"))
		list = o->shape_T, n = &o->n_T;
	else if (!strcmp(buf, "M"))
		list = o->shape_M, n = &o->n_M;
	else if (!strcmp(buf, "rows"))
		list = o->shape_rows, n = &o->n_rows;
	else
		return false;
	*n = 0;
	for (char *tok = strtok(eq + 1, ","); tok; tok = strtok(NULL, ",")) {
		long v;
		if (*n == 16 || !parse_int(tok, &v) || v < 1 || v > (1L << 24))
			return false;
		list[(*n)++] = v;
	}
	return *n > 0;
}

struct outputs {
	const char *json, *csv, *out_dir;
};

static enum moe_status dump_context(FILE *f, void *ctx)
{
	return json_dumpf(ctx, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF
		       ? MOE_OK
		       : moe_fail(MOE_ERR_IO, "bench: writing context.json failed");
}

static enum moe_status write_outputs(const struct outputs *w, const struct moe_bench_results *r, json_t *ctx)
{
	enum moe_status s = MOE_OK;
	char path[4096];
	if (w->out_dir) {
		if ((s = moe_bench_mkdirs(w->out_dir)) != MOE_OK)
			return s;
		snprintf(path, sizeof path, "%s/bench.json", w->out_dir);
		if ((s = moe_bench_write_json(path, r, ctx)) != MOE_OK)
			return s;
		snprintf(path, sizeof path, "%s/bench.csv", w->out_dir);
		if ((s = moe_bench_write_csv(path, r)) != MOE_OK)
			return s;
		snprintf(path, sizeof path, "%s/context.json", w->out_dir);
		if ((s = moe_bench_write_atomic(path, dump_context, ctx)) != MOE_OK)
			return s;
		snprintf(path, sizeof path, "%s/table.txt", w->out_dir);
		if ((s = moe_bench_write_table(path, r)) != MOE_OK)
			return s;
	}
	if (w->json && (s = moe_bench_write_json(w->json, r, ctx)) != MOE_OK)
		return s;
	if (w->csv && (s = moe_bench_write_csv(w->csv, r)) != MOE_OK)
		return s;
	return s;
}

static void load_calibration(const char *path_opt, bool may_calibrate, const struct moe_bench_topo *topo,
			     struct moe_calibration *cal)
{
	char path[4096], fp[256];
	memset(cal, 0, sizeof *cal);
	if (path_opt)
		snprintf(path, sizeof path, "%s", path_opt);
	else if (moe_bench_calibration_path(path, sizeof path) != MOE_OK) {
		fprintf(stderr, "bench: %s\n", moe_last_error());
		path[0] = '\0';
	}
	moe_bench_fingerprint(topo, fp, sizeof fp);
	if (path[0] && moe_bench_calibration_load(path, fp, cal) == MOE_OK) {
		fprintf(stderr, "bench: roofline ceilings from %s (measured %s)\n", path, cal->date);
		return;
	}
	if (!may_calibrate) {
		fprintf(stderr, "bench: no calibration (%s): roofline fractions left empty\n", moe_last_error());
		return;
	}
	fprintf(stderr, "bench: calibrating the roofline ceilings (%s)\n", moe_last_error());
	if (moe_bench_calibrate(topo, 0.02, true, cal) != MOE_OK) {
		fprintf(stderr, "bench: calibration failed: %s: roofline fractions left empty\n", moe_last_error());
		cal->count = 0;
		return;
	}
	if (path[0] && moe_bench_calibration_save(path, cal) != MOE_OK)
		fprintf(stderr, "bench: %s\n", moe_last_error());
	else if (path[0])
		fprintf(stderr, "bench: calibration cached in %s\n", path);
}

int moe_cmd_bench(int argc, char **argv)
{
	enum { O_MIN_TIME = 256, O_BUDGET, O_COLD, O_WARM, O_QUICK, O_JSON, O_CSV, O_OUT, O_NO_BASE, O_NO_TORCH,
	       O_TORCH, O_CAL, O_NO_CAL, O_LIST, O_MACHINE, O_METHOD, O_PROFILE, O_LOGITS, O_COPIES, O_SCALING,
	       O_PLUGIN_TIMEOUT, O_WEIGHTS, O_VARIANTS };
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' }, { "op", required_argument, NULL, 'o' },
		{ "model", required_argument, NULL, 'm' }, { "shape", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' }, { "reps", required_argument, NULL, 'r' },
		{ "min-time", required_argument, NULL, O_MIN_TIME }, { "budget", required_argument, NULL, O_BUDGET },
		{ "cold", no_argument, NULL, O_COLD }, { "warm", no_argument, NULL, O_WARM },
		{ "quick", no_argument, NULL, O_QUICK }, { "json", required_argument, NULL, O_JSON },
		{ "csv", required_argument, NULL, O_CSV }, { "out", required_argument, NULL, O_OUT },
		{ "no-baselines", no_argument, NULL, O_NO_BASE }, { "no-torch", no_argument, NULL, O_NO_TORCH },
		{ "torch-script", required_argument, NULL, O_TORCH },
		{ "calibration", required_argument, NULL, O_CAL }, { "no-calibrate", no_argument, NULL, O_NO_CAL },
		{ "list", no_argument, NULL, O_LIST }, { "machine-name", no_argument, NULL, O_MACHINE },
		{ "method", required_argument, NULL, O_METHOD }, { "profile", required_argument, NULL, O_PROFILE },
		{ "logits", required_argument, NULL, O_LOGITS }, { "copies", required_argument, NULL, O_COPIES },
		{ "scaling", no_argument, NULL, O_SCALING }, { "weights", required_argument, NULL, O_WEIGHTS },
		{ "variants", no_argument, NULL, O_VARIANTS },
		{ "plugin-timeout", required_argument, NULL, O_PLUGIN_TIMEOUT },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct moe_bench_options o = { .cfg = { .min_time = 0.02, .reps = 7, .threads = 1, .copies = 1, .budget = 20 } };
	struct outputs w = { 0 };
	const char *backend_args[16], *torch_script = MOE_SOURCE_DIR "/scripts/bench-torch-routing", *cal_path = NULL;
	char model_buf[512] = "";
	size_t nbackend_args = 0, nmodels = 0;
	bool baselines = true, torch = true, calibrate = true, machine_only = false, variants = false;
	int c;
	/* a line at a time: piped output is complete up to the last line whatever happens later */
	setvbuf(stdout, NULL, _IOLBF, 0);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		double d;
		long l;
		switch (c) {
		case 'b':
			if (nbackend_args == 16) {
				fprintf(stderr, "moebench bench: at most 16 --backend options\n");
				return 2;
			}
			backend_args[nbackend_args++] = optarg;
			break;
		case 'o':
			for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
				enum moe_op op;
				if (moe_op_parse(tok, &op) != MOE_OK) {
					fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
					return 2;
				}
				o.op_mask |= 1u << op;
			}
			break;
		case O_WEIGHTS:
			if (!moe_bench_weights_valid(optarg)) {
				fprintf(stderr, "moebench bench: bad --weights '%s' (f32, bf16, fp8, nvfp4 or mxfp4)\n", optarg);
				return 2;
			}
			o.weights = optarg;
			break;
		case 'm': {
			size_t used = strlen(model_buf);
			snprintf(model_buf + used, sizeof model_buf - used, "%s%s", used ? "," : "", optarg);
			break;
		}
		case 's':
			if (!parse_shape(optarg, &o)) {
				fprintf(stderr, "moebench bench: bad --shape '%s' (T=, M= or rows= followed by up to 16 "
						"positive integers separated by commas, or one of E=, K=, G=, TG= with one "
						"positive integer up to 4096)\n", optarg);
				return 2;
			}
			break;
		case 't':
			if (!parse_int(optarg, &l) || l < 1 || l > 256) {
				fprintf(stderr, "moebench bench: bad --threads '%s' (threads of one call, 1..256)\n", optarg);
				return 2;
			}
			o.cfg.threads = (int)l;
			break;
		case O_COPIES:
			if (!parse_int(optarg, &l) || l < 1 || l > 64) {
				fprintf(stderr, "moebench bench: bad --copies '%s' (concurrent instances, 1..64)\n", optarg);
				return 2;
			}
			o.cfg.copies = (int)l;
			break;
		case O_SCALING: o.scaling = true; break;
		case O_VARIANTS: variants = true; break;
		case 'r':
			if (!parse_int(optarg, &l) || l < MOE_BENCH_MIN_REPS || l > MOE_BENCH_MAX_REPS) {
				fprintf(stderr, "moebench bench: bad --reps '%s' (%d..%d)\n", optarg, MOE_BENCH_MIN_REPS,
					MOE_BENCH_MAX_REPS);
				return 2;
			}
			o.cfg.reps = (int)l;
			break;
		case O_MIN_TIME:
			if (!parse_double(optarg, &d) || !(d >= 0.001 && d <= 60)) {
				fprintf(stderr, "moebench bench: bad --min-time '%s' (seconds, 0.001..60)\n", optarg);
				return 2;
			}
			o.cfg.min_time = d;
			break;
		case O_BUDGET:
			if (!parse_double(optarg, &d) || !(d >= 0)) {
				fprintf(stderr, "moebench bench: bad --budget '%s' (seconds >= 0)\n", optarg);
				return 2;
			}
			o.cfg.budget = d;
			break;
		case O_COLD: o.warm_cold = 2; break;
		case O_WARM: o.warm_cold = 1; break;
		case O_QUICK: o.quick = true; break;
		case O_JSON: w.json = optarg; break;
		case O_CSV: w.csv = optarg; break;
		case O_OUT: w.out_dir = optarg; break;
		case O_NO_BASE: baselines = false; break;
		case O_NO_TORCH: torch = false; break;
		case O_TORCH: torch_script = optarg; break;
		case O_CAL: cal_path = optarg; break;
		case O_NO_CAL: calibrate = false; break;
		case O_LIST: o.list_only = true; break;
		case O_MACHINE: machine_only = true; break;
		case O_METHOD: {
			char arg[256];
			snprintf(arg, sizeof arg, "%s", optarg);
			if (!parse_methods(arg, &o.route_methods)) {
				fprintf(stderr, "moebench bench: bad --method '%s': %s\n", optarg, moe_last_error());
				return 2;
			}
			break;
		}
		case O_PROFILE:
			for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
				enum moe_profile pr;
				if (moe_profile_parse(tok, &pr) != MOE_OK) {
					fprintf(stderr, "moebench bench: bad --profile: %s\n", moe_cli_unprefix("bench", moe_last_error()));
					return 2;
				}
				o.route_profiles |= 1u << pr;
			}
			break;
		case O_LOGITS:
			if (strcmp(optarg, "f32") != 0 && strcmp(optarg, "bf16") != 0) {
				fprintf(stderr, "moebench bench: bad --logits '%s' (f32 or bf16)\n", optarg);
				return 2;
			}
			o.route_logits = strcmp(optarg, "bf16") == 0 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
			break;
		case O_PLUGIN_TIMEOUT:
			if (!parse_double(optarg, &d) || !(d > 0) || d > 1e6) {
				fprintf(stderr, "moebench bench: --plugin-timeout %s is not a number of seconds in (0, 1e6]\n",
					optarg);
				return 2;
			}
			moe_isolate_set_timeout(d);
			break;
		case 'h': usage(stdout); return 0;
		default:
			moe_cli_bad_option("bench", argv[optind - 1], longopts);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moebench bench: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	for (char *tok = strtok(model_buf, ","); tok && nmodels < 15; tok = strtok(NULL, ","))
		o.models[nmodels++] = tok;
	if (!o.route_methods && (o.route_profiles || o.route_logits || o.route_E || o.route_K || o.route_G || o.route_TG)) {
		fprintf(stderr, "moebench bench: --profile, --logits and --shape E=/K=/G=/TG= apply to --method only\n");
		return 2;
	}
	if (o.cfg.threads > 1 && o.cfg.copies > 1) {
		fprintf(stderr, "moebench bench: --threads %d and --copies %d: choose one call on N threads (--threads) "
				"or N single-thread copies (--copies)\n", o.cfg.threads, o.cfg.copies);
		return 2;
	}
	if (o.scaling && o.cfg.copies > 1) {
		fprintf(stderr, "moebench bench: --scaling times one call at 1..N threads; it does not take --copies\n");
		return 2;
	}
	if (o.scaling && o.route_methods) {
		fprintf(stderr, "moebench bench: --scaling runs the layer and expert prefill; it does not take --method\n");
		return 2;
	}
	if (o.route_methods && !o.op_mask)
		o.op_mask = 1u << MOE_OP_ROUTE;
	if (o.route_methods && nmodels) {
		fprintf(stderr, "moebench bench: --method replaces the models' routers; give --op to time other ops of "
				"--model in a separate run\n");
		return 2;
	}

	struct moe_bench_topo topo;
	moe_bench_topo_get(&topo);
	if (machine_only) {
		char name[128];
		moe_bench_machine_name(&topo, name, sizeof name);
		printf("%s\n", name);
		return 0;
	}

	struct moe_bench_case *cases = NULL;
	size_t ncases = 0;
	if (moe_bench_build_cases(&o, &cases, &ncases) != MOE_OK) {
		fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
		return 2;
	}
	if (o.list_only) {
		for (size_t i = 0; i < ncases; i++)
			printf("%s\n", cases[i].key);
		free(cases);
		return 0;
	}

	/* Backends: the selected ones (default: every built-in this CPU runs), then the reference and the
	 * baselines measured alongside. */
	struct moe_bench_backend_ref backends[64];
	struct moe_plugin *plugins[MOE_MAX_PLUGINS];
	size_t nb = 0, np = 0;
	int rc = 0;
	const enum moe_isa hw = moe_isa_hardware();
	if (baselines || nbackend_args == 0)
		backends[nb++] = (struct moe_bench_backend_ref){ moe_backend_reference(), false, false };
	for (size_t i = 0; i < nbackend_args && rc == 0; i++) {
		const struct moe_backend *b = NULL;
		bool whole = false;
		if (moe_plugin_is_path(backend_args[i])) {
			if (np == MOE_MAX_PLUGINS || moe_plugin_open(backend_args[i], &plugins[np]) != MOE_OK) {
				fprintf(stderr, "moebench bench: %s\n", np == MOE_MAX_PLUGINS ? "too many plugins" : moe_last_error());
				rc = 2;
				break;
			}
			b = moe_plugin_backend(plugins[np++]);
		} else {
			const struct moe_builtin *bi = moe_builtin_find(backend_args[i]);
			if (!bi) {
				fprintf(stderr, "moebench bench: unknown backend '%s' (see `moebench info`)\n", backend_args[i]);
				rc = 2;
				break;
			}
			if (bi->isa > hw) {
				fprintf(stderr, "moebench bench: backend '%s' needs %s; this CPU has %s\n", backend_args[i],
					moe_isa_name(bi->isa), moe_isa_name(hw));
				rc = 2;
				break;
			}
			b = bi->table;
			whole = bi->op == MOE_OP_COUNT && b != moe_backend_reference();
		}
		bool dup = false;
		for (size_t k = 0; k < nb; k++)
			dup |= backends[k].b == b;
		if (!dup && nb < 63)
			backends[nb++] = (struct moe_bench_backend_ref){ b, whole, moe_plugin_is_path(backend_args[i]) };
	}
	/* Default: the table dispatch picks (what users run); with --variants first every single-variant
	 * table this CPU runs (every optimized kernel measured, not only the one dispatch picks; the
	 * suite skips a slot already measured, so the dispatched table then only adds rows where it
	 * runs something no variant does). */
	for (size_t i = 1; nbackend_args == 0 && variants && i < moe_builtin_count() && nb < 62; i++) {
		const struct moe_builtin *bi = moe_builtin_at(i);
		if (bi->op == MOE_OP_COUNT)
			continue;
		if (bi->isa <= hw)
			backends[nb++] = (struct moe_bench_backend_ref){ bi->table, false, false };
		else
			fprintf(stderr, "bench: skipping %s (needs %s, this CPU has %s)\n", bi->table->name,
				moe_isa_name(bi->isa), moe_isa_name(hw));
	}
	if (nbackend_args == 0 && moe_backend_dispatched() != moe_backend_reference())
		backends[nb++] = (struct moe_bench_backend_ref){ moe_backend_dispatched(), true, false };
	if (baselines && nb < 64)
		backends[nb++] = (struct moe_bench_backend_ref){ moe_bench_baseline_openblas(), false, false };
	const struct moe_backend *ggml[2] = { moe_bench_baseline_ggml_bf16(), moe_bench_baseline_ggml_q4_0() };
	for (int i = 0; i < 2 && baselines && nb < 64; i++)
		if (ggml[i])
			backends[nb++] = (struct moe_bench_backend_ref){ ggml[i], false, false };

	struct moe_bench_results results = { 0 };
	struct moe_bench_pool *pool = NULL;
	json_t *ctx = NULL;
	if (rc != 0)
		goto out;
	if (baselines && (o.op_mask == 0 || (o.op_mask & (1u << MOE_OP_LAYER))))
		snprintf(results.ggml_note, sizeof results.ggml_note, "ggml baseline: %s", moe_bench_ggml_status());

	struct moe_calibration cal;
	load_calibration(cal_path, calibrate, &topo, &cal);
	char papi_why[256] = "";
	const bool counters = moe_bench_papi_init(papi_why, sizeof papi_why);
	if (!counters)
		fprintf(stderr, "hardware counters unavailable: %s\n", papi_why);
	/* The copies' pool (pins the caller, thread 0, to the first allowed core). */
	if (moe_bench_pool_create(o.cfg.copies, &pool) != MOE_OK) {
		fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
		rc = 1;
		goto out;
	}
	const int cores = moe_bench_cores_available();
	char binding[2048];
	snprintf(binding, sizeof binding, "%s", moe_bench_pool_binding(pool));
	if (o.cfg.copies > cores)
		snprintf(results.warning, sizeof results.warning, "--copies %d on %d core%s this process may use: "
			 "copies share cores, rates are not %d cores' worth", o.cfg.copies, cores, cores == 1 ? "" : "s",
			 o.cfg.copies);
	if (strstr(binding, "not pinned"))
		snprintf(results.warning + strlen(results.warning), sizeof results.warning - strlen(results.warning),
			 "%spinning failed (%s)", results.warning[0] ? "; " : "", binding);

	/* Thread counts: one pass at --threads, or 1..max for --scaling. */
	int first = o.cfg.threads, last = o.cfg.threads;
	if (o.scaling) {
		first = 1;
		last = o.cfg.threads > 1 ? o.cfg.threads : cores;
	}
	fprintf(stderr, "bench: %zu cases, %zu backends, %s (%d core%s available; copies: %s)\n", ncases, nb,
		o.cfg.copies > 1 ? "throughput mode" : "one call at a time", cores, cores == 1 ? "" : "s", binding);
	moe_bench_install_sigint();
	enum moe_status s = MOE_OK;
	for (int n = first; n <= last && s == MOE_OK && !moe_bench_interrupted(); n++) {
		struct moe_pool *mp = NULL;
		int cpus[256], distinct = 1;
		if (n > 1) {
			distinct = moe_bench_pick_cpus(n, cpus);
			if (moe_pool_create(n, cpus, &mp) != MOE_OK) {
				fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
				rc = 1;
				break;
			}
			if (moe_pool_pin_caller(mp) != MOE_OK)
				distinct = 1;
			const char *bind = moe_pool_binding(mp);
			bool failed = strstr(bind, "failed") || strstr(bind, "unpinned");
			if (failed)
				distinct = 1; /* the threads may all land on one core: judged as such */
			fprintf(stderr, "bench: one call on %d threads (%s)\n", n, bind);
			if (distinct < n || failed) {
				char wmsg[320];
				snprintf(wmsg, sizeof wmsg, "--threads %d ran on %s: threads share cores, so times are not "
					 "%d cores' worth (affinity mask allows %d core%s%s%s)", n,
					 failed ? "unpinned or partly pinned threads" : "fewer cores than threads", n, cores,
					 cores == 1 ? "" : "s", failed ? "; binding " : "", failed ? bind : "");
				fprintf(stderr, "bench: WARNING: %s\n", wmsg);
				if (!strstr(results.warning, wmsg))
					snprintf(results.warning + strlen(results.warning),
						 sizeof results.warning - strlen(results.warning), "%s%s",
						 results.warning[0] ? "; " : "", wmsg);
			}
			snprintf(binding + strlen(binding), sizeof binding - strlen(binding), "; call threads at %d: %s", n,
				 bind);
		}
		o.key_threads = o.scaling ? n : 0;
		s = moe_bench_run_suite(cases, ncases, backends, nb, &o, pool, mp ? moe_pool_threads(mp) : NULL,
					o.cfg.copies > 1 ? (o.cfg.copies < cores ? o.cfg.copies : cores) : distinct, &topo,
					counters, &results);
		moe_pool_destroy(mp);
		/* the caller was pinned to the pool's first CPU; give it back its copies' core */
		if (mp) {
			char why[96];
			moe_bench_bind_thread(0, why, sizeof why);
		}
	}
	if (results.warning[0])
		fprintf(stderr, "bench: WARNING: %s\n", results.warning);
	if (s != MOE_OK) {
		fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
		rc = 1;
	}
	if (baselines && torch && !o.scaling && !moe_bench_interrupted()) {
		char why[512];
		if (!moe_bench_run_torch(torch_script, cases, ncases, &o.cfg, &results, why, sizeof why))
			fprintf(stderr, "bench: PyTorch routing baseline not run: %s\n", why);
	}
	if (moe_bench_results_group(&results) != MOE_OK)
		fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
	moe_bench_results_derive(&results, &cal, &topo);
	ctx = moe_bench_context(&topo, &cal, binding, counters ? NULL : papi_why,
				o.cfg.copies > 1 ? o.cfg.copies : o.cfg.threads);
	json_object_set_new(ctx, "copies", json_integer(o.cfg.copies));
	json_object_set_new(ctx, "mode", json_string(o.scaling ? "scaling: one call at 1..N threads" :
						 o.cfg.copies > 1 ? "throughput: independent copies" :
						 "one call on the given threads"));
	json_object_set_new(ctx, "cores_available", json_integer(cores));
	json_object_set_new(ctx, "ggml_baseline", json_string(moe_bench_ggml_status()));
	json_t *warnings = json_array();
	if (results.warning[0])
		json_array_append_new(warnings, json_string(results.warning));
	json_object_set_new(ctx, "warnings", warnings);
	if (write_outputs(&w, &results, ctx) != MOE_OK) {
		fprintf(stderr, "moebench bench: %s\n", moe_cli_unprefix("bench", moe_last_error()));
		rc = 1;
	}
	moe_bench_print_table(stdout, &results);
	for (size_t i = 0; i < results.n && rc == 0; i++)
		if (results.v[i].failed)
			rc = 1;
	if (moe_bench_interrupted())
		rc = 130;
out:
	json_decref(ctx);
	moe_bench_pool_destroy(pool);
	moe_bench_results_free(&results);
	for (size_t i = 0; i < np; i++)
		moe_plugin_close(plugins[i]);
	free(cases);
	return rc;
}
