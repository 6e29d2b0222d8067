/* moe_model_load / moe_model_free: a Hugging Face Cohere2-MoE checkpoint into struct moe_model.
 *
 * Tensor names (docs/cohere2-moe.md): model.embed_tokens.weight [V][H], model.norm.weight
 * [H], lm_head.weight [V][H] (only when tie_word_embeddings is false), and per layer l under
 * model.layers.{l}.: input_layernorm.weight [H], self_attn.{q,k,v,o}_proj.weight, and either the
 * dense prefix MLP mlp.{gate,up,down}_proj.weight or the MoE block: router mlp.gate.weight [E][H],
 * routed experts mlp.experts.{e}.{gate,up,down}_proj.weight or the fused pair
 * mlp.experts.gate_up_proj [E][2I][H] (rows 0..I-1 of each expert are gate) and
 * mlp.experts.down_proj [E][H][I], shared experts mlp.shared_experts.{gate,up,down}_proj.weight of
 * width I * num_shared_experts. Any *.bias tensor must be all zeros and is ignored; a non-zero one is
 * refused (the model has no biases). Other tensors are ignored.
 *
 * Stored formats of a linear weight "<base>" (detected from the tensors present, checked against
 * config.json's quantization_config when there is one):
 *   plain       <base>.weight F32, BF16 or F16 (F16 is widened to F32, exactly).
 *   FP8 block   <base>.weight F8_E4M3 [N][K] and <base>.weight_scale_inv F32 [ceil(N/128)][ceil(K/128)]:
 *               the DeepSeek-V3 / HF "fp8" layout (quant_method "fp8", weight_block_size [128, 128]);
 *               the scale is the dequantization multiplier, which is our BLOCK_128x128 scale as is.
 *   NVFP4, compressed-tensors (quant_method "compressed-tensors", format "nvfp4-pack-quantized", as
 *               vLLM's and SGLang's CompressedTensorsW4A4Fp4 load it): <base>.weight_packed U8
 *               [N][K/2] (two E2M1 codes a byte, the even element in the low nibble),
 *               <base>.weight_scale F8_E4M3 [N][K/16] (row-major, the linear layout), and the
 *               per-tensor encode scales <base>.weight_global_scale and <base>.input_global_scale
 *               (F32, shape [] or [1]); they store 448*6/amax, the engines divide by them (alpha =
 *               1 / (input_global_scale * weight_global_scale)), i.e. exactly our global_scale.
 *   NVFP4, ModelOpt (quant_method "modelopt", quant_algo "NVFP4"): <base>.weight U8 [N][K/2], the
 *               same <base>.weight_scale F8_E4M3 [N][K/16], and the decode scales
 *               <base>.weight_scale_2 and <base>.input_scale (F32, amax/(448*6); the engines multiply
 *               by them: alpha = input_scale * weight_scale_2); global_scale = 1 / weight_scale_2.
 * On load every weight goes to the requested format: kept as stored when it already is (pointing
 * into the mapping, zero-copy; dense ones of 2 MiB or more are copied once into huge-page memory
 * and their mapped pages dropped), else dequantized by moe_dequantize__ref and quantized by
 * moe_quantize__ref into memory the model owns. Dense tensors (embedding, attention, router) go to
 * F32 or BF16, norms to F32; expert, shared-expert and dense-MLP weights to the expert format.
 * Errors name the file and the tensor; on failure everything is released. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "model.h"
#include "moe/memory.h"
#include "safetensors_map.h"

struct model_impl {
	struct moe_stmap map;
	void **owned;
	size_t nowned, cap;
};

enum quant_method { QM_NONE, QM_FP8, QM_CT, QM_MODELOPT };

struct ctx {
	const char *dir;
	char ckpt[4096]; /* the checkpoint's main file, for messages about missing tensors */
	struct model_impl *impl;
	const struct moe_model_load_options *opt;
	enum quant_method qm;
	bool stored_nvfp4; /* the experts are stored as NVFP4 */
	bool copy_big;     /* load_dense: plain tensors of COPY_MIN_BYTES or more are copied (view) */
	struct moe_model *m;
};

/* ---- names of --weights ---- */

static const char *const weights_names[] = {"as-stored", "f32", "bf16", "fp8", "nvfp4", "mxfp4"};

const char *moe_model_weights_name(enum moe_model_weights w)
{
	return (unsigned)w < sizeof weights_names / sizeof *weights_names ? weights_names[w] : "?";
}

enum moe_status moe_model_weights_parse(const char *name, enum moe_model_weights *out)
{
	for (size_t i = 0; name && i < sizeof weights_names / sizeof *weights_names; i++)
		if (strcmp(name, weights_names[i]) == 0) {
			*out = (enum moe_model_weights)i;
			return MOE_OK;
		}
	return moe_fail(MOE_ERR_INVALID_ARG, "weights \"%s\" unknown (as-stored, f32, bf16, fp8, nvfp4, mxfp4)",
			name ? name : "(null)");
}

/* ---- owned memory ---- */

static bool own(struct model_impl *im, void *p)
{
	if (!p)
		return true;
	if (im->nowned == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 256;
		void **n = realloc(im->owned, cap * sizeof *n);
		if (!n)
			return false;
		im->owned = n;
		im->cap = cap;
	}
	im->owned[im->nowned++] = p;
	return true;
}

