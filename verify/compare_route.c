/* The tie-aware routing comparator (verification.md, "Routing ids: ties and near-ties").
 *
 * Per row: when the kernel's ids equal the reference's, weights are compared slot by slot. When
 * they differ, the kernel's order is accepted iff some perturbation of the keys within their
 * budgets (route_model.c, tolerance.c) produces it: for every pair (a ranked before b by the kernel,
 * a selected and b not, or a in an earlier slot) key[b] - key[a] <= delta[a] + delta[b], and
 * experts with bitwise-equal inputs keep the tie rule exactly (lower index first). For grouped
 * DeepSeekV3 the group choice is itself subject to near-ties: every set of TG groups consistent
 * with the group scores' budgets is tried, experts outside it carrying the profile's fill value
 * (-inf, or 0.0 for hf). Rows with non-finite inputs, and all-equal rows, must match exactly.
 * Accepted deviations are counted as near-ties; weights are then aligned by expert id (same set)
 * or checked against the exact weights of the kernel's own selection (different set). When the
 * models reject the reference itself, the row is reported untrusted rather than failed. Under the
 * profiles that return bf16 weights, a weight that is not a bf16 value fails whatever its error. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vroute.h"

#define MOE_MAX_GROUP_SETS 4096
#define MOE_MASKED_BITS 0xfffffffffffffffeull

size_t moe_route_scratch_bytes(int32_t E, int32_t G)
{
	const size_t e = (size_t)(E > 0 ? E : 1), g = (size_t)(G > 0 ? G : 1);
	return e * (5 * sizeof(double) + 2 * sizeof(uint64_t) + 1) + 2 * g * sizeof(double) + 64;
}

/* Layout: doubles (key, delta, kt, two weight rows, gs, dg), then uint64 (inb, kb), then mark. */
static double *row_bind(struct moe_route_row *rw, void *ws)
{
	char *p = ws;
	const size_t E = (size_t)rw->E, G = (size_t)(rw->p->n_group > 0 ? rw->p->n_group : 1);
	rw->key = (double *)p;
	p += E * sizeof(double);
	rw->delta = (double *)p;
	p += E * sizeof(double);
	rw->kt = (double *)p;
	p += E * sizeof(double);
	double *wm = (double *)p;
	p += 2 * E * sizeof(double);
	rw->gs = (double *)p;
	p += G * sizeof(double);
	rw->dg = (double *)p;
	p += G * sizeof(double);
	rw->inb = (uint64_t *)p;
	p += E * sizeof(uint64_t);
	rw->kb = (uint64_t *)p;
	p += E * sizeof(uint64_t);
	rw->mark = (unsigned char *)p;
	return wm;
}

struct eff {
	const struct moe_route_row *rw;
	uint64_t in_set; /* group mask of the candidate set (grouped), all ones otherwise */
	int32_t gsz;
	double fill;
};

static bool eff_in(const struct eff *f, int32_t e)
{
	return f->gsz == 0 || ((f->in_set >> (e / f->gsz)) & 1u);
}

static double eff_key(const struct eff *f, int32_t e)
{
	return eff_in(f, e) ? f->rw->key[e] : f->fill;
}

static double eff_delta(const struct eff *f, int32_t e)
{
	return eff_in(f, e) ? f->rw->delta[e] : 0.0;
}

static uint64_t eff_bits(const struct eff *f, int32_t e)
{
	return eff_in(f, e) ? f->rw->inb[e] : MOE_MASKED_BITS;
}

