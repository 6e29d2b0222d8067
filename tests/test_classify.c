/* Unit tests of the routing classifier and the engine numberings (reference/classify.c,
 * reference/numbering.c).
 *
 * Every expected value below was obtained by walking vLLM's newest get_routing_method_type tree,
 * SGLang's Cohere2-MoE mapping, or the spec's "Enum numbering" table (docs/routing.md)
 * by hand; the walk is written next to each value. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"

enum { NO = -1 }; /* "this numbering has no such method" in the hand tables */

/* ---- real models ---- */

struct model_case {
	const char *model;
	struct moe_routing_config cfg;   /* scoring, top_k, renormalize, num_expert_group, has_bias, rsf */
	enum moe_routing_method vllm;    /* what the tree returns, walked by hand */
};

static const struct model_case models[] = {
	/* DeepSeek-V3 / R1, HF config.json (deepseek-ai/DeepSeek-V3, -R1): scoring_func "sigmoid",
	 * topk_method "noaux_tc" (e_score_correction_bias), n_group 8, topk_group 4,
	 * num_experts_per_tok 8, routed_scaling_factor 2.5, norm_topk_prob true.
	 * Tree: not sqrtsoftplus; bias -> sigmoid -> renormalized -> groups 8 > 0 -> DeepSeekV3. */
	{ "DeepSeek-V3/R1", { MOE_SCORING_SIGMOID, 8, true, 8, true, 2.5f }, MOE_ROUTE_DEEPSEEKV3 },
	/* MiniMax-M2, HF config.json (MiniMaxAI/MiniMax-M2): scoring_func "sigmoid",
	 * use_routing_bias true, num_local_experts 256, num_experts_per_tok 8, no n_group and no
	 * routed_scaling_factor; vLLM's minimax_m2.py builds FusedMoE with renormalize=True and no
	 * expert groups (an older version passed num_expert_group=1, which the tree sends to
	 * DeepSeekV3). Tree: bias -> sigmoid -> renormalized -> groups 0 -> rsf 1.0 -> MiniMax2. */
	{ "MiniMax-M2", { MOE_SCORING_SIGMOID, 8, true, 0, true, 1.0f }, MOE_ROUTE_MINIMAX2 },
	/* Step-3.7-Flash, text_config (stepfun-ai, model_type step3p7): moe_router_activation
	 * "sigmoid", use_moe_router_bias true, norm_expert_weight true, moe_num_experts 288,
	 * moe_top_k 8, no expert groups, moe_router_scaling_factor 3.0 (as public step3p7 loaders
	 * read it; any value other than 1 walks the same way).
	 * Tree: bias -> sigmoid -> renormalized -> groups 0 -> rsf 3 != 1 -> Unspecified (not MiniMax2,
	 * whose kernels would apply the factor a second time). */
	{ "Step-3.7-Flash", { MOE_SCORING_SIGMOID, 8, true, 0, true, 3.0f }, MOE_ROUTE_UNSPECIFIED },
	/* NVIDIA-Nemotron-3-Nano-30B-A3B, HF config.json (model_type nemotron_h): n_routed_experts 128,
	 * num_experts_per_tok 6, n_group 1, topk_group 1, norm_topk_prob true, routed_scaling_factor
	 * 2.5, sigmoid routing with e_score_correction_bias, fp32 router logits; vLLM's nemotron_h.py
	 * passes num_expert_group=config.n_group. Tree: bias -> sigmoid -> renormalized ->
	 * groups 1 > 0 -> DeepSeekV3 (flashinfer runs DeepSeekV3 with n_group <= 1 as MiniMax2 plus
	 * the scaling factor, so rsf 2.5 is not an obstacle here). */
	{ "Nemotron-3-Nano", { MOE_SCORING_SIGMOID, 6, true, 1, true, 2.5f }, MOE_ROUTE_DEEPSEEKV3 },
	/* Llama 4 Scout/Maverick, HF config.json (meta-llama/Llama-4-*): num_experts_per_tok 1, router
	 * = sigmoid of the top-1 logit, no bias, no renormalization, no groups.
	 * Tree: not sqrtsoftplus; no bias -> sigmoid -> not renormalized -> Sigmoid. The newest tree
	 * has no K == 1 branch any more: vLLM labels Llama4 through its router for
	 * Llama4MoE.custom_routing_function, never through this tree. Sigmoid with K = 1 selects the
	 * same expert as Llama4 except where saturated sigmoids tie. */
	{ "Llama-4", { MOE_SCORING_SIGMOID, 1, false, 0, false, 1.0f }, MOE_ROUTE_SIGMOID },
	/* Cohere Command A+ (cohere2_moe, docs/cohere2-moe.md): expert_selection_fn
	 * "sigmoid", num_experts_per_tok 8, no bias, no groups, no scaling factor.
	 * norm_topk_prob true. Tree: no bias -> sigmoid -> renormalized -> SigmoidRenorm. */
	{ "Command-A+ norm", { MOE_SCORING_SIGMOID, 8, true, 0, false, 1.0f }, MOE_ROUTE_SIGMOID_RENORM },
	/* norm_topk_prob false. Tree: no bias -> sigmoid -> not renormalized -> Sigmoid.
	 * vLLM itself labels this router SigmoidRenorm anyway (the known mislabel): its Cohere model
	 * routes through token_choice_with_bias, which vLLM's custom-routing router labels
	 * SigmoidRenorm without looking at norm_topk_prob; the tree is not consulted. */
	{ "Command-A+ no norm", { MOE_SCORING_SIGMOID, 8, false, 0, false, 1.0f }, MOE_ROUTE_SIGMOID },
	/* Qwen3-30B-A3B, HF config.json (Qwen/Qwen3-30B-A3B): softmax router, num_experts 128,
	 * num_experts_per_tok 8, norm_topk_prob true, no bias.
	 * Tree: no bias -> softmax -> renormalized -> RenormalizeNaive. */
	{ "Qwen3-30B-A3B", { MOE_SCORING_SOFTMAX, 8, true, 0, false, 1.0f }, MOE_ROUTE_RENORMALIZE_NAIVE },
};

