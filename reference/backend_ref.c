/* The reference backend table: every slot filled with the scalar oracle. It is the base every
 * optimized table copies, and the backend `moebench verify` compares everything against. */
#include "moe/backend.h"

static const struct moe_backend reference_backend = {
	.abi_version = MOE_BACKEND_ABI_VERSION,
	.struct_size = sizeof(struct moe_backend),
	.name = "ref",
	.description = "scalar reference (exact semantics, -ffp-contract=off)",
	.route = moe_route__ref,
	.norm = moe_norm__ref,
	.quantize = moe_quantize__ref,
	.dequantize = moe_dequantize__ref,
	.expert = moe_expert__ref,
	.layer = moe_layer__ref,
	.supports = NULL,
};

const struct moe_backend *moe_backend_reference(void)
{
	return &reference_backend;
}
