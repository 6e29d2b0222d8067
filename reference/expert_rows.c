/* The pieces the fp32 expert oracle and its double-precision twin share (expert_impl.h): weight
 * rows dequantized through one-row views, activations quantized as one tensor, the workspace layout.
 *
 * A one-row view of a weight tensor is a struct moe_qtensor with rows = 1 whose data and scales
 * point at that row's bytes: the element stride is moe_qtensor_data_bytes of the view; the scales
 * of the row are scales[0] (per-tensor), scales[r] (per-channel), row r of [rows][ceil(cols/128)]
 * (1x128), block row r/128 of [ceil(rows/128)][ceil(cols/128)] (128x128), row r of [rows][cols/32]
 * (MX) and row r of [rows][cols/16] (NVFP4, linear layout). A swizzled NVFP4 row is gathered into a
 * linear one first. moe_dequantize__ref of the view is then exactly row r of the whole tensor's
 * dequantization, because every format decodes element by element from its own scale. */
#include <assert.h>
#include <math.h>

#include "expert_impl.h"

static int64_t div_up(int64_t a, int64_t b)
{
	return a / b + (a % b != 0);
}

void moe_ref_dequant_row(const struct moe_qtensor *q, int64_t r, float *out, uint8_t *sf_scratch)
{
	assert(q && out && r >= 0 && r < q->rows);
	struct moe_qtensor v = *q;
	v.rows = 1;
	v.data = (char *)q->data + (size_t)r * moe_qtensor_data_bytes(&v);
	const int64_t cb128 = div_up(q->cols, 128);
	float *fs = q->scales;
	switch (q->scaling) {
	case MOE_SCALING_NONE:
	case MOE_SCALING_PER_TENSOR:
		break;
	case MOE_SCALING_PER_CHANNEL:
		v.scales = fs + r;
		break;
	case MOE_SCALING_BLOCK_1x128:
		v.scales = fs + r * cb128;
		break;
	case MOE_SCALING_BLOCK_128x128:
		v.scales = fs + (r / 128) * cb128;
		break;
	case MOE_SCALING_MX:
		v.scales = (uint8_t *)q->scales + r * (q->cols / 32);
		break;
	case MOE_SCALING_NVFP4: {
		const int64_t kb = q->cols / 16;
		if (q->sf_layout == MOE_SF_LINEAR) {
			v.scales = (uint8_t *)q->scales + r * kb;
			break;
		}
		assert(sf_scratch);
		const uint8_t *sf = q->scales;
		for (int64_t k = 0; k < kb; k++)
			sf_scratch[k] = sf[moe_nvfp4_sf_offset(q->sf_layout, q->rows, kb, r, k)];
		v.sf_layout = MOE_SF_LINEAR;
		v.scales = sf_scratch;
		break;
	}
	default:
		assert(!"dequant_row: scaling out of range");
	}
	moe_dequantize__ref(&v, out);
}

bool moe_act_qtensor_format(enum moe_act_quant aq, int64_t rows, int64_t cols, struct moe_qtensor *q)
{
	*q = (struct moe_qtensor){ .rows = rows, .cols = cols };
	switch (aq) {
	case MOE_ACT_FP8_TENSOR:
		q->dtype = MOE_DTYPE_FP8E4M3;
		q->scaling = MOE_SCALING_PER_TENSOR;
		return true;
	case MOE_ACT_FP8_1x128:
		q->dtype = MOE_DTYPE_FP8E4M3;
		q->scaling = MOE_SCALING_BLOCK_1x128;
		return true;
	case MOE_ACT_NVFP4:
		q->dtype = MOE_DTYPE_NVFP4;
		q->scaling = MOE_SCALING_NVFP4;
		return true;
	default:
		return false;
	}
}

float moe_ref_act_global_scale(float given, float amax)
{
	return given > 0.0f ? given : moe_nvfp4_global_scale(amax);
}

void moe_ref_act_quant(enum moe_act_quant aq, float given_gs, int64_t rows, int64_t cols, const float *in,
		       float *out, void *qdata, void *qscale)
{
	const size_t n = (size_t)rows * (size_t)cols;
	struct moe_qtensor q;
	if (n == 0)
		return;
	switch (aq) {
	case MOE_ACT_NONE:
		if (out != in)
			memmove(out, in, n * sizeof(float));
		return;
	case MOE_ACT_BF16:
		for (size_t i = 0; i < n; i++)
			out[i] = moe_round_bf16(in[i]);
		return;
	default:
		break;
	}
	const bool coded = moe_act_qtensor_format(aq, rows, cols, &q);
	assert(coded);
	(void)coded;
	q.data = qdata;
	q.scales = qscale;
	if (aq == MOE_ACT_NVFP4) {
		float amax = 0.0f;
		for (size_t i = 0; given_gs <= 0.0f && i < n; i++)
			amax = fmaxf(amax, fabsf(in[i]));
		q.global_scale = moe_ref_act_global_scale(given_gs, amax);
	}
	moe_quantize__ref(in, &q);
	moe_dequantize__ref(&q, out);
}

bool moe_ref_ws_region(size_t *at, size_t count, size_t elem, size_t *off)
{
	size_t bytes, end;
	if (__builtin_mul_overflow(count, elem, &bytes) || __builtin_add_overflow(bytes, (size_t)63, &bytes))
		return false;
	bytes &= ~(size_t)63;
	*off = *at;
	if (__builtin_add_overflow(*at, bytes, &end))
		return false;
	*at = end;
	return true;
}

bool moe_ref_expert_ws_layout(const struct moe_expert_params *p, struct moe_ref_expert_ws *ws)
{
	*ws = (struct moe_ref_expert_ws){ 0 };
	if (p->tokens <= 0)
		return true;
	const size_t m = (size_t)p->tokens, h = (size_t)p->hidden, i = (size_t)p->inter;
	const size_t n = h > i ? h : i;
	size_t mh, mi, row, at = 0;
	if (__builtin_mul_overflow(m, h, &mh) || __builtin_mul_overflow(m, i, &mi) ||
	    __builtin_mul_overflow(h, (size_t)2, &row) || __builtin_add_overflow(row, i, &row))
		return false;
	const bool swizzled = p->weight_dtype == MOE_DTYPE_NVFP4 && p->weight_sf_layout != MOE_SF_LINEAR;
	struct moe_qtensor q;
	size_t qd = 0, qs = 0;
	if (moe_act_qtensor_format(p->act_quant, p->tokens, (int64_t)n, &q)) {
		qd = moe_qtensor_data_bytes(&q);
		qs = moe_qtensor_scale_bytes(&q);
		if (!qd)
			return false;
	}
	bool ok = moe_ref_ws_region(&at, mh, sizeof(float), &ws->xq);
	ok = ok && moe_ref_ws_region(&at, mi, sizeof(float), &ws->a);
	ok = ok && moe_ref_ws_region(&at, row, sizeof(float), &ws->wrow);
	ok = ok && moe_ref_ws_region(&at, swizzled ? n / 16 : 0, 1, &ws->sfrow);
	ok = ok && moe_ref_ws_region(&at, qd, 1, &ws->qdata);
	ok = ok && moe_ref_ws_region(&at, qs, 1, &ws->qscale);
	if (!ok)
		return false;
	ws->total = at;
	return true;
}
