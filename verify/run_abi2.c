/* The ABI 2 paths of a backend (moe/backend.h), run after the plain (version-1) path of a case:
 * route_mt, expert_mt and layer_mt through the host calls moe_backend_route/_expert/_layer at 1, 2
 * and 3 threads (host pools, moe_pool_create), on packed weights when the table has pack. The
 * 1-thread result is judged like the plain path; the 2- and 3-thread results must equal it bit for
 * bit (moe/threads.h: results never depend on the thread count), and a difference is a FAIL naming
 * the output, the element and the thread count.
 *
 * A handle is self-sufficient: between pack and the last run the plain weights are scrambled
 * (every byte of data and scales XORed with 0x5a, undone afterwards), so a kernel that still reads
 * them, or a pack that kept pointers to them, fails. An expert case packs two experts, a decoy (the
 * case's gate and up exchanged) at index 0 and the case's weights at index 1, so a layout that is
 * right only for the first expert of a handle, or an expert_mt that ignores `index`, fails. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "vcases.h"
#include "vroute.h"

#define MOE_GUARD 16

/* Prefixes the reason of a failure this path caused (not one the plain path had already). */
static void label(struct moe_vresult *r, bool was_fail, const char *what)
{
	if (was_fail || r->status != MOE_V_FAIL)
		return;
	const size_t size = sizeof r->reason, n = strlen(what) + 2;
	if (n >= size)
		return;
	memmove(r->reason + n, r->reason, size - n - 1);
	memcpy(r->reason, what, n - 2);
	memcpy(r->reason + n - 2, ": ", 2);
	r->reason[size - 1] = '\0';
}

static void fail(struct moe_vresult *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct moe_vresult *r, const char *fmt, ...)
{
	if (r->status != MOE_V_FAIL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->reason, sizeof r->reason, fmt, ap);
		va_end(ap);
	}
	moe_vresult_mismatch(r, "abi2", 0, 0, 0, 0, 0);
}

/* Every element of a (n threads) against b (1 thread), bit for bit. */
static void same_bits(struct moe_vresult *r, const char *path, const char *what, int threads, const void *a,
		      const void *b, int64_t count, bool is_float)
{
	const uint32_t *x = a, *y = b;
	for (int64_t i = 0; i < count; i++) {
		if (x[i] == y[i])
			continue;
		if (r->status != MOE_V_FAIL)
			snprintf(r->reason, sizeof r->reason, "%s: %d threads give other bits than 1 thread at %s[%lld] "
				 "(results must not depend on the thread count)", path, threads, what, (long long)i);
		char tag[24];
		snprintf(tag, sizeof tag, "%s@%dthreads", what, threads);
		double kx, ky;
		if (is_float) {
			float fx, fy;
			memcpy(&fx, &x[i], sizeof fx);
			memcpy(&fy, &y[i], sizeof fy);
			kx = fx;
			ky = fy;
		} else {
			kx = (int32_t)x[i];
			ky = (int32_t)y[i];
		}
		moe_vresult_mismatch(r, tag, i, kx, ky, fabs(kx - ky), 0);
	}
}

static void scramble_tensor(const struct moe_qtensor *q)
{
	unsigned char *d = q->data, *sc = q->scales;
	const size_t nd = d ? moe_qtensor_data_bytes(q) : 0, ns = sc ? moe_qtensor_scale_bytes(q) : 0;
	for (size_t i = 0; i < nd; i++)
		d[i] ^= 0x5a;
	for (size_t i = 0; i < ns; i++)
		sc[i] ^= 0x5a;
}

/* XOR is its own inverse: the same call scrambles and restores. */
static void scramble(const struct moe_expert_weights *w, int32_t count)
{
	for (int32_t e = 0; e < count; e++) {
		scramble_tensor(&w[e].gate);
		scramble_tensor(&w[e].up);
		scramble_tensor(&w[e].down);
	}
}

/* ---- which built-in variant ran ---- */

static const struct moe_builtin *builtin_of(const struct moe_backend *b)
{
	for (size_t i = 0; i < moe_builtin_count(); i++)
		if (moe_builtin_at(i)->table == b)
			return moe_builtin_at(i);
	return NULL;
}

void moe_vran(const struct moe_backend *b, enum moe_op op, const void *problem, struct moe_vresult *r)
{
	const struct moe_builtin *bi = builtin_of(b);
	if (!bi)
		return; /* a plugin: not knowable from here */
	if (bi->op != MOE_OP_COUNT) {
		moe_vresult_ran(r, bi->table->name);
		return;
	}
	const struct moe_builtin *pick = moe_builtin_pick(bi->isa, op, problem);
	if (pick)
		moe_vresult_ran(r, pick->table->name);
}

