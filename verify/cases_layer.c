/* Layer cases: scaled-down versions of the model table's MoE blocks (routing method, K, groups,
 * bias, rsf, shared expert and its combine, weight format) with small H and I so that a whole layer
 * costs milliseconds, every routing profile, rsf at the router and at the output, T = 0, 1 and a
 * few tokens, and skewed routing (one expert takes almost every token, others none); then the T
 * sweep of the bench, 1 to 2048 tokens, one group per T. */
#include <stdio.h>

#include "vcases.h"

struct layer_shape {
	const char *name;
	enum moe_routing_method method;
	int32_t E, K, G, TG;
	float rsf;
	bool bias;
	enum moe_rsf_site site;
	enum moe_shared_combine shared;
	int64_t H, I, SI;
	enum moe_dtype wdtype;
	enum moe_scaling wscaling;
	enum moe_sf_layout layout;
	enum moe_act_quant act;
	int64_t quick_max_T; /* --quick's T sweep stops here (0: the whole sweep) */
};

static const struct layer_shape shapes[] = {
	{ "deepseek-v3-like", MOE_ROUTE_DEEPSEEKV3, 16, 4, 4, 2, 2.5f, true, MOE_RSF_AT_ROUTER, MOE_SHARED_SUM,
	  128, 64, 64, MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128, 0 },
	{ "deepseek-v3-like rsf@output", MOE_ROUTE_DEEPSEEKV3, 16, 4, 4, 2, 2.5f, true, MOE_RSF_AT_OUTPUT,
	  MOE_SHARED_NONE, 64, 32, 0, MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, 0 },
	{ "command-a-plus-like", MOE_ROUTE_SIGMOID_RENORM, 16, 4, 0, 0, 1.0f, false, MOE_RSF_AT_ROUTER,
	  MOE_SHARED_AVERAGE, 64, 32, 32, MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_BF16, 0 },
	{ "qwen3-30b-a3b-like", MOE_ROUTE_RENORMALIZE_NAIVE, 16, 4, 0, 0, 1.0f, false, MOE_RSF_AT_ROUTER,
	  MOE_SHARED_NONE, 64, 32, 0, MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ "minimax-m2-like", MOE_ROUTE_MINIMAX2, 12, 3, 0, 0, 1.0f, true, MOE_RSF_AT_ROUTER, MOE_SHARED_NONE,
	  64, 32, 0, MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR, MOE_ACT_FP8_TENSOR, 0 },
	{ "llama4-like", MOE_ROUTE_LLAMA4, 16, 1, 0, 0, 1.0f, false, MOE_RSF_AT_ROUTER, MOE_SHARED_SUM,
	  64, 32, 32, MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ "gpt-oss-like", MOE_ROUTE_RENORMALIZE, 32, 4, 0, 0, 1.0f, false, MOE_RSF_AT_ROUTER, MOE_SHARED_NONE,
	  64, 64, 0, MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16, 0 },
	{ "mixtral-like", MOE_ROUTE_RENORMALIZE, 8, 2, 0, 0, 1.0f, false, MOE_RSF_AT_ROUTER, MOE_SHARED_NONE,
	  64, 48, 0, MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, 0 },
	/* bf16 W16A16 over two depth blocks in both GEMMs (256 + 32 columns: the panel paths' partial
	 * sums between blocks, AMX's included) with a shared expert */
	{ "qwen3-deep-like", MOE_ROUTE_RENORMALIZE_NAIVE, 16, 4, 0, 0, 1.0f, false, MOE_RSF_AT_ROUTER,
	  MOE_SHARED_SUM, 288, 288, 32, MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16,
	  /* ~40x the others' reference time per token; at T <= 256 its experts already get 16+ tokens,
	   * so the panel paths over two depth blocks (AMX's included) are reached */
	  256 },
};

