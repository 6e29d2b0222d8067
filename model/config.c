/* config.json of model_type "cohere2_moe" -> struct moe_model_config (docs/cohere2-moe.md).
 *
 * Defaults are the Hugging Face ones the spec lists; where the spec names a field without a default
 * (num_key_value_heads, the MoE fields) this file uses: num_key_value_heads = num_attention_heads
 * (as every HF config of the Cohere family does), prefix_dense_intermediate_size = intermediate_size,
 * first_k_dense_replace 0, max_position_embeddings 8192, and the public Command A+ MoE shape:
 * num_experts 128, num_experts_per_tok 8, num_shared_experts 1, "average", "sigmoid",
 * norm_topk_prob false.
 * layer_types / mlp_layer_types: taken from the file when listed, else derived (spec); when
 * mlp_layer_types is listed, its dense prefix length plays first_k_dense_replace's part in the
 * layer_types derivation. RoPE is on for sliding layers and, when
 * prefix_dense_sliding_window_pattern == 1, for the dense layers.
 * rope_theta may also come as rope_parameters.rope_theta (transformers 5); a rope_type or
 * rope_scaling other than "default" is refused (MOE_ERR_UNSUPPORTED). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

struct cfg_ctx {
	json_t *root;
	const char *where;
};

static enum moe_status bad_type(const struct cfg_ctx *c, const char *field, const char *want)
{
	return moe_fail(MOE_ERR_FORMAT, "%s: field %s must be %s", c->where, field, want);
}

static enum moe_status get_i64(const struct cfg_ctx *c, const char *field, int64_t def, int64_t lo, int64_t hi,
			       int64_t *out)
{
	json_t *v = json_object_get(c->root, field);
	if (!v || json_is_null(v)) {
		*out = def;
		return MOE_OK;
	}
	if (!json_is_integer(v))
		return bad_type(c, field, "an integer");
	int64_t x = json_integer_value(v);
	if (x < lo || x > hi)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field %s = %lld out of range [%lld, %lld]", c->where, field,
				(long long)x, (long long)lo, (long long)hi);
	*out = x;
	return MOE_OK;
}

static enum moe_status get_f64(const struct cfg_ctx *c, const char *field, double def, bool *present, double *out)
{
	json_t *v = json_object_get(c->root, field);
	if (present)
		*present = v && !json_is_null(v);
	if (!v || json_is_null(v)) {
		*out = def;
		return MOE_OK;
	}
	if (!json_is_number(v))
		return bad_type(c, field, "a number");
	*out = json_number_value(v);
	if (!isfinite(*out))
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field %s is not finite", c->where, field);
	return MOE_OK;
}

static enum moe_status get_bool(const struct cfg_ctx *c, const char *field, bool def, bool *out)
{
	json_t *v = json_object_get(c->root, field);
	if (!v || json_is_null(v)) {
		*out = def;
		return MOE_OK;
	}
	if (!json_is_boolean(v))
		return bad_type(c, field, "true or false");
	*out = json_is_true(v);
	return MOE_OK;
}

/* A string field one of `names` (n of them); *idx its index. */
static enum moe_status get_enum(const struct cfg_ctx *c, const char *field, const char *const *names, int n,
				int def, enum moe_status unknown, int *idx)
{
	json_t *v = json_object_get(c->root, field);
	if (!v || json_is_null(v)) {
		*idx = def;
		return MOE_OK;
	}
	if (!json_is_string(v))
		return bad_type(c, field, "a string");
	for (int i = 0; i < n; i++)
		if (strcmp(json_string_value(v), names[i]) == 0) {
			*idx = i;
			return MOE_OK;
		}
	char list[256] = "";
	for (int i = 0; i < n; i++) {
		strncat(list, i ? ", \"" : "\"", sizeof list - strlen(list) - 1);
		strncat(list, names[i], sizeof list - strlen(list) - 1);
		strncat(list, "\"", sizeof list - strlen(list) - 1);
	}
	return moe_fail(unknown, "%s: field %s = \"%s\" is not supported (%s)", c->where, field, json_string_value(v),
			list);
}

/* A list of strings, each "a" (-> true) or "b" (-> false); *n_out its length, 0 when absent. */
static enum moe_status get_pattern(const struct cfg_ctx *c, const char *field, const char *a, const char *b,
				   bool *out, int32_t *n_out)
{
	json_t *v = json_object_get(c->root, field);
	*n_out = 0;
	if (!v || json_is_null(v))
		return MOE_OK;
	if (!json_is_array(v))
		return bad_type(c, field, "a list of strings");
	size_t n = json_array_size(v);
	if (n == 0 || n > MOE_MODEL_MAX_LAYERS)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field %s has %zu entries (1..%d)", c->where, field, n,
				MOE_MODEL_MAX_LAYERS);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e))
			return moe_fail(MOE_ERR_FORMAT, "%s: field %s[%zu] must be a string", c->where, field, i);
		if (strcmp(json_string_value(e), a) == 0)
			out[i] = true;
		else if (strcmp(json_string_value(e), b) == 0)
			out[i] = false;
		else
			return moe_fail(MOE_ERR_INVALID_ARG, "%s: field %s[%zu] = \"%s\" (expected \"%s\" or \"%s\")",
					c->where, field, i, json_string_value(e), a, b);
	}
	*n_out = (int32_t)n;
	return MOE_OK;
}

