/* Expert placements: which rank holds each expert, and each rank's experts in increasing id order.
 *
 * Contiguous: rank r holds [E*r/R, E*(r+1)/R) (sizes differ by at most one). Round-robin: expert e on
 * rank e % R. A placement file is untrusted text, "EXPERT RANK" per line ('#' comments and blank
 * lines allowed); every error names file:line. A rank may hold no expert (it still routes and
 * combines its tokens). The placement never changes the numbers, only where they are computed. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ep.h"

const char *moe_ep_placement_kind_name(enum moe_ep_placement_kind k)
{
	switch (k) {
	case MOE_EP_CONTIGUOUS:
		return "contiguous";
	case MOE_EP_ROUND_ROBIN:
		return "round-robin";
	case MOE_EP_FILE:
		return "file";
	}
	return "?";
}

void moe_ep_placement_free(struct moe_ep_placement *pl)
{
	free(pl->rank_of);
	free(pl->slot_of);
	free(pl->count);
	free(pl->first);
	free(pl->experts_of);
	memset(pl, 0, sizeof *pl);
}

static enum moe_status alloc_placement(int32_t E, int32_t R, struct moe_ep_placement *pl)
{
	memset(pl, 0, sizeof *pl);
	if (E < 1 || R < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "ep placement: %d experts on %d ranks", E, R);
	pl->experts = E;
	pl->ranks = R;
	pl->rank_of = malloc((size_t)E * sizeof(int32_t));
	pl->slot_of = malloc((size_t)E * sizeof(int32_t));
	pl->experts_of = malloc((size_t)E * sizeof(int32_t));
	pl->count = calloc((size_t)R, sizeof(int32_t));
	pl->first = calloc((size_t)R + 1, sizeof(int32_t));
	if (!pl->rank_of || !pl->slot_of || !pl->experts_of || !pl->count || !pl->first) {
		moe_ep_placement_free(pl);
		return moe_fail(MOE_ERR_NOMEM, "ep placement: no memory for %d experts on %d ranks", E, R);
	}
	for (int32_t e = 0; e < E; e++)
		pl->rank_of[e] = -1;
	return MOE_OK;
}

/* Fills count, first, experts_of, slot_of and max_local from rank_of. */
static void index_placement(struct moe_ep_placement *pl)
{
	for (int32_t e = 0; e < pl->experts; e++)
		pl->count[pl->rank_of[e]]++;
	pl->first[0] = 0;
	pl->max_local = 0;
	for (int32_t r = 0; r < pl->ranks; r++) {
		pl->first[r + 1] = pl->first[r] + pl->count[r];
		if (pl->count[r] > pl->max_local)
			pl->max_local = pl->count[r];
		pl->count[r] = 0;
	}
	for (int32_t e = 0; e < pl->experts; e++) {
		const int32_t r = pl->rank_of[e];
		pl->slot_of[e] = pl->count[r];
		pl->experts_of[pl->first[r] + pl->count[r]++] = e;
	}
}

enum moe_status moe_ep_placement_make(enum moe_ep_placement_kind kind, int32_t E, int32_t R,
				      struct moe_ep_placement *out)
{
	if (kind != MOE_EP_CONTIGUOUS && kind != MOE_EP_ROUND_ROBIN)
		return moe_fail(MOE_ERR_INVALID_ARG, "ep placement: kind %d is not contiguous or round-robin", (int)kind);
	enum moe_status s = alloc_placement(E, R, out);
	if (s != MOE_OK)
		return s;
	for (int32_t r = 0; r < R && kind == MOE_EP_CONTIGUOUS; r++)
		for (int64_t e = (int64_t)E * r / R; e < (int64_t)E * (r + 1) / R; e++)
			out->rank_of[e] = r;
	for (int32_t e = 0; e < E && kind == MOE_EP_ROUND_ROBIN; e++)
		out->rank_of[e] = e % R;
	index_placement(out);
	return MOE_OK;
}

/* A decimal integer in [lo, hi] at *p, advancing *p past it; false when there is none. */
static bool parse_int(const char **p, long lo, long hi, long *v)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (!isdigit((unsigned char)**p) && **p != '-')
		return false;
	char *end;
	errno = 0;
	*v = strtol(*p, &end, 10);
	if (end == *p || errno || *v < lo || *v > hi)
		return false;
	*p = end;
	return true;
}

enum moe_status moe_ep_placement_load(const char *path, int32_t E, int32_t R, struct moe_ep_placement *out)
{
	enum moe_status s = alloc_placement(E, R, out);
	if (s != MOE_OK)
		return s;
	FILE *f = fopen(path, "r");
	if (!f) {
		s = moe_fail(MOE_ERR_IO, "%s: cannot open the placement file: %s", path, strerror(errno));
		moe_ep_placement_free(out);
		return s;
	}
	int32_t *line_of = calloc((size_t)E, sizeof(int32_t));
	if (!line_of) {
		fclose(f);
		moe_ep_placement_free(out);
		return moe_fail(MOE_ERR_NOMEM, "%s: no memory", path);
	}
	char buf[256];
	int32_t line = 0;
	while (s == MOE_OK && fgets(buf, sizeof buf, f)) {
		line++;
		const size_t len = strlen(buf);
		if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: line longer than %zu characters", path, line, sizeof buf - 2);
			break;
		}
		const char *p = buf;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == 0)
			continue;
		long e, r;
		const char *q = p;
		if (!parse_int(&q, 0, E - 1, &e)) {
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: expected an expert id in 0..%d, got \"%.*s\"", path, line, E - 1,
				     (int)strcspn(p, " \t\r\n"), p);
			break;
		}
		p = q;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!parse_int(&q, 0, R - 1, &r)) {
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: expert %ld: expected a rank in 0..%d (running on %d ranks), got \"%.*s\"",
				     path, line, e, R - 1, R, (int)strcspn(p, " \t\r\n"), p);
			break;
		}
		while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
			q++;
		if (*q) {
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: unexpected text after \"EXPERT RANK\": \"%.*s\"", path, line,
				     (int)strcspn(q, "\r\n"), q);
			break;
		}
		if (out->rank_of[e] >= 0) {
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: expert %ld placed twice (first at line %d, on rank %d)", path, line,
				     e, line_of[e], out->rank_of[e]);
			break;
		}
		out->rank_of[e] = (int32_t)r;
		line_of[e] = line;
	}
	if (s == MOE_OK && ferror(f))
		s = moe_fail(MOE_ERR_IO, "%s: read error after line %d", path, line);
	for (int32_t e = 0; e < E && s == MOE_OK; e++)
		if (out->rank_of[e] < 0)
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: end of file, but expert %d has no rank (every expert 0..%d needs a line)",
				     path, line, e, E - 1);
	fclose(f);
	free(line_of);
	if (s != MOE_OK) {
		moe_ep_placement_free(out);
		return s;
	}
	index_placement(out);
	return MOE_OK;
}
