/* Case specs: the one-line text form of a verify case, its parser and its printer.
 *
 * `<op> key=value ...` with the keys of the op (route: method profile E K G TG renorm rsf logits
 * bias T gen scale seed; norm: kind rows cols eps in w out; quantize/dequantize: dtype scaling
 * layout rows cols nanovf gs; expert: M H I wdtype wscaling layout act ags0 ags1; layer: the route
 * and expert keys plus rsfsite shared SI). Floats print with 9 significant digits so that a printed
 * spec parses back to the same bits; the printer writes every key that matters, so the printed line
 * alone reproduces the case. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "verify.h"

static const char *const gen_names[MOE_GEN_COUNT] = {
	[MOE_GEN_NORMAL] = "normal",
	[MOE_GEN_BF16_TIES] = "bf16-ties",
	[MOE_GEN_LEVELS] = "levels",
	[MOE_GEN_EQUAL] = "equal",
	[MOE_GEN_NEGATIVE] = "negative",
	[MOE_GEN_UNDERFLOW] = "underflow",
	[MOE_GEN_DEEP_UNDERFLOW] = "deep-underflow",
	[MOE_GEN_SATURATE] = "saturate",
	[MOE_GEN_OVERFLOW] = "overflow",
	[MOE_GEN_NAN] = "nan",
	[MOE_GEN_INF] = "inf",
	[MOE_GEN_DENORMAL] = "denormal",
	[MOE_GEN_BIAS_HUGE] = "bias-huge",
	[MOE_GEN_BIAS_NEG] = "bias-neg",
	[MOE_GEN_SKEWED] = "skewed",
	[MOE_GEN_OFFSET] = "offset",
	[MOE_GEN_MIDPOINTS] = "midpoints",
	[MOE_GEN_ZERO_BLOCKS] = "zero-blocks",
	[MOE_GEN_INF_BLOCKS] = "inf-blocks",
	[MOE_GEN_TINY_SCALE] = "tiny-scale",
	[MOE_GEN_CODES] = "codes",
};

const char *moe_vgen_name(enum moe_vgen g)
{
	return (g >= 0 && g < MOE_GEN_COUNT) ? gen_names[g] : "?";
}

enum moe_status moe_vgen_parse(const char *name, enum moe_vgen *out)
{
	for (int i = 0; name && i < MOE_GEN_COUNT; i++) {
		if (!strcmp(name, gen_names[i])) {
			*out = (enum moe_vgen)i;
			return MOE_OK;
		}
	}
	return moe_fail(MOE_ERR_FORMAT, "unknown generator '%s' (valid: normal, bf16-ties, levels, equal, "
			"negative, underflow, deep-underflow, saturate, overflow, nan, inf, denormal, bias-huge, "
			"bias-neg, skewed, offset, midpoints, zero-blocks, inf-blocks, tiny-scale, codes)",
			name ? name : "(null)");
}

/* Which generators make sense for which op (bit per enum moe_op). */
static unsigned gen_ops(enum moe_vgen g)
{
	const unsigned R = 1u << MOE_OP_ROUTE, N = 1u << MOE_OP_NORM, Q = 1u << MOE_OP_QUANTIZE,
		       D = 1u << MOE_OP_DEQUANTIZE, X = 1u << MOE_OP_EXPERT, L = 1u << MOE_OP_LAYER;
	switch (g) {
	case MOE_GEN_NORMAL: return R | N | Q | D | X | L;
	case MOE_GEN_BF16_TIES: return R | N | Q | D | X | L;
	case MOE_GEN_LEVELS: return R | L;
	case MOE_GEN_EQUAL: return R | N | Q | D;
	case MOE_GEN_NEGATIVE: return R | L;
	case MOE_GEN_UNDERFLOW: case MOE_GEN_DEEP_UNDERFLOW: case MOE_GEN_SATURATE: return R;
	case MOE_GEN_OVERFLOW: return R | L;
	case MOE_GEN_NAN: case MOE_GEN_INF: return R | Q | D;
	case MOE_GEN_DENORMAL: return R | N | Q | D;
	case MOE_GEN_BIAS_HUGE: case MOE_GEN_BIAS_NEG: return R | L;
	case MOE_GEN_SKEWED: return R | L;
	case MOE_GEN_OFFSET: return N | X;
	case MOE_GEN_MIDPOINTS: case MOE_GEN_ZERO_BLOCKS: case MOE_GEN_INF_BLOCKS:
	case MOE_GEN_TINY_SCALE: return Q | D;
	case MOE_GEN_CODES: return D;
	case MOE_GEN_COUNT: break;
	}
	return 0;
}

