/* Test plugins for test_plugin: one source, built as several MODULE libraries that differ only in
 * MOE_FIXTURE, a good table of each ABI version and one per broken contract the loader must notice:
 *   1 good ABI 1: exports moe_backend_entry_v1 only, and its table is laid out as a version-1
 *     plugin built against the old header had it (struct ends after `supports`, struct_size
 *     MOE_BACKEND_V1_SIZE): a route slot writing ids 0..K-1 with weights 1/K (a recognisable
 *     output, not a router) and a supports() that accepts only fp32 logits;
 *   2 good ABI 2: exports both entries (the loader must take v2), the same route plus route_mt
 *     (ids K-1..0, so a test sees which slot ran) and pack/release (a handle of `count` experts);
 *   3 entry exported under a wrong name;  4 v2 entry returns NULL;
 *   5 v2 table claims a struct size 8 bytes short;  6 table without a name;
 *   7 calls moe_fail, which the host does not export: unresolved at load time (RTLD_NOW);
 *   8 v1 entry whose table claims the version-2 struct size;
 *   9 v2 entry returning a table that says ABI 1;  10 v2 table with pack and no release;
 *   11 v1 entry returns NULL. */
#include <stdlib.h>

#include "moe/backend.h"

#ifndef MOE_FIXTURE
#error "build with -DMOE_FIXTURE=<1..11>"
#endif

#define FIXTURE_V1 (MOE_FIXTURE == 1 || MOE_FIXTURE == 8 || MOE_FIXTURE == 11)

static void fixture_route(const struct moe_route_params *p, int64_t T, const void *logits,
			  const void *bias, int32_t *ids, float *weights)
{
	(void)logits;
	(void)bias;
	for (int64_t t = 0; t < T; t++) {
		for (int32_t k = 0; k < p->top_k; k++) {
			ids[t * p->top_k + k] = k;
			weights[t * p->top_k + k] = 1.0f / (float)p->top_k;
		}
	}
}

static bool fixture_supports(enum moe_op op, const void *problem)
{
	if (MOE_FIXTURE == 7 && !problem)
		return moe_fail(MOE_ERR_INVALID_ARG, "fixture: no problem") == MOE_OK;
	const struct moe_route_params *p = problem;
	return op == MOE_OP_ROUTE && (!p || p->logits_dtype == MOE_DTYPE_F32);
}

#if FIXTURE_V1
/* struct moe_backend as ABI 1 declared it: what an old plugin's table is, byte for byte. */
struct fixture_backend_v1 {
	uint32_t abi_version, struct_size;
	const char *name, *description;
	moe_route_fn *route;
	moe_norm_fn *norm;
	moe_quantize_fn *quantize;
	moe_dequantize_fn *dequantize;
	moe_expert_fn *expert;
	moe_layer_fn *layer;
	moe_supports_fn *supports;
};
_Static_assert(sizeof(struct fixture_backend_v1) == MOE_BACKEND_V1_SIZE, "ABI 1 layout");

static const struct fixture_backend_v1 fixture_backend = {
	.abi_version = 1u,
	.struct_size = MOE_FIXTURE == 8 ? (uint32_t)sizeof(struct moe_backend) : (uint32_t)MOE_BACKEND_V1_SIZE,
	.name = "fixture-v1",
	.description = "test_plugin fixture, ABI 1",
	.route = fixture_route,
	.supports = fixture_supports,
};

__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v1;
const struct moe_backend *moe_backend_entry_v1(uint32_t host_abi)
{
	if (MOE_FIXTURE == 11 || host_abi != 1)
		return NULL;
	/* the host reads only the version-1 prefix of this pointer */
	return (const struct moe_backend *)(const void *)&fixture_backend;
}
#else
static void fixture_route_mt(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			     int32_t *ids, float *weights, const struct moe_threads *th)
{
	(void)th;
	fixture_route(p, T, logits, bias, ids, weights);
	for (int64_t t = 0; t < T; t++)
		for (int32_t k = 0; k < p->top_k; k++)
			ids[t * p->top_k + k] = p->top_k - 1 - k;
}

static const struct moe_backend fixture_backend;

static enum moe_status fixture_pack(const struct moe_expert_params *p, int32_t count,
				    const struct moe_expert_weights *w, const struct moe_threads *th,
				    struct moe_packed **out)
{
	(void)w;
	(void)th;
	struct moe_packed *pk = calloc(1, sizeof *pk);
	if (!pk)
		return MOE_ERR_NOMEM;
	*pk = (struct moe_packed){ .owner = &fixture_backend, .count = count, .format = *p, .bytes = sizeof *pk };
	*out = pk;
	return MOE_OK;
}

static void fixture_release(struct moe_packed *packed)
{
	free(packed);
}

static const struct moe_backend fixture_backend = {
	.abi_version = MOE_FIXTURE == 9 ? 1u : MOE_BACKEND_ABI_VERSION,
	.struct_size = MOE_FIXTURE == 5 ? (uint32_t)sizeof(struct moe_backend) - 8u
					: (uint32_t)sizeof(struct moe_backend),
	.name = MOE_FIXTURE == 6 ? "" : "fixture",
	.description = "test_plugin fixture",
	.route = fixture_route,
	.supports = fixture_supports,
	.pack = MOE_FIXTURE == 2 || MOE_FIXTURE == 10 ? fixture_pack : NULL,
	.release = MOE_FIXTURE == 2 ? fixture_release : NULL,
	.route_mt = MOE_FIXTURE == 2 ? fixture_route_mt : NULL,
};

#if MOE_FIXTURE == 3
__attribute__((visibility("default"))) const struct moe_backend *moe_backend_entry_v0(uint32_t host_abi);
const struct moe_backend *moe_backend_entry_v0(uint32_t host_abi)
#else
__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v2;
const struct moe_backend *moe_backend_entry_v2(uint32_t host_abi)
#endif
{
	if (MOE_FIXTURE == 4 || host_abi != MOE_BACKEND_ABI_VERSION)
		return NULL;
	return &fixture_backend;
}

#if MOE_FIXTURE == 2
/* A plugin may keep its version-1 entry for older hosts; this host must not take it. */
static const struct moe_backend fixture_backend_old = {
	.abi_version = 1u,
	.struct_size = (uint32_t)MOE_BACKEND_V1_SIZE,
	.name = "fixture-old-entry",
	.route = fixture_route,
};
__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v1;
const struct moe_backend *moe_backend_entry_v1(uint32_t host_abi)
{
	return host_abi == 1 ? &fixture_backend_old : NULL;
}
#endif
#endif
