/* Hardware counters through PAPI: cycles, instructions, last-level cache misses and single
 * precision floating-point operations, counted on the calling thread (thread 0 of the pool).
 *
 * Each event is tried on its own and the ones the machine has are kept; a cache-miss or FP event
 * missing at one level falls back to the next (L3 -> L2 misses, SP_OPS -> VEC_SP). When no event
 * can be added (a VM without a virtual PMU, perf_event_paranoid too high) the reason PAPI gives is
 * returned once and every counter reads NAN: the run carries on without them. */
#include <math.h>
#include <papi.h>
#include <stdio.h>

#include "bench.h"

const char *const moe_bench_counter_names[MOE_BENCH_COUNTERS] = {
	"cycles", "instructions", "cache_misses", "fp_ops",
};

static int event_set = PAPI_NULL;
static int slot_of[MOE_BENCH_COUNTERS]; /* position in the event set, -1 when absent */
static int added;
static bool ready, tried;
static char reason[256];

static int try_add(const int *events, int n, int *first_rc)
{
	for (int i = 0; i < n; i++) {
		int rc = PAPI_add_event(event_set, events[i]);
		if (rc == PAPI_OK)
			return added++;
		if (*first_rc == PAPI_OK)
			*first_rc = rc;
	}
	return -1;
}

bool moe_bench_papi_init(char *why, size_t n)
{
	if (!tried) {
		tried = true;
		int rc = PAPI_library_init(PAPI_VER_CURRENT);
		if (rc != PAPI_VER_CURRENT) {
			snprintf(reason, sizeof reason, "PAPI_library_init: %s",
				 rc > 0 ? "version mismatch" : PAPI_strerror(rc));
		} else if ((rc = PAPI_create_eventset(&event_set)) != PAPI_OK) {
			snprintf(reason, sizeof reason, "PAPI_create_eventset: %s", PAPI_strerror(rc));
		} else {
			static const int cyc[] = { PAPI_TOT_CYC }, ins[] = { PAPI_TOT_INS };
			static const int miss[] = { PAPI_L3_TCM, PAPI_L2_TCM }, fp[] = { PAPI_SP_OPS, PAPI_VEC_SP };
			int first = PAPI_OK;
			slot_of[0] = try_add(cyc, 1, &first);
			slot_of[1] = try_add(ins, 1, &first);
			slot_of[2] = try_add(miss, 2, &first);
			slot_of[3] = try_add(fp, 2, &first);
			if (added > 0)
				ready = true;
			else
				snprintf(reason, sizeof reason,
					 "PAPI_add_event(PAPI_TOT_CYC ...): %s; PAPI sees %d hardware counters",
					 PAPI_strerror(first), PAPI_num_cmp_hwctrs(0));
		}
	}
	if (!ready)
		snprintf(why, n, "%s", reason);
	return ready;
}

void moe_bench_papi_start(void)
{
	if (ready)
		PAPI_start(event_set);
}

void moe_bench_papi_stop(double calls, double out[MOE_BENCH_COUNTERS])
{
	long long v[MOE_BENCH_COUNTERS] = { 0 };
	for (int i = 0; i < MOE_BENCH_COUNTERS; i++)
		out[i] = NAN;
	if (!ready || PAPI_stop(event_set, v) != PAPI_OK)
		return;
	for (int i = 0; i < MOE_BENCH_COUNTERS; i++)
		if (slot_of[i] >= 0)
			out[i] = (double)v[slot_of[i]] / calls;
}