void moe_vran_layer(const struct moe_backend *b, const struct moe_layer_params *lp, const int32_t *ids,
		    struct moe_vresult *r)
{
	const struct moe_builtin *bi = builtin_of(b);
	moe_vran(b, MOE_OP_LAYER, lp, r);
	if (bi && bi->op == MOE_OP_COUNT)
		moe_vran(b, MOE_OP_ROUTE, &lp->route, r);
	if (!bi || bi->op != MOE_OP_COUNT)
		return;
	/* the expert variant per token count, as the whole table's layer picks it */
	const int32_t E = lp->route.num_experts, K = lp->route.top_k;
	int64_t seen[64];
	int nseen = 0;
	for (int32_t e = 0; e < E; e++) {
		int64_t n = 0;
		for (int64_t s = 0; s < lp->tokens * K; s++)
			n += ids[s] == e;
		bool dup = n == 0;
		for (int i = 0; i < nseen && !dup; i++)
			dup = seen[i] == n;
		if (dup)
			continue;
		if (nseen < 64)
			seen[nseen++] = n;
		struct moe_expert_params ep = lp->expert;
		ep.tokens = n;
		moe_vran(b, MOE_OP_EXPERT, &ep, r);
	}
	if (lp->shared != MOE_SHARED_NONE) {
		struct moe_expert_params sp = lp->expert;
		sp.tokens = lp->tokens;
		sp.inter = lp->shared_inter;
		moe_vran(b, MOE_OP_EXPERT, &sp, r);
	}
}

/* ---- route_mt ---- */

void moe_vmt_route(const struct moe_backend *b, const struct moe_vcase *c, const void *logits, const float *L32,
		   const void *bias, const float *b32, const int32_t *ids_r, const float *w_r,
		   struct moe_vscratch *s, struct moe_vresult *r)
{
	if (!b->route_mt)
		return;
	const struct moe_route_params *p = &c->route;
	const int64_t T = c->T, K = p->top_k, n = T * K + MOE_GUARD;
	int32_t *ids1 = moe_vscratch_get(s, 24, (size_t)n * sizeof(int32_t));
	float *w1 = moe_vscratch_get(s, 25, (size_t)n * sizeof(float));
	int32_t *idsn = moe_vscratch_get(s, 26, (size_t)n * sizeof(int32_t));
	float *wn = moe_vscratch_get(s, 27, (size_t)n * sizeof(float));
	void *ws = moe_vscratch_get(s, 28, moe_route_scratch_bytes(p->num_experts, p->n_group));
	if (!ids1 || !w1 || !idsn || !wn || !ws) {
		moe_vresult_nomem(r, "route_mt: out of memory for T=%lld K=%lld", (long long)T, (long long)K);
		return;
	}
	moe_vresult_ran(r, "route_mt 1/2/3 threads");
	for (int th = 1; th <= MOE_VTHREADS_MAX; th++) {
		const struct moe_threads *pool = moe_vscratch_threads(s, th);
		int32_t *ids = th == 1 ? ids1 : idsn;
		float *w = th == 1 ? w1 : wn;
		char path[32];
		snprintf(path, sizeof path, "route_mt, %d thread%s", th, th > 1 ? "s" : "");
		if (!pool) {
			moe_vresult_untrusted(r, "route_mt: no pool of %d threads: %s", th, moe_last_error());
			return;
		}
		for (int64_t i = 0; i < n; i++) {
			ids[i] = -2;
			w[i] = NAN;
		}
		moe_backend_route(b, p, T, logits, bias, ids, w, pool);
		for (int64_t i = T * K; i < n; i++) {
			if (ids[i] != -2 || !isnan(w[i])) {
				fail(r, "%s: wrote past the end of ids/weights", path);
				return;
			}
		}
		if (th == 1) {
			const bool was = r->status == MOE_V_FAIL;
			moe_route_compare(p, T, L32, b32, ids_r, w_r, ids1, w1, ws, r);
			label(r, was, path);
		} else {
			same_bits(r, "route_mt", "ids", th, idsn, ids1, T * K, false);
			same_bits(r, "route_mt", "weights", th, wn, w1, T * K, true);
		}
	}
}

/* ---- expert_mt (packed) ---- */

