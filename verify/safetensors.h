/* Reading and writing safetensors files (the format Python's safetensors and numpy read):
 * 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, ...,
 * "__metadata__": {string: string}}, then the tensor bytes. Writes are atomic (temporary file in
 * the same folder, then rename). Reading validates everything: header size against the file size,
 * JSON syntax, dtypes, shapes against byte ranges, overlapping or out-of-range offsets; a malformed
 * file is refused with MOE_ERR_FORMAT and a message naming the file and the problem. */
#ifndef MOE_VERIFY_SAFETENSORS_H
#define MOE_VERIFY_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "moe/status.h"

enum moe_st_dtype { MOE_ST_F32, MOE_ST_F64, MOE_ST_BF16, MOE_ST_I32, MOE_ST_I64, MOE_ST_U8, MOE_ST_U16 };

#define MOE_ST_MAX_DIMS 4

struct moe_st_tensor {
	char name[96];
	enum moe_st_dtype dtype;
	int ndim;
	int64_t shape[MOE_ST_MAX_DIMS];
	const void *data; /* nbytes bytes, little-endian; owned by the file object when read */
	size_t nbytes;
};

struct moe_st_meta {
	const char *key;
	const char *value;
};

struct moe_st_file {
	size_t ntensors;
	struct moe_st_tensor *tensors;
	size_t nmeta;
	struct moe_st_meta *meta;
	void *priv;
};

size_t moe_st_dtype_size(enum moe_st_dtype t);
const char *moe_st_dtype_name(enum moe_st_dtype t); /* "F32", "F64", "BF16", "I32", "I64", "U8", "U16" */

enum moe_status moe_st_write(const char *path, const struct moe_st_tensor *tensors, size_t ntensors,
			     const struct moe_st_meta *meta, size_t nmeta);
enum moe_status moe_st_read(const char *path, struct moe_st_file *out);
void moe_st_free(struct moe_st_file *f);
const struct moe_st_tensor *moe_st_find(const struct moe_st_file *f, const char *name);
const char *moe_st_meta_get(const struct moe_st_file *f, const char *key); /* NULL if absent */

#endif
