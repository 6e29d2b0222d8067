/* An example moebench backend plugin (ABI 2), written as plainly as possible so it reads as a
 * template: a router (the vLLM-profile Sigmoid and SigmoidRenorm methods without groups or bias), an
 * fp32 expert MLP and a MoE layer built from the two, with a pack step and _mt slots that run on
 * the host's threads.
 *
 * Router. *
 * Per token, in fp32: s[e] = 1 / (1 + expf(-x[e])) with x the logit converted exactly from fp32 or
 * bf16, and a score that is not finite (a NaN logit) replaced by 0 before selection, as vLLM's
 * newest kernels do (sigmoid(+-inf) = 1 or 0 are finite and stay); pick the K largest s, on equal scores the lower expert index first; weight =
 * s, or with renormalization s / S where S is the sum of the K selected scores added left to right
 * in slot order (S > 0 ? S : 1, as vLLM guards it). The routed scaling factor does not apply to
 * these methods. -ffp-contract=off keeps every operation rounded as written, so the weights equal
 * the reference's bit for bit. Everything else, supports() declines: moebench reports those
 * problems as SKIP instead of calling this kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <moe/backend.h>

static float score(const struct moe_route_params *p, const void *logits, int64_t i)
{
	float x = p->logits_dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)logits)[i])
						    : ((const float *)logits)[i];
	float s = 1.0f / (1.0f + expf(-x));
	return isfinite(s) ? s : 0.0f;
}

static void example_route(const struct moe_route_params *p, int64_t T, const void *logits,
			  const void *bias, int32_t *ids, float *weights)
{
	(void)bias; /* these methods take none: supports() declines a bias */
	const int32_t E = p->num_experts, K = p->top_k;
	const bool renorm = p->method == MOE_ROUTE_SIGMOID_RENORM && p->renormalize;

	for (int64_t t = 0; t < T; t++) {
		int32_t *id = ids + t * K;
		float *w = weights + t * K;
		/* Selection sort over E: K passes, each taking the best expert not taken yet. The strict
		 * '>' while scanning upwards keeps the lower index on equal scores. */
		for (int32_t k = 0; k < K; k++) {
			int32_t best = -1;
			float best_s = 0.0f;
			for (int32_t e = 0; e < E; e++) {
				bool taken = false;
				for (int32_t j = 0; j < k; j++)
					taken = taken || id[j] == e;
				if (taken)
					continue;
				float s = score(p, logits, t * E + e);
				if (best < 0 || s > best_s) {
					best = e;
					best_s = s;
				}
			}
			id[k] = best;
			w[k] = best_s;
		}
		if (renorm) {
			float S = 0.0f;
			for (int32_t k = 0; k < K; k++)
				S += w[k];
			S = S > 0.0f ? S : 1.0f;
			for (int32_t k = 0; k < K; k++)
				w[k] = w[k] / S;
		}
	}
}

/* ---- the expert: y = down(silu(gate x) * up x), fp32 weights and activations ----
 *
 * Each output is one dot product accumulated left to right in fp32 (silu(g) = g / (1 + expf(-g))),
 * so a result does not depend on how the work is split: the _mt versions below split it into
 * fixed tiles of rows, run by the host's parallel_for, and return the same bits for any number of
 * threads (the ABI's determinism rule), which moebench verify checks at 1, 2 and 3 threads. */

/* Where an expert's weights are: plain tensors, or one packed buffer. */
struct expert_view {
	const float *gate, *up; /* row i at gate + i * gu_stride, up + i * gu_stride */
	int64_t gu_stride;
	const float *down; /* [H][I] */
};

static float dot(const float *a, const float *b, int64_t n)
{
	float acc = 0.0f;
	for (int64_t k = 0; k < n; k++)
		acc = acc + a[k] * b[k];
	return acc;
}

static float silu(float g)
{
	return g / (1.0f + expf(-g));
}

#define TILE 16 /* rows per task: fixed, so the split never depends on the thread count */

struct expert_job {
	struct expert_view v;
	int64_t M, H, I;
	const float *x;
	float *a; /* [M][I] intermediate, in the workspace */
	float *y;
};

