/* Interleaved (GPT-J) rotary position embedding: the pair (x[2i], x[2i+1]) of a head of dimension d
 * at position p turns by the angle p * theta^(-2i/d). The angle, its cosine and sine are computed in
 * double and rounded to fp32 once per (position, pair); the rotation itself is fp32:
 * (x0 c - x1 s, x0 s + x1 c), each product rounded, no FMA. Both forward paths share this code. */
#include <math.h>
#include <stdlib.h>

#include "forward_impl.h"

enum moe_status moe_rope_init(struct moe_rope *r, int64_t positions, int32_t head_dim, double theta)
{
	*r = (struct moe_rope){ 0 };
	if (positions < 1 || head_dim < 2 || head_dim % 2 || !(theta > 0.0))
		return moe_fail(MOE_ERR_INVALID_ARG, "rope: needs positions >= 1, an even head_dim and theta > 0 "
				"(got %lld, %d, %g)", (long long)positions, (int)head_dim, theta);
	const int32_t half = head_dim / 2;
	r->cos = malloc((size_t)positions * (size_t)half * sizeof(float));
	r->sin = malloc((size_t)positions * (size_t)half * sizeof(float));
	if (!r->cos || !r->sin) {
		moe_rope_free(r);
		return moe_fail(MOE_ERR_NOMEM, "rope: no memory for %lld positions", (long long)positions);
	}
	r->positions = positions;
	r->half = half;
	for (int32_t i = 0; i < half; i++) {
		const double freq = pow(theta, -2.0 * (double)i / (double)head_dim);
		for (int64_t p = 0; p < positions; p++) {
			const double ang = (double)p * freq;
			r->cos[p * half + i] = (float)cos(ang);
			r->sin[p * half + i] = (float)sin(ang);
		}
	}
	return MOE_OK;
}

void moe_rope_free(struct moe_rope *r)
{
	free(r->cos);
	free(r->sin);
	*r = (struct moe_rope){ 0 };
}

void moe_rope_apply(const struct moe_rope *r, int64_t T, int64_t pos0, int32_t n, int32_t head_dim, float *x)
{
	const int32_t half = head_dim / 2;
	for (int64_t t = 0; t < T; t++) {
		const float *c = r->cos + (pos0 + t) * r->half, *s = r->sin + (pos0 + t) * r->half;
		for (int32_t h = 0; h < n; h++) {
			float *v = x + (t * n + h) * head_dim;
			for (int32_t i = 0; i < half; i++) {
				const float x0 = v[2 * i], x1 = v[2 * i + 1];
				const float a = x0 * c[i], b = x1 * s[i], e = x0 * s[i], g = x1 * c[i];
				v[2 * i] = a - b;
				v[2 * i + 1] = e + g;
			}
		}
	}
}