static enum moe_status check_rope(const struct cfg_ctx *c, double *theta)
{
	json_t *rp = json_object_get(c->root, "rope_parameters");
	json_t *rs = json_object_get(c->root, "rope_scaling");
	const char *names[2] = {"rope_parameters", "rope_scaling"};
	json_t *objs[2] = {rp, rs};
	for (int i = 0; i < 2; i++) {
		json_t *o = objs[i];
		if (!o || json_is_null(o))
			continue;
		if (!json_is_object(o))
			return bad_type(c, names[i], "an object");
		json_t *t = json_object_get(o, "rope_type");
		if (!t)
			t = json_object_get(o, "type");
		if (t && !(json_is_string(t) && strcmp(json_string_value(t), "default") == 0))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field %s.rope_type = %s is not supported (only \"default\")",
					c->where, names[i], json_is_string(t) ? json_string_value(t) : "(not a string)");
		json_t *th = json_object_get(o, "rope_theta");
		if (th) {
			if (!json_is_number(th) || !(json_number_value(th) > 0))
				return moe_fail(MOE_ERR_INVALID_ARG, "%s: field %s.rope_theta must be a positive number",
						c->where, names[i]);
			*theta = json_number_value(th);
		}
	}
	return MOE_OK;
}

#define TRY(x)                                                                                                  \
	do {                                                                                                    \
		enum moe_status s_ = (x);                                                                       \
		if (s_ != MOE_OK)                                                                               \
			return s_;                                                                              \
	} while (0)

