/* Loading a backend plugin: dlopen(RTLD_NOW | RTLD_LOCAL), look up MOE_BACKEND_ENTRY_SYMBOL (ABI 2),
 * else MOE_BACKEND_ENTRY_SYMBOL_V1 (ABI 1), call it with that version and check the table it returns
 * before anyone calls a kernel through it. A version-1 table is copied into the version-2 layout
 * with the new slots NULL, so every caller reads one layout.
 *
 * RTLD_NOW makes an unresolved symbol fail here, with the loader's message, instead of at the first
 * kernel call in the middle of a run; RTLD_LOCAL keeps one plugin's symbols (often a statically
 * linked copy of the reference) from resolving another's.
 *
 * Statuses, so callers and scripts can tell the cases apart:
 *   MOE_ERR_IO      the file cannot be opened (missing, unreadable);
 *   MOE_ERR_FORMAT  the file opens but the loader refuses it (a text file, a foreign ELF), or the
 *                   table it returns has no name;
 *   MOE_ERR_ABI     no entry symbol, the entry declines this ABI (returns NULL), or the table was
 *                   built for another ABI version or another struct moe_backend layout.
 * Every message names the path. NULL kernel slots are not an error: they mean "not provided".
 *
 * The plugin's code first runs in a child process (isolate.h): the whole load is tried there, and
 * only a plugin that loads cleanly in the child is loaded into the host. A constructor or an entry
 * that crashes, aborts, hangs or exits gives MOE_ERR_ABI with how the child ended and at which step
 * (loading the library, calling the entry); an entry symbol that is data rather than code is
 * refused (MOE_ERR_ABI) before it is called. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr1 */
#endif
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isolate.h"
#include "plugin.h"

struct moe_plugin {
	void *handle;
	const struct moe_backend *table; /* the plugin's own, or `upgraded` */
	struct moe_backend upgraded;     /* a version-1 table copied into the version-2 layout */
	uint32_t abi;
	char *path;
};

bool moe_plugin_is_path(const char *arg)
{
	if (!arg)
		return false;
	size_t n = strlen(arg);
	return strchr(arg, '/') || (n >= 3 && strcmp(arg + n - 3, ".so") == 0);
}

/* Why dlopen failed, told apart by whether the file itself can be opened. */
static enum moe_status open_failure(const char *path, const char *loader_msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		return moe_fail(MOE_ERR_IO, "plugin %s: not a loadable shared library: %s (%s)", path,
				loader_msg, strerror(err));
	}
	close(fd);
	return moe_fail(MOE_ERR_FORMAT, "plugin %s: not a loadable shared library: %s", path, loader_msg);
}

static enum moe_status check_table(const char *path, const char *symbol, uint32_t abi, const struct moe_backend *b)
{
	if (!b)
		return moe_fail(MOE_ERR_ABI, "plugin %s: %s(%u) returned NULL: the plugin does not support "
					   "ABI %u", path, symbol, abi, abi);
	if (b->abi_version != abi)
		return moe_fail(MOE_ERR_ABI, "plugin %s: its entry %s was asked for ABI %u and returned a table "
				"for ABI %u (this moebench speaks ABI 1 and 2)", path, symbol, abi, b->abi_version);
	const size_t want = abi == 1 ? MOE_BACKEND_V1_SIZE : sizeof(struct moe_backend);
	if (b->struct_size != want)
		return moe_fail(MOE_ERR_ABI, "plugin %s: its struct moe_backend is %u bytes, ABI %u's "
					   "is %zu: rebuild the plugin against these headers",
				path, b->struct_size, abi, want);
	if (!b->name || !b->name[0])
		return moe_fail(MOE_ERR_FORMAT, "plugin %s: its backend table has %s name", path,
				b->name ? "an empty" : "no");
	if (abi >= 2 && b->pack && !b->release)
		return moe_fail(MOE_ERR_ABI, "plugin %s: its table has pack but no release: the host could not free "
				"the handles pack returns", path);
	return MOE_OK;
}

/* The entry symbol must be code: a data object of that name (a table exported under the entry's
 * name, say) would be "called" and crash. The loader knows the symbol's ELF type. */
static enum moe_status check_entry_is_code(const char *path, const char *symbol, void *sym)
{
	Dl_info info;
	const ElfW(Sym) *es = NULL;
	if (!dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) || !es)
		return MOE_OK; /* nothing known: the probe in a child process still catches a crash */
	const int type = ELF64_ST_TYPE(es->st_info); /* the same bits in ELF32 */
	if (type == STT_FUNC || type == STT_GNU_IFUNC)
		return MOE_OK;
	return moe_fail(MOE_ERR_ABI, "plugin %s: its %s is not a function (ELF symbol type %d%s): declare it "
			"as a moe_backend_entry_fn", path, symbol, type, type == STT_OBJECT ? ", a data object" : "");
}

/* Where a load has got to, told to the parent by the probe (below) before each step that runs the
 * plugin's code, so that a crash can be pinned on its constructors or on its entry. */
enum load_step { STEP_DLOPEN = 1, STEP_ENTRY = 2, STEP_DONE = 3 };

struct loaded {
	void *handle;
	const struct moe_backend *table;
	uint32_t abi;
};

static void tell_step(int fd, enum load_step step)
{
	if (fd >= 0) {
		int32_t v = step;
		moe_child_send(fd, &v, sizeof v);
	}
}

/* dlopen, the entry symbol, the call, the table's checks. step_fd >= 0: report each step there. */
static enum moe_status load(const char *path, int step_fd, struct loaded *out)
{
	/* dlopen searches the library path for a name without '/': "x.so" must mean ./x.so. */
	size_t len = strlen(path);
	char *local = malloc(len + 3);
	if (!local)
		return moe_fail(MOE_ERR_NOMEM, "plugin %s: out of memory", path);
	if (strchr(path, '/'))
		memcpy(local, path, len + 1);
	else {
		memcpy(local, "./", 2);
		memcpy(local + 2, path, len + 1);
	}

