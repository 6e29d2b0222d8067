/* The cost model: flops and bytes of one call of each op, defined here and nowhere else.
 *
 * bytes = what the kernel must read and write at the operands' stored sizes (quantized data plus
 * their scales; bf16 as 2 bytes), once each: the compulsory traffic, the numerator of GB/s and of
 * the memory term of the roofline. Intermediates a kernel may keep in cache are not counted.
 * flops = multiply-adds counted as 2; elementwise exp/sigmoid/compare work is not counted, so ops
 * that are selection or conversion (routing, codecs) have 0 flops and are judged on bytes and
 * tokens/s. working_set = the bytes one call touches, which picks the cache level a warm run can
 * stream from. */
#include "bench.h"

static double dtype_bytes(enum moe_dtype t)
{
	switch (t) {
	case MOE_DTYPE_F32: return 4;
	case MOE_DTYPE_BF16: return 2;
	case MOE_DTYPE_NONE: return 0;
	default: return 1;
	}
}

/* Routing: read T*E logits and the E-entry bias, write T*K ids (int32) and weights (fp32). */
void moe_bench_cost_route(const struct moe_route_params *p, int64_t T, struct moe_bench_cost *c)
{
	const double E = p->num_experts, K = p->top_k;
	c->flops = 0;
	c->bytes = (double)T * E * dtype_bytes(p->logits_dtype) + E * dtype_bytes(p->bias_dtype) +
		   (double)T * K * (4 + 4);
	c->tokens = (double)T;
	c->compute = MOE_COMPUTE_FP32;
	c->working_set = (size_t)c->bytes;
	c->weight_bytes = 0;
}

/* Norms: read rows*cols inputs and cols weights, write rows*cols outputs. Flops per element:
 * LayerNorm 6 (mean add, centring subtract, variance multiply-add, rsqrt scale, weight multiply),
 * RMSNorm 4 (square multiply-add, rsqrt scale, weight multiply). */
void moe_bench_cost_norm(const struct moe_norm_params *p, struct moe_bench_cost *c)
{
	const double n = (double)p->rows * (double)p->cols;
	c->flops = n * (p->kind == MOE_NORM_LAYERNORM ? 6 : 4);
	c->bytes = n * (dtype_bytes(p->in_dtype) + dtype_bytes(p->out_dtype)) +
		   (double)p->cols * dtype_bytes(p->weight_dtype);
	c->tokens = (double)p->rows;
	c->compute = MOE_COMPUTE_FP32;
	c->working_set = (size_t)c->bytes;
	c->weight_bytes = 0;
}

/* Codecs: quantize reads rows*cols fp32 and writes the data and scales; dequantize the reverse. */
void moe_bench_cost_codec(enum moe_op op, const struct moe_qtensor *q, struct moe_bench_cost *c)
{
	const double packed = (double)moe_qtensor_data_bytes(q) + (double)moe_qtensor_scale_bytes(q);
	c->flops = 0;
	c->bytes = (double)q->rows * (double)q->cols * 4 + packed;
	c->tokens = 0;
	c->compute = MOE_COMPUTE_FP32;
	c->working_set = (size_t)c->bytes;
	c->weight_bytes = 0;
}

double moe_bench_expert_weight_bytes(const struct moe_expert_params *p, int64_t inter)
{
	struct moe_qtensor gate = {
		.dtype = p->weight_dtype, .scaling = p->weight_scaling, .sf_layout = p->weight_sf_layout,
		.rows = inter, .cols = p->hidden,
	};
	struct moe_qtensor down = gate;
	down.rows = p->hidden;
	down.cols = inter;
	return 2 * ((double)moe_qtensor_data_bytes(&gate) + (double)moe_qtensor_scale_bytes(&gate)) +
	       (double)moe_qtensor_data_bytes(&down) + (double)moe_qtensor_scale_bytes(&down);
}

/* Expert MLP (M tokens): gate and up are M x H x I GEMMs, down an M x I x H GEMM:
 * flops = 2*M*(2*I*H + I*H) = 6*M*I*H (SiLU*up, M*I elementwise, is not counted).
 * bytes = the three weights at their stored size + x (M*H fp32) + y (M*H fp32). bf16 weights with
 * bf16 activations can run on the bf16 dot-product units: their compute ceiling is the bf16 peak. */
void moe_bench_cost_expert(const struct moe_expert_params *p, struct moe_bench_cost *c)
{
	const double M = (double)p->tokens, H = (double)p->hidden, I = (double)p->inter;
	c->flops = 2 * M * (2 * I * H + I * H);
	c->bytes = moe_bench_expert_weight_bytes(p, p->inter) + 2 * M * H * 4;
	c->tokens = M;
	c->compute = (p->weight_dtype == MOE_DTYPE_BF16 && p->act_quant == MOE_ACT_BF16) ? MOE_COMPUTE_BF16
											   : MOE_COMPUTE_FP32;
	c->working_set = (size_t)c->bytes;
	c->weight_bytes = moe_bench_expert_weight_bytes(p, p->inter);
}

/* MoE layer (T tokens, top-K): the routed experts run T*K token-slots, the shared expert T tokens:
 * flops = 6*H*(T*K*I + T*Is). bytes = T*E logits + x and y (T*H fp32 each) + the weights of every
 * expert that received a token (`distinct`, from the routing of the benchmark's data) + the shared
 * expert's weights; weight_bytes = those weights alone (the decode GB/s that matters). The
 * router's own GEMM is outside the layer (logits are an input). */
void moe_bench_cost_layer(const struct moe_layer_params *p, double distinct, struct moe_bench_cost *c)
{
	const double T = (double)p->tokens, K = p->route.top_k, H = (double)p->expert.hidden;
	const double I = (double)p->expert.inter, Is = p->shared != MOE_SHARED_NONE ? (double)p->shared_inter : 0;
	c->flops = 6 * H * (T * K * I + T * Is);
	c->bytes = T * p->route.num_experts * dtype_bytes(p->route.logits_dtype) + 2 * T * H * 4 +
		   distinct * moe_bench_expert_weight_bytes(&p->expert, p->expert.inter) +
		   (Is > 0 ? moe_bench_expert_weight_bytes(&p->expert, p->shared_inter) : 0);
	c->tokens = T;
	c->compute = (p->expert.weight_dtype == MOE_DTYPE_BF16 && p->expert.act_quant == MOE_ACT_BF16)
			     ? MOE_COMPUTE_BF16
			     : MOE_COMPUTE_FP32;
	c->working_set = (size_t)c->bytes;
	c->weight_bytes = distinct * moe_bench_expert_weight_bytes(&p->expert, p->expert.inter) +
			  (Is > 0 ? moe_bench_expert_weight_bytes(&p->expert, p->shared_inter) : 0);
}
