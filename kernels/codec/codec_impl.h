/* The quantize and dequantize kernels on MOE_VW lanes (codec_avx2.c and codec_avx512.c are this
 * file compiled for their ISA): FP8 E4M3 with per-tensor, per-channel, 1x128 and 128x128 scales
 * (both overflow modes), NVFP4 in every scale-factor layout, and MXFP4. Bit-exact with
 * moe_quantize__ref / moe_dequantize__ref on every input: the scales are computed per block with
 * the reference's own scalar formulas (reference/quantize_fp8.c, quantize_nvfp4.c, quantize_mx.c),
 * and every element goes through the same single fp32 operation (x * gs, x / s, x * oscale,
 * x * 2^-e on the way in; f(q) / gs, f(q) * s on the way out) and the exact lane codecs of
 * codec_vec.h. Only the amax reductions change order, and a maximum does not depend on it (NaN
 * elements are skipped as fmaxf skips them: vmaxps returns its second operand, the running max,
 * when the element is NaN). Preconditions (asserted): moe_qtensor_validate(q) == MOE_OK and the
 * dtype the kernel is for. */
#include <assert.h>
#include <float.h>
#include <math.h>

#include "moe/backend.h"
#include "codec/codec_vec.h"
#include "codec/sf_layout.h"

typedef uint64_t cv_u64 __attribute__((vector_size(MOE_VW * 4)));
typedef uint8_t cv_u8h __attribute__((vector_size(MOE_VW / 2)));

static inline cv_f32 ck_load(const float *p, int64_t n)
{
	return (cv_f32)(n >= MOE_VW ? vf_load(p, MOE_DTYPE_F32, 0) : vf_load_tail(p, MOE_DTYPE_F32, 0, (int)n, 0.0f));
}

static inline void ck_store(float *p, cv_f32 v, int64_t n)
{
	if (n >= MOE_VW)
		vf_store(p, MOE_DTYPE_F32, 0, (moe_vf)v);
	else
		vf_store_tail(p, MOE_DTYPE_F32, 0, (moe_vf)v, (int)n);
}

/* The largest |x| over rows x cols with row stride ld, NaN skipped (moe_ref_amax). */
static inline float ck_amax(const float *x, int64_t rows, int64_t cols, int64_t ld)
{
	const cv_u32 abs_mask = cv_splat(0x7fffffffu);
	moe_vf m = vf_zero();
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c += MOE_VW)
			m = vf_max((moe_vf)((cv_u32)ck_load(x + r * ld + c, cols - c) & abs_mask), m);
	return vf_hmax(m);
}

/* MOE_VW E2M1 nibbles (lanes) as MOE_VW / 2 bytes, element 2j in the low half of byte j. */
static inline void ck_store_nibbles(uint8_t *p, cv_u32 nib)
{
	const cv_u64 w = (cv_u64)nib;
	const cv_u8h b = __builtin_convertvector((w & 0xfu) | ((w >> 28) & 0xf0u), cv_u8h);
	memcpy(p, &b, sizeof b);
}

static inline cv_u32 ck_load_nibbles(const uint8_t *p)
{
	cv_u8h b;
	memcpy(&b, p, sizeof b);
	const cv_u64 w = __builtin_convertvector(b, cv_u64);
	return (cv_u32)((w & 0xfu) | ((w >> 4) << 32));
}

/* ---- FP8 E4M3 ---- */

struct ck_fp8_grid {
	int64_t br, bc, nbr, nbc;
	bool enc; /* encode scale (x * gs, f(q) / gs) rather than dequant scale (x / s, f(q) * s) */
};

static inline struct ck_fp8_grid ck_fp8_grid(const struct moe_qtensor *q)
{
	switch (q->scaling) {
	case MOE_SCALING_PER_TENSOR:
		return (struct ck_fp8_grid){ q->rows, q->cols, 1, 1, true };
	case MOE_SCALING_PER_CHANNEL:
		return (struct ck_fp8_grid){ 1, q->cols, q->rows, 1, true };
	case MOE_SCALING_BLOCK_1x128:
		return (struct ck_fp8_grid){ 1, 128, q->rows, (q->cols + 127) / 128, false };
	default:
		return (struct ck_fp8_grid){ 128, 128, (q->rows + 127) / 128, (q->cols + 127) / 128, false };
	}
}