START_TEST(test_vllm_real_models)
{
	for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
		const char *why = NULL;
		enum moe_routing_method got = moe_classify_vllm(&models[i].cfg, &why);
		ck_assert_msg(got == models[i].vllm, "%s: got %s, expected %s (%s)", models[i].model,
			      moe_routing_method_name(got), moe_routing_method_name(models[i].vllm),
			      why ? why : "no reason");
		ck_assert_ptr_nonnull(why);
		/* every sentence ends by naming the method it chose */
		ck_assert_msg(strstr(why, moe_routing_method_name(got)) != NULL, "%s: '%s'", models[i].model, why);
		/* why is optional */
		ck_assert_int_eq(moe_classify_vllm(&models[i].cfg, NULL), models[i].vllm);
	}
}
END_TEST

START_TEST(test_sglang_cohere2)
{
	const char *why = NULL;
	/* SGLang: sigmoid -> SigmoidRenorm if norm_topk_prob else Sigmoid */
	ck_assert_int_eq(moe_classify_sglang_cohere2(MOE_SCORING_SIGMOID, true, &why), MOE_ROUTE_SIGMOID_RENORM);
	ck_assert_ptr_nonnull(strstr(why, "SigmoidRenorm"));
	/* Command A+ with norm_topk_prob false: Sigmoid here, where vLLM labels SigmoidRenorm */
	ck_assert_int_eq(moe_classify_sglang_cohere2(MOE_SCORING_SIGMOID, false, &why), MOE_ROUTE_SIGMOID);
	ck_assert_ptr_nonnull(strstr(why, "Sigmoid"));
	/* softmax -> RenormalizeNaive if norm_topk_prob else Default */
	ck_assert_int_eq(moe_classify_sglang_cohere2(MOE_SCORING_SOFTMAX, true, &why), MOE_ROUTE_RENORMALIZE_NAIVE);
	ck_assert_int_eq(moe_classify_sglang_cohere2(MOE_SCORING_SOFTMAX, false, &why), MOE_ROUTE_DEFAULT);
	ck_assert_ptr_nonnull(strstr(why, "Default"));
	/* Cohere2-MoE knows no other selection function */
	ck_assert_int_eq(moe_classify_sglang_cohere2(MOE_SCORING_SQRTSOFTPLUS, true, &why), MOE_ROUTE_UNSPECIFIED);
	ck_assert_int_eq(moe_classify_sglang_cohere2(MOE_SCORING_OTHER, false, NULL), MOE_ROUTE_UNSPECIFIED);
	ck_assert_int_eq(moe_classify_sglang_cohere2((enum moe_scoring)42, true, &why), MOE_ROUTE_UNSPECIFIED);
}
END_TEST

