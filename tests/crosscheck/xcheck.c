/* A flat C ABI over the reference router and codecs, for tests/crosscheck/crosscheck.py (ctypes).
 *
 * Each entry point takes plain integers, floats and buffers instead of the public structs, so the
 * Python side never mirrors a struct layout. Nothing here computes a result of its own: the
 * functions fill the public structs from their arguments and call the reference (routing.h,
 * codec.h, dtype.h); routing and quantization go through the validating entry points, so bad
 * arguments come back as the reference's own status and message. The element wrappers loop over an
 * array only to cross the ctypes boundary once per array. The one exception is xc_libm, the C
 * library's expf/tanhf for the model's --libm mode. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "moe/moe.h"

/* The symbols below are this library's whole interface; they need no header of their own. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

static struct moe_route_params route_params(int method, int profile, int E, int K, int G, int TG,
					    int renorm, float rsf, int logits_dtype, int bias_dtype)
{
	struct moe_route_params p = {
		.method = (enum moe_routing_method)method,
		.profile = (enum moe_profile)profile,
		.num_experts = E,
		.top_k = K,
		.n_group = G,
		.topk_group = TG,
		.renormalize = renorm != 0,
		.routed_scaling_factor = rsf,
		.logits_dtype = (enum moe_dtype)logits_dtype,
		.bias_dtype = (enum moe_dtype)bias_dtype,
	};
	return p;
}

int xc_route_validate(int method, int profile, int E, int K, int G, int TG, int renorm, float rsf,
		      int logits_dtype, int bias_dtype)
{
	struct moe_route_params p =
		route_params(method, profile, E, K, G, TG, renorm, rsf, logits_dtype, bias_dtype);
	return (int)moe_route_validate(&p);
}

int xc_route(int method, int profile, int E, int K, int G, int TG, int renorm, float rsf,
	     int logits_dtype, int bias_dtype, int64_t T, const void *logits, const void *bias,
	     int32_t *ids, float *weights)
{
	struct moe_route_params p =
		route_params(method, profile, E, K, G, TG, renorm, rsf, logits_dtype, bias_dtype);
	return (int)moe_route_ref_checked(&p, T, logits, bias, ids, weights);
}

const char *xc_last_error(void)
{
	return moe_last_error();
}

void xc_fp8e4m3_encode(const float *x, uint8_t *out, int64_t n, int mode)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = moe_fp8e4m3_encode(x[i], (enum moe_fp8_overflow)mode);
}

void xc_fp8e5m2_encode(const float *x, uint8_t *out, int64_t n, int mode)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = moe_fp8e5m2_encode(x[i], (enum moe_fp8_overflow)mode);
}

void xc_e2m1_encode(const float *x, uint8_t *out, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = moe_e2m1_encode(x[i]);
}

/* which: 0 = E4M3, 1 = E5M2, 2 = E2M1 (codes 0..15), 3 = UE8M0. */
void xc_decode(int which, const uint8_t *codes, float *out, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		switch (which) {
		case 0:
			out[i] = moe_fp8e4m3_decode(codes[i]);
			break;
		case 1:
			out[i] = moe_fp8e5m2_decode(codes[i]);
			break;
		case 2:
			out[i] = moe_e2m1_decode(codes[i]);
			break;
		default:
			out[i] = moe_ue8m0_decode(codes[i]);
			break;
		}
	}
}

/* dtype.h's fp32 -> bf16 conversion (static inline there), over an array. */
void xc_bf16(const float *x, uint16_t *out, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = moe_f32_to_bf16(x[i]);
}

float xc_nvfp4_global_scale(float amax)
{
	return moe_nvfp4_global_scale(amax);
}

int64_t xc_nvfp4_sf_offset(int layout, int64_t rows, int64_t kblocks, int64_t m, int64_t kb)
{
	return (int64_t)moe_nvfp4_sf_offset((enum moe_sf_layout)layout, rows, kblocks, m, kb);
}

static struct moe_qtensor qtensor(int dtype, int scaling, int layout, int flags, int64_t rows,
				  int64_t cols)
{
	struct moe_qtensor q = {
		.dtype = (enum moe_dtype)dtype,
		.scaling = (enum moe_scaling)scaling,
		.sf_layout = (enum moe_sf_layout)layout,
		.flags = (uint32_t)flags,
		.rows = rows,
		.cols = cols,
	};
	return q;
}

/* Sizes of a quantized tensor's data and scales (for shapes moe_qtensor_validate accepts). */
void xc_qtensor_sizes(int dtype, int scaling, int layout, int flags, int64_t rows, int64_t cols,
		      int64_t *data_bytes, int64_t *scale_bytes)
{
	struct moe_qtensor q = qtensor(dtype, scaling, layout, flags, rows, cols);
	*data_bytes = (int64_t)moe_qtensor_data_bytes(&q);
	*scale_bytes = (int64_t)moe_qtensor_scale_bytes(&q);
}

/* Quantize x into caller buffers of exactly the sizes xc_qtensor_sizes reported (the caller
 * pre-fills them, so bytes the reference leaves alone are visible). global_scale is the NVFP4
 * input (<= 0: derive) and receives the value the reference stored. */
int xc_quantize(int dtype, int scaling, int layout, int flags, int64_t rows, int64_t cols,
		const float *x, void *data, void *scales, float *global_scale)
{
	struct moe_qtensor q = qtensor(dtype, scaling, layout, flags, rows, cols);
	q.data = data;
	q.scales = scales;
	q.global_scale = *global_scale;
	enum moe_status s = moe_qtensor_validate(&q);
	if (s != MOE_OK)
		return (int)s;
	moe_quantize__ref(x, &q);
	*global_scale = q.global_scale;
	return MOE_OK;
}

int xc_dequantize(int dtype, int scaling, int layout, int flags, int64_t rows, int64_t cols,
		  const void *data, const void *scales, float global_scale, float *x)
{
	struct moe_qtensor q = qtensor(dtype, scaling, layout, flags, rows, cols);
	q.data = (void *)data;
	q.scales = (void *)scales;
	q.global_scale = global_scale;
	enum moe_status s = moe_qtensor_validate(&q);
	if (s != MOE_OK)
		return (int)s;
	moe_dequantize__ref(&q, x);
	return MOE_OK;
}

/* The C library's expf and tanhf over an array. Not the reference: crosscheck.py's --libm mode
 * evaluates the model's exp and tanh with them (instead of float64 rounded once), so that the model
 * and the reference see the same elementary-function values and must then agree bit for bit. */
void xc_libm(int which, const float *x, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = which == 0 ? expf(x[i]) : tanhf(x[i]);
}