/* Task: intermediate features [16 * task, 16 * task + 16) of every token. */
static void expert_gate_up_task(void *arg, int64_t task, int thread)
{
	(void)thread;
	const struct expert_job *j = arg;
	for (int64_t i = task * TILE; i < j->I && i < (task + 1) * TILE; i++)
		for (int64_t m = 0; m < j->M; m++) {
			const float g = dot(j->x + m * j->H, j->v.gate + i * j->v.gu_stride, j->H);
			const float u = dot(j->x + m * j->H, j->v.up + i * j->v.gu_stride, j->H);
			j->a[m * j->I + i] = silu(g) * u;
		}
}

/* Task: outputs [16 * task, 16 * task + 16) of every token. */
static void expert_down_task(void *arg, int64_t task, int thread)
{
	(void)thread;
	const struct expert_job *j = arg;
	for (int64_t h = task * TILE; h < j->H && h < (task + 1) * TILE; h++)
		for (int64_t m = 0; m < j->M; m++)
			j->y[m * j->H + h] = dot(j->a + m * j->I, j->v.down + h * j->I, j->I);
}

static void run_expert(const struct moe_expert_params *p, const struct expert_view *v, const float *x, float *y,
		       void *workspace, const struct moe_threads *th)
{
	struct expert_job j = { *v, p->tokens, p->hidden, p->inter, x, workspace, y };
	if (j.M == 0)
		return;
	/* two parallel jobs: the second reads every intermediate the first wrote */
	th->parallel_for(th, (j.I + TILE - 1) / TILE, expert_gate_up_task, &j);
	th->parallel_for(th, (j.H + TILE - 1) / TILE, expert_down_task, &j);
}

static struct expert_view plain_view(const struct moe_expert_weights *w)
{
	return (struct expert_view){ w->gate.data, w->up.data, w->gate.cols, w->down.data };
}

/* ---- pack: every expert in one buffer, gate and up rows interleaved ----
 *
 * Expert e occupies [I][2H] (row i: gate row i, then up row i, so one pass over the buffer reads
 * both) followed by down [H][I]. A GPU backend would allocate device memory here and upload the
 * same layout once; the handle keeps whatever the kernels need, never a pointer to the caller's
 * weights, which may be freed as soon as pack returns. */

static const struct moe_backend example_backend;

static size_t expert_floats(const struct moe_expert_params *p)
{
	return (size_t)(3 * p->hidden * p->inter);
}

static enum moe_status example_pack(const struct moe_expert_params *p, int32_t count,
				    const struct moe_expert_weights *w, const struct moe_threads *th,
				    struct moe_packed **out)
{
	(void)th; /* a copy this small needs no threads */
	if (p->weight_dtype != MOE_DTYPE_F32)
		return MOE_ERR_UNSUPPORTED; /* the host then passes plain weights */
	struct moe_packed *pk = malloc(sizeof *pk);
	float *buf = malloc(expert_floats(p) * (size_t)(count > 0 ? count : 1) * sizeof(float));
	if (!pk || !buf) {
		free(pk);
		free(buf);
		return MOE_ERR_NOMEM;
	}
	const int64_t H = p->hidden, I = p->inter;
	for (int32_t e = 0; e < count; e++) {
		float *dst = buf + (size_t)e * expert_floats(p);
		const float *gate = w[e].gate.data, *up = w[e].up.data;
		for (int64_t i = 0; i < I; i++) {
			memcpy(dst + i * 2 * H, gate + i * H, (size_t)H * sizeof(float));
			memcpy(dst + i * 2 * H + H, up + i * H, (size_t)H * sizeof(float));
		}
		memcpy(dst + 2 * H * I, w[e].down.data, (size_t)(H * I) * sizeof(float));
	}
	*pk = (struct moe_packed){ .owner = &example_backend, .count = count, .format = *p,
				   .bytes = expert_floats(p) * (size_t)count * sizeof(float), .impl = buf };
	*out = pk;
	return MOE_OK;
}

