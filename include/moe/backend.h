/* moebench public interface: backend tables and the plugin ABI (version 2).
 *
 * A backend is a table of kernel function pointers, one slot per op. The reference table is
 * complete. Optimized tables start as a copy of the table below them and override what they have.
 * A plugin is a shared object exporting MOE_BACKEND_ENTRY_SYMBOL, a moe_backend_entry_fn that
 * returns its table; a NULL slot means "not provided" and is reported as such, never filled in.
 *
 * ABI 2 adds, after the version-1 slots:
 *   - pack / release: expert weights laid out once (at load, timed apart from the runs) into an
 *     opaque backend-owned handle: repacked panels on a CPU, an upload to device memory on a GPU;
 *   - route_mt, expert_mt, layer_mt: the same ops given the host's threads (moe/threads.h), and
 *     for expert and layer the packed handle;
 *   - workspace: the workspace a call needs for a thread count (NULL: the reference's sizes).
 * A version-2 host loads version-1 plugins (their table ends after `supports`; the host reads it
 * as a version-2 table whose new slots are NULL) and runs them exactly as before. */
#ifndef MOE_BACKEND_H
#define MOE_BACKEND_H

#include <stddef.h>

#include "moe/codec.h"
#include "moe/expert.h"
#include "moe/layer.h"
#include "moe/norm.h"
#include "moe/routing.h"
#include "moe/threads.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_BACKEND_ABI_VERSION 2u
#define MOE_BACKEND_ENTRY_SYMBOL "moe_backend_entry_v2"
/* A version-1 plugin's entry symbol, still accepted (called with host_abi_version 1). */
#define MOE_BACKEND_ENTRY_SYMBOL_V1 "moe_backend_entry_v1"

enum moe_op {
	MOE_OP_ROUTE = 0,
	MOE_OP_NORM = 1,
	MOE_OP_QUANTIZE = 2,
	MOE_OP_DEQUANTIZE = 3,
	MOE_OP_EXPERT = 4,
	MOE_OP_LAYER = 5,
	MOE_OP_COUNT
};

const char *moe_op_name(enum moe_op op); /* "route", "norm", "quantize", "dequantize", "expert", "layer" */
enum moe_status moe_op_parse(const char *name, enum moe_op *out);

/* Whether a backend handles one particular problem of a provided op. `problem` points to, by op:
 * ROUTE: struct moe_route_params; NORM: struct moe_norm_params; QUANTIZE/DEQUANTIZE: struct
 * moe_qtensor (shape and format; data may be NULL); EXPERT: struct moe_expert_params;
 * LAYER: struct moe_layer_params. */
typedef bool moe_supports_fn(enum moe_op op, const void *problem);

/* Packed expert weights (ABI 2). The backend's pack fills every field; the host reads count,
 * format and bytes and passes the handle back to the same backend's expert_mt / layer_mt and
 * release, never anything else. A handle is self-sufficient: kernels given one do not read the
 * plain weights, which the caller may free after pack returns. */
struct moe_packed {
	const struct moe_backend *owner;  /* the table whose pack made it */
	int32_t count;                    /* experts packed, index 0 .. count-1 */
	struct moe_expert_params format;  /* the params pack was given (tokens 0) */
	size_t bytes;                     /* memory the handle holds (host or device) */
	void *impl;                       /* the backend's */
};

/* Lays out count experts of the shape and format p (p->tokens ignored) for this backend. May use
 * th; returns MOE_ERR_UNSUPPORTED (with a message) for formats it does not pack, in which case the
 * host runs the plain weights. */
typedef enum moe_status moe_pack_fn(const struct moe_expert_params *p, int32_t count,
				    const struct moe_expert_weights *w, const struct moe_threads *th,
				    struct moe_packed **out);
typedef void moe_release_fn(struct moe_packed *packed);

/* The ops on the host's threads (th never NULL; th->count may be 1). Results must not depend on
 * th->count. */
typedef void moe_route_mt_fn(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			     int32_t *ids, float *weights, const struct moe_threads *th);
/* Expert `index` of packed, or the plain w when packed is NULL (then index is ignored). */
typedef void moe_expert_mt_fn(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			      const struct moe_packed *packed, int32_t index, float *y, void *workspace,
			      const struct moe_threads *th);
/* The layer on packed experts (packed: E experts of p->expert; packed_shared: 1 expert of width
 * p->shared_inter, NULL when p->shared is NONE), or on the plain w when packed is NULL. */
