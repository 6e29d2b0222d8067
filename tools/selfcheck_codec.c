/* selfcheck rows for the codecs: exhaustive element round trips, and NVFP4/MXFP4 tensors whose
 * quantize-dequantize error stays within half a quantization step of each element. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "selfcheck.h"

static void codes_round_trip(struct selfcheck *sc)
{
	selfcheck_row_begin(sc);
	for (int c = 0; c < 256; c++) {
		const float v = moe_fp8e4m3_decode((uint8_t)c);
		if (!isnan(v))
			selfcheck_expect(sc, moe_fp8e4m3_encode(v, MOE_FP8_SATFINITE) == c,
					 "e4m3 code 0x%02x -> %g -> 0x%02x", c, v, moe_fp8e4m3_encode(v, MOE_FP8_SATFINITE));
		else
			selfcheck_expect(sc, (c & 0x7f) == 0x7f, "e4m3 code 0x%02x decodes to NaN", c);
		const float v5 = moe_fp8e5m2_decode((uint8_t)c);
		/* IEEE mode: infinities are codes too, so every non-NaN code survives */
		if (!isnan(v5))
			selfcheck_expect(sc, moe_fp8e5m2_encode(v5, MOE_FP8_NAN_ON_OVERFLOW) == c,
					 "e5m2 code 0x%02x -> %g -> 0x%02x", c, v5,
					 moe_fp8e5m2_encode(v5, MOE_FP8_NAN_ON_OVERFLOW));
	}
	for (int c = 0; c < 16; c++)
		selfcheck_expect(sc, moe_e2m1_encode(moe_e2m1_decode((uint8_t)c)) == c, "e2m1 code %d", c);
	selfcheck_row_end(sc, "codec", "fp8e4m3, fp8e5m2, e2m1 codes");
}

/* Half the distance between the E2M1 neighbours around v >= 0 (in units of the block scale), or
 * the saturation excess above 6. */
static double e2m1_half_step(double v)
{
	if (v >= 6.0)
		return v - 6.0;
	return v < 2.0 ? 0.25 : v < 4.0 ? 0.5 : 1.0;
}

static void fp4_tensor(struct selfcheck *sc, enum moe_dtype dt, enum moe_sf_layout layout, const char *name)
{
	enum { ROWS = 37, COLS = 128 };
	struct moe_qtensor q = {
		.dtype = dt,
		.scaling = dt == MOE_DTYPE_NVFP4 ? MOE_SCALING_NVFP4 : MOE_SCALING_MX,
		.sf_layout = layout,
		.rows = ROWS,
		.cols = COLS,
	};
	const int block = dt == MOE_DTYPE_NVFP4 ? 16 : 32;
	float *x = malloc(sizeof(float) * ROWS * COLS), *y = malloc(sizeof(float) * ROWS * COLS);
	uint64_t rng = sc->seed ^ 0x5eedu;
	selfcheck_row_begin(sc);
	if (!x || !y || moe_qtensor_alloc(&q) != MOE_OK) {
		selfcheck_expect(sc, false, "allocation failed: %s", moe_last_error());
		goto out;
	}
	for (int i = 0; i < ROWS * COLS; i++)
		x[i] = selfcheck_normal(&rng) * (i % 97 == 0 ? 40.0f : 1.0f);
	moe_quantize__ref(x, &q);
	moe_dequantize__ref(&q, y);
	const uint8_t *sf = q.scales;
	for (int r = 0; r < ROWS; r++) {
		for (int cb = 0; cb < COLS / block; cb++) {
			double scale;
			if (dt == MOE_DTYPE_NVFP4)
				scale = (double)moe_fp8e4m3_decode(sf[moe_nvfp4_sf_offset(layout, ROWS, COLS / 16, r, cb)]) /
					q.global_scale;
			else
				scale = moe_ue8m0_decode(sf[r * (COLS / 32) + cb]);
			for (int j = cb * block; j < (cb + 1) * block; j++) {
				const double v = fabs((double)x[r * COLS + j]) / scale;
				/* + the fp32 rounding of x*oscale and of the decoded product */
				const double bound = (e2m1_half_step(v) + 1e-6 * v) * scale + 1e-6 * fabs(x[r * COLS + j]);
				const double err = fabs((double)y[r * COLS + j] - x[r * COLS + j]);
				selfcheck_expect(sc, err <= bound, "%s row %d col %d: x=%g dequant=%g error %g > bound %g",
						 name, r, j, x[r * COLS + j], y[r * COLS + j], err, bound);
			}
		}
	}
out:
	selfcheck_row_end(sc, "codec", name);
	moe_qtensor_free(&q);
	free(x);
	free(y);
}

void selfcheck_codec(struct selfcheck *sc)
{
	codes_round_trip(sc);
	fp4_tensor(sc, MOE_DTYPE_NVFP4, MOE_SF_LINEAR, "nvfp4 linear, half-step bound");
	fp4_tensor(sc, MOE_DTYPE_NVFP4, MOE_SF_SWIZZLED_128x4, "nvfp4 swizzled 128x4");
	fp4_tensor(sc, MOE_DTYPE_NVFP4, MOE_SF_SWIZZLED_8x4, "nvfp4 swizzled 8x4");
	fp4_tensor(sc, MOE_DTYPE_MXFP4, MOE_SF_LINEAR, "mxfp4, half-step bound");
}