static void *own_alloc(struct ctx *c, size_t bytes)
{
	void *p = moe_alloc_large(bytes ? bytes : 64);
	if (!p)
		return NULL;
	if (!own(c->impl, p)) {
		free(p);
		return NULL;
	}
	c->m->bytes_owned += bytes;
	return p;
}

/* ---- stored tensors ---- */

enum src_kind { SRC_PLAIN, SRC_FP8_BLOCK, SRC_NVFP4 };

/* One stored linear weight (or a row slice of a fused one), as found in the checkpoint. */
struct src {
	enum src_kind kind;
	enum moe_stmap_dtype dtype; /* of the elements, for SRC_PLAIN */
	const uint8_t *data;
	const uint8_t *scales;      /* FP8: F32 [ceil(N/128)][ceil(K/128)]; NVFP4: E4M3 [N][K/16] */
	int64_t rows, cols;
	float global_scale;         /* NVFP4 encode scale */
	float input_scale;          /* NVFP4 activation encode scale; 0 when none */
	char name[256];             /* the tensor (for messages) */
	const char *path;           /* its file */
};

static const struct moe_stmap_tensor *find(const struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const struct moe_stmap_tensor *find(const struct ctx *c, const char *fmt, ...)
{
	char name[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	return moe_stmap_find(&c->impl->map, name);
}

static enum moe_status missing(const struct ctx *c, const char *name)
{
	return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s is missing", c->ckpt, name);
}

static void shape_str(const struct moe_stmap_tensor *t, char *buf, size_t n)
{
	size_t at = 0;
	at += (size_t)snprintf(buf, n, "[");
	for (int32_t d = 0; d < t->ndim && at < n; d++)
		at += (size_t)snprintf(buf + at, n - at, d ? ", %lld" : "%lld", (long long)t->shape[d]);
	if (at < n)
		snprintf(buf + at, n - at, "]");
}

/* t must have the shape dims[0..nd-1]. */
static enum moe_status want_shape(const struct ctx *c, const struct moe_stmap_tensor *t, int nd, const int64_t *dims,
				  const char *what)
{
	bool ok = t->ndim == nd;
	for (int d = 0; ok && d < nd; d++)
		ok = t->shape[d] == dims[d];
	if (ok)
		return MOE_OK;
	char got[128], want[128] = "[";
	shape_str(t, got, sizeof got);
	for (int d = 0; d < nd; d++)
		snprintf(want + strlen(want), sizeof want - strlen(want), d ? ", %lld" : "%lld", (long long)dims[d]);
	strncat(want, "]", sizeof want - strlen(want) - 1);
	return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s has shape %s, the config (%s) needs %s", moe_stmap_path(&c->impl->map, t),
			t->name, got, what, want);
}

static enum moe_status want_dtype(const struct ctx *c, const struct moe_stmap_tensor *t, enum moe_stmap_dtype d)
{
	if (t->dtype == d)
		return MOE_OK;
	return moe_fail(MOE_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s, expected %s", moe_stmap_path(&c->impl->map, t),
			t->name, moe_stmap_dtype_name(t->dtype), moe_stmap_dtype_name(d));
}

/* A per-tensor F32 scale of shape [] or [1]; *out its value (must be finite and > 0). */
static enum moe_status scalar(const struct ctx *c, const struct moe_stmap_tensor *t, float *out)
{
	enum moe_status s = want_dtype(c, t, MOE_STMAP_F32);
	if (s != MOE_OK)
		return s;
	if (!(t->ndim == 0 || (t->ndim == 1 && t->shape[0] == 1))) {
		char got[128];
		shape_str(t, got, sizeof got);
		return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s has shape %s, a per-tensor scale needs [] or [1]",
				moe_stmap_path(&c->impl->map, t), t->name, got);
	}
	memcpy(out, t->data, sizeof *out);
	if (!(*out > 0.0f) || !isfinite(*out))
		return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s = %g, a scale must be finite and > 0",
				moe_stmap_path(&c->impl->map, t), t->name, (double)*out);
	return MOE_OK;
}

static bool is_plain(enum moe_stmap_dtype d)
{
	return d == MOE_STMAP_F32 || d == MOE_STMAP_BF16 || d == MOE_STMAP_F16;
}

