/* Golden vectors: cases frozen as safetensors files (verify/safetensors.h) that Python's
 * safetensors or plain numpy read without moebench (scripts/read-vectors.py).
 *
 * One file per case, named <op>-<nnnn>.safetensors. __metadata__ holds "format" =
 * "moebench-vectors-1", "case" (the spec line), "op", "group", "moebench" (version) and every
 * key=value of the spec as its own entry. Tensors by op (shapes in row-major order):
 *   route       logits [T,E] F32|BF16, bias [E] F32|BF16 (if any), expected_ids [T,K] I32,
 *               expected_weights [T,K] F32 (the reference router's output)
 *   norm        x [R,C] F32|BF16, w [C] F32|BF16, expected_y [R,C] F64 (moe_norm_ref_f64)
 *   quantize    x [R,C] F32, expected_data [bytes] U8, expected_scales [bytes] U8 (fp32 scales as
 *               their little-endian bytes), expected_global_scale [1] F32
 *   dequantize  data, scales U8, global_scale [1] F32, expected_x [R,C] F32
 *   expert      x [M,H] F32, {gate,up,down}_{data,scales} U8, {gate,up,down}_global_scale [1] F32,
 *               expected_y [M,H] F64 and bound [M,H] F64 (moe_expert_ref_f64)
 *   layer       x [T,H] F32, logits, bias as for route, expected_ids, expected_weights (the
 *               reference router's), and per expert e (at most 64) e<e>.{gate,up,down}_{data,
 *               scales,global_scale} as for expert, shared.* for the shared expert; y is checked
 *               against moe_layer_ref_f64 for the kernel's own routing, computed from these
 * Every tensor also has a metadata entry "fnv1a64.<name>" holding the 64-bit FNV-1a hash of its
 * bytes (16 hex digits), so that a damaged file is refused as malformed instead of judged as a
 * kernel failure. Cases with no elements (T = 0) are not exported. Checking reads the inputs and
 * the expected outputs from the file (never regenerates them) and runs the same comparators as a
 * live run; a file that does not match this layout is refused with MOE_ERR_FORMAT naming the file
 * and the tensor. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "safetensors.h"
#include "vcases.h"

#define MOE_VEC_FORMAT "moebench-vectors-1"
#define MOE_VEC_MAX_EXPERTS 64
#define MOE_VEC_MAX_T (8 + 9 * (MOE_VEC_MAX_EXPERTS + 1))
#define MOE_VEC_MAX_META (16 + 2 * MOE_VEC_MAX_T)

static enum moe_st_dtype st_of(enum moe_dtype t)
{
	return t == MOE_DTYPE_BF16 ? MOE_ST_BF16 : MOE_ST_F32;
}

struct vec_out {
	struct moe_st_tensor t[MOE_VEC_MAX_T];
	size_t n;
	struct moe_st_meta meta[MOE_VEC_MAX_META];
	size_t nmeta;
	char spec[512], kv[512], group[64];
	char hkey[MOE_VEC_MAX_T][112], hval[MOE_VEC_MAX_T][20];
};

static uint64_t fnv1a64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void add_t(struct vec_out *o, const char *name, enum moe_st_dtype dt, const void *data, size_t nbytes,
		  int ndim, int64_t d0, int64_t d1)
{
	assert(o->n < MOE_VEC_MAX_T); /* layers are capped at MOE_VEC_MAX_EXPERTS experts */
	struct moe_st_tensor *t = &o->t[o->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->dtype = dt;
	t->ndim = ndim;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->data = data;
	t->nbytes = nbytes;
}

static void add_meta(struct vec_out *o, const char *k, const char *v)
{
	if (o->nmeta < MOE_VEC_MAX_META)
		o->meta[o->nmeta++] = (struct moe_st_meta){ k, v };
}

/* The hashes of every tensor added so far, as metadata (just before writing). */
static void add_hashes(struct vec_out *o)
{
	for (size_t i = 0; i < o->n; i++) {
		snprintf(o->hkey[i], sizeof o->hkey[i], "fnv1a64.%s", o->t[i].name);
		snprintf(o->hval[i], sizeof o->hval[i], "%016llx",
			 (unsigned long long)fnv1a64(o->t[i].data, o->t[i].nbytes));
		add_meta(o, o->hkey[i], o->hval[i]);
	}
}

/* Every key=value of the spec as a metadata entry (o->kv holds the split copy). */
static void spec_meta(struct vec_out *o, const struct moe_vcase *c)
{
	char *save = NULL, *tok;
	moe_vcase_format(c, o->spec, sizeof o->spec);
	snprintf(o->kv, sizeof o->kv, "%s", o->spec);
	snprintf(o->group, sizeof o->group, "%s", c->group);
	add_meta(o, "format", MOE_VEC_FORMAT);
	add_meta(o, "moebench", MOE_VERSION_STRING);
	add_meta(o, "case", o->spec);
	add_meta(o, "op", moe_op_name(c->op));
	add_meta(o, "group", o->group);
	strtok_r(o->kv, " ", &save);
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = '\0';
		add_meta(o, tok, eq + 1);
	}
}


