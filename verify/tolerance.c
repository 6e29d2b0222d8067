/* Tolerance models: how far a correct kernel may be from the oracle, each budget derived here.
 *
 * Conventions. u = 2^-24 (fp32 unit roundoff); gamma_n = n*u/(1-n*u) bounds n successive fp32
 * roundings of a sum of positive terms in any order. Elementwise transcendental functions: a
 * kernel may use a vectorized polynomial or table (SLEEF-style "u35" functions, Cephes-style
 * polynomials): we allow MOE_KERNEL_FN_ULPS = 4 ulps for exp, tanh and rsqrt; the reference uses
 * glibc expf/tanhf/sqrtf, within MOE_REF_FN_ULPS = 1 ulp. Weights are compared kernel against
 * reference, so each budget is the kernel's error plus the reference's. */
#include <float.h>
#include <math.h>

#include "vroute.h"

#define MOE_KERNEL_FN_ULPS 4.0
#define MOE_REF_FN_ULPS 1.0

double moe_gamma(double n)
{
	const double nu = n * MOE_U32;
	return nu < 1.0 ? nu / (1.0 - nu) : INFINITY;
}

double moe_ulp_f32(double x)
{
	int e;
	x = fabs(x);
	if (!isfinite(x) || x >= FLT_MAX)
		return 0x1p104;
	if (x < FLT_MIN)
		return 0x1p-149;
	frexp(x, &e); /* x = m * 2^e, m in [0.5, 1): 24 significant bits give spacing 2^(e-24) */
	return ldexp(1.0, e - 24);
}

double moe_ulp_bf16(double x)
{
	int e;
	x = fabs(x);
	if (!isfinite(x) || x >= FLT_MAX)
		return 0x1p120;
	if (x < FLT_MIN)
		return 0x1p-133; /* 7 stored mantissa bits below the smallest normal 2^-126 */
	frexp(x, &e);
	return ldexp(1.0, e - 8);
}

