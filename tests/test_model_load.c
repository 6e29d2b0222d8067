/* Unit tests of the checkpoint loader (model/checkpoint.c, safetensors_map.c) and the presets
 * (model/init.c). Every tiny preset is written, loaded, and each tensor compared with values this
 * file regenerates from the formula in init.c's comment (its own FNV-1a and draw, the stored
 * rounding, and for quantized presets the reference codec applied to the regenerated values);
 * fused and per-expert layouts must load to identical experts; conversions (--weights) give
 * experts of the requested format; and every bad-file case (truncated, malformed or lying header,
 * overlap, unknown or unsupported dtype, wrong shape, missing tensor or shard, non-zero bias,
 * unknown model_type or quantization) is refused with its status and a message naming the file
 * and the tensor, nothing leaked (run under ASan). */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "moe/rng.h"

#define SEED 1234567u

static char dir[] = "/tmp/moe_test_model_XXXXXX";

static void make_dir(void)
{
	strcpy(dir, "/tmp/moe_test_model_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];
	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static const char *in_dir(const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return p;
}

/* ---- regenerated values (init.c's documented formula, written again here) ---- */

enum vk { NORM, EMBED, LIN };

static void regen(const char *name, enum vk k, int64_t rows, int64_t cols, float *out)
{
	uint64_t st = SEED;
	uint64_t h = 14695981039346656037ull;
	for (const char *c = name; *c; c++) {
		h ^= (unsigned char)*c;
		h *= 1099511628211ull;
	}
	st ^= h;
	const double scale = k == LIN ? sqrt(3.0 / (double)cols) : sqrt(3.0);
	for (int64_t i = 0; i < rows * cols; i++) {
		double u = (double)(moe_splitmix64(&st) >> 40) / 16777216.0;
		out[i] = (float)(k == NORM ? 1.0 + 0.1 * (2.0 * u - 1.0) : (2.0 * u - 1.0) * scale);
	}
}

enum stored { S_F32, S_BF16, S_F16, S_FP8, S_NVFP4, S_NVFP4_MO };

/* The value the checkpoint should hold after its storage rounding, as fp32. */
static void expected(const char *name, enum vk k, int64_t rows, int64_t cols, enum stored s, float *out)
{
	regen(name, k, rows, cols, out);
	const int64_t n = rows * cols;
	if (s == S_BF16)
		for (int64_t i = 0; i < n; i++)
			out[i] = moe_round_bf16(out[i]);
	if (s == S_FP8 || s == S_NVFP4 || s == S_NVFP4_MO) {
		struct moe_qtensor q = {.rows = rows, .cols = cols};
		q.dtype = s == S_FP8 ? MOE_DTYPE_FP8E4M3 : MOE_DTYPE_NVFP4;
		q.scaling = s == S_FP8 ? MOE_SCALING_BLOCK_128x128 : MOE_SCALING_NVFP4;
		ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
		moe_quantize__ref(out, &q);
		moe_dequantize__ref(&q, out);
		moe_qtensor_free(&q);
	}
}

/* Compares a loaded tensor (any format) with the expected values. F16 and ModelOpt NVFP4 (whose
 * global scale goes through 1/(1/gs)) within a relative 2^-11 / 1e-6; everything else exactly. */
static void check_tensor(const char *name, const struct moe_qtensor *q, enum vk k, int64_t rows, int64_t cols,
			 enum stored s)
{
	ck_assert_msg(q->rows == rows && q->cols == cols, "%s: [%lld][%lld]", name, (long long)q->rows,
		      (long long)q->cols);
	float *want = malloc((size_t)(rows * cols) * sizeof *want), *got = malloc((size_t)(rows * cols) * sizeof *got);
	expected(name, k, rows, cols, s, want);
	moe_dequantize__ref(q, got);
	for (int64_t i = 0; i < rows * cols; i++) {
		double tol = s == S_F16 ? fabs(want[i]) * 0x1p-11 + 0x1p-24 : s == S_NVFP4_MO ? fabs(want[i]) * 1e-6 : 0;
		ck_assert_msg(fabs((double)got[i] - (double)want[i]) <= tol, "%s[%lld]: got %.9g want %.9g", name,
			      (long long)i, (double)got[i], (double)want[i]);
	}
	free(want);
	free(got);
}

struct tiny {
	const char *preset;
	enum stored dense, experts;
	bool tied;
};

static void check_mlp(const struct moe_model *m, const char *prefix, const struct moe_expert_weights *w, int64_t I,
		      enum stored s)
{
	char name[256];
	const int64_t H = m->cfg.hidden_size;
	static const char *const part[3] = {"gate_proj", "up_proj", "down_proj"};
	const struct moe_qtensor *q[3] = {&w->gate, &w->up, &w->down};
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "%s.%s.weight", prefix, part[i]);
		check_tensor(name, q[i], LIN, i < 2 ? I : H, i < 2 ? H : I, s);
	}
	struct moe_expert_params p = m->expert_params;
	p.inter = I;
	ck_assert_msg(moe_expert_validate(&p, w) == MOE_OK, "%s: %s", prefix, moe_last_error());
}

