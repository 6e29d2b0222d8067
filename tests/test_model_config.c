/* Unit tests of model/config.c: the layer_types / mlp_layer_types / RoPE derivation against
 * patterns worked out by hand from the spec's formulas (older configs with first_k_dense_replace,
 * explicit lists, a prefix with its own sliding pattern), the defaults of an empty config, and
 * every refusal with its status and a message naming the file and the field. */
#include <check.h>
#include <string.h>

#include "model.h"

static enum moe_status parse(const char *json, struct moe_model_config *c)
{
	moe_clear_error();
	return moe_model_config_parse(json, strlen(json), "cfg.json", c);
}

/* pattern: one char per layer: 's' sliding / 'f' full; dense 'd' / 's'; rope '1' / '0' */
static void expect_layers(const struct moe_model_config *c, const char *lt, const char *mlp, const char *rope)
{
	int L = (int)strlen(lt);
	ck_assert_int_eq(c->num_hidden_layers, L);
	for (int i = 0; i < L; i++) {
		ck_assert_msg(c->sliding[i] == (lt[i] == 's'), "layer %d sliding", i);
		ck_assert_msg(c->dense[i] == (mlp[i] == 'd'), "layer %d dense", i);
		ck_assert_msg(c->rope[i] == (rope[i] == '1'), "layer %d rope", i);
	}
	ck_assert(!c->sliding[L] && !c->dense[L] && !c->rope[L]);
}

START_TEST(derive_first_k_dense_replace)
{
	/* F=2, L=6, prefix pattern 1: prefix (i+1)%1 == 0 -> full, full; rest pattern 4 over 4 layers:
	 * 1,2,3 -> sliding, 4 -> full. RoPE: sliding layers and (pattern 1) the dense prefix. */
	struct moe_model_config c;
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":6,\"first_k_dense_replace\":2,"
			       "\"sliding_window_pattern\":4}", &c), MOE_OK);
	expect_layers(&c, "ffsssf", "ddssss", "111110");
}
END_TEST

START_TEST(derive_prefix_pattern)
{
	/* F=2, L=5, prefix pattern 2: (1)%2 -> s, (2)%2 -> f; rest pattern 3: 1 s, 2 s, 3 f.
	 * RoPE on sliding only (prefix pattern != 1). */
	struct moe_model_config c;
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":5,\"first_k_dense_replace\":2,"
			       "\"sliding_window_pattern\":3,\"prefix_dense_sliding_window_pattern\":2}", &c), MOE_OK);
	expect_layers(&c, "sfssf", "ddsss", "10110");
}
END_TEST

START_TEST(explicit_lists)
{
	struct moe_model_config c;
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":4,"
			       "\"layer_types\":[\"full_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\"],"
			       "\"mlp_layer_types\":[\"dense\",\"sparse\",\"sparse\",\"sparse\"]}", &c), MOE_OK);
	expect_layers(&c, "fsfs", "dsss", "1101");
	/* mlp_layer_types alone: its dense prefix (1) drives the layer_types derivation, pattern 2:
	 * prefix f (pattern 1); rest 1 s, 2 f, 3 s */
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":4,\"sliding_window_pattern\":2,"
			       "\"mlp_layer_types\":[\"dense\",\"sparse\",\"sparse\",\"sparse\"]}", &c), MOE_OK);
	expect_layers(&c, "fsfs", "dsss", "1101");
	/* consistent first_k_dense_replace is accepted */
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":2,\"first_k_dense_replace\":1,"
			       "\"mlp_layer_types\":[\"dense\",\"sparse\"]}", &c), MOE_OK);
}
END_TEST

START_TEST(defaults)
{
	struct moe_model_config c;
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\"}", &c), MOE_OK);
	ck_assert_int_eq(c.vocab_size, 256000);
	ck_assert_int_eq(c.hidden_size, 8192);
	ck_assert_int_eq(c.intermediate_size, 22528);
	ck_assert_int_eq(c.prefix_dense_intermediate_size, 22528);
	ck_assert_int_eq(c.num_hidden_layers, 40);
	ck_assert_int_eq(c.num_attention_heads, 64);
	ck_assert_int_eq(c.num_key_value_heads, 64);
	ck_assert_int_eq(c.head_dim, 128);
	ck_assert_int_eq(c.norm, MOE_NORM_LAYERNORM);
	ck_assert(c.norm_eps == 1e-5f);
	ck_assert(c.logit_scale == 0.0625f);
	ck_assert(c.tie_word_embeddings);
	ck_assert(c.rope_theta == 10000.0);
	ck_assert_int_eq(c.sliding_window, 4096);
	ck_assert_int_eq(c.max_position_embeddings, 8192);
	ck_assert_int_eq(c.num_experts, 128);
	ck_assert_int_eq(c.num_experts_per_tok, 8);
	ck_assert_int_eq(c.num_shared_experts, 1);
	ck_assert_int_eq(c.shared_combine, MOE_SHARED_AVERAGE);
	ck_assert_int_eq(c.selection, MOE_MODEL_SELECT_SIGMOID);
	ck_assert(!c.norm_topk_prob);
	for (int i = 0; i < 40; i++) {
		ck_assert(c.sliding[i] == ((i + 1) % 4 != 0));
		ck_assert(!c.dense[i]);
		ck_assert(c.rope[i] == c.sliding[i]);
	}
	/* rms_norm_eps turns every norm into RMSNorm; sum; softmax; no shared -> NONE */
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"rms_norm_eps\":1e-6,\"layer_norm_eps\":1e-5,"
			       "\"shared_expert_combination_strategy\":\"sum\",\"expert_selection_fn\":\"softmax\","
			       "\"norm_topk_prob\":true,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":50000}}",
			       &c), MOE_OK);
	ck_assert_int_eq(c.norm, MOE_NORM_RMSNORM);
	ck_assert(c.norm_eps == 1e-6f);
	ck_assert_int_eq(c.shared_combine, MOE_SHARED_SUM);
	ck_assert_int_eq(c.selection, MOE_MODEL_SELECT_SOFTMAX);
	ck_assert(c.norm_topk_prob);
	ck_assert(c.rope_theta == 50000.0);
	ck_assert_int_eq(parse("{\"model_type\":\"cohere2_moe\",\"num_shared_experts\":0}", &c), MOE_OK);
	ck_assert_int_eq(c.shared_combine, MOE_SHARED_NONE);
}
END_TEST

