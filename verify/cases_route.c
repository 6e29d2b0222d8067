/* Routing cases: the catalogue (shapes of real models and awkward ones, every profile, the input
 * catalogue of verification.md) and the seeded input generator.
 *
 * Inputs are generated in fp32 and stored in the case's logits/bias dtypes (bf16 by RNE). Every
 * generator is a pure function of (case, seed), so a spec line reproduces its inputs exactly. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vcases.h"
#include "vrng.h"

struct route_shape {
	const char *name;
	enum moe_routing_method method;
	int32_t E, K, G, TG;
	bool renorm;
	float rsf;
	bool bias;
};

/* Real models (routing.md, cohere2-moe.md) first, then awkward shapes: E not a power of two, K = 1,
 * K = E - 1, small grouped problems where group near-ties are frequent, grouped with and without
 * a bias. */
static const struct route_shape shapes[] = {
	{ "deepseek-v3", MOE_ROUTE_DEEPSEEKV3, 256, 8, 8, 4, true, 2.5f, true },
	{ "deepseek-v3-ungrouped", MOE_ROUTE_DEEPSEEKV3, 256, 8, 1, 1, true, 2.5f, true },
	{ "qwen3-30b-a3b", MOE_ROUTE_RENORMALIZE_NAIVE, 128, 8, 0, 0, true, 1.0f, false },
	{ "qwen3-no-renorm", MOE_ROUTE_DEFAULT, 128, 8, 0, 0, false, 1.0f, false },
	{ "command-a-plus", MOE_ROUTE_SIGMOID_RENORM, 128, 8, 0, 0, true, 1.0f, false },
	{ "command-a-plus-no-renorm", MOE_ROUTE_SIGMOID_RENORM, 128, 8, 0, 0, false, 1.0f, false },
	{ "cohere-sigmoid", MOE_ROUTE_SIGMOID, 128, 8, 0, 0, false, 1.0f, false },
	{ "minimax-m2", MOE_ROUTE_MINIMAX2, 256, 8, 0, 0, true, 1.0f, true },
	{ "llama4-scout", MOE_ROUTE_LLAMA4, 16, 1, 0, 0, false, 1.0f, false },
	{ "llama4-maverick", MOE_ROUTE_LLAMA4, 128, 1, 0, 0, false, 1.0f, false },
	{ "gpt-oss-20b", MOE_ROUTE_RENORMALIZE, 32, 4, 0, 0, true, 1.0f, false },
	{ "mixtral-8x7b", MOE_ROUTE_RENORMALIZE, 8, 2, 0, 0, true, 1.0f, false },
	{ "topk-raw", MOE_ROUTE_TOPK, 128, 8, 0, 0, false, 1.0f, false },
	{ "topk-sigmoid", MOE_ROUTE_TOPK_SIGMOID, 64, 6, 0, 0, false, 1.0f, false },
	{ "E60-naive", MOE_ROUTE_RENORMALIZE_NAIVE, 60, 4, 0, 0, true, 1.0f, false },
	{ "E12-K11-sigmoid", MOE_ROUTE_SIGMOID_RENORM, 12, 11, 0, 0, true, 1.0f, false },
	{ "E20-K1-default", MOE_ROUTE_DEFAULT, 20, 1, 0, 0, false, 1.0f, false },
	{ "E12-G3-deepseek", MOE_ROUTE_DEEPSEEKV3, 12, 7, 3, 2, true, 1.5f, true },
	{ "E72-G6-deepseek", MOE_ROUTE_DEEPSEEKV3, 72, 8, 6, 3, true, 2.5f, true },
	/* grouped without a correction bias: vLLM then scores a group by its maximum, the other
	 * engines by the top-2 sum (routing.md); every biased case takes the top-2 path */
	{ "deepseek-v3-nobias", MOE_ROUTE_DEEPSEEKV3, 256, 8, 8, 4, true, 2.5f, false },
	{ "E72-G6-deepseek-nobias", MOE_ROUTE_DEEPSEEKV3, 72, 8, 6, 3, true, 2.5f, false },
	{ "E36-minimax", MOE_ROUTE_MINIMAX2, 36, 5, 0, 0, true, 1.0f, true },
	{ "E24-K23-renorm", MOE_ROUTE_RENORMALIZE, 24, 23, 0, 0, true, 1.0f, false },
};

