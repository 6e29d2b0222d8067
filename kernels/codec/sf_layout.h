/* NVFP4 scale-factor addressing for kernels that walk a row block by block: the offset of
 * (row m, block kb) in every layout is base(m) + (kb / 4) * step + kb % 4 (formats.md), so a row
 * needs two numbers instead of a call per block. The same offsets as moe_nvfp4_sf_offset:
 *   LINEAR          base = m * Kb,                                            step = 4
 *   SWIZZLED_128x4  base = (m/128) * ceil(Kb/4)*512 + (m%32)*16 + ((m%128)/32)*4, step = 512
 *   SWIZZLED_8x4    base = (m/8) * ceil(Kb/4)*32 + (m%8)*4,                   step = 32 */
#ifndef MOE_KERNELS_SF_LAYOUT_H
#define MOE_KERNELS_SF_LAYOUT_H

#include "moe/codec.h"

struct moe_sf_row {
	size_t base;
	size_t step;
};

static inline struct moe_sf_row moe_sf_row(enum moe_sf_layout l, int64_t kblocks, int64_t m)
{
	const size_t groups = (size_t)(kblocks + 3) / 4, r = (size_t)m;
	switch (l) {
	case MOE_SF_SWIZZLED_128x4:
		return (struct moe_sf_row){ (r / 128) * groups * 512 + (r % 32) * 16 + ((r % 128) / 32) * 4, 512 };
	case MOE_SF_SWIZZLED_8x4:
		return (struct moe_sf_row){ (r / 8) * groups * 32 + (r % 8) * 4, 32 };
	default:
		return (struct moe_sf_row){ r * (size_t)kblocks, 4 };
	}
}

static inline size_t moe_sf_at(struct moe_sf_row s, int64_t kb)
{
	return s.base + (size_t)(kb / 4) * s.step + (size_t)(kb % 4);
}

#endif
