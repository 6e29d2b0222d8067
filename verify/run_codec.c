/* Running one codec case. Encoding and decoding are deterministic (formats.md), so the comparison
 * is bitwise against the reference: quantize compares every data byte, every scale byte (the
 * swizzle padding included, which must stay 0) and the global scale; dequantize compares the
 * output floats bit for bit, NaN payloads and signed zeros included. Buffers carry guard bytes.
 * Output buffers are filled with the byte 0xa5 (not zeros) before the call, so a byte the contract
 * defines but the kernel never writes, such as a swizzle padding byte that must be 0, differs. */
#include <math.h>
#include <string.h>

#include "vcases.h"

#define MOE_GUARD_BYTES 64

/* Generators whose point is an all-zero (or all-NaN) result: saturating blocks, flushed scales. */
static bool vacuous_gen(enum moe_vgen g)
{
	return g == MOE_GEN_ZERO_BLOCKS || g == MOE_GEN_TINY_SCALE || g == MOE_GEN_DENORMAL || g == MOE_GEN_EQUAL ||
	       g == MOE_GEN_NAN || g == MOE_GEN_INF || g == MOE_GEN_INF_BLOCKS;
}

static bool guard_ok(const unsigned char *p, size_t from, struct moe_vresult *r, const char *what)
{
	for (size_t i = from; i < from + MOE_GUARD_BYTES; i++) {
		if (p[i] != 0xa5) {
			snprintf(r->reason, sizeof r->reason, "wrote past the end of %s (%zu bytes)", what, from);
			moe_vresult_mismatch(r, "guard", (int64_t)i, p[i], 0xa5, 0, 0);
			return false;
		}
	}
	return true;
}

static void compare_bytes(const char *what, const unsigned char *k, const unsigned char *ref, size_t n,
			  struct moe_vresult *r)
{
	for (size_t i = 0; i < n; i++) {
		r->checked++;
		if (k[i] != ref[i]) {
			if (r->status != MOE_V_FAIL)
				snprintf(r->reason, sizeof r->reason, "%s byte %zu differs (bitwise format)", what, i);
			moe_vresult_mismatch(r, what, (int64_t)i, k[i], ref[i], fabs((double)k[i] - ref[i]), 0);
		}
	}
}

static void compare_floats(const char *what, const float *k, const float *ref, size_t n, struct moe_vresult *r)
{
	for (size_t i = 0; i < n; i++) {
		r->checked++;
		if (moe_f32_bits(k[i]) != moe_f32_bits(ref[i])) {
			if (r->status != MOE_V_FAIL)
				snprintf(r->reason, sizeof r->reason, "%s[%zu] differs bitwise", what, i);
			moe_vresult_mismatch(r, what, (int64_t)i, k[i], ref[i], fabs((double)k[i] - ref[i]), 0);
		} else {
			moe_vresult_ulp(r, 0, 0);
		}
	}
}

static bool float_scales(const struct moe_qtensor *q)
{
	return q->scaling != MOE_SCALING_NVFP4 && q->scaling != MOE_SCALING_MX;
}

void moe_vcheck_quantize(const struct moe_backend *b, const struct moe_vcase *c, const float *x,
			 const struct moe_qtensor *qr, struct moe_vscratch *s, struct moe_vresult *r)
{
	struct moe_qtensor qk = *qr;
	const size_t nd = moe_qtensor_data_bytes(qr), ns = moe_qtensor_scale_bytes(qr);
	qk.data = nd ? moe_vscratch_get(s, 8, nd + MOE_GUARD_BYTES) : NULL;
	qk.scales = ns ? moe_vscratch_get(s, 9, ns + MOE_GUARD_BYTES) : NULL;
	qk.global_scale = c->q.global_scale;
	if ((nd && !qk.data) || (ns && !qk.scales)) {
		moe_vresult_nomem(r, "out of memory for %zu + %zu bytes", nd, ns);
		return;
	}
	if (nd)
		memset(qk.data, 0xa5, nd + MOE_GUARD_BYTES);
	if (ns)
		memset(qk.scales, 0xa5, ns + MOE_GUARD_BYTES);
	b->quantize(x, &qk);
	if ((nd && !guard_ok(qk.data, nd, r, "data")) || (ns && !guard_ok(qk.scales, ns, r, "scales")))
		return;
	compare_bytes("data", qk.data, qr->data, nd, r);
	if (float_scales(qr))
		compare_floats("scales", qk.scales, qr->scales, ns / sizeof(float), r);
	else
		compare_bytes("scales", qk.scales, qr->scales, ns, r);
	if (moe_f32_bits(qk.global_scale) != moe_f32_bits(qr->global_scale)) {
		if (r->status != MOE_V_FAIL)
			snprintf(r->reason, sizeof r->reason, "global scale differs");
		moe_vresult_mismatch(r, "global_scale", 0, qk.global_scale, qr->global_scale,
				     fabs((double)qk.global_scale - qr->global_scale), 0);
	}
	size_t nz = 0;
	for (size_t i = 0; i < nd; i++)
		nz += ((const unsigned char *)qr->data)[i] != 0;
	if (nd >= 16 && nz == 0 && !vacuous_gen(c->gen))
		moe_vresult_untrusted(r, "reference quantized data all zero (%zu bytes)", nd);
}

