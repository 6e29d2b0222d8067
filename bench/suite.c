/* Running the suite: every case on every backend that provides its op for that problem.
 *
 * Per case: the inputs are set up once per thread, on that thread (so pages are first touched
 * where they are used) and shared by all backends; then each provider is measured (timer.c). A
 * backend whose slot is the same function as one already measured on this case (an ISA table that
 * inherits the reference's kernel) is not measured twice. A backend is never special-cased: the
 * reference and the baselines are rows like any other.
 * Threads: `th` are the threads of one call (moe_backend_route/_expert/_layer hand them to a
 * table's _mt slot); the bench pool runs `copies` independent instances at once (throughput mode),
 * whose cost is counted once per copy.
 * Pack: before a backend's runs on a case, every instance packs its weights for that backend
 * (op_impl prepare: moe_backend_pack on th), timed once; the runs use the packed handle; after
 * them the handle is released.
 * Time budget: within a sweep (same group, smallest shape first) the best rate a backend reached
 * predicts the next call's time. The prediction is pessimistic where the rate grows with the shape
 * (a memory-bound decode's flop rate predicts a compute-bound prefill far too slow), so it only
 * skips a benchmark whose single call is predicted over the budget; otherwise the first call runs
 * and moe_bench_measure decides from its real time: it cuts the repetitions of long calls to fit
 * (down to MOE_BENCH_FLOOR_REPS) or skips with the reason when even that floor does not fit.
 * Plugins (backends[k].isolate): their supports(), pack and calls run in child processes (see
 * "plugins in a child process" below); one that crashes, hangs or exits is an error row.
 * SIGINT only sets a flag (async-signal-safe); it is checked between benchmarks, so the current
 * one finishes and everything measured so far is written. A second Ctrl-C kills as usual. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "isolate.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
	signal(sig, SIG_DFL);
}

void moe_bench_install_sigint(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

bool moe_bench_interrupted(void)
{
	return interrupted != 0;
}

const struct moe_bench_op_impl *moe_bench_op_impl(enum moe_op op)
{
	switch (op) {
	case MOE_OP_ROUTE: return &moe_bench_route_impl;
	case MOE_OP_NORM: return &moe_bench_norm_impl;
	case MOE_OP_QUANTIZE: return &moe_bench_quantize_impl;
	case MOE_OP_DEQUANTIZE: return &moe_bench_dequantize_impl;
	case MOE_OP_EXPERT: return &moe_bench_expert_impl;
	case MOE_OP_LAYER: return &moe_bench_layer_impl;
	case MOE_OP_COUNT: break;
	}
	return NULL;
}

const void *moe_bench_case_problem(const struct moe_bench_case *c)
{
	switch (c->op) {
	case MOE_OP_ROUTE: return &c->u.route.p;
	case MOE_OP_NORM: return &c->u.norm;
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: return &c->u.codec;
	case MOE_OP_EXPERT: return &c->u.expert;
	case MOE_OP_LAYER: return &c->u.layer;
	case MOE_OP_COUNT: break;
	}
	return NULL;
}

/* Validation at the boundary: a kernel is only ever called on a problem that passed its checks. */
static enum moe_status validate(const struct moe_bench_case *c)
{
	switch (c->op) {
	case MOE_OP_ROUTE: return moe_route_validate(&c->u.route.p);
	case MOE_OP_NORM: return moe_norm_validate(&c->u.norm);
	default: return MOE_OK; /* codecs check their format when allocating, expert and layer validate
				 * with their weights: all in setup, before any kernel runs */
	}
}

/* Whether a single-variant table of the registry provides this problem. A whole table runs one of
 * those or, when none does, the reference; measuring it then would time the reference twice. */
static bool variant_provides(enum moe_op op, const void *problem)
{
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (b->op == op && b->isa <= moe_isa_hardware() && moe_backend_provides(b->table, op, problem))
			return true;
	}
	return false;
}