static enum moe_status export_layer(const char *path, const struct moe_vcase *c, struct moe_vscratch *s,
				    struct vec_out *o);

/* The three tensors of one expert under a name prefix ("gate_", "e3.gate_", ...). */
static void add_expert(struct vec_out *o, const char *prefix, const struct moe_expert_weights *w)
{
	const struct moe_qtensor *qs[3] = { &w->gate, &w->up, &w->down };
	static const char *const part[3] = { "gate_", "up_", "down_" };
	char name[96];
	for (int i = 0; i < 3; i++) {
		const size_t nd = moe_qtensor_data_bytes(qs[i]), ns = moe_qtensor_scale_bytes(qs[i]);
		snprintf(name, sizeof name, "%s%sdata", prefix, part[i]);
		add_t(o, name, MOE_ST_U8, qs[i]->data, nd, 1, (int64_t)nd, 0);
		if (ns) {
			snprintf(name, sizeof name, "%s%sscales", prefix, part[i]);
			add_t(o, name, MOE_ST_U8, qs[i]->scales, ns, 1, (int64_t)ns, 0);
		}
		snprintf(name, sizeof name, "%s%sglobal_scale", prefix, part[i]);
		add_t(o, name, MOE_ST_F32, &qs[i]->global_scale, 4, 1, 1, 0);
	}
}

static enum moe_status export_case(const char *path, const struct moe_vcase *c, struct moe_vscratch *s,
				   struct vec_out *o);

static enum moe_status export_one(const char *path, const struct moe_vcase *c, struct moe_vscratch *s)
{
	struct vec_out *o = calloc(1, sizeof *o);
	if (!o)
		return moe_fail(MOE_ERR_NOMEM, "vectors: no memory");
	enum moe_status st = c->op == MOE_OP_LAYER ? export_layer(path, c, s, o) : export_case(path, c, s, o);
	free(o);
	return st;
}

