/* Summary statistics of repeated timings and the Mann-Whitney U test used by `moebench compare`.
 *
 * All in double. The median sorts a copy; the sample standard deviation uses n - 1 and two passes
 * (mean first) so that timings of similar size do not cancel. Mann-Whitney: ranks with ties given
 * their average rank, U_a = R_a - na(na+1)/2; the p-value is exact (the null distribution counted
 * by the recurrence f(m, n, u) = f(m-1, n, u-n) + f(m, n-1, u)) when there are no ties and both
 * samples have at most 50 values, and otherwise the normal approximation with the tie correction
 * of the variance and a continuity correction of 1/2, as statistics textbooks give it.
 *
 * Why a rank test: timings on a shared machine are skewed with a long right tail (an interrupt or
 * a neighbour lands in one sample), so a t-test's normality assumption fails and one outlier moves
 * its mean; ranks bound each sample's influence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double moe_bench_median(const double *x, size_t n)
{
	if (n == 0)
		return NAN;
	double *s = malloc(n * sizeof *s);
	if (!s)
		return NAN;
	memcpy(s, x, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	double m = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	free(s);
	return m;
}

void moe_bench_summarize(const double *x, size_t n, struct moe_bench_summary *s)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	if (n == 0) {
		s->median = s->mean = s->min = s->max = NAN;
		return;
	}
	double sum = 0;
	s->min = s->max = x[0];
	for (size_t i = 0; i < n; i++) {
		sum += x[i];
		s->min = fmin(s->min, x[i]);
		s->max = fmax(s->max, x[i]);
	}
	s->mean = sum / (double)n;
	double ss = 0;
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - s->mean) * (x[i] - s->mean);
	s->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
	s->cv = s->mean != 0 ? s->stddev / s->mean : 0;
	s->median = moe_bench_median(x, n);
}

struct ranked {
	double v;
	int from_a;
};

static int cmp_ranked(const void *a, const void *b)
{
	return cmp_double(&((const struct ranked *)a)->v, &((const struct ranked *)b)->v);
}

/* P(U <= u) under the null hypothesis for samples of na and nb values without ties. */
static double exact_cdf(size_t na, size_t nb, double u)
{
	size_t umax = na * nb, w = umax + 1;
	double *prev = calloc((na + 1) * w, sizeof *prev), *cur = calloc((na + 1) * w, sizeof *cur);
	double p = NAN;
	if (!prev || !cur)
		goto out;
	/* n = 0: only u = 0 is possible, one arrangement for every m. */
	for (size_t m = 0; m <= na; m++)
		prev[m * w] = 1;
	for (size_t n = 1; n <= nb; n++) {
		memset(cur, 0, (na + 1) * w * sizeof *cur);
		for (size_t m = 0; m <= na; m++)
			for (size_t k = 0; k <= umax; k++) {
				double c = prev[m * w + k];
				if (m > 0 && k >= n)
					c += cur[(m - 1) * w + k - n];
				cur[m * w + k] = c;
			}
		double *t = prev;
		prev = cur;
		cur = t;
	}
	double below = 0, total = 0;
	for (size_t k = 0; k <= umax; k++) {
		total += prev[na * w + k];
		if ((double)k <= u + 1e-9)
			below += prev[na * w + k];
	}
	p = below / total;
out:
	free(prev);
	free(cur);
	return p;
}

enum moe_status moe_bench_mann_whitney(const double *a, size_t na, const double *b, size_t nb,
				       struct moe_bench_mwu *out)
{
	if (na == 0 || nb == 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "mann-whitney: empty sample (na=%zu, nb=%zu)", na, nb);
	size_t N = na + nb;
	struct ranked *r = malloc(N * sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "mann-whitney: no memory for %zu values", N);
	for (size_t i = 0; i < na; i++)
		r[i] = (struct ranked){ a[i], 1 };
	for (size_t i = 0; i < nb; i++)
		r[na + i] = (struct ranked){ b[i], 0 };
	qsort(r, N, sizeof *r, cmp_ranked);
	double ra = 0, tie_sum = 0;
	for (size_t i = 0; i < N;) {
		size_t j = i;
		while (j + 1 < N && r[j + 1].v == r[i].v)
			j++;
		double rank = 0.5 * (double)(i + j) + 1, t = (double)(j - i + 1);
		tie_sum += t * t * t - t;
		for (size_t k = i; k <= j; k++)
			if (r[k].from_a)
				ra += rank;
		i = j + 1;
	}
	free(r);

	const double dna = (double)na, dnb = (double)nb, dN = (double)N;
	memset(out, 0, sizeof *out);
	out->u_a = ra - dna * (dna + 1) / 2;
	out->u_b = dna * dnb - out->u_a;
	if (tie_sum == 0 && na <= 50 && nb <= 50) {
		double lo = fmin(out->u_a, out->u_b);
		double p = exact_cdf(na, nb, lo);
		if (isnan(p))
			return moe_fail(MOE_ERR_NOMEM, "mann-whitney: no memory for the exact distribution");
		out->exact = true;
		out->p = fmin(1.0, 2 * p);
		return MOE_OK;
	}
	double mean = dna * dnb / 2;
	double var = dna * dnb / 12 * ((dN + 1) - tie_sum / (dN * (dN - 1)));
	double d = fmax(0, fabs(out->u_a - mean) - 0.5);
	out->z = var > 0 ? d / sqrt(var) : 0;
	out->p = var > 0 ? erfc(out->z / sqrt(2.0)) : 1.0;
	return MOE_OK;
}
