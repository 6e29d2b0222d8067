/* Unit tests of the plugin loader (verify/plugin.c) against the fixture plugins built from
 * tests/plugin_fixture.c into MOE_TEST_PLUGIN_DIR: a good table of ABI 1 and of ABI 2 and one per
 * broken contract, plus a text file and a missing path. Each refusal is checked for its status and its message. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin.h"

#ifndef MOE_TEST_PLUGIN_DIR
#error "MOE_TEST_PLUGIN_DIR must name the folder holding the fixture plugins"
#endif

static const char *fixture(const char *name)
{
	static char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s/%s.so", MOE_TEST_PLUGIN_DIR, name);
	return buf;
}

/* Opens path expecting status s and a message containing `want` and the path itself. */
static void expect_refused(const char *path, enum moe_status s, const char *want)
{
	struct moe_plugin *p = (struct moe_plugin *)&p; /* any non-NULL value: must be reset */
	moe_clear_error();
	ck_assert_int_eq(moe_plugin_open(path, &p), s);
	ck_assert_ptr_null(p);
	ck_assert_msg(strstr(moe_last_error(), want), "message '%s' lacks '%s'", moe_last_error(), want);
	ck_assert_msg(strstr(moe_last_error(), path), "message '%s' lacks the path", moe_last_error());
}

/* The route slot is callable through the table: the fixtures write ids 0..K-1 and weights 1/K. */
static void check_fixture_route(const struct moe_backend *b)
{
	struct moe_route_params rp = { .method = MOE_ROUTE_SIGMOID, .num_experts = 8, .top_k = 4,
				       .logits_dtype = MOE_DTYPE_F32 };
	ck_assert(moe_backend_provides(b, MOE_OP_ROUTE, &rp));
	rp.logits_dtype = MOE_DTYPE_BF16;
	ck_assert(!moe_backend_provides(b, MOE_OP_ROUTE, &rp));
	rp.logits_dtype = MOE_DTYPE_F32;
	float logits[2 * 8] = { 0 }, w[2 * 4];
	int32_t ids[2 * 4];
	b->route(&rp, 2, logits, NULL, ids, w);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(ids[i], i % 4);
		ck_assert_float_eq(w[i], 0.25f); /* 1/4 */
	}
}

START_TEST(test_good_plugin_v1)
{
	struct moe_plugin *p = NULL;
	const char *path = fixture("fixture_good");
	ck_assert_int_eq(moe_plugin_open(path, &p), MOE_OK);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(moe_plugin_path(p), path);
	ck_assert_uint_eq(moe_plugin_abi(p), 1);
	const struct moe_backend *b = moe_plugin_backend(p);
	ck_assert_str_eq(b->name, "fixture-v1");
	ck_assert_uint_eq(b->abi_version, 1);
	/* NULL slots load fine and read as "not provided"; the version-2 slots, which the plugin's
	 * table does not even have, read as NULL. */
	ck_assert_ptr_null(b->norm);
	ck_assert(!moe_backend_provides(b, MOE_OP_NORM, NULL));
	ck_assert_ptr_null(b->pack);
	ck_assert_ptr_null(b->release);
	ck_assert_ptr_null(b->route_mt);
	ck_assert_ptr_null(b->expert_mt);
	ck_assert_ptr_null(b->layer_mt);
	ck_assert_ptr_null(b->workspace);
	check_fixture_route(b);

	/* The host calls take the version-1 slot: same output as b->route. */
	struct moe_route_params rp = { .method = MOE_ROUTE_SIGMOID, .num_experts = 8, .top_k = 2,
				       .logits_dtype = MOE_DTYPE_F32 };
	float logits[8] = { 0 }, w[2];
	int32_t ids[2];
	moe_backend_route(b, &rp, 1, logits, NULL, ids, w, NULL);
	ck_assert_int_eq(ids[0], 0);
	ck_assert_int_eq(ids[1], 1);
	/* No pack: the host runs plain weights (no handle, MOE_OK). */
	struct moe_expert_params ep = { .hidden = 16, .inter = 16, .weight_dtype = MOE_DTYPE_F32 };
	struct moe_expert_weights ew = { 0 };
	struct moe_packed *pk = (struct moe_packed *)&pk;
	ck_assert_int_eq(moe_backend_pack(b, &ep, 0, &ew, NULL, &pk), MOE_OK);
	ck_assert_ptr_null(pk);
	moe_plugin_close(p);
	moe_plugin_close(NULL);
}
END_TEST