/* vLLM's Cohere2-MoE labels: its custom sigmoid router is labelled SigmoidRenorm for both values of
 * norm_topk_prob (routing.md "Known mislabel"); the softmax path follows the tree. */
START_TEST(test_vllm_cohere2_mislabel)
{
	const char *why = NULL;
	ck_assert_int_eq(moe_classify_vllm_cohere2(MOE_SCORING_SIGMOID, true, &why), MOE_ROUTE_SIGMOID_RENORM);
	ck_assert_ptr_null(strstr(why, "mislabel"));
	ck_assert_int_eq(moe_classify_vllm_cohere2(MOE_SCORING_SIGMOID, false, &why), MOE_ROUTE_SIGMOID_RENORM);
	ck_assert_ptr_nonnull(strstr(why, "mislabel"));
	/* where SGLang, reading the same config, says Sigmoid */
	ck_assert_int_ne(moe_classify_sglang_cohere2(MOE_SCORING_SIGMOID, false, NULL),
			 moe_classify_vllm_cohere2(MOE_SCORING_SIGMOID, false, NULL));
	ck_assert_int_eq(moe_classify_vllm_cohere2(MOE_SCORING_SOFTMAX, true, NULL), MOE_ROUTE_RENORMALIZE_NAIVE);
	ck_assert_int_eq(moe_classify_vllm_cohere2(MOE_SCORING_SOFTMAX, false, NULL), MOE_ROUTE_DEFAULT);
}
END_TEST