static void check_model(const struct moe_model *m, const struct tiny *t)
{
	const struct moe_model_config *c = &m->cfg;
	const int64_t H = c->hidden_size, Dq = (int64_t)c->num_attention_heads * c->head_dim,
		      Dkv = (int64_t)c->num_key_value_heads * c->head_dim;
	char name[256];
	check_tensor("model.embed_tokens.weight", &m->embed, EMBED, c->vocab_size, H, t->dense);
	check_tensor("model.norm.weight", &m->final_norm, NORM, 1, H, t->dense);
	if (t->tied)
		ck_assert_ptr_eq(m->lm_head.data, m->embed.data);
	else
		check_tensor("lm_head.weight", &m->lm_head, EMBED, c->vocab_size, H, t->dense);
	for (int32_t l = 0; l < c->num_hidden_layers; l++) {
		const struct moe_model_layer *ly = &m->layers[l];
		snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
		check_tensor(name, &ly->input_norm, NORM, 1, H, t->dense);
		static const char *const proj[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
		const struct moe_qtensor *pq[4] = {&ly->q_proj, &ly->k_proj, &ly->v_proj, &ly->o_proj};
		const int64_t rows[4] = {Dq, Dkv, Dkv, H}, cols[4] = {H, H, H, Dq};
		for (int i = 0; i < 4; i++) {
			snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", l, proj[i]);
			check_tensor(name, pq[i], LIN, rows[i], cols[i], t->dense);
		}
		if (c->dense[l]) {
			snprintf(name, sizeof name, "model.layers.%d.mlp", l);
			check_mlp(m, name, &ly->dense_mlp, c->prefix_dense_intermediate_size, t->dense);
			continue;
		}
		snprintf(name, sizeof name, "model.layers.%d.mlp.gate.weight", l);
		check_tensor(name, &ly->router, LIN, c->num_experts, H, t->dense);
		for (int32_t e = 0; e < c->num_experts; e++) {
			snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d", l, e);
			check_mlp(m, name, &ly->experts[e], c->intermediate_size, t->experts);
		}
		if (c->num_shared_experts) {
			snprintf(name, sizeof name, "model.layers.%d.mlp.shared_experts", l);
			check_mlp(m, name, &ly->shared, c->intermediate_size * c->num_shared_experts, t->experts);
		}
	}
}

static const struct tiny tinies[] = {
	{"tiny-ln-softmax-avg", S_BF16, S_BF16, true},
	{"tiny-ln-softmax-avg-fused", S_BF16, S_BF16, true},
	{"tiny-rms-sigmoid-sum", S_F32, S_F32, true},
	{"tiny-sharded-f16", S_F16, S_F16, false},
	{"tiny-fp8", S_BF16, S_FP8, true},
	{"tiny-nvfp4-ct", S_BF16, S_NVFP4, true},
	{"tiny-nvfp4-modelopt", S_BF16, S_NVFP4_MO, true},
};

static struct moe_model *load(const struct moe_model_load_options *o)
{
	struct moe_model *m = NULL;
	moe_clear_error();
	enum moe_status s = moe_model_load(dir, o, &m);
	ck_assert_msg(s == MOE_OK, "load %s: %s", dir, moe_last_error());
	return m;
}

START_TEST(preset_round_trip)
{
	const struct tiny *t = &tinies[_i];
	make_dir();
	ck_assert_msg(moe_model_init(dir, t->preset, SEED) == MOE_OK, "%s", moe_last_error());
	/* dense F32 so the comparison sees the stored values without a second rounding */
	struct moe_model_load_options o = {.weights = MOE_MODEL_WEIGHTS_AS_STORED, .dense_dtype = MOE_DTYPE_F32};
	if (t->experts == S_NVFP4 || t->experts == S_NVFP4_MO)
		o.act_quant = MOE_ACT_NVFP4;
	struct moe_model *m = load(&o);
	check_model(m, t);
	if (t->experts == S_NVFP4 || t->experts == S_NVFP4_MO) {
		/* the assumed activation amax 8 of init.c: encode scale 448*6/8 = 336 */
		ck_assert(fabsf(m->layers[0].act_global_scale[0] - 336.0f) <= 336.0f * 1e-6f);
		ck_assert(fabsf(m->layers[0].act_global_scale[1] - 336.0f) <= 336.0f * 1e-6f);
		ck_assert_int_eq(m->expert_params.weight_dtype, MOE_DTYPE_NVFP4);
	}
	if (t->experts == S_FP8)
		ck_assert_int_eq(m->expert_params.weight_scaling, MOE_SCALING_BLOCK_128x128);
	moe_model_free(m);
	/* the default dense dtype BF16 loads too, and max_layers cuts the model */
	o = (struct moe_model_load_options){.max_layers = 1};
	m = load(&o);
	ck_assert_int_eq(m->cfg.num_hidden_layers, 1);
	ck_assert_int_eq(m->embed.dtype, MOE_DTYPE_BF16);
	ck_assert_int_eq(m->layers[0].input_norm.dtype, MOE_DTYPE_F32);
	moe_model_free(m);
	remove_dir();
}
END_TEST

START_TEST(fused_equals_per_expert)
{
	struct moe_model_load_options o = {.dense_dtype = MOE_DTYPE_F32};
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-ln-softmax-avg", SEED), MOE_OK);
	struct moe_model *a = load(&o);
	remove_dir();
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-ln-softmax-avg-fused", SEED), MOE_OK);
	struct moe_model *b = load(&o);
	ck_assert(access(in_dir("model.safetensors"), F_OK) == 0);
	for (int32_t l = 0; l < a->cfg.num_hidden_layers; l++) {
		if (a->cfg.dense[l])
			continue;
		for (int32_t e = 0; e < a->cfg.num_experts; e++) {
			const struct moe_qtensor *qa[3] = {&a->layers[l].experts[e].gate, &a->layers[l].experts[e].up,
							   &a->layers[l].experts[e].down};
			const struct moe_qtensor *qb[3] = {&b->layers[l].experts[e].gate, &b->layers[l].experts[e].up,
							   &b->layers[l].experts[e].down};
			for (int i = 0; i < 3; i++) {
				ck_assert_int_eq(qa[i]->dtype, qb[i]->dtype);
				ck_assert(qa[i]->rows == qb[i]->rows && qa[i]->cols == qb[i]->cols);
				ck_assert(memcmp(qa[i]->data, qb[i]->data, moe_qtensor_data_bytes(qa[i])) == 0);
			}
		}
	}
	moe_model_free(a);
	moe_model_free(b);
	remove_dir();
}
END_TEST

START_TEST(convert_weights)
{
	static const struct {
		enum moe_model_weights w;
		enum moe_dtype dt;
		enum moe_scaling sc;
		enum stored s;
	} cv[] = {
		{MOE_MODEL_WEIGHTS_F32, MOE_DTYPE_F32, MOE_SCALING_NONE, S_BF16},
		{MOE_MODEL_WEIGHTS_FP8, MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, S_FP8},
		{MOE_MODEL_WEIGHTS_NVFP4, MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, S_NVFP4},
		{MOE_MODEL_WEIGHTS_MXFP4, MOE_DTYPE_MXFP4, MOE_SCALING_MX, S_F32},
	};
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-ln-softmax-avg", SEED), MOE_OK);
	for (size_t i = 0; i < sizeof cv / sizeof *cv; i++) {
		struct moe_model_load_options o = {.weights = cv[i].w};
		struct moe_model *m = load(&o);
		ck_assert_int_eq(m->expert_params.weight_dtype, cv[i].dt);
		ck_assert_int_eq(m->expert_params.weight_scaling, cv[i].sc);
		const struct moe_expert_weights *w = &m->layers[1].experts[3];
		struct moe_expert_params p = m->expert_params;
		ck_assert_msg(moe_expert_validate(&p, w) == MOE_OK, "%s", moe_last_error());
		p.inter = m->cfg.prefix_dense_intermediate_size;
		ck_assert_msg(moe_expert_validate(&p, &m->layers[0].dense_mlp) == MOE_OK, "dense MLP: %s", moe_last_error());
		if (cv[i].s != S_F32) {
			/* quantized from the bf16-stored values: regenerate, round to bf16, quantize */
			int64_t I = m->cfg.intermediate_size, H = m->cfg.hidden_size;
			float *x = malloc((size_t)(I * H) * sizeof *x), *got = malloc((size_t)(I * H) * sizeof *got);
			regen("model.layers.1.mlp.experts.3.gate_proj.weight", LIN, I, H, x);
			for (int64_t k = 0; k < I * H; k++)
				x[k] = moe_round_bf16(x[k]);
			if (cv[i].s != S_BF16) {
				struct moe_qtensor q = {.dtype = cv[i].dt, .scaling = cv[i].sc, .rows = I, .cols = H};
				ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
				moe_quantize__ref(x, &q);
				moe_dequantize__ref(&q, x);
				moe_qtensor_free(&q);
			}
			moe_dequantize__ref(&w->gate, got);
			ck_assert(memcmp(x, got, (size_t)(I * H) * sizeof *x) == 0);
			free(x);
			free(got);
		}
		ck_assert(m->layers[1].act_global_scale[0] == 0.0f);
		moe_model_free(m);
	}
	/* NVFP4 activations need NVFP4 weights: refused with the checkpoint named */
	struct moe_model_load_options o = {.act_quant = MOE_ACT_NVFP4};
	struct moe_model *m = (struct moe_model *)1;
	ck_assert_int_eq(moe_model_load(dir, &o, &m), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_null(m);
	ck_assert(strstr(moe_last_error(), "model.safetensors") != NULL);
	remove_dir();
}
END_TEST

/* ---- bad files ---- */

static void *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc(*len + 1);
	ck_assert_uint_eq(fread(p, 1, *len, f), *len);
	fclose(f);
	return p;
}

static void write_all(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, len, f), len);
	fclose(f);
}

