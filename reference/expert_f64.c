/* The expert MLP in double, with an a-priori bound per output that every correct fp32 kernel meets:
 * |y_kernel - y_ref| <= bound, elementwise, whatever its summation order, blocking or use of FMA.
 *
 * Inputs are exactly those of moe_expert__ref: the same activation quantization of x (expert_rows.c,
 * deterministic, so every correct kernel has the same xq) and the same dequantized weight rows.
 * Then, in double: g = sum xq*gate, u = sum xq*up, a = silu(g) * u with silu(t) = t / (1 + exp(-t)),
 * the intermediate's quantization as an interval (expert_hull.c), y = sum aq*down.
 *
 * The bound, stage by stage. u = 2^-24 is the fp32 unit roundoff, gamma(n) = n*u / (1 - n*u) and
 * gamma53(n) the same with 2^-53 (the double computations here).
 *
 * 1. Gate and up. A kernel adding the H exact-input products in any order (with or without FMA)
 *    is within gamma(H) * sum|xq*w| of the exact sum (the classical dot-product bound); the double
 *    sum here is within gamma53(H) * sum|xq*w|. Products or partial sums that a kernel rounds in the
 *    subnormal range, or flushes to zero, escape relative bounds by at most 2^-126 each:
 *        bg = (gamma(H) + gamma53(H)) * sum|xq*w| + H * 2^-126        (bu likewise)
 * 2. SiLU. A kernel's silu_k may differ from silu by |silu_k(t) - silu(t)| <= er*|silu(t)| + ea*|t| + al
 *    for every float t, er = 16u, ea = 4u, al = 2^-120. Why these: the reference's t / (1 + expf(-t))
 *    with expf within 1 ulp has e' = e(1 + d1), |d1| <= 2u, and (1 + e') = (1 + e)(1 + d1 e/(1 + e))
 *    with e/(1 + e) < 1, so with the addition and the division its relative error is at most
 *    (1 + u) / ((1 - 2u)(1 - u)) - 1 ~ 4u; er = 16u leaves room for a vectorized exp within 4 ulp
 *    and a reciprocal-based division within 2 ulp (8u + u + 4u + u). ea covers forms whose error is
 *    absolute in sigmoid, such as 0.5*tanh(t/2) + 0.5 (about u absolute when sigmoid is near 0).
 *    al covers underflow: below t = -88.7 expf(-t) overflows and silu becomes -0 where |silu(t)| <
 *    2.6e-37, and subnormal or flushed results lose less than 2^-126.
 *    The kernel evaluates silu at its own g_k, |g_k - g| <= bg, and |silu'(t)| = |s(t)(1 + t(1 - s(t)))|
 *    <= 1.0999 < L = 1.1 for all t (s the sigmoid; the maximum is near t = 2.40), so with S = silu(g)
 *        bs = L*bg + er*(|S| + L*bg) + ea*(|g| + bg) + al + 2^-50*|S|
 *    bounds |silu_k(g_k) - S| (the last term: the double exp and division here).
 * 3. a = silu * u, one fp32 rounding (or a flush): with s_k, u_k the kernel's factors,
 *        |a_k - S*u| <= |s_k*u_k - S*u| + u*|s_k*u_k| + 2^-126
 *        |s_k*u_k - S*u| <= |s_k - S|*|u_k| + |S|*|u_k - u| <= bs*(|u| + bu) + |S|*bu
 *        |s_k*u_k| <= (|S| + bs)*(|u| + bu)
 *    so ba = bs*(|u| + bu) + |S|*bu + u*(|S| + bs)*(|u| + bu) + 2^-126 + 2^-50*|a|.
 * 4. The intermediate's quantization (act_quant != NONE): expert_hull.c maps [a - ba, a + ba] through
 *    the quantizer, derived scales included; what the down projection is fed is then aq with bound e,
 *    e = 0 for elements no rounding decision separates, e spanning one step where a boundary lies
 *    within ba. With NONE, aq = a and e = ba.
 * 5. Down. The kernel's y_k = sum aq_k*down in fp32, any order:
 *        |y_k - sum aq*d| <= gamma(I) * sum |aq_k*d| + sum e*|d| <= gamma(I) * (Z + E) + E
 *    with Z = sum |aq*d| and E = sum e*|d|; the double sum here adds gamma53(I + 2) * Z (aq is a
 *    double, so each product rounds too), and subnormals I * 2^-126:
 *        bound = gamma(I) * (Z + E) + E + gamma53(I + 2) * Z + I * 2^-126
 * Every bound is finally multiplied by 1 + 2^-40 for the roundings of this bound arithmetic.
 *
 * Where a magnitude could reach the fp32 overflow threshold the bound is +inf; so it is where y_ref
 * is not finite (NaN or infinite inputs), which a comparator must judge by kind, not by distance.
 * Not covered: kernels that treat subnormal INPUTS as zero (DAZ) when the data contain some.
 * A wrong scale, a dropped term, gate and up swapped or ReLU for SiLU change outputs by amounts of
 * the order of the outputs themselves, far above these bounds (tests/test_expert.c shows it). */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "expert_impl.h"

static const double u32 = 0x1p-24;
static const double sub32 = 0x1p-126;
static const double silu_lip = 1.1;
static const double silu_rel = 16 * 0x1p-24;
static const double silu_abs = 4 * 0x1p-24;
static const double silu_tiny = 0x1p-120;
static const double f64_rel = 0x1p-50;
static const double slack = 1.0 + 0x1p-40;

static double gamma32(int64_t n)
{
	return (double)n * u32 / (1.0 - (double)n * u32);
}

static double gamma53(int64_t n)
{
	return (double)n * 0x1p-53 / (1.0 - (double)n * 0x1p-53);
}