/* The pairwise condition for one candidate key assignment; rw->mark holds the selection. */
static bool order_ok(const struct eff *f, const int32_t *ids, int64_t *slot, const char **why)
{
	const struct moe_route_row *rw = f->rw;
	const int32_t K = rw->K, E = rw->E;
	double m = INFINITY;
	for (int32_t i = 0; i < K; i++) {
		const int32_t a = ids[i];
		m = fmin(m, eff_key(f, a) + eff_delta(f, a));
		for (int32_t j = i + 1; j < K; j++) {
			const int32_t b = ids[j];
			if (eff_key(f, b) - eff_key(f, a) > eff_delta(f, a) + eff_delta(f, b)) {
				*slot = j;
				*why = "slot order: a later slot holds an expert with a clearly larger key";
				return false;
			}
			if (b < a && eff_bits(f, a) == eff_bits(f, b)) {
				*slot = j;
				*why = "tie rule: experts with equal inputs must come in increasing index order";
				return false;
			}
		}
	}
	for (int32_t b = 0; b < E; b++) {
		if (rw->mark[b])
			continue;
		if (eff_key(f, b) - eff_delta(f, b) > m) {
			*slot = K + b;
			*why = "selection: an unselected expert has a key clearly above a selected one";
			return false;
		}
	}
	for (int32_t i = 0; i < K; i++) {
		const int32_t a = ids[i];
		const uint64_t ba = eff_bits(f, a);
		for (int32_t b = 0; b < a; b++) {
			if (!rw->mark[b] && eff_bits(f, b) == ba) {
				*slot = K + b;
				*why = "tie rule: an unselected expert with equal inputs has a lower index";
				return false;
			}
		}
	}
	return true;
}

/* Grouped: try every TG-set of groups the group-score budgets allow. */
static bool grouped_ok(const struct moe_route_row *rw, const int32_t *ids, int64_t *slot, const char **why)
{
	const struct moe_route_params *p = rw->p;
	const int32_t G = p->n_group, TG = p->topk_group;
	struct eff f = { rw, 0, rw->E / G, p->profile == MOE_PROFILE_HF ? 0.0 : -INFINITY };
	uint64_t sure = 0;
	int32_t band[64], nband = 0, nsure = 0;
	if (G > 64) {
		*slot = 0;
		*why = "more than 64 groups: not checkable";
		return false;
	}
	for (int32_t g = 0; g < G; g++) {
		int32_t could_beat = 0, surely_beat = 0;
		for (int32_t h = 0; h < G; h++) {
			if (h == g)
				continue;
			if (rw->gs[h] + rw->dg[h] >= rw->gs[g] - rw->dg[g])
				could_beat++;
			if (rw->gs[h] - rw->dg[h] > rw->gs[g] + rw->dg[g])
				surely_beat++;
		}
		if (could_beat < TG) {
			sure |= 1ull << g;
			nsure++;
		} else if (surely_beat < TG) {
			band[nband++] = g;
		}
	}
	const int32_t need = TG - nsure;
	if (need < 0 || need > nband) {
		*slot = 0;
		*why = "group scores inconsistent with topk_group";
		return false;
	}
	int32_t c[64];
	for (int32_t i = 0; i < need; i++)
		c[i] = i;
	*why = NULL;
	for (int tries = 0; tries < MOE_MAX_GROUP_SETS; tries++) {
		f.in_set = sure;
		for (int32_t i = 0; i < need; i++)
			f.in_set |= 1ull << band[c[i]];
		if (order_ok(&f, ids, slot, why))
			return true;
		int32_t i = need - 1;
		while (i >= 0 && c[i] == nband - need + i)
			i--;
		if (i < 0)
			return false;
		c[i]++;
		for (int32_t j = i + 1; j < need; j++)
			c[j] = c[j - 1] + 1;
	}
	*why = "too many near-tied group choices to check";
	return false;
}