void moe_vcase_init(struct moe_vcase *c, enum moe_op op)
{
	memset(c, 0, sizeof *c);
	c->op = op;
	c->gen = MOE_GEN_NORMAL;
	c->seed = 1;
	c->T = 4;
	c->route = moe_route_params_default(MOE_ROUTE_RENORMALIZE, 16, 4);
	c->norm = (struct moe_norm_params){ MOE_NORM_RMSNORM, 4, 64, 1e-5f, MOE_DTYPE_F32, MOE_DTYPE_F32,
					    MOE_DTYPE_F32 };
	c->q = (struct moe_qtensor){ .dtype = MOE_DTYPE_FP8E4M3, .scaling = MOE_SCALING_PER_TENSOR,
				     .rows = 4, .cols = 64 };
	c->expert = (struct moe_expert_params){ .tokens = 4, .hidden = 64, .inter = 32,
						.weight_dtype = MOE_DTYPE_F32,
						.weight_scaling = MOE_SCALING_NONE };
	c->rsf_site = MOE_RSF_AT_ROUTER;
	c->shared = MOE_SHARED_NONE;
	snprintf(c->group, sizeof c->group, "cases-file");
}

/* ---- parsing ---- */

static enum moe_status parse_i64(const char *key, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return moe_fail(MOE_ERR_FORMAT, "case spec: %s=%s is not an integer in [%" PRId64 ", %" PRId64 "]",
				key, v, lo, hi);
	*out = x;
	return MOE_OK;
}

static enum moe_status parse_i32(const char *key, const char *v, int32_t lo, int32_t hi, int32_t *out)
{
	int64_t x;
	enum moe_status s = parse_i64(key, v, lo, hi, &x);
	if (s == MOE_OK)
		*out = (int32_t)x;
	return s;
}

static enum moe_status parse_f32(const char *key, const char *v, float *out)
{
	char *end;
	errno = 0;
	float x = strtof(v, &end);
	if (end == v || *end)
		return moe_fail(MOE_ERR_FORMAT, "case spec: %s=%s is not a number", key, v);
	*out = x;
	return MOE_OK;
}

static enum moe_status parse_bool(const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "0") || !strcmp(v, "1")) {
		*out = v[0] == '1';
		return MOE_OK;
	}
	return moe_fail(MOE_ERR_FORMAT, "case spec: %s=%s must be 0 or 1", key, v);
}

/* Wraps the enum parsers so that their message (valid names) is kept but the status is FORMAT. */
#define MOE_PARSE_ENUM(fn, v, dst)                                                  \
	do {                                                                        \
		__typeof__(*(dst)) tmp_;                                            \
		if (fn(v, &tmp_) != MOE_OK)                                         \
			return reformat_error();                                    \
		*(dst) = tmp_;                                                      \
	} while (0)

/* The enum parsers' message (it lists the valid names) under the FORMAT status; copied first,
 * since moe_fail writes the buffer moe_last_error() points to. */
static enum moe_status reformat_error(void)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s", moe_last_error());
	return moe_fail(MOE_ERR_FORMAT, "case spec: %s", msg);
}

static const char *const rsf_site_names[] = { "router", "output" };
static const char *const shared_names[] = { "none", "sum", "average" };

static enum moe_status parse_small_enum(const char *key, const char *v, const char *const *names, int n,
					int *out)
{
	for (int i = 0; i < n; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return MOE_OK;
		}
	}
	return moe_fail(MOE_ERR_FORMAT, "case spec: %s=%s is not one of %s%s%s%s%s", key, v, names[0],
			n > 1 ? ", " : "", n > 1 ? names[1] : "", n > 2 ? ", " : "", n > 2 ? names[2] : "");
}

