/* Did-you-mean suggestions and the --version text of the moebench command (cli_util.h).
 * The git revision and the build type come from configure time (tools/CMakeLists.txt): a binary
 * describes the source it was built from, not whatever the source tree holds when it runs. */
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "moe/moe.h"

#ifndef MOE_GIT_REVISION
#define MOE_GIT_REVISION "unknown"
#endif
#ifndef MOE_BUILD_TYPE
#define MOE_BUILD_TYPE "unknown"
#endif
#if defined(__clang__)
#define MOE_CLI_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define MOE_CLI_COMPILER "gcc " __VERSION__
#else
#define MOE_CLI_COMPILER "unknown C compiler"
#endif

/* Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring). */
static size_t edit_distance(const char *a, const char *b)
{
	const size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return (size_t)-1;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

const char *moe_cli_nearest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, limit = strlen(word) / 3;
	if (limit < 1)
		limit = 1;
	for (size_t i = 0; i < n; i++) {
		const size_t d = edit_distance(word, names[i]);
		if (d < best_d)
			best_d = d, best = names[i];
	}
	return best_d <= limit ? best : NULL;
}

void moe_cli_bad_option(const char *cmd, const char *arg, const struct option *longopts)
{
	const char *names[128];
	char opt[96];
	size_t n = 0;
	/* compare without the dashes and without a "=value" part */
	const char *w = arg;
	while (*w == '-')
		w++;
	snprintf(opt, sizeof opt, "%.*s", (int)strcspn(w, "="), w);
	for (; longopts[n].name && n < 128; n++)
		names[n] = longopts[n].name;
	const char *near = arg[0] == '-' && opt[0] ? moe_cli_nearest(opt, names, n) : NULL;
	if (near && strcmp(near, opt) != 0)
		fprintf(stderr, "moebench %s: unknown or incomplete option '%s'; did you mean '--%s'? (see --help)\n",
			cmd, arg, near);
	else
		fprintf(stderr, "moebench %s: unknown or incomplete option '%s' (see --help)\n", cmd, arg);
}

const char *moe_cli_unprefix(const char *cmd, const char *msg)
{
	const size_t whole = strlen(cmd);
	if (strncmp(msg, cmd, whole) == 0 && msg[whole] == ':' && msg[whole + 1] == ' ')
		return msg + whole + 2;
	const size_t n = strcspn(cmd, " ");
	return strncmp(msg, cmd, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

void moe_cli_print_version(FILE *f)
{
	fprintf(f, "moebench %s\n", MOE_VERSION_STRING);
	fprintf(f, "git revision: %s\n", MOE_GIT_REVISION);
	fprintf(f, "build type: %s\n", MOE_BUILD_TYPE[0] ? MOE_BUILD_TYPE : "none");
	fprintf(f, "compiler: %s\n", MOE_CLI_COMPILER);
	/* the ISA levels the registry holds kernels for: each was compiled in (per-file flags) */
	bool isa[MOE_ISA_COUNT] = { false };
	for (size_t i = 0; i < moe_builtin_count(); i++)
		isa[moe_builtin_at(i)->isa] = true;
	fprintf(f, "ISAs compiled:");
	for (int i = 0; i < MOE_ISA_COUNT; i++)
		if (isa[i])
			fprintf(f, " %s", moe_isa_name((enum moe_isa)i));
	fprintf(f, "\nthis CPU: %s (dispatch %s)\n", moe_isa_name(moe_isa_hardware()),
		moe_isa_name(moe_isa_effective()));
}
