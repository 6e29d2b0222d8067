/* Running one norm case: the oracle is moe_norm_ref_f64 (double, unrounded) with the a-priori bound
 * of moe_norm_bound (tolerance.c); the report shows the worst error/bound ratio. A correct fp32
 * kernel of any summation order stays below 1. */
#include <math.h>
#include <string.h>

#include "vcases.h"


void moe_vcheck_norm(const struct moe_backend *b, const struct moe_vcase *c, const void *x, const void *w,
		     const double *y_ref, struct moe_vscratch *s, struct moe_vresult *r)
{
	const struct moe_norm_params *p = &c->norm;
	const int64_t R = c->T, C = p->cols, n = R * C;
	const size_t osz = moe_storage_size(p->out_dtype), guard = 64;
	unsigned char *y = moe_vscratch_get(s, 8, (size_t)n * osz + guard);
	float *y32 = moe_vscratch_get(s, 9, (size_t)n * sizeof(float));
	float *x32 = moe_vscratch_get(s, 10, (size_t)n * sizeof(float));
	float *w32 = moe_vscratch_get(s, 11, (size_t)C * sizeof(float));
	double *bound = moe_vscratch_get(s, 12, (size_t)C * sizeof(double));
	if (!y || !y32 || !x32 || !w32 || !bound) {
		moe_vresult_nomem(r, "out of memory for %lld x %lld", (long long)R, (long long)C);
		return;
	}
	memset(y, 0xa5, (size_t)n * osz + guard);
	b->norm(p, x, w, y);
	for (size_t i = (size_t)n * osz; i < (size_t)n * osz + guard; i++) {
		if (y[i] != 0xa5) {
			snprintf(r->reason, sizeof r->reason, "wrote past the end of y (%lld bytes)", (long long)(n * (int64_t)osz));
			moe_vresult_mismatch(r, "guard", (int64_t)i, y[i], 0xa5, 0, 0);
			return;
		}
	}
	moe_load_f32(p->out_dtype, y, y32, n);
	moe_load_f32(p->in_dtype, x, x32, n);
	moe_load_f32(p->weight_dtype, w, w32, C);
	int64_t zero = 0, nonfinite = 0;
	for (int64_t i = 0; i < R; i++) {
		moe_norm_bound(p, x32 + i * C, w32, y_ref + i * C, bound);
		for (int64_t j = 0; j < C; j++) {
			const int64_t k = i * C + j;
			const double yr = y_ref[k], yk = y32[k];
			zero += yr == 0.0;
			nonfinite += !isfinite(yr);
			r->checked++;
			if (isnan(yr) ? !isnan(yk) : isinf(yr) ? yk != yr : !isfinite(yk)) {
				moe_vresult_mismatch(r, "y", k, yk, yr, INFINITY, bound[j]);
				continue;
			}
			if (!isfinite(yr))
				continue;
			const double err = fabs(yk - yr), ratio = bound[j] > 0 ? err / bound[j] : (err > 0 ? INFINITY : 0);
			moe_vresult_ratio(r, ratio);
			if (ratio > 1.0) {
				if (r->status != MOE_V_FAIL)
					snprintf(r->reason, sizeof r->reason, "row %lld: error beyond the a-priori bound",
						 (long long)i);
				moe_vresult_mismatch(r, "y", k, yk, yr, err, bound[j]);
			}
		}
	}
	if (n >= 16 && c->gen != MOE_GEN_EQUAL && zero * 10 >= n * 9)
		moe_vresult_untrusted(r, "reference output zero on %lld of %lld elements", (long long)zero, (long long)n);
	if (n > 0 && nonfinite * 10 >= n * 9)
		moe_vresult_untrusted(r, "reference output not finite on %lld of %lld elements", (long long)nonfinite,
				      (long long)n);
}

void moe_vrun_norm(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		   struct moe_vresult *r)
{
	const struct moe_norm_params *p = &c->norm;
	const int64_t R = c->T, C = p->cols, n = R * C;
	float *x32 = moe_vscratch_get(s, 0, (size_t)n * sizeof(float));
	float *w32 = moe_vscratch_get(s, 1, (size_t)C * sizeof(float));
	void *x = moe_vscratch_get(s, 2, (size_t)n * moe_storage_size(p->in_dtype));
	void *w = moe_vscratch_get(s, 3, (size_t)C * moe_storage_size(p->weight_dtype));
	double *y_ref = moe_vscratch_get(s, 4, (size_t)n * sizeof(double));
	if (!x32 || !w32 || !x || !w || !y_ref) {
		moe_vresult_nomem(r, "out of memory for %lld x %lld", (long long)R, (long long)C);
		return;
	}
	moe_gen_norm(c, x32, w32);
	moe_store_as(p->in_dtype, x32, x, n);
	moe_store_as(p->weight_dtype, w32, w, C);
	struct moe_norm_params rp = *p;
	rp.rows = R;
	moe_norm_ref_f64(&rp, x, w, y_ref);
	moe_vcheck_norm(b, c, x, w, y_ref, s, r);
}
