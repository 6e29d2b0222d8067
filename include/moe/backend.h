/* moebench public interface: backend tables and the plugin ABI.
 *
 * A backend is a table of kernel function pointers, one slot per op. The reference table is
 * complete. Optimized tables start as a copy of the table below them and override what they have.
 * A plugin is a shared object exporting MOE_BACKEND_ENTRY_SYMBOL, a moe_backend_entry_fn that
 * returns its table; a NULL slot means "not provided" and is reported as such, never filled in. */
#ifndef MOE_BACKEND_H
#define MOE_BACKEND_H

#include "moe/codec.h"
#include "moe/expert.h"
#include "moe/layer.h"
#include "moe/norm.h"
#include "moe/routing.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_BACKEND_ABI_VERSION 1u
#define MOE_BACKEND_ENTRY_SYMBOL "moe_backend_entry_v1"

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
};

typedef const struct moe_backend *moe_backend_entry_fn(uint32_t host_abi_version);

/* The complete scalar reference table ("ref"). */
const struct moe_backend *moe_backend_reference(void);

/* The function pointer in b's slot for op (NULL when not provided), as an untyped address: for
 * identity comparisons (is this the same kernel?), never for calls. */
const void *moe_backend_slot(const struct moe_backend *b, enum moe_op op);

/* Whether b provides op (non-NULL slot) and, if problem is non-NULL, supports that problem. */
bool moe_backend_provides(const struct moe_backend *b, enum moe_op op, const void *problem);

#ifdef __cplusplus
}
#endif
#endif