/* Rewrites the header of a safetensors file through `edit` (data bytes unchanged). */
static void edit_header(const char *path, void (*edit)(json_t *hdr))
{
	size_t len;
	uint8_t *buf = read_all(path, &len);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	json_t *hdr = json_loadb((char *)buf + 8, n, 0, NULL);
	ck_assert_ptr_nonnull(hdr);
	edit(hdr);
	char *text = json_dumps(hdr, JSON_COMPACT);
	json_decref(hdr);
	size_t tl = strlen(text), dl = len - 8 - n;
	uint8_t *out = malloc(8 + tl + dl);
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)((uint64_t)tl >> (8 * i));
	memcpy(out + 8, text, tl);
	memcpy(out + 8 + tl, buf + 8 + n, dl);
	write_all(path, out, 8 + tl + dl);
	free(out);
	free(text);
	free(buf);
}

static void set_offsets(json_t *hdr, const char *name, json_int_t b, json_int_t e)
{
	json_t *t = json_object_get(hdr, name);
	ck_assert_ptr_nonnull(t);
	json_object_set_new(t, "data_offsets", json_pack("[I,I]", b, e));
}

static json_int_t off(json_t *hdr, const char *name, int k)
{
	return json_integer_value(json_array_get(json_object_get(json_object_get(hdr, name), "data_offsets"), (size_t)k));
}

