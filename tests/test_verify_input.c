/* The verifier's input boundary (issue 11): files a user hands to `verify --vectors` and
 * `verify --cases` are untrusted. A vector file whose expected ids were edited (and its hashes
 * recomputed so that the damage check passes) must be refused naming the file and the tensor, not
 * read out of bounds; a spec whose shapes do not fit the file is refused before anything is
 * allocated from it; FIFOs, devices, directories, empty and comment-only cases files are refused
 * instead of blocking, looping or running nothing. An alarm turns a hang into a failure. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "vcases.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_verify_input_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	alarm(60);
}

static void remove_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	alarm(0);
}

/* The same hash the exporter writes (verify/vectors.c), so that edits pass the damage check. */
static uint64_t fnv1a64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

typedef void edit_fn(struct moe_st_tensor *t, void *data, void *ctx);

/* Rewrites one exported file: edit() may change each tensor's bytes; `spec`, if given, replaces the
 * "case" metadata; hashes are recomputed. */
static void rewrite(const char *path, edit_fn *edit, void *ctx, const char *spec)
{
	struct moe_st_file f;
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	struct moe_st_tensor *t = calloc(f.ntensors, sizeof *t);
	void **data = calloc(f.ntensors, sizeof *data);
	struct moe_st_meta *meta = calloc(f.nmeta, sizeof *meta);
	char(*hash)[20] = calloc(f.ntensors, sizeof *hash);
	ck_assert(t && data && meta && hash);
	for (size_t i = 0; i < f.ntensors; i++) {
		t[i] = f.tensors[i];
		data[i] = malloc(t[i].nbytes ? t[i].nbytes : 1);
		memcpy(data[i], f.tensors[i].data, t[i].nbytes);
		edit(&t[i], data[i], ctx);
		t[i].data = data[i];
		snprintf(hash[i], sizeof hash[i], "%016llx", (unsigned long long)fnv1a64(data[i], t[i].nbytes));
	}
	for (size_t i = 0; i < f.nmeta; i++) {
		meta[i] = f.meta[i];
		if (spec && !strcmp(meta[i].key, "case"))
			meta[i].value = spec;
		for (size_t k = 0; k < f.ntensors; k++)
			if (!strncmp(meta[i].key, "fnv1a64.", 8) && !strcmp(meta[i].key + 8, t[k].name))
				meta[i].value = hash[k];
	}
	ck_assert_int_eq(moe_st_write(path, t, f.ntensors, meta, f.nmeta), MOE_OK);
	for (size_t i = 0; i < f.ntensors; i++)
		free(data[i]);
	free(t);
	free(data);
	free(meta);
	free(hash);
	moe_st_free(&f);
}

/* Exports one case as <tmpdir>/<op>-0000.safetensors into path. */
static void export_one(const char *spec, char *path, size_t size)
{
	struct moe_vcase_list l = { 0 };
	struct moe_vcase c;
	size_t written = 0;
	ck_assert_msg(moe_vcase_parse(spec, &c) == MOE_OK, "%s", moe_last_error());
	ck_assert_int_eq(moe_vcase_push(&l, &c), MOE_OK);
	ck_assert_msg(moe_vectors_export(tmpdir, &l, &written) == MOE_OK, "%s", moe_last_error());
	ck_assert_uint_eq(written, 1);
	snprintf(path, size, "%s/%s-0000.safetensors", tmpdir, moe_op_name(c.op));
	moe_vcase_list_free(&l);
}

static enum moe_status check_dir(void)
{
	struct moe_vreport rep = { 0 };
	enum moe_status st = moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep);
	moe_vreport_free(&rep);
	return st;
}

struct id_edit {
	int64_t index;
	int32_t value;
};

static void set_id(struct moe_st_tensor *t, void *data, void *ctx)
{
	const struct id_edit *e = ctx;
	if (!strcmp(t->name, "expected_ids"))
		((int32_t *)data)[e->index] = e->value;
}

static void no_edit(struct moe_st_tensor *t, void *data, void *ctx)
{
	(void)t, (void)data, (void)ctx;
}

static const char *const route_spec = "route method=Renormalize profile=vllm E=16 K=4 T=3 seed=5";
static const char *const layer_spec =
	"layer method=Renormalize profile=vllm E=8 K=2 T=2 H=32 I=32 wdtype=f32 seed=3";