static enum moe_status parse(const struct cfg_ctx *c, struct moe_model_config *o)
{
	const int64_t BIG = (int64_t)1 << 40;
	json_t *mt = json_object_get(c->root, "model_type");
	if (!json_is_string(mt))
		return moe_fail(MOE_ERR_FORMAT, "%s: field model_type is missing or not a string", c->where);
	if (strcmp(json_string_value(mt), "cohere2_moe") != 0)
		return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field model_type = \"%s\" is not supported (only \"cohere2_moe\")",
				c->where, json_string_value(mt));
	json_t *act = json_object_get(c->root, "hidden_act");
	if (act && !json_is_null(act)) {
		if (!json_is_string(act))
			return bad_type(c, "hidden_act", "a string");
		if (strcmp(json_string_value(act), "silu") != 0)
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field hidden_act = \"%s\" is not supported (only \"silu\")",
					c->where, json_string_value(act));
	}
	int64_t v;
	TRY(get_i64(c, "vocab_size", 256000, 1, BIG, &o->vocab_size));
	TRY(get_i64(c, "hidden_size", 8192, 1, BIG, &o->hidden_size));
	TRY(get_i64(c, "intermediate_size", 22528, 1, BIG, &o->intermediate_size));
	TRY(get_i64(c, "prefix_dense_intermediate_size", o->intermediate_size, 1, BIG,
		    &o->prefix_dense_intermediate_size));
	TRY(get_i64(c, "num_hidden_layers", 40, 1, MOE_MODEL_MAX_LAYERS, &v));
	o->num_hidden_layers = (int32_t)v;
	TRY(get_i64(c, "num_attention_heads", 64, 1, 1 << 20, &v));
	o->num_attention_heads = (int32_t)v;
	TRY(get_i64(c, "num_key_value_heads", o->num_attention_heads, 1, 1 << 20, &v));
	o->num_key_value_heads = (int32_t)v;
	TRY(get_i64(c, "head_dim", 128, 1, 1 << 20, &v));
	o->head_dim = (int32_t)v;
	if (o->num_attention_heads % o->num_key_value_heads != 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field num_attention_heads = %d is not a multiple of "
				"num_key_value_heads = %d", c->where, o->num_attention_heads, o->num_key_value_heads);
	if (o->head_dim % 2 != 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field head_dim = %d must be even (RoPE rotates pairs)", c->where,
				o->head_dim);

	double ln_eps, rms_eps;
	bool has_rms;
	TRY(get_f64(c, "layer_norm_eps", 1e-5, NULL, &ln_eps));
	TRY(get_f64(c, "rms_norm_eps", 0.0, &has_rms, &rms_eps));
	o->norm = has_rms ? MOE_NORM_RMSNORM : MOE_NORM_LAYERNORM;
	o->norm_eps = (float)(has_rms ? rms_eps : ln_eps);
	if (!(o->norm_eps > 0.0f))
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field %s = %g must be > 0", c->where,
				has_rms ? "rms_norm_eps" : "layer_norm_eps", has_rms ? rms_eps : ln_eps);
	double d;
	TRY(get_f64(c, "logit_scale", 0.0625, NULL, &d));
	o->logit_scale = (float)d;
	TRY(get_bool(c, "tie_word_embeddings", true, &o->tie_word_embeddings));
	TRY(get_f64(c, "rope_theta", 10000.0, NULL, &o->rope_theta));
	TRY(check_rope(c, &o->rope_theta));
	if (!(o->rope_theta > 0))
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field rope_theta = %g must be > 0", c->where, o->rope_theta);
	TRY(get_i64(c, "sliding_window", 4096, 1, BIG, &o->sliding_window));
	TRY(get_i64(c, "max_position_embeddings", 8192, 1, BIG, &o->max_position_embeddings));
	int64_t swp, pswp, fk;
	TRY(get_i64(c, "sliding_window_pattern", 4, 1, 1 << 20, &swp));
	TRY(get_i64(c, "prefix_dense_sliding_window_pattern", 1, 1, 1 << 20, &pswp));
	TRY(get_i64(c, "first_k_dense_replace", 0, 0, o->num_hidden_layers, &fk));

	TRY(get_i64(c, "num_experts", 128, 1, 1 << 20, &v));
	o->num_experts = (int32_t)v;
	TRY(get_i64(c, "num_experts_per_tok", 8, 1, 1 << 20, &v));
	o->num_experts_per_tok = (int32_t)v;
	if (o->num_experts_per_tok > o->num_experts)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field num_experts_per_tok = %d exceeds num_experts = %d", c->where,
				o->num_experts_per_tok, o->num_experts);
	TRY(get_i64(c, "num_shared_experts", 1, 0, 1 << 20, &v));
	o->num_shared_experts = (int32_t)v;
	static const char *const combine[] = {"average", "sum"};
	static const char *const select[] = {"softmax", "sigmoid"};
	int idx;
	TRY(get_enum(c, "shared_expert_combination_strategy", combine, 2, 0, MOE_ERR_UNSUPPORTED, &idx));
	o->shared_combine = o->num_shared_experts == 0 ? MOE_SHARED_NONE : idx == 0 ? MOE_SHARED_AVERAGE : MOE_SHARED_SUM;
	TRY(get_enum(c, "expert_selection_fn", select, 2, 1, MOE_ERR_UNSUPPORTED, &idx));
	o->selection = idx == 0 ? MOE_MODEL_SELECT_SOFTMAX : MOE_MODEL_SELECT_SIGMOID;
	TRY(get_bool(c, "norm_topk_prob", false, &o->norm_topk_prob));

	const int32_t L = o->num_hidden_layers;
	int32_t n_lt, n_mlp;
	TRY(get_pattern(c, "layer_types", "sliding_attention", "full_attention", o->sliding, &n_lt));
	if (n_lt && n_lt != L)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field layer_types has %d entries, num_hidden_layers = %d",
				c->where, n_lt, L);
	TRY(get_pattern(c, "mlp_layer_types", "dense", "sparse", o->dense, &n_mlp));
	if (n_mlp && n_mlp != L)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: field mlp_layer_types has %d entries, num_hidden_layers = %d",
				c->where, n_mlp, L);
	int32_t F = (int32_t)fk;
	if (n_mlp) {
		int32_t prefix = 0;
		while (prefix < L && o->dense[prefix])
			prefix++;
		if (json_object_get(c->root, "first_k_dense_replace") && fk != prefix)
			return moe_fail(MOE_ERR_INVALID_ARG, "%s: field first_k_dense_replace = %lld contradicts "
					"mlp_layer_types (dense prefix of %d layers)", c->where, (long long)fk, prefix);
		F = prefix;
	} else {
		for (int32_t i = 0; i < L; i++)
			o->dense[i] = i < F;
	}
	if (!n_lt)
		for (int32_t i = 0; i < L; i++)
			o->sliding[i] = i < F ? (i + 1) % pswp != 0 : (i - F + 1) % swp != 0;
	for (int32_t i = 0; i < L; i++)
		o->rope[i] = o->sliding[i] || (o->dense[i] && pswp == 1);
	for (int32_t i = L; i < MOE_MODEL_MAX_LAYERS; i++)
		o->sliding[i] = o->dense[i] = o->rope[i] = false;
	if ((int64_t)o->num_attention_heads * o->head_dim > BIG)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: num_attention_heads * head_dim too large", c->where);
	return MOE_OK;
}

enum moe_status moe_model_config_parse(const char *json, size_t len, const char *where, struct moe_model_config *out)
{
	if (!json || !out)
		return moe_fail(MOE_ERR_INVALID_ARG, "model config: NULL argument");
	struct cfg_ctx c = {.where = where ? where : "config.json"};
	json_error_t err;
	c.root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	if (!c.root)
		return moe_fail(MOE_ERR_FORMAT, "%s: not valid JSON (line %d column %d: %s)", c.where, err.line, err.column,
				err.text);
	struct moe_model_config cfg;
	memset(&cfg, 0, sizeof cfg);
	enum moe_status s = json_is_object(c.root) ? parse(&c, &cfg)
						   : moe_fail(MOE_ERR_FORMAT, "%s: not a JSON object", c.where);
	json_decref(c.root);
	if (s == MOE_OK)
		*out = cfg;
	return s;
}
