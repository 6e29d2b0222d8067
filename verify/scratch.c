/* Scratch buffers reused across cases: a case asks for slot i with a size, the buffer grows when
 * needed and is otherwise reused, so a run of 1e5 cases allocates a handful of times. Each scratch
 * also holds the host thread pools (1, 2 and 3 threads) its runner gives the _mt slots, created on
 * first use: every verify worker has its own, since a pool serves one caller at a time. */
#include <stdlib.h>

#include "verify.h"

struct moe_vscratch {
	void *p[MOE_VSCRATCH_SLOTS];
	size_t size[MOE_VSCRATCH_SLOTS];
	struct moe_pool *pool[MOE_VTHREADS_MAX + 1];
};

struct moe_vscratch *moe_vscratch_new(void)
{
	return calloc(1, sizeof(struct moe_vscratch));
}

void moe_vscratch_free(struct moe_vscratch *s)
{
	if (!s)
		return;
	for (int i = 0; i < MOE_VSCRATCH_SLOTS; i++)
		free(s->p[i]);
	for (int i = 0; i <= MOE_VTHREADS_MAX; i++)
		moe_pool_destroy(s->pool[i]);
	free(s);
}

void *moe_vscratch_get(struct moe_vscratch *s, int slot, size_t bytes)
{
	if (slot < 0 || slot >= MOE_VSCRATCH_SLOTS)
		return NULL;
	bytes = (bytes + 63) & ~(size_t)63;
	if (bytes == 0)
		bytes = 64;
	if (s->size[slot] < bytes) {
		free(s->p[slot]);
		s->p[slot] = aligned_alloc(64, bytes);
		s->size[slot] = s->p[slot] ? bytes : 0;
	}
	return s->p[slot];
}

const struct moe_threads *moe_vscratch_threads(struct moe_vscratch *s, int count)
{
	if (count < 1 || count > MOE_VTHREADS_MAX)
		return NULL;
	if (!s->pool[count] && moe_pool_create(count, NULL, &s->pool[count]) != MOE_OK)
		return NULL;
	return moe_pool_threads(s->pool[count]);
}
