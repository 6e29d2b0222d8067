/* moebench: the command-line front end. `moebench` alone runs the default job (selfcheck). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "moe/moe.h"

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
#define MOE_COMMAND(n, s) { #n, s, moe_cmd_##n },
#include "commands.inc"
#undef MOE_COMMAND
};

static void usage(FILE *f)
{
	fprintf(f, "usage: moebench [COMMAND] [OPTIONS]\n\n"
		   "MoE routing and expert-kernel verification and microbenchmark suite.\n"
		   "Without a command, runs `selfcheck`.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`moebench COMMAND --help` describes each command's options.\n"
		   "environment: MOE_MAX_ISA=scalar|avx2|avx512|avx512bf16 caps dispatch; "
		   "MOE_VERBOSE=1 prints the chosen kernels.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		char *def[] = { "selfcheck", NULL };
		return moe_cmd_selfcheck(1, def);
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("moebench %s\n", MOE_VERSION_STRING);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "moebench: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