/* Every branch of the tree, including the ones no shipped model takes. */
START_TEST(test_vllm_every_branch)
{
	static const struct {
		struct moe_routing_config cfg;
		enum moe_routing_method expect;
		const char *why_has;
	} cases[] = {
		/* sqrtsoftplus first, whatever else is set: renormalize -> DeepseekV4 -> ours Unspecified */
		{ { MOE_SCORING_SQRTSOFTPLUS, 6, true, 0, true, 1.5f }, MOE_ROUTE_UNSPECIFIED, "DeepseekV4" },
		/* sqrtsoftplus without renormalize -> Unspecified, a different sentence */
		{ { MOE_SCORING_SQRTSOFTPLUS, 6, false, 8, false, 1.0f }, MOE_ROUTE_UNSPECIFIED, "without" },
		/* bias + softmax -> Unspecified */
		{ { MOE_SCORING_SOFTMAX, 8, true, 0, true, 1.0f }, MOE_ROUTE_UNSPECIFIED, "other than sigmoid" },
		/* bias + other scoring -> Unspecified */
		{ { MOE_SCORING_OTHER, 8, true, 4, true, 1.0f }, MOE_ROUTE_UNSPECIFIED, "other than sigmoid" },
		/* bias + sigmoid, not renormalized -> Unspecified even with groups */
		{ { MOE_SCORING_SIGMOID, 8, false, 8, true, 2.5f }, MOE_ROUTE_UNSPECIFIED, "without renorm" },
		/* bias + sigmoid + renorm + groups 2 -> DeepSeekV3, rsf ignored */
		{ { MOE_SCORING_SIGMOID, 8, true, 2, true, 1.0f }, MOE_ROUTE_DEEPSEEKV3, "DeepSeekV3" },
		/* negative group count is not > 0 -> the rsf branch; rsf 1 -> MiniMax2 */
		{ { MOE_SCORING_SIGMOID, 8, true, -1, true, 1.0f }, MOE_ROUTE_MINIMAX2, "MiniMax2" },
		/* rsf 0 is not None or 1.0 -> Unspecified */
		{ { MOE_SCORING_SIGMOID, 8, true, 0, true, 0.0f }, MOE_ROUTE_UNSPECIFIED, "not 1" },
		/* rsf NaN compares unequal to 1.0 -> Unspecified */
		{ { MOE_SCORING_SIGMOID, 8, true, 0, true, NAN }, MOE_ROUTE_UNSPECIFIED, "not 1" },
		/* rsf just above 1 (1 + 2^-23) -> Unspecified: the test is exact equality */
		{ { MOE_SCORING_SIGMOID, 8, true, 0, true, 1.00000012f }, MOE_ROUTE_UNSPECIFIED, "not 1" },
		/* no bias: sigmoid ignores groups and rsf; renormalized -> SigmoidRenorm */
		{ { MOE_SCORING_SIGMOID, 4, true, 8, false, 2.5f }, MOE_ROUTE_SIGMOID_RENORM, "SigmoidRenorm" },
		/* no bias, softmax, not renormalized -> Default */
		{ { MOE_SCORING_SOFTMAX, 2, false, 0, false, 1.0f }, MOE_ROUTE_DEFAULT, "Default" },
		/* no bias, other scoring -> Unspecified */
		{ { MOE_SCORING_OTHER, 2, true, 0, false, 1.0f }, MOE_ROUTE_UNSPECIFIED, "other than softmax" },
		/* an out-of-range scoring value behaves as "other" */
		{ { (enum moe_scoring)17, 2, true, 0, false, 1.0f }, MOE_ROUTE_UNSPECIFIED, "other than softmax" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = NULL;
		enum moe_routing_method got = moe_classify_vllm(&cases[i].cfg, &why);
		ck_assert_msg(got == cases[i].expect, "case %zu: got %s", i, moe_routing_method_name(got));
		ck_assert_msg(why && strstr(why, cases[i].why_has), "case %zu: '%s' lacks '%s'", i,
			      why ? why : "(null)", cases[i].why_has);
	}
	/* the two Unspecified branches of sqrtsoftplus say different things */
	const char *a = NULL, *b = NULL;
	moe_classify_vllm(&cases[0].cfg, &a);
	moe_classify_vllm(&cases[1].cfg, &b);
	ck_assert_str_ne(a, b);

	const char *why = NULL;
	ck_assert_int_eq(moe_classify_vllm(NULL, &why), MOE_ROUTE_UNSPECIFIED);
	ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_scoring_names)
{
	static const char *const names[] = { "softmax", "sigmoid", "sqrtsoftplus", "other" };
	for (int i = 0; i < 4; i++) {
		enum moe_scoring s;
		ck_assert_str_eq(moe_scoring_name((enum moe_scoring)i), names[i]);
		ck_assert_int_eq(moe_scoring_parse(names[i], &s), MOE_OK);
		ck_assert_int_eq(s, i);
	}
	enum moe_scoring s = MOE_SCORING_OTHER;
	ck_assert_int_eq(moe_scoring_parse("Sigmoid", &s), MOE_OK);
	ck_assert_int_eq(s, MOE_SCORING_SIGMOID);
	ck_assert_int_eq(moe_scoring_parse("SQRTSOFTPLUS", &s), MOE_OK);
	ck_assert_int_eq(s, MOE_SCORING_SQRTSOFTPLUS);
	ck_assert_int_eq(moe_scoring_parse("relu", &s), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "relu"));
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "sqrtsoftplus"));
	ck_assert_int_eq(moe_scoring_parse("sigmoidx", &s), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_scoring_parse("sig", &s), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_scoring_parse("", &s), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_scoring_parse(NULL, &s), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_scoring_parse("softmax", NULL), MOE_ERR_INVALID_ARG);
	ck_assert_str_eq(moe_scoring_name((enum moe_scoring)4), "?");
	ck_assert_str_eq(moe_scoring_name((enum moe_scoring)-1), "?");
}
END_TEST

/* ---- numberings ---- */

