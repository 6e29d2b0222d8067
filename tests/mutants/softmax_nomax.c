/* Mutant: softmax without max subtraction. The softmax methods (Default, Renormalize,
 * RenormalizeNaive) compute exp(x) / sum(exp(x)) directly; equal to the reference within a few
 * ulps on ordinary logits, but exp overflows for logits above ~88 (inf / inf = NaN) and underflows
 * to 0 for rows far below 0 (0 / 0). The ids are the reference's: only the weights break. */
#include <math.h>

#include "mutant.h"

static void route__softmax_nomax(const struct moe_route_params *p, int64_t T, const void *logits,
				 const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	const int32_t E = p->num_experts, K = p->top_k;
	if (p->method != MOE_ROUTE_DEFAULT && p->method != MOE_ROUTE_RENORMALIZE &&
	    p->method != MOE_ROUTE_RENORMALIZE_NAIVE)
		return;
	for (int64_t t = 0; t < T; t++) {
		const int32_t *id = ids + t * K;
		float *w = weights + t * K;
		/* Renormalize is a softmax over the K selected; the others over all E. */
		float all = 0.0f, sel = 0.0f;
		for (int32_t e = 0; e < E; e++)
			all += expf(moe_mutant_logit(p, logits, t * E + e));
		for (int32_t k = 0; k < K; k++)
			sel += expf(moe_mutant_logit(p, logits, t * E + id[k]));
		float S = 0.0f;
		for (int32_t k = 0; k < K; k++) {
			const float ex = expf(moe_mutant_logit(p, logits, t * E + id[k]));
			w[k] = p->method == MOE_ROUTE_RENORMALIZE ? ex / sel : ex / all;
			S += w[k];
		}
		for (int32_t k = 0; k < K; k++)
			w[k] = moe_mutant_out(p->profile, p->method == MOE_ROUTE_RENORMALIZE_NAIVE ? w[k] / S : w[k]);
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-softmax-nomax";
	b->description = "routing: softmax without subtracting the row maximum";
	b->route = route__softmax_nomax;
}