static bool op_is(enum moe_op op, unsigned mask)
{
	return (mask >> op) & 1u;
}

static enum moe_status set_key(struct moe_vcase *c, const char *k, const char *v)
{
	const unsigned R = 1u << MOE_OP_ROUTE, N = 1u << MOE_OP_NORM,
		       Q = (1u << MOE_OP_QUANTIZE) | (1u << MOE_OP_DEQUANTIZE), X = 1u << MOE_OP_EXPERT,
		       L = 1u << MOE_OP_LAYER;
	const enum moe_op op = c->op;
	int tmp = 0;
	enum moe_status s;

	if (!strcmp(k, "seed")) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(v, &end, 0);
		if (errno || end == v || *end || v[0] == '-')
			return moe_fail(MOE_ERR_FORMAT, "case spec: seed=%s is not an unsigned integer", v);
		c->seed = x;
		return MOE_OK;
	}
	if (!strcmp(k, "gen")) {
		enum moe_vgen g;
		if (moe_vgen_parse(v, &g) != MOE_OK)
			return MOE_ERR_FORMAT;
		if (!op_is(op, gen_ops(g)))
			return moe_fail(MOE_ERR_FORMAT, "case spec: generator %s does not apply to op %s",
					v, moe_op_name(op));
		c->gen = g;
		return MOE_OK;
	}
	if (!strcmp(k, "scale"))
		return parse_f32(k, v, &c->scale);
	if (!strcmp(k, "T") && op_is(op, R | L | X))
		return parse_i64(k, v, 0, 1 << 20, &c->T);
	if (!strcmp(k, "M") && op == MOE_OP_EXPERT)
		return parse_i64(k, v, 0, 1 << 20, &c->T);
	if (!strcmp(k, "rows") && op_is(op, N | Q))
		return parse_i64(k, v, 0, 1 << 20, &c->T);
	if (op_is(op, R | L)) {
		struct moe_route_params *p = &c->route;
		if (!strcmp(k, "method")) {
			MOE_PARSE_ENUM(moe_routing_method_parse, v, &p->method);
			return MOE_OK;
		}
		if (!strcmp(k, "profile")) {
			MOE_PARSE_ENUM(moe_profile_parse, v, &p->profile);
			return MOE_OK;
		}
		if (!strcmp(k, "E"))
			return parse_i32(k, v, 1, 1 << 16, &p->num_experts);
		if (!strcmp(k, "K"))
			return parse_i32(k, v, 1, 1 << 16, &p->top_k);
		if (!strcmp(k, "G"))
			return parse_i32(k, v, 0, 1 << 16, &p->n_group);
		if (!strcmp(k, "TG"))
			return parse_i32(k, v, 0, 1 << 16, &p->topk_group);
		if (!strcmp(k, "renorm"))
			return parse_bool(k, v, &p->renormalize);
		if (!strcmp(k, "rsf"))
			return parse_f32(k, v, &p->routed_scaling_factor);
		if (!strcmp(k, "logits")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &p->logits_dtype);
			return MOE_OK;
		}
		if (!strcmp(k, "bias")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &p->bias_dtype);
			return MOE_OK;
		}
	}
	if (op == MOE_OP_NORM) {
		struct moe_norm_params *p = &c->norm;
		if (!strcmp(k, "kind")) {
			if ((s = parse_small_enum(k, v, (const char *const[]){ "layernorm", "rmsnorm" }, 2, &tmp)))
				return s;
			p->kind = (enum moe_norm_kind)tmp;
			return MOE_OK;
		}
		if (!strcmp(k, "cols"))
			return parse_i64(k, v, 0, 1 << 24, &p->cols);
		if (!strcmp(k, "eps"))
			return parse_f32(k, v, &p->eps);
		if (!strcmp(k, "in")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &p->in_dtype);
			return MOE_OK;
		}
		if (!strcmp(k, "w")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &p->weight_dtype);
			return MOE_OK;
		}
		if (!strcmp(k, "out")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &p->out_dtype);
			return MOE_OK;
		}
	}
	if (op_is(op, Q)) {
		struct moe_qtensor *q = &c->q;
		if (!strcmp(k, "dtype")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &q->dtype);
			return MOE_OK;
		}
		if (!strcmp(k, "scaling")) {
			MOE_PARSE_ENUM(moe_scaling_parse, v, &q->scaling);
			return MOE_OK;
		}
		if (!strcmp(k, "layout")) {
			MOE_PARSE_ENUM(moe_sf_layout_parse, v, &q->sf_layout);
			return MOE_OK;
		}
		if (!strcmp(k, "cols"))
			return parse_i64(k, v, 0, 1 << 24, &q->cols);
		if (!strcmp(k, "nanovf")) {
			bool b;
			if ((s = parse_bool(k, v, &b)))
				return s;
			q->flags = b ? MOE_Q_FP8_NAN_ON_OVERFLOW : 0;
			return MOE_OK;
		}
		if (!strcmp(k, "gs"))
			return parse_f32(k, v, &q->global_scale);
	}
	if (op_is(op, X | L)) {
		struct moe_expert_params *p = &c->expert;
		if (!strcmp(k, "H"))
			return parse_i64(k, v, 1, 1 << 20, &p->hidden);
		if (!strcmp(k, "I"))
			return parse_i64(k, v, 1, 1 << 20, &p->inter);
		if (!strcmp(k, "wdtype")) {
			MOE_PARSE_ENUM(moe_dtype_parse, v, &p->weight_dtype);
			return MOE_OK;
		}
		if (!strcmp(k, "wscaling")) {
			MOE_PARSE_ENUM(moe_scaling_parse, v, &p->weight_scaling);
			return MOE_OK;
		}
		if (!strcmp(k, "layout")) {
			MOE_PARSE_ENUM(moe_sf_layout_parse, v, &p->weight_sf_layout);
			return MOE_OK;
		}
		if (!strcmp(k, "act")) {
			MOE_PARSE_ENUM(moe_act_quant_parse, v, &p->act_quant);
			return MOE_OK;
		}
		if (!strcmp(k, "ags0"))
			return parse_f32(k, v, &p->act_global_scale[0]);
		if (!strcmp(k, "ags1"))
			return parse_f32(k, v, &p->act_global_scale[1]);
	}
	if (op == MOE_OP_LAYER) {
		if (!strcmp(k, "rsfsite")) {
			if ((s = parse_small_enum(k, v, rsf_site_names, 2, &tmp)))
				return s;
			c->rsf_site = (enum moe_rsf_site)tmp;
			return MOE_OK;
		}
		if (!strcmp(k, "shared")) {
			if ((s = parse_small_enum(k, v, shared_names, 3, &tmp)))
				return s;
			c->shared = (enum moe_shared_combine)tmp;
			return MOE_OK;
		}
		if (!strcmp(k, "SI"))
			return parse_i64(k, v, 0, 1 << 20, &c->shared_inter);
	}
	return moe_fail(MOE_ERR_FORMAT, "case spec: unknown key '%s' for op %s", k, moe_op_name(op));
}

