/* Mutant: SiLU replaced by ReLU: y = down(relu(gate(x)) * up(x)). A small re-implementation of
 * the reference expert (reference/expert.c) for fp32 and bf16 weights with fp32 or bf16
 * activations, in the reference's order of operations (sequential fp32 dot products over
 * increasing k; x and the intermediate rounded to bf16 for act_quant BF16), differing only in the
 * activation. supports() declines the other formats, which this mutant does not compute. The
 * intermediate a[M][I] lives in the caller's workspace, which the reference's layout sizes to hold
 * at least that (asserted). */
#include <assert.h>

#include "mutant.h"

static float weight(const struct moe_qtensor *q, int64_t r, int64_t c)
{
	if (q->dtype == MOE_DTYPE_BF16)
		return moe_bf16_to_f32(((const moe_bf16 *)q->data)[r * q->cols + c]);
	return ((const float *)q->data)[r * q->cols + c];
}

static float act(enum moe_act_quant aq, float v)
{
	return aq == MOE_ACT_BF16 ? moe_round_bf16(v) : v;
}

static void expert__silu_relu(const struct moe_expert_params *p, const float *x,
			      const struct moe_expert_weights *w, float *y, void *workspace)
{
	const int64_t M = p->tokens, H = p->hidden, I = p->inter;
	assert(moe_expert_workspace_bytes(p) >= (size_t)(M * I) * sizeof(float));
	float *a = workspace;
	for (int64_t i = 0; i < I; i++) {
		for (int64_t m = 0; m < M; m++) {
			float g = 0.0f, u = 0.0f;
			for (int64_t k = 0; k < H; k++)
				g = g + act(p->act_quant, x[m * H + k]) * weight(&w->gate, i, k);
			for (int64_t k = 0; k < H; k++)
				u = u + act(p->act_quant, x[m * H + k]) * weight(&w->up, i, k);
			a[m * I + i] = act(p->act_quant, (g > 0.0f ? g : 0.0f) * u);
		}
	}
	for (int64_t h = 0; h < H; h++) {
		for (int64_t m = 0; m < M; m++) {
			float acc = 0.0f;
			for (int64_t i = 0; i < I; i++)
				acc = acc + a[m * I + i] * weight(&w->down, h, i);
			y[m * H + h] = acc;
		}
	}
}

static bool supports__silu_relu(enum moe_op op, const void *problem)
{
	if (op != MOE_OP_EXPERT)
		return true;
	const struct moe_expert_params *p = problem;
	return (p->weight_dtype == MOE_DTYPE_F32 || p->weight_dtype == MOE_DTYPE_BF16) &&
	       (p->act_quant == MOE_ACT_NONE || p->act_quant == MOE_ACT_BF16);
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-silu-relu";
	b->description = "expert: SiLU replaced by ReLU";
	b->expert = expert__silu_relu;
	b->supports = supports__silu_relu;
}