/* The spec's "Enum numbering" table written out per numbering. Columns in our method order:
 * Default Renormalize DeepSeekV3 Llama4 RenormalizeNaive TopK SigmoidRenorm MiniMax2 Sigmoid
 * TopKSigmoid, then Unspecified. */
static const int32_t expected[MOE_NUM_COUNT][MOE_ROUTE_METHOD_COUNT + 1] = {
	/* flashinfer <= v0.6.7: TopK=5, Unspecified=6; Default declared (0) but not implemented, so
	 * unsupported by our decision (reference/numbering.c). */
	[MOE_NUM_FLASHINFER_0_6_7] = { NO, 1, 2, 3, 4, 5, NO, NO, NO, NO, 6 },
	/* v0.6.8..v0.6.10: SigmoidRenorm=6, MiniMax2=7, Unspecified=8 */
	[MOE_NUM_FLASHINFER_0_6_8] = { 0, 1, 2, 3, 4, 5, 6, 7, NO, NO, 8 },
	/* v0.6.11..v0.6.18rc3: Sigmoid=8, Unspecified=9 */
	[MOE_NUM_FLASHINFER_0_6_11] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, NO, 9 },
	/* >= v0.6.18rc4: TopKSigmoid=9, Unspecified=10 (ours) */
	[MOE_NUM_FLASHINFER_0_6_18] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 },
	/* vLLM: as 0.6.11 (its 100..102 are engine-only) */
	[MOE_NUM_VLLM] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, NO, 9 },
	/* SGLang (PR #27401): as 0.6.11 */
	[MOE_NUM_SGLANG] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, NO, 9 },
	/* TensorRT-LLM: Default..RenormalizeNaive 0..4, MiniMax2=5, Unspecified=6 (AdaptiveK=7) */
	[MOE_NUM_TRTLLM] = { 0, 1, 2, 3, 4, NO, NO, 5, NO, NO, 6 },
};

START_TEST(test_numbering_every_pair)
{
	int supported = 0;
	for (int n = 0; n < MOE_NUM_COUNT; n++) {
		for (int m = 0; m <= MOE_ROUTE_UNSPECIFIED; m++) {
			int32_t v = -12345;
			enum moe_status s = moe_method_to_engine((enum moe_numbering)n, (enum moe_routing_method)m, &v);
			if (expected[n][m] == NO) {
				ck_assert_msg(s == MOE_ERR_UNSUPPORTED, "%s %s: status %d",
					      moe_numbering_name((enum moe_numbering)n),
					      moe_routing_method_name((enum moe_routing_method)m), (int)s);
				ck_assert_int_eq(v, -12345);
				/* the message names the numbering and the method */
				ck_assert_ptr_nonnull(strstr(moe_last_error(), moe_numbering_name((enum moe_numbering)n)));
				ck_assert_ptr_nonnull(strstr(moe_last_error(),
							     moe_routing_method_name((enum moe_routing_method)m)));
				continue;
			}
			ck_assert_msg(s == MOE_OK && v == expected[n][m], "%s %s: status %d value %d, expected %d",
				      moe_numbering_name((enum moe_numbering)n),
				      moe_routing_method_name((enum moe_routing_method)m), (int)s, (int)v,
				      (int)expected[n][m]);
			/* round trip */
			enum moe_routing_method back = MOE_ROUTE_METHOD_COUNT;
			ck_assert_int_eq(moe_method_from_engine((enum moe_numbering)n, v, &back), MOE_OK);
			ck_assert_int_eq(back, m);
			supported++;
		}
	}
	/* non-NO entries in the table above, Unspecified included: 6 + 9 + 10 + 11 + 10 + 10 + 7 */
	ck_assert_int_eq(supported, 63);
}
END_TEST

