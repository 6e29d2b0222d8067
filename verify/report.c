/* Reports: one text line per (op, backend, case group), the details of each FAIL (a repro command
 * and the first mismatches), a summary table, and the full report as JSON (jansson), written to a
 * temporary file in the same folder, fsync'ed and renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "verify.h"

char *moe_vrepro(const char *backend_arg, const struct moe_vcase *c, char *buf, size_t size)
{
	char spec[512];
	moe_vcase_format(c, spec, sizeof spec);
	snprintf(buf, size, "moebench verify --backend %s --op %s --case '%s'", backend_arg,
		 moe_op_name(c->op), spec);
	return buf;
}

static void repro_from_spec(const char *backend_arg, enum moe_op op, const char *spec, char *buf, size_t size)
{
	snprintf(buf, size, "moebench verify --backend %s --op %s --case '%s'", backend_arg, moe_op_name(op), spec);
}

static void fmt_num(char *buf, size_t size, double v)
{
	if (v != v)
		snprintf(buf, size, "nan");
	else if (v < 0)
		snprintf(buf, size, "-");
	else if (v == 0 || (v >= 0.01 && v < 1e6))
		snprintf(buf, size, "%.3g", v);
	else
		snprintf(buf, size, "%.2e", v);
}

void moe_vreport_print_group(FILE *f, const struct moe_vgroup *g, const char *backend_arg)
{
	char ulp[48] = "-", ratio[24], w[24], bud[24];
	const int64_t ran = g->n[MOE_V_PASS] + g->n[MOE_V_FAIL] + g->n[MOE_V_UNTRUSTED];
	if (g->worst_ulp >= 0) {
		fmt_num(w, sizeof w, g->worst_ulp);
		fmt_num(bud, sizeof bud, g->ulp_budget);
		snprintf(ulp, sizeof ulp, "%s/%s", w, bud);
	}
	fmt_num(ratio, sizeof ratio, g->worst_ratio);
	fprintf(f, "%-9s %-10s %-18s %-34s cases %6lld", moe_vstatus_name(g->status), moe_op_name(g->op),
		g->backend, g->name, (long long)ran);
	if (g->status == MOE_V_SKIP) {
		fprintf(f, "  %s\n", g->skip_reason);
		return;
	}
	fprintf(f, "  ulp %-13s ratio %-8s near-ties %lld", ulp, ratio, (long long)g->near_ties);
	if (g->n[MOE_V_FAIL])
		fprintf(f, "  failed %lld", (long long)g->n[MOE_V_FAIL]);
	if (g->n[MOE_V_UNTRUSTED])
		fprintf(f, "  untrusted %lld", (long long)g->n[MOE_V_UNTRUSTED]);
	if (g->n[MOE_V_SKIP])
		fprintf(f, "  skipped %lld (%s)", (long long)g->n[MOE_V_SKIP], g->skip_reason);
	if (g->ran[0])
		fprintf(f, "  ran %s", g->ran);
	fputc('\n', f);
	for (int i = 0; i < g->nfail_kept; i++) {
		const struct moe_vresult *r = &g->fail[i];
		char repro[640];
		repro_from_spec(backend_arg, g->op, g->fail_spec[i], repro, sizeof repro);
		fprintf(f, "    FAIL: %s\n    repro: %s\n", r->reason, repro);
		for (int m = 0; m < r->nmis; m++) {
			const struct moe_vmismatch *x = &r->mis[m];
			char err[32] = "-";
			if (!isnan(x->err))
				snprintf(err, sizeof err, "%.3g", x->err);
			fprintf(f, "      %s[%lld]: kernel %.9g, reference %.9g, error %s, bound %.3g\n", x->what,
				(long long)x->index, x->kernel, x->ref, err, x->bound);
		}
		if (r->total_mis > r->nmis)
			fprintf(f, "      ... %lld mismatches in this case\n", (long long)r->total_mis);
	}
	if (g->n[MOE_V_FAIL] > g->nfail_kept)
		fprintf(f, "    ... and %lld more failing cases in this group\n",
			(long long)(g->n[MOE_V_FAIL] - g->nfail_kept));
	if (g->status == MOE_V_UNTRUSTED && g->untrusted_spec[0]) {
		char repro[640];
		repro_from_spec(backend_arg, g->op, g->untrusted_spec, repro, sizeof repro);
		fprintf(f, "    UNTRUSTED: %s\n    repro: %s\n", g->untrusted_reason, repro);
	}
}

void moe_vreport_print_summary(FILE *f, const struct moe_vreport *rep)
{
	fprintf(f, "\nsummary (case groups; cases in parentheses)\n");
	fprintf(f, "  %-18s %-10s %14s %14s %14s %14s\n", "backend", "op", "PASS", "FAIL", "UNTRUSTED", "SKIP");
	for (size_t i = 0; i < rep->n; i++) {
		const struct moe_vgroup *g = &rep->g[i];
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = rep->g[j].op == g->op && !strcmp(rep->g[j].backend, g->backend);
		if (seen)
			continue;
		int64_t gs[4] = { 0 }, cs[4] = { 0 };
		for (size_t j = i; j < rep->n; j++) {
			const struct moe_vgroup *h = &rep->g[j];
			if (h->op != g->op || strcmp(h->backend, g->backend))
				continue;
			gs[h->status]++;
			for (int s = 0; s < 4; s++)
				cs[s] += h->n[s];
		}
		char col[4][32];
		for (int s = 0; s < 4; s++)
			snprintf(col[s], sizeof col[s], "%lld (%lld)", (long long)gs[s], (long long)cs[s]);
		fprintf(f, "  %-18s %-10s %14s %14s %14s %14s\n", g->backend, moe_op_name(g->op), col[MOE_V_PASS],
			col[MOE_V_FAIL], col[MOE_V_UNTRUSTED], col[MOE_V_SKIP]);
	}
	fprintf(f, "%lld cases in %.2f s: %zu groups PASS, %zu FAIL, %zu UNTRUSTED, %zu SKIP\n",
		(long long)rep->cases, rep->seconds, moe_vreport_count(rep, MOE_V_PASS),
		moe_vreport_count(rep, MOE_V_FAIL), moe_vreport_count(rep, MOE_V_UNTRUSTED),
		moe_vreport_count(rep, MOE_V_SKIP));
	if (rep->nomem)
		fprintf(f, "%lld case(s) could not get their memory and did not run: the verdict is incomplete "
			"(their groups are UNTRUSTED)\n", (long long)rep->nomem);
}

/* JSON has no NaN or infinity: those become null. */
static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *group_json(const struct moe_vgroup *g)
{
	json_t *o = json_object(), *fails = json_array();
	json_object_set_new(o, "backend", json_string(g->backend));
	json_object_set_new(o, "op", json_string(moe_op_name(g->op)));
	json_object_set_new(o, "group", json_string(g->name));
	json_object_set_new(o, "status", json_string(moe_vstatus_name(g->status)));
	json_object_set_new(o, "cases", json_pack("{sI sI sI sI}", "pass", (json_int_t)g->n[MOE_V_PASS],
						  "fail", (json_int_t)g->n[MOE_V_FAIL], "untrusted",
						  (json_int_t)g->n[MOE_V_UNTRUSTED], "skip",
						  (json_int_t)g->n[MOE_V_SKIP]));
	json_object_set_new(o, "worst_ulp", g->worst_ulp >= 0 ? jnum(g->worst_ulp) : json_null());
	json_object_set_new(o, "ulp_budget", g->worst_ulp >= 0 ? jnum(g->ulp_budget) : json_null());
	json_object_set_new(o, "worst_error_bound_ratio", g->worst_ratio >= 0 || g->worst_ratio != g->worst_ratio
								 ? jnum(g->worst_ratio) : json_null());
	json_object_set_new(o, "near_ties", json_integer(g->near_ties));
	if (g->ran[0])
		json_object_set_new(o, "ran", json_string(g->ran));
	if (g->skip_reason[0])
		json_object_set_new(o, "skip_reason", json_string(g->skip_reason));
	for (int i = 0; i < g->nfail_kept; i++) {
		const struct moe_vresult *r = &g->fail[i];
		json_t *f = json_object(), *mis = json_array();
		json_object_set_new(f, "case", json_string(g->fail_spec[i]));
		json_object_set_new(f, "reason", json_string(r->reason));
		json_object_set_new(f, "mismatch_count", json_integer(r->total_mis));
		for (int m = 0; m < r->nmis; m++) {
			const struct moe_vmismatch *x = &r->mis[m];
			json_t *j = json_object();
			json_object_set_new(j, "output", json_string(x->what));
			json_object_set_new(j, "index", json_integer(x->index));
			json_object_set_new(j, "kernel", jnum(x->kernel));
			json_object_set_new(j, "reference", jnum(x->ref));
			json_object_set_new(j, "error", jnum(x->err));
			json_object_set_new(j, "bound", jnum(x->bound));
			json_array_append_new(mis, j);
		}
		json_object_set_new(f, "mismatches", mis);
		json_array_append_new(fails, f);
	}
	json_object_set_new(o, "failures", fails);
	if (g->untrusted_spec[0])
		json_object_set_new(o, "untrusted", json_pack("{ss ss}", "case", g->untrusted_spec, "reason",
							      g->untrusted_reason));
	return o;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		const ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* The report text into path. A regular file (or a new one) is replaced atomically: a temporary
 * file in the same folder, fsync'ed, then renamed into place, so a crash leaves the old report or
 * the whole new one. Anything else that exists (/dev/stdout, a FIFO, /dev/full) is written in
 * place: renaming over it would replace the device node. Every failure names the path and errno. */
static enum moe_status write_text(const char *path, const char *text, size_t len)
{
	struct stat st;
	char tmp[4096];
	int err = 0;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		const int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return moe_fail(MOE_ERR_IO, "verify --json: cannot open '%s': %s", path, strerror(errno));
		if (!write_all(fd, text, len))
			err = errno ? errno : EIO;
		if (close(fd) != 0 && !err)
			err = errno;
		if (err)
			return moe_fail(MOE_ERR_IO, "verify --json: cannot write '%s': %s", path, strerror(err));
		return MOE_OK;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
		return moe_fail(MOE_ERR_INVALID_ARG, "verify --json: path too long (%zu characters)", strlen(path));
	const int fd = mkstemp(tmp);
	if (fd < 0)
		return moe_fail(MOE_ERR_IO, "verify --json: cannot create a temporary file next to '%s': %s", path,
				strerror(errno));
	fchmod(fd, 0644);
	if (!write_all(fd, text, len) || fsync(fd) != 0)
		err = errno ? errno : EIO;
	if (close(fd) != 0 && !err)
		err = errno;
	if (err) {
		unlink(tmp);
		return moe_fail(MOE_ERR_IO, "verify --json: cannot write '%s' (as '%s'): %s", path, tmp, strerror(err));
	}
	if (rename(tmp, path) != 0) {
		err = errno;
		unlink(tmp);
		return moe_fail(MOE_ERR_IO, "verify --json: cannot rename '%s' to '%s': %s", tmp, path, strerror(err));
	}
	/* the rename itself must reach the disk too */
	char dir[4096];
	const char *slash = strrchr(path, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1, slash ? path : ".");
	const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return MOE_OK;
}

enum moe_status moe_vreport_write_json(const struct moe_vreport *rep, const char *path)
{
	json_t *root = json_object(), *groups = json_array();
	json_object_set_new(root, "moebench", json_string(MOE_VERSION_STRING));
	json_object_set_new(root, "cases", json_integer(rep->cases));
	json_object_set_new(root, "no_memory", json_integer(rep->nomem));
	json_object_set_new(root, "seconds", json_real(rep->seconds));
	for (size_t i = 0; i < rep->n; i++)
		json_array_append_new(groups, group_json(&rep->g[i]));
	json_object_set_new(root, "groups", groups);
	json_object_set_new(root, "summary",
			    json_pack("{sI sI sI sI}", "pass", (json_int_t)moe_vreport_count(rep, MOE_V_PASS),
				      "fail", (json_int_t)moe_vreport_count(rep, MOE_V_FAIL), "untrusted",
				      (json_int_t)moe_vreport_count(rep, MOE_V_UNTRUSTED), "skip",
				      (json_int_t)moe_vreport_count(rep, MOE_V_SKIP)));
	char *text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
	json_decref(root);
	if (!text)
		return moe_fail(MOE_ERR_NOMEM, "verify --json: no memory to format the report for '%s'", path);
	const enum moe_status s = write_text(path, text, strlen(text));
	free(text);
	return s;
}
