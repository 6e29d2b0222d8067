/* The engine: for one backend, every selected op, every case (catalogue or explicit list), decide
 * SKIP (ISA unavailable, op not provided, problem declined by supports()) or run the case through
 * the op's runner, and aggregate the results per (op, backend, case group). The backend is only
 * ever used through its table; the oracle is always the reference backend and the f64 references.
 * With o->isolate (plugins), every call into the backend's code, supports() included, happens in
 * a child process (run_isolated.c): a crash, a hang or an exit there is a FAIL of its case. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vcases.h"

enum moe_status moe_catalogue(enum moe_op op, enum moe_vdepth depth, uint64_t base_seed,
			      unsigned profile_mask, struct moe_vcase_list *out)
{
	switch (op) {
	case MOE_OP_ROUTE: return moe_catalogue_route(depth, base_seed, profile_mask, out);
	case MOE_OP_NORM: return moe_catalogue_norm(depth, base_seed, out);
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: return moe_catalogue_codec(op, depth, base_seed, out);
	case MOE_OP_EXPERT: return moe_catalogue_expert(depth, base_seed, out);
	case MOE_OP_LAYER: return moe_catalogue_layer(depth, base_seed, profile_mask, out);
	case MOE_OP_COUNT: break;
	}
	return moe_fail(MOE_ERR_INVALID_ARG, "verify: op %d out of range", (int)op);
}

void moe_vrun_case(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		   struct moe_vresult *r)
{
	moe_vresult_init(r);
	switch (c->op) {
	case MOE_OP_ROUTE: moe_vrun_route(b, c, s, r); break;
	case MOE_OP_NORM: moe_vrun_norm(b, c, s, r); break;
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: moe_vrun_codec(b, c, s, r); break;
	case MOE_OP_EXPERT: moe_vrun_expert(b, c, s, r); break;
	case MOE_OP_LAYER: moe_vrun_layer(b, c, s, r); break;
	case MOE_OP_COUNT: break;
	}
}

/* ---- aggregation ---- */

void moe_vreport_free(struct moe_vreport *rep)
{
	free(rep->g);
	memset(rep, 0, sizeof *rep);
}

static struct moe_vgroup *group_for(struct moe_vreport *rep, const char *bname, enum moe_op op,
				    const char *name)
{
	for (size_t i = rep->n; i-- > 0;) {
		struct moe_vgroup *g = &rep->g[i];
		if (g->op == op && !strcmp(g->name, name) && !strcmp(g->backend, bname))
			return g;
	}
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? 2 * rep->cap : 64;
		struct moe_vgroup *v = realloc(rep->g, cap * sizeof *v);
		if (!v)
			return NULL;
		rep->g = v;
		rep->cap = cap;
	}
	struct moe_vgroup *g = &rep->g[rep->n++];
	memset(g, 0, sizeof *g);
	snprintf(g->backend, sizeof g->backend, "%s", bname);
	snprintf(g->name, sizeof g->name, "%s", name);
	g->op = op;
	g->status = MOE_V_SKIP;
	g->worst_ulp = -1;
	g->worst_ratio = -1;
	return g;
}

enum moe_status moe_vreport_add(struct moe_vreport *rep, const char *bname, const struct moe_vcase *c,
				const struct moe_vresult *r)
{
	struct moe_vgroup *g = group_for(rep, bname, c->op, c->group);
	if (!g)
		return moe_fail(MOE_ERR_NOMEM, "verify: no memory for the report");
	rep->cases++;
	rep->nomem += r->nomem;
	g->n[r->status]++;
	if (r->status == MOE_V_SKIP) {
		if (!g->skip_reason[0])
			snprintf(g->skip_reason, sizeof g->skip_reason, "%s", r->reason);
	} else {
		if (r->worst_ulp >= 0 && (g->worst_ulp < 0 || r->worst_ulp > g->worst_ulp)) {
			g->worst_ulp = r->worst_ulp;
			g->ulp_budget = r->ulp_budget;
		}
		if (r->worst_ratio > g->worst_ratio || r->worst_ratio != r->worst_ratio)
			g->worst_ratio = r->worst_ratio;
		g->near_ties += r->near_ties;
	}
	moe_vname_list_add(g->ran, sizeof g->ran, r->ran);
	if (r->status == MOE_V_FAIL && g->nfail_kept < 3) {
		moe_vcase_format(c, g->fail_spec[g->nfail_kept], sizeof g->fail_spec[0]);
		g->fail[g->nfail_kept++] = *r;
	}
	if (r->status == MOE_V_UNTRUSTED && !g->untrusted_spec[0]) {
		moe_vcase_format(c, g->untrusted_spec, sizeof g->untrusted_spec);
		snprintf(g->untrusted_reason, sizeof g->untrusted_reason, "%s", r->reason);
	}
	g->status = g->n[MOE_V_FAIL]        ? MOE_V_FAIL
		    : g->n[MOE_V_UNTRUSTED] ? MOE_V_UNTRUSTED
		    : g->n[MOE_V_PASS]      ? MOE_V_PASS
					    : MOE_V_SKIP;
	return MOE_OK;
}

