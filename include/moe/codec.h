/* moebench public interface: low-precision number formats and quantized tensors.
 *
 * Facts: docs/formats.md. Encoding and decoding are deterministic: every implementation
 * must agree with the reference bit for bit, NaN, infinity, signed zero and subnormals included.
 *
 * A quantized tensor is a logical fp32 matrix [rows][cols]; blocks always run along cols (the
 * reduction dimension K of a weight [N][K]). Element storage:
 *   F32: float; BF16: uint16; FP8E4M3/FP8E5M2/MXFP8: one byte each;
 *   NVFP4/MXFP4: two E2M1 nibbles per byte, the low nibble holds the even element.
 * Scale storage by scaling scheme:
 *   NONE           (F32, BF16)    no scales.
 *   PER_TENSOR     (FP8)          scales = float[1] holding the encode scale gs = 448/amax;
 *                                 q = e4m3(x * gs), x' = f(q) / gs.
 *   PER_CHANNEL    (FP8)          scales = float[rows], one gs per row, same formulas.
 *   BLOCK_1x128    (FP8)          scales = float[rows][ceil(cols/128)], dequant scale
 *                                 s = max(amax, 1e-12) / 448; q = e4m3(x / s), x' = f(q) * s.
 *   BLOCK_128x128  (FP8)          scales = float[ceil(rows/128)][ceil(cols/128)], same formulas.
 *   NVFP4          (NVFP4)        scales = uint8 E4M3 per 16-element block in sf_layout;
 *                                 global_scale = gs = 448*6/amax (encode); see formats.md.
 *   MX             (MXFP4, MXFP8) scales = uint8 UE8M0 [rows][cols/32] (2^(byte-127)).
 * cols must be a multiple of the block size for NVFP4 (16) and MX (32); FP8 blocks may be partial. */
#ifndef MOE_CODEC_H
#define MOE_CODEC_H

#include "moe/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- element codecs (exact; reference/codec_*.c) ---- */

enum moe_fp8_overflow {
	MOE_FP8_SATFINITE = 0,       /* CUDA __NV_SATFINITE: |x| >= 464 and +-inf -> +-448; NaN -> 0x7F */
	MOE_FP8_NAN_ON_OVERFLOW = 1, /* PyTorch .to(float8_e4m3fn): |x| > 464 (464 ties to 448) or inf -> NaN */
};

uint8_t moe_fp8e4m3_encode(float x, enum moe_fp8_overflow mode);
float moe_fp8e4m3_decode(uint8_t code);
/* E5M2 has infinities; SATFINITE clamps finite overflow and +-inf to +-57344,
 * NAN_ON_OVERFLOW rounds IEEE-style (overflow -> +-inf). NaN -> 0x7F. */
uint8_t moe_fp8e5m2_encode(float x, enum moe_fp8_overflow mode);
float moe_fp8e5m2_decode(uint8_t code);
/* E2M1 nibble (bit 3 = sign), round to nearest even, saturating to +-6; NaN -> +6 with the sign
 * bit of the NaN. */
uint8_t moe_e2m1_encode(float x);
float moe_e2m1_decode(uint8_t nibble);
/* UE8M0: 2^(code-127); code 255 is NaN. */
float moe_ue8m0_decode(uint8_t code);

/* ---- quantized tensors ---- */

enum moe_scaling {
	MOE_SCALING_NONE = 0,
	MOE_SCALING_PER_TENSOR = 1,
	MOE_SCALING_PER_CHANNEL = 2,
	MOE_SCALING_BLOCK_1x128 = 3,
	MOE_SCALING_BLOCK_128x128 = 4,
	MOE_SCALING_NVFP4 = 5,
	MOE_SCALING_MX = 6,
	MOE_SCALING_COUNT
};

enum moe_sf_layout {
	MOE_SF_LINEAR = 0,
	MOE_SF_SWIZZLED_128x4 = 1,
	MOE_SF_SWIZZLED_8x4 = 2,
	MOE_SF_LAYOUT_COUNT
};

#define MOE_Q_FP8_NAN_ON_OVERFLOW 1u /* flags: PyTorch conversion instead of saturating */

struct moe_qtensor {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout sf_layout; /* NVFP4 only; LINEAR otherwise */
	uint32_t flags;
	int64_t rows;
	int64_t cols;
	void *data;
	void *scales;
	float global_scale; /* NVFP4 encode scale gs; on quantize, <= 0 means "derive from amax" */
};

const char *moe_scaling_name(enum moe_scaling s);   /* "none", "tensor", "channel", "1x128", ... */
enum moe_status moe_scaling_parse(const char *name, enum moe_scaling *out);
const char *moe_sf_layout_name(enum moe_sf_layout l); /* "linear", "128x4", "8x4" */
enum moe_status moe_sf_layout_parse(const char *name, enum moe_sf_layout *out);

/* Checks that dtype, scaling, layout and shape go together (e.g. NVFP4 needs cols % 16 == 0). */
enum moe_status moe_qtensor_validate(const struct moe_qtensor *q);
size_t moe_qtensor_data_bytes(const struct moe_qtensor *q);
/* Bytes of the scales array, padding of the swizzled layouts included. */
size_t moe_qtensor_scale_bytes(const struct moe_qtensor *q);
/* Byte offset of the NVFP4 scale of (row m, block kb) in the layout (formats.md). */
size_t moe_nvfp4_sf_offset(enum moe_sf_layout l, int64_t rows, int64_t kblocks, int64_t m, int64_t kb);
/* NVFP4 global encode scale 448*6/amax; 1.0 when amax is 0 or not finite. */
float moe_nvfp4_global_scale(float amax);

/* Quantize x[rows][cols] into q (data and scales allocated by the caller with the sizes above).
 * All scales are derived from x, except an NVFP4 global_scale > 0, which is used as given. */
typedef void moe_quantize_fn(const float *x, struct moe_qtensor *q);
/* Dequantize q into x[rows][cols]. */
typedef void moe_dequantize_fn(const struct moe_qtensor *q, float *x);

moe_quantize_fn moe_quantize__ref;
moe_dequantize_fn moe_dequantize__ref;

/* Allocate data and scales for q (dtype, scaling, layout, rows, cols set); zero-filled. */
enum moe_status moe_qtensor_alloc(struct moe_qtensor *q);
void moe_qtensor_free(struct moe_qtensor *q);

#ifdef __cplusplus
}
#endif
#endif