static void layer_case(const struct layer_shape *sh, enum moe_profile prof, struct moe_vcase *cp)
{
	struct moe_vcase c;
	moe_vcase_init(&c, MOE_OP_LAYER);
	c.route = moe_route_params_default(sh->method, sh->E, sh->K);
	c.route.profile = prof;
	c.route.n_group = sh->G;
	c.route.topk_group = sh->TG;
	c.route.renormalize = true;
	c.route.routed_scaling_factor = sh->rsf;
	c.route.bias_dtype = sh->bias ? MOE_DTYPE_F32 : MOE_DTYPE_NONE;
	c.expert = (struct moe_expert_params){ .hidden = sh->H, .inter = sh->I, .weight_dtype = sh->wdtype,
					       .weight_scaling = sh->wscaling, .weight_sf_layout = sh->layout,
					       .act_quant = sh->act };
	c.rsf_site = sh->site;
	c.shared = sh->shared;
	c.shared_inter = sh->SI;
	*cp = c;
}

enum moe_status moe_catalogue_layer(enum moe_vdepth depth, uint64_t base_seed, unsigned profile_mask,
				    struct moe_vcase_list *out)
{
	static const enum moe_vgen gens[] = { MOE_GEN_NORMAL, MOE_GEN_SKEWED, MOE_GEN_BF16_TIES };
	static const int64_t Ts[] = { 5, 1, 17, 0 };
	const int reps = depth == MOE_DEPTH_FULL ? 4 : 1;
	uint64_t n = 0;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const struct layer_shape *sh = &shapes[si];
		for (int prof = 0; prof < MOE_PROFILE_COUNT; prof++) {
			if (!((profile_mask >> prof) & 1u))
				continue;
			struct moe_vcase c;
			layer_case(sh, (enum moe_profile)prof, &c);
			snprintf(c.group, sizeof c.group, "%s %s", sh->name, moe_profile_name((enum moe_profile)prof));
			for (size_t gi = 0; gi < sizeof gens / sizeof gens[0]; gi++) {
				for (int rep = 0; rep < reps; rep++, n++) {
					c.gen = gens[gi];
					c.T = Ts[n % 4];
					c.seed = base_seed + n * 49979687u;
					enum moe_status s = moe_vcase_push_valid(out, &c);
					if (s != MOE_OK)
						return s;
				}
			}
		}
	}
	/* The T sweep of the bench ({1, 4, 16, 64, 256, 512, 2048}): from a few tokens per expert (decode
	 * variants) to hundreds (prefill variants), one group per T so that the report line says which
	 * variants ran. --quick: four shapes (bf16, MXFP4, FP8 blocks with a shared expert, bf16 over two
	 * depth blocks) in the first
	 * selected profile; --full: every shape in every selected profile. */
	static const int64_t sweep[] = { 1, 4, 16, 64, 256, 512, 2048 };
	static const size_t quick_shapes[] = { 3, 6, 0, 8 };
	const size_t nsweep_shapes = depth == MOE_DEPTH_FULL ? sizeof shapes / sizeof shapes[0] : 4;
	for (size_t qi = 0; qi < nsweep_shapes; qi++) {
		const struct layer_shape *sh = &shapes[depth == MOE_DEPTH_FULL ? qi : quick_shapes[qi]];
		bool first = true;
		for (int prof = 0; prof < MOE_PROFILE_COUNT; prof++) {
			if (!((profile_mask >> prof) & 1u) || (!first && depth != MOE_DEPTH_FULL))
				continue;
			first = false;
			struct moe_vcase c;
			layer_case(sh, (enum moe_profile)prof, &c);
			for (size_t ti = 0; ti < sizeof sweep / sizeof sweep[0]; ti++, n++) {
				if (depth != MOE_DEPTH_FULL && sh->quick_max_T && sweep[ti] > sh->quick_max_T)
					continue;
				snprintf(c.group, sizeof c.group, "T=%lld %s", (long long)sweep[ti], sh->name);
				c.gen = MOE_GEN_NORMAL;
				c.T = sweep[ti];
				c.seed = base_seed + n * 49979687u;
				enum moe_status s = moe_vcase_push_valid(out, &c);
				if (s != MOE_OK)
					return s;
			}
		}
	}
	return MOE_OK;
}