START_TEST(test_numbering_engine_values)
{
	enum moe_routing_method m = MOE_ROUTE_METHOD_COUNT;
	/* the same integer means different methods */
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_TRTLLM, 5, &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_MINIMAX2);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_FLASHINFER_0_6_11, 5, &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_TOPK);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_FLASHINFER_0_6_7, 6, &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_UNSPECIFIED);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_FLASHINFER_0_6_8, 6, &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_SIGMOID_RENORM);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_FLASHINFER_0_6_11, 9, &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_UNSPECIFIED);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_FLASHINFER_0_6_18, 9, &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_TOPK_SIGMOID);

	/* engine-only values: unsupported, named */
	static const struct {
		enum moe_numbering n;
		int32_t value;
		const char *name;
	} only[] = {
		{ MOE_NUM_VLLM, 100, "DeepseekV4" },
		{ MOE_NUM_VLLM, 101, "Custom" },
		{ MOE_NUM_VLLM, 102, "Simulated" },
		{ MOE_NUM_TRTLLM, 7, "AdaptiveK" },
		{ MOE_NUM_FLASHINFER_0_6_7, 0, "Default" },
	};
	for (size_t i = 0; i < sizeof only / sizeof only[0]; i++) {
		m = MOE_ROUTE_METHOD_COUNT;
		ck_assert_int_eq(moe_method_from_engine(only[i].n, only[i].value, &m), MOE_ERR_UNSUPPORTED);
		ck_assert_msg(strstr(moe_last_error(), only[i].name), "'%s'", moe_last_error());
		ck_assert_int_eq(m, MOE_ROUTE_METHOD_COUNT);
	}
	/* Default to flashinfer <= 0.6.7 says why */
	int32_t v;
	ck_assert_int_eq(moe_method_to_engine(MOE_NUM_FLASHINFER_0_6_7, MOE_ROUTE_DEFAULT, &v), MOE_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "not implemented"));

	/* values no numbering has: invalid */
	static const struct {
		enum moe_numbering n;
		int32_t value;
	} unknown[] = {
		{ MOE_NUM_FLASHINFER_0_6_7, 7 }, { MOE_NUM_FLASHINFER_0_6_8, 9 }, { MOE_NUM_FLASHINFER_0_6_11, 10 },
		{ MOE_NUM_FLASHINFER_0_6_18, 11 }, { MOE_NUM_VLLM, 10 }, { MOE_NUM_VLLM, 103 },
		{ MOE_NUM_SGLANG, 100 }, { MOE_NUM_TRTLLM, 8 }, { MOE_NUM_FLASHINFER_0_6_18, -1 },
		{ MOE_NUM_SGLANG, INT32_MIN },
		/* -1 is the table's own "absent" marker: never a method */
		{ MOE_NUM_FLASHINFER_0_6_7, -1 }, { MOE_NUM_FLASHINFER_0_6_8, -1 }, { MOE_NUM_FLASHINFER_0_6_11, -1 },
		{ MOE_NUM_VLLM, -1 }, { MOE_NUM_SGLANG, -1 }, { MOE_NUM_TRTLLM, -1 },
	};
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		ck_assert_int_eq(moe_method_from_engine(unknown[i].n, unknown[i].value, &m), MOE_ERR_INVALID_ARG);
		ck_assert_ptr_nonnull(strstr(moe_last_error(), moe_numbering_name(unknown[i].n)));
	}
}
END_TEST

