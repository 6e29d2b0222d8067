/* AVX-512 attention, the same function as attention.c (see there) with a different fp32 order:
 * q.k as 16-lane FMA partial sums over d reduced by one fixed tree, exp by a vector
 * 2^n * p(r) (n = round(x log2 e), r = x - n ln 2 in two parts, degree-6 polynomial; within 2 ulp
 * of expf over the softmax range x <= 0, underflowing to 0 below -87), the normalizer summed in
 * 16 lanes, and the weighted values accumulated per 16-wide slice of d in increasing j. Needs
 * head_dim % 16 == 0 and head_dim <= 256 (the caller falls back to the reference otherwise).
 * Tasks are (token, head) pairs writing their own output: bits independent of the thread count. */
#include <assert.h>
#include <immintrin.h>
#include <math.h>

#include "forward_impl.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

AVX512 static inline __m512 exp512(__m512 x)
{
	x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
	const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
					      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 y = _mm512_set1_ps(1.0f / 720.0f);
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 120.0f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 24.0f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f / 6.0f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(y, n);
}

struct attn_task {
	const struct moe_attn_params *p;
	int64_t pos0, ctx;
	const float *q, *k, *v;
	float *out, *scratch;
};

AVX512 static void attn_task_fn(void *arg, int64_t task, int thread)
{
	const struct attn_task *a = arg;
	const struct moe_attn_params *p = a->p;
	const int64_t t = task / p->heads;
	const int32_t h = (int32_t)(task % p->heads), hd = p->head_dim, nv = hd / 16;
	const int32_t kvh = h / (p->heads / p->kv_heads);
	const int64_t qpos = a->pos0 + t, lo = moe_attn_first_key(qpos, p->window), n = qpos - lo + 1;
	const float *q = a->q + (t * p->heads + h) * hd;
	float *s = a->scratch + (int64_t)thread * a->ctx;
	__m512 qv[16];
	for (int32_t i = 0; i < nv; i++)
		qv[i] = _mm512_loadu_ps(q + 16 * i);
	float m = -INFINITY;
	for (int64_t j = 0; j < n; j++) {
		const float *k = a->k + (lo + j) * p->kv_stride + (int64_t)kvh * hd;
		__m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
		for (int32_t i = 1; i < nv; i++)
			acc = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), acc);
		const float sj = _mm512_reduce_add_ps(acc) * p->scale;
		s[j] = sj;
		m = sj > m ? sj : m;
	}
	const __m512 mv = _mm512_set1_ps(m);
	__m512 sumv = _mm512_setzero_ps();
	for (int64_t j = 0; j < n; j += 16) {
		const __mmask16 mk = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
		const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), mv));
		_mm512_mask_storeu_ps(s + j, mk, e);
		sumv = _mm512_add_ps(sumv, _mm512_maskz_mov_ps(mk, e));
	}
	const float sum = _mm512_reduce_add_ps(sumv);
	__m512 ov[16];
	for (int32_t i = 0; i < nv; i++)
		ov[i] = _mm512_setzero_ps();
	for (int64_t j = 0; j < n; j++) {
		const float *v = a->v + (lo + j) * p->kv_stride + (int64_t)kvh * hd;
		const __m512 e = _mm512_set1_ps(s[j]);
		for (int32_t i = 0; i < nv; i++)
			ov[i] = _mm512_fmadd_ps(e, _mm512_loadu_ps(v + 16 * i), ov[i]);
	}
	float *out = a->out + (t * p->heads + h) * hd;
	const __m512 inv = _mm512_set1_ps(sum);
	for (int32_t i = 0; i < nv; i++)
		_mm512_storeu_ps(out + 16 * i, _mm512_div_ps(ov[i], inv));
}

void moe_attention__avx512(const struct moe_attn_params *p, int64_t T, int64_t pos0, const float *q,
			   const float *k, const float *v, float *out, float *scratch, const struct moe_threads *th)
{
	assert(p->heads % p->kv_heads == 0 && p->head_dim % 16 == 0 && p->head_dim <= 256);
	struct attn_task a = { p, pos0, pos0 + T, q, k, v, out, scratch };
	moe_parallel_for(th, T * p->heads, attn_task_fn, &a);
}
