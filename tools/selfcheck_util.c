/* Row bookkeeping and the input generator of `moebench selfcheck`. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "moe/rng.h"
#include "selfcheck.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void selfcheck_row_begin(struct selfcheck *sc)
{
	sc->checks = 0;
	sc->failed = 0;
	sc->detail_printed = false;
	sc->t_start = now_s();
}

void selfcheck_expect(struct selfcheck *sc, bool ok, const char *fmt, ...)
{
	sc->checks++;
	if (ok)
		return;
	sc->failed++;
	if (sc->detail_printed && !sc->verbose)
		return;
	sc->detail_printed = true;
	va_list ap;
	va_start(ap, fmt);
	fputs("    detail: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

void selfcheck_row_end(struct selfcheck *sc, const char *op, const char *name)
{
	const bool pass = sc->failed == 0 && sc->checks > 0;
	printf("%-8s %-34s %8ld %8ld %8.1f  %s\n", op, name, sc->checks, sc->failed,
	       1e3 * (now_s() - sc->t_start), pass ? "PASS" : (sc->checks ? "FAIL" : "EMPTY"));
	sc->rows++;
	if (!pass)
		sc->rows_failed++;
}

float selfcheck_normal(uint64_t *s)
{
	/* Box-Muller on two 53-bit uniforms in (0, 1] */
	double u1 = ((double)(moe_splitmix64(s) >> 11) + 1.0) * 0x1p-53;
	double u2 = (double)(moe_splitmix64(s) >> 11) * 0x1p-53;
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