static enum moe_status export_case(const char *path, const struct moe_vcase *c, struct moe_vscratch *s,
				   struct vec_out *o)
{
	enum moe_status st = MOE_OK;
	struct moe_expert_weights w = { 0 };
	spec_meta(o, c);
	const int64_t T = c->T;
	switch (c->op) {
	case MOE_OP_ROUTE: {
		const struct moe_route_params *p = &c->route;
		const int64_t E = p->num_experts, K = p->top_k;
		float *L32 = moe_vscratch_get(s, 0, (size_t)(T * E) * 4);
		void *logits = moe_vscratch_get(s, 1, (size_t)(T * E) * 4);
		float *b32 = moe_vscratch_get(s, 2, (size_t)E * 4);
		void *bias = moe_vscratch_get(s, 3, (size_t)E * 4);
		int32_t *ids = moe_vscratch_get(s, 4, (size_t)(T * K) * 4);
		float *wts = moe_vscratch_get(s, 5, (size_t)(T * K) * 4);
		if (!L32 || !logits || !b32 || !bias || !ids || !wts)
			return moe_fail(MOE_ERR_NOMEM, "vectors: no memory for %s", o->spec);
		const bool hb = p->bias_dtype != MOE_DTYPE_NONE;
		moe_gen_route(c, L32, hb ? b32 : NULL);
		moe_store_as(p->logits_dtype, L32, logits, T * E);
		if (hb)
			moe_store_as(p->bias_dtype, b32, bias, E);
		moe_backend_reference()->route(p, T, logits, hb ? bias : NULL, ids, wts);
		add_t(o, "logits", st_of(p->logits_dtype), logits, (size_t)(T * E) * moe_storage_size(p->logits_dtype), 2, T, E);
		if (hb)
			add_t(o, "bias", st_of(p->bias_dtype), bias, (size_t)E * moe_storage_size(p->bias_dtype), 1, E, 0);
		add_t(o, "expected_ids", MOE_ST_I32, ids, (size_t)(T * K) * 4, 2, T, K);
		add_t(o, "expected_weights", MOE_ST_F32, wts, (size_t)(T * K) * 4, 2, T, K);
		break;
	}
	case MOE_OP_NORM: {
		const struct moe_norm_params *p = &c->norm;
		const int64_t C = p->cols;
		float *x32 = moe_vscratch_get(s, 0, (size_t)(T * C) * 4), *w32 = moe_vscratch_get(s, 1, (size_t)C * 4);
		void *x = moe_vscratch_get(s, 2, (size_t)(T * C) * 4), *wv = moe_vscratch_get(s, 3, (size_t)C * 4);
		double *y = moe_vscratch_get(s, 4, (size_t)(T * C) * 8);
		if (!x32 || !w32 || !x || !wv || !y)
			return moe_fail(MOE_ERR_NOMEM, "vectors: no memory for %s", o->spec);
		moe_gen_norm(c, x32, w32);
		moe_store_as(p->in_dtype, x32, x, T * C);
		moe_store_as(p->weight_dtype, w32, wv, C);
		moe_norm_ref_f64(p, x, wv, y);
		add_t(o, "x", st_of(p->in_dtype), x, (size_t)(T * C) * moe_storage_size(p->in_dtype), 2, T, C);
		add_t(o, "w", st_of(p->weight_dtype), wv, (size_t)C * moe_storage_size(p->weight_dtype), 1, C, 0);
		add_t(o, "expected_y", MOE_ST_F64, y, (size_t)(T * C) * 8, 2, T, C);
		break;
	}
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: {
		struct moe_qtensor q;
		float *x;
		if (!moe_vcodec_oracle(c, s, &x, &q))
			return moe_fail(MOE_ERR_NOMEM, "vectors: no memory for %s", o->spec);
		const size_t nd = moe_qtensor_data_bytes(&q), ns = moe_qtensor_scale_bytes(&q);
		const bool quant = c->op == MOE_OP_QUANTIZE;
		float *xr = moe_vscratch_get(s, 3, (size_t)(T * c->q.cols) * 4);
		if (!xr)
			return moe_fail(MOE_ERR_NOMEM, "vectors: no memory for %s", o->spec);
		if (quant) {
			add_t(o, "x", MOE_ST_F32, x, (size_t)(T * c->q.cols) * 4, 2, T, c->q.cols);
		} else {
			moe_backend_reference()->dequantize(&q, xr);
		}
		add_t(o, quant ? "expected_data" : "data", MOE_ST_U8, q.data, nd, 1, (int64_t)nd, 0);
		if (ns)
			add_t(o, quant ? "expected_scales" : "scales", MOE_ST_U8, q.scales, ns, 1, (int64_t)ns, 0);
		add_t(o, quant ? "expected_global_scale" : "global_scale", MOE_ST_F32, &q.global_scale, 4, 1, 1, 0);
		if (!quant)
			add_t(o, "expected_x", MOE_ST_F32, xr, (size_t)(T * c->q.cols) * 4, 2, T, c->q.cols);
		add_hashes(o);
		return moe_st_write(path, o->t, o->n, o->meta, o->nmeta);
	}
	case MOE_OP_EXPERT: {
		struct moe_expert_params p = c->expert;
		p.tokens = T;
		const int64_t n = T * p.hidden;
		float *x = moe_vscratch_get(s, 0, (size_t)n * 4);
		double *y = moe_vscratch_get(s, 1, (size_t)n * 8), *bound = moe_vscratch_get(s, 2, (size_t)n * 8);
		if (!x || !y || !bound)
			return moe_fail(MOE_ERR_NOMEM, "vectors: no memory for %s", o->spec);
		moe_gen_expert_x(c, c->seed, T, p.hidden, x);
		if ((st = moe_gen_expert_weights(c, c->seed ^ 0x9e3779b97f4a7c15ull, p.inter, &w)) != MOE_OK)
			return st;
		if ((st = moe_expert_ref_f64(&p, x, &w, y, bound)) != MOE_OK)
			break;
		add_t(o, "x", MOE_ST_F32, x, (size_t)n * 4, 2, T, p.hidden);
		add_expert(o, "", &w);
		add_t(o, "expected_y", MOE_ST_F64, y, (size_t)n * 8, 2, T, p.hidden);
		add_t(o, "bound", MOE_ST_F64, bound, (size_t)n * 8, 2, T, p.hidden);
		break;
	}
	default:
		return MOE_OK;
	}
	if (st == MOE_OK) {
		add_hashes(o);
		st = moe_st_write(path, o->t, o->n, o->meta, o->nmeta);
	}
	if (c->op == MOE_OP_EXPERT)
		moe_free_expert_weights(&w);
	return st;
}