	tell_step(step_fd, STEP_DLOPEN);
	dlerror();
	void *h = dlopen(local, RTLD_NOW | RTLD_LOCAL);
	free(local);
	if (!h) {
		const char *msg = dlerror();
		return open_failure(path, msg ? msg : "unknown loader error");
	}

	/* The version-2 entry when the plugin has one, else the version-1 entry asked for ABI 1. */
	const char *symbol = MOE_BACKEND_ENTRY_SYMBOL;
	uint32_t abi = MOE_BACKEND_ABI_VERSION;
	dlerror();
	void *sym = dlsym(h, symbol);
	if (!sym) {
		symbol = MOE_BACKEND_ENTRY_SYMBOL_V1;
		abi = 1;
		dlerror();
		sym = dlsym(h, symbol);
	}
	if (!sym) {
		dlclose(h);
		return moe_fail(MOE_ERR_ABI, "plugin %s exports neither %s nor %s: is it a moebench backend?",
				path, MOE_BACKEND_ENTRY_SYMBOL, MOE_BACKEND_ENTRY_SYMBOL_V1);
	}
	enum moe_status s = check_entry_is_code(path, symbol, sym);
	if (s != MOE_OK) {
		dlclose(h);
		return s;
	}
	/* POSIX guarantees a data pointer from dlsym converts to a function pointer; say so to C. */
	moe_backend_entry_fn *entry;
	memcpy(&entry, &sym, sizeof entry);

	tell_step(step_fd, STEP_ENTRY);
	const struct moe_backend *table = entry(abi);
	s = check_table(path, symbol, abi, table);
	if (s != MOE_OK) {
		dlclose(h);
		return s;
	}
	out->handle = h;
	out->table = table;
	out->abi = abi;
	return MOE_OK;
}

struct probe_reply {
	int32_t step; /* STEP_DONE */
	int32_t status;
	char message[1024];
};

static void probe_body(void *arg, int fd)
{
	struct loaded l;
	struct probe_reply r;
	memset(&r, 0, sizeof r);
	r.status = load(arg, fd, &l);
	r.step = STEP_DONE;
	if (r.status != MOE_OK)
		snprintf(r.message, sizeof r.message, "%s", moe_last_error());
	moe_child_send(fd, &r, sizeof r);
}

/* Loads the plugin once in a child process: a constructor or an entry that crashes, hangs or exits
 * is reported here, and a plugin the loader refuses is refused with the child's message. */
static enum moe_status probe(const char *path)
{
	struct moe_child c;
	if (moe_child_start(&c, probe_body, (void *)path, 0) != MOE_OK)
		return moe_fail(MOE_ERR_INTERNAL, "plugin %s: %s", path, moe_last_error());
	int32_t step = 0, last = 0;
	int r;
	while ((r = moe_child_recv(&c, &step, sizeof step)) == 1 && step != STEP_DONE)
		last = step;
	struct probe_reply reply;
	if (r == 1)
		r = moe_child_recv(&c, (char *)&reply + sizeof step, sizeof reply - sizeof step);
	char how[128];
	moe_child_end(&c, r != 1, how, sizeof how);
	if (r == 1)
		return reply.status == MOE_OK ? MOE_OK : moe_fail((enum moe_status)reply.status, "%s", reply.message);
	const char *where = last == STEP_ENTRY ? "in its entry point (" MOE_BACKEND_ENTRY_SYMBOL " or "
						   MOE_BACKEND_ENTRY_SYMBOL_V1 ")"
			    : last == STEP_DLOPEN ? "while the library was loaded (its constructors or its dependencies)"
						  : "before loading started";
	return moe_fail(MOE_ERR_ABI, "plugin %s: the plugin's code failed %s, tried in a child process: %s", path,
			where, how);
}

enum moe_status moe_plugin_open(const char *path, struct moe_plugin **out)
{
	if (!out)
		return moe_fail(MOE_ERR_INVALID_ARG, "plugin: no output pointer given");
	*out = NULL;
	if (!path || !path[0])
		return moe_fail(MOE_ERR_INVALID_ARG, "plugin: no path given");

	enum moe_status s = probe(path);
	struct loaded l;
	if (s == MOE_OK)
		s = load(path, -1, &l);
	if (s != MOE_OK)
		return s;

	struct moe_plugin *p = malloc(sizeof *p);
	char *copy = strdup(path);
	if (!p || !copy) {
		free(p);
		free(copy);
		dlclose(l.handle);
		return moe_fail(MOE_ERR_NOMEM, "plugin %s: out of memory", path);
	}
	p->handle = l.handle;
	p->abi = l.abi;
	p->table = l.table;
	if (l.abi == 1) { /* the host reads only version-2 tables: the new slots stay NULL */
		memset(&p->upgraded, 0, sizeof p->upgraded);
		memcpy(&p->upgraded, l.table, MOE_BACKEND_V1_SIZE);
		p->table = &p->upgraded;
	}
	p->path = copy;
	*out = p;
	return MOE_OK;
}

const struct moe_backend *moe_plugin_backend(const struct moe_plugin *p)
{
	return p ? p->table : NULL;
}

uint32_t moe_plugin_abi(const struct moe_plugin *p)
{
	return p ? p->abi : 0;
}

const char *moe_plugin_path(const struct moe_plugin *p)
{
	return p ? p->path : NULL;
}

void moe_plugin_close(struct moe_plugin *p)
{
	if (!p)
		return;
	dlclose(p->handle);
	free(p->path);
	free(p);
}
