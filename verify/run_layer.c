/* Running one layer case. The layer returns its routing (ids, weights) and y. The routing is judged
 * by the tie-aware routing comparator against the reference router (run with rsf = 1 when the
 * layer applies rsf at the output, as the layer contract says). y is judged against
 * moe_layer_ref_f64 evaluated FOR THE KERNEL'S OWN ROUTING: a near-tie choice the comparator
 * accepted must not make the output comparison fail, and a wrong combine, a doubled rsf or a
 * wrong expert output lands far above the bound whatever the routing. A table with layer_mt then
 * runs the case again through the ABI 2 path (run_abi2.c: packed experts, 1, 2 and 3 threads). */
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

/* The router's params as the layer runs them: rsf = 1 when the layer applies it at the output. */
static struct moe_route_params layer_router(const struct moe_vcase *c)
{
	struct moe_route_params rp = c->route;
	if (c->rsf_site == MOE_RSF_AT_OUTPUT)
		rp.routed_scaling_factor = 1.0f;
	return rp;
}

bool moe_vjudge_layer(const struct moe_vcase *c, const struct moe_layer_params *lp, const float *x,
		      const float *L32, const float *b32, const struct moe_layer_weights *lw, const int32_t *ids_r,
		      const float *w_r, const int32_t *ids_k, const float *w_k, const float *y, bool ref_valid,
		      struct moe_vscratch *s, struct moe_vresult *r)
{
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = c->route.num_experts, K = c->route.top_k;
	const struct moe_route_params rp = layer_router(c);
	double *y_ref = moe_vscratch_get(s, 19, (size_t)(T * H) * sizeof(double));
	double *bound = moe_vscratch_get(s, 20, (size_t)(T * H) * sizeof(double));
	void *rws = moe_vscratch_get(s, 21, moe_route_scratch_bytes(E, rp.n_group));
	if (!y_ref || !bound || !rws) {
		moe_vresult_nomem(r, "out of memory for T=%lld E=%d H=%lld", (long long)T, E, (long long)H);
		return false;
	}
	moe_route_compare(&rp, T, L32, b32, ids_r, w_r, ids_k, w_k, rws, r);
	for (int64_t i = 0; i < T * K; i++)
		if (ids_k[i] < 0 || ids_k[i] >= E)
			return false; /* already a routing failure; no expert output to judge */
	if (!ref_valid) {
		struct moe_expert_f64_info info;
		if (moe_layer_ref_f64(lp, x, ids_k, w_k, lw, y_ref, bound, &info) != MOE_OK) {
			moe_vresult_untrusted(r, "double reference refused the case: %s", moe_last_error());
			return false;
		}
	}
	compare_y(y, y_ref, bound, T * H, r);
	return true;
}

void moe_vcheck_layer(const struct moe_backend *b, const struct moe_vcase *c, const float *x, const void *logits,
		      const float *L32, const void *bias, const float *b32, const struct moe_layer_weights *lw,
		      const int32_t *ids_r, const float *w_r, struct moe_vscratch *s, struct moe_vresult *r)
{
	struct moe_layer_params lp;
	moe_vcase_problem(c, &lp);
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = c->route.num_experts, K = c->route.top_k;
	int32_t *ids_k = moe_vscratch_get(s, 16, (size_t)(T * K + MOE_GUARD) * sizeof(int32_t));
	float *w_k = moe_vscratch_get(s, 17, (size_t)(T * K + MOE_GUARD) * sizeof(float));
	float *y = moe_vscratch_get(s, 18, (size_t)(T * H + MOE_GUARD) * sizeof(float));
	void *ws = moe_vscratch_get(s, 22, moe_layer_workspace_bytes(&lp));
	if (!ids_k || !w_k || !y || !ws) {
		moe_vresult_nomem(r, "out of memory for T=%lld E=%d H=%lld", (long long)T, E, (long long)H);
		return;
	}
	for (int64_t i = 0; i < T * K + MOE_GUARD; i++) {
		ids_k[i] = -2;
		w_k[i] = NAN;
	}
	for (int64_t i = 0; i < T * H + MOE_GUARD; i++)
		y[i] = NAN;
	b->layer(&lp, x, logits, bias, lw, y, ids_k, w_k, ws);
	for (int64_t i = 0; i < MOE_GUARD; i++) {
		if (ids_k[T * K + i] != -2 || !isnan(w_k[T * K + i]) || !isnan(y[T * H + i])) {
			snprintf(r->reason, sizeof r->reason, "wrote past the end of ids, weights or y");
			moe_vresult_mismatch(r, "guard", i, 0, 0, 0, 0);
			return;
		}
	}
	const bool ref_valid = moe_vjudge_layer(c, &lp, x, L32, b32, lw, ids_r, w_r, ids_k, w_k, y, false, s, r);
	moe_vran_layer(b, &lp, ref_valid ? ids_k : ids_r, r);
	moe_vmt_layer(b, c, x, logits, L32, bias, b32, lw, ids_r, w_r, ids_k, w_k, ref_valid, s, r);
}