START_TEST(test_good_plugin_v2)
{
	struct moe_plugin *p = NULL;
	const char *path = fixture("fixture_v2");
	ck_assert_int_eq(moe_plugin_open(path, &p), MOE_OK);
	ck_assert_uint_eq(moe_plugin_abi(p), 2);
	const struct moe_backend *b = moe_plugin_backend(p);
	/* the plugin also exports a version-1 entry ("fixture-old-entry"): the v2 one wins */
	ck_assert_str_eq(b->name, "fixture");
	ck_assert_uint_eq(b->abi_version, 2);
	ck_assert_uint_eq(b->struct_size, sizeof(struct moe_backend));
	ck_assert_ptr_nonnull(b->pack);
	ck_assert_ptr_nonnull(b->release);
	check_fixture_route(b);

	/* moe_backend_route takes route_mt, which the fixture makes write ids K-1..0. */
	struct moe_route_params rp = { .method = MOE_ROUTE_SIGMOID, .num_experts = 8, .top_k = 2,
				       .logits_dtype = MOE_DTYPE_F32 };
	float logits[8] = { 0 }, w[2];
	int32_t ids[2];
	moe_backend_route(b, &rp, 1, logits, NULL, ids, w, NULL);
	ck_assert_int_eq(ids[0], 1);
	ck_assert_int_eq(ids[1], 0);

	/* pack through the host: its checks pass the fixture's handle on; count 0 needs no weights */
	struct moe_expert_params ep = { .hidden = 16, .inter = 16, .weight_dtype = MOE_DTYPE_F32 };
	struct moe_expert_weights ew = { 0 };
	struct moe_packed *pk = NULL;
	ck_assert_int_eq(moe_backend_pack(b, &ep, 0, &ew, NULL, &pk), MOE_OK);
	ck_assert_ptr_nonnull(pk);
	ck_assert_ptr_eq(pk->owner, b);
	ck_assert_int_eq(pk->count, 0);
	moe_backend_release(b, pk);
	moe_plugin_close(p);
}
END_TEST

START_TEST(test_bare_name_means_current_folder)
{
	char cwd[PATH_MAX];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(chdir(MOE_TEST_PLUGIN_DIR), 0);
	struct moe_plugin *p = NULL;
	enum moe_status s = moe_plugin_open("fixture_good.so", &p);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(s, MOE_OK);
	ck_assert_str_eq(moe_plugin_backend(p)->name, "fixture-v1");
	ck_assert_str_eq(moe_plugin_path(p), "fixture_good.so");
	moe_plugin_close(p);
	/* From elsewhere the same bare name is not found, even though the loader has a search path. */
	expect_refused("fixture_good.so", MOE_ERR_IO, "not a loadable shared library");
}
END_TEST

START_TEST(test_wrong_abi)
{
	/* the v2 entry hands back a table that says ABI 1 */
	expect_refused(fixture("fixture_abimix"), MOE_ERR_ABI,
		       "its entry moe_backend_entry_v2 was asked for ABI 2 and returned a table for ABI 1");
}
END_TEST

START_TEST(test_missing_symbol)
{
	expect_refused(fixture("fixture_nosym"), MOE_ERR_ABI,
		       "exports neither moe_backend_entry_v2 nor moe_backend_entry_v1: is it a moebench backend?");
}
END_TEST