static const struct {
	const char *json;
	enum moe_status status;
	const char *field; /* must appear in the message */
} refusals[] = {
	{"{\"model_type\":\"cohere2\"}", MOE_ERR_UNSUPPORTED, "model_type"},
	{"{\"hidden_size\":64}", MOE_ERR_FORMAT, "model_type"},
	{"{\"model_type\":\"cohere2_moe\",\"hidden_act\":\"gelu\"}", MOE_ERR_UNSUPPORTED, "hidden_act"},
	{"{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":3,\"layer_types\":[\"full_attention\"]}",
	 MOE_ERR_INVALID_ARG, "layer_types"},
	{"{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":2,\"mlp_layer_types\":[\"dense\",\"sparse\",\"sparse\"]}",
	 MOE_ERR_INVALID_ARG, "mlp_layer_types"},
	{"{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\",\"local\"]}",
	 MOE_ERR_INVALID_ARG, "layer_types"},
	{"{\"model_type\":\"cohere2_moe\",\"num_attention_heads\":6,\"num_key_value_heads\":4}", MOE_ERR_INVALID_ARG,
	 "num_key_value_heads"},
	{"{\"model_type\":\"cohere2_moe\",\"num_experts\":8,\"num_experts_per_tok\":9}", MOE_ERR_INVALID_ARG,
	 "num_experts_per_tok"},
	{"{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":2,\"first_k_dense_replace\":2,"
	 "\"mlp_layer_types\":[\"dense\",\"sparse\"]}", MOE_ERR_INVALID_ARG, "first_k_dense_replace"},
	{"{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":4,\"first_k_dense_replace\":5}", MOE_ERR_INVALID_ARG,
	 "first_k_dense_replace"},
	{"{\"model_type\":\"cohere2_moe\",\"hidden_size\":\"8192\"}", MOE_ERR_FORMAT, "hidden_size"},
	{"{\"model_type\":\"cohere2_moe\",\"hidden_size\":0}", MOE_ERR_INVALID_ARG, "hidden_size"},
	{"{\"model_type\":\"cohere2_moe\",\"head_dim\":15}", MOE_ERR_INVALID_ARG, "head_dim"},
	{"{\"model_type\":\"cohere2_moe\",\"rms_norm_eps\":-1}", MOE_ERR_INVALID_ARG, "rms_norm_eps"},
	{"{\"model_type\":\"cohere2_moe\",\"expert_selection_fn\":\"relu\"}", MOE_ERR_UNSUPPORTED, "expert_selection_fn"},
	{"{\"model_type\":\"cohere2_moe\",\"shared_expert_combination_strategy\":\"max\"}", MOE_ERR_UNSUPPORTED,
	 "shared_expert_combination_strategy"},
	{"{\"model_type\":\"cohere2_moe\",\"tie_word_embeddings\":1}", MOE_ERR_FORMAT, "tie_word_embeddings"},
	{"{\"model_type\":\"cohere2_moe\",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", MOE_ERR_UNSUPPORTED,
	 "rope_scaling"},
	{"{\"model_type\":\"cohere2_moe\",\"num_hidden_layers\":100000}", MOE_ERR_INVALID_ARG, "num_hidden_layers"},
	{"{\"model_type\":\"cohere2_moe\",", MOE_ERR_FORMAT, "JSON"},
	{"[1,2]", MOE_ERR_FORMAT, "object"},
	{"{\"model_type\":\"cohere2_moe\",\"model_type\":\"cohere2_moe\"}", MOE_ERR_FORMAT, "JSON"},
};

START_TEST(refusal)
{
	struct moe_model_config c;
	memset(&c, 0x5a, sizeof c);
	struct moe_model_config before = c;
	enum moe_status s = parse(refusals[_i].json, &c);
	ck_assert_msg(s == refusals[_i].status, "%s: status %d (%s), expected %d", refusals[_i].json, (int)s,
		      moe_last_error(), (int)refusals[_i].status);
	ck_assert_msg(strstr(moe_last_error(), "cfg.json") != NULL, "no file in \"%s\"", moe_last_error());
	ck_assert_msg(strstr(moe_last_error(), refusals[_i].field) != NULL, "no %s in \"%s\"", refusals[_i].field,
		      moe_last_error());
	ck_assert_msg(memcmp(&c, &before, sizeof c) == 0, "output written on failure");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("model_config");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, derive_first_k_dense_replace);
	tcase_add_test(tc, derive_prefix_pattern);
	tcase_add_test(tc, explicit_lists);
	tcase_add_test(tc, defaults);
	tcase_add_loop_test(tc, refusal, 0, (int)(sizeof refusals / sizeof *refusals));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
