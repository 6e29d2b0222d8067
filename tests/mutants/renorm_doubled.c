/* Mutant: renormalization doubled. The renormalizing methods divide by the sum of the selected
 * scores twice (kernel and caller both renormalize against the raw sum): w = s / S / S (times rsf
 * where the method applies it), i.e. the reference's weight divided by S once more. Caught
 * wherever S is not 1, which is almost every row. */
#include "mutant.h"

static void route__renorm_doubled(const struct moe_route_params *p, int64_t T, const void *logits,
				  const void *bias, int32_t *ids, float *weights)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (!moe_mutant_renormalizes(p))
		return;
	const int32_t K = p->top_k;
	for (int64_t t = 0; t < T; t++) {
		float S = 0.0f;
		for (int32_t k = 0; k < K; k++)
			S += moe_mutant_score(p, logits, t, ids + t * K, ids[t * K + k]);
		if (S > 0.0f)
			for (int32_t k = 0; k < K; k++)
				weights[t * K + k] = moe_mutant_out(p->profile, weights[t * K + k] / S);
	}
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-renorm-doubled";
	b->description = "routing: weights divided by the sum of the selected scores twice";
	b->route = route__renorm_doubled;
}
