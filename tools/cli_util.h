/* Helpers shared by the moebench commands: did-you-mean suggestions, the unknown-option message
 * and the --version text (tools/cli_util.c). */
#ifndef MOE_TOOLS_CLI_UTIL_H
#define MOE_TOOLS_CLI_UTIL_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

/* The name in names[0..n) nearest to word by edit distance (insertions, deletions, substitutions
 * and swaps of neighbours each cost 1), or NULL when even the nearest needs more than
 * max(1, strlen(word) / 3) edits: a suggestion must look like a typo, not a guess. */
const char *moe_cli_nearest(const char *word, const char *const *names, size_t n);

/* "moebench CMD: unknown or incomplete option 'ARG' (see --help)", with "; did you mean
 * '--NAME'?" when ARG looks like a typo of one of longopts (terminated by a NULL name). */
void moe_cli_bad_option(const char *cmd, const char *arg, const struct option *longopts);

/* msg without a leading "CMD: " or "WORD: " (WORD the first word of cmd): the library's messages
 * often start with the engine's name ("bench: unknown model ..."), and the command already says
 * "moebench bench: " in front of them. */
const char *moe_cli_unprefix(const char *cmd, const char *msg);

/* moebench --version: version, git revision and build type (both fixed at configure time),
 * compiler, the ISAs the kernels were compiled for, and what this CPU runs. */
void moe_cli_print_version(FILE *f);

#endif
