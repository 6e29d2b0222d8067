/* The MoE layer in double with an a-priori bound per output, for a given routing (layer.h).
 *
 * Same grouping as moe_layer__ref (moe_dispatch__ref of the given ids, each expert on its tokens in
 * perm order, so that scales derived from an amax see the same tokens), each expert through
 * moe_expert_ref_f64_ex: outputs O_k with bounds b_k for the K slots of a token. Then, in double,
 * with w_k the given fp32 weights, c = rsf at the OUTPUT site and 1 at the ROUTER site:
 *     R = c * sum_k w_k O_k,  and for the shared expert S with bound b_s.
 * A correct kernel's expert outputs o_k are within b_k of O_k. Its routed sum of the K products,
 * times c, in fp32 in any order and grouping (c folded into the weights or applied last) is within
 *     gamma(K + 1) * c * A + c * B,   A = sum_k |w_k| (|O_k| + b_k),  B = sum_k |w_k| b_k
 * of R (gamma(n) = n*2^-24 / (1 - n*2^-24): K products and K - 1 additions, one more rounding for c).
 * The shared combine adds one rounding of (r + s), and halving is exact:
 *     SUM      y = R + S,          bound = br + b_s + 2^-24 * (|R| + br + |S| + b_s)
 *     AVERAGE  y = (R + S) / 2,    bound = the SUM bound / 2
 * plus 2^-126 for a subnormal result and gamma53(K + 3) of the magnitudes for the double arithmetic
 * here, the whole times 1 + 2^-40. Bounds are +inf where a y_ref is not finite or an expert bound
 * is infinite, and where magnitudes reach the fp32 overflow threshold. */
#include <math.h>
#include <stdlib.h>

#include "expert_impl.h"

static double gamma_n(int64_t n, double unit)
{
	return (double)n * unit / (1.0 - (double)n * unit);
}

static void add_info(struct moe_expert_f64_info *sum, const struct moe_expert_f64_info *one)
{
	sum->a_uncertain += one->a_uncertain;
	sum->scales_uncertain += one->scales_uncertain;
	sum->unbounded = sum->unbounded || one->unbounded;
}

enum moe_status moe_layer_ref_f64(const struct moe_layer_params *p, const float *x, const int32_t *ids,
				  const float *weights, const struct moe_layer_weights *w, double *y_ref,
				  double *bound, struct moe_expert_f64_info *info)
{
	struct moe_expert_f64_info found = { 0 }, one;
	if (info)
		*info = found;
	enum moe_status st = moe_layer_validate(p, w);
	if (st != MOE_OK)
		return st;
	const int64_t T = p->tokens, H = p->expert.hidden;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	if (T == 0)
		return MOE_OK;
	if (!x || !ids || !weights || !y_ref || !bound)
		return moe_fail(MOE_ERR_INVALID_ARG, "layer_ref_f64: x, ids, weights, y_ref or bound is NULL (T=%lld)",
				(long long)T);
	for (int64_t s = 0; s < T * K; s++)
		if (ids[s] < 0 || ids[s] >= E)
			return moe_fail(MOE_ERR_INVALID_ARG, "layer_ref_f64: ids[%lld] = %d out of range [0, %d)",
					(long long)s, (int)ids[s], (int)E);

	const size_t slots = (size_t)(T * K);
	int32_t *counts = malloc((size_t)E * sizeof(int32_t)), *offsets = malloc(((size_t)E + 1) * sizeof(int32_t));
	int32_t *perm = malloc(slots * sizeof(int32_t)), *inv = malloc(slots * sizeof(int32_t));
	float *xg = malloc(slots * (size_t)H * sizeof(float));
	double *o = malloc(slots * (size_t)H * sizeof(double)), *ob = malloc(slots * (size_t)H * sizeof(double));
	double *sref = NULL, *sb = NULL;
	if (p->shared != MOE_SHARED_NONE) {
		sref = malloc((size_t)T * (size_t)H * sizeof(double));
		sb = malloc((size_t)T * (size_t)H * sizeof(double));
	}
	if (!counts || !offsets || !perm || !inv || !xg || !o || !ob ||
	    (p->shared != MOE_SHARED_NONE && (!sref || !sb))) {
		st = moe_fail(MOE_ERR_NOMEM, "layer_ref_f64: out of memory (T=%lld K=%d H=%lld)", (long long)T, (int)K,
			      (long long)H);
		goto out;
	}

	moe_dispatch__ref(E, T, K, ids, counts, offsets, perm);
	for (int32_t j = 0; j < offsets[E]; j++)
		inv[perm[j]] = j;
	struct moe_expert_params ep = p->expert;
	for (int32_t e = 0; e < E && st == MOE_OK; e++) {
		if (counts[e] == 0)
			continue;
		for (int32_t j = 0; j < counts[e]; j++)
			memcpy(xg + (int64_t)j * H, x + (int64_t)(perm[offsets[e] + j] / K) * H, (size_t)H * sizeof(float));
		ep.tokens = counts[e];
		const int64_t at = (int64_t)offsets[e] * H;
		st = moe_expert_ref_f64_ex(&ep, xg, &w->experts[e], o + at, ob + at, &one);
		add_info(&found, &one);
	}
	if (st == MOE_OK && p->shared != MOE_SHARED_NONE) {
		ep.tokens = T;
		ep.inter = p->shared_inter;
		st = moe_expert_ref_f64_ex(&ep, x, w->shared, sref, sb, &one);
		add_info(&found, &one);
	}
	if (st != MOE_OK)
		goto out;

	const double c = p->rsf_site == MOE_RSF_AT_OUTPUT ? (double)p->route.routed_scaling_factor : 1.0;
	const double g_sum = gamma_n(K + 1, 0x1p-24), g53 = gamma_n(K + 3, 0x1p-53);
	for (int64_t t = 0; t < T; t++) {
		for (int64_t h = 0; h < H; h++) {
			double r = 0.0, a = 0.0, b = 0.0;
			for (int32_t k = 0; k < K; k++) {
				const int64_t at = (int64_t)inv[t * K + k] * H + h;
				const double wk = weights[t * K + k];
				r += wk * o[at];
				a += fabs(wk) * (fabs(o[at]) + ob[at]);
				b += fabs(wk) * ob[at];
			}
			r *= c;
			double br = g_sum * c * a + c * b, y = r, by = br, mag = c * a;
			if (p->shared != MOE_SHARED_NONE) {
				const double s = sref[t * H + h], bs = sb[t * H + h];
				y = r + s;
				by = br + bs + 0x1p-24 * (fabs(r) + br + fabs(s) + bs);
				mag += fabs(s) + bs;
				if (p->shared == MOE_SHARED_AVERAGE) {
					y *= 0.5;
					by *= 0.5;
				}
			}
			by = (by + g53 * mag + 0x1p-126) * (1.0 + 0x1p-40);
			if (!isfinite(y) || !isfinite(by) || mag >= 0x1p126)
				by = INFINITY;
			y_ref[t * H + h] = y;
			bound[t * H + h] = by;
		}
	}
	if (info)
		*info = found;
out:
	free(counts);
	free(offsets);
	free(perm);
	free(inv);
	free(xg);
	free(o);
	free(ob);
	free(sref);
	free(sb);
	return st;
}
