/* Internals of the forward pass: the dense linear op, attention, RoPE and the KV cache, each as a
 * reference (plain C, fp32, sequential sums) and, where it pays, an AVX-512 twin chosen at run time.
 * Every op splits its work over th into tasks whose results do not depend on the thread count. */
#ifndef MOE_MODEL_FORWARD_IMPL_H
#define MOE_MODEL_FORWARD_IMPL_H

#include "forward.h"

/* y[T][N] = x[T][K] @ W^T for W [N][K] of F32 or BF16; fp32 products and accumulation. */
typedef void moe_linear_fn(const struct moe_qtensor *w, int64_t T, const float *x, float *y,
			   const struct moe_threads *th);
/* Reference: each y[t][n] = sum over k in increasing order, fp32. */
moe_linear_fn moe_linear__ref;
/* AVX-512: bf16 rows widened exactly to fp32, 16 lanes of partial sums, fixed reduction tree. */
moe_linear_fn moe_linear__avx512;
bool moe_linear_avx512_available(void);

struct moe_attn_params {
	int32_t heads, kv_heads, head_dim;
	int64_t window;   /* keys visible to a query: 0 = all earlier ones, else the last `window` */
	int64_t kv_stride; /* floats between consecutive positions of the cache (kv_heads*head_dim) */
	float scale;
};

/* out[T][heads*hd] = softmax(q k^T * scale) v for queries at positions pos0..pos0+T-1 over the
 * cached keys/values [0, pos0+T) (k, v: [ctx][kv_stride]); scratch: th->count * (pos0+T) floats.
 * Reference: scores as sequential fp32 dots, fp32 max/exp/sum, sequential weighted sums. */
typedef void moe_attention_fn(const struct moe_attn_params *p, int64_t T, int64_t pos0, const float *q,
			      const float *k, const float *v, float *out, float *scratch,
			      const struct moe_threads *th);
moe_attention_fn moe_attention__ref;
moe_attention_fn moe_attention__avx512; /* head_dim % 16 == 0 */

/* First visible key of a query at position qpos (see moe_attn_params.window). */
static inline int64_t moe_attn_first_key(int64_t qpos, int64_t window)
{
	if (window <= 0 || qpos - window + 1 <= 0)
		return 0;
	return qpos - window + 1;
}

/* Interleaved RoPE tables: cos/sin[pos][hd/2] for angle pos * theta^(-2i/hd), computed in double
 * and rounded to fp32 once. */
struct moe_rope {
	int64_t positions;
	int32_t half;
	float *cos, *sin;
};
enum moe_status moe_rope_init(struct moe_rope *r, int64_t positions, int32_t head_dim, double theta);
void moe_rope_free(struct moe_rope *r);
/* x[T][n][hd] rotated in place at positions pos0..: (x0, x1) -> (x0 c - x1 s, x0 s + x1 c), fp32. */
void moe_rope_apply(const struct moe_rope *r, int64_t T, int64_t pos0, int32_t n, int32_t head_dim, float *x);

/* The per-layer fp32 KV cache. */
struct moe_kv_cache {
	int32_t layers;
	int64_t context, stride; /* stride = kv_heads * head_dim */
	float *k, *v;            /* [layers][context][stride] each */
};
enum moe_status moe_kv_cache_init(struct moe_kv_cache *c, int32_t layers, int64_t context, int64_t stride);
void moe_kv_cache_free(struct moe_kv_cache *c);
static inline float *moe_kv_k(const struct moe_kv_cache *c, int32_t l)
{
	return c->k + (size_t)l * (size_t)c->context * (size_t)c->stride;
}
static inline float *moe_kv_v(const struct moe_kv_cache *c, int32_t l)
{
	return c->v + (size_t)l * (size_t)c->context * (size_t)c->stride;
}

#endif