void moe_vmt_expert(const struct moe_backend *b, const struct moe_vcase *c, const float *x,
		    const struct moe_expert_weights *w, const double *y_ref, const double *bound,
		    struct moe_vscratch *s, struct moe_vresult *r)
{
	if (!b->expert_mt)
		return;
	struct moe_expert_params p = c->expert;
	p.tokens = c->T;
	const int64_t n = p.tokens * p.hidden;
	const struct moe_expert_weights two[2] = { { w->up, w->gate, w->down }, *w };
	const struct moe_threads *th1 = moe_vscratch_threads(s, 1);
	struct moe_packed *pk = NULL;
	if (!th1) {
		moe_vresult_untrusted(r, "expert_mt: no pool of 1 thread: %s", moe_last_error());
		return;
	}
	if (b->pack) {
		enum moe_status st = moe_backend_pack(b, &p, 2, two, th1, &pk);
		if (st == MOE_ERR_UNSUPPORTED)
			pk = NULL; /* the host runs the plain weights, as moe_backend_pack's contract says */
		else if (st != MOE_OK) {
			fail(r, "pack failed (%s): %s", moe_status_name(st), moe_last_error());
			return;
		}
	}
	const char *kind = pk ? "packed expert_mt" : "expert_mt";
	moe_vresult_ran(r, pk ? "packed expert_mt 1/2/3 threads" : "expert_mt 1/2/3 threads");
	size_t wsb = 0;
	for (int th = 1; th <= MOE_VTHREADS_MAX; th++) {
		const size_t b_th = moe_backend_workspace(b, MOE_OP_EXPERT, &p, th);
		wsb = b_th > wsb ? b_th : wsb;
	}
	float *y1 = moe_vscratch_get(s, 24, (size_t)(n + MOE_GUARD) * sizeof(float));
	float *yn = moe_vscratch_get(s, 25, (size_t)(n + MOE_GUARD) * sizeof(float));
	void *ws = moe_vscratch_get(s, 26, wsb);
	if (!y1 || !yn || !ws || wsb == SIZE_MAX) {
		moe_backend_release(b, pk);
		moe_vresult_nomem(r, "%s: out of memory (workspace %zu bytes)", kind, wsb);
		return;
	}
	if (pk)
		scramble(w, 1);
	bool past_end = false, no_pool = false;
	for (int th = 1; th <= MOE_VTHREADS_MAX && !past_end && !no_pool; th++) {
		const struct moe_threads *pool = moe_vscratch_threads(s, th);
		float *y = th == 1 ? y1 : yn;
		if (!pool) {
			moe_vresult_untrusted(r, "%s: no pool of %d threads: %s", kind, th, moe_last_error());
			no_pool = true;
			break;
		}
		for (int64_t i = 0; i < n + MOE_GUARD; i++)
			y[i] = NAN;
		moe_backend_expert(b, &p, x, pk ? &two[1] : w, pk, 1, y, ws, pool);
		for (int64_t i = n; i < n + MOE_GUARD && !past_end; i++)
			past_end = !isnan(y[i]) || moe_f32_bits(y[i]) != moe_f32_bits(NAN);
		if (past_end) {
			char path[48];
			snprintf(path, sizeof path, "%s, %d thread%s", kind, th, th > 1 ? "s" : "");
			fail(r, "%s: wrote past the end of y", path);
		} else if (th > 1) {
			same_bits(r, kind, "y", th, yn, y1, n, true);
		}
	}
	if (pk)
		scramble(w, 1);
	moe_backend_release(b, pk);
	if (past_end || no_pool)
		return;
	const bool was = r->status == MOE_V_FAIL;
	moe_vjudge_expert_y(y1, y_ref, bound, n, r);
	char path[64];
	snprintf(path, sizeof path, "%s (index 1 of 2), 1 thread", kind);
	label(r, was, path);
}

/* ---- layer_mt (packed) ---- */