typedef void moe_layer_mt_fn(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
			     const struct moe_layer_weights *w, const struct moe_packed *packed,
			     const struct moe_packed *packed_shared, float *y, int32_t *ids, float *weights,
			     void *workspace, const struct moe_threads *th);
/* Workspace bytes for one call of op on problem (as in moe_supports_fn) with `threads` threads,
 * 64-byte aligned by the caller. */
typedef size_t moe_workspace_fn(enum moe_op op, const void *problem, int threads);

struct moe_backend {
	uint32_t abi_version; /* MOE_BACKEND_ABI_VERSION */
	uint32_t struct_size; /* sizeof(struct moe_backend) as the plugin was built */
	const char *name;
	const char *description;
	moe_route_fn *route;
	moe_norm_fn *norm;
	moe_quantize_fn *quantize;
	moe_dequantize_fn *dequantize;
	moe_expert_fn *expert;
	moe_layer_fn *layer;
	moe_supports_fn *supports; /* NULL: every problem of every non-NULL op */
	/* ---- ABI 2; a version-1 table ends here (MOE_BACKEND_V1_SIZE) ---- */
	moe_pack_fn *pack;           /* NULL: no packing, the host passes plain weights */
	moe_release_fn *release;     /* required when pack is set */
	moe_route_mt_fn *route_mt;   /* NULL: the host calls route on one thread */
	moe_expert_mt_fn *expert_mt; /* NULL: the host calls expert on plain weights, one thread */
	moe_layer_mt_fn *layer_mt;   /* NULL: the host calls layer on plain weights */
	moe_workspace_fn *workspace; /* NULL: moe_expert_workspace_bytes / moe_layer_workspace_bytes */
};

/* sizeof(struct moe_backend) as ABI 1 laid it out: the table up to and including `supports`. */
#define MOE_BACKEND_V1_SIZE (offsetof(struct moe_backend, supports) + sizeof(moe_supports_fn *))

/* A plugin's entry: its table for a host speaking host_abi_version, or NULL when it cannot serve
 * that version. */
typedef const struct moe_backend *moe_backend_entry_fn(uint32_t host_abi_version);

/* The complete scalar reference table ("ref"). */
const struct moe_backend *moe_backend_reference(void);

/* The function pointer in b's slot for op (NULL when not provided), as an untyped address: for
 * identity comparisons (is this the same kernel?), never for calls. */
const void *moe_backend_slot(const struct moe_backend *b, enum moe_op op);

/* Whether b provides op (non-NULL slot) and, if problem is non-NULL, supports that problem. */
bool moe_backend_provides(const struct moe_backend *b, enum moe_op op, const void *problem);

/* ---- Host-side calls (ABI 2): each takes the _mt slot when the table has it, else the
 * version-1 slot on the calling thread (plain weights). ---- */

/* Packs with b->pack into *out; *out = NULL and MOE_OK when b has no pack (run plain weights).
 * MOE_ERR_UNSUPPORTED from the backend is passed on with its message. */
enum moe_status moe_backend_pack(const struct moe_backend *b, const struct moe_expert_params *p, int32_t count,
				 const struct moe_expert_weights *w, const struct moe_threads *th,
				 struct moe_packed **out);
void moe_backend_release(const struct moe_backend *b, struct moe_packed *packed); /* NULL: nothing */
size_t moe_backend_workspace(const struct moe_backend *b, enum moe_op op, const void *problem, int threads);
void moe_backend_route(const struct moe_backend *b, const struct moe_route_params *p, int64_t T,
		       const void *logits, const void *bias, int32_t *ids, float *weights,
		       const struct moe_threads *th);
void moe_backend_expert(const struct moe_backend *b, const struct moe_expert_params *p, const float *x,
			const struct moe_expert_weights *w, const struct moe_packed *packed, int32_t index,
			float *y, void *workspace, const struct moe_threads *th);
void moe_backend_layer(const struct moe_backend *b, const struct moe_layer_params *p, const float *x,
		       const void *logits, const void *bias, const struct moe_layer_weights *w,
		       const struct moe_packed *packed, const struct moe_packed *packed_shared, float *y,
		       int32_t *ids, float *weights, void *workspace, const struct moe_threads *th);

#ifdef __cplusplus
}
#endif
#endif
