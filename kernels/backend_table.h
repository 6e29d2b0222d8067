/* Template of a whole per-ISA table. For every op and problem the table runs the best kernel of
 * the per-op list files needing at most MOE_TABLE_ISA, and the reference where none accepts the
 * problem (moe_builtin_pick): the table below it with its own kernels written over, decided per
 * problem rather than per op, so it is as complete as the reference.
 *
 * ABI 2: pack / release, workspace, expert_mt and layer_mt are the ISA's layer file's
 * (kernels/layer/layer_<isa>.c, MOE_TABLE_ABI2(name) pastes the suffix); route_mt cuts the tokens
 * into chunks of a fixed size (MOE_ROUTE_CHUNK, not a function of the thread count), each routed
 * by the version-1 slot, so every token goes through the same router call whatever th->count: the
 * router is per token, and the results are bitwise those of any other thread count. No slot starts
 * a thread: the version-1 layer runs on the calling thread.
 *
 * Included once per ISA (backend_<isa>.c) after defining MOE_TABLE_ISA, MOE_TABLE_SYMBOL,
 * MOE_TABLE_NAME, MOE_TABLE_DESCRIPTION and MOE_TABLE_ABI2. The forwarding functions are static,
 * one set per including file. */
#include "kernels.h"

static void route(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		  int32_t *ids, float *weights)
{
	moe_builtin_pick_sized(MOE_TABLE_ISA, MOE_OP_ROUTE, p, T)->table->route(p, T, logits, bias, ids, weights);
}

static void norm(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_NORM, p)->table->norm(p, x, w, y);
}

static void quantize(const float *x, struct moe_qtensor *q)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_QUANTIZE, q)->table->quantize(x, q);
}

static void dequantize(const struct moe_qtensor *q, float *x)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_DEQUANTIZE, q)->table->dequantize(q, x);
}

static void expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		   float *y, void *workspace)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_EXPERT, p)->table->expert(p, x, w, y, workspace);
}

static void layer(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
		  const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	moe_builtin_pick(MOE_TABLE_ISA, MOE_OP_LAYER, p)->table->layer(p, x, logits, bias, w, y, ids, weights,
									 workspace);
}

/* tokens per route_mt task */
#define MOE_ROUTE_CHUNK 256

struct route_chunks {
	const struct moe_route_params *p;
	int64_t T;
	const char *logits;
	const void *bias;
	int32_t *ids;
	float *weights;
};

static void route_chunk(void *arg, int64_t i, int thread)
{
	const struct route_chunks *c = arg;
	(void)thread;
	const int64_t t0 = i * MOE_ROUTE_CHUNK, n = c->T - t0 < MOE_ROUTE_CHUNK ? c->T - t0 : MOE_ROUTE_CHUNK;
	const size_t row = (size_t)c->p->num_experts * (c->p->logits_dtype == MOE_DTYPE_BF16 ? 2 : 4);
	const int64_t K = c->p->top_k;
	route(c->p, n, c->logits + (size_t)t0 * row, c->bias, c->ids + t0 * K, c->weights + t0 * K);
}

static void route_mt(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias, int32_t *ids,
		     float *weights, const struct moe_threads *th)
{
	if (T <= MOE_ROUTE_CHUNK) {
		route(p, T, logits, bias, ids, weights);
		return;
	}
	struct route_chunks c = { p, T, logits, bias, ids, weights };
	moe_parallel_for(th, (T + MOE_ROUTE_CHUNK - 1) / MOE_ROUTE_CHUNK, route_chunk, &c);
}

extern const struct moe_backend MOE_TABLE_SYMBOL;

static enum moe_status pack(const struct moe_expert_params *p, int32_t count, const struct moe_expert_weights *w,
			    const struct moe_threads *th, struct moe_packed **out)
{
	return MOE_TABLE_ABI2(moe_pack)(&MOE_TABLE_SYMBOL, p, count, w, th, out);
}

const struct moe_backend MOE_TABLE_SYMBOL = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = MOE_TABLE_NAME,
	.description = MOE_TABLE_DESCRIPTION,
	.route = route,
	.norm = norm,
	.quantize = quantize,
	.dequantize = dequantize,
	.expert = expert,
	.layer = layer,
	.supports = NULL,
	.pack = pack,
	.release = MOE_TABLE_ABI2(moe_release),
	.route_mt = route_mt,
	.expert_mt = MOE_TABLE_ABI2(moe_expert_mt),
	.layer_mt = MOE_TABLE_ABI2(moe_layer_mt),
	.workspace = MOE_TABLE_ABI2(moe_workspace),
};