/* The stored weight "<base>" of logical shape [rows][cols], in any of the formats above. */
static enum moe_status get_src(struct ctx *c, const char *base, int64_t rows, int64_t cols, const char *what,
			       struct src *o)
{
	char name[512];
	memset(o, 0, sizeof *o);
	o->rows = rows;
	o->cols = cols;
	const struct moe_stmap *map = &c->impl->map;
	const struct moe_stmap_tensor *packed = find(c, "%s.weight_packed", base);
	const struct moe_stmap_tensor *w = packed ? packed : find(c, "%s.weight", base);
	if (!w) {
		snprintf(name, sizeof name, "%s.weight", base);
		return missing(c, name);
	}
	snprintf(o->name, sizeof o->name, "%s", w->name);
	o->path = moe_stmap_path(map, w);
	enum moe_status s;
	if (!packed && is_plain(w->dtype)) {
		s = want_shape(c, w, 2, (int64_t[]){rows, cols}, what);
		o->kind = SRC_PLAIN;
		o->dtype = w->dtype;
		o->data = w->data;
		return s;
	}
	if (!packed && w->dtype == MOE_STMAP_F8_E4M3) {
		if ((s = want_shape(c, w, 2, (int64_t[]){rows, cols}, what)) != MOE_OK)
			return s;
		const struct moe_stmap_tensor *sc = find(c, "%s.weight_scale_inv", base);
		if (!sc) {
			snprintf(name, sizeof name, "%s.weight_scale_inv", base);
			return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s is F8_E4M3 but its block scales %s are missing "
					"(only the 128x128 block-scaled FP8 layout is supported)", o->path, w->name, name);
		}
		if ((s = want_dtype(c, sc, MOE_STMAP_F32)) != MOE_OK ||
		    (s = want_shape(c, sc, 2, (int64_t[]){(rows + 127) / 128, (cols + 127) / 128}, "128x128 blocks")) != MOE_OK)
			return s;
		o->kind = SRC_FP8_BLOCK;
		o->data = w->data;
		o->scales = sc->data;
		return MOE_OK;
	}
	if (w->dtype == MOE_STMAP_U8) {
		if (cols % 16 != 0)
			return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: NVFP4 needs the reduction width %lld to be a multiple "
					"of 16", o->path, w->name, (long long)cols);
		if ((s = want_shape(c, w, 2, (int64_t[]){rows, cols / 2}, what)) != MOE_OK)
			return s;
		const struct moe_stmap_tensor *sc = find(c, "%s.weight_scale", base);
		const struct moe_stmap_tensor *g = find(c, packed ? "%s.weight_global_scale" : "%s.weight_scale_2", base);
		const struct moe_stmap_tensor *in = find(c, packed ? "%s.input_global_scale" : "%s.input_scale", base);
		if (!sc || !g) {
			snprintf(name, sizeof name, "%s.%s", base,
				 !sc ? "weight_scale" : packed ? "weight_global_scale" : "weight_scale_2");
			return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s is packed NVFP4 (%s layout) but %s is missing", o->path,
					w->name, packed ? "compressed-tensors" : "ModelOpt", name);
		}
		if ((s = want_dtype(c, sc, MOE_STMAP_F8_E4M3)) != MOE_OK ||
		    (s = want_shape(c, sc, 2, (int64_t[]){rows, cols / 16}, "one E4M3 scale per 16 elements")) != MOE_OK)
			return s;
		float gv, iv = 0.0f;
		if ((s = scalar(c, g, &gv)) != MOE_OK || (in && (s = scalar(c, in, &iv)) != MOE_OK))
			return s;
		o->kind = SRC_NVFP4;
		o->data = w->data;
		o->scales = sc->data;
		/* compressed-tensors stores encode scales, ModelOpt decode scales */
		o->global_scale = packed ? gv : 1.0f / gv;
		o->input_scale = in ? (packed ? iv : 1.0f / iv) : 0.0f;
		if (!isfinite(o->global_scale))
			return moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: global scale %g out of range", o->path, g->name,
					(double)gv);
		return MOE_OK;
	}
	return moe_fail(MOE_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s, which no supported weight layout uses (F32, "
			"BF16, F16, F8_E4M3 + weight_scale_inv, NVFP4 as U8 + F8_E4M3 scales)", o->path, w->name,
			moe_stmap_dtype_name(w->dtype));
}

static inline float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
	if (exp == 0x1f)
		return moe_f32_from_bits(sign | 0x7f800000u | (man << 13));
	if (exp == 0) {
		float v = (float)man * 0x1p-24f; /* exact: subnormal or zero */
		return sign ? -v : v;
	}
	return moe_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Drops the resident pages of a mapped range that has been copied out (the copy is the one read of
 * those bytes; the file stays mapped for the views that still point into it). */
