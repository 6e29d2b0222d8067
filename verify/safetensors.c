/* safetensors files, in the layout Python's safetensors writes and numpy can parse by hand:
 *
 *   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
 *   bytes [8, 8+N)      UTF-8 JSON object: {"name": {"dtype": "F32", "shape": [..],
 *                       "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v", ..}},
 *                       possibly padded with trailing spaces
 *   bytes [8+N, size)   the data area; data_offsets are relative to its start, and the tensors
 *                       tile it exactly: no gaps, no overlaps, nothing after the last one.
 *
 * Reading maps the file and validates the whole header before handing out a pointer: header length
 * against the file size (and against safetensors' own 100 MB cap), JSON syntax and duplicate keys
 * (jansson), entry types, dtype names, the shape's element count (overflow-checked) times the dtype
 * size against the byte range, the ranges against the data area and each other, and metadata
 * values being strings. Any violation is MOE_ERR_FORMAT with a message naming the file, the tensor
 * and the numbers; nothing outside the mapping is ever read. Tensors come back in data order.
 * A tensor whose bytes are not aligned to its element size in the mapping (the format does not
 * promise alignment) gets an aligned private copy, so `data` can always be read as its element type.
 *
 * Writing lays tensors out in the order given, pads the header with spaces so the data area starts
 * at a multiple of 8, writes a temporary file in the destination's folder, fsyncs it and renames it
 * over the destination, so a reader sees the old file or the new one, never a torn one. Arguments
 * that cannot make a valid file (sizes that disagree, duplicate names) are MOE_ERR_INVALID_ARG;
 * system failures are MOE_ERR_IO with the system's reason. Tensor bytes are written as they are in
 * memory, which is little-endian on every host moebench builds for. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

/* safetensors' own reader refuses larger headers; so do we, before allocating anything. */
#define MOE_ST_MAX_HEADER 100000000ull

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[MOE_ST_F32] = { "F32", 4 }, [MOE_ST_F64] = { "F64", 8 }, [MOE_ST_BF16] = { "BF16", 2 },
	[MOE_ST_I32] = { "I32", 4 }, [MOE_ST_I64] = { "I64", 8 }, [MOE_ST_U8] = { "U8", 1 },
	[MOE_ST_U16] = { "U16", 2 },
};
static const int dtype_count = (int)(sizeof dtypes / sizeof dtypes[0]);

static bool dtype_valid(enum moe_st_dtype t)
{
	return (int)t >= 0 && (int)t < dtype_count;
}

size_t moe_st_dtype_size(enum moe_st_dtype t)
{
	return dtype_valid(t) ? dtypes[t].size : 0;
}

const char *moe_st_dtype_name(enum moe_st_dtype t)
{
	return dtype_valid(t) ? dtypes[t].name : "?";
}

/* What a file object owns besides its two arrays. */
struct st_priv {
	void *map;
	size_t map_size;
	json_t *root;   /* keeps the metadata strings alive */
	void **copies;  /* aligned copies of misaligned tensors */
	size_t ncopies;
};

/* A pointer for zero-byte tensors: valid, aligned for every dtype, never dereferenced. */
static const uint64_t empty_data;

/* ---- reading ---- */

struct entry {
	size_t index; /* position in the header, to keep the order of equal ranges stable */
	uint64_t begin, end;
	struct moe_st_tensor t;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static bool json_uint(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static enum moe_status parse_tensor(const char *path, const char *name, const json_t *v,
				    struct entry *e)
{
	if (strlen(name) >= sizeof e->t.name)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor name '%.40s...' is %zu bytes, "
						"at most %zu supported", path, name, strlen(name),
				sizeof e->t.name - 1);
	strcpy(e->t.name, name);
	if (!json_is_object(v))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' is not a JSON object", path, name);

	const json_t *dt = json_object_get(v, "dtype");
	if (!json_is_string(dt))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' has no string \"dtype\"", path, name);
	int k = 0;
	while (k < dtype_count && strcmp(dtypes[k].name, json_string_value(dt)) != 0)
		k++;
	if (k == dtype_count)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' has dtype '%.20s' (supported: F32, "
						"F64, BF16, I32, I64, U8, U16)", path, name, json_string_value(dt));
	e->t.dtype = (enum moe_st_dtype)k;

