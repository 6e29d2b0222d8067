/* Memory-mapped safetensors reader for checkpoints: strict header validation, sharded index,
 * name lookup by binary search (safetensors_map.h states the contract). */
#include "safetensors_map.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER_BYTES (256u << 20)

static const struct {
	const char *name;
	size_t size;
} dtypes[MOE_STMAP_DTYPE_COUNT] = {
	[MOE_STMAP_F64] = {"F64", 8},         [MOE_STMAP_F32] = {"F32", 4},   [MOE_STMAP_F16] = {"F16", 2},
	[MOE_STMAP_BF16] = {"BF16", 2},       [MOE_STMAP_I64] = {"I64", 8},   [MOE_STMAP_I32] = {"I32", 4},
	[MOE_STMAP_I16] = {"I16", 2},         [MOE_STMAP_I8] = {"I8", 1},     [MOE_STMAP_U8] = {"U8", 1},
	[MOE_STMAP_BOOL] = {"BOOL", 1},       [MOE_STMAP_F8_E4M3] = {"F8_E4M3", 1},
	[MOE_STMAP_F8_E5M2] = {"F8_E5M2", 1},
};

size_t moe_stmap_dtype_size(enum moe_stmap_dtype t)
{
	return (unsigned)t < MOE_STMAP_DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *moe_stmap_dtype_name(enum moe_stmap_dtype t)
{
	return (unsigned)t < MOE_STMAP_DTYPE_COUNT ? dtypes[t].name : "?";
}

bool moe_stmap_dtype_parse(const char *s, enum moe_stmap_dtype *out)
{
	for (int i = 0; i < MOE_STMAP_DTYPE_COUNT; i++)
		if (strcmp(s, dtypes[i].name) == 0) {
			*out = (enum moe_stmap_dtype)i;
			return true;
		}
	return false;
}

void moe_stmap_close(struct moe_stmap *m)
{
	if (!m)
		return;
	for (int64_t i = 0; i < m->ntensors; i++)
		free(m->tensors[i].name);
	free(m->tensors);
	for (int32_t f = 0; f < m->nfiles; f++) {
		if (m->maps && m->maps[f])
			munmap(m->maps[f], m->sizes[f]);
		if (m->paths)
			free(m->paths[f]);
	}
	free(m->paths);
	free(m->maps);
	free(m->sizes);
	memset(m, 0, sizeof *m);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct moe_stmap_tensor *)a)->name, ((const struct moe_stmap_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
	const struct moe_stmap_tensor *x = *(const struct moe_stmap_tensor *const *)a;
	const struct moe_stmap_tensor *y = *(const struct moe_stmap_tensor *const *)b;
	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;
}

const struct moe_stmap_tensor *moe_stmap_find(const struct moe_stmap *m, const char *name)
{
	struct moe_stmap_tensor key = {.name = (char *)name};
	if (!m || !m->tensors)
		return NULL;
	return bsearch(&key, m->tensors, (size_t)m->ntensors, sizeof key, cmp_name);
}

const char *moe_stmap_path(const struct moe_stmap *m, const struct moe_stmap_tensor *t)
{
	return (t && t->file >= 0 && t->file < m->nfiles) ? m->paths[t->file] : "?";
}

/* Adds a file slot (path copied); returns its index or -1 on out of memory. */
static int32_t add_file(struct moe_stmap *m, const char *path)
{
	int32_t n = m->nfiles + 1;
	char **p = realloc(m->paths, (size_t)n * sizeof *p);
	if (!p)
		return -1;
	m->paths = p;
	void **mp = realloc(m->maps, (size_t)n * sizeof *mp);
	if (!mp)
		return -1;
	m->maps = mp;
	size_t *sz = realloc(m->sizes, (size_t)n * sizeof *sz);
	if (!sz)
		return -1;
	m->sizes = sz;
	m->paths[n - 1] = strdup(path);
	m->maps[n - 1] = NULL;
	m->sizes[n - 1] = 0;
	m->nfiles = n;
	return m->paths[n - 1] ? n - 1 : -1;
}

static enum moe_status map_file(struct moe_stmap *m, int32_t f)
{
	const char *path = m->paths[f];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return moe_fail(MOE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return moe_fail(MOE_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_size < 8) {
		close(fd);
		return moe_fail(MOE_ERR_FORMAT, "%s: truncated safetensors file (%lld bytes, the header length alone "
				"takes 8)", path, (long long)st.st_size);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return moe_fail(MOE_ERR_IO, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size, strerror(errno));
	m->maps[f] = p;
	m->sizes[f] = (size_t)st.st_size;
	m->bytes_mapped += (size_t)st.st_size;
	return MOE_OK;
}

static bool get_int(json_t *v, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = json_integer_value(v);
	return true;
}

/* Parses and validates the header of file f; appends its tensors to m. */
static enum moe_status read_header(struct moe_stmap *m, int32_t f)
{
	const char *path = m->paths[f];
	const uint8_t *base = m->maps[f];
	const size_t size = m->sizes[f];
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | base[i];
	if (hlen > size - 8)
		return moe_fail(MOE_ERR_FORMAT, "%s: truncated or malformed: header length %llu runs past the end of the "
				"file (%zu bytes)", path, (unsigned long long)hlen, size);
	if (hlen > MAX_HEADER_BYTES || hlen < 2)
		return moe_fail(MOE_ERR_FORMAT, "%s: header length %llu out of range", path, (unsigned long long)hlen);
	const uint8_t *data = base + 8 + hlen;
	const size_t data_size = size - 8 - (size_t)hlen;

	json_error_t jerr;
	json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return moe_fail(MOE_ERR_FORMAT, "%s: header is not valid JSON (line %d column %d: %s)", path, jerr.line,
				jerr.column, jerr.text);
	enum moe_status s = MOE_OK;
	struct moe_stmap_tensor **order = NULL;
	if (!json_is_object(root)) {
		s = moe_fail(MOE_ERR_FORMAT, "%s: header is not a JSON object", path);
		goto out;
	}
	size_t n = json_object_size(root);
	struct moe_stmap_tensor *t = realloc(m->tensors, ((size_t)m->ntensors + n + 1) * sizeof *t);
	if (!t) {
		s = moe_fail(MOE_ERR_NOMEM, "%s: out of memory for %zu tensor entries", path, n);
		goto out;
	}
	m->tensors = t;
	const int64_t first = m->ntensors;
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0) {
			const char *mk;
			json_t *mv;
			if (!json_is_object(val)) {
				s = moe_fail(MOE_ERR_FORMAT, "%s: __metadata__ is not an object", path);
				goto out;
			}
			json_object_foreach(val, mk, mv) if (!json_is_string(mv))
			{
				s = moe_fail(MOE_ERR_FORMAT, "%s: __metadata__ entry \"%s\" is not a string", path, mk);
				goto out;
			}
			continue;
		}
		if (!json_is_object(val)) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: entry is not an object", path, key);
			goto out;
		}
		json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
		       *jo = json_object_get(val, "data_offsets");
		if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: needs a string dtype, a shape array and data_offsets "
				     "[begin, end]", path, key);
			goto out;
		}
		struct moe_stmap_tensor e = {.file = f};
		if (!moe_stmap_dtype_parse(json_string_value(jd), &e.dtype)) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: unknown dtype \"%s\"", path, key, json_string_value(jd));
			goto out;
		}
		if (json_array_size(js) > MOE_STMAP_MAX_DIMS) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: %zu dimensions (at most %d)", path, key,
				     json_array_size(js), MOE_STMAP_MAX_DIMS);
			goto out;
		}
		e.ndim = (int32_t)json_array_size(js);
		uint64_t count = 1;
		bool ok = true;
		for (int32_t d = 0; d < e.ndim && ok; d++)
			ok = get_int(json_array_get(js, (size_t)d), &e.shape[d]) &&
			     !__builtin_mul_overflow(count, (uint64_t)e.shape[d], &count);
		int64_t begin = 0, end = 0;
		uint64_t nbytes = 0;
		ok = ok && !__builtin_mul_overflow(count, (uint64_t)moe_stmap_dtype_size(e.dtype), &nbytes);
		if (!ok) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: shape is not a list of non-negative integers, or its "
				     "size overflows", path, key);
			goto out;
		}
		if (!get_int(json_array_get(jo, 0), &begin) || !get_int(json_array_get(jo, 1), &end) || begin > end ||
		    (uint64_t)end > data_size) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: data_offsets [%lld, %lld] lie outside the %zu-byte data "
				     "section (file truncated or header lying)", path, key, (long long)begin, (long long)end,
				     data_size);
			goto out;
		}
		if ((uint64_t)(end - begin) != nbytes) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: data_offsets span %lld bytes but %s of that shape takes "
				     "%llu", path, key, (long long)(end - begin), moe_stmap_dtype_name(e.dtype),
				     (unsigned long long)nbytes);
			goto out;
		}
		e.data = data + begin;
		e.bytes = (size_t)nbytes;
		e.name = strdup(key);
		if (!e.name) {
			s = moe_fail(MOE_ERR_NOMEM, "%s: out of memory", path);
			goto out;
		}
		m->tensors[m->ntensors++] = e;
	}
	/* overlaps and holes: sorted by offset, each range must start where the previous ended */
	const int64_t cnt = m->ntensors - first;
	order = malloc((size_t)(cnt + 1) * sizeof *order);
	if (!order) {
		s = moe_fail(MOE_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	for (int64_t i = 0; i < cnt; i++)
		order[i] = &m->tensors[first + i];
	qsort(order, (size_t)cnt, sizeof *order, cmp_offset);
	const uint8_t *at = data;
	for (int64_t i = 0; i < cnt; i++) {
		if (order[i]->data < at) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: data_offsets overlap tensor %s", path, order[i]->name,
				     order[i - 1]->name);
			goto out;
		}
		if (order[i]->data > at) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s: %lld bytes before it belong to no tensor (the data "
				     "section must be covered exactly)", path, order[i]->name,
				     (long long)(order[i]->data - at));
			goto out;
		}
		at = order[i]->data + order[i]->bytes;
	}
	if (at != data + data_size)
		s = moe_fail(MOE_ERR_FORMAT, "%s: %lld bytes after the last tensor belong to no tensor (header and file "
			     "size disagree)", path, (long long)(data + data_size - at));