static void e_lie_size(json_t *h)
{
	set_offsets(h, "model.norm.weight", off(h, "model.norm.weight", 0), off(h, "model.norm.weight", 1) + 2);
}
static void e_out_of_file(json_t *h)
{
	set_offsets(h, "model.norm.weight", 1 << 30, (1 << 30) + 128);
}
static void e_overlap(json_t *h)
{
	/* the norm claims the first bytes of the embedding (same size: 64 bf16) */
	json_int_t b = off(h, "model.embed_tokens.weight", 0);
	set_offsets(h, "model.norm.weight", b, b + 128);
}
static void e_unknown_dtype(json_t *h)
{
	json_object_set_new(json_object_get(h, "model.norm.weight"), "dtype", json_string("F7"));
}
static void e_unsupported_dtype(json_t *h)
{
	json_object_set_new(json_object_get(h, "model.layers.1.self_attn.k_proj.weight"), "dtype", json_string("I16"));
}
static void e_wrong_shape(json_t *h)
{
	json_object_set_new(json_object_get(h, "model.layers.1.self_attn.k_proj.weight"), "shape",
			    json_pack("[i,i]", 64, 32));
}
static void e_missing(json_t *h)
{
	json_t *t = json_object_get(h, "model.layers.2.mlp.experts.5.down_proj.weight");
	json_object_set(h, "model.layers.2.mlp.experts.5.down_proj.weightX", t);
	json_object_del(h, "model.layers.2.mlp.experts.5.down_proj.weight");
}
static void e_not_object(json_t *h)
{
	json_object_set_new(h, "model.norm.weight", json_integer(3));
}