/* The reference's scales (quantize_fp8.c): gs = 448 / amax (1 for amax 0 or inf, FLT_MAX when the
 * quotient overflows), s = max(amax, 1e-12) / 448 (1 for amax inf). */
static inline float ck_fp8_scale(bool enc, float amax)
{
	if (enc) {
		if (amax == 0.0f || isinf(amax))
			return 1.0f;
		const float gs = 448.0f / amax;
		return isinf(gs) ? FLT_MAX : gs;
	}
	return isinf(amax) ? 1.0f : fmaxf(amax, 1e-12f) / 448.0f;
}

static inline void ck_quantize_fp8(const float *x, struct moe_qtensor *q)
{
	assert(moe_qtensor_validate(q) == MOE_OK && q->dtype == MOE_DTYPE_FP8E4M3);
	const bool nan_mode = (q->flags & MOE_Q_FP8_NAN_ON_OVERFLOW) != 0;
	const int64_t rows = q->rows, cols = q->cols;
	const struct ck_fp8_grid g = ck_fp8_grid(q);
	uint8_t *d = q->data;
	float *scales = q->scales;
	for (int64_t rb = 0; rb < g.nbr; rb++) {
		for (int64_t cb = 0; cb < g.nbc; cb++) {
			const int64_t r0 = rb * g.br, c0 = cb * g.bc;
			const int64_t nr = rows - r0 < g.br ? rows - r0 : g.br;
			const int64_t nc = cols - c0 < g.bc ? cols - c0 : g.bc;
			const float s = ck_fp8_scale(g.enc, nr && nc ? ck_amax(x + r0 * cols + c0, nr, nc, cols) : 0.0f);
			scales[rb * g.nbc + cb] = s;
			for (int64_t r = r0; r < r0 + nr; r++) {
				for (int64_t c = c0; c < c0 + nc; c += MOE_VW) {
					const int64_t n = c0 + nc - c;
					const cv_f32 v = ck_load(x + r * cols + c, n);
					const cv_u32 code = cv_e4m3_encode(g.enc ? v * s : v / s, nan_mode);
					cv_store_u8(d + r * cols + c, code, n < MOE_VW ? (int)n : MOE_VW);
				}
			}
		}
	}
}

static inline void ck_dequantize_fp8(const struct moe_qtensor *q, float *x)
{
	assert(moe_qtensor_validate(q) == MOE_OK && q->dtype == MOE_DTYPE_FP8E4M3);
	const int64_t rows = q->rows, cols = q->cols;
	const struct ck_fp8_grid g = ck_fp8_grid(q);
	const uint8_t *d = q->data;
	const float *scales = q->scales;
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c0 = 0; c0 < cols; c0 += g.bc) {
			const float s = scales[(r / g.br) * g.nbc + c0 / g.bc];
			const int64_t end = cols - c0 < g.bc ? cols : c0 + g.bc;
			for (int64_t c = c0; c < end; c += MOE_VW) {
				const int64_t n = end - c;
				const cv_f32 v = cv_e4m3_decode(cv_load_u8(d + r * cols + c, n < MOE_VW ? (int)n : MOE_VW));
				ck_store(x + r * cols + c, g.enc ? v / s : v * s, n);
			}
		}
	}
}

/* ---- NVFP4 ---- */

static inline void ck_quantize_nvfp4(const float *x, struct moe_qtensor *q)
{
	assert(moe_qtensor_validate(q) == MOE_OK && q->dtype == MOE_DTYPE_NVFP4);
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 16;
	if (!(q->global_scale > 0.0f))
		q->global_scale = moe_nvfp4_global_scale(rows && cols ? ck_amax(x, 1, rows * cols, 0) : 0.0f);
	const float gs = q->global_scale;
	uint8_t *d = q->data, *sf = q->scales;
	const size_t sf_bytes = moe_qtensor_scale_bytes(q);
	if (sf_bytes)
		memset(sf, 0, sf_bytes);
	for (int64_t m = 0; m < rows; m++) {
		const struct moe_sf_row sr = moe_sf_row(q->sf_layout, kblocks, m);
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float *b = x + m * cols + kb * 16;
			const float vmax = ck_amax(b, 1, 16, 16);
			const float s = vmax != 0.0f ? vmax * (gs * (1.0f / 6.0f)) : 0.0f;
			const uint8_t sf8 = moe_fp8e4m3_encode(s, MOE_FP8_SATFINITE);
			const float sfq = moe_fp8e4m3_decode(sf8);
			const float oscale = vmax != 0.0f ? fminf(1.0f / (sfq * (1.0f / gs)), FLT_MAX) : 0.0f;
			sf[moe_sf_at(sr, kb)] = sf8;
			for (int i = 0; i < 16; i += MOE_VW)
				ck_store_nibbles(d + (m * cols + kb * 16 + i) / 2, cv_e2m1_encode(ck_load(b + i, MOE_VW) * oscale));
		}
	}
}