	const json_t *shape = json_object_get(v, "shape");
	if (!json_is_array(shape))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' has no \"shape\" array", path, name);
	if (json_array_size(shape) > MOE_ST_MAX_DIMS)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' has %zu dimensions, at most %d "
						"supported", path, name, json_array_size(shape), MOE_ST_MAX_DIMS);
	e->t.ndim = (int)json_array_size(shape);
	uint64_t count = 1;
	for (int d = 0; d < e->t.ndim; d++) {
		uint64_t n;
		if (!json_uint(json_array_get(shape, (size_t)d), &n))
			return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' shape[%d] is not a "
							"non-negative integer", path, name, d);
		if (__builtin_mul_overflow(count, n, &count))
			return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' has more elements than "
							"64 bits count", path, name);
		e->t.shape[d] = (int64_t)n;
	}
	uint64_t nbytes;
	if (__builtin_mul_overflow(count, (uint64_t)dtypes[k].size, &nbytes))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' has more bytes than 64 bits "
						"count", path, name);

	const json_t *off = json_object_get(v, "data_offsets");
	if (!json_is_array(off) || json_array_size(off) != 2 || !json_uint(json_array_get(off, 0), &e->begin) ||
	    !json_uint(json_array_get(off, 1), &e->end))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' needs \"data_offsets\": [begin, end] "
						"with non-negative integers", path, name);
	if (e->end < e->begin)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' data_offsets [%llu, %llu] end "
						"before they begin", path, name, (unsigned long long)e->begin,
				(unsigned long long)e->end);
	if (e->end - e->begin != nbytes) {
		char dims[96] = "";
		for (int d = 0, used = 0; d < e->t.ndim && used < (int)sizeof dims; d++)
			used += snprintf(dims + used, sizeof dims - (size_t)used, "%s%lld", d ? "," : "",
					 (long long)e->t.shape[d]);
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' of shape [%s] and dtype %s needs "
						"%llu bytes, its data_offsets [%llu, %llu] hold %llu", path, name,
				dims, dtypes[k].name, (unsigned long long)nbytes, (unsigned long long)e->begin,
				(unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
	}
	e->t.nbytes = (size_t)nbytes;
	return MOE_OK;
}

static enum moe_status parse_meta(const char *path, const json_t *m, struct moe_st_file *f)
{
	if (!json_is_object(m))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: \"__metadata__\" is not a JSON object", path);
	f->meta = calloc(json_object_size(m) + 1, sizeof *f->meta);
	if (!f->meta)
		return moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory for %zu metadata entries", path,
				json_object_size(m));
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)m, key, val) {
		if (!json_is_string(val))
			return moe_fail(MOE_ERR_FORMAT, "safetensors %s: metadata '%s' is not a string", path, key);
		f->meta[f->nmeta].key = key;
		f->meta[f->nmeta].value = json_string_value(val);
		f->nmeta++;
	}
	return MOE_OK;
}

/* Sorts the entries by range and checks that they tile [0, data_size) exactly. */
static enum moe_status check_layout(const char *path, struct entry *e, size_t n, uint64_t data_size)
{
	qsort(e, n, sizeof *e, entry_cmp);
	uint64_t cursor = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].end > data_size)
			return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' data_offsets [%llu, %llu] run "
							"past the %llu-byte data area", path, e[i].t.name,
					(unsigned long long)e[i].begin, (unsigned long long)e[i].end,
					(unsigned long long)data_size);
		if (e[i].begin < cursor)
			return moe_fail(MOE_ERR_FORMAT, "safetensors %s: tensor '%s' data_offsets [%llu, %llu] "
							"overlap the tensor before it, which ends at %llu", path,
					e[i].t.name, (unsigned long long)e[i].begin,
					(unsigned long long)e[i].end, (unsigned long long)cursor);
		if (e[i].begin > cursor)
			return moe_fail(MOE_ERR_FORMAT, "safetensors %s: bytes [%llu, %llu) of the data area "
							"belong to no tensor", path, (unsigned long long)cursor,
					(unsigned long long)e[i].begin);
		cursor = e[i].end;
	}
	if (cursor != data_size)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: bytes [%llu, %llu) of the data area belong to "
						"no tensor", path, (unsigned long long)cursor,
				(unsigned long long)data_size);
	return MOE_OK;
}