static int64_t ordered(float a)
{
	uint32_t u = moe_f32_bits(a);
	return (u & 0x80000000u) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

double moe_ulp_dist_f32(float a, float b)
{
	if (isnan(a) || isnan(b))
		return (isnan(a) && isnan(b)) ? 0.0 : INFINITY;
	int64_t d = ordered(a) - ordered(b);
	return (double)(d < 0 ? -d : d);
}

/* Relative error of one sigmoid score s = sig(x) computed with a function of `fn` ulps:
 * 1/(1+exp(-x)): the exp error (fn ulps) passes to s scaled by e/(1+e) <= 1, then the add and the
 * division round once each: (fn + 2) u. 0.5*tanh(0.5x)+0.5: the same relative count for s >= 0.5;
 * below, tanh is near -1 and the final add cancels, so the error is absolute: fn ulps of |t| <= 1
 * (fn * 2^-24) halved, plus the add's half ulp of s < 1: (fn + 1) * 2^-25. */
static void sigmoid_err(enum moe_profile prof, double fn, double *rel, double *abs_err)
{
	*rel = (fn + 2.0) * MOE_U32;
	if (prof == MOE_PROFILE_FLASHINFER)
		*abs_err = (fn + 1.0) * 0x1p-25;
	else
		*abs_err = FLT_MIN; /* below the normal range a kernel may flush to zero */
}

void moe_route_tolerance(const struct moe_route_params *p, struct moe_route_tol *t)
{
	const double u = MOE_U32, K = p->top_k, E = p->num_experts;
	const double kf = MOE_KERNEL_FN_ULPS, rf = MOE_REF_FN_ULPS;
	double srk, sak, srr, sar;
	sigmoid_err(p->profile, kf, &srk, &sak);
	sigmoid_err(p->profile, rf, &srr, &sar);

	*t = (struct moe_route_tol){ 0 };
	t->w_bf16 = p->profile != MOE_PROFILE_VLLM;
	switch (p->method) {
	case MOE_ROUTE_RENORMALIZE:
		/* keys: the logits themselves (exact). weights: softmax over the K selected, exp of the
		 * same fp32 (x - max): exp (fn ulps), the sum of K positive terms (gamma_{K-1}), the
		 * division (u). */
		t->keys_exact = true;
		t->w_ulps = (kf * u + moe_gamma(K - 1) + u + rf * u + moe_gamma(K - 1) + u) / u;
		t->s_abs = 2 * FLT_MIN;
		break;
	case MOE_ROUTE_TOPK:
		/* keys and weights are the logits: bitwise (bf16 rounding of a bf16-exact value is exact
		 * only for bf16 logits; for f32 logits under bf16 profiles it is deterministic RNE). */
		t->keys_exact = true;
		t->w_ulps = 0;
		break;
	case MOE_ROUTE_LLAMA4:
	case MOE_ROUTE_TOPK_SIGMOID:
		/* keys: logits (exact). weights: one sigmoid each side. */
		t->keys_exact = true;
		t->w_ulps = (srk + srr) / u;
		t->s_abs = sak + sar;
		break;
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE:
		/* keys: softmax probabilities p = exp(fl(x - max)) / Z. The kernel's p: exp (fn ulps),
		 * Z = sum over E (gamma_{E-1}), the division (u); below FLT_MIN a kernel may flush. */
		t->key_rel = kf * u + moe_gamma(E - 1) + u;
		t->key_abs = FLT_MIN;
		if (p->method == MOE_ROUTE_DEFAULT) {
			/* weights = p: the key error, each side. */
			t->w_ulps = (t->key_rel + rf * u + moe_gamma(E - 1) + u) / u;
		} else {
			/* weights = p / sum of the K selected p: Z cancels between numerator and
			 * denominator, leaving per side: exp of the numerator (fn), its division by Z (u),
			 * the K-sum of terms of the same error (fn + u + gamma_{K-1}) and the final
			 * division (u): 2 fn + 3u + gamma_{K-1}. A kernel running the Renormalize algorithm
			 * (softmax over the K) stays within that. */
			t->w_ulps = (2 * kf * u + 3 * u + moe_gamma(K - 1) + 2 * rf * u + 3 * u + moe_gamma(K - 1)) / u;
		}
		t->s_abs = 2 * FLT_MIN;
		break;
	case MOE_ROUTE_SIGMOID:
	case MOE_ROUTE_SIGMOID_RENORM:
	case MOE_ROUTE_MINIMAX2:
	case MOE_ROUTE_DEEPSEEKV3:
	default: {
		/* keys: s = sig(x) (+ bias, one more rounding of the sum: u relative to the key). */
		const bool biased = p->method == MOE_ROUTE_MINIMAX2 || p->method == MOE_ROUTE_DEEPSEEKV3;
		t->key_rel = srk + (biased ? u : 0.0);
		t->key_abs = sak;
		t->s_abs = sak + sar;
		const bool renorm = p->method != MOE_ROUTE_SIGMOID &&
				    (p->method != MOE_ROUTE_SIGMOID_RENORM || p->renormalize);
		if (!renorm) {
			t->w_ulps = (srk + srr) / u; /* w = s */
		} else {
			/* w = s / S (* rsf): s (sr), S = sum of K scores (sr + gamma_{K-1}), the division
			 * (u); MiniMax2/DeepSeekV3 add the epsilon (u) and the rsf product (u).
			 * Absolute score errors are handled per row by the floor (moe_route_weight_allowed). */
			const double extra = biased ? 3 * u : u;
			t->w_ulps = (2 * srk + moe_gamma(K - 1) + extra + 2 * srr + moe_gamma(K - 1) + extra) / u;
		}
		break;
	}
	}
	t->w_ulps = ceil(t->w_ulps);
}

double moe_route_weight_allowed(const struct moe_route_row *rw, double w_ref, double ssum)
{
	const struct moe_route_tol *t = rw->t;
	const struct moe_route_params *p = rw->p;
	double allowed = t->w_ulps * moe_ulp_f32(w_ref);
	/* Absolute score errors (underflowed sigmoids, flushed exps) move a weight by s_abs directly,
	 * and a renormalized one by (1 + K) * s_abs / S to first order (numerator plus the K terms
	 * of S), times rsf where the router applies it; the reference's error counts again. */
	double floor = t->s_abs;
	if (ssum > 0.0)
		floor = (1.0 + rw->K) * t->s_abs / ssum * fabs((double)p->routed_scaling_factor);
	else if (ssum < 0.0 || isnan(ssum))
		floor = INFINITY;
	allowed += floor;
	if (t->w_bf16 && (t->w_ulps > 0 || t->s_abs > 0))
		allowed += moe_ulp_bf16(fabs(w_ref) + allowed);
	return allowed;
}

/* Half the spacing of fp32 subnormals: the largest error of one rounding into that range. */
#define MOE_TINY_HALF 0x1p-150

void moe_norm_bound(const struct moe_norm_params *p, const float *x, const float *w, const double *y_ref,
		    double *bound)
{
	/* A kernel computes in fp32 in any summation order, with an rsqrt of up to 4 ulps.
	 * LayerNorm: mu_k = sum x / n within e_mu = gamma_{n+1} * sum|x| / n (n-1 adds, 1 division);
	 * d_k = fl(x - mu_k) within e_d = e_mu (1 + u) + u|d|; var_k = sum d_k^2 / n within
	 * e_v = sum e_d (2|d| + e_d) / n + gamma_{n+2} * sum (|d| + e_d)^2 / n; v + eps rounds once more.
	 * RMSNorm: ms_k = sum x^2 / n within gamma_{n+2} * ms. With eta the relative error of the
	 * rsqrt argument, the rsqrt result is within 1/sqrt(1 - eta) - 1 plus the kernel's 4 ulps.
	 * y = w * d * r: two more roundings; then the output rounding (half an ulp of the output
	 * format) against the unrounded double reference. eta >= 0.5: no meaningful bound.
	 * Roundings into the subnormal range err by up to half the subnormal spacing (2^-150) however
	 * small the result, which no relative term covers: the mean's division adds 2^-150 to e_mu,
	 * squares and the division by n 2^-149 to e_v, and d * r and its product by w 2^-150 each,
	 * the first carried through w. */
	const int64_t n = p->cols;
	const double u = MOE_U32;
	double A = 0, mu = 0, v = 0, e_mu = 0, e_v = 0;
	if (n == 0)
		return;
	for (int64_t i = 0; i < n; i++) {
		A += fabs((double)x[i]);
		mu += (double)x[i];
	}
	A /= (double)n;
	mu /= (double)n;
	if (p->kind == MOE_NORM_LAYERNORM) {
		e_mu = moe_gamma((double)n + 1) * A + MOE_TINY_HALF;
		double s1 = 0, s2 = 0;
		for (int64_t i = 0; i < n; i++) {
			double d = fabs((double)x[i] - mu), ed = e_mu * (1 + u) + u * d;
			v += d * d;
			s1 += ed * (2 * d + ed);
			s2 += (d + ed) * (d + ed);
		}
		v /= (double)n;
		e_v = s1 / (double)n + moe_gamma((double)n + 2) * s2 / (double)n + 2 * MOE_TINY_HALF;
	} else {
		for (int64_t i = 0; i < n; i++)
			v += (double)x[i] * (double)x[i];
		v /= (double)n;
		e_v = moe_gamma((double)n + 2) * v + 2 * MOE_TINY_HALF;
		mu = 0;
	}
	const double arg = v + (double)p->eps;
	const double eta = arg > 0 ? (e_v + u * arg) / arg : INFINITY;
	const double r = arg > 0 ? 1.0 / sqrt(arg) : INFINITY;
	const double eps_r = eta < 0.5 ? (1.0 / sqrt(1.0 - eta) - 1.0) + MOE_KERNEL_FN_ULPS * u * (1.0 + eta) : INFINITY;
	const double grow = (1.0 + eps_r) * (1.0 + u) * (1.0 + u) - 1.0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)x[i] - mu);
		double ed = p->kind == MOE_NORM_LAYERNORM ? e_mu * (1 + u) + u * d : 0.0;
		double b = fabs((double)w[i]) * r * (ed + (d + ed) * grow) + (fabs((double)w[i]) + 1) * MOE_TINY_HALF;
		double ymag = fabs(y_ref[i]) + b;
		b += 0.5 * (p->out_dtype == MOE_DTYPE_BF16 ? moe_ulp_bf16(ymag) : moe_ulp_f32(ymag));
		bound[i] = isfinite(b) ? b : INFINITY;
	}
}