static void expect_fail(enum moe_status want, const char *a, const char *b)
{
	struct moe_model *m = (struct moe_model *)1;
	moe_clear_error();
	enum moe_status s = moe_model_load(dir, NULL, &m);
	ck_assert_msg(s == want, "status %d, want %d: %s", (int)s, (int)want, moe_last_error());
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(moe_last_error(), a) != NULL, "no \"%s\" in \"%s\"", a, moe_last_error());
	ck_assert_msg(!b || strstr(moe_last_error(), b) != NULL, "no \"%s\" in \"%s\"", b, moe_last_error());
}

static const struct {
	void (*edit)(json_t *);
	enum moe_status status;
	const char *tensor;
} header_cases[] = {
	{e_lie_size, MOE_ERR_FORMAT, "model.norm.weight"},
	{e_out_of_file, MOE_ERR_FORMAT, "model.norm.weight"},
	{e_overlap, MOE_ERR_FORMAT, "overlap"},
	{e_unknown_dtype, MOE_ERR_FORMAT, "model.norm.weight"},
	{e_unsupported_dtype, MOE_ERR_UNSUPPORTED, "model.layers.1.self_attn.k_proj.weight"},
	{e_wrong_shape, MOE_ERR_FORMAT, "model.layers.1.self_attn.k_proj.weight"},
	{e_missing, MOE_ERR_FORMAT, "model.layers.2.mlp.experts.5.down_proj.weight"},
	{e_not_object, MOE_ERR_FORMAT, "model.norm.weight"},
};