START_TEST(test_numbering_bad_args)
{
	int32_t v;
	enum moe_routing_method m;
	ck_assert_int_eq(moe_method_to_engine(MOE_NUM_COUNT, MOE_ROUTE_DEFAULT, &v), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_method_to_engine((enum moe_numbering)-1, MOE_ROUTE_DEFAULT, &v), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_method_to_engine(MOE_NUM_VLLM, (enum moe_routing_method)11, &v), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "11"));
	ck_assert_int_eq(moe_method_to_engine(MOE_NUM_VLLM, (enum moe_routing_method)-1, &v), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_method_to_engine(MOE_NUM_VLLM, MOE_ROUTE_DEFAULT, NULL), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_COUNT, 0, &m), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_method_from_engine(MOE_NUM_VLLM, 0, NULL), MOE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_numbering_names)
{
	static const char *const names[MOE_NUM_COUNT] = {
		"flashinfer-0.6.7", "flashinfer-0.6.8", "flashinfer-0.6.11", "flashinfer-0.6.18",
		"vllm", "sglang", "trtllm",
	};
	for (int n = 0; n < MOE_NUM_COUNT; n++) {
		enum moe_numbering got = MOE_NUM_COUNT;
		ck_assert_str_eq(moe_numbering_name((enum moe_numbering)n), names[n]);
		ck_assert_int_eq(moe_numbering_parse(names[n], &got), MOE_OK);
		ck_assert_int_eq(got, n);
	}
	ck_assert_str_eq(moe_numbering_name(MOE_NUM_COUNT), "?");
	ck_assert_str_eq(moe_numbering_name((enum moe_numbering)-3), "?");

	static const struct {
		const char *name;
		enum moe_numbering n;
	} aliases[] = {
		{ "VLLM", MOE_NUM_VLLM },
		{ "TrtLlm", MOE_NUM_TRTLLM },
		{ "flashinfer_0.6.11", MOE_NUM_FLASHINFER_0_6_11 },
		/* any flashinfer version picks its numbering: 0.6.8 <= 0.6.9 < 0.6.11 */
		{ "flashinfer-0.6.9", MOE_NUM_FLASHINFER_0_6_8 },
		{ "flashinfer-v0.6.18rc4", MOE_NUM_FLASHINFER_0_6_18 },
		{ "FlashInfer-0.6.18rc3", MOE_NUM_FLASHINFER_0_6_11 },
		{ "flashinfer-0.5.3", MOE_NUM_FLASHINFER_0_6_7 },
	};
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
		enum moe_numbering got = MOE_NUM_COUNT;
		ck_assert_msg(moe_numbering_parse(aliases[i].name, &got) == MOE_OK && got == aliases[i].n,
			      "'%s' -> %d", aliases[i].name, (int)got);
	}
	static const char *const bad[] = { "", "flashinfer", "flashinfer-", "flashinfer-x", "vllm2",
					   "sglang ", "tensorrt", "flashinfer-0.6.9-" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum moe_numbering got = MOE_NUM_COUNT;
		ck_assert_msg(moe_numbering_parse(bad[i], &got) == MOE_ERR_INVALID_ARG, "'%s' accepted", bad[i]);
		ck_assert_int_eq(got, MOE_NUM_COUNT);
		ck_assert_ptr_nonnull(strstr(moe_last_error(), "trtllm"));
	}
	enum moe_numbering got;
	ck_assert_int_eq(moe_numbering_parse(NULL, &got), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_numbering_parse("vllm", NULL), MOE_ERR_INVALID_ARG);
}
END_TEST

