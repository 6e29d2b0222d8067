/* Running a plugin's cases in child processes (isolate.h), so that a kernel or a supports() that
 * crashes, aborts, hangs or calls exit() becomes a FAIL of its case instead of the end of the run.
 *
 * One child runs a batch of cases of one op with `jobs` threads, exactly as the in-process engine
 * does (moe_vrun_one, its own scratch), and streams three messages per case through a pipe:
 * "asking supports()", "running", and "done" with the result. Each message is one write() of at
 * most PIPE_BUF bytes, so messages of several threads never interleave. The parent reads with the
 * timeout of isolate.h, which restarts with every message: it bounds one case, not the batch.
 *
 * When the child ends early, the case it was in (the one with a "supports()" or "running" message
 * and no "done") is the culprit. With several threads several cases can be in flight, and an
 * earlier case may not have begun yet; then the unfinished cases are run again with one thread,
 * which pins the culprit: the first case, in order, that fails. The culprit becomes a
 * FAIL ("crashed in supports(): killed by signal 6 (SIGABRT)"), the later cases of its group are
 * dropped (they would likely crash the same way, each costing a child and perhaps a timeout), and
 * a new child goes on with the other groups' cases. Cases of the group after the culprit that a
 * thread had already finished are dropped as well, so the report is the same for every --jobs. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isolate.h"
#include "vcases.h"

enum msg_kind { MSG_SUPPORTS = 1, MSG_RUN = 2, MSG_DONE = 3 };

struct msg_head {
	uint32_t kind;
	uint32_t index; /* into c[] */
};

struct msg_done {
	struct msg_head h;
	struct moe_vresult r;
};

_Static_assert(sizeof(struct msg_done) <= PIPE_BUF, "a result message must be one atomic pipe write");

#define MAX_JOBS 16

struct child_job {
	const struct moe_backend *b;
	const struct moe_vcase *const *c;
	const size_t *todo; /* indices into c, ascending */
	size_t ntodo;
	int jobs;
	int fd;
};

struct child_worker {
	const struct child_job *job;
	int id;
	size_t index; /* the case now running */
};

static void tell(int fd, enum msg_kind kind, size_t index)
{
	struct msg_head h = { kind, (uint32_t)index };
	moe_child_send(fd, &h, sizeof h);
}

static void before_run(void *ctx)
{
	struct child_worker *w = ctx;
	tell(w->job->fd, MSG_RUN, w->index);
}

static void *child_worker_main(void *arg)
{
	struct child_worker *w = arg;
	const struct child_job *j = w->job;
	struct moe_vscratch *s = moe_vscratch_new();
	struct msg_done *m = malloc(sizeof *m);
	for (size_t k = (size_t)w->id; s && m && k < j->ntodo; k += (size_t)j->jobs) {
		w->index = j->todo[k];
		tell(j->fd, MSG_SUPPORTS, w->index);
		moe_vrun_one(j->b, j->c[w->index], s, &m->r, before_run, w);
		m->h = (struct msg_head){ MSG_DONE, (uint32_t)w->index };
		if (!moe_child_send(j->fd, m, sizeof *m))
			break;
	}
	/* no frees: the child _exit()s, and a plugin's crash must not meet a half-freed scratch */
	return NULL;
}

static void child_body(void *arg, int fd)
{
	struct child_job *j = arg;
	struct child_worker w[MAX_JOBS];
	pthread_t th[MAX_JOBS];
	j->fd = fd;
	int started = 0;
	for (int i = 0; i < j->jobs; i++)
		w[i] = (struct child_worker){ j, i, 0 };
	for (int i = 1; i < j->jobs && (size_t)i < j->ntodo; i++, started++)
		if (pthread_create(&th[i - 1], NULL, child_worker_main, &w[i]) != 0)
			break;
	child_worker_main(&w[0]);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = started + 1; i < j->jobs && (size_t)i < j->ntodo; i++)
		child_worker_main(&w[i]);
}

enum case_state { ST_TODO = 0, ST_SUPPORTS = MSG_SUPPORTS, ST_RUN = MSG_RUN, ST_DONE = MSG_DONE };

static void fail_case(struct moe_vresult *r, enum case_state at, const char *how, size_t dropped)
{
	const char *where = at == ST_SUPPORTS ? "crashed in supports()" : at == ST_RUN ? "crashed running the case"
											 : "crashed before the case began";
	moe_vresult_init(r);
	r->status = MOE_V_FAIL;
	if (strstr(how, "no answer"))
		where = at == ST_SUPPORTS ? "hung in supports()" : "hung running the case";
	else if (strstr(how, "exited"))
		where = at == ST_SUPPORTS ? "ended the process in supports()" : "ended the process running the case";
	int len = snprintf(r->reason, sizeof r->reason, "plugin %s: %s", where, how);
	if (dropped && len > 0 && (size_t)len < sizeof r->reason)
		snprintf(r->reason + len, sizeof r->reason - (size_t)len, "; %zu later case%s of the group not run",
			 dropped, dropped == 1 ? "" : "s");
}