static void drop_mapped(const void *p, size_t bytes)
{
	const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	const uintptr_t a = ((uintptr_t)p + pg - 1) / pg * pg, b = ((uintptr_t)p + bytes) / pg * pg;
	if (b > a)
		(void)madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

/* Dense plain tensors (embedding / LM head, attention, router) from this size on are copied into
 * huge-page memory (include/moe/memory.h): a GEMV over a mapped file's 4 KiB pages streams ~25%
 * slower. Expert weights are not: the optimized path runs them from the backend's packed copy, and
 * a second plain copy would cost their size again in memory. */
#define COPY_MIN_BYTES ((size_t)2 << 20)

/* The stored weight as a qtensor view, pointing into the mapping where it can (F16 is widened into
 * owned memory; misaligned F32 data or scales and plain tensors of COPY_MIN_BYTES or more are
 * copied). */
static enum moe_status view(struct ctx *c, const struct src *s, struct moe_qtensor *v)
{
	memset(v, 0, sizeof *v);
	v->rows = s->rows;
	v->cols = s->cols;
	const size_t n = (size_t)s->rows * (size_t)s->cols;
	switch (s->kind) {
	case SRC_PLAIN:
		if (s->dtype == MOE_STMAP_F16) {
			float *f = own_alloc(c, n * sizeof *f);
			if (!f)
				return moe_fail(MOE_ERR_NOMEM, "%s: tensor %s: out of memory", s->path, s->name);
			for (size_t i = 0; i < n; i++) {
				uint16_t h;
				memcpy(&h, s->data + 2 * i, 2);
				f[i] = f16_to_f32(h);
			}
			v->dtype = MOE_DTYPE_F32;
			v->data = f;
			return MOE_OK;
		}
		v->dtype = s->dtype == MOE_STMAP_F32 ? MOE_DTYPE_F32 : MOE_DTYPE_BF16;
		v->data = (void *)s->data;
		const size_t es = s->dtype == MOE_STMAP_F32 ? 4 : 2;
		if ((uintptr_t)s->data % es || (c->copy_big && n * es >= COPY_MIN_BYTES)) {
			if (!(v->data = own_alloc(c, n * es)))
				return moe_fail(MOE_ERR_NOMEM, "%s: tensor %s: out of memory", s->path, s->name);
			memcpy(v->data, s->data, n * es);
			drop_mapped(s->data, n * es);
		}
		return MOE_OK;
	case SRC_FP8_BLOCK:
		v->dtype = MOE_DTYPE_FP8E4M3;
		v->scaling = MOE_SCALING_BLOCK_128x128;
		v->data = (void *)s->data;
		v->scales = (void *)s->scales;
		if ((uintptr_t)s->scales % 4) {
			size_t bytes = moe_qtensor_scale_bytes(v);
			if (!(v->scales = own_alloc(c, bytes)))
				return moe_fail(MOE_ERR_NOMEM, "%s: tensor %s: out of memory", s->path, s->name);
			memcpy(v->scales, s->scales, bytes);
		}
		return MOE_OK;
	case SRC_NVFP4:
		v->dtype = MOE_DTYPE_NVFP4;
		v->scaling = MOE_SCALING_NVFP4;
		v->sf_layout = MOE_SF_LINEAR;
		v->data = (void *)s->data;
		v->scales = (void *)s->scales;
		v->global_scale = s->global_scale;
		return MOE_OK;
	}
	return moe_fail(MOE_ERR_INTERNAL, "unreachable");
}

/* s converted to (dt, sc): the view itself when it already has that format, else requantized. */
static enum moe_status convert(struct ctx *c, const struct src *s, enum moe_dtype dt, enum moe_scaling sc,
			       struct moe_qtensor *out)
{
	struct moe_qtensor v;
	const size_t owned_before = c->impl->nowned, bytes_before = c->m->bytes_owned;
	enum moe_status st = view(c, s, &v);
	if (st != MOE_OK)
		return st;
	if (v.dtype == dt && v.scaling == sc) {
		*out = v;
		return MOE_OK;
	}
	const size_t n = (size_t)s->rows * (size_t)s->cols;
	float *f = NULL;
	if (posix_memalign((void **)&f, 64, n ? n * sizeof *f : 64) != 0)
		f = NULL;
	if (!f)
		return moe_fail(MOE_ERR_NOMEM, "%s: tensor %s: out of memory for %zu floats", s->path, s->name, n);
	moe_dequantize__ref(&v, f);
	/* the view's own copies (widened F16, realigned data) are not needed any more: they are the
	 * last entries of the owned list */
	while (c->impl->nowned > owned_before)
		free(c->impl->owned[--c->impl->nowned]);
	c->m->bytes_owned = bytes_before;
	if (dt == MOE_DTYPE_F32 && !own(c->impl, f)) {
		free(f);
		return moe_fail(MOE_ERR_NOMEM, "out of memory");
	}
	if (dt == MOE_DTYPE_F32)
		c->m->bytes_owned += n * sizeof *f;
	if (dt == MOE_DTYPE_F32) {
		*out = (struct moe_qtensor){.dtype = MOE_DTYPE_F32, .rows = s->rows, .cols = s->cols, .data = f};
		return MOE_OK;
	}
	struct moe_qtensor q = {.dtype = dt, .scaling = sc, .sf_layout = MOE_SF_LINEAR, .rows = s->rows, .cols = s->cols};
	st = moe_qtensor_alloc(&q);
	if (st != MOE_OK) {
		char why[512];
		snprintf(why, sizeof why, "%s", moe_last_error());
		free(f);
		return moe_fail(st == MOE_ERR_NOMEM ? st : MOE_ERR_INVALID_ARG, "%s: tensor %s: cannot convert to %s: %s",
				s->path, s->name, moe_dtype_name(dt), why);
	}
	moe_quantize__ref(f, &q);
	free(f);
	if (!own(c->impl, q.data) || !own(c->impl, q.scales)) {
		moe_qtensor_free(&q); /* (q.data may already be owned: only on out of memory, leaked then) */
		return moe_fail(MOE_ERR_NOMEM, "out of memory");
	}
	c->m->bytes_owned += moe_qtensor_data_bytes(&q) + moe_qtensor_scale_bytes(&q);
	*out = q;
	return MOE_OK;
}

/* A dense weight "<base>.weight" of [rows][cols] into the dense dtype. */
static enum moe_status load_dense(struct ctx *c, const char *base, int64_t rows, int64_t cols, const char *what,
				  struct moe_qtensor *out)
{
	struct src s;
	enum moe_status st = get_src(c, base, rows, cols, what, &s);
	if (st != MOE_OK)
		return st;
	c->copy_big = true;
	st = convert(c, &s, c->opt->dense_dtype, MOE_SCALING_NONE, out);
	c->copy_big = false;
	return st;
}

/* A norm weight "<name>" [H] into F32 [1][H]. */
static enum moe_status load_norm(struct ctx *c, const char *name, int64_t H, struct moe_qtensor *out)
{
	const struct moe_stmap_tensor *t = moe_stmap_find(&c->impl->map, name);
	if (!t)
		return missing(c, name);
	enum moe_status st = want_shape(c, t, 1, (int64_t[]){H}, "hidden_size");
	if (st != MOE_OK)
		return st;
	if (!is_plain(t->dtype))
		return moe_fail(MOE_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s (a norm weight must be F32, BF16 or F16)",
				moe_stmap_path(&c->impl->map, t), t->name, moe_stmap_dtype_name(t->dtype));
	struct src s = {.kind = SRC_PLAIN, .dtype = t->dtype, .data = t->data, .rows = 1, .cols = H};
	snprintf(s.name, sizeof s.name, "%s", t->name);
	s.path = moe_stmap_path(&c->impl->map, t);
	return convert(c, &s, MOE_DTYPE_F32, MOE_SCALING_NONE, out);
}

/* ---- experts ---- */

struct fmt {
	enum moe_dtype dt;
	enum moe_scaling sc;
};

static struct fmt stored_fmt(const struct src *s)
{
	switch (s->kind) {
	case SRC_FP8_BLOCK: return (struct fmt){MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128};
	case SRC_NVFP4: return (struct fmt){MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4};
	default: return (struct fmt){s->dtype == MOE_STMAP_BF16 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32, MOE_SCALING_NONE};
	}
}

static enum moe_status check_expert(const struct ctx *c, const struct moe_expert_params *p,
				    const struct moe_expert_weights *w, const char *base)
{
	if (moe_expert_validate(p, w) == MOE_OK)
		return MOE_OK;
	char why[512];
	snprintf(why, sizeof why, "%s", moe_last_error());
	return moe_fail(MOE_ERR_INVALID_ARG, "%s: %s: %s", c->ckpt, base, why);
}

/* gate/up/down of "<base>.{gate,up,down}_proj" with inter width I into the expert format. */
static enum moe_status load_mlp(struct ctx *c, const char *base, int64_t I, const char *what,
				struct moe_expert_weights *w, float in_scale[2])
{
	const int64_t H = c->m->cfg.hidden_size;
	const struct fmt f = {c->m->expert_params.weight_dtype, c->m->expert_params.weight_scaling};
	static const char *const part[3] = {"gate_proj", "up_proj", "down_proj"};
	struct moe_qtensor *dst[3] = {&w->gate, &w->up, &w->down};
	for (int i = 0; i < 3; i++) {
		char name[512];
		snprintf(name, sizeof name, "%s.%s", base, part[i]);
		struct src s;
		enum moe_status st = get_src(c, name, i < 2 ? I : H, i < 2 ? H : I, what, &s);
		if (st == MOE_OK)
			st = convert(c, &s, f.dt, f.sc, dst[i]);
		if (st != MOE_OK)
			return st;
		if (in_scale) {
			float *slot = &in_scale[i < 2 ? 0 : 1];
			if (s.input_scale > 0.0f && (*slot == 0.0f || s.input_scale < *slot))
				*slot = s.input_scale;
		}
	}
	struct moe_expert_params p = c->m->expert_params;
	p.inter = I;
	return check_expert(c, &p, w, base);
}

/* The routed experts of layer l from the fused pair gate_up_proj [E][2I][H], down_proj [E][H][I]. */
static enum moe_status load_fused(struct ctx *c, int32_t l, const struct moe_stmap_tensor *gu,
				  struct moe_expert_weights *ws)
{
	const struct moe_model_config *cfg = &c->m->cfg;
	const int64_t E = cfg->num_experts, H = cfg->hidden_size, I = cfg->intermediate_size;
	const struct moe_stmap_tensor *dn = find(c, "model.layers.%d.mlp.experts.down_proj", l);
	if (!dn) {
		char name[256];
		snprintf(name, sizeof name, "model.layers.%d.mlp.experts.down_proj", l);
		return missing(c, name);
	}
	enum moe_status st;
	if ((st = want_shape(c, gu, 3, (int64_t[]){E, 2 * I, H}, "[num_experts, 2*intermediate_size, hidden_size]")) ||
	    (st = want_shape(c, dn, 3, (int64_t[]){E, H, I}, "[num_experts, hidden_size, intermediate_size]")))
		return st;
	const struct moe_stmap_tensor *t2[2] = {gu, dn};
	for (int i = 0; i < 2; i++)
		if (!is_plain(t2[i]->dtype))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s; fused expert tensors must be F32, "
					"BF16 or F16 (quantized experts are read per expert)", moe_stmap_path(&c->impl->map, t2[i]),
					t2[i]->name, moe_stmap_dtype_name(t2[i]->dtype));
	const struct fmt f = {c->m->expert_params.weight_dtype, c->m->expert_params.weight_scaling};
	for (int64_t e = 0; e < E; e++) {
		struct src s[3];
		for (int i = 0; i < 3; i++) {
			const struct moe_stmap_tensor *t = i < 2 ? gu : dn;
			const size_t es = moe_stmap_dtype_size(t->dtype);
			s[i] = (struct src){.kind = SRC_PLAIN, .dtype = t->dtype, .rows = i < 2 ? I : H, .cols = i < 2 ? H : I};
			const size_t row0 = i == 0 ? (size_t)(e * 2 * I) : i == 1 ? (size_t)(e * 2 * I + I) : (size_t)(e * H);
			s[i].data = t->data + row0 * (size_t)s[i].cols * es;
			snprintf(s[i].name, sizeof s[i].name, "%s (expert %lld %s)", t->name, (long long)e,
				 i == 0 ? "gate rows" : i == 1 ? "up rows" : "");
			s[i].path = moe_stmap_path(&c->impl->map, t);
		}
		if ((st = convert(c, &s[0], f.dt, f.sc, &ws[e].gate)) || (st = convert(c, &s[1], f.dt, f.sc, &ws[e].up)) ||
		    (st = convert(c, &s[2], f.dt, f.sc, &ws[e].down)))
			return st;
		struct moe_expert_params p = c->m->expert_params;
		if ((st = check_expert(c, &p, &ws[e], gu->name)))
			return st;
	}
	return MOE_OK;
}