enum moe_status moe_gen_layer_weights(const struct moe_vcase *c, struct moe_expert_weights **out)
{
	const int32_t E = c->route.num_experts;
	const bool shared = c->shared != MOE_SHARED_NONE;
	struct moe_expert_weights *ew = calloc((size_t)E + 1, sizeof *ew);
	enum moe_status st = MOE_OK;
	if (!ew)
		return moe_fail(MOE_ERR_NOMEM, "layer: no memory for %d experts", E);
	for (int32_t e = 0; e < E + shared && st == MOE_OK; e++)
		st = moe_gen_expert_weights(c, c->seed * 31u + (uint64_t)e + 1u,
					    e == E ? c->shared_inter : c->expert.inter, &ew[e]);
	if (st != MOE_OK) {
		moe_free_layer_weights(c, ew);
		return st;
	}
	*out = ew;
	return MOE_OK;
}

void moe_free_layer_weights(const struct moe_vcase *c, struct moe_expert_weights *ew)
{
	if (!ew)
		return;
	for (int32_t e = 0; e <= c->route.num_experts; e++)
		moe_free_expert_weights(&ew[e]);
	free(ew);
}

bool moe_gen_layer_inputs(const struct moe_vcase *c, struct moe_vscratch *s, struct moe_vlayer_inputs *in)
{
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = c->route.num_experts, K = c->route.top_k;
	const struct moe_route_params rp = layer_router(c);
	const bool hb = rp.bias_dtype != MOE_DTYPE_NONE;
	in->x = moe_vscratch_get(s, 0, (size_t)(T * H) * sizeof(float));
	in->L32 = moe_vscratch_get(s, 1, (size_t)(T * E) * sizeof(float));
	in->logits = moe_vscratch_get(s, 2, (size_t)(T * E) * moe_storage_size(rp.logits_dtype));
	in->b32 = hb ? moe_vscratch_get(s, 3, (size_t)E * sizeof(float)) : NULL;
	in->bias = hb ? moe_vscratch_get(s, 4, (size_t)E * moe_storage_size(rp.bias_dtype)) : NULL;
	in->ids_r = moe_vscratch_get(s, 5, (size_t)(T * K) * sizeof(int32_t));
	in->w_r = moe_vscratch_get(s, 6, (size_t)(T * K) * sizeof(float));
	if (!in->x || !in->L32 || !in->logits || !in->ids_r || !in->w_r || (hb && (!in->b32 || !in->bias)))
		return false;
	moe_gen_route(c, in->L32, in->b32);
	moe_store_as(rp.logits_dtype, in->L32, in->logits, T * E);
	moe_load_f32(rp.logits_dtype, in->logits, in->L32, T * E);
	if (hb) {
		moe_store_as(rp.bias_dtype, in->b32, in->bias, E);
		moe_load_f32(rp.bias_dtype, in->bias, in->b32, E);
	}
	moe_gen_expert_x(c, c->seed ^ 0x2545f4914f6cdd1dull, T, H, in->x);
	moe_backend_reference()->route(&rp, T, in->logits, in->bias, in->ids_r, in->w_r);
	return true;
}

void moe_vrun_layer(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r)
{
	struct moe_vlayer_inputs in;
	struct moe_expert_weights *ew;
	if (!moe_gen_layer_inputs(c, s, &in)) {
		moe_vresult_nomem(r, "out of memory for T=%lld E=%d", (long long)c->T, c->route.num_experts);
		return;
	}
	if (moe_gen_layer_weights(c, &ew) != MOE_OK) {
		moe_vresult_untrusted(r, "cannot build the expert weights: %s", moe_last_error());
		return;
	}
	struct moe_layer_weights lw = { ew, c->shared != MOE_SHARED_NONE ? &ew[c->route.num_experts] : NULL };
	moe_vcheck_layer(b, c, in.x, in.logits, in.L32, in.bias, in.b32, &lw, in.ids_r, in.w_r, s, r);
	moe_free_layer_weights(c, ew);
}