/* Points each tensor at its bytes, copying the misaligned ones. */
static enum moe_status place_data(const char *path, struct moe_st_file *f, struct st_priv *pv,
				  const struct entry *e, const unsigned char *area)
{
	pv->copies = calloc(f->ntensors + 1, sizeof *pv->copies);
	if (!pv->copies)
		return moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory", path);
	for (size_t i = 0; i < f->ntensors; i++) {
		struct moe_st_tensor *t = &f->tensors[i];
		*t = e[i].t;
		const unsigned char *src = area + e[i].begin;
		if (t->nbytes == 0) {
			t->data = &empty_data;
		} else if ((uintptr_t)src % moe_st_dtype_size(t->dtype) == 0) {
			t->data = src;
		} else {
			void *copy = malloc(t->nbytes);
			if (!copy)
				return moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory copying tensor "
							       "'%s' (%zu bytes)", path, t->name, t->nbytes);
			memcpy(copy, src, t->nbytes);
			pv->copies[pv->ncopies++] = copy;
			t->data = copy;
		}
	}
	return MOE_OK;
}

static enum moe_status parse_file(const char *path, struct moe_st_file *f, struct st_priv *pv)
{
	const unsigned char *bytes = pv->map;
	const size_t size = pv->map_size;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | bytes[i];
	if (hlen > MOE_ST_MAX_HEADER)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: header length %llu exceeds the format's "
						"limit of %llu bytes", path, (unsigned long long)hlen, MOE_ST_MAX_HEADER);
	if (hlen > size - 8)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: header length %llu exceeds the %zu bytes "
						"after the length field", path, (unsigned long long)hlen, size - 8);

	json_error_t jerr;
	pv->root = json_loadb((const char *)bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!pv->root)
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: header is not valid JSON: %s (header byte %d)",
				path, jerr.text, jerr.position);
	if (!json_is_object(pv->root))
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: header is JSON but not an object", path);

	size_t n = json_object_size(pv->root);
	struct entry *e = calloc(n + 1, sizeof *e);
	f->tensors = calloc(n + 1, sizeof *f->tensors);
	if (!e || !f->tensors) {
		free(e);
		return moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory for %zu header entries", path, n);
	}
	enum moe_status s = MOE_OK;
	size_t count = 0;
	const char *key;
	json_t *val;
	json_object_foreach(pv->root, key, val) {
		if (strcmp(key, "__metadata__") == 0) {
			s = parse_meta(path, val, f);
		} else {
			e[count].index = count;
			s = parse_tensor(path, key, val, &e[count]);
			count++;
		}
		if (s != MOE_OK)
			break;
	}
	if (s == MOE_OK)
		s = check_layout(path, e, count, size - 8 - hlen);
	if (s == MOE_OK) {
		f->ntensors = count;
		s = place_data(path, f, pv, e, bytes + 8 + hlen);
	}
	free(e);
	return s;
}

enum moe_status moe_st_read(const char *path, struct moe_st_file *out)
{
	if (!out)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors: no output given");
	memset(out, 0, sizeof *out);
	if (!path || !path[0])
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors: no path given");

