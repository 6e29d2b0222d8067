/* Shared state and helpers of `moebench selfcheck` (one file per op: selfcheck_<op>.c). */
#ifndef MOE_TOOLS_SELFCHECK_H
#define MOE_TOOLS_SELFCHECK_H

#include <stdbool.h>
#include <stdint.h>

struct selfcheck {
	uint64_t seed;
	bool verbose;
	int rows;
	int rows_failed;
	/* the row being filled */
	long checks;
	long failed;
	bool detail_printed;
	double t_start;
};

void selfcheck_row_begin(struct selfcheck *sc);
/* Count one check; on failure print the detail (first one per row unless verbose). */
void selfcheck_expect(struct selfcheck *sc, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void selfcheck_row_end(struct selfcheck *sc, const char *op, const char *name);

float selfcheck_normal(uint64_t *state);

void selfcheck_route(struct selfcheck *sc);
void selfcheck_codec(struct selfcheck *sc);
void selfcheck_norm(struct selfcheck *sc);
void selfcheck_expert(struct selfcheck *sc);
void selfcheck_layer(struct selfcheck *sc);

#endif
