/* The host's threads (core/threads.c): every task of a parallel_for runs exactly once, on a thread
 * index within the count, the caller included; pools are reused across calls; bad sizes are
 * refused with a message. */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "moe/threads.h"

struct tally {
	atomic_int *hits;
	atomic_int bad_thread;
	int count;
	atomic_int per_thread[8];
};

static void count_task(void *arg, int64_t task, int thread)
{
	struct tally *t = arg;
	atomic_fetch_add(&t->hits[task], 1);
	if (thread < 0 || thread >= t->count)
		atomic_fetch_add(&t->bad_thread, 1);
	else
		atomic_fetch_add(&t->per_thread[thread], 1);
}

static void run_and_check(const struct moe_threads *th, int count, int64_t n)
{
	struct tally t = { 0 };
	t.count = count;
	t.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *t.hits);
	ck_assert_ptr_nonnull(t.hits);
	moe_parallel_for(th, n, count_task, &t);
	for (int64_t i = 0; i < n; i++)
		ck_assert_msg(atomic_load(&t.hits[i]) == 1, "task %lld ran %d times (count %d, n %lld)", (long long)i,
			      atomic_load(&t.hits[i]), count, (long long)n);
	ck_assert_int_eq(atomic_load(&t.bad_thread), 0);
	int total = 0;
	for (int k = 0; k < 8; k++)
		total += atomic_load(&t.per_thread[k]);
	ck_assert_int_eq(total, (int)n);
	free(t.hits);
}

START_TEST(serial_runs_in_order)
{
	const struct moe_threads *th = moe_threads_serial();
	ck_assert_int_eq(th->count, 1);
	run_and_check(th, 1, 0);
	run_and_check(th, 1, 1);
	run_and_check(th, 1, 1000);
	run_and_check(NULL, 1, 17); /* NULL means the caller alone */
}
END_TEST

START_TEST(pool_every_task_once)
{
	for (int count = 1; count <= 4; count++) {
		struct moe_pool *pool = NULL;
		ck_assert_int_eq(moe_pool_create(count, NULL, &pool), MOE_OK);
		const struct moe_threads *th = moe_pool_threads(pool);
		ck_assert_int_eq(th->count, count);
		/* the same pool over many calls of different sizes, as a layer's phases use it */
		for (int round = 0; round < 50; round++) {
			run_and_check(th, count, 0);
			run_and_check(th, count, 1);
			run_and_check(th, count, round * 7 + 2);
		}
		run_and_check(th, count, 100000);
		moe_pool_destroy(pool);
	}
}
END_TEST

START_TEST(pool_refuses_bad_sizes)
{
	struct moe_pool *pool = (struct moe_pool *)1;
	ck_assert_int_eq(moe_pool_create(0, NULL, &pool), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_null(pool);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "0 threads"));
	ck_assert_int_eq(moe_pool_create(100000, NULL, &pool), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_pool_create(2, NULL, NULL), MOE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(pool_binding_says_unpinned)
{
	struct moe_pool *pool = NULL;
	ck_assert_int_eq(moe_pool_create(2, NULL, &pool), MOE_OK);
	ck_assert_str_eq(moe_pool_binding(pool), "0:unpinned 1:unpinned");
	ck_assert_int_eq(moe_pool_pin_caller(pool), MOE_OK); /* nothing to pin */
	moe_pool_destroy(pool);
	ck_assert_int_ge(moe_cpus_available(), 1);
}
END_TEST

START_TEST(pool_pins_to_cpu0)
{
	/* CPU 0 is in every affinity mask this suite runs with; pin both threads there */
	const int cpus[2] = { 0, 0 };
	struct moe_pool *pool = NULL;
	ck_assert_int_eq(moe_pool_create(2, cpus, &pool), MOE_OK);
	ck_assert_str_eq(moe_pool_binding(pool), "0:cpu0 1:cpu0");
	run_and_check(moe_pool_threads(pool), 2, 1000);
	moe_pool_destroy(pool);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, serial_runs_in_order);
	tcase_add_test(tc, pool_every_task_once);
	tcase_add_test(tc, pool_refuses_bad_sizes);
	tcase_add_test(tc, pool_binding_says_unpinned);
	tcase_add_test(tc, pool_pins_to_cpu0);
	suite_add_tcase(s, tc);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
