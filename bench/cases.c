/* The default suite: which cases run, on which shapes, in which order.
 *
 * For every selected model (models.c): routing at T in {1, 16, 256, 4096}; its norm (bf16 in, out
 * and weight) at 1 and 256 rows; quantize and dequantize of its weight format on its gate matrix
 * (capped at 2048 rows), of the NVFP4 swizzled layout, and of its activation format at 256 tokens;
 * its expert at tokens per expert in {1, 4, 16, 64, 256, 1024}, warm and cold, in its own format
 * (plus f32 weights and activations for Qwen3-30B-A3B, the problem the OpenBLAS baseline solves);
 * its whole MoE layer at T in {1, 4, 16, 64, 256, 512, 2048}, warm and cold (case_layer.c: experts
 * beyond the layer benchmark's memory cap are aliased copies, counted as such). Options replace the
 * shape lists; --method replaces the models' routers by chosen methods on one synthetic shape.
 * --scaling keeps the layer and the expert prefill (M >= 64) cases only. Within a sweep, cases run
 * smallest first so the suite can predict and skip a call that would blow the time budget before
 * running it. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const int64_t default_T[] = { 1, 16, 256, 4096 };
static const int64_t default_layer_T[] = { 1, 4, 16, 64, 256, 512, 2048 };
static const int64_t quick_layer_T[] = { 1, 16 };
static const int64_t default_M[] = { 1, 4, 16, 64, 256, 1024 };
static const int64_t default_rows[] = { 1, 256 };
static const int64_t quick_T[] = { 1, 256 };
static const int64_t quick_M[] = { 1, 16 };

struct builder {
	struct moe_bench_case *v;
	size_t n, cap;
	enum moe_status s;
};

static struct moe_bench_case *add(struct builder *b, enum moe_op op, const struct moe_model_shape *m)
{
	if (b->s != MOE_OK)
		return NULL;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct moe_bench_case *v = realloc(b->v, cap * sizeof *v);
		if (!v) {
			b->s = moe_fail(MOE_ERR_NOMEM, "bench: no memory for the case list");
			return NULL;
		}
		b->v = v;
		b->cap = cap;
	}
	struct moe_bench_case *c = &b->v[b->n++];
	memset(c, 0, sizeof *c);
	c->op = op;
	snprintf(c->model, sizeof c->model, "%s", m->name);
	return c;
}

/* --weights: a format and the activation handling engines run it with (FP8 blocks with 1x128
 * activation groups as DeepSeek-V3; NVFP4 W4A4 as the ModelOpt checkpoints; MXFP4 with bf16
 * activations as gpt-oss). The name was checked by moe_bench_weights_valid. */
static void weights_override(const char *w, struct moe_expert_params *p)
{
	p->weight_sf_layout = MOE_SF_LINEAR;
	if (strcmp(w, "f32") == 0) {
		p->weight_dtype = MOE_DTYPE_F32, p->weight_scaling = MOE_SCALING_NONE, p->act_quant = MOE_ACT_NONE;
	} else if (strcmp(w, "bf16") == 0) {
		p->weight_dtype = MOE_DTYPE_BF16, p->weight_scaling = MOE_SCALING_NONE, p->act_quant = MOE_ACT_BF16;
	} else if (strcmp(w, "fp8") == 0) {
		p->weight_dtype = MOE_DTYPE_FP8E4M3, p->weight_scaling = MOE_SCALING_BLOCK_128x128;
		p->act_quant = MOE_ACT_FP8_1x128;
	} else if (strcmp(w, "nvfp4") == 0) {
		p->weight_dtype = MOE_DTYPE_NVFP4, p->weight_scaling = MOE_SCALING_NVFP4, p->act_quant = MOE_ACT_NVFP4;
	} else {
		assert(strcmp(w, "mxfp4") == 0);
		p->weight_dtype = MOE_DTYPE_MXFP4, p->weight_scaling = MOE_SCALING_MX, p->act_quant = MOE_ACT_BF16;
	}
}

bool moe_bench_weights_valid(const char *w)
{
	static const char *const names[] = { "f32", "bf16", "fp8", "nvfp4", "mxfp4" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(w, names[i]) == 0)
			return true;
	return false;
}