enum moe_status moe_vcase_parse(const char *line, struct moe_vcase *c)
{
	char buf[1024], *save = NULL;
	if (!line || strlen(line) >= sizeof buf)
		return moe_fail(MOE_ERR_FORMAT, "case spec: line missing or longer than %zu characters",
				sizeof buf - 1);
	strcpy(buf, line);
	char *tok = strtok_r(buf, " \t\r\n", &save);
	enum moe_op op;
	if (!tok)
		return moe_fail(MOE_ERR_FORMAT, "case spec: empty line");
	if (moe_op_parse(tok, &op) != MOE_OK)
		return moe_fail(MOE_ERR_FORMAT, "case spec: '%s' is not an op (route, norm, quantize, "
				"dequantize, expert, layer)", tok);
	moe_vcase_init(c, op);
	while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || !eq[1])
			return moe_fail(MOE_ERR_FORMAT, "case spec: '%s' is not key=value", tok);
		*eq = '\0';
		enum moe_status s = set_key(c, tok, eq + 1);
		if (s != MOE_OK)
			return s;
	}
	c->norm.rows = c->T;
	c->q.rows = c->T;
	c->expert.tokens = c->T;
	return MOE_OK;
}

/* ---- printing ---- */

struct sb {
	char *p;
	size_t size, used;
};