void moe_vrun_isolated(const struct moe_backend *b, const struct moe_vcase *const *c, size_t n, int jobs,
		       struct moe_vresult *r, bool *ran)
{
	enum case_state *st = calloc(n ? n : 1, sizeof *st);
	size_t *todo = malloc((n ? n : 1) * sizeof *todo);
	struct msg_done *m = malloc(sizeof *m);
	if (jobs < 1)
		jobs = 1;
	if (jobs > MAX_JOBS)
		jobs = MAX_JOBS;
	for (size_t k = 0; k < n; k++)
		ran[k] = true;
	if (!st || !todo || !m) {
		for (size_t k = 0; k < n; k++)
			fail_case(&r[k], ST_TODO, "no memory to run the case in a child process", 0);
		goto out;
	}
	size_t ntodo = n;
	for (size_t k = 0; k < n; k++)
		todo[k] = k;
	int jobs_now = jobs;
	while (ntodo > 0) {
		struct child_job job = { b, c, todo, ntodo, jobs_now, -1 };
		struct moe_child ch;
		if (moe_child_start(&ch, child_body, &job, 0) != MOE_OK) {
			for (size_t k = 0; k < ntodo; k++)
				fail_case(&r[todo[k]], ST_TODO, moe_last_error(), 0);
			break;
		}
		size_t done = 0;
		int rc;
		while (done < ntodo && (rc = moe_child_recv(&ch, &m->h, sizeof m->h)) == 1) {
			if (m->h.index >= n || m->h.kind < MSG_SUPPORTS || m->h.kind > MSG_DONE) {
				rc = 0; /* the plugin wrote into our pipe: treat the child as broken */
				break;
			}
			if (m->h.kind == MSG_DONE) {
				if ((rc = moe_child_recv(&ch, &m->r, sizeof m->r)) != 1)
					break;
				r[m->h.index] = m->r;
				done++;
			}
			st[m->h.index] = (enum case_state)m->h.kind;
		}
		char how[128];
		moe_child_end(&ch, done < ntodo, how, sizeof how);
		if (done == ntodo)
			break;

		size_t inflight = 0, culprit = n, first = n;
		for (size_t k = 0; k < ntodo; k++) {
			if (first == n && st[todo[k]] != ST_DONE)
				first = todo[k];
			if (st[todo[k]] == ST_SUPPORTS || st[todo[k]] == ST_RUN) {
				inflight++;
				if (culprit == n)
					culprit = todo[k];
			}
		}
		size_t left = 0;
		if (jobs_now > 1 && (inflight != 1 || culprit != first)) {
			/* Several cases in flight, or an earlier one not begun yet (a thread between two
			 * cases) that might crash as well: run the unfinished ones again, one at a time,
			 * so that the culprit is the first case that crashes, whatever the threads. */
			for (size_t k = 0; k < ntodo; k++)
				if (st[todo[k]] != ST_DONE) {
					st[todo[k]] = ST_TODO;
					todo[left++] = todo[k];
				}
			ntodo = left;
			jobs_now = 1;
			continue;
		}
		if (culprit == n) /* it died between cases: blame the first unfinished one */
			culprit = first;
		size_t dropped = 0;
		for (size_t k = culprit + 1; k < n; k++)
			if (ran[k] && c[k]->op == c[culprit]->op && !strcmp(c[k]->group, c[culprit]->group)) {
				ran[k] = false;
				dropped++;
			}
		fail_case(&r[culprit], st[culprit], how, dropped);
		st[culprit] = ST_DONE;
		for (size_t k = 0; k < ntodo; k++)
			if (st[todo[k]] != ST_DONE && ran[todo[k]]) {
				st[todo[k]] = ST_TODO;
				todo[left++] = todo[k];
			}
		ntodo = left;
		jobs_now = jobs;
	}
out:
	free(st);
	free(todo);
	free(m);
}

struct provides_job {
	const struct moe_backend *b;
	enum moe_op op;
};

static void provides_body(void *arg, int fd)
{
	const struct provides_job *j = arg;
	const char yes = moe_backend_provides(j->b, j->op, NULL) ? 1 : 0;
	moe_child_send(fd, &yes, 1);
}

bool moe_vprovides_isolated(const struct moe_backend *b, enum moe_op op, bool *provides, char *why, size_t size)
{
	struct provides_job j = { b, op };
	char yes = 0, how[128];
	*provides = false;
	if (!moe_backend_slot(b, op))
		return true; /* no slot: nothing of the plugin's runs to find out */
	if (!moe_isolate_call(provides_body, &j, &yes, 1, how, sizeof how)) {
		snprintf(why, size, "plugin failed in supports(%s, NULL): %s", moe_op_name(op), how);
		return false;
	}
	*provides = yes != 0;
	return true;
}
