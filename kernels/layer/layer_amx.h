/* The W16A16 panel GEMMs of the layer on AMX tiles (tdpbf16ps), included by layer_impl.h when the
 * file is compiled with AMX-TILE and AMX-BF16 (layer_avx512amx.c).
 *
 * Contract: that of the vdpbf16ps panel path it replaces (layer_impl.h, expert_bf16_prefill.h).
 * tdpbf16ps, like vdpbf16ps, adds exact bf16 x bf16 products to fp32 accumulators with
 * round-to-nearest-even, treats subnormal inputs as zero and flushes subnormal results: an fp32
 * accumulation in an order of its own (per output: 16-pair steps in increasing order within a K
 * block, the order inside a step the hardware's; K blocks in increasing order, the partial sums
 * passing through memory exactly), which the a-priori bound of expert_f64.c covers whatever the
 * order. The blocks where a weight, x or a is subnormal run the fp32 path as before, so DAZ never
 * drops a value the reference keeps. The tiles read the same [pair][32] panel words as the
 * vdpbf16ps path (a panel's 16-pair step: two B tiles of 16 pairs x 16 columns, 128 bytes apart),
 * packed or packed per depth block on the stack alike, so packed and plain weights give the same
 * bits; each output element is computed by one task whatever the thread count.
 *
 * Used for the tokens of an expert in whole 16-token blocks, two blocks (32 tokens) per pass so
 * one pair of B tiles feeds four tdpbf16ps; the remaining M % 16 tokens take the vdpbf16ps tiles.
 * Needs every K block to be whole 16-pair steps and whole panels: H and I multiples of 32
 * (lk_amx_fits); other shapes run the vdpbf16ps path throughout.
 *
 * Tiles: 0, 1 A (16 tokens x 32 bf16 of x or a), 2, 3 B (16 pairs x 16 columns), 4 .. 7 C (16
 * tokens x 16 fp32: block 0 columns 0-15 and 16-31, block 1 the same). The OS grants the tile
 * state to the process once (moe_isa_hardware asks); each task loads the configuration and
 * releases the tiles before it returns. */
#ifndef MOE_KERNELS_LAYER_AMX_H
#define MOE_KERNELS_LAYER_AMX_H

#include <immintrin.h>

struct lk_amx_cfg {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

static inline bool lk_amx_fits(int64_t H, int64_t I)
{
	return H % 32 == 0 && I % 32 == 0;
}

static inline void lk_amx_begin(void)
{
	struct lk_amx_cfg c;
	memset(&c, 0, sizeof c);
	c.palette = 1;
	for (int t = 0; t < 8; t++) {
		c.colsb[t] = 64;
		c.rows[t] = 16;
	}
	_tile_loadconfig(&c);
}

static inline void lk_amx_end(void)
{
	_tile_release();
}

/* The C tiles of the pass (block 0: tiles 4, 5; block 1: 6, 7) from their partial sums, or zero. */
#define LK_AMX_C_LOAD(two, first, src, stride)                                   \
	do {                                                                     \
		if (first) {                                                     \
			_tile_zero(4);                                           \
			_tile_zero(5);                                           \
			if (two) {                                               \
				_tile_zero(6);                                   \
				_tile_zero(7);                                   \
			}                                                        \
		} else {                                                         \
			_tile_loadd(4, (src), (stride));                         \
			_tile_loadd(5, (src) + 16, (stride));                    \
			if (two) {                                               \
				_tile_loadd(6, (src) + 16 * ((stride) / 4), (stride)); \
				_tile_loadd(7, (src) + 16 * ((stride) / 4) + 16, (stride)); \
			}                                                        \
		}                                                                \
	} while (0)

#define LK_AMX_C_STORE(two, dst, stride)                                         \
	do {                                                                     \
		_tile_stored(4, (dst), (stride));                                \
		_tile_stored(5, (dst) + 16, (stride));                           \
		if (two) {                                                       \
			_tile_stored(6, (dst) + 16 * ((stride) / 4), (stride));   \
			_tile_stored(7, (dst) + 16 * ((stride) / 4) + 16, (stride)); \
		}                                                                \
	} while (0)

/* Tokens [0, mt) (mt a multiple of 16) of one panel over one K block (j as ek_bf16_block reads it):
 * GEMM 1 partial sums in j->part ([token][32] floats) between K blocks and the SiLU * up epilogue
 * after the last; GEMM 2 accumulating in y[m][c0 .. c0 + 32). */
static inline void lk_amx_panel_block(bool gemm1, const struct ek_bf16_job *j, int64_t mt)
{
	assert(mt % 16 == 0 && j->pairs % 16 == 0 && j->nc == (gemm1 ? 16 : 32));
	float tmp[32 * 32] __attribute__((aligned(64)));
	const int64_t steps = j->pairs / 16;
	const size_t lda = (size_t)j->lda * 2;
	for (int64_t m0 = 0; m0 < mt; m0 += 32) {
		const bool two = mt - m0 >= 32;
		/* where the partial sums live: GEMM 1 part (or tmp with one K block), GEMM 2 y */
		const bool only = j->first && j->last;
		float *c = gemm1 ? (only ? tmp : j->part + m0 * 32) : j->y + m0 * j->ldy + j->c0;
		const size_t cs = gemm1 ? 128 : (size_t)j->ldy * 4;
		LK_AMX_C_LOAD(two, j->first, c, cs);
		const uint16_t *a = j->A + m0 * j->lda;
		for (int64_t s = 0; s < steps; s++) {
			const uint32_t *b = j->bp + s * 16 * 32;
			_tile_loadd(2, b, 128);
			_tile_loadd(3, b + 16, 128);
			_tile_loadd(0, a + 32 * s, lda);
			_tile_dpbf16ps(4, 0, 2);
			_tile_dpbf16ps(5, 0, 3);
			if (two) {
				_tile_loadd(1, a + 16 * j->lda + 32 * s, lda);
				_tile_dpbf16ps(6, 1, 2);
				_tile_dpbf16ps(7, 1, 3);
			}
		}
		if (gemm1 && j->last) {
			LK_AMX_C_STORE(two, tmp, 128);
			for (int m = 0; m < (two ? 32 : 16); m++)
				ek_store_a(j->o, m0 + m, j->c0,
					   ek_silu_mul(vf_load(tmp + m * 32, MOE_DTYPE_F32, 0), vf_load(tmp + m * 32 + 16, MOE_DTYPE_F32, 0), true),
					   j->nc);
		} else {
			LK_AMX_C_STORE(two, c, cs);
		}
	}
}

#undef LK_AMX_C_LOAD
#undef LK_AMX_C_STORE

#endif