static void sb_put(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	if (b->used >= b->size)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->used, b->size - b->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->used += (size_t)n;
}

static void put_route(struct sb *b, const struct moe_route_params *p)
{
	sb_put(b, " method=%s profile=%s E=%d K=%d", moe_routing_method_name(p->method),
	       moe_profile_name(p->profile), p->num_experts, p->top_k);
	if (p->n_group > 1)
		sb_put(b, " G=%d TG=%d", p->n_group, p->topk_group);
	if (p->method == MOE_ROUTE_SIGMOID_RENORM)
		sb_put(b, " renorm=%d", p->renormalize ? 1 : 0);
	if (p->routed_scaling_factor != 1.0f)
		sb_put(b, " rsf=%.9g", (double)p->routed_scaling_factor);
	if (p->logits_dtype != MOE_DTYPE_F32)
		sb_put(b, " logits=%s", moe_dtype_name(p->logits_dtype));
	if (p->bias_dtype != MOE_DTYPE_NONE)
		sb_put(b, " bias=%s", moe_dtype_name(p->bias_dtype));
}

static void put_expert(struct sb *b, const struct moe_expert_params *p)
{
	sb_put(b, " H=%" PRId64 " I=%" PRId64 " wdtype=%s", p->hidden, p->inter, moe_dtype_name(p->weight_dtype));
	if (p->weight_scaling != MOE_SCALING_NONE)
		sb_put(b, " wscaling=%s", moe_scaling_name(p->weight_scaling));
	if (p->weight_sf_layout != MOE_SF_LINEAR)
		sb_put(b, " layout=%s", moe_sf_layout_name(p->weight_sf_layout));
	if (p->act_quant != MOE_ACT_NONE)
		sb_put(b, " act=%s", moe_act_quant_name(p->act_quant));
	if (p->act_global_scale[0] != 0.0f)
		sb_put(b, " ags0=%.9g", (double)p->act_global_scale[0]);
	if (p->act_global_scale[1] != 0.0f)
		sb_put(b, " ags1=%.9g", (double)p->act_global_scale[1]);
}

char *moe_vcase_format(const struct moe_vcase *c, char *buf, size_t size)
{
	struct sb b = { buf, size, 0 };
	if (size)
		buf[0] = '\0';
	sb_put(&b, "%s", moe_op_name(c->op));
	switch (c->op) {
	case MOE_OP_ROUTE:
		put_route(&b, &c->route);
		sb_put(&b, " T=%" PRId64, c->T);
		break;
	case MOE_OP_NORM:
		sb_put(&b, " kind=%s rows=%" PRId64 " cols=%" PRId64 " eps=%.9g in=%s w=%s out=%s",
		       moe_norm_kind_name(c->norm.kind), c->T, c->norm.cols, (double)c->norm.eps,
		       moe_dtype_name(c->norm.in_dtype), moe_dtype_name(c->norm.weight_dtype),
		       moe_dtype_name(c->norm.out_dtype));
		break;
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE:
		sb_put(&b, " dtype=%s scaling=%s", moe_dtype_name(c->q.dtype), moe_scaling_name(c->q.scaling));
		if (c->q.sf_layout != MOE_SF_LINEAR)
			sb_put(&b, " layout=%s", moe_sf_layout_name(c->q.sf_layout));
		sb_put(&b, " rows=%" PRId64 " cols=%" PRId64, c->T, c->q.cols);
		if (c->q.flags & MOE_Q_FP8_NAN_ON_OVERFLOW)
			sb_put(&b, " nanovf=1");
		if (c->q.global_scale != 0.0f)
			sb_put(&b, " gs=%.9g", (double)c->q.global_scale);
		break;
	case MOE_OP_EXPERT:
		sb_put(&b, " M=%" PRId64, c->T);
		put_expert(&b, &c->expert);
		break;
	case MOE_OP_LAYER:
		put_route(&b, &c->route);
		sb_put(&b, " T=%" PRId64, c->T);
		put_expert(&b, &c->expert);
		if (c->rsf_site != MOE_RSF_AT_ROUTER)
			sb_put(&b, " rsfsite=%s", rsf_site_names[c->rsf_site]);
		if (c->shared != MOE_SHARED_NONE)
			sb_put(&b, " shared=%s SI=%" PRId64, shared_names[c->shared], c->shared_inter);
		break;
	case MOE_OP_COUNT:
		break;
	}
	sb_put(&b, " gen=%s", moe_vgen_name(c->gen));
	if (c->scale != 0.0f)
		sb_put(&b, " scale=%.9g", (double)c->scale);
	sb_put(&b, " seed=%" PRIu64, c->seed);
	return buf;
}