bool moe_route_row_ids_ok(struct moe_route_row *rw, const int32_t *ids, int64_t *slot, const char **why)
{
	const int32_t K = rw->K, E = rw->E;
	bool ok = true;
	int32_t i;
	for (i = 0; i < K; i++) {
		if (ids[i] < 0 || ids[i] >= E) {
			*why = "expert id out of range";
			ok = false;
			break;
		}
		if (rw->mark[ids[i]]) {
			*why = "duplicate expert id in a row";
			ok = false;
			break;
		}
		rw->mark[ids[i]] = 1;
	}
	if (!ok) {
		*slot = i;
	} else if (rw->p->method == MOE_ROUTE_DEEPSEEKV3 && rw->p->n_group > 1) {
		ok = grouped_ok(rw, ids, slot, why);
	} else {
		struct eff f = { rw, ~0ull, 0, 0.0 };
		ok = order_ok(&f, ids, slot, why);
	}
	for (int32_t j = 0; j < i && j < K; j++)
		rw->mark[ids[j]] = 0;
	return ok;
}

/* One weight against its oracle value; returns false on a mismatch. */
static bool weight_ok(const struct moe_route_row *rw, float wk, double wref, double ssum,
		      struct moe_vresult *r, double *err, double *allowed)
{
	*err = fabs((double)wk - wref);
	*allowed = isfinite(wref) ? moe_route_weight_allowed(rw, wref, ssum) : 0.0;
	if (isnan(wref))
		return isnan(wk);
	if (isinf(wref))
		return (double)wk == wref;
	if (isnan(wk) || isinf(wk))
		return false;
	if (*err > 0 || wref != 0) {
		const double ulp = rw->t->w_bf16 ? moe_ulp_bf16(wref) : moe_ulp_f32(wref);
		if (isfinite(*allowed))
			moe_vresult_ulp(r, *err / ulp, *allowed / ulp);
	}
	return *err <= *allowed;
}

static void fail_ids(struct moe_vresult *r, int64_t t, int32_t K, int64_t slot, const int32_t *ik,
		     const int32_t *ir, const struct moe_route_row *rw, const char *why)
{
	if (r->status != MOE_V_FAIL)
		snprintf(r->reason, sizeof r->reason, "row %lld: %s", (long long)t, why);
	if (slot < K) {
		const int32_t a = ik[slot], b = ir[slot];
		const bool inr = a >= 0 && a < rw->E && b >= 0 && b < rw->E && !rw->exact_only;
		moe_vresult_mismatch(r, "ids", t * K + slot, a, b, inr ? rw->key[b] - rw->key[a] : NAN,
				     inr ? rw->delta[a] + rw->delta[b] : 0.0);
	} else {
		const int64_t e = slot - K;
		moe_vresult_mismatch(r, "ids(missing expert)", t * K, -1, (double)e, NAN, 0.0);
	}
}

/* Where the profile returns bf16 weights (flashinfer, hf) in fp32 storage, every finite weight
 * must be a bf16 value: the budget allows one bf16 ulp of error, so an fp32 weight left unrounded
 * would pass it, yet it is not what the engine delivers. */
static void bf16_values(const struct moe_route_row *rw, int64_t t, const float *wk, struct moe_vresult *r)
{
	if (!rw->t->w_bf16)
		return;
	for (int32_t k = 0; k < rw->K; k++) {
		if (!isfinite(wk[k]) || (moe_f32_bits(wk[k]) & 0xffffu) == 0)
			continue;
		if (r->status != MOE_V_FAIL)
			snprintf(r->reason, sizeof r->reason, "row %lld: weight %d is not a bf16 value (the %s profile "
				 "returns bf16 weights)", (long long)t, k, moe_profile_name(rw->p->profile));
		moe_vresult_mismatch(r, "weights(bf16)", t * rw->K + k, wk[k], moe_round_bf16(wk[k]),
				     fabs((double)wk[k] - moe_round_bf16(wk[k])), 0.0);
	}
}

