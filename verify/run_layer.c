/* Running one layer case. The layer returns its routing (ids, weights) and y. The routing is judged
 * by the tie-aware routing comparator against the reference router (run with rsf = 1 when the
 * layer applies rsf at the output, as the layer contract says). y is judged against
 * moe_layer_ref_f64 evaluated FOR THE KERNEL'S OWN ROUTING: a near-tie choice the comparator
 * accepted must not make the output comparison fail, and a wrong combine, a doubled rsf or a
 * wrong expert output lands far above the bound whatever the routing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vcases.h"
#include "vroute.h"

#define MOE_GUARD 16


static void compare_y(const float *y, const double *y_ref, const double *bound, int64_t n, struct moe_vresult *r)
{
	int64_t unbounded = 0;
	for (int64_t i = 0; i < n; i++) {
		const double yr = y_ref[i], yk = y[i];
		r->checked++;
		if (!isfinite(yr)) {
			if (isnan(yr) ? !isnan(yk) : yk != yr)
				moe_vresult_mismatch(r, "y", i, yk, yr, INFINITY, bound[i]);
			continue;
		}
		if (!isfinite(bound[i])) {
			unbounded++;
			continue;
		}
		const double err = isnan(yk) ? INFINITY : fabs(yk - yr);
		const double ratio = bound[i] > 0 ? err / bound[i] : (err > 0 ? INFINITY : 0);
		moe_vresult_ratio(r, ratio);
		if (ratio > 1.0) {
			if (r->status != MOE_V_FAIL)
				snprintf(r->reason, sizeof r->reason, "y[%lld] beyond the a-priori bound (ratio %.3g)",
					 (long long)i, ratio);
			moe_vresult_mismatch(r, "y", i, yk, yr, err, bound[i]);
		}
	}
	if (n > 0 && unbounded * 10 >= n * 9)
		moe_vresult_untrusted(r, "no finite bound on %lld of %lld outputs", (long long)unbounded, (long long)n);
}

void moe_vrun_layer(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r)
{
	struct moe_layer_params lp;
	moe_vcase_problem(c, &lp);
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = c->route.num_experts, K = c->route.top_k;
	struct moe_route_params rp = c->route;
	if (c->rsf_site == MOE_RSF_AT_OUTPUT)
		rp.routed_scaling_factor = 1.0f;

	float *x = moe_vscratch_get(s, 0, (size_t)(T * H) * sizeof(float));
	float *L32 = moe_vscratch_get(s, 1, (size_t)(T * E) * sizeof(float));
	void *logits = moe_vscratch_get(s, 2, (size_t)(T * E) * moe_storage_size(rp.logits_dtype));
	float *b32 = rp.bias_dtype ? moe_vscratch_get(s, 3, (size_t)E * sizeof(float)) : NULL;
	void *bias = rp.bias_dtype ? moe_vscratch_get(s, 4, (size_t)E * moe_storage_size(rp.bias_dtype)) : NULL;
	int32_t *ids = moe_vscratch_get(s, 5, (size_t)(2 * T * K + MOE_GUARD) * sizeof(int32_t));
	float *wts = moe_vscratch_get(s, 6, (size_t)(2 * T * K + MOE_GUARD) * sizeof(float));
	float *y = moe_vscratch_get(s, 7, (size_t)(T * H + MOE_GUARD) * sizeof(float));
	double *y_ref = moe_vscratch_get(s, 8, (size_t)(T * H) * sizeof(double));
	double *bound = moe_vscratch_get(s, 9, (size_t)(T * H) * sizeof(double));
	void *rws = moe_vscratch_get(s, 10, moe_route_scratch_bytes(E, rp.n_group));
	void *ws = moe_vscratch_get(s, 11, moe_layer_workspace_bytes(&lp));
	struct moe_expert_weights *ew = calloc((size_t)E + 1, sizeof *ew);
	if (!x || !L32 || !logits || !ids || !wts || !y || !y_ref || !bound || !rws || !ws || !ew ||
	    (rp.bias_dtype && (!b32 || !bias))) {
		free(ew);
		moe_vresult_untrusted(r, "out of memory for T=%lld E=%d H=%lld", (long long)T, E, (long long)H);
		return;
	}
	int32_t *ids_r = ids, *ids_k = ids + T * K;
	float *w_r = wts, *w_k = wts + T * K;

	moe_gen_route(c, L32, b32);
	moe_store_as(rp.logits_dtype, L32, logits, T * E);
	moe_load_f32(rp.logits_dtype, logits, L32, T * E);
	if (bias) {
		moe_store_as(rp.bias_dtype, b32, bias, E);
		moe_load_f32(rp.bias_dtype, bias, b32, E);
	}
	moe_gen_expert_x(c, c->seed ^ 0x2545f4914f6cdd1dull, T, H, x);
	enum moe_status st = MOE_OK;
	int32_t built = 0;
	for (; built <= E && st == MOE_OK; built++) {
		if (built == E && c->shared == MOE_SHARED_NONE)
			break;
		st = moe_gen_expert_weights(c, c->seed * 31u + (uint64_t)built + 1u,
					    built == E ? c->shared_inter : c->expert.inter, &ew[built]);
	}
	if (st != MOE_OK) {
		moe_vresult_untrusted(r, "cannot build the expert weights: %s", moe_last_error());
		goto out;
	}
	struct moe_layer_weights lw = { ew, c->shared != MOE_SHARED_NONE ? &ew[E] : NULL };

	moe_backend_reference()->route(&rp, T, logits, bias, ids_r, w_r);
	for (int64_t i = 0; i < T * K + MOE_GUARD; i++) {
		ids_k[i] = -2;
		w_k[i] = NAN;
	}
	for (int64_t i = 0; i < T * H + MOE_GUARD; i++)
		y[i] = NAN;
	b->layer(&lp, x, logits, bias, &lw, y, ids_k, w_k, ws);
	for (int64_t i = 0; i < MOE_GUARD; i++) {
		if (ids_k[T * K + i] != -2 || !isnan(w_k[T * K + i]) || !isnan(y[T * H + i])) {
			snprintf(r->reason, sizeof r->reason, "wrote past the end of ids, weights or y");
			moe_vresult_mismatch(r, "guard", i, 0, 0, 0, 0);
			goto out;
		}
	}
	moe_route_compare(&rp, T, L32, b32, ids_r, w_r, ids_k, w_k, rws, r);
	for (int64_t i = 0; i < T * K; i++) {
		if (ids_k[i] < 0 || ids_k[i] >= E)
			goto out; /* already a routing failure; no expert output to judge */
	}
	struct moe_expert_f64_info info;
	if (moe_layer_ref_f64(&lp, x, ids_k, w_k, &lw, y_ref, bound, &info) != MOE_OK) {
		moe_vresult_untrusted(r, "double reference refused the case: %s", moe_last_error());
		goto out;
	}
	compare_y(y, y_ref, bound, T * H, r);
out:
	for (int32_t e = 0; e < built && e <= E; e++)
		moe_free_expert_weights(&ew[e]);
	free(ew);
}
