/* Expert MLP benchmark: M tokens x[M][H] (normal(0, 1)) through one expert of the case's weight
 * format. Warm: one copy of the weights, reused by every call, so they stay in whatever cache
 * level holds them. Cold: the smallest number of copies whose total exceeds 2x the last-level
 * cache, used round-robin, so each call streams its weights from DRAM as decode does (an LRU cache
 * of size C cannot hold any of a cyclic stream of more than C). gate and up hold the same values
 * (timing does not depend on them); down is generated separately since its shape differs.
 * The workspace is large enough for every backend: the public size and the unfused baseline's.
 * Pack (prepare): where the backend has pack, every copy is packed once into one handle (count =
 * copies, index = the copy), timed, and the runs use it; pack time and bytes are reported per
 * expert (divided by the copies). A backend whose pack refuses the format runs the plain weights
 * and the row says so. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct expert_inst {
	struct moe_expert_params p;
	float *x, *y;
	void *workspace;
	struct moe_expert_weights *w;
	size_t copies, next;
	struct moe_packed *packed;
	size_t ws_bytes;
};

static void expert_teardown(void *inst)
{
	struct expert_inst *r = inst;
	if (!r)
		return;
	for (size_t i = 0; r->w && i < r->copies; i++) {
		moe_qtensor_free(&r->w[i].gate);
		moe_qtensor_free(&r->w[i].up);
		moe_qtensor_free(&r->w[i].down);
	}
	free(r->w);
	free(r->x);
	free(r->y);
	free(r->workspace);
	free(r);
}

static enum moe_status expert_setup(const struct moe_bench_case *c, size_t llc, void **inst)
{
	struct expert_inst *r = calloc(1, sizeof *r);
	if (!r)
		return moe_fail(MOE_ERR_NOMEM, "expert: no memory");
	r->p = c->u.expert;
	const struct moe_expert_params *p = &r->p;
	const double wbytes = moe_bench_expert_weight_bytes(p, p->inter);
	r->copies = c->cold ? (size_t)(2.0 * (double)llc / wbytes) + 1 : 1;
	r->w = calloc(r->copies, sizeof *r->w);
	const size_t MH = (size_t)p->tokens * (size_t)p->hidden;
	r->x = moe_bench_alloc(MH * sizeof *r->x);
	r->y = moe_bench_alloc(MH * sizeof *r->y);
	size_t ws = moe_expert_workspace_bytes(p), ws_blas = moe_bench_openblas_workspace_bytes(p);
	r->ws_bytes = ws > ws_blas ? ws : ws_blas;
	r->workspace = moe_bench_alloc(r->ws_bytes);
	enum moe_status s = MOE_OK;
	if (!r->w || !r->x || !r->y || !r->workspace)
		s = moe_fail(MOE_ERR_NOMEM, "expert: no memory for M=%lld H=%lld", (long long)p->tokens,
			     (long long)p->hidden);
	if (s == MOE_OK)
		s = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, p->inter,
					  p->hidden, 0x5eed0301u, &r->w[0].gate);
	if (s == MOE_OK)
		s = moe_bench_copy_qtensor(&r->w[0].gate, &r->w[0].up);
	if (s == MOE_OK)
		s = moe_bench_make_weight(p->weight_dtype, p->weight_scaling, p->weight_sf_layout, p->hidden,
					  p->inter, 0x5eed0302u, &r->w[0].down);
	for (size_t i = 1; s == MOE_OK && i < r->copies; i++) {
		s = moe_bench_copy_qtensor(&r->w[0].gate, &r->w[i].gate);
		if (s == MOE_OK)
			s = moe_bench_copy_qtensor(&r->w[0].up, &r->w[i].up);
		if (s == MOE_OK)
			s = moe_bench_copy_qtensor(&r->w[0].down, &r->w[i].down);
	}
	if (s == MOE_OK)
		s = moe_expert_validate(p, &r->w[0]);
	if (s != MOE_OK) {
		expert_teardown(r);
		return s;
	}
	moe_bench_fill_normal(r->x, MH, 1.0f, 0x5eed0303u);
	*inst = r;
	return MOE_OK;
}

static void expert_call(void *inst, const struct moe_backend *b, const struct moe_threads *th)
{
	struct expert_inst *r = inst;
	const size_t i = r->next;
	r->next = r->next + 1 == r->copies ? 0 : r->next + 1;
	moe_backend_expert(b, &r->p, r->x, &r->w[i], r->packed, (int32_t)i, r->y, r->workspace, th);
}

static enum moe_status expert_prepare(void *inst, const struct moe_backend *b, const struct moe_threads *th,
				      struct moe_bench_pack *out)
{
	struct expert_inst *r = inst;
	memset(out, 0, sizeof *out);
	const size_t need = moe_backend_workspace(b, MOE_OP_EXPERT, &r->p, th ? th->count : 1);
	if (need > r->ws_bytes) {
		void *ws = moe_bench_alloc(need);
		if (!ws)
			return moe_fail(MOE_ERR_NOMEM, "expert: no memory for a %zu-byte workspace", need);
		free(r->workspace);
		r->workspace = ws;
		r->ws_bytes = need;
	}
	if (!b->pack || !b->expert_mt) /* only the _mt slot runs packed weights */
		return MOE_OK;
	const double t0 = moe_bench_now_ns();
	enum moe_status s = moe_backend_pack(b, &r->p, (int32_t)r->copies, r->w, th, &r->packed);
	const double t1 = moe_bench_now_ns();
	if (s == MOE_ERR_UNSUPPORTED) {
		snprintf(out->note, sizeof out->note, "not packed (%.140s)", moe_last_error());
		return MOE_OK;
	}
	if (s != MOE_OK)
		return s;
	if (r->packed) {
		out->packed = true;
		out->ns = (t1 - t0) / (double)r->copies;
		out->bytes = (double)r->packed->bytes / (double)r->copies;
	}
	return MOE_OK;
}

static void expert_unprepare(void *inst, const struct moe_backend *b)
{
	struct expert_inst *r = inst;
	moe_backend_release(b, r->packed);
	r->packed = NULL;
	r->next = 0;
}

static void expert_cost(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out)
{
	moe_bench_cost_expert(&c->u.expert, out);
}

const struct moe_bench_op_impl moe_bench_expert_impl = { expert_setup, expert_call, expert_cost, expert_teardown,
							 expert_prepare, expert_unprepare };
