/* Memory-mapped safetensors checkpoints (private to model/): one file, or the shards a
 * model.safetensors.index.json names. Each file is mapped once, read-only; tensors point into the
 * mapping, nothing is copied or read twice.
 *
 * Header validation (any failure: MOE_ERR_FORMAT naming the file and, where there is one, the
 * tensor): the 8-byte little-endian header length fits in the file; the header is one JSON object
 * (duplicate keys refused); "__metadata__", if present, maps strings to strings; every other entry
 * has a known dtype, a shape of at most 8 non-negative dimensions and data_offsets [begin, end]
 * within the data section with end - begin = prod(shape) * dtype size; the byte ranges neither
 * overlap nor leave holes (the data section is exactly covered, as the format requires). A file that
 * cannot be opened or mapped is MOE_ERR_IO. Sharded: every shard named in the index's weight_map is
 * opened (a missing one is MOE_ERR_IO naming the index, the shard and one tensor mapped to it),
 * each name in weight_map must be in the shard it is mapped to, and no tensor name may occur in two
 * shards. */
#ifndef MOE_MODEL_SAFETENSORS_MAP_H
#define MOE_MODEL_SAFETENSORS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moe/status.h"

enum moe_stmap_dtype {
	MOE_STMAP_F64, MOE_STMAP_F32, MOE_STMAP_F16, MOE_STMAP_BF16, MOE_STMAP_I64, MOE_STMAP_I32,
	MOE_STMAP_I16, MOE_STMAP_I8, MOE_STMAP_U8, MOE_STMAP_BOOL, MOE_STMAP_F8_E4M3, MOE_STMAP_F8_E5M2,
	MOE_STMAP_DTYPE_COUNT
};

#define MOE_STMAP_MAX_DIMS 8

struct moe_stmap_tensor {
	char *name;
	enum moe_stmap_dtype dtype;
	int32_t ndim;
	int64_t shape[MOE_STMAP_MAX_DIMS];
	const uint8_t *data; /* into the mapping of file */
	size_t bytes;
	int32_t file;        /* index into moe_stmap.paths */
};

struct moe_stmap {
	int32_t nfiles;
	char **paths;        /* path of each mapped file, for messages */
	void **maps;
	size_t *sizes;
	int64_t ntensors;
	struct moe_stmap_tensor *tensors; /* sorted by name */
	size_t bytes_mapped;
};

/* Opens dir/model.safetensors.index.json when it exists, else dir/model.safetensors. */
enum moe_status moe_stmap_open_dir(const char *dir, struct moe_stmap *out);
/* Opens one safetensors file. */
enum moe_status moe_stmap_open_file(const char *path, struct moe_stmap *out);
void moe_stmap_close(struct moe_stmap *m);

/* The tensor of that name, or NULL. */
const struct moe_stmap_tensor *moe_stmap_find(const struct moe_stmap *m, const char *name);
/* The file a tensor lives in (for messages). */
const char *moe_stmap_path(const struct moe_stmap *m, const struct moe_stmap_tensor *t);

size_t moe_stmap_dtype_size(enum moe_stmap_dtype t);
const char *moe_stmap_dtype_name(enum moe_stmap_dtype t); /* "F32", "BF16", "F8_E4M3", ... */
/* Parses a safetensors dtype string; false when unknown. */
bool moe_stmap_dtype_parse(const char *s, enum moe_stmap_dtype *out);

#endif
