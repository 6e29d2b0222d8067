/* Quantized tensors: which dtype / scaling / layout / shape combinations are valid, the sizes of
 * their data and scale arrays, the NVFP4 scale-factor layouts, the NVFP4 global scale, allocation.
 *
 * Valid combinations; anything else is MOE_ERR_INVALID_ARG with a message naming the values:
 *   F32, BF16          NONE
 *   FP8E4M3, FP8E5M2   PER_TENSOR, PER_CHANNEL, BLOCK_1x128, BLOCK_128x128 (E5M2 uses its own
 *                      largest value 57344 where E4M3 uses 448, quantize_fp8.c)
 *   NVFP4              NVFP4 with cols % 16 == 0, in any sf_layout
 *   MXFP4, MXFP8       MX with cols % 32 == 0
 * sf_layout must be LINEAR unless the scaling is NVFP4. The only flag, MOE_Q_FP8_NAN_ON_OVERFLOW,
 * goes with the FP8 dtypes only (MXFP8 clamps before it converts and cannot overflow). An NVFP4
 * global_scale must not be NaN or infinite (<= 0 means "derive it" to quantize). rows and cols may
 * be 0; neither may be negative, and both array sizes must fit in a size_t.
 * moe_qtensor_validate also requires data and scales to be non-NULL where their size is non-zero;
 * moe_qtensor_alloc checks everything else before it allocates.
 *
 * NVFP4 scale layouts (formats.md), Kb = cols/16 one-byte block scales per row:
 *   LINEAR          [rows][Kb]
 *   SWIZZLED_128x4  tiles of 128 rows x 4 blocks, 512 bytes each; rows padded to 128, Kb to 4
 *   SWIZZLED_8x4    tiles of 8 rows x 4 blocks, 32 bytes each; rows padded to 8, Kb to 4
 * The padding is part of the scale array (moe_qtensor_scale_bytes counts it) and holds zeros.
 * Sizes of a tensor that is not valid are reported as 0. */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/codec.h"
#include "moe/memory.h"

#define MOE_QT_ALIGN 64

static int64_t div_up(int64_t a, int64_t b)
{
	return a / b + (a % b != 0);
}

static int64_t pad_to(int64_t a, int64_t b)
{
	return div_up(a, b) * b;
}

static int64_t sf_rows(enum moe_sf_layout l, int64_t rows)
{
	return l == MOE_SF_SWIZZLED_128x4 ? pad_to(rows, 128) : l == MOE_SF_SWIZZLED_8x4 ? pad_to(rows, 8) : rows;
}

static int64_t sf_cols(enum moe_sf_layout l, int64_t kblocks)
{
	return l == MOE_SF_LINEAR ? kblocks : pad_to(kblocks, 4);
}

/* a * b * c into *out; false on overflow of size_t. */
static bool mul3(uint64_t a, uint64_t b, uint64_t c, size_t *out)
{
	size_t ab;
	return !__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, out);
}

/* Byte sizes of a tensor whose format is valid; false if one of them does not fit in size_t. */
static bool qtensor_sizes(const struct moe_qtensor *q, size_t *data, size_t *scales)
{
	const uint64_t r = (uint64_t)q->rows, c = (uint64_t)q->cols;
	uint64_t elem_size = 1, elem_div = 1;
	switch (q->dtype) {
	case MOE_DTYPE_F32: elem_size = 4; break;
	case MOE_DTYPE_BF16: elem_size = 2; break;
	case MOE_DTYPE_NVFP4:
	case MOE_DTYPE_MXFP4: elem_div = 2; break; /* cols is a multiple of 16 here */
	default: break;
	}
	if (!mul3(r, c / elem_div, elem_size, data))
		return false;

	switch (q->scaling) {
	case MOE_SCALING_PER_TENSOR:
		return mul3(1, 1, sizeof(float), scales);
	case MOE_SCALING_PER_CHANNEL:
		return mul3(r, 1, sizeof(float), scales);
	case MOE_SCALING_BLOCK_1x128:
		return mul3(r, (uint64_t)div_up(q->cols, 128), sizeof(float), scales);
	case MOE_SCALING_BLOCK_128x128:
		return mul3((uint64_t)div_up(q->rows, 128), (uint64_t)div_up(q->cols, 128), sizeof(float), scales);
	case MOE_SCALING_NVFP4:
		if (q->rows > INT64_MAX - 128)
			return false; /* padding the rows to 128 must not overflow */
		return mul3((uint64_t)sf_rows(q->sf_layout, q->rows), (uint64_t)sf_cols(q->sf_layout, q->cols / 16), 1,
			    scales);
	case MOE_SCALING_MX:
		return mul3(r, c / 32, 1, scales);
	default:
		*scales = 0;
		return true;
	}
}