static void format_name(const struct moe_expert_params *p, char *out, size_t n)
{
	if (p->weight_scaling == MOE_SCALING_NONE || p->weight_scaling == MOE_SCALING_NVFP4 ||
	    p->weight_scaling == MOE_SCALING_MX)
		snprintf(out, n, "W=%s.A=%s", moe_dtype_name(p->weight_dtype), moe_act_quant_name(p->act_quant));
	else
		snprintf(out, n, "W=%s-%s.A=%s", moe_dtype_name(p->weight_dtype), moe_scaling_name(p->weight_scaling),
			 moe_act_quant_name(p->act_quant));
}

static void add_codec(struct builder *b, const struct moe_model_shape *m, const char *what, enum moe_dtype dt,
		      enum moe_scaling sc, enum moe_sf_layout l, int64_t rows, int64_t cols)
{
	static const enum moe_op ops[2] = { MOE_OP_QUANTIZE, MOE_OP_DEQUANTIZE };
	for (int i = 0; i < 2; i++) {
		struct moe_bench_case *c = add(b, ops[i], m);
		if (!c)
			return;
		c->u.codec = (struct moe_qtensor){ .dtype = dt, .scaling = sc, .sf_layout = l, .rows = rows, .cols = cols };
		c->axis = (double)rows;
		snprintf(c->group, sizeof c->group, "%s/%s/%s", moe_op_name(ops[i]), m->name, what);
		snprintf(c->key, sizeof c->key, "%.150s/%lldx%lld", c->group, (long long)rows, (long long)cols);
	}
}

static void codecs(struct builder *b, const struct moe_model_shape *m)
{
	char what[64];
	const int64_t rows = m->inter < 2048 ? m->inter : 2048;
	if (m->weight_dtype != MOE_DTYPE_F32) {
		snprintf(what, sizeof what, "%s-%s", moe_dtype_name(m->weight_dtype), moe_scaling_name(m->weight_scaling));
		add_codec(b, m, what, m->weight_dtype, m->weight_scaling, MOE_SF_LINEAR, rows, m->hidden);
	}
	if (m->weight_dtype == MOE_DTYPE_NVFP4)
		add_codec(b, m, "nvfp4-nvfp4-128x4", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, rows,
			  m->hidden);
	if (m->act == MOE_ACT_FP8_1x128)
		add_codec(b, m, "act-fp8e4m3-1x128", MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, 256,
			  m->hidden);
	if (m->act == MOE_ACT_NVFP4)
		add_codec(b, m, "act-nvfp4", MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, 256, m->hidden);
}

static void experts(struct builder *b, const struct moe_model_shape *m, const struct moe_expert_params *base,
		    const int64_t *M, int nM, int warm_cold)
{
	char fmt[96];
	format_name(base, fmt, sizeof fmt);
	for (int cold = 0; cold < 2; cold++) {
		if (!(warm_cold & (1 << cold)))
			continue;
		for (int i = 0; i < nM; i++) {
			struct moe_bench_case *c = add(b, MOE_OP_EXPERT, m);
			if (!c)
				return;
			c->u.expert = *base;
			c->u.expert.tokens = M[i];
			c->cold = cold;
			c->axis = (double)M[i];
			snprintf(c->group, sizeof c->group, "expert/%s/%s/%s", m->name, fmt, cold ? "cold" : "warm");
			snprintf(c->key, sizeof c->key, "expert/%s/%s/M:%lld/%s", m->name, fmt, (long long)M[i],
				 cold ? "cold" : "warm");
		}
	}
}

static bool selected(const struct moe_bench_options *o, enum moe_op op)
{
	return o->op_mask == 0 || (o->op_mask & (1u << op));
}

/* --method: each chosen method on one synthetic router shape instead of the models' routers, at
 * every T, under every chosen profile (default vllm). E = 128, K = 8 unless --shape says otherwise;
 * DeepSeekV3 defaults to E = 256 in G = 8 groups of which TG = 4 are kept and rsf = 2.5 (DeepSeek-V3's
 * router); Llama4 defaults to K = 1, the only K it takes: a --shape K= it cannot take is refused with
 * the validator's message, never ignored. MiniMax2 and DeepSeekV3 get an fp32 correction bias. Logits are
 * fp32 unless --logits bf16. A combination the engines refuse fails the build of the case list with
 * moe_route_validate's message. */