START_TEST(bad_header)
{
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-ln-softmax-avg", SEED), MOE_OK);
	edit_header(in_dir("model.safetensors"), header_cases[_i].edit);
	expect_fail(header_cases[_i].status, "model.safetensors", header_cases[_i].tensor);
	remove_dir();
}
END_TEST

START_TEST(bad_bytes)
{
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-ln-softmax-avg", SEED), MOE_OK);
	const char *path = in_dir("model.safetensors");
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", path);
	size_t len;
	uint8_t *buf = read_all(p, &len);
	/* truncated: the last tensors' bytes are cut off */
	write_all(p, buf, len - 100);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors", "truncated");
	/* shorter than the 8-byte length */
	write_all(p, buf, 5);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors", "truncated");
	/* the header length runs past the end */
	uint8_t *bad = malloc(len);
	memcpy(bad, buf, len);
	bad[5] = 0x01;
	write_all(p, bad, len);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors", "header length");
	/* malformed JSON */
	memcpy(bad, buf, len);
	bad[8] = '[';
	write_all(p, bad, len);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors", "JSON");
	/* trailing bytes after the last tensor */
	write_all(p, buf, len);
	FILE *f = fopen(p, "ab");
	fputs("junk", f);
	fclose(f);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors", "after the last tensor");
	/* a non-zero bias */
	write_all(p, buf, len);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	json_t *hdr = json_loadb((char *)buf + 8, n, 0, NULL);
	json_int_t b = off(hdr, "model.layers.2.self_attn.o_proj.bias", 0);
	json_decref(hdr);
	memcpy(bad, buf, len);
	bad[8 + n + (size_t)b + 6] = 0x80; /* element 3 = bf16 0x3f80 = 1.0 */
	bad[8 + n + (size_t)b + 7] = 0x3f;
	write_all(p, bad, len);
	expect_fail(MOE_ERR_UNSUPPORTED, "model.safetensors", "model.layers.2.self_attn.o_proj.bias");
	/* missing files */
	unlink(p);
	expect_fail(MOE_ERR_IO, dir, "model.safetensors");
	write_all(p, buf, len);
	unlink(in_dir("config.json"));
	expect_fail(MOE_ERR_IO, "config.json", NULL);
	free(bad);
	free(buf);
	remove_dir();
}
END_TEST

START_TEST(bad_config)
{
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-ln-softmax-avg", SEED), MOE_OK);
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", in_dir("config.json"));
	size_t len;
	char *buf = read_all(p, &len);
	buf[len] = 0;
	json_t *c = json_loads(buf, 0, NULL);
	json_object_set_new(c, "model_type", json_string("llama"));
	json_dump_file(c, p, 0);
	expect_fail(MOE_ERR_UNSUPPORTED, "config.json", "model_type");
	json_object_set_new(c, "model_type", json_string("cohere2_moe"));
	json_object_set_new(c, "quantization_config", json_pack("{s:s}", "quant_method", "gptq"));
	json_dump_file(c, p, 0);
	expect_fail(MOE_ERR_UNSUPPORTED, "config.json", "quant_method");
	json_object_set_new(c, "quantization_config", json_pack("{s:s,s:[i,i]}", "quant_method", "fp8",
								  "weight_block_size", 1, 128));
	json_dump_file(c, p, 0);
	expect_fail(MOE_ERR_UNSUPPORTED, "config.json", "weight_block_size");
	/* a config wider than the checkpoint: the first tensor that disagrees is named */
	json_object_del(c, "quantization_config");
	json_object_set_new(c, "hidden_size", json_integer(128));
	json_dump_file(c, p, 0);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors", "model.layers.1.mlp.experts.0.gate_proj.weight");
	json_decref(c);
	free(buf);
	remove_dir();
}
END_TEST

