/* Roofline calibration kernel for the AMX bf16 tile peak (built with -mamx-tile -mamx-bf16 for this
 * file only; run only where moe_isa_hardware() reports avx512amx, which asked the OS for the tile
 * state). 4 independent C tiles (16 x 16 fp32) each take tdpbf16ps of a 16 x 32 bf16 A tile and a
 * 16 pair x 16 column B tile, loaded once: 16 * 16 * 32 multiplies + as many adds = 16384 flops
 * per instruction. Inputs of 1e-3 (bf16 0x3a83) keep the sums finite for any realistic run. */
#include <immintrin.h>
#include <string.h>

#include "bench.h"

static volatile float amx_sink;

struct amx_cfg {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

double moe_calib_dot_bf16__amx(int64_t reps)
{
	static uint16_t ab[512] __attribute__((aligned(64)));
	float c[256] __attribute__((aligned(64)));
	for (int i = 0; i < 512; i++)
		ab[i] = 0x3a83;
	struct amx_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.palette = 1;
	for (int t = 0; t < 6; t++) {
		cfg.colsb[t] = 64;
		cfg.rows[t] = 16;
	}
	_tile_loadconfig(&cfg);
	_tile_loadd(0, ab, 64);
	_tile_loadd(1, ab, 64);
	_tile_zero(2);
	_tile_zero(3);
	_tile_zero(4);
	_tile_zero(5);
	for (int64_t r = 0; r < reps; r++) {
		_tile_dpbf16ps(2, 0, 1);
		_tile_dpbf16ps(3, 0, 1);
		_tile_dpbf16ps(4, 0, 1);
		_tile_dpbf16ps(5, 0, 1);
	}
	_tile_stored(2, c, 64);
	_tile_release();
	amx_sink = c[0];
	return (double)reps * 4 * 16384;
}
