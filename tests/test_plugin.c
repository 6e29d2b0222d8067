/* Unit tests of the plugin loader (verify/plugin.c) against the fixture plugins built from
 * tests/plugin_fixture.c into MOE_TEST_PLUGIN_DIR: one good table and one per broken contract,
 * plus a text file and a missing path. Each refusal is checked for its status and its message. */
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

START_TEST(test_good_plugin)
{
	struct moe_plugin *p = NULL;
	const char *path = fixture("fixture_good");
	ck_assert_int_eq(moe_plugin_open(path, &p), MOE_OK);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(moe_plugin_path(p), path);
	const struct moe_backend *b = moe_plugin_backend(p);
	ck_assert_str_eq(b->name, "fixture");
	ck_assert_uint_eq(b->abi_version, MOE_BACKEND_ABI_VERSION);
	/* NULL slots load fine and read as "not provided". */
	ck_assert_ptr_null(b->norm);
	ck_assert(!moe_backend_provides(b, MOE_OP_NORM, NULL));

	struct moe_route_params rp = { .method = MOE_ROUTE_SIGMOID, .num_experts = 8, .top_k = 4,
				       .logits_dtype = MOE_DTYPE_F32 };
	ck_assert(moe_backend_provides(b, MOE_OP_ROUTE, &rp));
	rp.logits_dtype = MOE_DTYPE_BF16;
	ck_assert(!moe_backend_provides(b, MOE_OP_ROUTE, &rp));

	/* The kernel is callable through the table: the fixture writes ids 0..K-1 and weights 1/K. */
	rp.logits_dtype = MOE_DTYPE_F32;
	float logits[2 * 8] = { 0 }, w[2 * 4];
	int32_t ids[2 * 4];
	b->route(&rp, 2, logits, NULL, ids, w);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(ids[i], i % 4);
		ck_assert_float_eq(w[i], 0.25f); /* 1/4 */
	}
	moe_plugin_close(p);
	moe_plugin_close(NULL);
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
	ck_assert_str_eq(moe_plugin_backend(p)->name, "fixture");
	ck_assert_str_eq(moe_plugin_path(p), "fixture_good.so");
	moe_plugin_close(p);
	/* From elsewhere the same bare name is not found, even though the loader has a search path. */
	expect_refused("fixture_good.so", MOE_ERR_IO, "not a loadable shared library");
}
END_TEST

START_TEST(test_wrong_abi)
{
	expect_refused(fixture("fixture_abi2"), MOE_ERR_ABI, "built for ABI 2, this moebench speaks ABI 1");
}
END_TEST

START_TEST(test_missing_symbol)
{
	expect_refused(fixture("fixture_nosym"), MOE_ERR_ABI,
		       "does not export moe_backend_entry_v1: is it a moebench backend?");
}
END_TEST

START_TEST(test_entry_returns_null)
{
	expect_refused(fixture("fixture_null"), MOE_ERR_ABI, "moe_backend_entry_v1(1) returned NULL");
}
END_TEST

START_TEST(test_wrong_struct_size)
{
	char want[128];
	/* the fixture claims sizeof(struct moe_backend) - 8 */
	snprintf(want, sizeof want, "is %zu bytes, this moebench's is %zu", sizeof(struct moe_backend) - 8,
		 sizeof(struct moe_backend));
	expect_refused(fixture("fixture_size"), MOE_ERR_ABI, want);
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
	tcase_add_test(tc, test_good_plugin);
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
