/* Routing models in double, independent of the reference router: the selection key of every expert
 * with its error budget, the group scores of grouped DeepSeekV3, and the exact weights of any
 * given selection. Semantics: docs/routing.md. They only decide what a correct kernel
 * MAY do where the reference's choice is not the only correct one (near-ties); whenever a kernel
 * matches the reference's ids, the reference alone is the oracle.
 *
 * Keys are exact functions of the fp32 inputs the kernel sees: logits (bf16 converted exactly),
 * sigmoid s = 1/(1+exp(-x)) in double (the tanh form of the flashinfer profile is the same
 * function), softmax p = exp(fl32(x - max)) / sum over the row (the fp32 subtraction is the one
 * every kernel performs, so it is mirrored), s + b with the bias rounded to bf16 where the
 * flashinfer grouped path does so. Logit keys use the float total order of the flashinfer key
 * (+0 above -0), so that equal keys mean equal bits, except under the hf profile, which ranks like
 * torch.topk (-0 == +0). */
#include <float.h>
#include <math.h>

#include "vroute.h"

static double sig(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* The flashinfer key's total order as a double: monotone, exact, +0 > -0. */
static double total_order_key(float x)
{
	uint32_t u = moe_f32_bits(x);
	u ^= (u & 0x80000000u) ? 0xffffffffu : 0x80000000u;
	return (double)u - 2147483648.0;
}

static bool biased(const struct moe_route_params *p)
{
	return p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3;
}

static bool grouped(const struct moe_route_params *p)
{
	return p->method == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1;
}

/* The bias value the key adds (flashinfer rounds it to bf16 in the grouped path only). */
static double key_bias(const struct moe_route_row *rw, int32_t e)
{
	if (!rw->b)
		return 0.0;
	float b = rw->b[e];
	if (grouped(rw->p) && rw->p->profile == MOE_PROFILE_FLASHINFER)
		b = moe_round_bf16(b);
	return (double)b;
}

static double row_max(const float *L, int32_t n)
{
	double m = -INFINITY;
	for (int32_t e = 0; e < n; e++)
		if (L[e] > m)
			m = L[e];
	return m;
}

void moe_route_row_model(struct moe_route_row *rw)
{
	const struct moe_route_params *p = rw->p;
	const struct moe_route_tol *t = rw->t;
	const int32_t E = rw->E;
	bool finite = true, all_equal = true;

	for (int32_t e = 0; e < E; e++) {
		uint64_t bits = moe_f32_bits(rw->L[e]);
		if (!isfinite(rw->L[e]))
			finite = false;
		if (biased(p) && rw->b) {
			if (!isfinite(rw->b[e]))
				finite = false;
			bits = (bits << 32) | moe_f32_bits(rw->b[e]);
		}
		rw->inb[e] = bits;
		if (bits != rw->inb[0])
			all_equal = false;
	}
	/* Non-finite inputs follow per-profile conventions (NaN order, vLLM's replacement by 0) that
	 * only the reference encodes; an all-equal row is decided by the tie rule alone. */
	rw->exact_only = !finite || (all_equal && E > 1);
	if (!finite)
		return;

	switch (p->method) {
	case MOE_ROUTE_RENORMALIZE:
	case MOE_ROUTE_TOPK:
	case MOE_ROUTE_LLAMA4:
	case MOE_ROUTE_TOPK_SIGMOID:
		/* hf ranks like torch.topk, where -0 == +0; the others by the flashinfer total order */
		for (int32_t e = 0; e < E; e++) {
			rw->key[e] = p->profile == MOE_PROFILE_HF ? (double)rw->L[e] : total_order_key(rw->L[e]);
			rw->delta[e] = 0.0;
		}
		break;
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE: {
		const float m = (float)row_max(rw->L, E);
		double Z = 0;
		for (int32_t e = 0; e < E; e++) {
			rw->key[e] = exp((double)(rw->L[e] - m));
			Z += rw->key[e];
		}
		/* plus |x - max| u relative: a kernel forming the exponent another way than the
		 * fp32 subtraction moves p by up to half an ulp of the argument */
		for (int32_t e = 0; e < E; e++) {
			rw->key[e] /= Z;
			rw->delta[e] = (t->key_rel + fabs((double)rw->L[e] - m) * MOE_U32) * rw->key[e] + t->key_abs;
		}
		break;
	}
	default:
		for (int32_t e = 0; e < E; e++) {
			double s = sig((double)rw->L[e]);
			double k = biased(p) ? s + key_bias(rw, e) : s;
			rw->key[e] = k;
			rw->delta[e] = t->key_rel * fmax(s, fabs(k)) + t->key_abs;
		}
		break;
	}

	if (grouped(p)) {
		const int32_t G = p->n_group, gsz = E / G;
		const bool max_only = p->profile == MOE_PROFILE_VLLM && !rw->b;
		for (int32_t g = 0; g < G; g++) {
			double k1 = -INFINITY, k2 = -INFINITY, dmax = 0;
			for (int32_t e = g * gsz; e < (g + 1) * gsz; e++) {
				double k = rw->key[e];
				if (k > k1) {
					k2 = k1;
					k1 = k;
				} else if (k > k2) {
					k2 = k;
				}
				dmax = fmax(dmax, rw->delta[e]);
			}
			/* The perturbed top-2 sum moves by at most twice the largest key budget of the
			 * group; the fp32 sum rounds once more. */
			rw->gs[g] = max_only ? k1 : k1 + k2;
			rw->dg[g] = (max_only ? dmax : 2 * dmax) + MOE_U32 * fabs(rw->gs[g]);
		}
	}
}

void moe_route_row_weights(const struct moe_route_row *rw, const int32_t *ids, double *w, double *ssum)
{
	const struct moe_route_params *p = rw->p;
	const int32_t K = rw->K, E = rw->E;
	const double rsf = p->routed_scaling_factor;
	double S = 0;
	*ssum = 0;
	switch (p->method) {
	case MOE_ROUTE_DEFAULT: {
		const float m = (float)row_max(rw->L, E);
		double Z = 0;
		for (int32_t e = 0; e < E; e++)
			Z += exp((double)(rw->L[e] - m));
		for (int32_t k = 0; k < K; k++)
			w[k] = exp((double)(rw->L[ids[k]] - m)) / Z;
		return;
	}
	case MOE_ROUTE_RENORMALIZE:
	case MOE_ROUTE_RENORMALIZE_NAIVE: {
		/* Renormalize subtracts the max of the K selected, RenormalizeNaive the row max: equal
		 * for any correct selection (the row max is always selected). */
		const float m = (float)row_max(rw->L, E);
		for (int32_t k = 0; k < K; k++) {
			w[k] = exp((double)(rw->L[ids[k]] - m));
			S += w[k];
		}
		for (int32_t k = 0; k < K; k++)
			w[k] /= S;
		return;
	}
	case MOE_ROUTE_TOPK:
		for (int32_t k = 0; k < K; k++)
			w[k] = rw->L[ids[k]];
		return;
	case MOE_ROUTE_LLAMA4:
	case MOE_ROUTE_TOPK_SIGMOID:
	case MOE_ROUTE_SIGMOID:
		for (int32_t k = 0; k < K; k++)
			w[k] = sig(rw->L[ids[k]]);
		return;
	default:
		break;
	}
	for (int32_t k = 0; k < K; k++) {
		w[k] = sig(rw->L[ids[k]]);
		S += w[k];
	}
	if (p->method == MOE_ROUTE_SIGMOID_RENORM) {
		if (!p->renormalize)
			return;
		*ssum = S;
		for (int32_t k = 0; k < K; k++)
			w[k] /= fmax(S, 1e-20);
		return;
	}
	/* MiniMax2 / DeepSeekV3: s * rsf / (S + 1e-20); vLLM's (s / S) * rsf differs by the epsilon
	 * only, far below any budget since S > 1e-20 whenever it matters. */
	*ssum = S;
	for (int32_t k = 0; k < K; k++)
		w[k] = w[k] * rsf / (S + 1e-20);
}
