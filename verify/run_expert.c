/* Running one expert case: the oracle is moe_expert_ref_f64_ex (double, on the same quantized
 * activations and dequantized weights) with its a-priori elementwise bound (reference/expert_f64.c
 * derives it); the report shows the worst error/bound ratio. Outputs that are not finite in the
 * reference must match by kind (NaN, the same infinity). A case whose bounds are all infinite (the
 * intermediate's derived scale is itself uncertain) is untrusted. A table with expert_mt then runs
 * the case again through the ABI 2 path (run_abi2.c: packed, 1, 2 and 3 threads). */
#include <math.h>
#include <string.h>

#include "vcases.h"

#define MOE_GUARD 16

void moe_vjudge_expert_y(const float *y, const double *y_ref, const double *bound, int64_t n, struct moe_vresult *r)
{
	for (int64_t i = 0; i < n; i++) {
		const double yr = y_ref[i], yk = y[i];
		r->checked++;
		if (!isfinite(yr)) {
			if (isnan(yr) ? !isnan(yk) : yk != yr)
				moe_vresult_mismatch(r, "y", i, yk, yr, INFINITY, bound[i]);
			continue;
		}
		if (!isfinite(bound[i])) {
			if (isnan(yk))
				moe_vresult_mismatch(r, "y", i, yk, yr, INFINITY, bound[i]);
			continue;
		}
		const double err = fabs(yk - yr);
		const double ratio = bound[i] > 0 ? err / bound[i] : (err > 0 ? INFINITY : 0);
		moe_vresult_ratio(r, isnan(yk) ? INFINITY : ratio);
		if (isnan(yk) || ratio > 1.0) {
			if (r->status != MOE_V_FAIL)
				snprintf(r->reason, sizeof r->reason, "y[%lld] beyond the a-priori bound (ratio %.3g)",
					 (long long)i, isnan(yk) ? INFINITY : ratio);
			moe_vresult_mismatch(r, "y", i, yk, yr, isnan(yk) ? INFINITY : err, bound[i]);
		}
	}
}

void moe_vcheck_expert(const struct moe_backend *b, const struct moe_vcase *c, const float *x,
		       const struct moe_expert_weights *w, const double *y_ref, const double *bound,
		       struct moe_vscratch *s, struct moe_vresult *r)
{
	struct moe_expert_params p = c->expert;
	p.tokens = c->T;
	const int64_t n = p.tokens * p.hidden;
	const size_t wsb = moe_expert_workspace_bytes(&p);
	float *y = moe_vscratch_get(s, 16, (size_t)(n + MOE_GUARD) * sizeof(float));
	void *ws = moe_vscratch_get(s, 17, wsb);
	if (!y || !ws) {
		moe_vresult_nomem(r, "out of memory (workspace %zu bytes)", wsb);
		return;
	}
	for (int64_t i = 0; i < n + MOE_GUARD; i++)
		y[i] = NAN;
	b->expert(&p, x, w, y, ws);
	for (int64_t i = n; i < n + MOE_GUARD; i++) {
		if (!isnan(y[i]) || moe_f32_bits(y[i]) != moe_f32_bits(NAN)) {
			snprintf(r->reason, sizeof r->reason, "wrote past the end of y (%lld floats)", (long long)n);
			moe_vresult_mismatch(r, "guard", i, y[i], NAN, 0, 0);
			return;
		}
	}
	moe_vran(b, MOE_OP_EXPERT, &p, r);
	moe_vjudge_expert_y(y, y_ref, bound, n, r);
	int64_t zero = 0, unbounded = 0, nonfinite = 0;
	for (int64_t i = 0; i < n; i++) {
		zero += y_ref[i] == 0.0;
		nonfinite += !isfinite(y_ref[i]);
		unbounded += isfinite(y_ref[i]) && !isfinite(bound[i]);
	}
	if (n > 0 && unbounded * 10 >= n * 9)
		moe_vresult_untrusted(r, "no finite bound on %lld of %lld outputs", (long long)unbounded, (long long)n);
	if (n >= 16 && zero * 10 >= n * 9)
		moe_vresult_untrusted(r, "reference output zero on %lld of %lld elements", (long long)zero, (long long)n);
	if (n > 0 && nonfinite * 10 >= n * 9)
		moe_vresult_untrusted(r, "reference output not finite on %lld of %lld elements", (long long)nonfinite,
				      (long long)n);
	moe_vmt_expert(b, c, x, w, y_ref, bound, s, r);
}

void moe_vrun_expert(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		     struct moe_vresult *r)
{
	struct moe_expert_params p = c->expert;
	p.tokens = c->T;
	const int64_t n = p.tokens * p.hidden;
	struct moe_expert_weights w;
	float *x = moe_vscratch_get(s, 0, (size_t)n * sizeof(float));
	double *y_ref = moe_vscratch_get(s, 1, (size_t)n * sizeof(double));
	double *bound = moe_vscratch_get(s, 2, (size_t)n * sizeof(double));
	if (!x || !y_ref || !bound) {
		moe_vresult_nomem(r, "out of memory for M=%lld H=%lld", (long long)p.tokens, (long long)p.hidden);
		return;
	}
	moe_gen_expert_x(c, c->seed, p.tokens, p.hidden, x);
	if (moe_gen_expert_weights(c, c->seed ^ 0x9e3779b97f4a7c15ull, p.inter, &w) != MOE_OK) {
		moe_vresult_untrusted(r, "cannot build the weights: %s", moe_last_error());
		return;
	}
	struct moe_expert_f64_info info;
	if (moe_expert_ref_f64_ex(&p, x, &w, y_ref, bound, &info) != MOE_OK) {
		moe_vresult_untrusted(r, "double reference refused the case: %s", moe_last_error());
	} else {
		moe_vcheck_expert(b, c, x, &w, y_ref, bound, s, r);
	}
	moe_free_expert_weights(&w);
}
