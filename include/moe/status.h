/* moebench public interface: status codes and the error message of the last failure.
 *
 * Every boundary function (public API, CLI, loaders) returns an enum moe_status. A non-OK status
 * comes with a message, kept per thread, that says which op failed, what was wrong and the sizes
 * involved; moe_last_error() returns it. Kernels never report: they assert their preconditions. */
#ifndef MOE_STATUS_H
#define MOE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum moe_status {
	MOE_OK = 0,
	MOE_ERR_INVALID_ARG = 1, /* a parameter violates the op's documented constraints */
	MOE_ERR_UNSUPPORTED = 2, /* valid request that this implementation or backend does not provide */
	MOE_ERR_NOMEM = 3,
	MOE_ERR_IO = 4,          /* a file could not be opened, read or written */
	MOE_ERR_FORMAT = 5,      /* malformed input file or text */
	MOE_ERR_ABI = 6,         /* plugin ABI version mismatch or missing entry point */
	MOE_ERR_INTERNAL = 7,
};

/* Short fixed name of a status, e.g. "invalid argument". Never NULL. */
const char *moe_status_name(enum moe_status s);

/* The message recorded by the most recent failing call on this thread ("" if none). */
const char *moe_last_error(void);

/* Record a failure and return `s`, so boundaries can write `return moe_fail(MOE_ERR_..., "...")`. */
enum moe_status moe_fail(enum moe_status s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forget the recorded message (used by tests). */
void moe_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