const void *moe_vcase_problem(const struct moe_vcase *c, struct moe_layer_params *tmp)
{
	switch (c->op) {
	case MOE_OP_ROUTE: return &c->route;
	case MOE_OP_NORM: return &c->norm;
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: return &c->q;
	case MOE_OP_EXPERT: return &c->expert;
	case MOE_OP_LAYER:
		*tmp = (struct moe_layer_params){ .route = c->route, .expert = c->expert,
						  .rsf_site = c->rsf_site, .shared = c->shared,
						  .shared_inter = c->shared_inter, .tokens = c->T };
		tmp->expert.tokens = 0;
		return tmp;
	case MOE_OP_COUNT: break;
	}
	return NULL;
}

/* Format-only weights for validation: the validators want non-NULL arrays and an NVFP4 global
 * scale, which a format check does not care about. */
static struct moe_expert_weights dummy_weights(const struct moe_expert_params *p, int64_t inter)
{
	static unsigned char dummy[64];
	struct moe_qtensor g = { p->weight_dtype, p->weight_scaling, p->weight_sf_layout, 0, inter, p->hidden,
				 dummy, dummy, 1.0f };
	struct moe_qtensor d = g;
	d.rows = p->hidden;
	d.cols = inter;
	return (struct moe_expert_weights){ g, g, d };
}

enum moe_status moe_vcase_validate(const struct moe_vcase *c)
{
	static unsigned char dummy[64];
	if (c->T < 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: rows/tokens=%" PRId64 " must be >= 0",
				moe_op_name(c->op), c->T);
	switch (c->op) {
	case MOE_OP_ROUTE: return moe_route_validate(&c->route);
	case MOE_OP_NORM: return moe_norm_validate(&c->norm);
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: {
		struct moe_qtensor q = c->q;
		q.rows = c->T;
		q.data = q.scales = dummy;
		return moe_qtensor_validate(&q);
	}
	case MOE_OP_EXPERT: {
		struct moe_expert_weights w = dummy_weights(&c->expert, c->expert.inter);
		struct moe_expert_params p = c->expert;
		p.tokens = c->T;
		return moe_expert_validate(&p, &w);
	}
	case MOE_OP_LAYER: {
		struct moe_layer_params lp;
		moe_vcase_problem(c, &lp);
		if (c->route.num_experts < 1 || c->route.num_experts > (1 << 16))
			return moe_route_validate(&c->route);
		struct moe_expert_weights *ew = malloc(sizeof *ew * (size_t)c->route.num_experts);
		if (!ew)
			return moe_fail(MOE_ERR_NOMEM, "layer: no memory to validate %d experts", c->route.num_experts);
		for (int32_t e = 0; e < c->route.num_experts; e++)
			ew[e] = dummy_weights(&c->expert, c->expert.inter);
		struct moe_expert_weights sh = dummy_weights(&c->expert, c->shared_inter > 0 ? c->shared_inter : 1);
		struct moe_layer_weights lw = { ew, c->shared != MOE_SHARED_NONE ? &sh : NULL };
		enum moe_status s = moe_layer_validate(&lp, &lw);
		free(ew);
		return s;
	}
	case MOE_OP_COUNT: break;
	}
	return moe_fail(MOE_ERR_INVALID_ARG, "verify: op %d out of range", (int)c->op);
}

