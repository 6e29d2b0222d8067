/* Unit tests of the benchmark engine's files: the Google Benchmark JSON it writes (read back by
 * jansson and by our reader), `moebench compare` exit codes on crafted files, the CSV, and the
 * atomic writer (a failed write leaves neither a partial file nor a temporary). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/moe-test-bench-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

static size_t count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static void add(struct moe_bench_results *r, const char *key, const char *backend, double base, double step)
{
	struct moe_bench_result *e = moe_bench_results_add(r);
	snprintf(e->key, sizeof e->key, "%s", key);
	snprintf(e->backend, sizeof e->backend, "%s", backend);
	snprintf(e->name, sizeof e->name, "%s/%s", key, backend);
	snprintf(e->op, sizeof e->op, "route");
	snprintf(e->model, sizeof e->model, "m");
	e->t.reps = 7;
	e->t.iters = 10;
	for (int i = 0; i < 7; i++)
		e->t.real_ns[i] = e->t.cpu_ns[i] = base + step * i;
	e->cost = (struct moe_bench_cost){ .bytes = 1000, .tokens = 16, .working_set = 1000 };
}

START_TEST(test_json_google_benchmark_schema)
{
	make_dir();
	struct moe_bench_results r = { 0 };
	add(&r, "route/m/T:16", "ref", 1000, 10); /* 1000..1060 ns, median 1030 */
	struct moe_bench_result *skip = moe_bench_results_add(&r);
	snprintf(skip->name, sizeof skip->name, "expert/m/M:1024/ref");
	skip->skipped = true;
	snprintf(skip->error, sizeof skip->error, "too slow");
	moe_bench_results_derive(&r, NULL, NULL);
	char path[256];
	snprintf(path, sizeof path, "%s/b.json", dir);
	json_t *ctx = json_pack("{s:s}", "host_name", "test");
	ck_assert_int_eq(moe_bench_write_json(path, &r, ctx), MOE_OK);
	json_decref(ctx);

	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	ck_assert_ptr_nonnull(root);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "context"), "host_name")), "test");
	json_t *arr = json_object_get(root, "benchmarks");
	/* 7 repetitions + 6 aggregates + 1 error entry */
	ck_assert_uint_eq(json_array_size(arr), 14);
	json_t *it = json_array_get(arr, 2);
	ck_assert_str_eq(json_string_value(json_object_get(it, "name")), "route/m/T:16/ref");
	ck_assert_str_eq(json_string_value(json_object_get(it, "run_name")), "route/m/T:16/ref");
	ck_assert_str_eq(json_string_value(json_object_get(it, "run_type")), "iteration");
	ck_assert_int_eq(json_integer_value(json_object_get(it, "repetitions")), 7);
	ck_assert_int_eq(json_integer_value(json_object_get(it, "repetition_index")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(it, "iterations")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(it, "threads")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(it, "time_unit")), "ns");
	ck_assert_double_eq_tol(json_number_value(json_object_get(it, "real_time")), 1020.0, 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(it, "cpu_time")), 1020.0, 1e-9);
	/* 16 tokens in 1020 ns = 1.5686e7 tokens/s; 1000 bytes -> 9.8039e8 B/s */
	ck_assert_double_eq_tol(json_number_value(json_object_get(it, "items_per_second")), 16 / 1020e-9, 1);
	ck_assert_double_eq_tol(json_number_value(json_object_get(it, "bytes_per_second")), 1000 / 1020e-9, 1);
	json_t *med = json_array_get(arr, 8);
	ck_assert_str_eq(json_string_value(json_object_get(med, "name")), "route/m/T:16/ref_median");
	ck_assert_str_eq(json_string_value(json_object_get(med, "run_type")), "aggregate");
	ck_assert_str_eq(json_string_value(json_object_get(med, "aggregate_name")), "median");
	ck_assert_double_eq_tol(json_number_value(json_object_get(med, "real_time")), 1030.0, 1e-9);
	/* the aggregate carries the cost and its rates: 1000 bytes / 1030 ns = 0.97087 GB/s */
	ck_assert_double_eq_tol(json_number_value(json_object_get(med, "gbps")), 1000.0 / 1030.0, 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(med, "bytes_per_call")), 1000.0, 1e-9);
	ck_assert_ptr_null(json_object_get(med, "gflops")); /* routing counts no flops */
	json_t *cv = json_array_get(arr, 10);
	ck_assert_str_eq(json_string_value(json_object_get(cv, "aggregate_name")), "cv");
	ck_assert_str_eq(json_string_value(json_object_get(cv, "aggregate_unit")), "percentage");
	json_t *bad = json_array_get(arr, 13);
	ck_assert(json_is_true(json_object_get(bad, "error_occurred")));
	ck_assert_str_eq(json_string_value(json_object_get(bad, "error_message")), "too slow");
	json_decref(root);

	/* our reader gets the repetitions back */
	struct moe_bench_results back = { 0 };
	ck_assert_int_eq(moe_bench_read_json(path, &back), MOE_OK);
	ck_assert_uint_eq(back.n, 2);
	ck_assert_int_eq(back.v[0].t.reps, 7);
	ck_assert_double_eq_tol(back.v[0].real.median, 1030.0, 1e-9);
	ck_assert_str_eq(back.v[0].backend, "ref");
	ck_assert_str_eq(back.v[0].key, "route/m/T:16");
	ck_assert(back.v[1].skipped);
	moe_bench_results_free(&back);

	snprintf(path, sizeof path, "%s/b.csv", dir);
	ck_assert_int_eq(moe_bench_write_csv(path, &r), MOE_OK);
	FILE *f = fopen(path, "r");
	char line[2048];
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	ck_assert_ptr_nonnull(strstr(line, "median_ns"));
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	ck_assert_ptr_nonnull(strstr(line, "route/m/T:16/ref,route,m,ref,1,0"));
	ck_assert_ptr_nonnull(strstr(line, ",1030,"));
	fclose(f);
	moe_bench_results_free(&r);
	remove_dir();
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static int compare(const char *a, const char *b, double threshold)
{
	struct moe_bench_compare_opts o = { .threshold = threshold, .alpha = 0.05 };
	FILE *null = fopen("/dev/null", "w");
	int rc = moe_bench_compare_files(a, b, &o, null, null);
	fclose(null);
	return rc;
}

