/* moebench public interface: element types and the exact conversions every module shares.
 *
 * bf16 is the upper half of an IEEE binary32; fp32 -> bf16 rounds to nearest, ties to even, and a
 * NaN stays a quiet NaN with its sign. bf16 -> fp32 is exact. The quantized formats (FP8, NVFP4,
 * MXFP4, MXFP8) are described in codec.h. */
#ifndef MOE_DTYPE_H
#define MOE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "moe/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_dtype {
	MOE_DTYPE_NONE = 0, /* absent (e.g. no correction bias) */
	MOE_DTYPE_F32 = 1,
	MOE_DTYPE_BF16 = 2,
	MOE_DTYPE_FP8E4M3 = 3, /* E4M3FN: no infinities, max 448 */
	MOE_DTYPE_FP8E5M2 = 4,
	MOE_DTYPE_NVFP4 = 5,   /* E2M1 elements, 16-element blocks, E4M3 block scale, fp32 global scale */
	MOE_DTYPE_MXFP4 = 6,   /* E2M1 elements, 32-element blocks, UE8M0 block scale */
	MOE_DTYPE_MXFP8 = 7,   /* E4M3 elements, 32-element blocks, UE8M0 block scale */
	MOE_DTYPE_COUNT
};

/* "f32", "bf16", "fp8e4m3", "fp8e5m2", "nvfp4", "mxfp4", "mxfp8", "none"; "?" when out of range. */
const char *moe_dtype_name(enum moe_dtype t);
/* Parses the names above; MOE_ERR_INVALID_ARG with a message listing the valid names otherwise. */
enum moe_status moe_dtype_parse(const char *name, enum moe_dtype *out);

typedef uint16_t moe_bf16;

static inline uint32_t moe_f32_bits(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	return u;
}

static inline float moe_f32_from_bits(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof x);
	return x;
}

static inline float moe_bf16_to_f32(moe_bf16 h)
{
	return moe_f32_from_bits((uint32_t)h << 16);
}

/* Round to nearest even; NaN -> quiet NaN keeping the sign and the top payload bits. */
static inline moe_bf16 moe_f32_to_bf16(float x)
{
	uint32_t u = moe_f32_bits(x);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (moe_bf16)((u >> 16) | 0x0040u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (moe_bf16)(u >> 16);
}

/* x rounded to the nearest bf16 value, returned as fp32. */
static inline float moe_round_bf16(float x)
{
	return moe_bf16_to_f32(moe_f32_to_bf16(x));
}

#ifdef __cplusplus
}
#endif
#endif
