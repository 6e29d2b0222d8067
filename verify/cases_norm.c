/* Norm cases: LayerNorm (Cohere, centered, weight only) and RMSNorm over the hidden sizes of the
 * model table and awkward widths, every input/weight/output dtype pairing, and data that stresses
 * the error bound: offset rows (large mean, small spread: cancellation in the variance), bf16-exact
 * values, all-equal rows (zero variance: the output is w * 0), subnormal inputs. */
#include <math.h>
#include <stdio.h>

#include "vcases.h"
#include "vrng.h"

enum moe_status moe_catalogue_norm(enum moe_vdepth depth, uint64_t base_seed, struct moe_vcase_list *out)
{
	static const int64_t cols_quick[] = { 1, 7, 64, 1000, 2048, 8192 };
	static const enum moe_vgen gens[] = { MOE_GEN_NORMAL, MOE_GEN_BF16_TIES, MOE_GEN_OFFSET,
					      MOE_GEN_EQUAL, MOE_GEN_DENORMAL };
	static const enum moe_dtype dts[][3] = {
		{ MOE_DTYPE_F32, MOE_DTYPE_F32, MOE_DTYPE_F32 },   { MOE_DTYPE_BF16, MOE_DTYPE_BF16, MOE_DTYPE_BF16 },
		{ MOE_DTYPE_BF16, MOE_DTYPE_F32, MOE_DTYPE_F32 },  { MOE_DTYPE_F32, MOE_DTYPE_BF16, MOE_DTYPE_BF16 },
	};
	const int reps = depth == MOE_DEPTH_FULL ? 8 : 1;
	uint64_t n = 0;
	for (int kind = 0; kind < 2; kind++) {
		for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
			struct moe_vcase c;
			moe_vcase_init(&c, MOE_OP_NORM);
			c.norm.kind = (enum moe_norm_kind)kind;
			c.norm.eps = kind == MOE_NORM_LAYERNORM ? 1e-5f : 1e-6f;
			c.norm.in_dtype = dts[d][0];
			c.norm.weight_dtype = dts[d][1];
			c.norm.out_dtype = dts[d][2];
			snprintf(c.group, sizeof c.group, "%s in=%s w=%s out=%s", moe_norm_kind_name(c.norm.kind),
				 moe_dtype_name(dts[d][0]), moe_dtype_name(dts[d][1]), moe_dtype_name(dts[d][2]));
			for (size_t ci = 0; ci < sizeof cols_quick / sizeof cols_quick[0]; ci++) {
				for (size_t gi = 0; gi < sizeof gens / sizeof gens[0]; gi++) {
					for (int rep = 0; rep < reps; rep++, n++) {
						c.norm.cols = cols_quick[ci];
						c.gen = gens[gi];
						c.T = c.norm.cols >= 2048 ? 1 + (int64_t)(n % 2) : 1 + (int64_t)(n % 5);
						c.norm.rows = c.T;
						c.seed = base_seed + n * 104729u;
						if (moe_norm_validate(&c.norm) != MOE_OK)
							continue;
						enum moe_status s = moe_vcase_push(out, &c);
						if (s != MOE_OK)
							return s;
					}
				}
			}
			c.T = c.norm.rows = 0;
			c.gen = MOE_GEN_NORMAL;
			c.norm.cols = 64;
			enum moe_status s = moe_vcase_push(out, &c);
			if (s != MOE_OK)
				return s;
		}
	}
	return MOE_OK;
}

void moe_gen_norm(const struct moe_vcase *c, float *x32, float *w32)
{
	const struct moe_norm_params *p = &c->norm;
	const int64_t R = c->T, C = p->cols;
	const double sc = c->scale ? c->scale : 1.0;
	struct moe_vrng r;
	moe_vrng_seed(&r, c->seed);
	for (int64_t i = 0; i < R; i++) {
		const double same = moe_vrng_normal(&r) * sc;
		for (int64_t j = 0; j < C; j++) {
			double v;
			switch (c->gen) {
			case MOE_GEN_OFFSET:
				/* mean/spread 1000 in fp32; in bf16 (spacing 4 at 1000) the spread would
				 * round away, so 64 + 2 N(0,1) there (spacing 0.5) */
				v = p->in_dtype == MOE_DTYPE_BF16 ? 64.0 * sc + 2.0 * moe_vrng_normal(&r)
								  : 1000.0 * sc + moe_vrng_normal(&r);
				break;
			case MOE_GEN_EQUAL: v = same; break;
			case MOE_GEN_DENORMAL:
				v = moe_vrng_normal(&r) * (moe_vrng_below(&r, 2) ? 1e-39 : 1e-33);
				break;
			default: v = moe_vrng_normal(&r) * sc; break;
			}
			x32[i * C + j] = c->gen == MOE_GEN_BF16_TIES ? moe_round_bf16((float)v) : (float)v;
		}
	}
	for (int64_t j = 0; j < C; j++)
		w32[j] = (float)(1.0 + 0.25 * moe_vrng_normal(&r));
	if (p->in_dtype == MOE_DTYPE_BF16)
		for (int64_t i = 0; i < R * C; i++)
			x32[i] = moe_round_bf16(x32[i]);
	if (p->weight_dtype == MOE_DTYPE_BF16)
		for (int64_t j = 0; j < C; j++)
			w32[j] = moe_round_bf16(w32[j]);
}
