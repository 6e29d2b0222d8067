/* Loading a backend plugin (a shared object exporting MOE_BACKEND_ENTRY_SYMBOL).
 * Refuses, with a message saying which and why: a path that is not a loadable shared library, a
 * library without the entry symbol, an entry that returns NULL, a table whose abi_version or
 * struct_size does not match this host, a table without a name. */
#ifndef MOE_VERIFY_PLUGIN_H
#define MOE_VERIFY_PLUGIN_H

#include "moe/backend.h"

struct moe_plugin;

/* On success *out holds the plugin; moe_plugin_backend() gives its table. */
enum moe_status moe_plugin_open(const char *path, struct moe_plugin **out);
const struct moe_backend *moe_plugin_backend(const struct moe_plugin *p);
const char *moe_plugin_path(const struct moe_plugin *p);
/* The ABI the plugin speaks (1 or 2); its table is always presented in the version-2 layout. */
uint32_t moe_plugin_abi(const struct moe_plugin *p);
void moe_plugin_close(struct moe_plugin *p);

/* Whether a --backend argument names a file rather than a built-in backend (contains '/' or ends
 * in ".so"). */
bool moe_plugin_is_path(const char *arg);

#endif