static void synthetic_routes(struct builder *b, const struct moe_bench_options *o, const int64_t *T, int nT)
{
	static const struct moe_model_shape synthetic = { .name = "synthetic" };
	const unsigned profiles = o->route_profiles ? o->route_profiles : 1u << MOE_PROFILE_VLLM;
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
		if (!(o->route_methods & (1u << m)))
			continue;
		const bool dsv3 = m == MOE_ROUTE_DEEPSEEKV3;
		const int32_t E = o->route_E ? o->route_E : dsv3 ? 256 : 128;
		const int32_t K = o->route_K ? o->route_K : m == MOE_ROUTE_LLAMA4 ? 1 : 8;
		for (int pr = 0; pr < MOE_PROFILE_COUNT; pr++) {
			if (!(profiles & (1u << pr)))
				continue;
			struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, E, K);
			p.profile = (enum moe_profile)pr;
			p.logits_dtype = o->route_logits == MOE_DTYPE_BF16 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
			if (dsv3) {
				p.n_group = o->route_G ? o->route_G : 8;
				p.topk_group = o->route_TG ? o->route_TG : 4;
				p.routed_scaling_factor = 2.5f;
			}
			if (dsv3 || m == MOE_ROUTE_MINIMAX2)
				p.bias_dtype = MOE_DTYPE_F32;
			if (b->s == MOE_OK)
				b->s = moe_route_validate(&p);
			char shape[64];
			if (p.n_group > 1)
				snprintf(shape, sizeof shape, "E%d-G%d-TG%d-K%d", E, p.n_group, p.topk_group, K);
			else
				snprintf(shape, sizeof shape, "E%d-K%d", E, K);
			for (int i = 0; i < nT; i++) {
				struct moe_bench_case *c = add(b, MOE_OP_ROUTE, &synthetic);
				if (!c)
					return;
				c->u.route.p = p;
				c->u.route.tokens = T[i];
				c->axis = (double)T[i];
				snprintf(c->group, sizeof c->group, "route/synthetic-%s/%s-%s-%s", shape,
					 moe_routing_method_name(p.method), moe_dtype_name(p.logits_dtype),
					 moe_profile_name(p.profile));
				snprintf(c->key, sizeof c->key, "%.150s/T:%lld", c->group, (long long)T[i]);
			}
		}
	}
}