	/* O_NONBLOCK: a FIFO under a vector file's name must be refused below, not block open() */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return moe_fail(MOE_ERR_IO, "safetensors %s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return moe_fail(MOE_ERR_IO, "safetensors %s: cannot stat: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return moe_fail(MOE_ERR_IO, "safetensors %s: not a regular file (a FIFO, device or folder)", path);
	}
	if (st.st_size < 8) {
		close(fd);
		return moe_fail(MOE_ERR_FORMAT, "safetensors %s: file is %lld bytes, too short for the 8-byte "
						"header length", path, (long long)st.st_size);
	}
	struct st_priv *pv = calloc(1, sizeof *pv);
	if (!pv) {
		close(fd);
		return moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory", path);
	}
	out->priv = pv;
	pv->map_size = (size_t)st.st_size;
	pv->map = mmap(NULL, pv->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int err = errno;
	close(fd);
	if (pv->map == MAP_FAILED) {
		pv->map = NULL;
		moe_st_free(out);
		return moe_fail(MOE_ERR_IO, "safetensors %s: cannot map %zu bytes: %s", path,
				(size_t)st.st_size, strerror(err));
	}
	enum moe_status s = parse_file(path, out, pv);
	if (s != MOE_OK)
		moe_st_free(out);
	return s;
}

void moe_st_free(struct moe_st_file *f)
{
	if (!f)
		return;
	struct st_priv *pv = f->priv;
	if (pv) {
		if (pv->map)
			munmap(pv->map, pv->map_size);
		json_decref(pv->root);
		for (size_t i = 0; i < pv->ncopies; i++)
			free(pv->copies[i]);
		free(pv->copies);
		free(pv);
	}
	free(f->tensors);
	free(f->meta);
	memset(f, 0, sizeof *f);
}

const struct moe_st_tensor *moe_st_find(const struct moe_st_file *f, const char *name)
{
	for (size_t i = 0; f && name && i < f->ntensors; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

const char *moe_st_meta_get(const struct moe_st_file *f, const char *key)
{
	for (size_t i = 0; f && key && i < f->nmeta; i++)
		if (strcmp(f->meta[i].key, key) == 0)
			return f->meta[i].value;
	return NULL;
}

/* ---- writing ---- */

static enum moe_status check_tensor_arg(const char *path, const struct moe_st_tensor *t)
{
	size_t len = strnlen(t->name, sizeof t->name);
	if (len == 0 || len == sizeof t->name)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor name %s", path,
				len ? "not terminated within 96 bytes" : "is empty");
	if (strcmp(t->name, "__metadata__") == 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: \"__metadata__\" is reserved, not a "
						     "tensor name", path);
	if (!dtype_valid(t->dtype))
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor '%s' has dtype %d, not one of "
						     "enum moe_st_dtype", path, t->name, (int)t->dtype);
	if (t->ndim < 0 || t->ndim > MOE_ST_MAX_DIMS)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor '%s' has ndim %d, want 0..%d", path,
				t->name, t->ndim, MOE_ST_MAX_DIMS);
	uint64_t count = 1;
	for (int d = 0; d < t->ndim; d++) {
		if (t->shape[d] < 0 || __builtin_mul_overflow(count, (uint64_t)t->shape[d], &count))
			return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor '%s' shape[%d] = %lld is "
							     "negative or overflows the element count", path,
					t->name, d, (long long)t->shape[d]);
	}
	uint64_t nbytes;
	if (__builtin_mul_overflow(count, (uint64_t)dtypes[t->dtype].size, &nbytes) || nbytes != t->nbytes)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor '%s' has %llu elements of %s but "
						     "nbytes = %zu", path, t->name, (unsigned long long)count,
				dtypes[t->dtype].name, t->nbytes);
	if (t->nbytes && !t->data)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor '%s' has %zu bytes but no data",
				path, t->name, t->nbytes);
	return MOE_OK;
}

