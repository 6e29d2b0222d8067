/* Running untrusted code (a plugin's constructors, its entry, supports() and kernels) in a child
 * process, so that a crash, an abort, a hang or an exit() in it becomes a message the host reports
 * instead of the end of the host.
 *
 * The child is a fork of the caller: it sees the caller's memory as it was (copy on write), runs
 * body(arg, fd), writes its answers into fd, and ends with _exit(0) (no atexit handlers, no
 * flushing of stdio buffers it inherited). The parent reads the answers with a timeout that counts
 * from the last byte received: a child silent for that long is killed. Whatever the child did not
 * answer, the parent tells how it ended: a signal, an exit status, or the timeout. */
#ifndef MOE_VERIFY_ISOLATE_H
#define MOE_VERIFY_ISOLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "moe/status.h"

/* Seconds a plugin may stay silent (one case, one load, one benchmark) before it is killed. */
#define MOE_ISOLATE_DEFAULT_TIMEOUT 60.0

/* The timeout every isolated call uses (set once from the command line; > 0). */
double moe_isolate_timeout(void);
void moe_isolate_set_timeout(double seconds);

typedef void moe_child_body_fn(void *arg, int fd);

struct moe_child {
	pid_t pid;
	int fd;          /* the read end of the child's answers */
	double timeout;  /* seconds */
	bool timed_out;  /* set by moe_child_recv */
};

/* Flushes every stdio stream (so the child does not print the parent's buffered output again) and
 * forks. The child restores the default action of the crash signals (a sanitizer's or the host's
 * handler must not turn the plugin's crash into a report of its own), writes no core file, dies
 * with its parent, runs body(arg, fd) and _exit(0)s. MOE_ERR_INTERNAL when pipe or fork fails. */
enum moe_status moe_child_start(struct moe_child *c, moe_child_body_fn *body, void *arg, double timeout);
/* Child side: writes all n bytes; several threads may write at once when n <= PIPE_BUF (each
 * message then arrives whole). false when the parent is gone. */
bool moe_child_send(int fd, const void *buf, size_t n);
/* Parent side: reads exactly n bytes. 1: read; 0: the child closed its end first (it ended, or
 * crashed); -1: nothing arrived for the timeout (c->timed_out is set). */
int moe_child_recv(struct moe_child *c, void *buf, size_t n);
/* Kills the child when kill_it (or when it timed out), reaps it, and writes how it ended into
 * what[size] ("killed by signal 11 (SIGSEGV)", "exited with status 0", "no answer within 60 s:
 * killed"). Returns true when it exited with status 0 on its own. */
bool moe_child_end(struct moe_child *c, bool kill_it, char *what, size_t size);

/* One call in a child: body must send exactly reply_size bytes. true when all of them arrived;
 * false with how the child ended in what[what_size] otherwise (or when it could not start). */
bool moe_isolate_call(moe_child_body_fn *body, void *arg, void *reply, size_t reply_size, char *what,
		      size_t what_size);

#endif