/* The failure of `op`, or only its status when op is NULL (the size queries stay silent). */
static enum moe_status __attribute__((format(printf, 2, 3))) qt_fail(const char *op, const char *fmt, ...)
{
	if (!op)
		return MOE_ERR_INVALID_ARG;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return moe_fail(MOE_ERR_INVALID_ARG, "%s: %s", op, msg);
}

static bool scaling_fits(enum moe_dtype t, enum moe_scaling s)
{
	switch (t) {
	case MOE_DTYPE_F32:
	case MOE_DTYPE_BF16:
		return s == MOE_SCALING_NONE;
	case MOE_DTYPE_FP8E4M3:
	case MOE_DTYPE_FP8E5M2:
		return s == MOE_SCALING_PER_TENSOR || s == MOE_SCALING_PER_CHANNEL ||
		       s == MOE_SCALING_BLOCK_1x128 || s == MOE_SCALING_BLOCK_128x128;
	case MOE_DTYPE_NVFP4:
		return s == MOE_SCALING_NVFP4;
	case MOE_DTYPE_MXFP4:
	case MOE_DTYPE_MXFP8:
		return s == MOE_SCALING_MX;
	default:
		return false;
	}
}

static const char *scalings_for(enum moe_dtype t)
{
	switch (t) {
	case MOE_DTYPE_F32:
	case MOE_DTYPE_BF16: return "none";
	case MOE_DTYPE_FP8E4M3:
	case MOE_DTYPE_FP8E5M2: return "tensor, channel, 1x128, 128x128";
	case MOE_DTYPE_NVFP4: return "nvfp4";
	default: return "mx";
	}
}

/* Everything but the pointers. op names the caller in the message (NULL: no message). */
static enum moe_status check_format(const struct moe_qtensor *q, const char *op)
{
	if (!q)
		return qt_fail(op, "no tensor (NULL)");
	if (q->dtype <= MOE_DTYPE_NONE || q->dtype >= MOE_DTYPE_COUNT)
		return qt_fail(op, "dtype %d is not an element type (valid: f32, bf16, fp8e4m3, fp8e5m2, nvfp4, "
				   "mxfp4, mxfp8)", (int)q->dtype);
	const char *dt = moe_dtype_name(q->dtype);
	if (q->scaling < 0 || q->scaling >= MOE_SCALING_COUNT)
		return qt_fail(op, "%s: scaling %d out of range", dt, (int)q->scaling);
	if (q->sf_layout < 0 || q->sf_layout >= MOE_SF_LAYOUT_COUNT)
		return qt_fail(op, "%s: scale-factor layout %d out of range", dt, (int)q->sf_layout);
	if (q->rows < 0 || q->cols < 0)
		return qt_fail(op, "%s: negative shape (%lld x %lld)", dt, (long long)q->rows, (long long)q->cols);
	const char *sc = moe_scaling_name(q->scaling);
	if (!scaling_fits(q->dtype, q->scaling))
		return qt_fail(op, "%s does not take scaling '%s' (valid: %s)", dt, sc, scalings_for(q->dtype));
	if (q->sf_layout != MOE_SF_LINEAR && q->scaling != MOE_SCALING_NVFP4)
		return qt_fail(op, "%s with scaling '%s': scale-factor layout '%s' needs nvfp4 scaling (use linear)",
			       dt, sc, moe_sf_layout_name(q->sf_layout));
	const int64_t block = q->dtype == MOE_DTYPE_NVFP4 ? 16 : q->scaling == MOE_SCALING_MX ? 32 : 1;
	if (q->cols % block != 0)
		return qt_fail(op, "%s with scaling '%s' needs cols %% %lld == 0 (cols = %lld)", dt, sc,
			       (long long)block, (long long)q->cols);
	if (q->flags & ~MOE_Q_FP8_NAN_ON_OVERFLOW)
		return qt_fail(op, "%s: unknown flags 0x%x", dt, (unsigned)q->flags);
	if ((q->flags & MOE_Q_FP8_NAN_ON_OVERFLOW) && q->dtype != MOE_DTYPE_FP8E4M3 && q->dtype != MOE_DTYPE_FP8E5M2)
		return qt_fail(op, "%s: flag NAN_ON_OVERFLOW applies to fp8e4m3 and fp8e5m2 only", dt);
	if (q->dtype == MOE_DTYPE_NVFP4 && !isfinite(q->global_scale))
		return qt_fail(op, "nvfp4: global_scale %g is not finite", (double)q->global_scale);
	size_t data, scales;
	if (!qtensor_sizes(q, &data, &scales))
		return qt_fail(op, "%s [%lld x %lld]: byte size overflows size_t", dt, (long long)q->rows,
			       (long long)q->cols);
	return MOE_OK;
}

