/* A small safetensors writer for the forward's outputs (F32 and I32 tensors, row-major,
 * little-endian): 8-byte header length, a JSON header naming each tensor's dtype, shape and byte
 * range, padded with spaces to a multiple of 8, then the data in the order given. Written to a
 * temporary file next to the target and renamed over it only when complete, so a reader never sees
 * half a file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"

static size_t tensor_bytes(const struct moe_fwd_st_out *t)
{
	size_t n = 4;
	for (int32_t d = 0; d < t->ndim; d++)
		n *= (size_t)t->shape[d];
	return n;
}

enum moe_status moe_fwd_st_write(const char *path, const struct moe_fwd_st_out *t, int32_t n)
{
	if (!path || !t || n < 1)
		return moe_fail(MOE_ERR_INVALID_ARG, "safetensors output: no path or no tensors");
	size_t cap = 256 + (size_t)n * 160, len = 0, off = 0;
	for (int32_t i = 0; i < n; i++)
		cap += strlen(t[i].name);
	char *hdr = malloc(cap);
	if (!hdr)
		return moe_fail(MOE_ERR_NOMEM, "safetensors output: no memory");
	len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"moebench model\"}");
	for (int32_t i = 0; i < n; i++) {
		if (t[i].ndim < 1 || t[i].ndim > 2 || strpbrk(t[i].name, "\"\\")) {
			free(hdr);
			return moe_fail(MOE_ERR_INVALID_ARG, "safetensors output: tensor %d has a bad name or rank", (int)i);
		}
		const size_t b = tensor_bytes(&t[i]);
		len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t[i].name,
					t[i].dtype == MOE_FWD_ST_F32 ? "F32" : "I32", (long long)t[i].shape[0]);
		if (t[i].ndim == 2)
			len += (size_t)snprintf(hdr + len, cap - len, ",%lld", (long long)t[i].shape[1]);
		len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + b);
		off += b;
	}
	len += (size_t)snprintf(hdr + len, cap - len, "}");
	while (len % 8)
		hdr[len++] = ' ';

	const size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	if (!tmp) {
		free(hdr);
		return moe_fail(MOE_ERR_NOMEM, "safetensors output: no memory");
	}
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
	const int fd = mkstemp(tmp);
	FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!fp) {
		const int err = errno;
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(hdr);
		free(tmp);
		return moe_fail(MOE_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(err));
	}
	unsigned char l8[8];
	for (int i = 0; i < 8; i++)
		l8[i] = (unsigned char)((uint64_t)len >> (8 * i));
	bool ok = fwrite(l8, 1, 8, fp) == 8 && fwrite(hdr, 1, len, fp) == len;
	for (int32_t i = 0; i < n && ok; i++) {
		const size_t b = tensor_bytes(&t[i]);
		ok = b == 0 || fwrite(t[i].data, 1, b, fp) == b; /* x86-64: already little-endian */
	}
	ok = fflush(fp) == 0 && ok;
	ok = fsync(fileno(fp)) == 0 && ok;
	const int err = errno;
	ok = fclose(fp) == 0 && ok;
	free(hdr);
	if (!ok || rename(tmp, path) != 0) {
		const int e2 = ok ? errno : err;
		unlink(tmp);
		free(tmp);
		return moe_fail(MOE_ERR_IO, "%s: write failed: %s", path, strerror(e2));
	}
	free(tmp);
	return MOE_OK;
}