out:
	free(order);
	json_decref(root);
	return s;
}

static enum moe_status finish(struct moe_stmap *m)
{
	if (m->ntensors > 1)
		qsort(m->tensors, (size_t)m->ntensors, sizeof *m->tensors, cmp_name);
	for (int64_t i = 1; i < m->ntensors; i++)
		if (strcmp(m->tensors[i - 1].name, m->tensors[i].name) == 0)
			return moe_fail(MOE_ERR_FORMAT, "tensor %s is in both %s and %s", m->tensors[i].name,
					moe_stmap_path(m, &m->tensors[i - 1]), moe_stmap_path(m, &m->tensors[i]));
	return MOE_OK;
}

enum moe_status moe_stmap_open_file(const char *path, struct moe_stmap *out)
{
	memset(out, 0, sizeof *out);
	int32_t f = add_file(out, path);
	enum moe_status s = f < 0 ? moe_fail(MOE_ERR_NOMEM, "%s: out of memory", path) : map_file(out, f);
	if (s == MOE_OK)
		s = read_header(out, f);
	if (s == MOE_OK)
		s = finish(out);
	if (s != MOE_OK)
		moe_stmap_close(out);
	return s;
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static enum moe_status open_index(const char *dir, const char *index, struct moe_stmap *m)
{
	json_error_t jerr;
	json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return moe_fail(errno == ENOENT ? MOE_ERR_IO : MOE_ERR_FORMAT, "%s: not valid JSON (line %d: %s)", index,
				jerr.line, jerr.text);
	enum moe_status s = MOE_OK;
	json_t *wm = json_object_get(root, "weight_map");
	if (!json_is_object(wm) || json_object_size(wm) == 0) {
		s = moe_fail(MOE_ERR_FORMAT, "%s: weight_map is missing, empty or not an object", index);
		goto out;
	}
	const char *name;
	json_t *v;
	json_object_foreach(wm, name, v) {
		if (!json_is_string(v)) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: weight_map entry %s is not a file name", index, name);
			goto out;
		}
		const char *shard = json_string_value(v);
		if (!*shard || strchr(shard, '/') || strcmp(shard, "..") == 0 || strcmp(shard, ".") == 0) {
			s = moe_fail(MOE_ERR_FORMAT, "%s: weight_map entry %s names \"%s\", not a file in the same folder",
				     index, name, shard);
			goto out;
		}
		char *path = join(dir, shard);
		if (!path) {
			s = moe_fail(MOE_ERR_NOMEM, "out of memory");
			goto out;
		}
		int32_t f = -1;
		for (int32_t i = 0; i < m->nfiles; i++)
			if (strcmp(m->paths[i], path) == 0)
				f = i;
		if (f < 0) {
			f = add_file(m, path);
			if (f < 0)
				s = moe_fail(MOE_ERR_NOMEM, "out of memory");
			if (s == MOE_OK && access(path, F_OK) != 0)
				s = moe_fail(MOE_ERR_IO, "%s: shard %s (holding tensor %s) is missing: %s", index, shard, name,
					     strerror(errno));
			if (s == MOE_OK)
				s = map_file(m, f);
			if (s == MOE_OK)
				s = read_header(m, f);
		}
		free(path);
		if (s != MOE_OK)
			goto out;
	}
	s = finish(m);
	if (s != MOE_OK)
		goto out;
	json_object_foreach(wm, name, v) {
		const struct moe_stmap_tensor *t = moe_stmap_find(m, name);
		const char *shard = json_string_value(v);
		const char *tp = t ? moe_stmap_path(m, t) : NULL;
		size_t tl = tp ? strlen(tp) : 0, sl = strlen(shard);
		if (!t || tl < sl + 1 || strcmp(tp + tl - sl, shard) != 0 || tp[tl - sl - 1] != '/') {
			s = moe_fail(MOE_ERR_FORMAT, "%s: tensor %s is mapped to %s but %s", index, name, shard,
				     t ? "lives in another shard" : "that shard does not hold it");
			goto out;
		}
	}
out:
	json_decref(root);
	return s;
}

enum moe_status moe_stmap_open_dir(const char *dir, struct moe_stmap *out)
{
	memset(out, 0, sizeof *out);
	char *index = join(dir, "model.safetensors.index.json");
	char *single = join(dir, "model.safetensors");
	enum moe_status s;
	if (!index || !single)
		s = moe_fail(MOE_ERR_NOMEM, "out of memory");
	else if (access(index, F_OK) == 0)
		s = open_index(dir, index, out);
	else if (access(single, F_OK) == 0) {
		free(index);
		index = NULL;
		s = moe_stmap_open_file(single, out);
		free(single);
		return s;
	} else
		s = moe_fail(MOE_ERR_IO, "%s: neither model.safetensors nor model.safetensors.index.json is there", dir);
	if (s != MOE_OK)
		moe_stmap_close(out);
	free(index);
	free(single);
	return s;
}
