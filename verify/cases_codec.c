/* Codec cases (quantize and dequantize): every format of codec.h (FP8 E4M3/E5M2 per-tensor,
 * per-channel, 1x128 and 128x128 blocks, both overflow behaviours; NVFP4 in every scale layout,
 * derived and given global scales; MXFP4, MXFP8; BF16), shapes crossing the swizzle padding
 * (rows 130 > 128, Kb not a multiple of 4), and inputs aimed at the rounding decisions: values on
 * exact rounding midpoints after scaling (the block amax is chosen so that the scale is exactly 1),
 * zero blocks, blocks with inf/NaN, block scales in the E4M3 subnormal range, subnormal inputs;
 * dequantize also reads random bytes (every element code and scale byte). */
#include <math.h>
#include <stdio.h>

#include "vcases.h"
#include "vrng.h"

struct codec_fmt {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	bool nanovf;
	float gs;
};

static const struct codec_fmt fmts[] = {
	{ MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, true, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_FP8E5M2, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_FP8E5M2, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, true, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, false, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, false, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, false, 1.0f },
	{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, false, 0 },
	{ MOE_DTYPE_MXFP8, MOE_SCALING_MX, MOE_SF_LINEAR, false, 0 },
};

static const enum moe_vgen codec_gens[] = {
	MOE_GEN_NORMAL, MOE_GEN_BF16_TIES, MOE_GEN_EQUAL, MOE_GEN_DENORMAL, MOE_GEN_NAN, MOE_GEN_INF,
	MOE_GEN_MIDPOINTS, MOE_GEN_ZERO_BLOCKS, MOE_GEN_INF_BLOCKS, MOE_GEN_TINY_SCALE, MOE_GEN_CODES,
};

enum moe_status moe_catalogue_codec(enum moe_op op, enum moe_vdepth depth, uint64_t base_seed,
				    struct moe_vcase_list *out)
{
	static const int64_t shapes[][2] = { { 1, 64 }, { 3, 256 }, { 130, 160 }, { 9, 96 }, { 0, 64 } };
	const int reps = depth == MOE_DEPTH_FULL ? 6 : 1;
	uint64_t n = 0;
	for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++) {
		const struct codec_fmt *f = &fmts[fi];
		struct moe_vcase c;
		moe_vcase_init(&c, op);
		c.q = (struct moe_qtensor){ .dtype = f->dtype, .scaling = f->scaling, .sf_layout = f->layout,
					    .flags = f->nanovf ? MOE_Q_FP8_NAN_ON_OVERFLOW : 0,
					    .global_scale = f->gs };
		snprintf(c.group, sizeof c.group, "%s %s%s%s%s%s", moe_dtype_name(f->dtype), moe_scaling_name(f->scaling),
			 f->layout != MOE_SF_LINEAR ? " " : "", f->layout != MOE_SF_LINEAR ? moe_sf_layout_name(f->layout) : "",
			 f->nanovf ? " nan-on-overflow" : "", f->gs > 0 ? " gs=given" : "");
		for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
			for (size_t gi = 0; gi < sizeof codec_gens / sizeof codec_gens[0]; gi++) {
				const enum moe_vgen g = codec_gens[gi];
				if (g == MOE_GEN_CODES && op != MOE_OP_DEQUANTIZE)
					continue;
				/* midpoints need a scale of exactly 1: NVFP4 only with the given gs = 1 */
				if (g == MOE_GEN_MIDPOINTS && f->dtype == MOE_DTYPE_NVFP4 && f->gs != 1.0f)
					continue;
				if (shapes[si][0] == 0 && g != MOE_GEN_NORMAL)
					continue;
				for (int rep = 0; rep < reps; rep++, n++) {
					c.T = c.q.rows = shapes[si][0];
					c.q.cols = shapes[si][1];
					c.gen = g;
					c.seed = base_seed + n * 15485863u;
					enum moe_status s = moe_vcase_push_valid(out, &c);
					if (s != MOE_OK)
						return s;
				}
			}
		}
	}
	return MOE_OK;
}

/* Largest finite value and the block size of a format (for the generators). */
static void fmt_info(const struct moe_qtensor *q, double *maxv, int64_t *block)
{
	switch (q->dtype) {
	case MOE_DTYPE_FP8E4M3: *maxv = 448; *block = q->scaling == MOE_SCALING_PER_CHANNEL || q->scaling == MOE_SCALING_PER_TENSOR ? q->cols : 128; break;
	case MOE_DTYPE_FP8E5M2: *maxv = 57344; *block = q->scaling == MOE_SCALING_PER_CHANNEL || q->scaling == MOE_SCALING_PER_TENSOR ? q->cols : 128; break;
	case MOE_DTYPE_NVFP4: *maxv = 6; *block = 16; break;
	case MOE_DTYPE_MXFP4: *maxv = 6; *block = 32; break;
	case MOE_DTYPE_MXFP8: *maxv = 448; *block = 32; break;
	default: *maxv = 1; *block = 16; break;
	}
	if (*block <= 0)
		*block = 1;
}