START_TEST(test_vectors_bad_ids)
{
	/* ids out of range (just past E, far past it, negative) and duplicates, route and layer */
	const struct {
		const char *spec;
		struct id_edit e;
		const char *says;
	} bad[] = {
		{ route_spec, { 0, 16 }, "expected_ids" },         { route_spec, { 5, 1 << 30 }, "expected_ids" },
		{ route_spec, { 11, -1 }, "expected_ids" },        { route_spec, { 1, -1 }, "expected_ids" },
		{ layer_spec, { 0, 8 }, "expected_ids" },          { layer_spec, { 3, 1 << 30 }, "expected_ids" },
		{ layer_spec, { 2, -7 }, "expected_ids" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char path[512];
		make_tmpdir();
		export_one(bad[i].spec, path, sizeof path);
		ck_assert_msg(check_dir() == MOE_OK, "%s", moe_last_error());
		struct id_edit e = bad[i].e;
		rewrite(path, set_id, &e, NULL);
		ck_assert_msg(check_dir() == MOE_ERR_FORMAT, "case %zu accepted", i);
		ck_assert_msg(strstr(moe_last_error(), path) && strstr(moe_last_error(), bad[i].says), "%s",
			      moe_last_error());
		remove_tree(tmpdir);
	}
	/* a duplicate: the first row's second slot repeats its first */
	for (int layer = 0; layer < 2; layer++) {
		char path[512];
		make_tmpdir();
		export_one(layer ? layer_spec : route_spec, path, sizeof path);
		struct moe_st_file f;
		ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
		struct id_edit e = { 1, ((const int32_t *)moe_st_find(&f, "expected_ids")->data)[0] };
		moe_st_free(&f);
		rewrite(path, set_id, &e, NULL);
		ck_assert_int_eq(check_dir(), MOE_ERR_FORMAT);
		ck_assert_msg(strstr(moe_last_error(), "twice"), "%s", moe_last_error());
		remove_tree(tmpdir);
	}
}
END_TEST

START_TEST(test_vectors_huge_spec)
{
	/* a spec whose shapes the file cannot hold is refused on its sizes, before scratch for T*E
	 * (256 GiB here) is asked for; likewise a layer whose I*H is far beyond its tensors */
	const struct {
		const char *spec, *edited;
	} bad[] = {
		{ route_spec, "route method=Renormalize profile=vllm E=65536 K=4 T=1048576 seed=5" },
		{ layer_spec, "layer method=Renormalize profile=vllm E=8 K=2 T=2 H=65536 I=65536 wdtype=f32 seed=3" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char path[512];
		struct moe_vcase c;
		ck_assert_msg(moe_vcase_parse(bad[i].edited, &c) == MOE_OK && moe_vcase_validate(&c) == MOE_OK, "%s",
			      moe_last_error());
		make_tmpdir();
		export_one(bad[i].spec, path, sizeof path);
		rewrite(path, no_edit, NULL, bad[i].edited);
		ck_assert_int_eq(check_dir(), MOE_ERR_FORMAT);
		ck_assert_msg(strstr(moe_last_error(), path) && strstr(moe_last_error(), "implies"), "%s",
			      moe_last_error());
		remove_tree(tmpdir);
	}
}
END_TEST

START_TEST(test_vectors_fifo)
{
	/* a FIFO named like a vector file must be refused, not block in open() */
	char path[512];
	make_tmpdir();
	export_one(route_spec, path, sizeof path);
	snprintf(path, sizeof path, "%s/x.safetensors", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_ne(check_dir(), MOE_OK);
	ck_assert_msg(strstr(moe_last_error(), path) && strstr(moe_last_error(), "regular"), "%s", moe_last_error());
	remove_tree(tmpdir);
}
END_TEST

START_TEST(test_cases_file_refusals)
{
	char path[512];
	struct moe_vcase_list l = { 0 };
	make_tmpdir();
	/* not regular files: /dev/zero once looped forever, a FIFO blocked, a folder read as empty */
	ck_assert_int_ne(moe_cases_read("/dev/zero", &l), MOE_OK);
	ck_assert_msg(strstr(moe_last_error(), "/dev/zero") && strstr(moe_last_error(), "regular"), "%s",
		      moe_last_error());
	ck_assert_int_ne(moe_cases_read(tmpdir, &l), MOE_OK);
	ck_assert_msg(strstr(moe_last_error(), tmpdir), "%s", moe_last_error());
	snprintf(path, sizeof path, "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_ne(moe_cases_read(path, &l), MOE_OK);
	ck_assert_msg(strstr(moe_last_error(), "regular"), "%s", moe_last_error());
	/* files holding no case: an empty file, comments and blank lines only */
	static const char *const empty[] = { "", "# nothing here\n\n   \n# at all\n" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/empty%d.txt", tmpdir, i);
		FILE *f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(empty[i], f);
		fclose(f);
		ck_assert_int_eq(moe_cases_read(path, &l), MOE_ERR_FORMAT);
		ck_assert_msg(strstr(moe_last_error(), path) && strstr(moe_last_error(), "no case"), "%s",
			      moe_last_error());
	}
	/* a NUL byte is not text */
	snprintf(path, sizeof path, "%s/nul.txt", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("route method=Renormalize E=8 K=2 T=2 seed=5\n", f);
	fputc('\0', f);
	fputs("\n", f);
	fclose(f);
	ck_assert_int_eq(moe_cases_read(path, &l), MOE_ERR_FORMAT);
	ck_assert_msg(strstr(moe_last_error(), "NUL"), "%s", moe_last_error());
	moe_vcase_list_free(&l);
	remove_tree(tmpdir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify_input");
	TCase *tc = tcase_create("input");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_vectors_bad_ids);
	tcase_add_test(tc, test_vectors_huge_spec);
	tcase_add_test(tc, test_vectors_fifo);
	tcase_add_test(tc, test_cases_file_refusals);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
