/* Mutant: NVFP4 quantize that never writes the scale padding. The swizzled 128x4 layout rounds the
 * scale array up to whole 128-row x 4-block tiles, and the contract says the padding bytes are 0
 * (formats.md; the GEMMs reading the layout rely on it). A kernel that stores only the rows x Kb
 * real scales, as one looping over the tensor rather than over the tiles would, leaves whatever the
 * buffer held there. Written as: the reference quantizer, then every byte outside the real scales
 * put back to what the caller's buffer held before the call. Caught only when the caller's buffer
 * is not already zero. */
#include <stdlib.h>
#include <string.h>

#include "mutant.h"

static void quantize__nvfp4_sf_pad(const float *x, struct moe_qtensor *q)
{
	if (q->dtype != MOE_DTYPE_NVFP4 || q->sf_layout != MOE_SF_SWIZZLED_128x4) {
		moe_quantize__ref(x, q);
		return;
	}
	const size_t ns = moe_qtensor_scale_bytes(q);
	uint8_t *before = malloc(ns ? ns : 1);
	if (!before)
		abort();
	memcpy(before, q->scales, ns);
	moe_quantize__ref(x, q);
	const int64_t kb_count = q->cols / 16;
	const uint8_t *sf = q->scales;
	for (int64_t m = 0; m < q->rows; m++)
		for (int64_t kb = 0; kb < kb_count; kb++) {
			const size_t o = moe_nvfp4_sf_offset(q->sf_layout, q->rows, kb_count, m, kb);
			before[o] = sf[o];
		}
	memcpy(q->scales, before, ns);
	free(before);
}

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "mutant-nvfp4-sf-pad";
	b->description = "quantize: NVFP4 swizzled 128x4 scale padding never written";
	b->quantize = quantize__nvfp4_sf_pad;
}
