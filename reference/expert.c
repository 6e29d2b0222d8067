/* The reference expert MLP: y = down(silu(gate(x)) * up(x)) in fp32, on weights of any format
 * moe_expert_validate accepts. It mirrors what flashinfer's and vLLM's MoE tests take as the
 * truth (dequantize everything, compute in fp32, quantize-dequantize the activations the way the
 * kernel feeds its tensor cores), with one fixed order of operations so that it is a contract.
 *
 * For M tokens, H = hidden, I = inter, built with -ffp-contract=off (no product fused into a sum):
 *   1. xq = Q_x(x): the whole x[M][H] quantized and dequantized per act_quant (expert.h;
 *      expert_rows.c): NONE copies, BF16 rounds each element to nearest even, FP8_TENSOR takes
 *      its scale from the amax of all of x, FP8_1x128 one scale per 128 elements of a row, NVFP4
 *      uses act_global_scale[0] when > 0 and moe_nvfp4_global_scale(amax of all of x) otherwise.
 *   2. for i in 0..I-1: the gate and up rows i are dequantized (moe_dequantize__ref semantics) into
 *      the workspace, then for each token m:
 *          g = 0; for k in 0..H-1: g = g + xq[m][k] * gate[i][k]     (sequential, increasing k)
 *          u = 0; for k in 0..H-1: u = u + xq[m][k] * up[i][k]
 *          a[m][i] = (g / (1.0f + expf(-g))) * u
 *      (for g < -88.7, expf(-g) is +inf and silu(g) = -0.0: the true value is below 3e-37)
 *   3. a = Q_a(a): the whole a[M][I] quantized and dequantized the same way, with
 *      act_global_scale[1] for NVFP4.
 *   4. for h in 0..H-1: the down row h is dequantized, then for each token m:
 *          y[m][h] = 0; for i in 0..I-1: y[m][h] = y[m][h] + a[m][i] * down[h][i]
 * Only one row of each weight is ever dequantized at a time (real shapes are 22528 x 8192), and
 * every buffer lives in the caller's workspace (layout: expert_rows.c), so the kernel never
 * allocates. M = 0 is a no-op. NaN and infinities propagate as IEEE arithmetic makes them. */
#include <assert.h>
#include <math.h>
#include <stdint.h>

#include "expert_impl.h"

size_t moe_expert_workspace_bytes(const struct moe_expert_params *p)
{
	struct moe_ref_expert_ws ws;
	if (!p || p->tokens < 0 || p->hidden < 1 || p->inter < 1)
		return 0;
	return moe_ref_expert_ws_layout(p, &ws) ? ws.total : SIZE_MAX;
}

static float dot(const float *x, const float *w, int64_t n)
{
	float acc = 0.0f;
	for (int64_t k = 0; k < n; k++)
		acc = acc + x[k] * w[k];
	return acc;
}

static float silu(float g)
{
	return g / (1.0f + expf(-g));
}

void moe_expert__ref(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
		     float *y, void *workspace)
{
	assert(moe_expert_validate(p, w) == MOE_OK);
	const int64_t m_count = p->tokens, h_count = p->hidden, i_count = p->inter;
	if (m_count == 0)
		return;
	struct moe_ref_expert_ws ws;
	const bool fits = moe_ref_expert_ws_layout(p, &ws);
	assert(fits && x && y && workspace && ((uintptr_t)workspace & 63) == 0);
	(void)fits;
	char *base = workspace;
	float *xq = (float *)(base + ws.xq), *a = (float *)(base + ws.a);
	float *wg = (float *)(base + ws.wrow), *wu = wg + h_count, *wd = wu + h_count;
	uint8_t *sf = (uint8_t *)(base + ws.sfrow);
	void *qdata = base + ws.qdata, *qscale = base + ws.qscale;

	moe_ref_act_quant(p->act_quant, p->act_global_scale[0], m_count, h_count, x, xq, qdata, qscale);
	for (int64_t i = 0; i < i_count; i++) {
		moe_ref_dequant_row(&w->gate, i, wg, sf);
		moe_ref_dequant_row(&w->up, i, wu, sf);
		for (int64_t m = 0; m < m_count; m++) {
			const float g = dot(xq + m * h_count, wg, h_count);
			const float u = dot(xq + m * h_count, wu, h_count);
			a[m * i_count + i] = silu(g) * u;
		}
	}
	moe_ref_act_quant(p->act_quant, p->act_global_scale[1], m_count, i_count, a, a, qdata, qscale);
	for (int64_t h = 0; h < h_count; h++) {
		moe_ref_dequant_row(&w->down, h, wd, sf);
		for (int64_t m = 0; m < m_count; m++)
			y[m * h_count + h] = dot(a + m * i_count, wd, i_count);
	}
}