START_TEST(bad_shards)
{
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "tiny-sharded-f16", SEED), MOE_OK);
	ck_assert(access(in_dir("model.safetensors.index.json"), F_OK) == 0);
	ck_assert(access(in_dir("model.safetensors"), F_OK) != 0);
	char p2[PATH_MAX], idx[PATH_MAX];
	snprintf(p2, sizeof p2, "%s", in_dir("model-00002-of-00002.safetensors"));
	snprintf(idx, sizeof idx, "%s", in_dir("model.safetensors.index.json"));
	size_t len, ilen;
	void *buf = read_all(p2, &len);
	char *ib = read_all(idx, &ilen);
	ib[ilen] = 0;
	unlink(p2);
	expect_fail(MOE_ERR_IO, "model.safetensors.index.json", "model-00002-of-00002.safetensors");
	write_all(p2, buf, len);
	/* the index maps a tensor to the wrong shard */
	json_t *j = json_loads(ib, 0, NULL);
	json_t *wm = json_object_get(j, "weight_map");
	json_object_set_new(wm, "model.norm.weight", json_string("model-00001-of-00002.safetensors"));
	json_dump_file(j, idx, 0);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors.index.json", "model.norm.weight");
	/* a shard outside the folder */
	json_object_set_new(wm, "model.norm.weight", json_string("../model-00002-of-00002.safetensors"));
	json_dump_file(j, idx, 0);
	expect_fail(MOE_ERR_FORMAT, "model.safetensors.index.json", "model.norm.weight");
	json_decref(j);
	/* restored, it loads */
	write_all(idx, ib, ilen);
	struct moe_model *m = load(NULL);
	moe_model_free(m);
	free(buf);
	free(ib);
	remove_dir();
}
END_TEST

START_TEST(presets_listed)
{
	ck_assert_int_ge(moe_model_preset_count(), 9);
	for (int32_t i = 0; i < moe_model_preset_count(); i++) {
		const struct moe_model_preset *p = moe_model_preset_at(i);
		ck_assert_ptr_nonnull(p);
		ck_assert(strlen(p->name) > 0 && strlen(p->description) > 0);
	}
	ck_assert_ptr_null(moe_model_preset_at(moe_model_preset_count()));
	ck_assert_ptr_null(moe_model_preset_at(-1));
	make_dir();
	ck_assert_int_eq(moe_model_init(dir, "no-such-preset", 1), MOE_ERR_INVALID_ARG);
	ck_assert(strstr(moe_last_error(), "tiny-ln-softmax-avg") != NULL);
	ck_assert(access(in_dir("config.json"), F_OK) != 0);
	/* init over an existing checkpoint replaces it; no temporary files remain */
	ck_assert_int_eq(moe_model_init(dir, "tiny-sharded-f16", 1), MOE_OK);
	ck_assert_int_eq(moe_model_init(dir, "tiny-fp8", 1), MOE_OK);
	ck_assert(access(in_dir("model.safetensors.index.json"), F_OK) != 0);
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)))
		ck_assert_msg(strstr(de->d_name, ".tmp") == NULL, "left %s", de->d_name);
	closedir(d);
	struct moe_model *m = load(NULL);
	ck_assert_int_eq(m->expert_params.weight_dtype, MOE_DTYPE_FP8E4M3);
	moe_model_free(m);
	remove_dir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("model_load");
	TCase *tc = tcase_create("load");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, preset_round_trip, 0, (int)(sizeof tinies / sizeof *tinies));
	tcase_add_test(tc, fused_equals_per_expert);
	tcase_add_test(tc, convert_weights);
	tcase_add_loop_test(tc, bad_header, 0, (int)(sizeof header_cases / sizeof *header_cases));
	tcase_add_test(tc, bad_bytes);
	tcase_add_test(tc, bad_config);
	tcase_add_test(tc, bad_shards);
	tcase_add_test(tc, presets_listed);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
