/* The host side of the backend ABI 2 (moe/backend.h): pack through a table with its checks, and
 * the calls that take a table's _mt slot when it has one and its version-1 slot otherwise. Here
 * rather than in core/ because the checks and the default workspace sizes are the reference's. */
#include "moe/backend.h"

enum moe_status moe_backend_pack(const struct moe_backend *b, const struct moe_expert_params *p, int32_t count,
				 const struct moe_expert_weights *w, const struct moe_threads *th,
				 struct moe_packed **out)
{
	if (!out)
		return moe_fail(MOE_ERR_INVALID_ARG, "pack: no output pointer given");
	*out = NULL;
	if (!b || !p || !w || count < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "pack: %s", !b ? "no backend" : !p ? "no params" :
			       !w ? "no weights" : "negative expert count");
	if (!b->pack)
		return MOE_OK;
	if (!b->release)
		return moe_fail(MOE_ERR_ABI, "backend %s: has pack but no release", b->name);
	struct moe_expert_params q = *p;
	q.tokens = 0;
	for (int32_t e = 0; e < count; e++) {
		enum moe_status s = moe_expert_validate(&q, &w[e]);
		if (s != MOE_OK)
			return moe_fail(s, "pack: expert %d of %d: %s", (int)e, (int)count, moe_last_error());
	}
	struct moe_packed *pk = NULL;
	enum moe_status s = b->pack(&q, count, w, th ? th : moe_threads_serial(), &pk);
	if (s != MOE_OK) {
		if (pk)
			b->release(pk);
		return s;
	}
	if (!pk)
		return moe_fail(MOE_ERR_INTERNAL, "backend %s: pack returned OK and no handle", b->name);
	if (pk->owner != b || pk->count != count) {
		b->release(pk);
		return moe_fail(MOE_ERR_INTERNAL, "backend %s: pack returned a handle of %s (owner or count "
				"%d, expected %d experts)", b->name, pk->owner == b ? "the wrong size" : "another backend",
				(int)pk->count, (int)count);
	}
	*out = pk;
	return MOE_OK;
}

void moe_backend_release(const struct moe_backend *b, struct moe_packed *packed)
{
	if (b && packed && b->release)
		b->release(packed);
}

size_t moe_backend_workspace(const struct moe_backend *b, enum moe_op op, const void *problem, int threads)
{
	if (threads < 1)
		threads = 1;
	if (b && b->workspace)
		return b->workspace(op, problem, threads);
	switch (op) {
	case MOE_OP_EXPERT: return moe_expert_workspace_bytes(problem);
	case MOE_OP_LAYER: return moe_layer_workspace_bytes(problem);
	default: return 0;
	}
}

void moe_backend_route(const struct moe_backend *b, const struct moe_route_params *p, int64_t T,
		       const void *logits, const void *bias, int32_t *ids, float *weights,
		       const struct moe_threads *th)
{
	if (b->route_mt)
		b->route_mt(p, T, logits, bias, ids, weights, th ? th : moe_threads_serial());
	else
		b->route(p, T, logits, bias, ids, weights);
}

void moe_backend_expert(const struct moe_backend *b, const struct moe_expert_params *p, const float *x,
			const struct moe_expert_weights *w, const struct moe_packed *packed, int32_t index,
			float *y, void *workspace, const struct moe_threads *th)
{
	if (b->expert_mt)
		b->expert_mt(p, x, w, packed, index, y, workspace, th ? th : moe_threads_serial());
	else
		b->expert(p, x, w, y, workspace);
}

void moe_backend_layer(const struct moe_backend *b, const struct moe_layer_params *p, const float *x,
		       const void *logits, const void *bias, const struct moe_layer_weights *w,
		       const struct moe_packed *packed, const struct moe_packed *packed_shared, float *y,
		       int32_t *ids, float *weights, void *workspace, const struct moe_threads *th)
{
	if (b->layer_mt)
		b->layer_mt(p, x, logits, bias, w, packed, packed_shared, y, ids, weights, workspace,
			    th ? th : moe_threads_serial());
	else
		b->layer(p, x, logits, bias, w, y, ids, weights, workspace);
}
