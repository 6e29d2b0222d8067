/* Mutant: wrong tie direction. On equal keys the HIGHER expert index wins (and the higher group
 * index, for grouped methods), where every engine lets the lower one win.
 *
 * Built on the reference by mirroring the experts: expert e is presented to the reference as
 * E-1-e (logits and bias reversed, so contiguous groups mirror too), and the ids it returns are
 * mirrored back. Distinct keys select the same experts with the same weights; only ties flip. */
#include <assert.h>
#include <string.h>

#include "mutant.h"

#define MOE_MUTANT_MAX_E 4096

static void route__tie_high(const struct moe_route_params *p, int64_t T, const void *logits,
			    const void *bias, int32_t *ids, float *weights)
{
	const int32_t E = p->num_experts, K = p->top_k;
	assert(E <= MOE_MUTANT_MAX_E);
	const size_t lsize = p->logits_dtype == MOE_DTYPE_BF16 ? 2 : 4;
	const size_t bsize = p->bias_dtype == MOE_DTYPE_BF16 ? 2 : 4;
	unsigned char row[MOE_MUTANT_MAX_E * 4], rbias[MOE_MUTANT_MAX_E * 4];
	if (bias)
		for (int32_t e = 0; e < E; e++)
			memcpy(rbias + (size_t)(E - 1 - e) * bsize, (const char *)bias + (size_t)e * bsize, bsize);
	for (int64_t t = 0; t < T; t++) {
		const char *src = (const char *)logits + (size_t)t * (size_t)E * lsize;
		for (int32_t e = 0; e < E; e++)
			memcpy(row + (size_t)(E - 1 - e) * lsize, src + (size_t)e * lsize, lsize);
		moe_route__ref(p, 1, row, bias ? rbias : NULL, ids + t * K, weights + t * K);
		for (int32_t k = 0; k < K; k++)
			ids[t * K + k] = E - 1 - ids[t * K + k];
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-tie-high";
	b->description = "routing: equal keys pick the higher expert index";
	b->route = route__tie_high;
}
