/* The readable table printed after a run (and saved as table.txt): one line per benchmark, grouped
 * by op in run order. Times in the most readable unit; rates only where they apply; the roofline
 * column gives the fraction reached and the ceiling level it was judged against; x-columns are
 * speedups against the reference and the best baseline measured on the same key. wGB/s: the weight
 * bytes of the touched experts per second (expert and layer: the decode figure that matters);
 * pack: the backend's pack at setup (time, then packed MiB), measured once, not in the median.
 * A row's note (e.g. why it was not packed) follows it indented; the run's warnings (fewer cores
 * than threads) and the ggml baseline's status close the table. */
#include <math.h>
#include <string.h>

#include "bench.h"

static void time_str(double ns, char *out, size_t n)
{
	if (!isfinite(ns))
		snprintf(out, n, "-");
	else if (ns < 1e3)
		snprintf(out, n, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(out, n, "%.2f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(out, n, "%.2f ms", ns / 1e6);
	else
		snprintf(out, n, "%.2f s", ns / 1e9);
}

static void val(double v, const char *fmt, char *out, size_t n)
{
	if (isfinite(v))
		snprintf(out, n, fmt, v);
	else
		snprintf(out, n, "-");
}

static void rate_str(double per_s, char *out, size_t n)
{
	if (!isfinite(per_s))
		snprintf(out, n, "-");
	else if (per_s >= 1e6)
		snprintf(out, n, "%.2fM", per_s / 1e6);
	else if (per_s >= 1e3)
		snprintf(out, n, "%.1fk", per_s / 1e3);
	else
		snprintf(out, n, "%.0f", per_s);
}

void moe_bench_print_table(FILE *f, const struct moe_bench_results *r)
{
	char last_op[16] = "";
	for (size_t i = 0; i < r->n; i++) {
		const struct moe_bench_result *e = &r->v[i];
		if (strcmp(e->op, last_op) != 0) {
			snprintf(last_op, sizeof last_op, "%s", e->op);
			fprintf(f, "\n%-52s %-20s %10s %6s %8s %7s %7s %8s %12s %7s %7s %7s %6s %16s\n", e->op, "backend",
				"median", "cv%", "GFLOP/s", "GB/s", "wGB/s", "tok/s", "roofline", "vs ref", "vs base",
				"vs ggml", "x 1t", "pack");
		}
		char key[53], name[72], med[16], cv[16], gf[16], gb[16], wgb[16], tok[16], roof[24], sref[16], sbase[16];
		char sggml[16], s1t[16], pack[40];
		const char *slash = strchr(e->key, '/');
		snprintf(key, sizeof key, "%.52s", slash ? slash + 1 : e->key);
		/* Variant tables are named after their kernel; the moe_ prefix adds nothing here. */
		snprintf(name, sizeof name, "%s%s", strncmp(e->backend, "moe_", 4) ? e->backend : e->backend + 4,
			 e->dispatched ? "*" : "");
		if (e->skipped) {
			fprintf(f, "%-52s %-20s %s: %s\n", key, name, e->failed ? "FAILED" : "skipped", e->error);
			continue;
		}
		val(e->weight_gbps, "%.2f", wgb, sizeof wgb);
		val(e->speedup_ggml, "%.2fx", sggml, sizeof sggml);
		val(e->speedup_1t, "%.2fx", s1t, sizeof s1t);
		if (e->packed) {
			char t[16];
			time_str(e->pack_ns, t, sizeof t);
			snprintf(pack, sizeof pack, "%s/%.0fM", t, e->packed_bytes / (1u << 20));
		} else {
			snprintf(pack, sizeof pack, "-");
		}
		time_str(e->real.median, med, sizeof med);
		val(e->real.cv * 100, "%.1f", cv, sizeof cv);
		val(e->gflops, "%.2f", gf, sizeof gf);
		val(e->gbps, "%.2f", gb, sizeof gb);
		rate_str(e->tokens_per_s, tok, sizeof tok);
		if (isfinite(e->roof_frac))
			snprintf(roof, sizeof roof, e->roof_frac >= 0.01 ? "%.1f%% %s" : "%.2g%% %s", e->roof_frac * 100,
				 moe_bench_level_name(e->level));
		else
			snprintf(roof, sizeof roof, "-");
		val(e->speedup_ref, "%.2fx", sref, sizeof sref);
		double base = isfinite(e->speedup_openblas) ? e->speedup_openblas : e->speedup_torch;
		val(base, "%.2fx", sbase, sizeof sbase);
		fprintf(f, "%-52s %-20s %10s %6s %8s %7s %7s %8s %12s %7s %7s %7s %6s %16s\n", key, name, med, cv, gf, gb,
			wgb, tok, roof, sref, sbase, sggml, s1t, pack);
		if (e->note[0])
			fprintf(f, "%-52s   note: %s\n", "", e->note);
	}
	fprintf(f, "\n*: the kernel dispatch runs here. roofline: fraction of min(peak, AI x bandwidth of the level "
		   "shown). vs base: speedup against OpenBLAS (expert, layer) or PyTorch (routing) in this run.\n"
		   "wGB/s: weight bytes of the touched experts per second. x 1t: speedup over the same backend on "
		   "1 thread (--scaling). pack: time/MiB of the backend's pack at setup, not in the median.\n");
	if (r->ggml_note[0])
		fprintf(f, "%s\n", r->ggml_note);
	if (r->warning[0])
		fprintf(f, "WARNING: %s\n", r->warning);
}

static enum moe_status write_table(FILE *f, void *ctx)
{
	moe_bench_print_table(f, ctx);
	return ferror(f) ? moe_fail(MOE_ERR_IO, "bench: writing the table failed") : MOE_OK;
}

enum moe_status moe_bench_write_table(const char *path, const struct moe_bench_results *r)
{
	return moe_bench_write_atomic(path, write_table, (void *)r);
}