/* ---- the whole model ---- */

static enum moe_status check_biases(const struct ctx *c)
{
	const struct moe_stmap *map = &c->impl->map;
	for (int64_t i = 0; i < map->ntensors; i++) {
		const struct moe_stmap_tensor *t = &map->tensors[i];
		size_t len = strlen(t->name);
		if (len < 5 || strcmp(t->name + len - 5, ".bias") != 0)
			continue;
		if (!is_plain(t->dtype))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s (biases are accepted only as "
					"all-zero F32/BF16/F16 tensors)", moe_stmap_path(map, t), t->name,
					moe_stmap_dtype_name(t->dtype));
		const size_t es = moe_stmap_dtype_size(t->dtype);
		for (size_t k = 0; k < t->bytes; k += es) {
			uint32_t bits = 0;
			memcpy(&bits, t->data + k, es);
			const uint32_t mag = es == 4 ? bits & 0x7fffffffu : bits & 0x7fffu; /* -0 is zero too */
			if (mag != 0)
				return moe_fail(MOE_ERR_UNSUPPORTED, "%s: tensor %s: element %zu is not zero; Cohere2-MoE "
						"has no biases, a non-zero bias cannot be honoured", moe_stmap_path(map, t),
						t->name, k / es);
		}
	}
	return MOE_OK;
}