struct instances {
	const struct moe_bench_case *c;
	const struct moe_bench_op_impl *impl;
	size_t llc;
	void *inst[64];
	enum moe_status status[64];
	char error[64][256];
	struct moe_bench_pack pack[64];
	const struct moe_backend *b;
	const struct moe_threads *th;
};

static void setup_one(void *arg, int tid)
{
	struct instances *in = arg;
	in->status[tid] = in->impl->setup(in->c, in->llc, &in->inst[tid]);
	if (in->status[tid] != MOE_OK)
		snprintf(in->error[tid], sizeof in->error[tid], "%s", moe_last_error());
}

static void teardown_one(void *arg, int tid)
{
	struct instances *in = arg;
	if (in->inst[tid])
		in->impl->teardown(in->inst[tid]);
	in->inst[tid] = NULL;
}

static void prepare_one(void *arg, int tid)
{
	struct instances *in = arg;
	in->status[tid] = in->impl->prepare(in->inst[tid], in->b, in->th, &in->pack[tid]);
	if (in->status[tid] != MOE_OK)
		snprintf(in->error[tid], sizeof in->error[tid], "pack: %s", moe_last_error());
}

static void unprepare_one(void *arg, int tid)
{
	struct instances *in = arg;
	in->impl->unprepare(in->inst[tid], in->b);
}

static void body(void *arg, int tid, int64_t iters)
{
	struct instances *in = arg;
	for (int64_t i = 0; i < iters; i++)
		in->impl->call(in->inst[tid], in->b, in->th);
}

/* What measuring one backend on one case gave, beside the result row. */
struct measured {
	bool measured;      /* false: pack failed (the row says why), nothing timed */
	enum moe_status s;  /* of moe_bench_measure */
	enum moe_status fatal; /* an error that ends the suite (MOE_OK: none) */
};

/* Pack (prepare) for in->b, time it with body_fn(barg, ...), unpack: fills e (pack columns,
 * timing, or skipped with the reason) and m. */
static void measure_one(struct instances *in, struct moe_bench_pool *pool, const struct moe_bench_config *cfg,
			moe_bench_body_fn *body_fn, void *barg, struct moe_bench_result *e, struct measured *m)
{
	const int threads = moe_bench_pool_threads(pool);
	enum moe_status s = MOE_OK;
	*m = (struct measured){ false, MOE_OK, MOE_OK };
	e->pack_ns = e->packed_bytes = NAN;
	if (in->impl->prepare) {
		memset(in->pack, 0, sizeof in->pack);
		moe_bench_pool_run(pool, prepare_one, in);
		for (int t = 0; t < threads && s == MOE_OK; t++)
			if ((s = in->status[t]) != MOE_OK) {
				e->skipped = true;
				snprintf(e->error, sizeof e->error, "%s", in->error[t]);
			}
		if (s != MOE_OK) {
			moe_bench_pool_run(pool, unprepare_one, in);
			if (s != MOE_ERR_UNSUPPORTED && s != MOE_ERR_NOMEM)
				m->fatal = s;
			return;
		}
		e->packed = in->pack[0].packed;
		if (e->packed) {
			e->pack_ns = in->pack[0].ns;
			e->packed_bytes = in->pack[0].bytes;
		}
		snprintf(e->note, sizeof e->note, "%s", in->pack[0].note);
	}
	s = moe_bench_measure(pool, body_fn, barg, cfg, &e->t);
	if (in->impl->unprepare)
		moe_bench_pool_run(pool, unprepare_one, in);
	if (s != MOE_OK) {
		e->skipped = true;
		snprintf(e->error, sizeof e->error, "%s", moe_last_error());
		if (s != MOE_ERR_UNSUPPORTED)
			m->fatal = s;
	}
	m->measured = true;
	m->s = s;
}

/* ---- plugins in a child process (verify/isolate.h) ----
 * A plugin's pack and calls run in a fork of this process: the case's instances are there (copy on
 * write), the threads are not, so the child makes its own pools of the same sizes. It sends a
 * heartbeat after every batch of calls, so the timeout bounds one call, not the benchmark, then
 * the row and the outcome. A child that crashes, hangs or exits gives an error row instead. */
