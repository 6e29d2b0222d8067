/* `moebench compare A.json B.json`: did B get slower than A?
 *
 * Benchmarks are matched by run_name. Per match: ratio = median(B) / median(A) of the per-repetition
 * times (> 1: B is slower), and the two-sided Mann-Whitney U test of the two sets of repetitions
 * (stats.c says why a rank test). A benchmark regresses when ratio > 1 + threshold and p < alpha;
 * it improves when ratio < 1 / (1 + threshold) and p < alpha; otherwise it is unchanged, or
 * "untested" when a file carries aggregates only (no repetitions: a ratio without a test never
 * fails the comparison). Exit status: 1 if any benchmark regressed, 0 otherwise, 2 on bad input
 * (unreadable or malformed files, bad options, no benchmark in common, a median or ratio that is
 * not finite). */
#include <math.h>
#include <string.h>

#include "bench.h"

static const struct moe_bench_result *match(const struct moe_bench_results *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0)
			return &r->v[i];
	return NULL;
}

int moe_bench_compare_files(const char *a, const char *b, const struct moe_bench_compare_opts *o,
			    FILE *f, FILE *err)
{
	if (!(o->threshold >= 0) || !(o->alpha > 0 && o->alpha < 1)) {
		fprintf(err, "moebench compare: threshold %g must be >= 0 and alpha %g in (0, 1)\n", o->threshold,
			o->alpha);
		return 2;
	}
	struct moe_bench_results ra = { 0 }, rb = { 0 };
	int rc = 0;
	if (moe_bench_read_json(a, &ra) != MOE_OK || moe_bench_read_json(b, &rb) != MOE_OK) {
		fprintf(err, "moebench compare: %s\n", moe_last_error());
		rc = 2;
		goto out;
	}
	size_t common = 0, regressed = 0, improved = 0, unjudged = 0;
	fprintf(f, "%-64s %11s %11s %7s %9s  %s\n", "benchmark", "A median", "B median", "B/A", "p", "verdict");
	for (size_t i = 0; i < ra.n; i++) {
		const struct moe_bench_result *ea = &ra.v[i], *eb = match(&rb, ea->name);
		if (!eb || ea->skipped || eb->skipped || !(ea->real.median > 0) || !(eb->real.median > 0))
			continue;
		common++;
		const double ratio = eb->real.median / ea->real.median;
		/* an infinite median (or a ratio that overflows) is no verdict: inf/x "regressed", x/inf
		 * "improved" would both be made up */
		if (!isfinite(ea->real.median) || !isfinite(eb->real.median) || !isfinite(ratio) || !(ratio > 0)) {
			fprintf(err, "moebench compare: %s: medians %g ns and %g ns give B/A = %g, not a finite ratio: "
				"cannot judge\n", ea->name, ea->real.median, eb->real.median, ratio);
			unjudged++;
			continue;
		}
		struct moe_bench_mwu u = { .p = NAN };
		bool tested = ea->t.reps > 0 && eb->t.reps > 0 &&
			      moe_bench_mann_whitney(ea->t.real_ns, (size_t)ea->t.reps, eb->t.real_ns,
						     (size_t)eb->t.reps, &u) == MOE_OK;
		const char *verdict = "unchanged";
		if (!tested) {
			verdict = "untested (no repetitions)";
		} else if (u.p < o->alpha && ratio > 1 + o->threshold) {
			verdict = "REGRESSED";
			regressed++;
		} else if (u.p < o->alpha && ratio < 1 / (1 + o->threshold)) {
			verdict = "improved";
			improved++;
		}
		char p[16];
		if (tested)
			snprintf(p, sizeof p, "%.2g", u.p);
		else
			snprintf(p, sizeof p, "-");
		fprintf(f, "%-64s %9.4g us %9.4g us %7.3f %9s  %s\n", ea->name, ea->real.median / 1e3,
			eb->real.median / 1e3, ratio, p, verdict);
	}
	if (common == 0) {
		fprintf(err, "moebench compare: %s and %s have no measured benchmark in common\n", a, b);
		rc = 2;
		goto out;
	}
	fprintf(f, "\n%zu benchmarks compared: %zu regressed, %zu improved (threshold %.1f%%, alpha %g, "
		   "two-sided Mann-Whitney U)\n", common, regressed, improved, o->threshold * 100, o->alpha);
	rc = unjudged ? 2 : regressed > 0 ? 1 : 0;
out:
	moe_bench_results_free(&ra);
	moe_bench_results_free(&rb);
	return rc;
}