/* Versions ordered as pip orders them: X.devN < XaN < XbN < XrcN < X < X.postN. */
START_TEST(test_flashinfer_versions)
{
	static const struct {
		const char *v;
		enum moe_numbering n;
	} cases[] = {
		{ "0.2.9rc2", MOE_NUM_FLASHINFER_0_6_7 },
		{ "0.6", MOE_NUM_FLASHINFER_0_6_7 },          /* 0.6.0 */
		{ "0.6.7", MOE_NUM_FLASHINFER_0_6_7 },
		{ "v0.6.7", MOE_NUM_FLASHINFER_0_6_7 },
		{ "0.6.7.post2", MOE_NUM_FLASHINFER_0_6_7 },
		{ "0.6.8.dev20260301", MOE_NUM_FLASHINFER_0_6_7 }, /* dev of 0.6.8 < 0.6.8 */
		{ "0.6.8rc1", MOE_NUM_FLASHINFER_0_6_7 },     /* pre-release < 0.6.8: decision */
		{ "0.6.8", MOE_NUM_FLASHINFER_0_6_8 },        /* boundary 0.6.7 / 0.6.8 */
		{ "0.6.9", MOE_NUM_FLASHINFER_0_6_8 },
		{ "0.6.9+cu129torch2.8", MOE_NUM_FLASHINFER_0_6_8 }, /* local label ignored */
		{ "0.06.09", MOE_NUM_FLASHINFER_0_6_8 },      /* leading zeros, as pip reads them */
		{ "0.6.10", MOE_NUM_FLASHINFER_0_6_8 },
		{ "0.6.10.post1", MOE_NUM_FLASHINFER_0_6_8 },
		{ "0.6.11rc2", MOE_NUM_FLASHINFER_0_6_8 },    /* pre-release < 0.6.11: decision */
		{ "0.6.11", MOE_NUM_FLASHINFER_0_6_11 },      /* boundary 0.6.10 / 0.6.11 */
		{ "V0.6.11", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.11.post3", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.12", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.17", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.18.dev5", MOE_NUM_FLASHINFER_0_6_11 }, /* dev < a < b < rc */
		{ "0.6.18a1", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.18b9", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.18rc3", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.18rc3.post1", MOE_NUM_FLASHINFER_0_6_11 },
		{ "0.6.18rc4.dev1", MOE_NUM_FLASHINFER_0_6_11 }, /* dev of rc4 < rc4 */
		{ "0.6.18rc4", MOE_NUM_FLASHINFER_0_6_18 },   /* boundary rc3 / rc4 */
		{ "v0.6.18rc4", MOE_NUM_FLASHINFER_0_6_18 },
		{ "0.6.18RC4", MOE_NUM_FLASHINFER_0_6_18 },
		{ "0.6.18rc10", MOE_NUM_FLASHINFER_0_6_18 },  /* rc numbers compare as numbers */
		{ "0.6.18", MOE_NUM_FLASHINFER_0_6_18 },
		{ "0.6.19", MOE_NUM_FLASHINFER_0_6_18 },
		{ "0.7.0", MOE_NUM_FLASHINFER_0_6_18 },
		{ "0.7.0rc1", MOE_NUM_FLASHINFER_0_6_18 },
		{ "1.0", MOE_NUM_FLASHINFER_0_6_18 },
		{ "1", MOE_NUM_FLASHINFER_0_6_18 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum moe_numbering got = MOE_NUM_COUNT;
		enum moe_status s = moe_numbering_for_flashinfer_version(cases[i].v, &got);
		ck_assert_msg(s == MOE_OK && got == cases[i].n, "'%s': status %d, got %s, expected %s", cases[i].v,
			      (int)s, moe_numbering_name(got), moe_numbering_name(cases[i].n));
	}
	static const char *const garbage[] = {
		"", "v", "abc", "0.6.", "0.6.9.", ".6.9", "0.6.9rc", "0.6.9-rc1", " 0.6.9", "0.6.9 ",
		"0.6.9.1", "0.6.9+", "0.6.9+cu/12", "1234567890.0", "0.6.9.post", "0.6.9x", "0..6",
		"0.6.9rc1rc2", "0.6.9.dev1.post1", "vv0.6.9", "-0.6.9", "0.6.9beta1",
	};
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		enum moe_numbering got = MOE_NUM_COUNT;
		ck_assert_msg(moe_numbering_for_flashinfer_version(garbage[i], &got) == MOE_ERR_INVALID_ARG,
			      "'%s' accepted as %s", garbage[i], moe_numbering_name(got));
		ck_assert_int_eq(got, MOE_NUM_COUNT);
		ck_assert_ptr_nonnull(strstr(moe_last_error(), "flashinfer version"));
	}
	enum moe_numbering got;
	ck_assert_int_eq(moe_numbering_for_flashinfer_version(NULL, &got), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_numbering_for_flashinfer_version("0.6.9", NULL), MOE_ERR_INVALID_ARG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("classify");
	TCase *tc = tcase_create("classify");
	tcase_add_test(tc, test_vllm_real_models);
	tcase_add_test(tc, test_sglang_cohere2);
	tcase_add_test(tc, test_vllm_cohere2_mislabel);
	tcase_add_test(tc, test_vllm_every_branch);
	tcase_add_test(tc, test_scoring_names);
	tcase_add_test(tc, test_numbering_every_pair);
	tcase_add_test(tc, test_numbering_engine_values);
	tcase_add_test(tc, test_numbering_bad_args);
	tcase_add_test(tc, test_numbering_names);
	tcase_add_test(tc, test_flashinfer_versions);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