START_TEST(test_compare_exit_codes)
{
	make_dir();
	char a[256], b[256], same[256], bad[256], faster[256], small[256];
	snprintf(a, sizeof a, "%s/a.json", dir);
	snprintf(b, sizeof b, "%s/b.json", dir);
	snprintf(same, sizeof same, "%s/same.json", dir);
	snprintf(bad, sizeof bad, "%s/bad.json", dir);
	snprintf(faster, sizeof faster, "%s/faster.json", dir);
	snprintf(small, sizeof small, "%s/small.json", dir);
	struct moe_bench_results r = { 0 };
	add(&r, "route/m/T:1", "ref", 1000, 5);   /* 1000..1030 */
	add(&r, "route/m/T:16", "ref", 5000, 20);
	moe_bench_results_derive(&r, NULL, NULL);
	ck_assert_int_eq(moe_bench_write_json(a, &r, NULL), MOE_OK);
	ck_assert_int_eq(moe_bench_write_json(same, &r, NULL), MOE_OK);
	/* 20% slower, every repetition: ratio 1.2 and p = 2/3432 -> regression */
	for (int i = 0; i < 7; i++)
		r.v[0].t.real_ns[i] *= 1.2;
	moe_bench_results_derive(&r, NULL, NULL);
	ck_assert_int_eq(moe_bench_write_json(b, &r, NULL), MOE_OK);
	/* 3% slower: significant but under the 5% threshold -> no regression */
	for (int i = 0; i < 7; i++)
		r.v[0].t.real_ns[i] = (1000 + 5 * i) * 1.03;
	moe_bench_results_derive(&r, NULL, NULL);
	ck_assert_int_eq(moe_bench_write_json(small, &r, NULL), MOE_OK);
	/* 30% faster -> improvement, exit 0 */
	for (int i = 0; i < 7; i++)
		r.v[0].t.real_ns[i] = (1000 + 5 * i) * 0.7;
	moe_bench_results_derive(&r, NULL, NULL);
	ck_assert_int_eq(moe_bench_write_json(faster, &r, NULL), MOE_OK);
	moe_bench_results_free(&r);

	ck_assert_int_eq(compare(a, b, 0.05), 1);
	ck_assert_int_eq(compare(a, same, 0.05), 0);
	ck_assert_int_eq(compare(a, small, 0.05), 0);
	ck_assert_int_eq(compare(a, small, 0.01), 1); /* the same 3% with a 1% threshold */
	ck_assert_int_eq(compare(a, faster, 0.05), 0);

	write_file(bad, "{\"benchmarks\": [ {\"name\": \"x\", \"real_time\": 1,");
	ck_assert_int_eq(compare(a, bad, 0.05), 2);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "malformed"));
	write_file(bad, "{\"context\": {}}");
	ck_assert_int_eq(compare(a, bad, 0.05), 2);
	write_file(bad, "{\"benchmarks\": [{\"name\": \"x\"}]}");
	ck_assert_int_eq(compare(a, bad, 0.05), 2);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "benchmarks[0]"));
	write_file(bad, "{\"benchmarks\": [{\"name\": \"other\", \"real_time\": 3, \"time_unit\": \"ms\"}]}");
	ck_assert_int_eq(compare(a, bad, 0.05), 2); /* nothing in common */
	snprintf(bad, sizeof bad, "%s/missing.json", dir);
	ck_assert_int_eq(compare(a, bad, 0.05), 2);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "missing.json"));
	ck_assert_int_eq(compare(a, same, -1), 2); /* bad threshold */
	remove_dir();
}
END_TEST

