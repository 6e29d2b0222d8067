/* `moebench ep`: one MoE layer with its experts sharded over the ranks of an MPI job, checked bit
 * for bit against the single-process layer and optionally timed per phase (ep/ holds the library
 * part; ep/ep_run.c the exchange). Run under mpirun: `mpirun -n R moebench ep [options]`.
 * --model-only prints the cost model's projection and needs no MPI. Built without MPI, every other
 * use says so and exits 2. Exit status: 0 equal (and measured), 1 the output differs from the
 * single-process layer, 2 bad options or a configuration the ranks disagree on, 3 a runtime
 * failure (no memory, an MPI error, the watchdog). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ep.h"
#ifdef MOE_HAVE_MPI
#include <mpi.h>
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mpirun -n R moebench ep [--model NAME] [--tokens T] [--hidden H] [--inter I] [--experts E]\n"
		"                               [--placement contiguous|round-robin|FILE] [--backend B] [--chunks C]\n"
		"                               [--bench [--reps N]] [options]\n"
		"       moebench ep --model-only [--tokens T] [--latency-us L] [--dispatch-bytes B] [--combine-bytes B]\n\n"
		"Expert parallelism: the experts of one MoE layer sharded over the R ranks of an MPI job. Every rank\n"
		"builds the same seeded problem, routes its share of the tokens, sends each token-slot's row to the\n"
		"rank of its expert (MPI_Alltoall of counts, MPI_Alltoallv of rows), runs its experts, sends the\n"
		"outputs back and combines them in the fixed slot order; rank 0 then checks the output is bitwise\n"
		"equal to the single-process layer (moe_layer__ref for --backend ref).\n\n"
		"  --model NAME       a model of `moebench bench --help` (default qwen3-30b-a3b)\n"
		"  --tokens T         tokens in the layer, over all ranks (default 64; --model-only: per rank, 4096)\n"
		"  --hidden H, --inter I, --experts E   override the model's shape (small tests)\n"
		"  --no-shared        leave out the model's shared expert\n"
		"  --seed N           the problem's seed (default 1)\n"
		"  --backend B        ref (default), dispatched, or a built-in table (`moebench info`): its route\n"
		"                     and expert ops run on every rank, single-threaded\n"
		"  --placement P      contiguous (default): rank r holds experts [E*r/R, E*(r+1)/R); round-robin:\n"
		"                     expert e on rank e %% R; otherwise a file of lines \"EXPERT RANK\" ('#' comments)\n"
		"  --chunks C         the local experts in C groups: group c+1's rows arrive while group c computes\n"
		"                     (MPI_Ialltoallv); the numbers do not change (default 1: blocking Alltoallv)\n"
		"  --bench            time the phases (route, counts, pack, dispatch, experts, return, shared,\n"
		"                     combine) over --reps N repetitions (default 7): slowest rank and rank mean,\n"
		"                     bytes leaving each rank, load imbalance per rank and per expert, a csv: line\n"
		"  --no-check         skip the bitwise check (rank 0 then needs no copy of every expert)\n"
		"  --timeout S        every rank ends (exit 3) after S seconds, naming its phase (default 120; 0 off)\n"
		"  --inject-fault F   testing aid: die:RANK (SIGKILL before the exchange), hang:RANK (sleeps),\n"
		"                     combine-order[:RANK] (sums a token's slots in reverse: the check must fail)\n"
		"  --model-only       print the cost model's projection for DeepSeek-V3 and Command A+ (or --model)\n"
		"                     on 8-64 ranks over 100-400 Gb/s links, and exit; options --latency-us (default\n"
		"                     5), --dispatch-bytes and --combine-bytes per element (default 2, bf16),\n"
		"                     --gflops per rank (default 400000), --imbalance (default 1.0)\n");
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_pos_double(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0) || v > 1e12)
		return false;
	*out = v;
	return true;
}

static bool parse_fault(const char *s, struct moe_ep_config *c)
{
	const char *colon = strchr(s, ':');
	const size_t n = colon ? (size_t)(colon - s) : strlen(s);
	int64_t r = -1;
	if (colon && !parse_i64(colon + 1, 0, 1 << 20, &r))
		return false;
	c->fault_rank = (int)r;
	if (n == 3 && !strncmp(s, "die", 3) && colon)
		c->fault = MOE_EP_FAULT_DIE;
	else if (n == 4 && !strncmp(s, "hang", 4) && colon)
		c->fault = MOE_EP_FAULT_HANG;
	else if (n == 13 && !strncmp(s, "combine-order", 13))
		c->fault = MOE_EP_FAULT_COMBINE_ORDER;
	else
		return false;
	return true;
}

int moe_cmd_ep(int argc, char **argv)
{
	enum { O_MODEL = 256, O_TOKENS, O_HIDDEN, O_INTER, O_EXPERTS, O_NO_SHARED, O_SEED, O_BACKEND, O_PLACEMENT,
	       O_CHUNKS, O_BENCH, O_REPS, O_NO_CHECK, O_TIMEOUT, O_FAULT, O_MODEL_ONLY, O_LAT, O_DB, O_CB, O_GF, O_IMB, O_HELP };
	static const struct option opts[] = {
		{ "model", required_argument, NULL, O_MODEL }, { "tokens", required_argument, NULL, O_TOKENS },
		{ "hidden", required_argument, NULL, O_HIDDEN }, { "inter", required_argument, NULL, O_INTER },
		{ "experts", required_argument, NULL, O_EXPERTS }, { "no-shared", no_argument, NULL, O_NO_SHARED },
		{ "seed", required_argument, NULL, O_SEED }, { "backend", required_argument, NULL, O_BACKEND },
		{ "placement", required_argument, NULL, O_PLACEMENT }, { "chunks", required_argument, NULL, O_CHUNKS },
		{ "bench", no_argument, NULL, O_BENCH }, { "reps", required_argument, NULL, O_REPS },
		{ "no-check", no_argument, NULL, O_NO_CHECK }, { "timeout", required_argument, NULL, O_TIMEOUT },
		{ "inject-fault", required_argument, NULL, O_FAULT }, { "model-only", no_argument, NULL, O_MODEL_ONLY },
		{ "latency-us", required_argument, NULL, O_LAT }, { "dispatch-bytes", required_argument, NULL, O_DB },
		{ "combine-bytes", required_argument, NULL, O_CB }, { "gflops", required_argument, NULL, O_GF },
		{ "imbalance", required_argument, NULL, O_IMB }, { "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct moe_ep_config c = { .model = "qwen3-30b-a3b", .tokens = 0, .seed = 1, .backend = "ref",
				   .placement = MOE_EP_CONTIGUOUS, .chunks = 1, .reps = 7, .check = true,
				   .timeout_s = 120, .fault_rank = -1 };
	struct moe_ep_cost_params cp = { .latency_us = 5, .dispatch_elem = 2, .combine_elem = 2, .gflops = 400000,
					 .imbalance = 1.0 };
	bool model_only = false, model_given = false;
	int64_t v = 0;
	optind = 1;
	opterr = 0;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		bool ok = true;
		switch (o) {
		case O_MODEL:
			c.model = optarg;
			model_given = true;
			ok = moe_model_find(optarg) != NULL;
			break;
		case O_TOKENS:
			ok = parse_i64(optarg, 1, 1 << 24, &c.tokens);
			break;
		case O_HIDDEN:
			ok = parse_i64(optarg, 1, 1 << 20, &c.hidden);
			break;
		case O_INTER:
			ok = parse_i64(optarg, 1, 1 << 20, &c.inter);
			break;
		case O_EXPERTS:
			ok = parse_i64(optarg, 1, 1 << 16, &v);
			c.experts = (int32_t)v;
			break;
		case O_NO_SHARED:
			c.no_shared = true;
			break;
		case O_SEED:
			ok = parse_i64(optarg, 0, INT64_MAX, &v);
			c.seed = (uint64_t)v;
			break;
		case O_BACKEND:
			c.backend = optarg;
			break;
		case O_PLACEMENT:
			if (!strcmp(optarg, "contiguous"))
				c.placement = MOE_EP_CONTIGUOUS;
			else if (!strcmp(optarg, "round-robin"))
				c.placement = MOE_EP_ROUND_ROBIN;
			else
				c.placement = MOE_EP_FILE, c.placement_file = optarg;
			break;
		case O_CHUNKS:
			ok = parse_i64(optarg, 1, 1024, &v);
			c.chunks = (int)v;
			break;
		case O_BENCH:
			c.bench = true;
			break;
		case O_REPS:
			ok = parse_i64(optarg, 1, 255, &v);
			c.reps = (int)v;
			break;
		case O_NO_CHECK:
			c.check = false;
			break;
		case O_TIMEOUT:
			ok = parse_pos_double(optarg, &c.timeout_s);
			break;
		case O_FAULT:
			ok = parse_fault(optarg, &c);
			break;
		case O_MODEL_ONLY:
			model_only = true;
			break;
		case O_LAT:
			ok = parse_pos_double(optarg, &cp.latency_us);
			break;
		case O_DB:
			ok = parse_pos_double(optarg, &cp.dispatch_elem) && cp.dispatch_elem > 0;
			break;
		case O_CB:
			ok = parse_pos_double(optarg, &cp.combine_elem) && cp.combine_elem > 0;
			break;
		case O_GF:
			ok = parse_pos_double(optarg, &cp.gflops) && cp.gflops > 0;
			break;
		case O_IMB:
			ok = parse_pos_double(optarg, &cp.imbalance) && cp.imbalance >= 1;
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "moebench ep: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "moebench ep: bad value '%s' for --%s%s%s\n", optarg, opts[o - O_MODEL].name,
				o == O_MODEL ? ": " : "", o == O_MODEL ? moe_last_error() : "");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moebench ep: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (model_only) {
		moe_ep_cost_table(stdout, model_given ? c.model : NULL, c.tokens ? c.tokens : 4096, &cp);
		return 0;
	}
	if (!c.tokens)
		c.tokens = 64;
#ifdef MOE_HAVE_MPI
	if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
		fprintf(stderr, "moebench ep: MPI_Init failed\n");
		return 3;
	}
	const int rc = moe_ep_main(&c);
	MPI_Finalize();
	return rc;
#else
	fprintf(stderr, "moebench ep: built without MPI: CMake found no MPI C library at configure time; install "
			"Open MPI (Debian: libopenmpi-dev openmpi-bin, or scripts/install-deps) and reconfigure\n");
	return 2;
#endif
}
