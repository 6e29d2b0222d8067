/* Private interface of the optimized kernels: the declarations of every variant named in the per-op
 * list files (so the compiler checks each definition against its moe_<op>_fn type) and the whole
 * per-ISA tables built on them.
 *
 * A list file line MOE_KERNEL(slot, fn, isa, description) names a kernel `fn` of type
 * moe_<slot>_fn (slot is a struct moe_backend member: route, norm, quantize, dequantize, expert,
 * layer) that needs `isa`, together with `fn##_supports`, the moe_supports_fn saying which
 * problems it handles. Both are defined in the kernel's own file. */
#ifndef MOE_KERNELS_KERNELS_H
#define MOE_KERNELS_KERNELS_H

#include "moe/registry.h"

#define MOE_KERNEL(slot, fn, isa, description) moe_##slot##_fn fn; moe_supports_fn fn##_supports;
#include "lists.inc"
#undef MOE_KERNEL

/* The ABI-2 entry points of each ISA level's whole table (kernels/layer/layer_<isa>.c): layer_mt,
 * expert_mt, the workspace query, pack (owner: the table the handle names) and release. */
#define MOE_ABI2_DECLARE(isa)                                                                              \
	moe_layer_mt_fn moe_layer_mt__##isa;                                                               \
	moe_expert_mt_fn moe_expert_mt__##isa;                                                             \
	moe_workspace_fn moe_workspace__##isa;                                                             \
	moe_release_fn moe_release__##isa;                                                                 \
	enum moe_status moe_pack__##isa(const struct moe_backend *owner, const struct moe_expert_params *p, \
					int32_t count, const struct moe_expert_weights *w,                  \
					const struct moe_threads *th, struct moe_packed **out);
MOE_ABI2_DECLARE(avx2)
MOE_ABI2_DECLARE(avx512)
MOE_ABI2_DECLARE(avx512bf16)
MOE_ABI2_DECLARE(avx512amx)
#undef MOE_ABI2_DECLARE

/* The whole tables, one per ISA level (backend_<isa>.c). */
extern const struct moe_backend moe_backend_avx2;
extern const struct moe_backend moe_backend_avx512;
extern const struct moe_backend moe_backend_avx512bf16;
extern const struct moe_backend moe_backend_avx512amx;

#endif