/* b, or +inf when a value of magnitude mag off by b could overflow fp32 on the way. */
static double in_fp32_range(double mag, double b)
{
	return mag + b < 0x1p126 ? b : INFINITY;
}

static void dot_f64(const float *x, const float *w, int64_t n, double *sum, double *abs_sum)
{
	double s = 0.0, z = 0.0;
	for (int64_t k = 0; k < n; k++) {
		const double t = (double)x[k] * (double)w[k];
		s += t;
		z += fabs(t);
	}
	*sum = s;
	*abs_sum = z;
}

/* a = silu(g) * u and its bound (steps 1 to 3 above), from the two dot products. */
static void silu_mul(double g, double zg, double u, double zu, int64_t h, double *a, double *ba)
{
	const double gam = gamma32(h) + gamma53(h);
	const double bg = in_fp32_range(zg, (gam * zg + (double)h * sub32) * slack);
	const double bu = in_fp32_range(zu, (gam * zu + (double)h * sub32) * slack);
	const double s = g / (1.0 + exp(-g)), as = fabs(s), au = fabs(u);
	const double bs = silu_lip * bg + silu_rel * (as + silu_lip * bg) + silu_abs * (fabs(g) + bg) + silu_tiny +
			  f64_rel * as;
	*a = s * u;
	*ba = in_fp32_range(fabs(*a), (bs * (au + bu) + as * bu + u32 * (as + bs) * (au + bu) + sub32 +
				       f64_rel * fabs(*a)) * slack);
}

enum moe_status moe_expert_ref_f64_ex(const struct moe_expert_params *p, const float *x,
				      const struct moe_expert_weights *w, double *y_ref, double *bound,
				      struct moe_expert_f64_info *info)
{
	struct moe_expert_f64_info found = { 0 };
	if (info)
		*info = found;
	enum moe_status st = moe_expert_validate(p, w);
	if (st != MOE_OK)
		return st;
	const int64_t m_count = p->tokens, h_count = p->hidden, i_count = p->inter;
	if (m_count == 0)
		return MOE_OK;
	if (!x || !y_ref || !bound)
		return moe_fail(MOE_ERR_INVALID_ARG, "expert_ref_f64: x, y_ref or bound is NULL (tokens=%lld)",
				(long long)m_count);

	const size_t mh = (size_t)m_count * (size_t)h_count, mi = (size_t)m_count * (size_t)i_count;
	const size_t n = (size_t)(h_count > i_count ? h_count : i_count);
	struct moe_qtensor q;
	size_t qd = 1, qs = 1;
	if (moe_act_qtensor_format(p->act_quant, m_count, h_count, &q)) {
		qd = moe_qtensor_data_bytes(&q);
		qs = moe_qtensor_scale_bytes(&q) + 1;
	}
	float *xq = malloc(mh * sizeof(float)), *row = malloc((2 * (size_t)h_count + (size_t)i_count) * sizeof(float));
	uint8_t *sf = malloc(n / 16 + 1);
	void *qdata = malloc(qd), *qscale = malloc(qs);
	double *a = malloc(mi * sizeof(double)), *ba = malloc(mi * sizeof(double));
	if (!xq || !row || !sf || !qdata || !qscale || !a || !ba) {
		st = moe_fail(MOE_ERR_NOMEM, "expert_ref_f64: out of memory (tokens=%lld hidden=%lld inter=%lld)",
			      (long long)m_count, (long long)h_count, (long long)i_count);
		goto out;
	}
	float *wg = row, *wu = row + h_count, *wd = wu + h_count;

	moe_ref_act_quant(p->act_quant, p->act_global_scale[0], m_count, h_count, x, xq, qdata, qscale);
	for (int64_t i = 0; i < i_count; i++) {
		moe_ref_dequant_row(&w->gate, i, wg, sf);
		moe_ref_dequant_row(&w->up, i, wu, sf);
		for (int64_t m = 0; m < m_count; m++) {
			double g, zg, u, zu;
			dot_f64(xq + m * h_count, wg, h_count, &g, &zg);
			dot_f64(xq + m * h_count, wu, h_count, &u, &zu);
			silu_mul(g, zg, u, zu, h_count, &a[m * i_count + i], &ba[m * i_count + i]);
		}
	}
	st = moe_ref_act_hull(p->act_quant, p->act_global_scale[1], m_count, i_count, a, ba, &found);
	if (st != MOE_OK)
		goto out;

	const double gam = gamma32(i_count), gam53 = gamma53(i_count + 2);
	for (int64_t h = 0; h < h_count; h++) {
		moe_ref_dequant_row(&w->down, h, wd, sf);
		for (int64_t m = 0; m < m_count; m++) {
			const double *am = a + m * i_count, *em = ba + m * i_count;
			double y = 0.0, z = 0.0, e = 0.0;
			for (int64_t i = 0; i < i_count; i++) {
				const double d = wd[i], t = am[i] * d;
				y += t;
				z += fabs(t);
				e += em[i] * fabs(d);
			}
			double b = (gam * (z + e) + e + gam53 * z + (double)i_count * sub32) * slack;
			b = in_fp32_range(z, b);
			if (!isfinite(y) || found.unbounded)
				b = INFINITY;
			y_ref[m * h_count + h] = y;
			bound[m * h_count + h] = b;
		}
	}
	if (info)
		*info = found;
out:
	free(xq);
	free(row);
	free(sf);
	free(qdata);
	free(qscale);
	free(a);
	free(ba);
	return st;
}

enum moe_status moe_expert_ref_f64(const struct moe_expert_params *p, const float *x,
				   const struct moe_expert_weights *w, double *y_ref, double *bound)
{
	return moe_expert_ref_f64_ex(p, x, w, y_ref, bound, NULL);
}