static enum moe_status export_layer(const char *path, const struct moe_vcase *c, struct moe_vscratch *s,
				    struct vec_out *o)
{
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = c->route.num_experts, K = c->route.top_k;
	const struct moe_route_params *p = &c->route;
	struct moe_vlayer_inputs in;
	struct moe_expert_weights *ew;
	char prefix[32];
	if (E > MOE_VEC_MAX_EXPERTS)
		return moe_fail(MOE_ERR_UNSUPPORTED, "vectors: layer with E=%d experts: at most %d are exported", E,
				MOE_VEC_MAX_EXPERTS);
	if (!moe_gen_layer_inputs(c, s, &in))
		return moe_fail(MOE_ERR_NOMEM, "vectors: no memory for a layer of T=%lld", (long long)T);
	enum moe_status st = moe_gen_layer_weights(c, &ew);
	if (st != MOE_OK)
		return st;
	spec_meta(o, c);
	add_t(o, "x", MOE_ST_F32, in.x, (size_t)(T * H) * 4, 2, T, H);
	add_t(o, "logits", st_of(p->logits_dtype), in.logits, (size_t)(T * E) * moe_storage_size(p->logits_dtype), 2,
	      T, E);
	if (p->bias_dtype != MOE_DTYPE_NONE)
		add_t(o, "bias", st_of(p->bias_dtype), in.bias, (size_t)E * moe_storage_size(p->bias_dtype), 1, E, 0);
	add_t(o, "expected_ids", MOE_ST_I32, in.ids_r, (size_t)(T * K) * 4, 2, T, K);
	add_t(o, "expected_weights", MOE_ST_F32, in.w_r, (size_t)(T * K) * 4, 2, T, K);
	for (int32_t e = 0; e < E; e++) {
		snprintf(prefix, sizeof prefix, "e%d.", (int)e);
		add_expert(o, prefix, &ew[e]);
	}
	if (c->shared != MOE_SHARED_NONE)
		add_expert(o, "shared.", &ew[E]);
	add_hashes(o);
	st = moe_st_write(path, o->t, o->n, o->meta, o->nmeta);
	moe_free_layer_weights(c, ew);
	return st;
}