static void example_release(struct moe_packed *packed)
{
	free(packed->impl);
	free(packed);
}

static struct expert_view packed_view(const struct moe_packed *packed, int32_t index)
{
	const struct moe_expert_params *p = &packed->format;
	const float *e = (const float *)packed->impl + (size_t)index * expert_floats(p);
	return (struct expert_view){ e, e + p->hidden, 2 * p->hidden, e + 2 * p->hidden * p->inter };
}

/* The calling thread alone, for the version-1 slots (which get no threads). */
static void serial_for(const struct moe_threads *th, int64_t n, moe_task_fn *fn, void *arg)
{
	(void)th;
	for (int64_t i = 0; i < n; i++)
		fn(arg, i, 0);
}

static const struct moe_threads serial = { 1, serial_for, NULL };

/* Version-1 slot: plain weights, one thread; the workspace holds the [M][I] intermediate. */
static void example_expert(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			   float *y, void *workspace)
{
	const struct expert_view v = plain_view(w);
	run_expert(p, &v, x, y, workspace, &serial);
}

static void example_expert_mt(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			      const struct moe_packed *packed, int32_t index, float *y, void *workspace,
			      const struct moe_threads *th)
{
	const struct expert_view v = packed ? packed_view(packed, index) : plain_view(w);
	run_expert(p, &v, x, y, workspace, th);
}

/* ---- the layer: route, then per token the weighted sum of its K experts ----
 *
 * One task per token (a fixed split): route the token, then for k = 0..K-1 in slot order run
 * expert ids[k] on it and add weights[k] * out into the sum, as the reference layer combines.
 * Each thread has its own scratch (the intermediate and one expert output row), picked by
 * `thread`, which never changes a result. */

struct layer_job {
	const struct moe_layer_params *p;
	const float *x;
	const void *logits;
	const struct moe_layer_weights *w;
	const struct moe_packed *packed;
	float *y, *weights, *scratch;
	int32_t *ids;
};

static size_t layer_scratch_floats(const struct moe_layer_params *p)
{
	return ((size_t)(p->expert.inter + p->expert.hidden) + 15) & ~(size_t)15; /* 64-byte multiple */
}

static void layer_token_task(void *arg, int64_t t, int thread)
{
	const struct layer_job *j = arg;
	const struct moe_layer_params *p = j->p;
	const int64_t H = p->expert.hidden, E = p->route.num_experts;
	const int32_t K = p->route.top_k;
	float *a = j->scratch + (size_t)thread * layer_scratch_floats(p), *o = a + p->expert.inter;
	struct moe_route_params rp = p->route;
	rp.routed_scaling_factor = 1.0f; /* not applied by these methods; at OUTPUT applied below */
	const size_t lsize = p->route.logits_dtype == MOE_DTYPE_BF16 ? sizeof(moe_bf16) : sizeof(float);
	example_route(&rp, 1, (const char *)j->logits + (size_t)(t * E) * lsize, NULL, j->ids + t * K,
		      j->weights + t * K);
	struct moe_expert_params ep = p->expert;
	ep.tokens = 1;
	float *yt = j->y + t * H;
	for (int64_t h = 0; h < H; h++)
		yt[h] = 0.0f;
	for (int32_t k = 0; k < K; k++) {
		const int32_t e = j->ids[t * K + k];
		const struct expert_view v = j->packed ? packed_view(j->packed, e) : plain_view(&j->w->experts[e]);
		struct expert_job ej = { v, 1, H, ep.inter, j->x + t * H, a, o };
		for (int64_t task = 0; task < (ep.inter + TILE - 1) / TILE; task++)
			expert_gate_up_task(&ej, task, thread);
		for (int64_t task = 0; task < (H + TILE - 1) / TILE; task++)
			expert_down_task(&ej, task, thread);
		for (int64_t h = 0; h < H; h++)
			yt[h] = yt[h] + j->weights[t * K + k] * o[h];
	}
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		for (int64_t h = 0; h < H; h++)
			yt[h] = yt[h] * p->route.routed_scaling_factor;
}

