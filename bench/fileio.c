/* Files the bench writes: atomic replacement, directory creation, aligned buffers.
 *
 * Atomic write: the content goes to a mkstemp file in the target's directory (rename is atomic
 * only within one file system), which is flushed and fsync'ed before rename(2) puts it in place;
 * readers see the old file or the complete new one, never a prefix, even after Ctrl-C or a crash
 * mid-write. Any failure unlinks the temporary. A target that exists and is not a regular file
 * (/dev/stdout, a FIFO) is written in place instead. Failures name the path and the reason. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "moe/memory.h"

/* The writers (json_out.c, csv_out.c, ...) see a failed fprintf only as ferror() and do not know
 * the path: their error gets the path, and the reason while errno still holds it. */
static enum moe_status writer_status(const char *path, FILE *f, enum moe_status s)
{
	const int err = errno;
	if (s == MOE_OK)
		return s;
	char why[512];
	snprintf(why, sizeof why, "%s", moe_last_error());
	if (ferror(f) && err)
		return moe_fail(s, "write %s: %s: %s", path, why, strerror(err));
	return moe_fail(s, "write %s: %s", path, why);
}

/* A target that exists and is not a regular file (/dev/stdout, a FIFO, /dev/full, a link to one) is
 * written in place: renaming over it would replace the device node or the link. */
static enum moe_status write_in_place(const char *path, moe_bench_writer_fn *write, void *ctx)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return moe_fail(MOE_ERR_IO, "write %s: cannot open: %s", path, strerror(errno));
	enum moe_status s = writer_status(path, f, write(f, ctx));
	if (s == MOE_OK && (fflush(f) != 0 || ferror(f)))
		s = moe_fail(MOE_ERR_IO, "write %s: %s", path, strerror(errno ? errno : EIO));
	if (fclose(f) != 0 && s == MOE_OK)
		s = moe_fail(MOE_ERR_IO, "write %s: %s", path, strerror(errno));
	return s;
}

enum moe_status moe_bench_write_atomic(const char *path, moe_bench_writer_fn *write, void *ctx)
{
	char tmp[4096];
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return write_in_place(path, write, ctx);
	if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
		return moe_fail(MOE_ERR_IO, "write %s: path too long", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return moe_fail(MOE_ERR_IO, "write %s: cannot create a temporary file: %s", path, strerror(errno));
	fchmod(fd, 0644);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return moe_fail(MOE_ERR_IO, "write %s: %s", path, strerror(errno));
	}
	enum moe_status s = writer_status(path, f, write(f, ctx));
	if (s == MOE_OK && (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0))
		s = moe_fail(MOE_ERR_IO, "write %s: %s", path, strerror(errno));
	if (fclose(f) != 0 && s == MOE_OK)
		s = moe_fail(MOE_ERR_IO, "write %s: %s", path, strerror(errno));
	if (s == MOE_OK && rename(tmp, path) != 0)
		s = moe_fail(MOE_ERR_IO, "write %s: rename failed: %s", path, strerror(errno));
	if (s != MOE_OK)
		unlink(tmp);
	return s;
}

enum moe_status moe_bench_mkdirs(const char *path)
{
	char p[4096];
	if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
		return moe_fail(MOE_ERR_IO, "mkdir %s: path too long", path);
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char saved = *c;
		*c = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return moe_fail(MOE_ERR_IO, "mkdir %s: %s", p, strerror(errno));
		*c = saved;
		if (!saved)
			break;
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return moe_fail(MOE_ERR_IO, "mkdir %s: not a directory", path);
	return MOE_OK;
}

void *moe_bench_alloc(size_t bytes)
{
	size_t rounded = (bytes + 63) & ~(size_t)63;
	void *p = moe_alloc_large(rounded ? rounded : 64);
	if (p)
		memset(p, 0, rounded ? rounded : 64);
	return p;
}
