/* selfcheck rows for the MoE layer's token grouping: on a skewed routing (one expert takes most
 * slots, several take none) every token-slot appears exactly once in the permutation, counts sum to
 * T*K, offsets are their prefix sum, and each group lists its slots in increasing order. */
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "moe/rng.h"
#include "selfcheck.h"

void selfcheck_layer(struct selfcheck *sc)
{
	enum { E = 64, T = 512, K = 8 };
	int32_t *ids = malloc(sizeof(int32_t) * T * K), *perm = malloc(sizeof(int32_t) * T * K);
	int32_t counts[E], offsets[E + 1];
	char *seen = calloc(T * K, 1);
	uint64_t rng = sc->seed;
	selfcheck_row_begin(sc);
	if (!ids || !perm || !seen) {
		selfcheck_expect(sc, false, "out of memory");
		goto out;
	}
	for (int t = 0; t < T; t++) {
		/* slot 0 always expert 0; the rest distinct among experts 1..15, so 48 experts stay empty */
		ids[t * K] = 0;
		for (int k = 1; k < K; k++) {
			int32_t e;
			bool dup;
			do {
				e = 1 + (int32_t)(moe_splitmix64(&rng) % 15);
				dup = false;
				for (int j = 1; j < k; j++)
					dup |= ids[t * K + j] == e;
			} while (dup);
			ids[t * K + k] = e;
		}
	}
	moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
	long total = 0;
	for (int e = 0; e < E; e++) {
		total += counts[e];
		selfcheck_expect(sc, offsets[e + 1] - offsets[e] == counts[e], "expert %d: offsets disagree with count", e);
	}
	selfcheck_expect(sc, offsets[0] == 0 && total == T * K, "counts sum to %ld, expected %d", total, T * K);
	selfcheck_expect(sc, counts[0] == T, "expert 0 has %d slots, expected %d", counts[0], T);
	for (int e = 16; e < E; e++)
		selfcheck_expect(sc, counts[e] == 0, "expert %d should be empty", e);
	for (int e = 0; e < E; e++) {
		for (int i = offsets[e]; i < offsets[e + 1]; i++) {
			const int32_t s = perm[i];
			const bool in_range = s >= 0 && s < T * K;
			selfcheck_expect(sc, in_range && ids[s] == e && !seen[s], "perm[%d] = %d is not a fresh slot of expert %d",
					 i, s, e);
			if (in_range)
				seen[s] = 1;
			if (i > offsets[e])
				selfcheck_expect(sc, perm[i - 1] < s, "group of expert %d is not in slot order", e);
		}
	}
out:
	selfcheck_row_end(sc, "layer", "dispatch, skewed load, empty experts");
	free(ids);
	free(perm);
	free(seen);
}
