/* Agreement before the exchange: every rank must have set up, and every rank must run the same
 * configuration, else the Alltoallv counts would not match and the job would hang or read garbage.
 * Both checks are collectives every rank reaches whatever happened locally, so a bad rank ends the
 * job with a message instead of a hang. Also the watchdog and the MPI error path. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ep_mpi.h"

#define TEXT_MAX 512

static volatile const char *phase_name = "start";
static char alarm_msg[160];
static int my_rank;

void moe_ep_phase(const char *name)
{
	phase_name = name;
}

/* Async-signal-safe: one write of a message assembled with plain copies. */
static void on_alarm(int sig)
{
	(void)sig;
	char buf[sizeof alarm_msg + 160];
	size_t n = 0;
	const char *parts[3] = { alarm_msg, (const char *)phase_name, ") - a peer died or hangs; ending this rank\n" };
	for (int i = 0; i < 3; i++)
		for (const char *c = parts[i]; *c && n < sizeof buf; c++)
			buf[n++] = *c;
	ssize_t w = write(2, buf, n);
	(void)w;
	_exit(3);
}

void moe_ep_watchdog(int rank, double timeout_s)
{
	my_rank = rank;
	if (timeout_s <= 0)
		return;
	snprintf(alarm_msg, sizeof alarm_msg, "moebench ep: rank %d: timed out after %g s (phase: ", rank, timeout_s);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(timeout_s + 0.999));
}

void moe_ep_mpi_ok(int rc, const char *call)
{
	if (rc == MPI_SUCCESS)
		return;
	char err[MPI_MAX_ERROR_STRING];
	int len = 0;
	MPI_Error_string(rc, err, &len);
	fprintf(stderr, "moebench ep: rank %d: %s failed in phase %s: %s; aborting the job\n", my_rank, call,
		(const char *)phase_name, err);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 3);
	_exit(3);
}

bool moe_ep_agree_setup(MPI_Comm comm, bool local_ok)
{
	int R, me;
	MPI_Comm_size(comm, &R);
	MPI_Comm_rank(comm, &me);
	int *ok = malloc((size_t)R * sizeof *ok);
	int mine = local_ok;
	if (!ok) {
		fprintf(stderr, "moebench ep: rank %d: no memory for %d flags\n", me, R);
		MPI_Abort(comm, 3);
	}
	moe_ep_mpi_ok(MPI_Allgather(&mine, 1, MPI_INT, ok, 1, MPI_INT, comm), "MPI_Allgather of the setup status");
	bool all = true;
	char list[256] = "";
	size_t used = 0;
	for (int r = 0; r < R; r++)
		if (!ok[r]) {
			all = false;
			if (used < sizeof list - 16)
				used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", used ? ", " : "", r);
		}
	if (!local_ok)
		fprintf(stderr, "moebench ep: rank %d: %s\n", me, moe_last_error());
	else if (!all && me == 0)
		fprintf(stderr, "moebench ep: rank 0: stopping every rank: setup failed on rank(s) %s (messages above)\n", list);
	free(ok);
	return all;
}

/* The first "key=value" of a that differs from b, written as "key: V here, W on rank 0". */
static void first_difference(const char *a, const char *b, char *out, size_t n)
{
	while (*a || *b) {
		const size_t la = strcspn(a, " "), lb = strcspn(b, " ");
		if (la != lb || memcmp(a, b, la)) {
			const size_t ka = strcspn(a, "=");
			snprintf(out, n, "%.*s: %.*s here, %.*s on rank 0", (int)ka, a, (int)(la > ka ? la - ka - 1 : 0),
				 a + ka + 1, (int)(lb > ka ? lb - ka - 1 : 0), b + (lb > ka ? ka + 1 : lb));
			return;
		}
		a += la + (a[la] == ' ');
		b += lb + (b[lb] == ' ');
	}
	snprintf(out, n, "(texts equal, hashes differ)");
}

bool moe_ep_agree_config(MPI_Comm comm, const char *text)
{
	int R, me;
	MPI_Comm_size(comm, &R);
	MPI_Comm_rank(comm, &me);
	const uint64_t h = moe_ep_hash(text, strlen(text), MOE_EP_HASH_INIT);
	uint64_t lo, hi;
	moe_ep_phase("configuration check");
	moe_ep_mpi_ok(MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, comm), "MPI_Allreduce (MIN) of the configuration hash");
	moe_ep_mpi_ok(MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, comm), "MPI_Allreduce (MAX) of the configuration hash");
	if (lo == hi)
		return true;
	char mine[TEXT_MAX] = { 0 };
	snprintf(mine, sizeof mine, "%s", text);
	char *all = calloc((size_t)R, TEXT_MAX);
	if (!all) {
		fprintf(stderr, "moebench ep: rank %d: configuration differs across ranks (no memory to say how)\n", me);
		return false;
	}
	moe_ep_mpi_ok(MPI_Allgather(mine, TEXT_MAX, MPI_CHAR, all, TEXT_MAX, MPI_CHAR, comm),
		      "MPI_Allgather of the configuration text");
	if (strcmp(mine, all) != 0) {
		char diff[256];
		first_difference(mine, all, diff, sizeof diff);
		fprintf(stderr, "moebench ep: rank %d: configuration differs from rank 0's: %s; stopping every rank\n", me, diff);
	} else if (me == 0) {
		char list[256] = "";
		size_t used = 0;
		for (int r = 1; r < R; r++)
			if (strcmp(all + (size_t)r * TEXT_MAX, all) && used < sizeof list - 16)
				used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", used ? ", " : "", r);
		fprintf(stderr, "moebench ep: rank 0: stopping every rank: rank(s) %s run a different configuration "
				"(all ranks must get the same options)\n", list);
	}
	free(all);
	return false;
}