static enum moe_status partial_then_fail(FILE *f, void *ctx)
{
	fputs("{\"benchmarks\": [", f);
	return moe_fail(MOE_ERR_IO, "simulated failure");
}

static enum moe_status write_text(FILE *f, void *ctx)
{
	fputs(ctx, f);
	return MOE_OK;
}

START_TEST(test_atomic_write)
{
	make_dir();
	char path[256], buf[64] = "";
	snprintf(path, sizeof path, "%s/out.json", dir);
	/* a failed first write leaves nothing at all */
	ck_assert_int_eq(moe_bench_write_atomic(path, partial_then_fail, NULL), MOE_ERR_IO);
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_uint_eq(count_entries(), 0);
	/* a successful write, then a failed one: the old content stays whole */
	ck_assert_int_eq(moe_bench_write_atomic(path, write_text, "old"), MOE_OK);
	ck_assert_int_eq(moe_bench_write_atomic(path, partial_then_fail, NULL), MOE_ERR_IO);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
	fclose(f);
	ck_assert_str_eq(buf, "old");
	ck_assert_uint_eq(count_entries(), 1);
	/* a write into a missing directory fails with a message naming the path */
	snprintf(path, sizeof path, "%s/no/such/dir/x.json", dir);
	ck_assert_int_eq(moe_bench_write_atomic(path, write_text, "x"), MOE_ERR_IO);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "x.json"));
	/* mkdirs makes the nested directories, then the write works */
	snprintf(path, sizeof path, "%s/no/such", dir);
	ck_assert_int_eq(moe_bench_mkdirs(path), MOE_OK);
	snprintf(path, sizeof path, "%s/no/such/x.json", dir);
	ck_assert_int_eq(moe_bench_write_atomic(path, write_text, "x"), MOE_OK);
	unlink(path);
	snprintf(path, sizeof path, "%s/no/such", dir);
	rmdir(path);
	snprintf(path, sizeof path, "%s/no", dir);
	rmdir(path);
	remove_dir();
}
END_TEST