struct isolated_job {
	struct instances *in;
	struct moe_bench_pool *pool;
	const struct moe_bench_config *cfg;
	struct moe_bench_result *e;
	int fd;
};

struct isolated_reply {
	char tag; /* 'R' */
	struct measured m;
	struct moe_bench_result e;
};

static void heartbeat_body(void *arg, int tid, int64_t iters)
{
	struct isolated_job *j = arg;
	body(j->in, tid, iters);
	if (tid == 0)
		moe_child_send(j->fd, "h", 1);
}

static void isolated_child(void *arg, int fd)
{
	struct isolated_job *j = arg;
	struct isolated_reply *r = calloc(1, sizeof *r);
	struct moe_bench_pool *pool = NULL;
	struct moe_pool *mp = NULL;
	j->fd = fd;
	if (!r || moe_bench_pool_create(moe_bench_pool_threads(j->pool), &pool) != MOE_OK)
		return; /* no answer: the parent reports the child ended early */
	if (j->in->th->count > 1) {
		int cpus[256];
		const int n = j->in->th->count < 256 ? j->in->th->count : 256;
		moe_bench_pick_cpus(n, cpus);
		if (moe_pool_create(n, cpus, &mp) != MOE_OK)
			return;
		moe_pool_pin_caller(mp);
		j->in->th = moe_pool_threads(mp);
	}
	r->e = *j->e;
	measure_one(j->in, pool, j->cfg, heartbeat_body, j, &r->e, &r->m);
	r->tag = 'R';
	moe_child_send(fd, r, sizeof *r);
}

static void measure_isolated(struct instances *in, struct moe_bench_pool *pool, const struct moe_bench_config *cfg,
			     struct moe_bench_result *e, struct measured *m)
{
	struct isolated_job j = { in, pool, cfg, e, -1 };
	struct isolated_reply *r = malloc(sizeof *r);
	struct moe_child ch;
	*m = (struct measured){ false, MOE_OK, MOE_OK };
	e->pack_ns = e->packed_bytes = NAN;
	if (!r || moe_child_start(&ch, isolated_child, &j, 0) != MOE_OK) {
		e->skipped = e->failed = true;
		snprintf(e->error, sizeof e->error, "%s", r ? moe_last_error() : "no memory");
		free(r);
		return;
	}
	char tag = 0;
	int rc;
	while ((rc = moe_child_recv(&ch, &tag, 1)) == 1 && tag == 'h')
		;
	if (rc == 1)
		rc = tag == 'R' ? moe_child_recv(&ch, (char *)r + 1, sizeof *r - 1) : 0;
	char how[128];
	moe_child_end(&ch, rc != 1, how, sizeof how);
	if (rc == 1) {
		*e = r->e;
		*m = r->m;
	} else {
		e->skipped = e->failed = true;
		snprintf(e->error, sizeof e->error, "plugin %s: %s", strstr(how, "no answer") ? "hung" :
			 strstr(how, "exited") ? "ended the process" : "crashed", how);
	}
	free(r);
}

struct provides_job {
	const struct moe_backend *b;
	enum moe_op op;
	const void *problem;
};

static void provides_child(void *arg, int fd)
{
	const struct provides_job *j = arg;
	const char yes = moe_backend_provides(j->b, j->op, j->problem) ? 1 : 0;
	moe_child_send(fd, &yes, 1);
}

/* moe_backend_provides in a child; a crash in supports() leaves true with the reason in why. */
static bool provides_isolated(const struct moe_backend *b, enum moe_op op, const void *problem, char *why,
			      size_t size)
{
	struct provides_job j = { b, op, problem };
	char yes = 0, how[128];
	why[0] = '\0';
	if (!moe_backend_slot(b, op))
		return false;
	if (!moe_isolate_call(provides_child, &j, &yes, 1, how, sizeof how)) {
		snprintf(why, size, "plugin failed in supports(): %s", how);
		return true;
	}
	return yes != 0;
}

/* Best rate (work per ns) a backend reached in a group so far. */
struct rate {
	char group[192];
	char backend[64];
	double per_ns;
};