static enum moe_status check_quant_config(struct ctx *c, const char *path, json_t *root)
{
	json_t *q = json_object_get(root, "quantization_config");
	c->qm = QM_NONE;
	if (!q || json_is_null(q))
		return MOE_OK;
	json_t *qm = json_object_get(q, "quant_method");
	if (!json_is_object(q) || !json_is_string(qm))
		return moe_fail(MOE_ERR_FORMAT, "%s: field quantization_config needs a string quant_method", path);
	const char *m = json_string_value(qm);
	if (strcmp(m, "fp8") == 0) {
		json_t *bs = json_object_get(q, "weight_block_size"), *fmt = json_object_get(q, "fmt");
		if (bs && !(json_is_array(bs) && json_array_size(bs) == 2 &&
			    json_integer_value(json_array_get(bs, 0)) == 128 && json_integer_value(json_array_get(bs, 1)) == 128))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field quantization_config.weight_block_size: only "
					"[128, 128] is supported", path);
		if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "e4m3") == 0))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field quantization_config.fmt: only \"e4m3\" is supported",
					path);
		c->qm = QM_FP8;
	} else if (strcmp(m, "compressed-tensors") == 0) {
		json_t *fmt = json_object_get(q, "format");
		if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "nvfp4-pack-quantized") == 0))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field quantization_config.format = %s: only "
					"\"nvfp4-pack-quantized\" compressed-tensors checkpoints are supported", path,
					json_is_string(fmt) ? json_string_value(fmt) : "(not a string)");
		c->qm = QM_CT;
	} else if (strcmp(m, "modelopt") == 0) {
		json_t *algo = json_object_get(q, "quant_algo");
		if (algo && !(json_is_string(algo) && strcmp(json_string_value(algo), "NVFP4") == 0))
			return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field quantization_config.quant_algo = %s: only \"NVFP4\" "
					"ModelOpt checkpoints are supported", path,
					json_is_string(algo) ? json_string_value(algo) : "(not a string)");
		c->qm = QM_MODELOPT;
	} else
		return moe_fail(MOE_ERR_UNSUPPORTED, "%s: field quantization_config.quant_method = \"%s\" is not supported "
				"(fp8, compressed-tensors, modelopt)", path, m);
	return MOE_OK;
}