/* More than a stdio buffer, then the writers' own check (json_out.c): the error knows no path. */
static enum moe_status write_much(FILE *f, void *ctx)
{
	(void)ctx;
	for (int i = 0; i < 4096; i++)
		fputs("0123456789abcdef0123456789abcdef\n", f);
	return ferror(f) ? moe_fail(MOE_ERR_IO, "writer saw an error") : MOE_OK;
}

/* A target that is a device (here a link to /dev/full) is written in place: the old writer renamed
 * its temporary over the link (as root over /dev/full itself) and reported success. */
START_TEST(test_atomic_write_device)
{
	struct stat st;
	char path[256];
	if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode))
		return;
	make_dir();
	snprintf(path, sizeof path, "%s/full.json", dir);
	ck_assert_int_eq(symlink("/dev/full", path), 0);
	ck_assert_int_eq(moe_bench_write_atomic(path, write_text, "x"), MOE_ERR_IO);
	ck_assert_msg(strstr(moe_last_error(), path) && strstr(moe_last_error(), strerror(ENOSPC)), "%s",
		      moe_last_error());
	/* a writer failing on its own (as json_out.c does on ferror) gets the path and the reason */
	ck_assert_int_eq(moe_bench_write_atomic(path, write_much, NULL), MOE_ERR_IO);
	ck_assert_msg(strstr(moe_last_error(), path) && strstr(moe_last_error(), "writer saw an error") &&
		      strstr(moe_last_error(), strerror(ENOSPC)), "%s", moe_last_error());
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(stat("/dev/full", &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
	unlink(path);
	ck_assert_uint_eq(count_entries(), 0);
	remove_dir();
}
END_TEST

START_TEST(test_calibration_cache_round_trip)
{
	make_dir();
	char path[256];
	snprintf(path, sizeof path, "%s/cal.json", dir);
	struct moe_calibration c = { .count = 1 }, back;
	snprintf(c.fingerprint, sizeof c.fingerprint, "cpu|2 cores");
	c.r[0] = (struct moe_roofline){ .threads = 1, .fp32_gflops = 114, .bf16_gflops = 226,
				       .bw_gbs = { 300, 109, 60, 21 }, .bw_bytes = { 1, 2, 3, 4 } };
	ck_assert_int_eq(moe_bench_calibration_save(path, &c), MOE_OK);
	ck_assert_int_eq(moe_bench_calibration_load(path, "cpu|2 cores", &back), MOE_OK);
	ck_assert_int_eq(back.count, 1);
	ck_assert_double_eq(back.r[0].fp32_gflops, 114);
	ck_assert_double_eq(back.r[0].bw_gbs[MOE_LEVEL_DRAM], 21);
	ck_assert_uint_eq(back.r[0].bw_bytes[MOE_LEVEL_L3], 3);
	/* another machine's cache is not used */
	ck_assert_int_eq(moe_bench_calibration_load(path, "other|4 cores", &back), MOE_ERR_UNSUPPORTED);
	/* roofline_for: the nearest calibrated count not above the request */
	ck_assert_ptr_eq(moe_bench_roofline_for(&c, 4), &c.r[0]);
	ck_assert_ptr_null(moe_bench_roofline_for(&c, 0));
	write_file(path, "{\"fingerprint\": \"cpu|2 cores\", \"ceilings\": [{\"threads\": 1}]}");
	ck_assert_int_eq(moe_bench_calibration_load(path, "cpu|2 cores", &back), MOE_ERR_FORMAT);
	remove_dir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench_io");
	TCase *tc = tcase_create("bench_io");
	tcase_add_test(tc, test_json_google_benchmark_schema);
	tcase_add_test(tc, test_compare_exit_codes);
	tcase_add_test(tc, test_atomic_write);
	tcase_add_test(tc, test_atomic_write_device);
	tcase_add_test(tc, test_calibration_cache_round_trip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