void moe_route_compare(const struct moe_route_params *p, int64_t T, const float *L32, const float *b32,
		       const int32_t *ids_r, const float *w_r, const int32_t *ids_k, const float *w_k,
		       void *ws, struct moe_vresult *r)
{
	struct moe_route_tol tol;
	const int32_t E = p->num_experts, K = p->top_k;
	struct moe_route_row rw = { .p = p, .t = &tol, .E = E, .K = K, .b = b32 };
	moe_route_tolerance(p, &tol);
	double *wm = row_bind(&rw, ws), *wm2 = wm + E;
	memset(rw.mark, 0, (size_t)E);

	for (int64_t t = 0; t < T; t++) {
		const int32_t *ik = ids_k + t * K, *ir = ids_r + t * K;
		const float *wk = w_k + t * K, *wr = w_r + t * K;
		double ssum, err, allowed;
		rw.L = L32 + t * E;
		bf16_values(&rw, t, wk, r);
		bool same = memcmp(ik, ir, (size_t)K * sizeof *ik) == 0;
		bool same_set = same;
		if (!same) {
			int64_t slot = 0;
			const char *why = "";
			moe_route_row_model(&rw);
			if (rw.exact_only) {
				for (slot = 0; slot < K && ik[slot] == ir[slot]; slot++)
					;
				fail_ids(r, t, K, slot, ik, ir, &rw,
					 "ids differ on a row that must match exactly (non-finite or all-equal inputs)");
				continue;
			}
			if (!moe_route_row_ids_ok(&rw, ik, &slot, &why)) {
				int64_t s2;
				const char *w2;
				if (!moe_route_row_ids_ok(&rw, ir, &s2, &w2)) {
					moe_vresult_untrusted(r, "row %lld: the key model rejects the reference's ids "
							      "too (%s)", (long long)t, w2);
					continue;
				}
				fail_ids(r, t, K, slot, ik, ir, &rw, why);
				continue;
			}
			r->near_ties++;
			for (int32_t k = 0; k < K; k++)
				rw.mark[ik[k]] = 1;
			same_set = true;
			for (int32_t k = 0; k < K; k++)
				same_set = same_set && rw.mark[ir[k]];
			for (int32_t k = 0; k < K; k++)
				rw.mark[ik[k]] = 0;
		}
		moe_route_row_weights(&rw, ir, wm, &ssum);
		if (same_set) {
			for (int32_t k = 0; k < K; k++) {
				int32_t j = 0;
				while (ir[j] != ik[k])
					j++;
				r->checked++;
				if (!weight_ok(&rw, wk[k], wr[j], ssum, r, &err, &allowed)) {
					if (r->status != MOE_V_FAIL)
						snprintf(r->reason, sizeof r->reason, "row %lld: weight of expert %d "
							 "beyond its budget", (long long)t, ik[k]);
					moe_vresult_mismatch(r, "weights", t * K + k, wk[k], wr[j], err, allowed);
				}
			}
			continue;
		}
		/* Different expert sets (a near-tie at the K-th boundary): the reference's weights are
		 * for another selection, so the kernel's are checked against the exact weights of its
		 * own, after checking that the weight model reproduces the reference's. */
		bool model_ok = true;
		for (int32_t k = 0; k < K && model_ok; k++) {
			struct moe_vresult scratch;
			moe_vresult_init(&scratch);
			model_ok = weight_ok(&rw, wr[k], wm[k], ssum, &scratch, &err, &allowed);
		}
		if (!model_ok) {
			moe_vresult_untrusted(r, "row %lld: the weight model disagrees with the reference",
					      (long long)t);
			continue;
		}
		moe_route_row_weights(&rw, ik, wm2, &ssum);
		for (int32_t k = 0; k < K; k++) {
			r->checked++;
			if (!weight_ok(&rw, wk[k], wm2[k], ssum, r, &err, &allowed)) {
				if (r->status != MOE_V_FAIL)
					snprintf(r->reason, sizeof r->reason, "row %lld: weight of expert %d (near-tie "
						 "selection) beyond its budget", (long long)t, ik[k]);
				moe_vresult_mismatch(r, "weights", t * K + k, wk[k], wm2[k], err, allowed);
			}
		}
	}
}
