/* The combine of one token, exactly moe_layer__ref's step 5 in fp32 (built with -ffp-contract=off,
 * so r + w * o is a multiply then an add, as in the reference):
 *     r = 0; for k = 0..K-1: r = r + weights[k] * rows[k][h]      (slot order)
 *     rsf at OUTPUT: r = r * rsf;  NONE: y = r;  SUM: y = r + shared;  AVERAGE: y = (r + shared) * 0.5f
 * `reversed` sums k from K-1 down: a deliberately wrong order that the bitwise check must catch. */
#include "ep.h"

void moe_ep_combine_token(const struct moe_layer_params *p, const float *weights, const float *const *rows,
			  const float *y_shared, float *y, bool reversed)
{
	const int64_t H = p->expert.hidden;
	const int32_t K = p->route.top_k;
	const float rsf = p->route.routed_scaling_factor;
	for (int64_t h = 0; h < H; h++) {
		float r = 0.0f;
		for (int32_t i = 0; i < K; i++) {
			const int32_t k = reversed ? K - 1 - i : i;
			r = r + weights[k] * rows[k][h];
		}
		if (p->rsf_site == MOE_RSF_AT_OUTPUT)
			r = r * rsf;
		switch (p->shared) {
		case MOE_SHARED_SUM:
			y[h] = r + y_shared[h];
			break;
		case MOE_SHARED_AVERAGE:
			y[h] = (r + y_shared[h]) * 0.5f;
			break;
		default:
			y[h] = r;
			break;
		}
	}
}
