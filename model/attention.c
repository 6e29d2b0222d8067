/* Reference attention for one call: queries at positions pos0..pos0+T-1 against the cached keys and
 * values [first_key, qpos] (causal, and the sliding window when p->window > 0). GQA: query head h
 * reads kv head h / (heads / kv_heads). Per (token, head), in fp32 without FMA:
 *   s_j = (sum_d q[d] k_j[d], d increasing) * scale;  m = max_j s_j;  e_j = expf(s_j - m);
 *   S = sum_j e_j (j increasing);  out[d] = (sum_j e_j v_j[d], j increasing) / S.
 * Tasks are (token, head) pairs; each writes only its own output with per-thread scratch, so the
 * bits do not depend on the thread count. */
#include <assert.h>
#include <math.h>

#include "forward_impl.h"

struct attn_task {
	const struct moe_attn_params *p;
	int64_t pos0, ctx;
	const float *q, *k, *v;
	float *out, *scratch;
};

static void attn_ref_task(void *arg, int64_t task, int thread)
{
	const struct attn_task *a = arg;
	const struct moe_attn_params *p = a->p;
	const int64_t t = task / p->heads;
	const int32_t h = (int32_t)(task % p->heads), hd = p->head_dim;
	const int32_t kvh = h / (p->heads / p->kv_heads);
	const int64_t qpos = a->pos0 + t, lo = moe_attn_first_key(qpos, p->window);
	const float *q = a->q + (t * p->heads + h) * hd;
	float *s = a->scratch + (int64_t)thread * a->ctx;
	float m = -INFINITY;
	for (int64_t j = lo; j <= qpos; j++) {
		const float *k = a->k + j * p->kv_stride + (int64_t)kvh * hd;
		float acc = 0.0f;
		for (int32_t d = 0; d < hd; d++)
			acc += q[d] * k[d];
		acc *= p->scale;
		s[j - lo] = acc;
		m = acc > m ? acc : m;
	}
	float sum = 0.0f;
	for (int64_t j = lo; j <= qpos; j++) {
		s[j - lo] = expf(s[j - lo] - m);
		sum += s[j - lo];
	}
	float *out = a->out + (t * p->heads + h) * hd;
	for (int32_t d = 0; d < hd; d++) {
		float acc = 0.0f;
		for (int64_t j = lo; j <= qpos; j++)
			acc += s[j - lo] * a->v[j * p->kv_stride + (int64_t)kvh * hd + d];
		out[d] = acc / sum;
	}
}

void moe_attention__ref(const struct moe_attn_params *p, int64_t T, int64_t pos0, const float *q,
			const float *k, const float *v, float *out, float *scratch, const struct moe_threads *th)
{
	assert(p->heads % p->kv_heads == 0);
	struct attn_task a = { p, pos0, pos0 + T, q, k, v, out, scratch };
	moe_parallel_for(th, T * p->heads, attn_ref_task, &a);
}