static inline void ck_dequantize_nvfp4(const struct moe_qtensor *q, float *x)
{
	assert(moe_qtensor_validate(q) == MOE_OK && q->dtype == MOE_DTYPE_NVFP4);
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 16;
	const float gs = q->global_scale;
	const uint8_t *d = q->data, *sf = q->scales;
	for (int64_t m = 0; m < rows; m++) {
		const struct moe_sf_row sr = moe_sf_row(q->sf_layout, kblocks, m);
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float scale = moe_fp8e4m3_decode(sf[moe_sf_at(sr, kb)]) * (1.0f / gs);
			for (int i = 0; i < 16; i += MOE_VW) {
				const int64_t k = m * cols + kb * 16 + i;
				ck_store(x + k, cv_e2m1_decode(ck_load_nibbles(d + k / 2)) * scale, MOE_VW);
			}
		}
	}
}

/* ---- MXFP4 ---- */

/* The UE8M0 byte of a 32-block (reference/quantize_mx.c): the smallest e in [-127, 127] with
 * 6 * 2^e >= amax, compared exactly in fp32; 0 for amax 0, 254 when amax is infinite. */
static inline uint8_t ck_mx_scale_byte(float amax)
{
	if (isinf(amax))
		return 254;
	if (amax == 0.0f)
		return 0;
	int ea;
	frexpf(amax, &ea);
	int e = ea - 3; /* 6 = 0.75 * 2^3: emax * 2^e then has the binade of amax */
	e = e < -127 ? -127 : e > 127 ? 127 : e;
	while (e > -127 && ldexpf(6.0f, e - 1) >= amax)
		e--;
	while (e < 127 && ldexpf(6.0f, e) < amax)
		e++;
	return (uint8_t)(e + 127);
}

static inline void ck_quantize_mxfp4(const float *x, struct moe_qtensor *q)
{
	assert(moe_qtensor_validate(q) == MOE_OK && q->dtype == MOE_DTYPE_MXFP4);
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 32;
	uint8_t *d = q->data, *sf = q->scales;
	for (int64_t m = 0; m < rows; m++) {
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float *b = x + m * cols + kb * 32;
			const uint8_t byte = ck_mx_scale_byte(ck_amax(b, 1, 32, 32));
			/* x * 2^-e rounds once, exactly as ldexpf(x, -e): 2^-e is representable for |e| <= 127 */
			const float down = ldexpf(1.0f, 127 - (int)byte);
			sf[m * kblocks + kb] = byte;
			for (int i = 0; i < 32; i += MOE_VW)
				ck_store_nibbles(d + (m * cols + kb * 32 + i) / 2, cv_e2m1_encode(ck_load(b + i, MOE_VW) * down));
		}
	}
}

static inline void ck_dequantize_mxfp4(const struct moe_qtensor *q, float *x)
{
	assert(moe_qtensor_validate(q) == MOE_OK && q->dtype == MOE_DTYPE_MXFP4);
	const int64_t rows = q->rows, cols = q->cols, kblocks = cols / 32;
	const uint8_t *d = q->data, *sf = q->scales;
	for (int64_t m = 0; m < rows; m++) {
		for (int64_t kb = 0; kb < kblocks; kb++) {
			const float scale = moe_ue8m0_decode(sf[m * kblocks + kb]);
			for (int i = 0; i < 32; i += MOE_VW) {
				const int64_t k = m * cols + kb * 32 + i;
				ck_store(x + k, cv_e2m1_decode(ck_load_nibbles(d + k / 2)) * scale, MOE_VW);
			}
		}
	}
}

/* Which tensors each kernel takes: its dtype, and E4M3 only among the FP8 formats. */
static inline bool ck_supports(enum moe_op op, const void *problem, enum moe_op want, enum moe_dtype t)
{
	const struct moe_qtensor *q = problem;
	return op == want && (!q || q->dtype == t);
}