static const enum moe_vgen route_gens[] = {
	MOE_GEN_NORMAL, MOE_GEN_BF16_TIES, MOE_GEN_LEVELS, MOE_GEN_EQUAL, MOE_GEN_NEGATIVE,
	MOE_GEN_UNDERFLOW, MOE_GEN_DEEP_UNDERFLOW, MOE_GEN_SATURATE, MOE_GEN_OVERFLOW, MOE_GEN_NAN,
	MOE_GEN_INF, MOE_GEN_DENORMAL, MOE_GEN_BIAS_HUGE, MOE_GEN_BIAS_NEG, MOE_GEN_SKEWED,
};

static struct moe_route_params shape_params(const struct route_shape *s, enum moe_profile prof)
{
	struct moe_route_params p = moe_route_params_default(s->method, s->E, s->K);
	p.profile = prof;
	p.n_group = s->G;
	p.topk_group = s->TG;
	p.renormalize = s->renorm;
	p.routed_scaling_factor = s->rsf;
	p.bias_dtype = s->bias ? MOE_DTYPE_F32 : MOE_DTYPE_NONE;
	return p;
}

enum moe_status moe_catalogue_route(enum moe_vdepth depth, uint64_t base_seed, unsigned profile_mask,
				    struct moe_vcase_list *out)
{
	/* quick: one case per (shape, profile, generator) plus T = 0; full: 128 seeded variations of
	 * each (about 860 cases per variation, x 128 > 1e5 cases). */
	const int reps = depth == MOE_DEPTH_FULL ? 128 : 1;
	static const int64_t quick_T[] = { 1, 3, 5, 16 };
	uint64_t n = 0;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const struct route_shape *sh = &shapes[si];
		for (int prof = 0; prof < MOE_PROFILE_COUNT; prof++) {
			if (!((profile_mask >> prof) & 1u))
				continue;
			struct moe_vcase c;
			moe_vcase_init(&c, MOE_OP_ROUTE);
			c.route = shape_params(sh, (enum moe_profile)prof);
			snprintf(c.group, sizeof c.group, "%s %s", sh->name, moe_profile_name((enum moe_profile)prof));
			if (moe_route_validate(&c.route) != MOE_OK)
				continue;
			c.T = 0;
			c.seed = base_seed;
			enum moe_status s = moe_vcase_push(out, &c);
			if (s != MOE_OK)
				return s;
			for (size_t gi = 0; gi < sizeof route_gens / sizeof route_gens[0]; gi++) {
				const enum moe_vgen g = route_gens[gi];
				if ((g == MOE_GEN_BIAS_HUGE || g == MOE_GEN_BIAS_NEG) && !sh->bias)
					continue;
				for (int rep = 0; rep < reps; rep++, n++) {
					c.gen = g;
					c.seed = base_seed + n * 7919u;
					c.T = depth == MOE_DEPTH_FULL ? 1 + (int64_t)(n % 6) : quick_T[n % 4];
					c.scale = 0;
					/* bf16 logits and bias on alternate cases; bf16-ties always in bf16 */
					c.route.logits_dtype = (g == MOE_GEN_BF16_TIES || (n & 1)) ? MOE_DTYPE_BF16
												 : MOE_DTYPE_F32;
					if (sh->bias)
						c.route.bias_dtype = (n & 2) ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
					if (g == MOE_GEN_NORMAL)
						c.scale = (const float[]){ 1.0f, 0.01f, 30.0f }[(n / 4) % 3];
					if ((s = moe_vcase_push(out, &c)) != MOE_OK)
						return s;
				}
			}
		}
	}
	return MOE_OK;
}

static float route_value(struct moe_vrng *r, enum moe_vgen g, float sc)
{
	switch (g) {
	case MOE_GEN_BF16_TIES: return moe_round_bf16((float)(moe_vrng_normal(r) * (sc ? sc : 1.0f)));
	case MOE_GEN_LEVELS: return (float)((double)moe_vrng_below(r, 5) - 2.0) * 0.5f * (sc ? sc : 1.0f);
	case MOE_GEN_NEGATIVE: return (float)(-fabs(moe_vrng_normal(r)) * (sc ? sc : 1.0f) - 0.25);
	case MOE_GEN_UNDERFLOW: return (float)moe_vrng_uniform(r, -20.0, -10.0);
	case MOE_GEN_DEEP_UNDERFLOW: return (float)moe_vrng_uniform(r, -110.0, -90.0);
	case MOE_GEN_SATURATE: return (float)moe_vrng_uniform(r, 17.0, 40.0);
	case MOE_GEN_OVERFLOW: return (float)fmax(-3000.0, fmin(3000.0, moe_vrng_normal(r) * (sc ? sc : 1000.0)));
	case MOE_GEN_DENORMAL:
		return moe_vrng_below(r, 2) ? (float)(moe_vrng_normal(r) * 1e-39)
					    : (float)(moe_vrng_normal(r) * 1e-30);
	default: return (float)(moe_vrng_normal(r) * (sc ? sc : 1.0f));
	}
}

