/* `moebench calibrate`: measure this machine's roofline ceilings (fp32 FMA and bf16 dot peaks, read
 * bandwidth from L1, L2, L3 and DRAM, for one thread and for every core) and cache them, where
 * `moebench bench` finds them. With a valid cache and no --force it prints the cached values. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli_util.h"
#include "commands.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: moebench calibrate [--force] [--min-time S] [--cache FILE] [--json FILE]\n\n"
		   "Measures the roofline ceilings `moebench bench` judges kernels against and caches them in\n"
		   "$XDG_CACHE_HOME/moebench/calibration.json (else ~/.cache/moebench/calibration.json).\n"
		   "A cache from another machine (CPU model, cores, caches, ISA) is ignored.\n\n"
		   "  --force        measure even when a valid cache exists\n"
		   "  --min-time S   seconds per sample (default 0.02)\n"
		   "  --cache FILE   use FILE as the cache\n"
		   "  --json FILE    also write the ceilings to FILE\n\n"
		   "Exit status: 0 ceilings measured or read from a valid cache; 1 a measurement, the cache or\n"
		   "the JSON could not be made or written; 2 bad usage.\n");
}

static enum moe_status dump(FILE *f, void *ctx)
{
	return json_dumpf(ctx, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF
		       ? MOE_OK
		       : moe_fail(MOE_ERR_IO, "calibrate: writing JSON failed");
}

int moe_cmd_calibrate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'f' }, { "min-time", required_argument, NULL, 't' },
		{ "cache", required_argument, NULL, 'c' }, { "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	bool force = false;
	double min_time = 0.02;
	const char *cache = NULL, *json = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'f': force = true; break;
		case 't':
			errno = 0;
			min_time = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(min_time >= 0.001 && min_time <= 60)) {
				fprintf(stderr, "moebench calibrate: bad --min-time '%s' (seconds, 0.001..60)\n", optarg);
				return 2;
			}
			break;
		case 'c': cache = optarg; break;
		case 'j': json = optarg; break;
		case 'h': usage(stdout); return 0;
		default:
			moe_cli_bad_option("calibrate", argv[optind - 1], longopts);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moebench calibrate: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	char path[4096], fp[256];
	if (cache)
		snprintf(path, sizeof path, "%s", cache);
	else if (moe_bench_calibration_path(path, sizeof path) != MOE_OK) {
		fprintf(stderr, "moebench calibrate: %s\n", moe_cli_unprefix("calibrate", moe_last_error()));
		return 1;
	}
	struct moe_bench_topo topo;
	moe_bench_topo_get(&topo);
	moe_bench_fingerprint(&topo, fp, sizeof fp);
	struct moe_calibration cal;
	bool cached = !force && moe_bench_calibration_load(path, fp, &cal) == MOE_OK;
	if (!cached) {
		if (moe_bench_calibrate(&topo, min_time, true, &cal) != MOE_OK) {
			fprintf(stderr, "moebench calibrate: %s\n", moe_cli_unprefix("calibrate", moe_last_error()));
			return 1;
		}
		if (moe_bench_calibration_save(path, &cal) != MOE_OK) {
			fprintf(stderr, "moebench calibrate: %s\n", moe_cli_unprefix("calibrate", moe_last_error()));
			return 1;
		}
	}
	printf("machine: %s\ntopology: %s\n%s %s (%s)\n\n", fp, topo.summary, cached ? "cached in" : "saved to", path,
	       cal.date);
	printf("%-8s %13s %13s %13s %9s %9s %9s %9s\n", "threads", "fp32 GFLOP/s", "bf16 GFLOP/s", "AMX GFLOP/s",
	       "L1 GB/s", "L2 GB/s", "L3 GB/s", "DRAM GB/s");
	for (int i = 0; i < cal.count; i++) {
		const struct moe_roofline *r = &cal.r[i];
		char amx[16] = "-";
		if (r->amx_gflops > 0)
			snprintf(amx, sizeof amx, "%.1f", r->amx_gflops);
		printf("%-8d %13.1f %13.1f %13s %9.1f %9.1f %9.1f %9.1f\n", r->threads, r->fp32_gflops, r->bf16_gflops, amx,
		       r->bw_gbs[0], r->bw_gbs[1], r->bw_gbs[2], r->bw_gbs[3]);
	}
	if (json) {
		json_t *o = moe_bench_calibration_json(&cal);
		enum moe_status s = moe_bench_write_atomic(json, dump, o);
		json_decref(o);
		if (s != MOE_OK) {
			fprintf(stderr, "moebench calibrate: %s\n", moe_cli_unprefix("calibrate", moe_last_error()));
			return 1;
		}
	}
	return 0;
}