static enum moe_status read_config(struct ctx *c, struct moe_model_config *cfg)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/config.json", c->dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		return moe_fail(MOE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *n = cap > (64u << 20) ? NULL : realloc(buf, cap);
			if (!n) {
				free(buf);
				fclose(f);
				return moe_fail(MOE_ERR_FORMAT, "%s: too large for a config (or out of memory)", path);
			}
			buf = n;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	bool err = ferror(f);
	fclose(f);
	enum moe_status s = err ? moe_fail(MOE_ERR_IO, "%s: read error", path) : moe_model_config_parse(buf, len, path, cfg);
	if (s == MOE_OK) {
		json_t *root = json_loadb(buf, len, 0, NULL);
		s = check_quant_config(c, path, root);
		json_decref(root);
	}
	free(buf);
	return s;
}

static enum moe_status expert_format(struct ctx *c, const struct src *first)
{
	struct moe_expert_params *p = &c->m->expert_params;
	struct fmt f;
	switch (c->opt->weights) {
	case MOE_MODEL_WEIGHTS_AS_STORED: f = stored_fmt(first); break;
	case MOE_MODEL_WEIGHTS_F32: f = (struct fmt){MOE_DTYPE_F32, MOE_SCALING_NONE}; break;
	case MOE_MODEL_WEIGHTS_BF16: f = (struct fmt){MOE_DTYPE_BF16, MOE_SCALING_NONE}; break;
	case MOE_MODEL_WEIGHTS_FP8: f = (struct fmt){MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128}; break;
	case MOE_MODEL_WEIGHTS_NVFP4: f = (struct fmt){MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4}; break;
	case MOE_MODEL_WEIGHTS_MXFP4: f = (struct fmt){MOE_DTYPE_MXFP4, MOE_SCALING_MX}; break;
	default: return moe_fail(MOE_ERR_INVALID_ARG, "model load: weights %d out of range", (int)c->opt->weights);
	}
	*p = (struct moe_expert_params){.tokens = 0, .hidden = c->m->cfg.hidden_size,
					.inter = c->m->cfg.intermediate_size, .weight_dtype = f.dt, .weight_scaling = f.sc,
					.weight_sf_layout = MOE_SF_LINEAR, .act_quant = c->opt->act_quant};
	return MOE_OK;
}