size_t moe_vreport_count(const struct moe_vreport *rep, enum moe_vstatus s)
{
	size_t n = 0;
	for (size_t i = 0; i < rep->n; i++)
		n += rep->g[i].status == s;
	return n;
}

/* ---- running a backend ---- */

/* A group "all" for the whole op: SKIP (not provided, ISA unavailable) or FAIL (the plugin's
 * supports() crashed when asked about the op). */
static void whole_op_group(struct moe_vreport *rep, const char *bname, enum moe_op op, enum moe_vstatus status,
			   const char *why)
{
	struct moe_vcase c;
	struct moe_vresult r;
	moe_vcase_init(&c, op);
	snprintf(c.group, sizeof c.group, "all");
	moe_vresult_init(&r);
	r.status = status;
	snprintf(r.reason, sizeof r.reason, "%s", why);
	moe_vreport_add(rep, bname, &c, &r);
	rep->cases--;
}

static void skip_group(struct moe_vreport *rep, const char *bname, enum moe_op op, const char *why)
{
	whole_op_group(rep, bname, op, MOE_V_SKIP, why);
}

/* Why supports() declined: for routing, whether another profile of the same problem is taken. */
static void decline_reason(const struct moe_backend *b, const struct moe_vcase *c, char *buf, size_t size)
{
	if (c->op == MOE_OP_ROUTE || c->op == MOE_OP_LAYER) {
		struct moe_vcase alt = *c;
		struct moe_layer_params lp;
		for (int prof = 0; prof < MOE_PROFILE_COUNT; prof++) {
			alt.route.profile = (enum moe_profile)prof;
			if (prof != (int)c->route.profile &&
			    moe_backend_provides(b, c->op, moe_vcase_problem(&alt, &lp))) {
				snprintf(buf, size, "profile not supported (%s)", moe_profile_name(c->route.profile));
				return;
			}
		}
	}
	snprintf(buf, size, "problem not supported (declined by supports())");
}

static void print_op_groups(const struct moe_verify_opts *o, const struct moe_vreport *rep, size_t from,
			    const char *backend_arg)
{
	for (size_t i = from; o->log && i < rep->n; i++) {
		const struct moe_vgroup *g = &rep->g[i];
		if (o->hide_declined && g->status == MOE_V_SKIP && strstr(g->skip_reason, "not supported"))
			continue;
		moe_vreport_print_group(o->log, g, backend_arg);
	}
	if (o->log)
		fflush(o->log);
}

/* Cases run in batches: each worker takes every jobs-th case of the batch with its own scratch, and
 * the results are added to the report in case order, so the report does not depend on the number
 * of workers. Kernels must therefore be callable from several threads at once, which the ABI asks
 * of them anyway (they keep no state); --jobs 1 runs everything in the calling thread. */
#define MOE_BATCH 1024
#define MOE_MAX_JOBS 16

struct batch {
	const struct moe_backend *b;
	const struct moe_vcase *const *c;
	struct moe_vresult *r;
	size_t n;
	int jobs, id;
	struct moe_vscratch *s;
};

void moe_vrun_one(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		  struct moe_vresult *r, void (*before_run)(void *ctx), void *ctx)
{
	struct moe_layer_params lp;
	moe_vresult_init(r);
	if (!moe_backend_provides(b, c->op, moe_vcase_problem(c, &lp))) {
		r->status = MOE_V_SKIP;
		decline_reason(b, c, r->reason, sizeof r->reason);
		return;
	}
	if (before_run)
		before_run(ctx);
	moe_vrun_case(b, c, s, r);
}