/* ---- lists and files ---- */

enum moe_status moe_vcase_push(struct moe_vcase_list *l, const struct moe_vcase *c)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct moe_vcase *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return moe_fail(MOE_ERR_NOMEM, "verify: no memory for %zu cases", cap);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *c;
	return MOE_OK;
}

enum moe_status moe_vcase_push_valid(struct moe_vcase_list *l, const struct moe_vcase *c)
{
	return moe_vcase_validate(c) == MOE_OK ? moe_vcase_push(l, c) : MOE_OK;
}

void moe_vcase_list_free(struct moe_vcase_list *l)
{
	free(l->v);
	*l = (struct moe_vcase_list){ 0 };
}

/* The whole of a --cases file, refused unless it is a regular file of at most MOE_CASES_MAX_BYTES
 * holding no NUL byte: /dev/zero once looped forever (fgets reads NULs as empty lines), a FIFO
 * blocks, a folder reads as empty. O_NONBLOCK keeps open() of a FIFO from waiting for a writer. */
#define MOE_CASES_MAX_BYTES (64u << 20)

static enum moe_status read_cases_text(const char *path, char **text, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return moe_fail(MOE_ERR_IO, "verify --cases: cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		const int err = errno;
		close(fd);
		return moe_fail(MOE_ERR_IO, "verify --cases: cannot stat '%s': %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return moe_fail(MOE_ERR_IO, "verify --cases: '%s' is not a regular file (a FIFO, device, folder or "
				"terminal); give a file of case specs", path);
	}
	if ((uint64_t)st.st_size > MOE_CASES_MAX_BYTES) {
		close(fd);
		return moe_fail(MOE_ERR_FORMAT, "verify --cases: '%s' is %lld bytes, more than the %u a cases file "
				"may hold", path, (long long)st.st_size, MOE_CASES_MAX_BYTES);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	if (!buf) {
		close(fd);
		return moe_fail(MOE_ERR_NOMEM, "verify --cases: no memory for the %lld bytes of '%s'",
				(long long)st.st_size, path);
	}
	/* at most the size fstat gave: a file growing meanwhile is read as it was */
	while (n < (size_t)st.st_size) {
		const ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			const int err = errno;
			free(buf);
			close(fd);
			return moe_fail(MOE_ERR_IO, "verify --cases: cannot read '%s': %s", path, strerror(err));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	const char *nul = memchr(buf, '\0', n);
	if (nul) {
		const size_t at = (size_t)(nul - buf);
		free(buf);
		return moe_fail(MOE_ERR_FORMAT, "verify --cases: '%s' holds a NUL byte at offset %zu: not a text "
				"file of case specs", path, at);
	}
	*text = buf;
	*len = n;
	return MOE_OK;
}

enum moe_status moe_cases_read(const char *path, struct moe_vcase_list *out)
{
	char *text = NULL, line[1100];
	size_t len = 0, pos = 0, found = 0;
	int lineno = 0;
	enum moe_status s = read_cases_text(path, &text, &len);
	if (s != MOE_OK)
		return s;
	while (pos < len && s == MOE_OK) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		const size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		if (n > sizeof line - 2) {
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: line longer than %zu characters", path, lineno,
				     sizeof line - 2);
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		if (strspn(line, " \t\r") == strlen(line))
			continue;
		struct moe_vcase c;
		s = moe_vcase_parse(line, &c);
		if (s == MOE_OK && moe_vcase_validate(&c) != MOE_OK)
			s = MOE_ERR_FORMAT;
		if (s != MOE_OK) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", moe_last_error());
			s = moe_fail(MOE_ERR_FORMAT, "%s:%d: %s", path, lineno, msg);
			break;
		}
		snprintf(c.group, sizeof c.group, "cases-file");
		if ((s = moe_vcase_push(out, &c)) == MOE_OK)
			found++;
	}
	free(text);
	if (s == MOE_OK && found == 0)
		s = moe_fail(MOE_ERR_FORMAT, "verify --cases: '%s' holds no case (%d line(s), only blank lines and "
			     "comments): nothing would be verified", path, lineno);
	return s;
}