void moe_vmt_layer(const struct moe_backend *b, const struct moe_vcase *c, const float *x, const void *logits,
		   const float *L32, const void *bias, const float *b32, const struct moe_layer_weights *lw,
		   const int32_t *ids_r, const float *w_r, const int32_t *ids_plain, const float *w_plain,
		   bool ref_valid, struct moe_vscratch *s, struct moe_vresult *r)
{
	if (!b->layer_mt)
		return;
	struct moe_layer_params lp;
	moe_vcase_problem(c, &lp);
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = c->route.num_experts, K = c->route.top_k;
	const bool shared = lp.shared != MOE_SHARED_NONE;
	const struct moe_threads *th1 = moe_vscratch_threads(s, 1);
	struct moe_packed *pk = NULL, *pks = NULL;
	if (!th1) {
		moe_vresult_untrusted(r, "layer_mt: no pool of 1 thread: %s", moe_last_error());
		return;
	}
	if (b->pack) {
		struct moe_expert_params sp = lp.expert;
		sp.inter = lp.shared_inter;
		enum moe_status st = moe_backend_pack(b, &lp.expert, E, lw->experts, th1, &pk);
		if (st == MOE_OK && shared)
			st = moe_backend_pack(b, &sp, 1, lw->shared, th1, &pks);
		if (st != MOE_OK) {
			moe_backend_release(b, pk);
			pk = NULL;
			if (st != MOE_ERR_UNSUPPORTED) {
				fail(r, "pack failed (%s): %s", moe_status_name(st), moe_last_error());
				return;
			}
		}
	}
	const char *kind = pk ? "packed layer_mt" : "layer_mt";
	moe_vresult_ran(r, pk ? "packed layer_mt 1/2/3 threads" : "layer_mt 1/2/3 threads");
	size_t wsb = 0;
	for (int th = 1; th <= MOE_VTHREADS_MAX; th++) {
		const size_t b_th = moe_backend_workspace(b, MOE_OP_LAYER, &lp, th);
		wsb = b_th > wsb ? b_th : wsb;
	}
	const size_t nk = (size_t)(T * K + MOE_GUARD), ny = (size_t)(T * H + MOE_GUARD);
	int32_t *ids1 = moe_vscratch_get(s, 24, nk * sizeof(int32_t)), *idsn = moe_vscratch_get(s, 25, nk * sizeof(int32_t));
	float *w1 = moe_vscratch_get(s, 26, nk * sizeof(float)), *wn = moe_vscratch_get(s, 27, nk * sizeof(float));
	float *y1 = moe_vscratch_get(s, 28, ny * sizeof(float)), *yn = moe_vscratch_get(s, 29, ny * sizeof(float));
	void *ws = moe_vscratch_get(s, 30, wsb);
	if (!ids1 || !idsn || !w1 || !wn || !y1 || !yn || !ws || wsb == SIZE_MAX) {
		moe_backend_release(b, pk);
		moe_backend_release(b, pks);
		moe_vresult_nomem(r, "%s: out of memory (workspace %zu bytes)", kind, wsb);
		return;
	}
	if (pk)
		scramble(lw->experts, E), scramble(lw->shared, shared);
	bool past_end = false, no_pool = false;
	for (int th = 1; th <= MOE_VTHREADS_MAX && !past_end && !no_pool; th++) {
		const struct moe_threads *pool = moe_vscratch_threads(s, th);
		int32_t *ids = th == 1 ? ids1 : idsn;
		float *w = th == 1 ? w1 : wn, *y = th == 1 ? y1 : yn;
		if (!pool) {
			moe_vresult_untrusted(r, "%s: no pool of %d threads: %s", kind, th, moe_last_error());
			no_pool = true;
			break;
		}
		for (size_t i = 0; i < nk; i++) {
			ids[i] = -2;
			w[i] = NAN;
		}
		for (size_t i = 0; i < ny; i++)
			y[i] = NAN;
		moe_backend_layer(b, &lp, x, logits, bias, lw, pk, pks, y, ids, w, ws, pool);
		for (int64_t i = 0; i < MOE_GUARD && !past_end; i++)
			past_end = ids[T * K + i] != -2 || !isnan(w[T * K + i]) || !isnan(y[T * H + i]);
		if (past_end) {
			char path[48];
			snprintf(path, sizeof path, "%s, %d thread%s", kind, th, th > 1 ? "s" : "");
			fail(r, "%s: wrote past the end of ids, weights or y", path);
		} else if (th > 1) {
			same_bits(r, kind, "ids", th, idsn, ids1, T * K, false);
			same_bits(r, kind, "weights", th, wn, w1, T * K, true);
			same_bits(r, kind, "y", th, yn, y1, T * H, true);
		}
	}
	if (pk)
		scramble(lw->experts, E), scramble(lw->shared, shared);
	moe_backend_release(b, pk);
	moe_backend_release(b, pks);
	if (past_end || no_pool)
		return;
	/* the plain path's f64 reference serves when this path routed the same way */
	const bool same = ref_valid && !memcmp(ids1, ids_plain, (size_t)(T * K) * sizeof(int32_t)) &&
			  !memcmp(w1, w_plain, (size_t)(T * K) * sizeof(float));
	const bool was = r->status == MOE_V_FAIL;
	moe_vjudge_layer(c, &lp, x, L32, b32, lw, ids_r, w_r, ids1, w1, y1, same, s, r);
	char path[48];
	snprintf(path, sizeof path, "%s, 1 thread", kind);
	label(r, was, path);
}
