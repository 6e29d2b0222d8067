/* `moebench compare A.json B.json`: per-benchmark ratio of medians with a Mann-Whitney U test of the
 * repetitions (bench/compare.c); exit 1 when a benchmark regressed beyond the threshold at p < alpha,
 * 0 otherwise, 2 on bad input. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli_util.h"
#include "commands.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: moebench compare A.json B.json [--threshold T] [--alpha P]\n\n"
		   "Compares the benchmarks of B (new) against A (old), matched by name, in Google Benchmark JSON\n"
		   "(as `moebench bench --json` writes). Per benchmark: B/A ratio of the median times and the\n"
		   "two-sided Mann-Whitney U test on the per-repetition times (robust to the outliers of a noisy\n"
		   "machine; exact p-values for small samples without ties).\n\n"
		   "  --threshold T  a slowdown above T counts (default 0.05 = 5%%)\n"
		   "  --alpha P      significance level (default 0.05)\n\n"
		   "exit status: 0 no significant regression, 1 a benchmark regressed, 2 bad input\n");
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return !errno && end != s && !*end;
}

int moe_cmd_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threshold", required_argument, NULL, 't' }, { "alpha", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct moe_bench_compare_opts o = { .threshold = 0.05, .alpha = 0.05 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!parse_double(optarg, &o.threshold)) {
				fprintf(stderr, "moebench compare: bad --threshold '%s'\n", optarg);
				return 2;
			}
			break;
		case 'a':
			if (!parse_double(optarg, &o.alpha)) {
				fprintf(stderr, "moebench compare: bad --alpha '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default:
			moe_cli_bad_option("compare", argv[optind - 1], longopts);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "moebench compare: expected two JSON files, got %d (see --help)\n", argc - optind);
		return 2;
	}
	return moe_bench_compare_files(argv[optind], argv[optind + 1], &o, stdout, stderr);
}