enum moe_status moe_vectors_export(const char *dir, const struct moe_vcase_list *cases, size_t *written)
{
	char path[4096];
	struct moe_vscratch *s;
	enum moe_status st = MOE_OK;
	*written = 0;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return moe_fail(MOE_ERR_IO, "vectors export: cannot create '%s': %s", dir, strerror(errno));
	if (!(s = moe_vscratch_new()))
		return moe_fail(MOE_ERR_NOMEM, "vectors export: no memory");
	for (size_t i = 0; i < cases->n && st == MOE_OK; i++) {
		const struct moe_vcase *c = &cases->v[i];
		if (c->T == 0)
			continue;
		if (c->op == MOE_OP_NORM && c->norm.cols == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s-%04zu.safetensors", dir, moe_op_name(c->op), *written);
		if ((st = export_one(path, c, s)) == MOE_OK)
			(*written)++;
	}
	moe_vscratch_free(s);
	return st;
}

/* ---- checking ---- */

/* The tensor `name` with dtype dt and shape [d0] or [d0, d1] (d1 < 0: one dimension); NULL with a
 * FORMAT error otherwise (or when *st already holds an error). */
static const struct moe_st_tensor *find_exact(const char *path, const struct moe_st_file *f, const char *name,
					      enum moe_st_dtype dt, int64_t d0, int64_t d1, enum moe_status *st)
{
	const struct moe_st_tensor *t = moe_st_find(f, name);
	const int ndim = d1 < 0 ? 1 : 2;
	if (*st != MOE_OK)
		return NULL;
	if (!t) {
		*st = moe_fail(MOE_ERR_FORMAT, "vectors %s: tensor '%s' missing", path, name);
		return NULL;
	}
	if (t->dtype != dt || t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
		*st = moe_fail(MOE_ERR_FORMAT, "vectors %s: tensor '%s' is %s with %d dims [%lld, %lld], expected %s "
			       "[%lld, %lld] for this case", path, name, moe_st_dtype_name(t->dtype), t->ndim,
			       (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), moe_st_dtype_name(dt),
			       (long long)d0, (long long)(d1 < 0 ? 0 : d1));
		return NULL;
	}
	return t;
}

/* find_exact, copied into scratch slot `slot` (aligned, writable). */
static void *want(const char *path, const struct moe_st_file *f, const char *name, enum moe_st_dtype dt,
		  int64_t d0, int64_t d1, struct moe_vscratch *s, int slot, enum moe_status *st)
{
	const struct moe_st_tensor *t = find_exact(path, f, name, dt, d0, d1, st);
	if (!t)
		return NULL;
	void *p = moe_vscratch_get(s, slot, t->nbytes);
	if (!p) {
		*st = moe_fail(MOE_ERR_NOMEM, "vectors %s: no memory for '%s'", path, name);
		return NULL;
	}
	if (t->nbytes)
		memcpy(p, t->data, t->nbytes);
	return p;
}

static enum moe_status load_q(const char *path, const struct moe_st_file *f, const char *prefix, bool expected,
			      struct moe_qtensor *q, struct moe_vscratch *s, int slot)
{
	char nd_name[64], ns_name[64], gs_name[64];
	enum moe_status st = MOE_OK;
	const char *e = expected ? "expected_" : "";
	snprintf(nd_name, sizeof nd_name, "%s%sdata", e, prefix);
	snprintf(ns_name, sizeof ns_name, "%s%sscales", e, prefix);
	snprintf(gs_name, sizeof gs_name, "%s%sglobal_scale", e, prefix);
	const size_t nd = moe_qtensor_data_bytes(q), ns = moe_qtensor_scale_bytes(q);
	q->data = nd ? want(path, f, nd_name, MOE_ST_U8, (int64_t)nd, -1, s, slot, &st) : NULL;
	q->scales = ns ? want(path, f, ns_name, MOE_ST_U8, (int64_t)ns, -1, s, slot + 1, &st) : NULL;
	const float *gs = want(path, f, gs_name, MOE_ST_F32, 1, -1, s, slot + 2, &st);
	if (st == MOE_OK)
		q->global_scale = *gs;
	return st;
}

/* One expert of a layer file (prefix "e3." or "shared."), into tensors of its own allocation. */
static enum moe_status load_expert_heap(const char *path, const struct moe_st_file *f, const char *prefix,
					const struct moe_expert_params *p, int64_t inter, struct moe_expert_weights *w)
{
	struct moe_qtensor *qs[3] = { &w->gate, &w->up, &w->down };
	static const char *const part[3] = { "gate_", "up_", "down_" };
	enum moe_status st = MOE_OK;
	char name[96];
	for (int i = 0; i < 3 && st == MOE_OK; i++) {
		*qs[i] = (struct moe_qtensor){ .dtype = p->weight_dtype, .scaling = p->weight_scaling,
					       .sf_layout = p->weight_sf_layout, .rows = i < 2 ? inter : p->hidden,
					       .cols = i < 2 ? p->hidden : inter };
		const size_t nd = moe_qtensor_data_bytes(qs[i]), ns = moe_qtensor_scale_bytes(qs[i]);
		/* found (so their sizes are what the file holds) before anything is allocated */
		snprintf(name, sizeof name, "%s%sdata", prefix, part[i]);
		const struct moe_st_tensor *td = nd ? find_exact(path, f, name, MOE_ST_U8, (int64_t)nd, -1, &st) : NULL;
		snprintf(name, sizeof name, "%s%sscales", prefix, part[i]);
		const struct moe_st_tensor *ts = ns ? find_exact(path, f, name, MOE_ST_U8, (int64_t)ns, -1, &st) : NULL;
		snprintf(name, sizeof name, "%s%sglobal_scale", prefix, part[i]);
		const struct moe_st_tensor *tg = find_exact(path, f, name, MOE_ST_F32, 1, -1, &st);
		if (st != MOE_OK || (st = moe_qtensor_alloc(qs[i])) != MOE_OK)
			break;
		if (td)
			memcpy(qs[i]->data, td->data, nd);
		if (ts)
			memcpy(qs[i]->scales, ts->data, ns);
		memcpy(&qs[i]->global_scale, tg->data, 4);
	}
	return st;
}

/* The sizes the case's spec implies must fit in the tensor data the file holds, before anything is
 * allocated from them: a spec saying T=1048576 E=65536 asks for 256 GiB of scratch, and products of
 * huge dimensions overflow. Each array is given with its densest stored element (bits); the
 * tensors' exact shapes are checked afterwards by find_exact. */
static enum moe_status check_sizes(const char *path, const struct moe_st_file *f, const struct moe_vcase *c,
				   const char *spec)
{
	struct dims {
		const char *what;
		int64_t a, b;
		int bits;
	} d[4];
	int n = 0;
	uint64_t have = 0;
	for (size_t i = 0; i < f->ntensors; i++)
		have += f->tensors[i].nbytes;
	const int64_t T = c->T;
	switch (c->op) {
	case MOE_OP_ROUTE:
		d[n++] = (struct dims){ "logits [T, E]", T, c->route.num_experts, 16 };
		d[n++] = (struct dims){ "expected_ids [T, K]", T, c->route.top_k, 32 };
		break;
	case MOE_OP_NORM:
		d[n++] = (struct dims){ "x [rows, cols]", T, c->norm.cols, 16 };
		break;
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE:
		d[n++] = (struct dims){ "x [rows, cols]", T, c->q.cols, 32 };
		break;
	case MOE_OP_LAYER:
		d[n++] = (struct dims){ "logits [T, E]", T, c->route.num_experts, 16 };
		d[n++] = (struct dims){ "expected_ids [T, K]", T, c->route.top_k, 32 };
		d[n++] = (struct dims){ "x [T, H]", T, c->expert.hidden, 32 };
		d[n++] = (struct dims){ "e0.gate_data [I, H]", c->expert.inter, c->expert.hidden, 4 };
		break;
	case MOE_OP_EXPERT:
		d[n++] = (struct dims){ "x [M, H]", T, c->expert.hidden, 32 };
		d[n++] = (struct dims){ "gate_data [I, H]", c->expert.inter, c->expert.hidden, 4 };
		break;
	default:
		break;
	}
	for (int i = 0; i < n; i++) {
		int64_t elems;
		if (d[i].a < 0 || d[i].b < 0 || __builtin_mul_overflow(d[i].a, d[i].b, &elems) ||
		    (uint64_t)elems > have * 8 / (uint64_t)d[i].bits)
			return moe_fail(MOE_ERR_FORMAT, "vectors %s: case '%s' implies %s = %lld x %lld elements, more "
					"than the %llu bytes of tensor data in the file", path, spec, d[i].what,
					(long long)d[i].a, (long long)d[i].b, (unsigned long long)have);
	}
	return MOE_OK;
}

/* The reference ids as stored: K distinct experts in [0, E) per row. The comparators index per-expert
 * arrays with them, so edited ids (hashes recomputed) are refused here, not read out of bounds. */
static enum moe_status check_ids(const char *path, const int32_t *ids, int64_t T, int32_t K, int32_t E)
{
	unsigned char *seen = calloc((size_t)E, 1);
	enum moe_status st = MOE_OK;
	if (!seen)
		return moe_fail(MOE_ERR_NOMEM, "vectors %s: no memory to check expected_ids (E=%d)", path, E);
	for (int64_t t = 0; t < T && st == MOE_OK; t++) {
		const int32_t *row = ids + t * K;
		for (int32_t k = 0; k < K && st == MOE_OK; k++) {
			if (row[k] < 0 || row[k] >= E)
				st = moe_fail(MOE_ERR_FORMAT, "vectors %s: tensor 'expected_ids' [%lld, %d] holds %d, not an "
					      "expert id in [0, %d)", path, (long long)t, (int)k, (int)row[k], (int)E);
			else if (seen[row[k]])
				st = moe_fail(MOE_ERR_FORMAT, "vectors %s: tensor 'expected_ids' row %lld holds expert %d "
					      "twice", path, (long long)t, (int)row[k]);
			else
				seen[row[k]] = 1;
		}
		for (int32_t k = 0; k < K; k++)
			if (row[k] >= 0 && row[k] < E)
				seen[row[k]] = 0;
	}
	free(seen);
	return st;
}

static enum moe_status check_layer(const char *path, const struct moe_st_file *f, const struct moe_backend *b,
				   const struct moe_vcase *c, struct moe_vscratch *s, struct moe_vresult *r)
{
	const struct moe_route_params *p = &c->route;
	const int64_t T = c->T, H = c->expert.hidden;
	const int32_t E = p->num_experts, K = p->top_k;
	const bool hb = p->bias_dtype != MOE_DTYPE_NONE, shared = c->shared != MOE_SHARED_NONE;
	enum moe_status st = MOE_OK;
	char prefix[32];
	if (E > MOE_VEC_MAX_EXPERTS)
		return moe_fail(MOE_ERR_FORMAT, "vectors %s: layer with E=%d experts (at most %d)", path, E,
				MOE_VEC_MAX_EXPERTS);
	float *x = want(path, f, "x", MOE_ST_F32, T, H, s, 0, &st);
	void *logits = want(path, f, "logits", st_of(p->logits_dtype), T, E, s, 1, &st);
	void *bias = hb ? want(path, f, "bias", st_of(p->bias_dtype), E, -1, s, 2, &st) : NULL;
	int32_t *ids = want(path, f, "expected_ids", MOE_ST_I32, T, K, s, 3, &st);
	float *w = want(path, f, "expected_weights", MOE_ST_F32, T, K, s, 4, &st);
	if (st == MOE_OK)
		st = check_ids(path, ids, T, K, E);
	if (st != MOE_OK)
		return st;
	float *L32 = moe_vscratch_get(s, 5, (size_t)(T * E) * 4), *b32 = moe_vscratch_get(s, 6, (size_t)E * 4);
	struct moe_expert_weights *ew = calloc((size_t)E + 1, sizeof *ew);
	if (!L32 || !b32 || !ew)
		st = moe_fail(MOE_ERR_NOMEM, "vectors %s: no memory", path);
	for (int32_t e = 0; e < E + shared && st == MOE_OK; e++) {
		if (e < E)
			snprintf(prefix, sizeof prefix, "e%d.", (int)e);
		else
			snprintf(prefix, sizeof prefix, "shared.");
		st = load_expert_heap(path, f, prefix, &c->expert, e < E ? c->expert.inter : c->shared_inter, &ew[e]);
	}
	if (st == MOE_OK) {
		struct moe_layer_params lp;
		struct moe_layer_weights lw = { ew, shared ? &ew[E] : NULL };
		moe_vcase_problem(c, &lp);
		if (moe_layer_validate(&lp, &lw) != MOE_OK) {
			char why[512];
			snprintf(why, sizeof why, "%s", moe_last_error());
			st = moe_fail(MOE_ERR_FORMAT, "vectors %s: stored layer invalid: %s", path, why);
		}
	}
	if (st == MOE_OK) {
		struct moe_layer_weights lw = { ew, shared ? &ew[E] : NULL };
		moe_load_f32(p->logits_dtype, logits, L32, T * E);
		if (hb)
			moe_load_f32(p->bias_dtype, bias, b32, E);
		moe_vcheck_layer(b, c, x, logits, L32, bias, hb ? b32 : NULL, &lw, ids, w, s, r);
	}
	if (ew)
		moe_free_layer_weights(c, ew);
	return st;
}

static enum moe_status check_file(const char *path, const struct moe_backend *b, const char *bname,
				  unsigned op_mask, struct moe_vscratch *s, struct moe_vreport *rep)
{
	struct moe_st_file f;
	struct moe_vcase c;
	struct moe_vresult r;
	enum moe_status st = moe_st_read(path, &f);
	if (st != MOE_OK)
		return st;
	const char *fmt = moe_st_meta_get(&f, "format"), *spec = moe_st_meta_get(&f, "case");
	const char *group = moe_st_meta_get(&f, "group");
	if (!fmt || strcmp(fmt, MOE_VEC_FORMAT) || !spec) {
		moe_st_free(&f);
		return moe_fail(MOE_ERR_FORMAT, "vectors %s: not a moebench vector file (metadata 'format' must be "
			       "'%s' and 'case' present)", path, MOE_VEC_FORMAT);
	}
	for (size_t i = 0; i < f.ntensors; i++) {
		char key[112], want_hash[20];
		const struct moe_st_tensor *t = &f.tensors[i];
		snprintf(key, sizeof key, "fnv1a64.%s", t->name);
		snprintf(want_hash, sizeof want_hash, "%016llx", (unsigned long long)fnv1a64(t->data, t->nbytes));
		const char *h = moe_st_meta_get(&f, key);
		if (!h || strcmp(h, want_hash)) {
			moe_fail(MOE_ERR_FORMAT, "vectors %s: tensor '%s': %s (the file is damaged)", path, t->name,
				 h ? "hash mismatch" : "no hash in the metadata");
			moe_st_free(&f);
			return MOE_ERR_FORMAT;
		}
	}
	if (moe_vcase_parse(spec, &c) != MOE_OK || moe_vcase_validate(&c) != MOE_OK) {
		char why[512];
		snprintf(why, sizeof why, "%s", moe_last_error());
		moe_fail(MOE_ERR_FORMAT, "vectors %s: bad case '%s': %s", path, spec, why);
		moe_st_free(&f);
		return MOE_ERR_FORMAT;
	}
	if (check_sizes(path, &f, &c, spec) != MOE_OK) {
		moe_st_free(&f);
		return MOE_ERR_FORMAT;
	}
	snprintf(c.group, sizeof c.group, "vectors %s", group ? group : "");
	if (!((op_mask >> c.op) & 1u)) {
		moe_st_free(&f);
		return MOE_OK;
	}
	moe_vresult_init(&r);
	struct moe_layer_params lp;
	if (!moe_backend_provides(b, c.op, moe_vcase_problem(&c, &lp))) {
		r.status = MOE_V_SKIP;
		snprintf(r.reason, sizeof r.reason, moe_backend_provides(b, c.op, NULL) ? "problem not supported"
											 : "not provided");
		moe_st_free(&f);
		return moe_vreport_add(rep, bname, &c, &r);
	}
	const int64_t T = c.T;
	switch (c.op) {
	case MOE_OP_ROUTE: {
		const struct moe_route_params *p = &c.route;
		const int64_t E = p->num_experts, K = p->top_k;
		const bool hb = p->bias_dtype != MOE_DTYPE_NONE;
		void *logits = want(path, &f, "logits", st_of(p->logits_dtype), T, E, s, 0, &st);
		void *bias = hb ? want(path, &f, "bias", st_of(p->bias_dtype), E, -1, s, 1, &st) : NULL;
		int32_t *ids = want(path, &f, "expected_ids", MOE_ST_I32, T, K, s, 2, &st);
		float *w = want(path, &f, "expected_weights", MOE_ST_F32, T, K, s, 3, &st);
		if (st == MOE_OK)
			st = check_ids(path, ids, T, (int32_t)K, (int32_t)E);
		if (st != MOE_OK)
			break;
		float *L32 = moe_vscratch_get(s, 4, (size_t)(T * E) * 4), *b32 = moe_vscratch_get(s, 5, (size_t)E * 4);
		if (!L32 || !b32) {
			st = moe_fail(MOE_ERR_NOMEM, "vectors %s: no memory", path);
			break;
		}
		moe_load_f32(p->logits_dtype, logits, L32, T * E);
		if (hb)
			moe_load_f32(p->bias_dtype, bias, b32, E);
		moe_vcheck_route(b, &c, logits, L32, bias, hb ? b32 : NULL, ids, w, s, &r);
		break;
	}
	case MOE_OP_NORM: {
		const int64_t C = c.norm.cols;
		void *x = want(path, &f, "x", st_of(c.norm.in_dtype), T, C, s, 0, &st);
		void *w = want(path, &f, "w", st_of(c.norm.weight_dtype), C, -1, s, 1, &st);
		double *y = want(path, &f, "expected_y", MOE_ST_F64, T, C, s, 2, &st);
		if (st == MOE_OK)
			moe_vcheck_norm(b, &c, x, w, y, s, &r);
		break;
	}
	case MOE_OP_QUANTIZE:
	case MOE_OP_DEQUANTIZE: {
		struct moe_qtensor q = c.q;
		q.rows = T;
		const bool quant = c.op == MOE_OP_QUANTIZE;
		st = load_q(path, &f, "", quant, &q, s, 0);
		if (quant) {
			float *x = want(path, &f, "x", MOE_ST_F32, T, c.q.cols, s, 3, &st);
			if (st == MOE_OK)
				moe_vcheck_quantize(b, &c, x, &q, s, &r);
		} else {
			float *x = want(path, &f, "expected_x", MOE_ST_F32, T, c.q.cols, s, 3, &st);
			if (st == MOE_OK)
				moe_vcheck_dequantize(b, &c, &q, x, s, &r);
		}
		break;
	}
	case MOE_OP_EXPERT: {
		const struct moe_expert_params *p = &c.expert;
		struct moe_expert_weights w;
		struct moe_qtensor *qs[3] = { &w.gate, &w.up, &w.down };
		static const char *const pre[3] = { "gate_", "up_", "down_" };
		for (int i = 0; i < 3; i++) {
			*qs[i] = (struct moe_qtensor){ .dtype = p->weight_dtype, .scaling = p->weight_scaling,
						       .sf_layout = p->weight_sf_layout,
						       .rows = i < 2 ? p->inter : p->hidden,
						       .cols = i < 2 ? p->hidden : p->inter };
			if (st == MOE_OK)
				st = load_q(path, &f, pre[i], false, qs[i], s, 3 + 3 * i);
		}
		float *x = want(path, &f, "x", MOE_ST_F32, T, p->hidden, s, 0, &st);
		double *y = want(path, &f, "expected_y", MOE_ST_F64, T, p->hidden, s, 1, &st);
		double *bound = want(path, &f, "bound", MOE_ST_F64, T, p->hidden, s, 2, &st);
		struct moe_expert_params ep = *p;
		ep.tokens = T;
		if (st == MOE_OK && moe_expert_validate(&ep, &w) != MOE_OK) {
			char why[512];
			snprintf(why, sizeof why, "%s", moe_last_error());
			st = moe_fail(MOE_ERR_FORMAT, "vectors %s: stored weights invalid: %s", path, why);
		}
		if (st == MOE_OK)
			moe_vcheck_expert(b, &c, x, &w, y, bound, s, &r);
		break;
	}
	case MOE_OP_LAYER:
		st = check_layer(path, &f, b, &c, s, &r);
		break;
	default:
		st = moe_fail(MOE_ERR_FORMAT, "vectors %s: op %d has no vector format", path, (int)c.op);
		break;
	}
	moe_st_free(&f);
	if (st != MOE_OK)
		return st;
	return moe_vreport_add(rep, bname, &c, &r);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum moe_status moe_vectors_check(const char *dir, const struct moe_backend *b, const char *bname,
				  unsigned op_mask, struct moe_vreport *rep)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;
	enum moe_status st = MOE_OK;
	if (!d)
		return moe_fail(MOE_ERR_IO, "verify --vectors: cannot open directory '%s': %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		const size_t len = strlen(de->d_name);
		if (len < 12 || strcmp(de->d_name + len - 12, ".safetensors"))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **v = realloc(names, cap * sizeof *v);
			if (!v) {
				st = moe_fail(MOE_ERR_NOMEM, "verify --vectors: no memory");
				break;
			}
			names = v;
		}
		if (!(names[n] = strdup(de->d_name))) {
			st = moe_fail(MOE_ERR_NOMEM, "verify --vectors: no memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (st == MOE_OK && n == 0)
		st = moe_fail(MOE_ERR_FORMAT, "verify --vectors: no .safetensors files in '%s'", dir);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	struct moe_vscratch *s = st == MOE_OK ? moe_vscratch_new() : NULL;
	if (st == MOE_OK && !s)
		st = moe_fail(MOE_ERR_NOMEM, "verify --vectors: no memory");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < n && st == MOE_OK; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		st = check_file(path, b, bname, op_mask, s, rep);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rep->seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	moe_vscratch_free(s);
	return st;
}
