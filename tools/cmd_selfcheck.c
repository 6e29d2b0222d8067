/* `moebench selfcheck`: the scalar reference checked on built-in cases, one table row per check.
 *
 * What it establishes, for each real-model shape in include/moe/models.h and each profile:
 *   route   ids in range and distinct per token, weights finite, renormalized methods summing to
 *           1 (times rsf) within 8 fp32 ulps per term plus one bf16 ulp when the profile rounds,
 *           and slot 0 holding the best key of the row (tie rule: lowest index on equal logits).
 *   codec   every E4M3 and E5M2 code decodes and re-encodes to itself (NaN codes excepted); NVFP4
 *           and MXFP4 quantize-dequantize stays within half a quantization step of each element.
 *   norm    the fp32 reference against its double-precision twin, within n*u*|terms| bounds.
 *   expert  the fp32 reference against moe_expert_ref_f64 with its a-priori bound (error/bound < 1).
 *   layer   the dispatch permutation covers every token-slot once and counts/offsets agree.
 * It is the installation's smoke test; `moebench verify` is the conformance suite. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "moe/moe.h"
#include "selfcheck.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: moebench selfcheck [--seed S] [--verbose]\n\n"
		   "Checks the scalar reference on built-in cases (every model shape in the suite, every\n"
		   "profile) and prints one row per check. Exit status 0 when every check passes, 1 otherwise.\n\n"
		   "  --seed S     seed of the generated inputs (default 1)\n"
		   "  --verbose    print every failing detail, not only the first per check\n");
}

int moe_cmd_selfcheck(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct selfcheck sc = { .seed = 1 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 's': {
			char *end;
			/* strtoull takes "-5" as 2^64 - 5 and clamps overflow to 2^64 - 1: refuse both */
			errno = 0;
			sc.seed = strtoull(optarg, &end, 0);
			if (*optarg == '\0' || *end != '\0' || strchr(optarg, '-') || errno == ERANGE) {
				fprintf(stderr, "moebench selfcheck: --seed needs an integer in [0, 2^64), got '%s'\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'v': sc.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moebench selfcheck: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}

	printf("moebench %s selfcheck of the scalar reference (seed %llu)\n\n", MOE_VERSION_STRING,
	       (unsigned long long)sc.seed);
	printf("%-8s %-34s %8s %8s %8s  %s\n", "op", "case", "checks", "failed", "ms", "result");
	const double t0 = now_s();
	selfcheck_route(&sc);
	selfcheck_codec(&sc);
	selfcheck_norm(&sc);
	selfcheck_expert(&sc);
	selfcheck_layer(&sc);
	printf("\n%d rows, %d passed, %d failed (%.2f s)\n", sc.rows, sc.rows - sc.rows_failed, sc.rows_failed,
	       now_s() - t0);
	return sc.rows_failed ? 1 : 0;
}