static void *batch_worker(void *arg)
{
	struct batch *w = arg;
	for (size_t i = (size_t)w->id; i < w->n; i += (size_t)w->jobs)
		moe_vrun_one(w->b, w->c[i], w->s, &w->r[i], NULL, NULL);
	return NULL;
}

enum moe_status moe_verify_backend(const struct moe_backend *b, enum moe_isa isa,
				   const struct moe_verify_opts *o, struct moe_vreport *rep)
{
	const char *bname = b->name ? b->name : "(unnamed)";
	const char *barg = o->backend_arg ? o->backend_arg : bname;
	const int jobs = o->jobs > 1 ? (o->jobs < MOE_MAX_JOBS ? o->jobs : MOE_MAX_JOBS) : 1;
	struct moe_vscratch *s[MOE_MAX_JOBS] = { 0 };
	const struct moe_vcase **pending = malloc(MOE_BATCH * sizeof *pending);
	struct moe_vresult *res = malloc(MOE_BATCH * sizeof *res);
	bool *ran = malloc(MOE_BATCH * sizeof *ran);
	enum moe_status st = MOE_OK;
	struct timespec t0, t1;
	for (int j = 0; j < jobs; j++)
		if (!(s[j] = moe_vscratch_new()))
			st = MOE_ERR_NOMEM;
	if (!pending || !res || !ran || st != MOE_OK) {
		st = moe_fail(MOE_ERR_NOMEM, "verify: no memory for scratch buffers");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int op = 0; op < MOE_OP_COUNT && st == MOE_OK; op++) {
		if (!((o->op_mask >> op) & 1u))
			continue;
		const size_t first = rep->n;
		if (isa > moe_isa_hardware()) {
			char why[96];
			snprintf(why, sizeof why, "ISA unavailable (needs %s, CPU has %s)", moe_isa_name(isa),
				 moe_isa_name(moe_isa_hardware()));
			if (moe_backend_provides(b, (enum moe_op)op, NULL))
				skip_group(rep, bname, (enum moe_op)op, why);
			print_op_groups(o, rep, first, barg);
			continue;
		}
		bool provides;
		char why[160];
		if (o->isolate && !moe_vprovides_isolated(b, (enum moe_op)op, &provides, why, sizeof why)) {
			whole_op_group(rep, bname, (enum moe_op)op, MOE_V_FAIL, why);
			print_op_groups(o, rep, first, barg);
			continue;
		}
		if (!o->isolate)
			provides = moe_backend_provides(b, (enum moe_op)op, NULL);
		if (!provides) {
			skip_group(rep, bname, (enum moe_op)op, "not provided");
			print_op_groups(o, rep, first, barg);
			continue;
		}
		struct moe_vcase_list own = { 0 };
		const struct moe_vcase_list *list = o->cases;
		if (!list) {
			st = moe_catalogue((enum moe_op)op, o->depth, o->seed, o->profile_mask, &own);
			list = &own;
		}
		for (size_t i = 0; st == MOE_OK && i < list->n;) {
			size_t n = 0;
			for (; i < list->n && n < MOE_BATCH; i++)
				if ((int)list->v[i].op == op)
					pending[n++] = &list->v[i];
			if (o->isolate) {
				moe_vrun_isolated(b, pending, n, jobs, res, ran);
			} else {
				struct batch w[MOE_MAX_JOBS];
				pthread_t th[MOE_MAX_JOBS];
				int started = 0;
				for (int j = 0; j < jobs; j++)
					w[j] = (struct batch){ b, pending, res, n, jobs, j, s[j] };
				for (int j = 1; j < jobs && n > (size_t)j; j++, started++)
					if (pthread_create(&th[j - 1], NULL, batch_worker, &w[j]) != 0)
						break;
				batch_worker(&w[0]);
				for (int j = 0; j < started; j++)
					pthread_join(th[j], NULL);
				/* a worker that could not start: its share runs here */
				for (int j = started + 1; j < jobs && n > (size_t)j; j++)
					batch_worker(&w[j]);
				for (size_t k = 0; k < n; k++)
					ran[k] = true;
			}
			for (size_t k = 0; k < n && st == MOE_OK; k++)
				if (ran[k])
					st = moe_vreport_add(rep, bname, pending[k], &res[k]);
		}
		moe_vcase_list_free(&own);
		print_op_groups(o, rep, first, barg);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rep->seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
out:
	for (int j = 0; j < jobs; j++)
		moe_vscratch_free(s[j]);
	free(pending);
	free(res);
	free(ran);
	return st;
}
