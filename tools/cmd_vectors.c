/* `moebench vectors`: golden vectors. `export` writes catalogue cases with the reference's outputs
 * as safetensors files (format: verify/vectors.c), readable by Python's safetensors or plain numpy
 * (scripts/read-vectors.py); `check DIR [verify options]` is `moebench verify --vectors DIR`.
 * Exit status: 0 success, 1 a FAIL (check), 2 usage error or bad input. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "moe/moe.h"
#include "verify.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moebench vectors export --out DIR [--op OP]... [--profile P]... [--seed S] [--full]\n"
		"       moebench vectors check DIR [moebench verify options]\n\n"
		"export  writes one safetensors file per catalogue case (inputs, the reference's expected\n"
		"        outputs, the case spec and its parameters as __metadata__ strings) into DIR\n"
		"  --out DIR      output folder (created if missing)\n"
		"  --op OP        ops to export; repeatable or comma-separated; default: all\n"
		"  --profile P    routing profiles; repeatable; default: all\n"
		"  --seed S       base seed of the catalogue (default 1)\n"
		"  --full         the full catalogue instead of the quick one\n"
		"check   runs `moebench verify --vectors DIR` with the remaining options\n"
		"exit status: 0 success, 1 a FAIL (check), 2 usage error or bad input.\n");
}

static int export_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'd' },  { "op", required_argument, NULL, 'o' },
		{ "profile", required_argument, NULL, 'p' }, { "seed", required_argument, NULL, 's' },
		{ "full", no_argument, NULL, 'f' },       { "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	unsigned ops = 0, profiles = 0;
	uint64_t seed = 1;
	enum moe_vdepth depth = MOE_DEPTH_QUICK;
	int opt;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'o': {
			char buf[256], *save = NULL;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				enum moe_op op;
				if (moe_op_parse(t, &op) != MOE_OK) {
					fprintf(stderr, "moebench vectors export: %s\n", moe_cli_unprefix("vectors", moe_last_error()));
					return 2;
				}
				ops |= 1u << op;
			}
			break;
		}
		case 'p': {
			enum moe_profile p;
			if (moe_profile_parse(optarg, &p) != MOE_OK) {
				fprintf(stderr, "moebench vectors export: %s\n", moe_cli_unprefix("vectors", moe_last_error()));
				return 2;
			}
			profiles |= 1u << p;
			break;
		}
		case 's': {
			char *end;
			seed = strtoull(optarg, &end, 0);
			if (end == optarg || *end || optarg[0] == '-') {
				fprintf(stderr, "moebench vectors export: --seed %s is not an unsigned integer\n", optarg);
				return 2;
			}
			break;
		}
		case 'f': depth = MOE_DEPTH_FULL; break;
		case 'q': depth = MOE_DEPTH_QUICK; break;
		case 'h': usage(stdout); return 0;
		default:
			moe_cli_bad_option("vectors export", argv[optind - 1], longopts);
			return 2;
		}
	}
	if (optind < argc || !dir) {
		fprintf(stderr, "moebench vectors export: %s (see --help)\n",
			dir ? "unexpected argument" : "--out DIR is required");
		return 2;
	}
	if (!ops)
		ops = (1u << MOE_OP_COUNT) - 1;
	if (!profiles)
		profiles = (1u << MOE_PROFILE_COUNT) - 1;
	struct moe_vcase_list cases = { 0 };
	enum moe_status s = MOE_OK;
	for (int op = 0; op < MOE_OP_COUNT && s == MOE_OK; op++)
		if ((ops >> op) & 1u)
			s = moe_catalogue((enum moe_op)op, depth, seed, profiles, &cases);
	size_t written = 0;
	if (s == MOE_OK)
		s = moe_vectors_export(dir, &cases, &written);
	moe_vcase_list_free(&cases);
	if (s != MOE_OK) {
		fprintf(stderr, "moebench vectors export: %s\n", moe_cli_unprefix("vectors", moe_last_error()));
		return 2;
	}
	printf("wrote %zu vector files to %s\n", written, dir);
	return 0;
}

int moe_cmd_vectors(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "export"))
		return export_cmd(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check")) {
		if (argc < 3 || argv[2][0] == '-') {
			fprintf(stderr, "moebench vectors check: a vector folder is required (see --help)\n");
			return 2;
		}
		char **v = calloc((size_t)argc + 2, sizeof *v);
		if (!v) {
			fprintf(stderr, "moebench vectors check: out of memory\n");
			return 2;
		}
		v[0] = "verify";
		v[1] = "--vectors";
		v[2] = argv[2];
		for (int i = 3; i < argc; i++)
			v[i] = argv[i];
		int rc = moe_cmd_verify(argc, v);
		free(v);
		return rc;
	}
	fprintf(stderr, "moebench vectors: unknown subcommand '%s' (export or check; see --help)\n", argv[1]);
	return 2;
}
