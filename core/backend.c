/* Backend table queries shared by verify, bench and the CLI. */
#include "moe/backend.h"

const void *moe_backend_slot(const struct moe_backend *b, enum moe_op op)
{
	switch (op) {
	case MOE_OP_ROUTE: return (void *)b->route;
	case MOE_OP_NORM: return (void *)b->norm;
	case MOE_OP_QUANTIZE: return (void *)b->quantize;
	case MOE_OP_DEQUANTIZE: return (void *)b->dequantize;
	case MOE_OP_EXPERT: return (void *)b->expert;
	case MOE_OP_LAYER: return (void *)b->layer;
	case MOE_OP_COUNT: break;
	}
	return NULL;
}

bool moe_backend_provides(const struct moe_backend *b, enum moe_op op, const void *problem)
{
	if (!b || !moe_backend_slot(b, op))
		return false;
	if (!problem || !b->supports)
		return true;
	return b->supports(op, problem);
}