START_TEST(test_entry_returns_null)
{
	expect_refused(fixture("fixture_null"), MOE_ERR_ABI,
		       "moe_backend_entry_v2(2) returned NULL: the plugin does not support ABI 2");
	expect_refused(fixture("fixture_v1null"), MOE_ERR_ABI,
		       "moe_backend_entry_v1(1) returned NULL: the plugin does not support ABI 1");
}
END_TEST

START_TEST(test_wrong_struct_size)
{
	char want[160];
	/* the v2 fixture claims sizeof(struct moe_backend) - 8 */
	snprintf(want, sizeof want, "its struct moe_backend is %zu bytes, ABI 2's is %zu: rebuild",
		 sizeof(struct moe_backend) - 8, sizeof(struct moe_backend));
	expect_refused(fixture("fixture_size"), MOE_ERR_ABI, want);
	/* a version-1 table must have the version-1 size, not this header's */
	snprintf(want, sizeof want, "its struct moe_backend is %zu bytes, ABI 1's is %zu: rebuild",
		 sizeof(struct moe_backend), (size_t)MOE_BACKEND_V1_SIZE);
	expect_refused(fixture("fixture_v1size"), MOE_ERR_ABI, want);
}
END_TEST

START_TEST(test_pack_without_release)
{
	expect_refused(fixture("fixture_norelease"), MOE_ERR_ABI, "has pack but no release");
	ck_assert_msg(strstr(moe_last_error(), "could not free"), "message '%s' does not say why", moe_last_error());
}
END_TEST

START_TEST(test_empty_name)
{
	expect_refused(fixture("fixture_noname"), MOE_ERR_FORMAT, "has an empty name");
}
END_TEST

START_TEST(test_unresolved_symbol)
{
	/* The library is valid but needs a symbol nobody provides: refused when loaded, not at the
	 * first kernel call. */
	expect_refused(fixture("fixture_undef"), MOE_ERR_FORMAT, "undefined symbol: moe_fail");
}
END_TEST

START_TEST(test_text_file)
{
	char dir[] = "/tmp/moe_test_plugin_XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/notes.so", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not an ELF file\n", f);
	fclose(f);
	expect_refused(path, MOE_ERR_FORMAT, "not a loadable shared library: ");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_missing_file)
{
	expect_refused("/nonexistent/moebench/backend.so", MOE_ERR_IO, "not a loadable shared library: ");
	ck_assert(strstr(moe_last_error(), "No such file"));
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct moe_plugin *p = NULL;
	ck_assert_int_eq(moe_plugin_open(NULL, &p), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_plugin_open("", &p), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_plugin_open(fixture("fixture_good"), NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_null(moe_plugin_backend(NULL));
	ck_assert_ptr_null(moe_plugin_path(NULL));
}
END_TEST

START_TEST(test_is_path)
{
	ck_assert(moe_plugin_is_path("./x"));
	ck_assert(moe_plugin_is_path("/usr/lib/x.so.1"));
	ck_assert(moe_plugin_is_path("mine.so"));
	ck_assert(!moe_plugin_is_path("ref"));
	ck_assert(!moe_plugin_is_path("avx512"));
	ck_assert(!moe_plugin_is_path("so"));
	ck_assert(!moe_plugin_is_path(".so.1"));
	ck_assert(!moe_plugin_is_path(""));
	ck_assert(!moe_plugin_is_path(NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugin");
	TCase *tc = tcase_create("plugin");
	tcase_add_test(tc, test_good_plugin_v1);
	tcase_add_test(tc, test_good_plugin_v2);
	tcase_add_test(tc, test_pack_without_release);
	tcase_add_test(tc, test_bare_name_means_current_folder);
	tcase_add_test(tc, test_wrong_abi);
	tcase_add_test(tc, test_missing_symbol);
	tcase_add_test(tc, test_entry_returns_null);
	tcase_add_test(tc, test_wrong_struct_size);
	tcase_add_test(tc, test_empty_name);
	tcase_add_test(tc, test_unresolved_symbol);
	tcase_add_test(tc, test_text_file);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_is_path);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