enum moe_status moe_bench_build_cases(const struct moe_bench_options *o, struct moe_bench_case **cases,
				      size_t *count)
{
	struct builder b = { 0 };
	const struct moe_model_shape *list[16];
	size_t nm = 0;
	const bool explicit_models = o->models[0] != NULL;
	for (size_t i = 0; explicit_models && i < 16 && o->models[i]; i++) {
		const struct moe_model_shape *m = moe_model_find(o->models[i]);
		if (!m) {
			char names[512] = "";
			for (size_t k = 0; k < moe_model_count(); k++)
				snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
					 moe_model_at(k)->name);
			return moe_fail(MOE_ERR_INVALID_ARG, "bench: unknown model '%s' (valid: %s)", o->models[i], names);
		}
		list[nm++] = m;
	}
	for (size_t i = 0; !explicit_models && i < moe_model_count(); i++)
		if (!o->quick || i < 2)
			list[nm++] = moe_model_at(i);

	const int64_t *T = o->n_T ? o->shape_T : o->quick ? quick_T : default_T;
	int nT = o->n_T ? o->n_T : o->quick ? 2 : 4;
	const int64_t *LT = o->n_T ? o->shape_T : o->quick ? quick_layer_T : default_layer_T;
	int nLT = o->n_T ? o->n_T : o->quick ? 2 : 7;
	const int64_t *M = o->n_M ? o->shape_M : o->quick ? quick_M : default_M;
	int nM = o->n_M ? o->n_M : o->quick ? 2 : 6;
	const int64_t *R = o->n_rows ? o->shape_rows : default_rows;
	int nR = o->n_rows ? o->n_rows : 2;
	const int warm_cold = o->warm_cold ? o->warm_cold : 3;

	if (o->route_methods && selected(o, MOE_OP_ROUTE))
		synthetic_routes(&b, o, T, nT);
	for (size_t k = 0; k < nm && !o->route_methods && selected(o, MOE_OP_ROUTE); k++) {
		const struct moe_model_shape *m = list[k];
		for (int i = 0; i < nT; i++) {
			struct moe_bench_case *c = add(&b, MOE_OP_ROUTE, m);
			if (!c)
				break;
			c->u.route.p = moe_model_route_params(m, MOE_PROFILE_VLLM);
			c->u.route.tokens = T[i];
			c->axis = (double)T[i];
			snprintf(c->group, sizeof c->group, "route/%s/%s-%s", m->name, moe_routing_method_name(m->method),
				 moe_dtype_name(m->logits_dtype));
			snprintf(c->key, sizeof c->key, "%.150s/T:%lld", c->group, (long long)T[i]);
		}
	}
	for (size_t k = 0; k < nm && selected(o, MOE_OP_NORM); k++) {
		const struct moe_model_shape *m = list[k];
		for (int i = 0; i < nR; i++) {
			struct moe_bench_case *c = add(&b, MOE_OP_NORM, m);
			if (!c)
				break;
			c->u.norm = (struct moe_norm_params){
				.kind = m->norm, .rows = R[i], .cols = m->hidden, .eps = 1e-5f,
				.in_dtype = MOE_DTYPE_BF16, .weight_dtype = MOE_DTYPE_BF16, .out_dtype = MOE_DTYPE_BF16,
			};
			c->axis = (double)R[i];
			snprintf(c->group, sizeof c->group, "norm/%s/%s-bf16", m->name, moe_norm_kind_name(m->norm));
			snprintf(c->key, sizeof c->key, "%.150s/rows:%lld/H:%lld", c->group, (long long)R[i],
				 (long long)m->hidden);
		}
	}
	for (size_t k = 0; k < nm && (selected(o, MOE_OP_QUANTIZE) || selected(o, MOE_OP_DEQUANTIZE)); k++)
		codecs(&b, list[k]);
	for (size_t k = 0; k < nm && selected(o, MOE_OP_EXPERT); k++) {
		const struct moe_model_shape *m = list[k];
		struct moe_expert_params p = moe_model_expert_params(m);
		if (o->weights) {
			weights_override(o->weights, &p);
			experts(&b, m, &p, M, nM, warm_cold);
			continue;
		}
		if (strcmp(m->name, "qwen3-30b-a3b") == 0) {
			struct moe_expert_params f = p;
			f.weight_dtype = MOE_DTYPE_F32;
			f.weight_scaling = MOE_SCALING_NONE;
			f.act_quant = MOE_ACT_NONE;
			experts(&b, m, &f, M, nM, warm_cold);
		}
		experts(&b, m, &p, M, nM, warm_cold);
	}
	for (size_t k = 0; k < nm && selected(o, MOE_OP_LAYER); k++) {
		const struct moe_model_shape *m = list[k];
		struct moe_expert_params p = moe_model_expert_params(m);
		if (o->weights)
			weights_override(o->weights, &p);
		char fmt[96];
		format_name(&p, fmt, sizeof fmt);
		for (int cold = 0; cold < 2; cold++) {
			if (!(warm_cold & (1 << cold)))
				continue;
			for (int i = 0; i < nLT; i++) {
				struct moe_bench_case *c = add(&b, MOE_OP_LAYER, m);
				if (!c)
					break;
				c->cold = cold;
				struct moe_layer_params *l = &c->u.layer;
				l->route = moe_model_route_params(m, MOE_PROFILE_VLLM);
				l->expert = p;
				l->rsf_site = MOE_RSF_AT_ROUTER;
				l->shared = m->shared;
				l->shared_inter = m->shared_inter;
				l->tokens = LT[i];
				c->axis = (double)LT[i];
				snprintf(c->group, sizeof c->group, "layer/%s/%s/%s", m->name, fmt, cold ? "cold" : "warm");
				snprintf(c->key, sizeof c->key, "layer/%s/%s/T:%lld/%s", m->name, fmt, (long long)LT[i],
					 cold ? "cold" : "warm");
			}
		}
	}
	for (size_t i = 0; i < b.n && o->op_mask; i++)
		if (!selected(o, b.v[i].op))
			b.v[i].op = MOE_OP_COUNT;
	for (size_t i = 0; i < b.n && o->scaling; i++)
		if (b.v[i].op != MOE_OP_LAYER && !(b.v[i].op == MOE_OP_EXPERT && b.v[i].u.expert.tokens >= 64))
			b.v[i].op = MOE_OP_COUNT;
	size_t kept = 0;
	for (size_t i = 0; i < b.n; i++)
		if (b.v[i].op != MOE_OP_COUNT)
			b.v[kept++] = b.v[i];
	b.n = kept;
	if (b.s != MOE_OK) {
		free(b.v);
		return b.s;
	}
	*cases = b.v;
	*count = b.n;
	return MOE_OK;
}