/* A value exactly halfway between two neighbours of the element format (scale 1). */
static float midpoint(struct moe_vrng *r, enum moe_dtype t)
{
	static const float e2m1[] = { 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f };
	const float sign = moe_vrng_below(r, 2) ? -1.0f : 1.0f;
	switch (t) {
	case MOE_DTYPE_NVFP4:
	case MOE_DTYPE_MXFP4: return sign * e2m1[moe_vrng_below(r, 7)];
	case MOE_DTYPE_FP8E4M3:
	case MOE_DTYPE_MXFP8: {
		uint8_t code = (uint8_t)moe_vrng_below(r, 0x7e); /* 0 .. 0x7d: the next code is finite */
		return sign * 0.5f * (moe_fp8e4m3_decode(code) + moe_fp8e4m3_decode((uint8_t)(code + 1)));
	}
	case MOE_DTYPE_FP8E5M2: {
		uint8_t code = (uint8_t)moe_vrng_below(r, 0x7b);
		return sign * 0.5f * (moe_fp8e5m2_decode(code) + moe_fp8e5m2_decode((uint8_t)(code + 1)));
	}
	default: {
		/* halfway between two bf16 neighbours: a bf16 value plus half its ulp */
		float v = moe_round_bf16((float)moe_vrng_normal(r));
		return sign * (fabsf(v) + (float)moe_ulp_bf16(v) * 0.5f);
	}
	}
}

void moe_gen_codec(const struct moe_vcase *c, float *x)
{
	const int64_t R = c->T, C = c->q.cols;
	const double sc = c->scale ? c->scale : 1.0;
	double maxv;
	int64_t blk;
	struct moe_vrng r;
	moe_vrng_seed(&r, c->seed);
	fmt_info(&c->q, &maxv, &blk);
	for (int64_t i = 0; i < R; i++) {
		const float same = (float)(moe_vrng_normal(&r) * sc);
		for (int64_t j = 0; j < C; j++) {
			float v = (float)(moe_vrng_normal(&r) * sc);
			switch (c->gen) {
			case MOE_GEN_BF16_TIES: v = moe_round_bf16(v); break;
			case MOE_GEN_EQUAL: v = same; break;
			case MOE_GEN_DENORMAL: v = (float)(moe_vrng_normal(&r) * (moe_vrng_below(&r, 2) ? 1e-39 : 1e-6)); break;
			case MOE_GEN_NAN: if (moe_vrng_below(&r, 37) == 0) v = moe_vrng_below(&r, 2) ? NAN : -NAN; break;
			case MOE_GEN_INF: if (moe_vrng_below(&r, 37) == 0) v = moe_vrng_below(&r, 2) ? INFINITY : -INFINITY; break;
			case MOE_GEN_MIDPOINTS:
				/* the first element of every block carries the format's largest value, so the
				 * block (or tensor) scale is exactly 1 and the others land on midpoints */
				v = (j % blk == 0 && (c->q.scaling != MOE_SCALING_PER_TENSOR || (i == 0 && j == 0)))
					    ? (float)maxv : midpoint(&r, c->q.dtype);
				if (c->q.scaling == MOE_SCALING_PER_TENSOR && (i || j) && fabsf(v) > (float)maxv)
					v = (float)maxv;
				break;
			case MOE_GEN_TINY_SCALE:
				/* block 0 of row 0 holds a large amax; the others are small enough that
				 * their block scales fall in the E4M3 (or UE8M0) subnormal range */
				v = (i == 0 && j < blk) ? (float)(1e4 * moe_vrng_unit(&r) + (j == 0) * 1e4)
							: (float)(moe_vrng_uniform(&r, -1, 1) * (c->q.dtype == MOE_DTYPE_NVFP4 ? 0.2 : 1e-39));
				break;
			default: break;
			}
			x[i * C + j] = v;
		}
		if (c->gen == MOE_GEN_ZERO_BLOCKS || c->gen == MOE_GEN_INF_BLOCKS) {
			for (int64_t j0 = 0; j0 < C; j0 += blk) {
				const int64_t j1 = j0 + blk < C ? j0 + blk : C;
				if (c->gen == MOE_GEN_ZERO_BLOCKS && (i == R / 2 || moe_vrng_below(&r, 3) == 0))
					for (int64_t j = j0; j < j1; j++)
						x[i * C + j] = moe_vrng_below(&r, 4) ? 0.0f : -0.0f;
				if (c->gen == MOE_GEN_INF_BLOCKS && moe_vrng_below(&r, 3) == 0) {
					const uint64_t k = moe_vrng_below(&r, 3);
					x[i * C + j0 + (int64_t)moe_vrng_below(&r, (uint64_t)(j1 - j0))] =
						k == 0 ? INFINITY : k == 1 ? -INFINITY : NAN;
				}
			}
		}
	}
}

void moe_gen_codec_q(const struct moe_vcase *c, const float *x, struct moe_qtensor *q)
{
	if (c->gen != MOE_GEN_CODES) {
		moe_quantize__ref(x, q);
		return;
	}
	struct moe_vrng r;
	moe_vrng_seed(&r, c->seed ^ 0x5bd1e995u);
	const size_t nd = moe_qtensor_data_bytes(q), ns = moe_qtensor_scale_bytes(q);
	unsigned char *d = q->data;
	for (size_t i = 0; i < nd; i++)
		d[i] = (unsigned char)moe_vrng_u64(&r);
	if (q->scaling == MOE_SCALING_NVFP4 || q->scaling == MOE_SCALING_MX) {
		unsigned char *sb = q->scales;
		for (size_t i = 0; i < ns; i++)
			sb[i] = (unsigned char)moe_vrng_u64(&r);
	} else if (ns) {
		/* float scales: positive, finite, spread over many binades */
		float *sf = q->scales;
		for (size_t i = 0; i < ns / sizeof(float); i++)
			sf[i] = (float)ldexp(1.0 + moe_vrng_unit(&r), (int)moe_vrng_below(&r, 40) - 20);
	}
	if (q->dtype == MOE_DTYPE_NVFP4)
		q->global_scale = (float)ldexp(1.0 + moe_vrng_unit(&r), (int)moe_vrng_below(&r, 20) - 4);
}
