/* moebench: the command-line front end. `moebench` alone runs the main job (`moebench run`).
 * An unknown command or option gets a did-you-mean from the nearest name (cli_util.c). */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
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
		   "Without a command, runs the main job (`moebench run`).\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`moebench COMMAND --help` describes each command's options.\n"
		   "environment: MOE_MAX_ISA=scalar|avx2|avx512|avx512bf16 caps dispatch; "
		   "MOE_VERBOSE=1 prints the chosen kernels.\n"
		   "  --version    version, git revision, build type, compiler and compiled ISAs\n"
		   "exit status: 0 success; 2 unknown command or usage error; each command's --help lists\n"
		   "its own.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		char *def[] = { "run", NULL };
		return moe_cmd_run(1, def);
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		moe_cli_print_version(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	const char *names[sizeof commands / sizeof commands[0] + 1];
	size_t n = 0;
	for (; n < sizeof commands / sizeof commands[0]; n++)
		names[n] = commands[n].name;
	names[n++] = "--version";
	const char *near = moe_cli_nearest(argv[1], names, n);
	if (near)
		fprintf(stderr, "moebench: unknown command '%s'; did you mean '%s'?\n\n", argv[1], near);
	else
		fprintf(stderr, "moebench: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
