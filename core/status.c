/* Status names and the per-thread message of the last failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "moe/status.h"

static _Thread_local char last_error[1024];

const char *moe_status_name(enum moe_status s)
{
	switch (s) {
	case MOE_OK: return "ok";
	case MOE_ERR_INVALID_ARG: return "invalid argument";
	case MOE_ERR_UNSUPPORTED: return "unsupported";
	case MOE_ERR_NOMEM: return "out of memory";
	case MOE_ERR_IO: return "i/o error";
	case MOE_ERR_FORMAT: return "malformed input";
	case MOE_ERR_ABI: return "ABI mismatch";
	case MOE_ERR_INTERNAL: return "internal error";
	}
	return "unknown status";
}

const char *moe_last_error(void)
{
	return last_error;
}

void moe_clear_error(void)
{
	last_error[0] = '\0';
}

/* Formats into a scratch buffer first: callers wrap an inner failure as
 * moe_fail(s, "context: %s", moe_last_error()), whose argument is last_error itself, and
 * vsnprintf into its own source is undefined. */
enum moe_status moe_fail(enum moe_status s, const char *fmt, ...)
{
	char msg[sizeof last_error];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof last_error);
	return s;
}