struct rates {
	struct rate *v;
	size_t n, cap;
};

static struct rate *rate_for(struct rates *r, const char *group, const char *backend, bool create)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].group, group) && !strcmp(r->v[i].backend, backend))
			return &r->v[i];
	if (!create)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 32;
		struct rate *v = realloc(r->v, cap * sizeof *v);
		if (!v)
			return NULL;
		r->v = v;
		r->cap = cap;
	}
	struct rate *e = &r->v[r->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->group, sizeof e->group, "%s", group);
	snprintf(e->backend, sizeof e->backend, "%s", backend);
	return e;
}

static void progress(size_t i, size_t n, const char *key, double t0)
{
	const double el = (moe_bench_now_ns() - t0) * 1e-9;
	const bool tty = isatty(STDERR_FILENO);
	char eta[32] = "?";
	if (i > 0) {
		int s = (int)(el / (double)i * (double)(n - i));
		snprintf(eta, sizeof eta, "%dm%02ds", s / 60, s % 60);
	}
	fprintf(stderr, "%s[%zu/%zu] %s ... ETA %s%s", tty ? "\r\033[K" : "", i + 1, n, key, eta, tty ? "" : "\n");
	fflush(stderr);
}

struct run_shape {
	int threads, copies, cores, key_threads;
};

static struct moe_bench_result *new_result(struct moe_bench_results *out, const struct moe_bench_case *c,
					   const char *backend, const struct run_shape *rs)
{
	struct moe_bench_result *e = moe_bench_results_add(out);
	if (!e)
		return NULL;
	snprintf(e->base, sizeof e->base, "%s", c->key);
	if (rs->key_threads > 0)
		snprintf(e->key, sizeof e->key, "%.170s/threads:%d", c->key, rs->key_threads);
	else
		snprintf(e->key, sizeof e->key, "%s", c->key);
	snprintf(e->name, sizeof e->name, "%s/%s", e->key, backend);
	snprintf(e->op, sizeof e->op, "%s", moe_op_name(c->op));
	snprintf(e->model, sizeof e->model, "%s", c->model);
	snprintf(e->backend, sizeof e->backend, "%s", backend);
	e->threads = rs->threads;
	e->copies = rs->copies;
	e->cores = rs->cores;
	e->cold = c->cold;
	e->axis = c->axis;
	return e;
}