enum moe_status moe_qtensor_validate(const struct moe_qtensor *q)
{
	const char *op = "qtensor_validate";
	enum moe_status s = check_format(q, op);
	if (s != MOE_OK)
		return s;
	size_t data, scales;
	qtensor_sizes(q, &data, &scales);
	if (data && !q->data)
		return qt_fail(op, "%s [%lld x %lld]: data is NULL (%zu bytes expected)", moe_dtype_name(q->dtype),
			       (long long)q->rows, (long long)q->cols, data);
	if (scales && !q->scales)
		return qt_fail(op, "%s [%lld x %lld] with scaling '%s': scales are NULL (%zu bytes expected)",
			       moe_dtype_name(q->dtype), (long long)q->rows, (long long)q->cols,
			       moe_scaling_name(q->scaling), scales);
	return MOE_OK;
}

size_t moe_qtensor_data_bytes(const struct moe_qtensor *q)
{
	size_t data = 0, scales = 0;
	if (check_format(q, NULL) == MOE_OK)
		qtensor_sizes(q, &data, &scales);
	return data;
}

size_t moe_qtensor_scale_bytes(const struct moe_qtensor *q)
{
	size_t data = 0, scales = 0;
	if (check_format(q, NULL) == MOE_OK)
		qtensor_sizes(q, &data, &scales);
	return scales;
}

size_t moe_nvfp4_sf_offset(enum moe_sf_layout l, int64_t rows, int64_t kblocks, int64_t m, int64_t kb)
{
	assert(m >= 0 && kb >= 0 && m < sf_rows(l, rows) && kb < sf_cols(l, kblocks));
	switch (l) {
	case MOE_SF_SWIZZLED_128x4:
		/* within a 128x4 tile, the 16 bytes at (m % 32) * 16 hold the 4 block scales of rows
		 * m % 32, +32, +64 and +96: four 32-row slabs interleaved */
		return (size_t)((m / 128) * (div_up(kblocks, 4) * 512) + (kb / 4) * 512 + (m % 32) * 16 +
				((m % 128) / 32) * 4 + (kb % 4));
	case MOE_SF_SWIZZLED_8x4:
		return (size_t)((m / 8) * (div_up(kblocks, 4) * 32) + (kb / 4) * 32 + (m % 8) * 4 + (kb % 4));
	default:
		assert(l == MOE_SF_LINEAR);
		return (size_t)(m * kblocks + kb);
	}
}

float moe_nvfp4_global_scale(float amax)
{
	/* amax below 2688 / FLT_MAX would give +inf, and 1/gs = 0 would then erase every block */
	if (!(amax > 0.0f) || isinf(amax))
		return 1.0f;
	const float gs = (448.0f * 6.0f) / amax;
	return isinf(gs) ? FLT_MAX : gs;
}

static void *alloc_zeroed(size_t bytes)
{
	if (!bytes)
		return NULL;
	const size_t rounded = (bytes + MOE_QT_ALIGN - 1) / MOE_QT_ALIGN * MOE_QT_ALIGN;
	if (rounded < bytes)
		return NULL;
	void *p = moe_alloc_large(rounded);
	if (p)
		memset(p, 0, rounded);
	return p;
}

enum moe_status moe_qtensor_alloc(struct moe_qtensor *q)
{
	const char *op = "qtensor_alloc";
	enum moe_status s = check_format(q, op);
	if (s != MOE_OK)
		return s;
	size_t data, scales;
	qtensor_sizes(q, &data, &scales);
	q->data = alloc_zeroed(data);
	q->scales = alloc_zeroed(scales);
	if ((data && !q->data) || (scales && !q->scales)) {
		moe_qtensor_free(q);
		return moe_fail(MOE_ERR_NOMEM, "%s: out of memory for %zu data and %zu scale bytes (%s [%lld x %lld])",
				op, data, scales, moe_dtype_name(q->dtype), (long long)q->rows, (long long)q->cols);
	}
	return MOE_OK;
}

void moe_qtensor_free(struct moe_qtensor *q)
{
	if (!q)
		return;
	free(q->data);
	free(q->scales);
	q->data = NULL;
	q->scales = NULL;
}
