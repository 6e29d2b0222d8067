/* Child processes for plugin code (isolate.h): fork, a pipe for the answers, poll() for the
 * timeout, waitpid() for how the child ended.
 *
 * Why these details: stdio is flushed before the fork, else text the parent had buffered would be
 * printed twice (by the parent and by a child the plugin ends with exit()). The child resets
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP and SIGSYS to their default action because
 * AddressSanitizer installs handlers for some of them that report and exit(1): the plugin's crash
 * must reach the parent as the signal it is. RLIMIT_CORE 0: a crashing plugin is an expected
 * outcome here, not worth a core file per case. PR_SET_PDEATHSIG: a child left behind by an
 * interrupted host (a hanging kernel) is killed with it. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "isolate.h"

static double timeout_s = MOE_ISOLATE_DEFAULT_TIMEOUT;

double moe_isolate_timeout(void)
{
	return timeout_s;
}

void moe_isolate_set_timeout(double seconds)
{
	if (seconds > 0)
		timeout_s = seconds;
}

static void child_setup(pid_t parent)
{
	static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS };
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		sigaction(crash_signals[i], &sa, NULL);
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core);
#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	if (getppid() != parent) /* the parent died before prctl took effect */
		_exit(127);
}

enum moe_status moe_child_start(struct moe_child *c, moe_child_body_fn *body, void *arg, double timeout)
{
	int p[2];
	memset(c, 0, sizeof *c);
	c->pid = -1;
	c->fd = -1;
	c->timeout = timeout > 0 ? timeout : moe_isolate_timeout();
	if (pipe(p) != 0)
		return moe_fail(MOE_ERR_INTERNAL, "isolation: cannot create a pipe: %s", strerror(errno));
	fflush(NULL);
	const pid_t parent = getpid();
	const pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return moe_fail(MOE_ERR_INTERNAL, "isolation: cannot fork a child process: %s", strerror(e));
	}
	if (pid == 0) {
		close(p[0]);
		child_setup(parent);
		body(arg, p[1]);
		_exit(0);
	}
	close(p[1]);
	c->pid = pid;
	c->fd = p[0];
	return MOE_OK;
}

bool moe_child_send(int fd, const void *buf, size_t n)
{
	const char *b = buf;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int moe_child_recv(struct moe_child *c, void *buf, size_t n)
{
	char *b = buf;
	double deadline = now_s() + c->timeout;
	while (n > 0) {
		const double left = deadline - now_s();
		if (left <= 0) {
			c->timed_out = true;
			return -1;
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)(left * 1000.0) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			continue; /* the deadline check above decides */
		if (r < 0)
			return 0;
		ssize_t got = read(c->fd, b, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return 0;
		b += got;
		n -= (size_t)got;
		deadline = now_s() + c->timeout;
	}
	return 1;
}

/* "SIGSEGV" for the signals a kernel is likely to die of; NULL for others (strsignal says it). */
static const char *signal_abbrev(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGABRT: return "SIGABRT";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGILL: return "SIGILL";
	case SIGTRAP: return "SIGTRAP";
	case SIGSYS: return "SIGSYS";
	case SIGKILL: return "SIGKILL";
	case SIGTERM: return "SIGTERM";
	case SIGPIPE: return "SIGPIPE";
	case SIGXCPU: return "SIGXCPU";
	default: return NULL;
	}
}

bool moe_child_end(struct moe_child *c, bool kill_it, char *what, size_t size)
{
	char scratch[8];
	if (!what || !size) {
		what = scratch;
		size = sizeof scratch;
	}
	what[0] = '\0';
	if (c->pid <= 0)
		return false;
	if (kill_it || c->timed_out)
		kill(c->pid, SIGKILL);
	int st = 0;
	pid_t r;
	while ((r = waitpid(c->pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->pid = -1;
	if (r < 0) {
		snprintf(what, size, "lost (waitpid: %s)", strerror(errno));
		return false;
	}
	if (c->timed_out) {
		snprintf(what, size, "no answer within %g s: killed", c->timeout);
		return false;
	}
	if (WIFSIGNALED(st)) {
		const int sig = WTERMSIG(st);
		const char *abbrev = signal_abbrev(sig);
		if (abbrev)
			snprintf(what, size, "killed by signal %d (%s)", sig, abbrev);
		else
			snprintf(what, size, "killed by signal %d (%s)", sig, strsignal(sig));
		return false;
	}
	if (WIFEXITED(st)) {
		snprintf(what, size, "exited with status %d", WEXITSTATUS(st));
		return WEXITSTATUS(st) == 0 && !kill_it;
	}
	snprintf(what, size, "ended with wait status %#x", (unsigned)st);
	return false;
}

bool moe_isolate_call(moe_child_body_fn *body, void *arg, void *reply, size_t reply_size, char *what,
		      size_t what_size)
{
	struct moe_child c;
	if (moe_child_start(&c, body, arg, 0) != MOE_OK) {
		snprintf(what, what_size, "%s", moe_last_error());
		return false;
	}
	const int r = moe_child_recv(&c, reply, reply_size);
	char how[128];
	moe_child_end(&c, r != 1, how, sizeof how);
	if (r == 1)
		return true;
	snprintf(what, what_size, "%s", how);
	return false;
}
