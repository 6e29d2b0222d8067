/* `moebench verify`: run the conformance engine on built-in backends or plugins and report one line
 * per (op, backend, case group), the details and a repro command for every FAIL, a summary table
 * and optionally the full report as JSON. Exit status: 0 when nothing FAILs, 1 on any FAIL, 2 on a
 * usage error or bad input (unknown backend, unloadable plugin, malformed cases or vector file), 3 when
 * no case FAILed but some could not get their memory and did not run (the verdict is incomplete). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "isolate.h"
#include "moe/moe.h"
#include "plugin.h"
#include "verify.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moebench verify [--backend NAME|PATH.so]... [--op OP]... [--profile P]...\n"
		"                       [--quick|--full] [--seed S] [--cases FILE] [--case SPEC]...\n"
		"                       [--vectors DIR] [--json FILE] [--jobs N] [--plugin-timeout S]\n\n"
		"Checks backends against the scalar reference and the double-precision references:\n"
		"bitwise for codecs and routing ids, ULP budgets for routing weights, a-priori error\n"
		"bounds for norms, experts and the layer; tie-aware routing (exact ties follow the\n"
		"lower-index rule, near-ties within the key error budget may go either way).\n"
		"Backends with ABI 2 slots are also run through them: route_mt, expert_mt and layer_mt\n"
		"on 1, 2 and 3 host threads (the results must be bitwise equal), on weights packed by\n"
		"the backend's pack (the plain weights scrambled meanwhile); each line says which\n"
		"variant ran.\n\n"
		"options:\n"
		"  --backend NAME|PATH  a built-in backend (see `moebench info`) or a plugin shared object\n"
		"                       (a path containing '/' or ending in .so); repeatable;\n"
		"                       default: every built-in backend\n"
		"  --op OP              route, norm, quantize, dequantize, expert, layer; repeatable or\n"
		"                       comma-separated; default: every op the backend provides\n"
		"  --profile P          flashinfer, vllm, hf: routing profiles of the catalogue (route,\n"
		"                       layer); repeatable; default: all\n"
		"  --quick              the catalogue once (default; a few seconds)\n"
		"  --full               the catalogue with many seeds (>= 1e5 routing cases)\n"
		"  --seed S             base seed of the catalogue (default 1)\n"
		"  --cases FILE         run the case specs in FILE (one per line, '#' comments) instead\n"
		"                       of the catalogue\n"
		"  --case SPEC          run one case spec, e.g. 'route method=DeepSeekV3 profile=vllm E=256\n"
		"                       K=8 G=8 TG=4 bias=f32 rsf=2.5 T=3 gen=bf16-ties seed=1234'; repeatable\n"
		"  --vectors DIR        check against the golden vectors in DIR (`moebench vectors export`)\n"
		"                       instead of generated cases\n"
		"  --json FILE          write the full report as JSON (atomically)\n"
		"  --jobs N             worker threads (default: the online CPUs, at most 16); the report\n"
		"                       does not depend on N; --jobs 1 for kernels that are not reentrant\n"
		"  --plugin-timeout S   seconds a plugin may take on one case (or to load) before it is\n"
		"                       killed and the case FAILs (default %g)\n"
		"  -h, --help           this text\n\n"
		"output: PASS / FAIL / UNTRUSTED (the data made the check vacuous) / SKIP (not provided,\n"
		"ISA unavailable, profile or problem not supported) per case group, with the worst ULP\n"
		"distance / its budget, the worst error/bound ratio and the near-tie count. Every FAIL\n"
		"prints a command reproducing the case and its first mismatches.\n"
		"A case that cannot get its memory did not run: exit status 3 unless something FAILs.\n"
		"Plugins run in child processes: a kernel or supports() that crashes, aborts, hangs or\n"
		"calls exit() FAILs its case (the line says which signal or status) and the run goes on\n"
		"with the next case group; one that fails while loading is refused (exit status 2).\n"
		"exit status: 0 no FAIL, 1 at least one FAIL, 2 usage error or bad input.\n",
		MOE_ISOLATE_DEFAULT_TIMEOUT);
}

struct target {
	const struct moe_backend *b;
	enum moe_isa isa;
	const char *arg;
	struct moe_plugin *plugin;
	unsigned op_mask; /* a single-variant built-in is verified on its own op only */
};