static void run_layer(const struct moe_layer_params *p, const float *x, const void *logits,
		      const struct moe_layer_weights *w, const struct moe_packed *packed, float *y, int32_t *ids,
		      float *weights, void *workspace, const struct moe_threads *th)
{
	struct layer_job j = { p, x, logits, w, packed, y, weights, workspace, ids };
	th->parallel_for(th, p->tokens, layer_token_task, &j);
}

/* Version-1 slot: plain weights, one thread (the reference's layer workspace is larger than the
 * one scratch row this needs). */
static void example_layer(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
			  const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *workspace)
{
	(void)bias;
	run_layer(p, x, logits, w, NULL, y, ids, weights, workspace, &serial);
}

static void example_layer_mt(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
			     const struct moe_layer_weights *w, const struct moe_packed *packed,
			     const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights,
			     void *workspace, const struct moe_threads *th)
{
	(void)bias;
	(void)packed_shared; /* supports() declines a shared expert */
	run_layer(p, x, logits, w, packed, y, ids, weights, workspace, th);
}

/* Workspace per call: the expert's [M][I] intermediate (shared by its tasks), the layer's scratch
 * rows (one per thread). */
static size_t example_workspace(enum moe_op op, const void *problem, int threads)
{
	if (op == MOE_OP_EXPERT) {
		const struct moe_expert_params *p = problem;
		return (size_t)(p->tokens * p->inter) * sizeof(float);
	}
	if (op == MOE_OP_LAYER)
		return (size_t)threads * layer_scratch_floats(problem) * sizeof(float);
	return 0;
}

/* ---- what this backend computes exactly; moebench never calls it with anything else ---- */

static bool route_supported(const struct moe_route_params *p)
{
	return (p->method == MOE_ROUTE_SIGMOID || p->method == MOE_ROUTE_SIGMOID_RENORM) &&
	       p->profile == MOE_PROFILE_VLLM && p->n_group <= 1 && p->bias_dtype == MOE_DTYPE_NONE &&
	       (p->logits_dtype == MOE_DTYPE_F32 || p->logits_dtype == MOE_DTYPE_BF16);
}

static bool expert_supported(const struct moe_expert_params *p)
{
	return p->weight_dtype == MOE_DTYPE_F32 && p->weight_scaling == MOE_SCALING_NONE &&
	       p->act_quant == MOE_ACT_NONE;
}

static bool example_supports(enum moe_op op, const void *problem)
{
	if (!problem) /* "any problem of this op?" */
		return op == MOE_OP_ROUTE || op == MOE_OP_EXPERT || op == MOE_OP_LAYER;
	switch (op) {
	case MOE_OP_ROUTE: return route_supported(problem);
	case MOE_OP_EXPERT: return expert_supported(problem);
	case MOE_OP_LAYER: {
		const struct moe_layer_params *p = problem;
		return route_supported(&p->route) && expert_supported(&p->expert) && p->shared == MOE_SHARED_NONE;
	}
	default: return false;
	}
}

static const struct moe_backend example_backend = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = "example",
	.description = "example plugin: vLLM-profile Sigmoid/SigmoidRenorm router, fp32 expert and layer, packed",
	.route = example_route,
	/* NULL: not provided. moebench reports these ops as SKIP "not provided". */
	.norm = NULL,
	.quantize = NULL,
	.dequantize = NULL,
	.expert = example_expert,
	.layer = example_layer,
	.supports = example_supports,
	/* ABI 2: weights packed once, the expert and the layer on the host's threads. */
	.pack = example_pack,
	.release = example_release,
	.route_mt = NULL, /* the host runs route on one thread */
	.expert_mt = example_expert_mt,
	.layer_mt = example_layer_mt,
	.workspace = example_workspace,
};

/* The one exported symbol. The host passes its ABI version; a plugin that cannot serve it
 * returns NULL and the host refuses it with a clear message. */
__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v2;

const struct moe_backend *moe_backend_entry_v2(uint32_t host_abi_version)
{
	if (host_abi_version != MOE_BACKEND_ABI_VERSION)
		return NULL;
	return &example_backend;
}