void moe_vcheck_dequantize(const struct moe_backend *b, const struct moe_vcase *c, const struct moe_qtensor *q,
			   const float *xr, struct moe_vscratch *s, struct moe_vresult *r)
{
	const int64_t n = q->rows * q->cols;
	unsigned char *xk = moe_vscratch_get(s, 8, (size_t)n * sizeof(float) + MOE_GUARD_BYTES);
	if (!xk) {
		moe_vresult_nomem(r, "out of memory for %lld values", (long long)n);
		return;
	}
	memset(xk, 0xa5, (size_t)n * sizeof(float) + MOE_GUARD_BYTES);
	b->dequantize(q, (float *)xk);
	if (!guard_ok(xk, (size_t)n * sizeof(float), r, "x"))
		return;
	compare_floats("x", (const float *)xk, xr, (size_t)n, r);
	int64_t zero = 0;
	for (int64_t i = 0; i < n; i++)
		zero += xr[i] == 0.0f;
	if (n >= 16 && zero * 10 >= n * 9 && !vacuous_gen(c->gen))
		moe_vresult_untrusted(r, "reference dequantized values zero on %lld of %lld", (long long)zero, (long long)n);
}

/* The reference's quantized tensor of the case (quantize: the expected output; dequantize: the
 * input), in scratch slots 1 and 2; x (slot 0) holds the generated fp32 input. */
bool moe_vcodec_oracle(const struct moe_vcase *c, struct moe_vscratch *s, float **x, struct moe_qtensor *q)
{
	const int64_t n = c->T * c->q.cols;
	*q = c->q;
	q->rows = c->T;
	const size_t nd = moe_qtensor_data_bytes(q), ns = moe_qtensor_scale_bytes(q);
	*x = moe_vscratch_get(s, 0, (size_t)n * sizeof(float));
	q->data = nd ? moe_vscratch_get(s, 1, nd) : NULL;
	q->scales = ns ? moe_vscratch_get(s, 2, ns) : NULL;
	if (!*x || (nd && !q->data) || (ns && !q->scales))
		return false;
	moe_gen_codec(c, *x);
	if (nd)
		memset(q->data, 0, nd);
	if (ns)
		memset(q->scales, 0, ns);
	if (c->op == MOE_OP_QUANTIZE)
		moe_backend_reference()->quantize(*x, q);
	else
		moe_gen_codec_q(c, *x, q);
	return true;
}

void moe_vrun_codec(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r)
{
	struct moe_qtensor q;
	float *x;
	if (!moe_vcodec_oracle(c, s, &x, &q)) {
		moe_vresult_nomem(r, "out of memory for %lld x %lld", (long long)c->T, (long long)c->q.cols);
		return;
	}
	if (c->op == MOE_OP_QUANTIZE) {
		moe_vcheck_quantize(b, c, x, &q, s, r);
		return;
	}
	const int64_t n = c->T * c->q.cols;
	float *xr = moe_vscratch_get(s, 3, (size_t)n * sizeof(float));
	if (!xr) {
		moe_vresult_nomem(r, "out of memory for %lld values", (long long)n);
		return;
	}
	moe_backend_reference()->dequantize(&q, xr);
	moe_vcheck_dequantize(b, c, &q, xr, s, r);
}
