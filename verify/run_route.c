/* Running one routing case: generate the inputs, run the reference router (the oracle) and the
 * backend's, and compare with the tie-aware comparator (compare_route.c). Output buffers carry
 * guard elements after T*K: a kernel writing past its outputs fails, and sentinel values (id -2,
 * NaN weights) expose outputs the kernel never wrote. */
#include <math.h>
#include <string.h>

#include "vcases.h"
#include "vroute.h"

#define MOE_GUARD 16


void moe_vcheck_route(const struct moe_backend *b, const struct moe_vcase *c, const void *logits,
		      const float *L32, const void *bias, const float *b32, const int32_t *ids_r,
		      const float *w_r, struct moe_vscratch *s, struct moe_vresult *r)
{
	const struct moe_route_params *p = &c->route;
	const int64_t T = c->T, K = p->top_k, n = T * K + MOE_GUARD;
	int32_t *ids_k = moe_vscratch_get(s, 8, (size_t)n * sizeof(int32_t));
	float *w_k = moe_vscratch_get(s, 9, (size_t)n * sizeof(float));
	void *ws = moe_vscratch_get(s, 10, moe_route_scratch_bytes(p->num_experts, p->n_group));
	if (!ids_k || !w_k || !ws) {
		moe_vresult_nomem(r, "out of memory for T=%lld K=%lld", (long long)T, (long long)K);
		return;
	}
	for (int64_t i = 0; i < n; i++) {
		ids_k[i] = -2;
		w_k[i] = NAN;
	}
	b->route(p, T, logits, bias, ids_k, w_k);
	for (int64_t i = T * K; i < n; i++) {
		if (ids_k[i] != -2 || !isnan(w_k[i])) {
			snprintf(r->reason, sizeof r->reason, "wrote past the end of ids/weights (T*K=%lld)",
				 (long long)(T * K));
			moe_vresult_mismatch(r, "guard", i, ids_k[i], -2, 0, 0);
			return;
		}
	}
	moe_route_compare(p, T, L32, b32, ids_r, w_r, ids_k, w_k, ws, r);
	moe_vran(b, MOE_OP_ROUTE, p, r);
	moe_vmt_route(b, c, logits, L32, bias, b32, ids_r, w_r, s, r);

	/* Vacuous data: when the reference's weights are zero or NaN on nine rows in ten, the weight
	 * comparison says nothing, unless producing exactly that is what the generator tests. */
	const bool expected = c->gen == MOE_GEN_DEEP_UNDERFLOW || c->gen == MOE_GEN_UNDERFLOW ||
			      c->gen == MOE_GEN_NAN || c->gen == MOE_GEN_INF || c->gen == MOE_GEN_EQUAL ||
			      c->gen == MOE_GEN_DENORMAL;
	int64_t vacuous = 0, equal_rows = 0;
	const int64_t E = p->num_experts;
	for (int64_t t = 0; t < T; t++) {
		bool all = true, same = true;
		for (int64_t k = 0; k < K && all; k++)
			all = w_r[t * K + k] == 0.0f || isnan(w_r[t * K + k]);
		for (int64_t e = 1; e < E && same; e++)
			same = moe_f32_bits(L32[t * E + e]) == moe_f32_bits(L32[t * E]);
		vacuous += all;
		equal_rows += same && E > 1;
	}
	if (T >= 4 && !expected && vacuous * 10 >= T * 9)
		moe_vresult_untrusted(r, "reference weights zero or NaN on %lld of %lld rows", (long long)vacuous,
				      (long long)T);
	/* all-equal rows test only the tie rule: untrusted unless that is the generator's point */
	if (T >= 4 && c->gen != MOE_GEN_EQUAL && equal_rows * 10 >= T * 9)
		moe_vresult_untrusted(r, "logits all equal on %lld of %lld rows", (long long)equal_rows, (long long)T);
}

void moe_vrun_route(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r)
{
	const struct moe_route_params *p = &c->route;
	const int64_t T = c->T, E = p->num_experts, K = p->top_k;
	float *L32 = moe_vscratch_get(s, 0, (size_t)(T * E) * sizeof(float));
	void *logits = moe_vscratch_get(s, 1, (size_t)(T * E) * moe_storage_size(p->logits_dtype));
	float *b32 = p->bias_dtype != MOE_DTYPE_NONE ? moe_vscratch_get(s, 2, (size_t)E * sizeof(float)) : NULL;
	void *bias = p->bias_dtype != MOE_DTYPE_NONE ? moe_vscratch_get(s, 3, (size_t)E * moe_storage_size(p->bias_dtype)) : NULL;
	int32_t *ids_r = moe_vscratch_get(s, 4, (size_t)(T * K) * sizeof(int32_t));
	float *w_r = moe_vscratch_get(s, 5, (size_t)(T * K) * sizeof(float));
	if (!L32 || !logits || !ids_r || !w_r || (p->bias_dtype != MOE_DTYPE_NONE && (!b32 || !bias))) {
		moe_vresult_nomem(r, "out of memory for T=%lld E=%lld", (long long)T, (long long)E);
		return;
	}
	moe_gen_route(c, L32, b32);
	/* the kernel sees the stored dtype; the comparator the same values in fp32 */
	moe_store_as(p->logits_dtype, L32, logits, T * E);
	moe_load_f32(p->logits_dtype, logits, L32, T * E);
	if (bias) {
		moe_store_as(p->bias_dtype, b32, bias, E);
		moe_load_f32(p->bias_dtype, bias, b32, E);
	}
	moe_backend_reference()->route(p, T, logits, bias, ids_r, w_r);
	moe_vcheck_route(b, c, logits, L32, bias, b32, ids_r, w_r, s, r);
}
