/* Expert cases: every weight format of expert.h with the activation handling that goes with it
 * (fp32, W16A16, W8A16/W8A8 per-tensor and DeepSeek blocks, NVFP4 W4A16 and W4A4 in every scale
 * layout, MXFP4 W4A16), small shapes that keep --quick fast plus gpt-oss and DeepSeek hidden sizes
 * in --full, M = 0, 1 and a few tokens (decode), every M from 2 to 32 (each remainder of the token
 * tiles) and 17 to 257 (prefill), and activations with
 * outliers. Weights are drawn in fp32 and quantized by the reference quantizer (the quantizer is
 * not under test here). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "vcases.h"
#include "vrng.h"

struct expert_fmt {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	enum moe_act_quant act;
	float ags;
};

static const struct expert_fmt fmts[] = {
	{ MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, 0 },
	{ MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR, MOE_ACT_NONE, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128, 0 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_NVFP4, 0 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4, MOE_ACT_NVFP4, 64.0f },
	{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
};

enum moe_status moe_catalogue_expert(enum moe_vdepth depth, uint64_t base_seed, struct moe_vcase_list *out)
{
	static const int64_t shapes[][2] = { { 64, 32 }, { 128, 96 }, { 256, 64 }, { 2880, 64 }, { 7168, 32 } };
	static const int64_t Ms[] = { 1, 3, 8, 0 };
	static const enum moe_vgen gens[] = { MOE_GEN_NORMAL, MOE_GEN_BF16_TIES, MOE_GEN_OFFSET };
	const size_t nshapes = depth == MOE_DEPTH_FULL ? 5 : 3;
	const int reps = depth == MOE_DEPTH_FULL ? 3 : 1;
	uint64_t n = 0;
	for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++) {
		const struct expert_fmt *f = &fmts[fi];
		struct moe_vcase c;
		moe_vcase_init(&c, MOE_OP_EXPERT);
		c.expert.weight_dtype = f->dtype;
		c.expert.weight_scaling = f->scaling;
		c.expert.weight_sf_layout = f->layout;
		c.expert.act_quant = f->act;
		c.expert.act_global_scale[0] = c.expert.act_global_scale[1] = f->ags;
		snprintf(c.group, sizeof c.group, "w=%s %s%s%s act=%s%s", moe_dtype_name(f->dtype),
			 moe_scaling_name(f->scaling), f->layout ? " " : "", f->layout ? moe_sf_layout_name(f->layout) : "",
			 moe_act_quant_name(f->act), f->ags > 0 ? " gs=given" : "");
		for (size_t si = 0; si < nshapes; si++) {
			for (size_t gi = 0; gi < sizeof gens / sizeof gens[0]; gi++) {
				for (int rep = 0; rep < reps; rep++, n++) {
					c.expert.hidden = shapes[si][0];
					c.expert.inter = shapes[si][1];
					c.T = c.expert.tokens = si >= 3 ? 1 : Ms[n % 4];
					c.gen = gens[gi];
					c.seed = base_seed + n * 32452843u;
					enum moe_status s = moe_vcase_push_valid(out, &c);
					if (s != MOE_OK)
						return s;
				}
			}
		}
		/* Remainders: every token count 2..32 not drawn above, on the smallest shape, so that each
		 * remainder class of the token tiles (decode 2 and 4 rows, prefill 6, 12 and 16) and of
		 * the 16-token decode/prefill boundary runs in --quick for every format. */
		for (int64_t M = 2; M <= 32; M++, n++) {
			if (M == 3 || M == 8 || M == 17)
				continue;
			c.T = c.expert.tokens = M;
			c.expert.hidden = shapes[0][0];
			c.expert.inter = shapes[0][1];
			c.gen = MOE_GEN_NORMAL;
			c.seed = base_seed + n * 32452843u;
			enum moe_status s = moe_vcase_push_valid(out, &c);
			if (s != MOE_OK)
				return s;
		}
		/* Prefill: more than 16 tokens, which the decode variants decline and the prefill ones take
		 * (a remainder tile at 17 and 257, whole tiles at 64). */
		static const int64_t prefill[][3] = { { 17, 256, 64 }, { 64, 128, 96 }, { 257, 64, 32 } };
		const size_t nprefill = depth == MOE_DEPTH_FULL ? 3 : 1;
		for (size_t mi = 0; mi < nprefill; mi++) {
			for (size_t gi = 0; gi < sizeof gens / sizeof gens[0]; gi++, n++) {
				c.T = c.expert.tokens = prefill[mi][0];
				c.expert.hidden = prefill[mi][1];
				c.expert.inter = prefill[mi][2];
				c.gen = gens[gi];
				c.seed = base_seed + n * 32452843u;
				enum moe_status s = moe_vcase_push_valid(out, &c);
				if (s != MOE_OK)
					return s;
			}
		}
	}
	return MOE_OK;
}

void moe_gen_expert_x(const struct moe_vcase *c, uint64_t seed, int64_t M, int64_t H, float *x)
{
	struct moe_vrng r;
	const double sc = c->scale ? c->scale : 1.0;
	moe_vrng_seed(&r, seed);
	for (int64_t i = 0; i < M * H; i++) {
		double v = moe_vrng_normal(&r) * sc;
		if (c->gen == MOE_GEN_OFFSET && moe_vrng_below(&r, 50) == 0)
			v *= 100.0; /* outliers: one element in fifty, as in LLM activations */
		x[i] = c->gen == MOE_GEN_BF16_TIES ? moe_round_bf16((float)v) : (float)v;
	}
}

static enum moe_status gen_tensor(const struct moe_vcase *c, struct moe_vrng *r, int64_t rows, int64_t cols,
				  double sd, struct moe_qtensor *q)
{
	*q = (struct moe_qtensor){ .dtype = c->expert.weight_dtype, .scaling = c->expert.weight_scaling,
				   .sf_layout = c->expert.weight_sf_layout, .rows = rows, .cols = cols };
	enum moe_status s = moe_qtensor_alloc(q);
	if (s != MOE_OK)
		return s;
	float *w = malloc((size_t)(rows * cols) * sizeof(float));
	if (!w) {
		moe_qtensor_free(q);
		return moe_fail(MOE_ERR_NOMEM, "expert: no memory for a [%lld][%lld] weight", (long long)rows,
				(long long)cols);
	}
	for (int64_t i = 0; i < rows * cols; i++)
		w[i] = (float)(moe_vrng_normal(r) * sd);
	moe_backend_reference()->quantize(w, q);
	free(w);
	return MOE_OK;
}

enum moe_status moe_gen_expert_weights(const struct moe_vcase *c, uint64_t seed, int64_t inter,
				       struct moe_expert_weights *w)
{
	const int64_t H = c->expert.hidden;
	struct moe_vrng r;
	moe_vrng_seed(&r, seed);
	*w = (struct moe_expert_weights){ 0 };
	enum moe_status s = gen_tensor(c, &r, inter, H, 1.0 / sqrt((double)H), &w->gate);
	if (s == MOE_OK)
		s = gen_tensor(c, &r, inter, H, 1.0 / sqrt((double)H), &w->up);
	if (s == MOE_OK)
		s = gen_tensor(c, &r, H, inter, 1.0 / sqrt((double)inter), &w->down);
	if (s != MOE_OK)
		moe_free_expert_weights(w);
	return s;
}

void moe_free_expert_weights(struct moe_expert_weights *w)
{
	moe_qtensor_free(&w->gate);
	moe_qtensor_free(&w->up);
	moe_qtensor_free(&w->down);
}
