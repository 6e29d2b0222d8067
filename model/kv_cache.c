/* The KV cache: per layer, fp32 keys (after RoPE) and values for `context` positions of
 * kv_heads * head_dim floats each, filled in position order by the forward pass. */
#include <stdlib.h>

#include "forward_impl.h"

enum moe_status moe_kv_cache_init(struct moe_kv_cache *c, int32_t layers, int64_t context, int64_t stride)
{
	*c = (struct moe_kv_cache){ 0 };
	if (layers < 1 || context < 1 || stride < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "kv cache: layers, context and width must be >= 1 (got %d, %lld, %lld)",
				(int)layers, (long long)context, (long long)stride);
	const size_t n = (size_t)layers * (size_t)context * (size_t)stride;
	if (n / (size_t)layers / (size_t)context != (size_t)stride || n > ((size_t)1 << 40))
		return moe_fail(MOE_ERR_INVALID_ARG, "kv cache: %d layers x %lld positions x %lld floats is too large",
				(int)layers, (long long)context, (long long)stride);
	c->k = calloc(n, sizeof(float));
	c->v = calloc(n, sizeof(float));
	if (!c->k || !c->v) {
		moe_kv_cache_free(c);
		return moe_fail(MOE_ERR_NOMEM, "kv cache: no memory for 2 x %zu MiB", n * sizeof(float) >> 20);
	}
	c->layers = layers;
	c->context = context;
	c->stride = stride;
	return MOE_OK;
}

void moe_kv_cache_free(struct moe_kv_cache *c)
{
	free(c->k);
	free(c->v);
	*c = (struct moe_kv_cache){ 0 };
}