static enum moe_status load_layer(struct ctx *c, int32_t l)
{
	const struct moe_model_config *cfg = &c->m->cfg;
	struct moe_model_layer *ly = &c->m->layers[l];
	const int64_t H = cfg->hidden_size, Dq = (int64_t)cfg->num_attention_heads * cfg->head_dim,
		      Dkv = (int64_t)cfg->num_key_value_heads * cfg->head_dim;
	char base[256];
	enum moe_status s;
	snprintf(base, sizeof base, "model.layers.%d.input_layernorm.weight", l);
	if ((s = load_norm(c, base, H, &ly->input_norm)))
		return s;
	static const char *const proj[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
	struct moe_qtensor *pq[4] = {&ly->q_proj, &ly->k_proj, &ly->v_proj, &ly->o_proj};
	const int64_t rows[4] = {Dq, Dkv, Dkv, H}, cols[4] = {H, H, H, Dq};
	for (int i = 0; i < 4; i++) {
		snprintf(base, sizeof base, "model.layers.%d.self_attn.%s", l, proj[i]);
		if ((s = load_dense(c, base, rows[i], cols[i], "heads * head_dim, hidden_size", pq[i])))
			return s;
	}
	if (cfg->dense[l]) {
		snprintf(base, sizeof base, "model.layers.%d.mlp", l);
		return load_mlp(c, base, cfg->prefix_dense_intermediate_size, "prefix_dense_intermediate_size",
				&ly->dense_mlp, NULL);
	}
	snprintf(base, sizeof base, "model.layers.%d.mlp.gate", l);
	if ((s = load_dense(c, base, cfg->num_experts, H, "num_experts, hidden_size", &ly->router)))
		return s;
	ly->experts = calloc((size_t)cfg->num_experts, sizeof *ly->experts);
	if (!ly->experts || !own(c->impl, ly->experts)) {
		free(ly->experts);
		ly->experts = NULL;
		return moe_fail(MOE_ERR_NOMEM, "out of memory for %d experts", cfg->num_experts);
	}
	const struct moe_stmap_tensor *gu = find(c, "model.layers.%d.mlp.experts.gate_up_proj", l);
	if (gu)
		s = load_fused(c, l, gu, ly->experts);
	for (int32_t e = 0; !gu && e < cfg->num_experts && s == MOE_OK; e++) {
		snprintf(base, sizeof base, "model.layers.%d.mlp.experts.%d", l, e);
		s = load_mlp(c, base, cfg->intermediate_size, "intermediate_size", &ly->experts[e], ly->act_global_scale);
	}
	if (s != MOE_OK)
		return s;
	/* the checkpoint's activation scales apply to the weights as stored, not to converted ones */
	if (c->m->expert_params.weight_dtype != MOE_DTYPE_NVFP4 || !c->stored_nvfp4)
		ly->act_global_scale[0] = ly->act_global_scale[1] = 0.0f;
	if (cfg->num_shared_experts > 0) {
		snprintf(base, sizeof base, "model.layers.%d.mlp.shared_experts", l);
		s = load_mlp(c, base, cfg->intermediate_size * cfg->num_shared_experts,
			     "intermediate_size * num_shared_experts", &ly->shared, NULL);
	}
	return s;
}

/* The stored format of the first expert weight (routed, else dense MLP) decides "as-stored". */
static enum moe_status first_expert_src(struct ctx *c, int32_t L, struct src *s)
{
	const struct moe_model_config *cfg = &c->m->cfg;
	char base[256];
	for (int32_t l = 0; l < L; l++)
		if (!cfg->dense[l]) {
			const struct moe_stmap_tensor *gu = find(c, "model.layers.%d.mlp.experts.gate_up_proj", l);
			if (gu) {
				/* a non-plain dtype is refused, with its name, by load_fused */
				*s = (struct src){.kind = SRC_PLAIN, .dtype = gu->dtype};
				return MOE_OK;
			}
			snprintf(base, sizeof base, "model.layers.%d.mlp.experts.0.gate_proj", l);
			return get_src(c, base, cfg->intermediate_size, cfg->hidden_size, "intermediate_size, hidden_size", s);
		}
	snprintf(base, sizeof base, "model.layers.0.mlp.gate_proj");
	return get_src(c, base, cfg->prefix_dense_intermediate_size, cfg->hidden_size,
		       "prefix_dense_intermediate_size, hidden_size", s);
}

enum moe_status moe_model_load(const char *dir, const struct moe_model_load_options *opt, struct moe_model **out)
{
	if (!dir || !out)
		return moe_fail(MOE_ERR_INVALID_ARG, "model load: NULL argument");
	*out = NULL;
	struct moe_model_load_options o = {.weights = MOE_MODEL_WEIGHTS_AS_STORED, .dense_dtype = MOE_DTYPE_BF16};
	if (opt)
		o = *opt;
	if (o.dense_dtype == MOE_DTYPE_NONE)
		o.dense_dtype = MOE_DTYPE_BF16;
	if (o.dense_dtype != MOE_DTYPE_F32 && o.dense_dtype != MOE_DTYPE_BF16)
		return moe_fail(MOE_ERR_INVALID_ARG, "model load: dense dtype %s (f32 or bf16)", moe_dtype_name(o.dense_dtype));
	struct moe_model *m = calloc(1, sizeof *m);
	struct model_impl *im = calloc(1, sizeof *im);
	if (!m || !im) {
		free(m);
		free(im);
		return moe_fail(MOE_ERR_NOMEM, "model load: out of memory");
	}
	m->impl = im;
	struct ctx c = {.dir = dir, .impl = im, .opt = &o, .m = m};
	enum moe_status s = read_config(&c, &m->cfg);
	if (s == MOE_OK)
		s = moe_stmap_open_dir(dir, &im->map);
	if (s == MOE_OK) {
		snprintf(c.ckpt, sizeof c.ckpt, "%s/model.safetensors.index.json", dir);
		if (access(c.ckpt, F_OK) != 0)
			snprintf(c.ckpt, sizeof c.ckpt, "%s/model.safetensors", dir);
		m->bytes_mapped = im->map.bytes_mapped;
		s = check_biases(&c);
	}
	struct moe_model_config *cfg = &m->cfg;
	if (s == MOE_OK && o.max_layers > 0 && o.max_layers < cfg->num_hidden_layers)
		cfg->num_hidden_layers = o.max_layers;
	const int32_t L = cfg->num_hidden_layers;
	if (s == MOE_OK) {
		m->layers = calloc((size_t)L, sizeof *m->layers);
		if (!m->layers)
			s = moe_fail(MOE_ERR_NOMEM, "model load: out of memory");
	}
	struct src first;
	if (s == MOE_OK && (s = first_expert_src(&c, L, &first)) == MOE_OK) {
		c.stored_nvfp4 = first.kind == SRC_NVFP4;
		s = expert_format(&c, &first);
	}
	if (s == MOE_OK)
		s = load_dense(&c, "model.embed_tokens", cfg->vocab_size, cfg->hidden_size, "vocab_size, hidden_size",
			       &m->embed);
	if (s == MOE_OK)
		s = load_norm(&c, "model.norm.weight", cfg->hidden_size, &m->final_norm);
	if (s == MOE_OK) {
		if (cfg->tie_word_embeddings)
			m->lm_head = m->embed;
		else
			s = load_dense(&c, "lm_head", cfg->vocab_size, cfg->hidden_size, "vocab_size, hidden_size", &m->lm_head);
	}
	for (int32_t l = 0; l < L && s == MOE_OK; l++)
		s = load_layer(&c, l);
	if (s != MOE_OK) {
		moe_model_free(m);
		return s;
	}
	*out = m;
	return MOE_OK;
}

void moe_model_free(struct moe_model *m)
{
	if (!m)
		return;
	struct model_impl *im = m->impl;
	if (im) {
		for (size_t i = 0; i < im->nowned; i++)
			free(im->owned[i]);
		free(im->owned);
		moe_stmap_close(&im->map);
		free(im);
	}
	free(m->layers);
	free(m);
}
