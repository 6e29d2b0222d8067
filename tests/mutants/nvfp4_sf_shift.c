/* Mutant: NVFP4 block scale off by one block. Wraps the reference quantizer and stores, for every
 * row, the scale of block kb + 1 where block kb's belongs (the last block keeps its own), as a
 * kernel indexing its scale array one block too far would. The E2M1 data stays correct, so only
 * the scales (and every value decoded with them) are wrong; caught whenever neighbouring blocks
 * have different scales. */
#include "mutant.h"

static void quantize__nvfp4_sf_shift(const float *x, struct moe_qtensor *q)
{
	moe_quantize__ref(x, q);
	if (q->dtype != MOE_DTYPE_NVFP4)
		return;
	const int64_t kb_count = q->cols / 16;
	uint8_t *sf = q->scales;
	for (int64_t m = 0; m < q->rows; m++)
		for (int64_t kb = 0; kb + 1 < kb_count; kb++)
			sf[moe_nvfp4_sf_offset(q->sf_layout, q->rows, kb_count, m, kb)] =
				sf[moe_nvfp4_sf_offset(q->sf_layout, q->rows, kb_count, m, kb + 1)];
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-nvfp4-sf-shift";
	b->description = "quantize: NVFP4 block scale taken from the neighbouring block";
	b->quantize = quantize__nvfp4_sf_shift;
}
