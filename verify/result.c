/* Case results: recording mismatches, ULP distances, error/bound ratios and untrusted reasons.
 * A result starts PASS and only moves towards worse states: PASS < UNTRUSTED < FAIL (SKIP is set by
 * the engine before a case runs). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "verify.h"

static const char *const vstatus_names[] = { "PASS", "SKIP", "UNTRUSTED", "FAIL" };

const char *moe_vstatus_name(enum moe_vstatus s)
{
	return (s >= 0 && s <= MOE_V_FAIL) ? vstatus_names[s] : "?";
}

void moe_vresult_init(struct moe_vresult *r)
{
	memset(r, 0, sizeof *r);
	r->status = MOE_V_PASS;
	r->worst_ulp = -1;
	r->worst_ratio = -1;
}

void moe_vresult_mismatch(struct moe_vresult *r, const char *what, int64_t index, double kernel,
			  double ref, double err, double bound)
{
	if (r->nmis < MOE_V_MAX_MISMATCH) {
		struct moe_vmismatch *m = &r->mis[r->nmis++];
		snprintf(m->what, sizeof m->what, "%s", what);
		m->index = index;
		m->kernel = kernel;
		m->ref = ref;
		m->err = err;
		m->bound = bound;
	}
	if (r->status != MOE_V_FAIL && !r->reason[0])
		snprintf(r->reason, sizeof r->reason, "%s[%lld] differs", what, (long long)index);
	r->total_mis++;
	r->status = MOE_V_FAIL;
}

void moe_vresult_ulp(struct moe_vresult *r, double ulp, double budget)
{
	if (ulp > r->worst_ulp || r->worst_ulp < 0) {
		r->worst_ulp = ulp;
		r->ulp_budget = budget;
	}
}

void moe_vresult_ratio(struct moe_vresult *r, double ratio)
{
	if (ratio > r->worst_ratio || ratio != ratio)
		r->worst_ratio = ratio;
}

void moe_vresult_untrusted(struct moe_vresult *r, const char *fmt, ...)
{
	va_list ap;
	if (r->status == MOE_V_FAIL || r->status == MOE_V_UNTRUSTED)
		return;
	r->status = MOE_V_UNTRUSTED;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
}

void moe_vresult_nomem(struct moe_vresult *r, const char *fmt, ...)
{
	va_list ap;
	r->nomem = true;
	if (r->status == MOE_V_FAIL || r->status == MOE_V_UNTRUSTED)
		return;
	r->status = MOE_V_UNTRUSTED;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
}

void moe_vname_list_add(char *list, size_t size, const char *names)
{
	const char *p = names;
	while (p && *p) {
		const char *end = strstr(p, ", ");
		const size_t n = end ? (size_t)(end - p) : strlen(p);
		bool seen = false;
		for (const char *q = list; *q && !seen;) {
			const char *qe = strstr(q, ", ");
			const size_t qn = qe ? (size_t)(qe - q) : strlen(q);
			seen = qn == n && !strncmp(q, p, n);
			q = qe ? qe + 2 : q + qn;
		}
		const size_t used = strlen(list);
		if (!seen && n > 0 && used + n + 3 <= size)
			snprintf(list + used, size - used, "%s%.*s", used ? ", " : "", (int)n, p);
		p = end ? end + 2 : p + n;
	}
}

void moe_vresult_ran(struct moe_vresult *r, const char *name)
{
	moe_vname_list_add(r->ran, sizeof r->ran, name);
}