void moe_gen_route(const struct moe_vcase *c, float *L32, float *b32)
{
	const struct moe_route_params *p = &c->route;
	const int64_t T = c->T, E = p->num_experts;
	struct moe_vrng r;
	moe_vrng_seed(&r, c->seed);
	const int64_t hot = (int64_t)(c->seed % (uint64_t)E);

	for (int64_t t = 0; t < T; t++) {
		float *row = L32 + t * E;
		const float same = (float)moe_vrng_normal(&r);
		for (int64_t e = 0; e < E; e++)
			row[e] = c->gen == MOE_GEN_EQUAL ? ((t % 3) == 2 ? 0.0f : same) : route_value(&r, c->gen, c->scale);
		switch (c->gen) {
		case MOE_GEN_NAN:
			/* one row all NaN; others get 1-3 NaNs of either sign in a quarter of the rows */
			if (t == T / 2) {
				for (int64_t e = 0; e < E; e++)
					row[e] = NAN;
			} else if (moe_vrng_below(&r, 4) == 0) {
				for (uint64_t k = 1 + moe_vrng_below(&r, 3); k > 0; k--)
					row[moe_vrng_below(&r, (uint64_t)E)] = moe_vrng_below(&r, 2) ? NAN : -NAN;
			}
			break;
		case MOE_GEN_INF:
			if (t == T / 2) {
				for (int64_t e = 0; e < E; e++)
					row[e] = -INFINITY;
			} else if (moe_vrng_below(&r, 3) == 0) {
				for (uint64_t k = 1 + moe_vrng_below(&r, 3); k > 0; k--)
					row[moe_vrng_below(&r, (uint64_t)E)] = moe_vrng_below(&r, 2) ? INFINITY : -INFINITY;
			}
			break;
		case MOE_GEN_SKEWED:
			/* expert `hot` wins nine rows in ten; the upper half of the experts never does */
			if (moe_vrng_below(&r, 10) != 0)
				row[hot] += 8.0f;
			for (int64_t e = E / 2; e < E; e++)
				if (e != hot)
					row[e] -= 8.0f;
			break;
		default:
			break;
		}
	}
	if (!b32)
		return;
	for (int64_t e = 0; e < E; e++) {
		switch (c->gen) {
		case MOE_GEN_BIAS_HUGE: {
			double m = moe_vrng_uniform(&r, 1e3, 1e4);
			b32[e] = (float)(moe_vrng_below(&r, 2) ? m : -m);
			break;
		}
		case MOE_GEN_BIAS_NEG: b32[e] = (float)moe_vrng_uniform(&r, -5.0, -0.5); break;
		case MOE_GEN_EQUAL: b32[e] = 0.125f; break;
		default: b32[e] = (float)(moe_vrng_normal(&r) * 0.3); break;
		}
	}
}

size_t moe_storage_size(enum moe_dtype t)
{
	return t == MOE_DTYPE_BF16 ? 2 : t == MOE_DTYPE_NONE ? 0 : 4;
}

void moe_store_as(enum moe_dtype t, const float *x32, void *dst, int64_t n)
{
	if (t == MOE_DTYPE_BF16) {
		moe_bf16 *h = dst;
		for (int64_t i = 0; i < n; i++)
			h[i] = moe_f32_to_bf16(x32[i]);
	} else {
		memcpy(dst, x32, (size_t)n * sizeof(float));
	}
}

void moe_load_f32(enum moe_dtype t, const void *src, float *x32, int64_t n)
{
	if (t == MOE_DTYPE_BF16) {
		const moe_bf16 *h = src;
		for (int64_t i = 0; i < n; i++)
			x32[i] = moe_bf16_to_f32(h[i]);
	} else {
		memcpy(x32, src, (size_t)n * sizeof(float));
	}
}
