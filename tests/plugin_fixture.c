/* Test plugins for test_plugin: one source, built as several MODULE libraries that differ only in
 * MOE_FIXTURE, each breaking the plugin contract in one way the loader must notice:
 *   1 good: a valid table whose route slot writes ids 0..K-1 with weights 1/K (a recognisable
 *     output, not a router) and whose supports() accepts only fp32 logits;
 *   2 table claims ABI 2;  3 entry exported under the wrong name;  4 entry returns NULL;
 *   5 table claims a different struct size;  6 table without a name;
 *   7 calls moe_fail, which the host does not export: unresolved at load time (RTLD_NOW). */
#include "moe/backend.h"

#ifndef MOE_FIXTURE
#error "build with -DMOE_FIXTURE=<1..7>"
#endif

static void fixture_route(const struct moe_route_params *p, int64_t T, const void *logits,
			  const void *bias, int32_t *ids, float *weights)
{
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
	return op == MOE_OP_ROUTE && p->logits_dtype == MOE_DTYPE_F32;
}

static const struct moe_backend fixture_backend = {
	.abi_version = MOE_FIXTURE == 2 ? 2u : MOE_BACKEND_ABI_VERSION,
	.struct_size = MOE_FIXTURE == 5 ? (uint32_t)sizeof(struct moe_backend) - 8u
					: (uint32_t)sizeof(struct moe_backend),
	.name = MOE_FIXTURE == 6 ? "" : "fixture",
	.description = "test_plugin fixture",
	.route = fixture_route,
	.supports = fixture_supports,
};

#if MOE_FIXTURE == 3
__attribute__((visibility("default"))) const struct moe_backend *moe_backend_entry_v0(uint32_t host_abi);
const struct moe_backend *moe_backend_entry_v0(uint32_t host_abi)
#else
__attribute__((visibility("default"))) moe_backend_entry_fn moe_backend_entry_v1;
const struct moe_backend *moe_backend_entry_v1(uint32_t host_abi)
#endif
{
	if (MOE_FIXTURE == 4)
		return NULL;
	return &fixture_backend;
}