/* Builds the header JSON text, padded with spaces so that 8 + its length is a multiple of 8. */
static enum moe_status build_header(const char *path, const struct moe_st_tensor *tensors, size_t ntensors,
				    const struct moe_st_meta *meta, size_t nmeta, char **text, size_t *len)
{
	enum moe_status s = MOE_OK;
	json_t *root = json_object();
	json_t *m = nmeta ? json_object() : NULL;
	if (!root || (nmeta && !m)) {
		s = moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < nmeta; i++) {
		if (!meta[i].key || !meta[i].value) {
			s = moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: metadata entry %zu has a NULL %s", path,
				     i, meta[i].key ? "value" : "key");
			goto out;
		}
		if (json_object_get(m, meta[i].key)) {
			s = moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: metadata key '%s' given twice", path,
				     meta[i].key);
			goto out;
		}
		if (json_object_set_new(m, meta[i].key, json_string(meta[i].value)) != 0) {
			s = moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: metadata '%s' is not valid UTF-8", path,
				     meta[i].key);
			goto out;
		}
	}
	if (m) {
		json_object_set_new(root, "__metadata__", m);
		m = NULL;
	}
	uint64_t offset = 0;
	for (size_t i = 0; i < ntensors; i++) {
		const struct moe_st_tensor *t = &tensors[i];
		s = check_tensor_arg(path, t);
		if (s != MOE_OK)
			goto out;
		if (json_object_get(root, t->name)) {
			s = moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor name '%s' given twice", path,
				     t->name);
			goto out;
		}
		json_t *shape = json_array();
		for (int d = 0; shape && d < t->ndim; d++)
			json_array_append_new(shape, json_integer(t->shape[d]));
		json_t *entry = json_pack("{s:s, s:o, s:[I,I]}", "dtype", dtypes[t->dtype].name, "shape", shape,
					  "data_offsets", (json_int_t)offset, (json_int_t)(offset + t->nbytes));
		if (!entry || json_object_set_new(root, t->name, entry) != 0) {
			s = moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: tensor '%s' cannot be described in "
							     "JSON (name not UTF-8?)", path, t->name);
			goto out;
		}
		offset += t->nbytes;
	}
	char *json = json_dumps(root, JSON_COMPACT);
	if (!json) {
		s = moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory for the header", path);
		goto out;
	}
	size_t n = strlen(json), padded = (n + 7) / 8 * 8;
	*text = malloc(padded + 1);
	if (*text) {
		memcpy(*text, json, n);
		memset(*text + n, ' ', padded - n);
		(*text)[padded] = '\0';
		*len = padded;
	} else {
		s = moe_fail(MOE_ERR_NOMEM, "safetensors %s: out of memory for the header", path);
	}
	free(json);
out:
	json_decref(m);
	json_decref(root);
	return s;
}

static bool write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0)
			errno = EIO;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Creates a fresh temporary file next to path (same folder, so rename is atomic). */
static int open_temp(const char *path, char *tmp, size_t cap)
{
	static _Atomic unsigned counter;
	for (int attempt = 0; attempt < 100; attempt++) {
		if ((size_t)snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), counter++) >= cap) {
			errno = ENAMETOOLONG;
			return -1;
		}
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* fsync the folder holding path, so the rename itself survives a crash. */
static void sync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

enum moe_status moe_st_write(const char *path, const struct moe_st_tensor *tensors, size_t ntensors,
			     const struct moe_st_meta *meta, size_t nmeta)
{
	if (!path || !path[0])
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors: no path given");
	if ((ntensors && !tensors) || (nmeta && !meta))
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors %s: %zu tensors and %zu metadata entries "
						     "announced, but an array is NULL", path, ntensors, nmeta);
	char *header = NULL;
	size_t hlen = 0;
	enum moe_status s = build_header(path, tensors, ntensors, meta, nmeta, &header, &hlen);
	if (s != MOE_OK)
		return s;

	unsigned char lenbytes[8];
	for (int i = 0; i < 8; i++)
		lenbytes[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	char tmp[4096];
	int fd = open_temp(path, tmp, sizeof tmp);
	if (fd < 0) {
		int err = errno;
		free(header);
		return moe_fail(MOE_ERR_IO, "safetensors %s: cannot create a temporary file next to it: %s",
				path, strerror(err));
	}
	bool ok = write_all(fd, lenbytes, sizeof lenbytes) && write_all(fd, header, hlen);
	for (size_t i = 0; ok && i < ntensors; i++)
		ok = write_all(fd, tensors[i].data, tensors[i].nbytes);
	ok = ok && fsync(fd) == 0;
	int err = errno;
	if (close(fd) != 0 && ok) {
		err = errno;
		ok = false;
	}
	free(header);
	if (ok && rename(tmp, path) != 0) {
		err = errno;
		ok = false;
	}
	if (!ok) {
		unlink(tmp);
		return moe_fail(MOE_ERR_IO, "safetensors %s: write failed: %s", path, strerror(err));
	}
	sync_parent(path);
	return MOE_OK;
}