static int parse_ops(const char *arg, unsigned *mask)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof buf, "%s", arg);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum moe_op op;
		if (moe_op_parse(tok, &op) != MOE_OK) {
			fprintf(stderr, "moebench verify: %s\n", moe_cli_unprefix("verify", moe_last_error()));
			return -1;
		}
		*mask |= 1u << op;
	}
	return 0;
}

int moe_cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' }, { "op", required_argument, NULL, 'o' },
		{ "profile", required_argument, NULL, 'p' }, { "quick", no_argument, NULL, 'q' },
		{ "full", no_argument, NULL, 'f' },          { "seed", required_argument, NULL, 's' },
		{ "cases", required_argument, NULL, 'c' },   { "case", required_argument, NULL, 'C' },
		{ "vectors", required_argument, NULL, 'v' }, { "json", required_argument, NULL, 'j' },
		{ "jobs", required_argument, NULL, 'J' },    { "help", no_argument, NULL, 'h' },
		{ "plugin-timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct moe_verify_opts o = { .op_mask = 0, .profile_mask = 0, .depth = MOE_DEPTH_QUICK, .seed = 1,
				     .log = stdout, .jobs = (int)sysconf(_SC_NPROCESSORS_ONLN) };
	struct moe_vcase_list cases = { 0 };
	struct target *targets = NULL;
	int ntargets = 0, rc = 2, opt;
	const char *vectors = NULL, *json = NULL, *backend_args[32];
	int nbackend_args = 0;
	bool have_cases = false;
	struct moe_vreport rep = { 0 };

	/* a line at a time, so that output through a pipe is complete up to the last line whatever
	 * happens later */
	setvbuf(stdout, NULL, _IOLBF, 0);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			if (nbackend_args == 32) {
				fprintf(stderr, "moebench verify: at most 32 --backend options\n");
				goto out;
			}
			backend_args[nbackend_args++] = optarg;
			break;
		case 'o':
			if (parse_ops(optarg, &o.op_mask))
				goto out;
			break;
		case 'p': {
			enum moe_profile p;
			if (moe_profile_parse(optarg, &p) != MOE_OK) {
				fprintf(stderr, "moebench verify: %s\n", moe_cli_unprefix("verify", moe_last_error()));
				goto out;
			}
			o.profile_mask |= 1u << p;
			break;
		}
		case 'q': o.depth = MOE_DEPTH_QUICK; break;
		case 'f': o.depth = MOE_DEPTH_FULL; break;
		case 's': {
			char *end;
			errno = 0;
			o.seed = strtoull(optarg, &end, 0);
			if (end == optarg || *end || optarg[0] == '-' || errno == ERANGE) {
				fprintf(stderr, "moebench verify: --seed %s is not an unsigned 64-bit integer\n", optarg);
				goto out;
			}
			break;
		}
		case 'c':
			if (moe_cases_read(optarg, &cases) != MOE_OK) {
				fprintf(stderr, "moebench verify: %s\n", moe_cli_unprefix("verify", moe_last_error()));
				goto out;
			}
			have_cases = true;
			break;
		case 'C': {
			struct moe_vcase c;
			if (moe_vcase_parse(optarg, &c) != MOE_OK || moe_vcase_validate(&c) != MOE_OK ||
			    moe_vcase_push(&cases, &c) != MOE_OK) {
				fprintf(stderr, "moebench verify: --case '%s': %s\n", optarg, moe_last_error());
				goto out;
			}
			snprintf(cases.v[cases.n - 1].group, sizeof c.group, "case");
			have_cases = true;
			break;
		}
		case 'v': vectors = optarg; break;
		case 'j': json = optarg; break;
		case 'J': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (end == optarg || *end || n < 1 || n > 16) {
				fprintf(stderr, "moebench verify: --jobs %s is not an integer in [1, 16]\n", optarg);
				goto out;
			}
			o.jobs = (int)n;
			break;
		}
		case 'T': {
			char *end;
			double t = strtod(optarg, &end);
			if (end == optarg || *end || !(t > 0) || t > 1e6) {
				fprintf(stderr, "moebench verify: --plugin-timeout %s is not a number of seconds in (0, 1e6]\n",
					optarg);
				goto out;
			}
			moe_isolate_set_timeout(t);
			break;
		}
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			moe_cli_bad_option("verify", argv[optind - 1], longopts);
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moebench verify: unexpected argument '%s' (see --help)\n", argv[optind]);
		goto out;
	}
	if (vectors && have_cases) {
		fprintf(stderr, "moebench verify: --vectors and --cases/--case exclude each other\n");
		goto out;
	}
	if (!o.op_mask)
		o.op_mask = (1u << MOE_OP_COUNT) - 1;
	if (!o.profile_mask)
		o.profile_mask = (1u << MOE_PROFILE_COUNT) - 1;
	if (have_cases) {
		unsigned case_ops = 0;
		for (size_t i = 0; i < cases.n; i++)
			case_ops |= 1u << cases.v[i].op;
		o.op_mask &= case_ops;
		o.cases = &cases;
	}

	targets = calloc(moe_builtin_count() + (size_t)nbackend_args + 1, sizeof *targets);
	if (!targets) {
		fprintf(stderr, "moebench verify: out of memory\n");
		goto out;
	}
	for (int i = 0; i < nbackend_args; i++) {
		struct target *t = &targets[ntargets];
		const char *a = backend_args[i];
		memset(t, 0, sizeof *t);
		t->arg = a;
		if (moe_plugin_is_path(a)) {
			if (moe_plugin_open(a, &t->plugin) != MOE_OK) {
				fprintf(stderr, "moebench verify: %s\n", moe_cli_unprefix("verify", moe_last_error()));
				goto out;
			}
			t->b = moe_plugin_backend(t->plugin);
			t->isa = MOE_ISA_SCALAR;
			t->op_mask = ~0u;
		} else {
			const struct moe_builtin *bi = moe_builtin_find(a);
			if (!bi) {
				fprintf(stderr, "moebench verify: unknown backend '%s' (built-in:", a);
				for (size_t k = 0; k < moe_builtin_count(); k++)
					fprintf(stderr, " %s", moe_builtin_at(k)->table->name);
				fprintf(stderr, "; or a plugin path)\n");
				goto out;
			}
			t->b = bi->table;
			t->isa = bi->isa;
			t->op_mask = bi->op < MOE_OP_COUNT ? 1u << bi->op : ~0u;
		}
		ntargets++;
	}
	if (!nbackend_args) {
		for (size_t k = 0; k < moe_builtin_count(); k++) {
			const struct moe_builtin *bi = moe_builtin_at(k);
			targets[ntargets++] = (struct target){ bi->table, bi->isa, bi->table->name, NULL,
							       bi->op < MOE_OP_COUNT ? 1u << bi->op : ~0u };
		}
	}

	printf("moebench verify %s: %d backend(s), %s%s, seed %" PRIu64 "\n", MOE_VERSION_STRING, ntargets,
	       vectors ? "vectors from " : have_cases ? "explicit cases" : o.depth == MOE_DEPTH_FULL ? "full" : "quick",
	       vectors ? vectors : "", o.seed);
	printf("%-9s %-10s %-18s %-34s %s\n", "status", "op", "backend", "group",
	       "cases, worst ulp/budget, worst error/bound, near-ties");
	const unsigned op_mask = o.op_mask;
	for (int i = 0; i < ntargets; i++) {
		enum moe_status s;
		o.backend_arg = targets[i].arg;
		o.op_mask = op_mask & targets[i].op_mask;
		o.hide_declined = targets[i].op_mask != ~0u;
		o.isolate = targets[i].plugin != NULL;
		if (vectors) {
			const size_t first = rep.n;
			s = moe_vectors_check(vectors, targets[i].b, targets[i].b->name, o.op_mask, &rep);
			for (size_t g = first; g < rep.n; g++)
				moe_vreport_print_group(stdout, &rep.g[g], targets[i].arg);
		} else {
			s = moe_verify_backend(targets[i].b, targets[i].isa, &o, &rep);
		}
		if (s != MOE_OK) {
			fprintf(stderr, "moebench verify: %s\n", moe_cli_unprefix("verify", moe_last_error()));
			goto out;
		}
	}
	moe_vreport_print_summary(stdout, &rep);
	if (json && moe_vreport_write_json(&rep, json) != MOE_OK) {
		fprintf(stderr, "moebench verify: %s\n", moe_cli_unprefix("verify", moe_last_error()));
		goto out;
	}
	rc = moe_vreport_count(&rep, MOE_V_FAIL) ? 1 : 0;
	if (!rc && rep.nomem) {
		fprintf(stderr, "moebench verify: %lld case(s) could not get their memory and did not run\n",
			(long long)rep.nomem);
		rc = 3;
	}
out:
	for (int i = 0; i < ntargets; i++)
		if (targets[i].plugin)
			moe_plugin_close(targets[i].plugin);
	free(targets);
	moe_vcase_list_free(&cases);
	moe_vreport_free(&rep);
	return rc;
}