enum moe_status moe_bench_run_suite(const struct moe_bench_case *cases, size_t ncases,
				    const struct moe_bench_backend_ref *backends, size_t nbackends,
				    const struct moe_bench_options *o, struct moe_bench_pool *pool,
				    const struct moe_threads *th, int cores,
				    const struct moe_bench_topo *topo, bool counters,
				    struct moe_bench_results *out)
{
	const int threads = moe_bench_pool_threads(pool); /* the copies */
	if (!th)
		th = moe_threads_serial();
	const struct run_shape rs = { threads > 1 ? threads : th->count, threads, cores, o->key_threads };
	const double t0 = moe_bench_now_ns();
	struct rates rates = { 0 };
	enum moe_status status = MOE_OK;
	struct instances *in = calloc(1, sizeof *in);
	if (!in)
		return moe_fail(MOE_ERR_NOMEM, "bench: no memory");
	for (size_t ci = 0; ci < ncases && !moe_bench_interrupted() && status == MOE_OK; ci++) {
		const struct moe_bench_case *c = &cases[ci];
		const void *problem = moe_bench_case_problem(c);
		const struct moe_backend *run[64];
		bool run_iso[64];
		char run_why[64][200];
		size_t nrun = 0;
		bool ref_dispatched = false;
		for (size_t k = 0; k < nbackends && nrun < 64; k++) {
			const struct moe_backend *b = backends[k].b;
			if (backends[k].whole && !variant_provides(c->op, problem)) {
				ref_dispatched |= b == moe_backend_dispatched();
				continue;
			}
			bool dup = false;
			for (size_t j = 0; j < nrun && !dup; j++)
				dup = moe_backend_slot(run[j], c->op) == moe_backend_slot(b, c->op) && run[j]->supports == b->supports;
			if (dup)
				continue;
			run_why[nrun][0] = '\0';
			run_iso[nrun] = backends[k].isolate;
			if (backends[k].isolate ? provides_isolated(b, c->op, problem, run_why[nrun], sizeof run_why[nrun])
						: moe_backend_provides(b, c->op, problem))
				run[nrun++] = b;
		}
		if (nrun == 0)
			continue;
		progress(ci, ncases, c->key, t0);

		memset(in, 0, sizeof *in);
		in->c = c;
		in->impl = moe_bench_op_impl(c->op);
		in->llc = moe_bench_topo_llc(topo);
		in->th = th;
		enum moe_status s = validate(c);
		const char *why = moe_last_error();
		if (s == MOE_OK) {
			moe_bench_pool_run(pool, setup_one, in);
			for (int t = 0; t < threads && s == MOE_OK; t++)
				if ((s = in->status[t]) != MOE_OK)
					why = in->error[t];
		}
		if (s != MOE_OK) {
			for (size_t k = 0; k < nrun; k++) {
				struct moe_bench_result *e = new_result(out, c, run[k]->name, &rs);
				if (!e)
					break;
				e->skipped = true;
				snprintf(e->error, sizeof e->error, "%s", why);
			}
			moe_bench_pool_run(pool, teardown_one, in);
			continue;
		}
		struct moe_bench_cost cost;
		in->impl->cost(c, in->inst[0], &cost);
		cost.flops *= threads;
		cost.bytes *= threads;
		cost.weight_bytes *= threads;
		cost.tokens *= threads;
		cost.working_set *= (size_t)threads;
		const double work = cost.flops > 0 ? cost.flops : cost.bytes;

		for (size_t k = 0; k < nrun && !moe_bench_interrupted(); k++) {
			struct moe_bench_result *e = new_result(out, c, run[k]->name, &rs);
			if (!e) {
				status = moe_fail(MOE_ERR_NOMEM, "bench: no memory for results");
				break;
			}
			if (run_why[k][0]) { /* supports() failed in its child */
				e->skipped = e->failed = true;
				snprintf(e->error, sizeof e->error, "%.200s", run_why[k]);
				continue;
			}
			e->cost = cost;
			e->dispatched = moe_backend_slot(run[k], c->op) == moe_backend_slot(moe_backend_dispatched(), c->op) ||
					(ref_dispatched && run[k] == moe_backend_reference());
			struct rate *r = rate_for(&rates, c->group, run[k]->name, false);
			if (o->cfg.budget > 0 && r && r->per_ns > 0 && work > 0) {
				double predicted = work / r->per_ns;
				if (predicted > o->cfg.budget * 1e9) {
					e->skipped = true;
					snprintf(e->error, sizeof e->error,
						 "predicted %.3g s per call (its rate on the smaller shapes): one call is over "
						 "the %g s budget", predicted * 1e-9, o->cfg.budget);
					continue;
				}
			}
			in->b = run[k];
			struct measured m;
			if (run_iso[k])
				measure_isolated(in, pool, &o->cfg, e, &m);
			else
				measure_one(in, pool, &o->cfg, body, in, e, &m);
			if (m.fatal != MOE_OK)
				status = moe_fail(m.fatal, "%s", e->error);
			if (!m.measured)
				continue;
			s = m.s;
			e->counters_valid = counters;
			double first = s == MOE_OK ? moe_bench_median(e->t.real_ns, (size_t)e->t.reps) : e->t.first_call_ns;
			if (work > 0 && first > 0 && (r = rate_for(&rates, c->group, run[k]->name, true)))
				r->per_ns = fmax(r->per_ns, work / first);
		}
		moe_bench_pool_run(pool, teardown_one, in);
	}
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	if (moe_bench_interrupted())
		fprintf(stderr, "bench: interrupted: keeping the %zu results measured so far\n", out->n);
	free(rates.v);
	free(in);
	return status;
}
