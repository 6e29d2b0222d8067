/* Unit tests of the benchmark engine's arithmetic: summary statistics, the Mann-Whitney U test, the
 * cost model, the roofline and speedup derivation, the measurement loop's bookkeeping and the case
 * list. Expected values are worked by hand in the comments; nothing here asserts a speed. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

START_TEST(test_median_odd_even)
{
	const double odd[] = { 3, 1, 2 };         /* sorted 1 2 3 -> 2 */
	const double even[] = { 4, 1, 3, 2 };     /* sorted 1 2 3 4 -> (2 + 3) / 2 */
	const double one[] = { 7 };
	ck_assert_double_eq(moe_bench_median(odd, 3), 2.0);
	ck_assert_double_eq(moe_bench_median(even, 4), 2.5);
	ck_assert_double_eq(moe_bench_median(one, 1), 7.0);
	ck_assert(isnan(moe_bench_median(odd, 0)));
	/* the input is not reordered */
	ck_assert_double_eq(odd[0], 3.0);
}
END_TEST

START_TEST(test_summary_cv)
{
	/* 2 4 4 4 5 5 7 9: mean 40/8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32;
	 * sample variance 32/7 = 4.5714286, stddev 2.1380899, cv 2.1380899/5 = 0.42761799. */
	const double x[] = { 2, 4, 4, 4, 5, 5, 7, 9 };
	struct moe_bench_summary s;
	moe_bench_summarize(x, 8, &s);
	ck_assert_uint_eq(s.n, 8);
	ck_assert_double_eq_tol(s.mean, 5.0, 1e-12);
	ck_assert_double_eq_tol(s.median, 4.5, 1e-12); /* (4 + 5) / 2 */
	ck_assert_double_eq(s.min, 2.0);
	ck_assert_double_eq(s.max, 9.0);
	ck_assert_double_eq_tol(s.stddev, 2.1380899, 1e-7);
	ck_assert_double_eq_tol(s.cv, 0.42761799, 1e-7);
	/* one value: no spread */
	moe_bench_summarize(x, 1, &s);
	ck_assert_double_eq(s.stddev, 0.0);
	ck_assert_double_eq(s.cv, 0.0);
}
END_TEST

START_TEST(test_mann_whitney_exact)
{
	struct moe_bench_mwu u;
	/* Fully separated 3 vs 3: U_a = 0; of C(6,3) = 20 equally likely orders one gives U = 0,
	 * so P(U <= 0) = 1/20 and the two-sided p = 2/20 = 0.1. */
	const double a[] = { 1, 2, 3 }, b[] = { 4, 5, 6 };
	ck_assert_int_eq(moe_bench_mann_whitney(a, 3, b, 3, &u), MOE_OK);
	ck_assert(u.exact);
	ck_assert_double_eq(u.u_a, 0.0);
	ck_assert_double_eq(u.u_b, 9.0);
	ck_assert_double_eq_tol(u.p, 0.1, 1e-12);

	/* Interleaved 1 3 5 vs 2 4 6: U_a counts 3>2, 5>2, 5>4 = 3. The null counts of U for 3 vs 3
	 * (partitions in a 3x3 box) are 1,1,2,3,3,3,3,2,1,1 for U = 0..9; P(U <= 3) = 7/20 and the
	 * two-sided p = 0.7. */
	const double c[] = { 1, 3, 5 }, d[] = { 2, 4, 6 };
	ck_assert_int_eq(moe_bench_mann_whitney(c, 3, d, 3, &u), MOE_OK);
	ck_assert_double_eq(u.u_a, 3.0);
	ck_assert_double_eq_tol(u.p, 0.7, 1e-12);

	/* 7 vs 7 separated, as two runs of `bench` that differ clearly: p = 2 / C(14,7) = 2/3432. */
	double e[7], f[7];
	for (int i = 0; i < 7; i++) {
		e[i] = 100 + i;
		f[i] = 200 + i;
	}
	ck_assert_int_eq(moe_bench_mann_whitney(f, 7, e, 7, &u), MOE_OK);
	ck_assert_double_eq(u.u_a, 49.0);
	ck_assert_double_eq_tol(u.p, 2.0 / 3432.0, 1e-15);
}
END_TEST

START_TEST(test_mann_whitney_ties)
{
	/* a = 1 2 3 3, b = 3 4 5 6. Ranks: 1, 2, then three 3s share ranks 3..5 -> 4, then 6 7 8.
	 * R_a = 1+2+4+4 = 11, U_a = 11 - 4*5/2 = 1 (the two 3-vs-3 ties count 1/2 each).
	 * Normal approximation: mean 8; tie term (3^3-3)/(8*7) = 24/56; variance 16/12*(9 - 24/56)
	 * = 11.428571; z = (|1-8| - 0.5)/sqrt(11.428571) = 1.922722; from the normal table
	 * P(Z > 1.9227) = 0.02726, so p = 0.0545. */
	const double a[] = { 1, 2, 3, 3 }, b[] = { 3, 4, 5, 6 };
	struct moe_bench_mwu u;
	ck_assert_int_eq(moe_bench_mann_whitney(a, 4, b, 4, &u), MOE_OK);
	ck_assert(!u.exact);
	ck_assert_double_eq(u.u_a, 1.0);
	ck_assert_double_eq_tol(u.z, 1.922722, 1e-5);
	ck_assert_double_eq_tol(u.p, 0.0545, 5e-4);

	/* All equal: no evidence either way. */
	const double g[] = { 5, 5, 5 };
	ck_assert_int_eq(moe_bench_mann_whitney(g, 3, g, 3, &u), MOE_OK);
	ck_assert_double_eq(u.p, 1.0);

	ck_assert_int_eq(moe_bench_mann_whitney(a, 0, b, 4, &u), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "empty"));
}
END_TEST

START_TEST(test_cost_model)
{
	struct moe_bench_cost c;
	/* Expert, f32, M=4 H=8 I=16: flops 2*4*(2*16*8 + 16*8) = 8*384 = 3072;
	 * bytes: weights 3*16*8*4 = 1536, x and y 2*4*8*4 = 256 -> 1792. */
	struct moe_expert_params e = { .tokens = 4, .hidden = 8, .inter = 16, .weight_dtype = MOE_DTYPE_F32 };
	moe_bench_cost_expert(&e, &c);
	ck_assert_double_eq(c.flops, 3072.0);
	ck_assert_double_eq(c.bytes, 1792.0);
	ck_assert_double_eq(c.tokens, 4.0);
	ck_assert_int_eq(c.compute, MOE_COMPUTE_FP32);
	/* bf16 weights with bf16 activations: weights 3*16*8*2 = 768 + 256 = 1024, bf16 ceiling */
	e.weight_dtype = MOE_DTYPE_BF16;
	e.act_quant = MOE_ACT_BF16;
	moe_bench_cost_expert(&e, &c);
	ck_assert_double_eq(c.bytes, 1024.0);
	ck_assert_int_eq(c.compute, MOE_COMPUTE_BF16);

	/* Routing T=2 E=8 K=2, bf16 logits, f32 bias: 2*8*2 + 8*4 + 2*2*8 = 32 + 32 + 32 = 96, no flops */
	struct moe_route_params r = { .num_experts = 8, .top_k = 2, .logits_dtype = MOE_DTYPE_BF16,
				      .bias_dtype = MOE_DTYPE_F32 };
	moe_bench_cost_route(&r, 2, &c);
	ck_assert_double_eq(c.bytes, 96.0);
	ck_assert_double_eq(c.flops, 0.0);
	ck_assert_double_eq(c.tokens, 2.0);

	/* RMSNorm 3x4, f32 in, bf16 weight and out: 12*(4+2) + 4*2 = 80 bytes, 12*4 = 48 flops */
	struct moe_norm_params n = { .kind = MOE_NORM_RMSNORM, .rows = 3, .cols = 4, .in_dtype = MOE_DTYPE_F32,
				     .weight_dtype = MOE_DTYPE_BF16, .out_dtype = MOE_DTYPE_BF16 };
	moe_bench_cost_norm(&n, &c);
	ck_assert_double_eq(c.bytes, 80.0);
	ck_assert_double_eq(c.flops, 48.0);
	ck_assert_double_eq(c.weight_bytes, 0.0);

	/* Layer T=4 E=8 K=2 H=64 I=32, f32 weights and logits, 2.5 experts read per call on average:
	 * one expert 3*32*64*4 = 24576 bytes, x 2.5 = 61440 weight bytes; + logits 4*8*4 = 128 + x and y
	 * 2*4*64*4 = 2048 -> 63616 bytes. flops 6*64*(4*2*32) = 98304. */
	struct moe_layer_params l = {
		.route = { .num_experts = 8, .top_k = 2, .logits_dtype = MOE_DTYPE_F32 },
		.expert = { .hidden = 64, .inter = 32, .weight_dtype = MOE_DTYPE_F32 },
		.tokens = 4,
	};
	moe_bench_cost_layer(&l, 2.5, &c);
	ck_assert_double_eq(c.weight_bytes, 61440.0);
	ck_assert_double_eq(c.bytes, 63616.0);
	ck_assert_double_eq(c.flops, 98304.0);
	/* the expert's weight bytes: 3*16*8*2 = 768 (bf16, from above) */
	moe_bench_cost_expert(&e, &c);
	ck_assert_double_eq(c.weight_bytes, 768.0);
}
END_TEST

static struct moe_bench_result *fake(struct moe_bench_results *r, const char *key, const char *backend,
				     double ns)
{
	struct moe_bench_result *e = moe_bench_results_add(r);
	snprintf(e->key, sizeof e->key, "%s", key);
	snprintf(e->backend, sizeof e->backend, "%s", backend);
	snprintf(e->name, sizeof e->name, "%s/%s", key, backend);
	e->t.reps = 7;
	for (int i = 0; i < 7; i++)
		e->t.real_ns[i] = e->t.cpu_ns[i] = ns + (i - 3); /* median ns */
	e->cold = true;
	e->cost = (struct moe_bench_cost){ .flops = 1e9, .bytes = 1e6, .tokens = 10, .working_set = 1000000 };
	return e;
}

START_TEST(test_derive_roofline_speedup)
{
	struct moe_calibration cal = { .count = 1 };
	cal.r[0] = (struct moe_roofline){ .threads = 1, .fp32_gflops = 100, .bf16_gflops = 200,
					 .bw_gbs = { 400, 200, 100, 10 } };
	struct moe_bench_results r = { 0 };
	fake(&r, "expert/x", "ref", 40e6);
	fake(&r, "expert/x", "fast", 10e6);
	fake(&r, "expert/x", "openblas", 20e6);
	moe_bench_results_derive(&r, &cal, NULL);
	const struct moe_bench_result *f = &r.v[1];
	/* median 10 ms; 1e9 flops -> 100 GFLOP/s; 1e6 bytes / 1e7 ns = 0.1 GB/s; 10 tokens/10 ms = 1000/s */
	ck_assert_double_eq_tol(f->real.median, 10e6, 1e-6);
	ck_assert_double_eq_tol(f->gflops, 100.0, 1e-9);
	ck_assert_double_eq_tol(f->gbps, 0.1, 1e-12);
	ck_assert_double_eq_tol(f->tokens_per_s, 1000.0, 1e-9);
	/* cold -> DRAM; roofline max(1e9/100, 1e6/10) = max(1e7, 1e5) ns = 10 ms -> fraction 1.0 */
	ck_assert_int_eq(f->level, MOE_LEVEL_DRAM);
	ck_assert_double_eq_tol(f->roof_ns, 1e7, 1e-3);
	ck_assert_double_eq_tol(f->roof_frac, 1.0, 1e-9);
	/* speedups: 40/10 against ref, 20/10 against openblas, no torch row */
	ck_assert_double_eq_tol(f->speedup_ref, 4.0, 1e-12);
	ck_assert_double_eq_tol(f->speedup_openblas, 2.0, 1e-12);
	ck_assert(isnan(f->speedup_torch));
	/* bf16 compute takes the bf16 ceiling: 1e9/200 = 5e6 ns -> fraction 0.5 of the 10 ms median */
	r.v[1].cost.compute = MOE_COMPUTE_BF16;
	moe_bench_results_derive(&r, &cal, NULL);
	ck_assert_double_eq_tol(r.v[1].roof_frac, 0.5, 1e-9);
	/* without calibration the fraction is unknown, not zero */
	moe_bench_results_derive(&r, NULL, NULL);
	moe_bench_results_free(&r);
}
END_TEST

START_TEST(test_derive_threads_ggml_scaling)
{
	struct moe_calibration cal = { .count = 1 };
	cal.r[0] = (struct moe_roofline){ .threads = 1, .fp32_gflops = 100, .bf16_gflops = 200,
					 .bw_gbs = { 400, 200, 100, 10 } };
	struct moe_bench_results r = { 0 };
	/* --scaling rows: the same case and backend at 1 and 2 threads, 2 threads squeezed onto 1 core */
	struct moe_bench_result *a = fake(&r, "layer/x/threads:1", "fast", 30e6);
	struct moe_bench_result *b = fake(&r, "layer/x/threads:2", "fast", 20e6);
	snprintf(a->base, sizeof a->base, "layer/x");
	snprintf(b->base, sizeof b->base, "layer/x");
	b->threads = 2;
	b->cores = 1;
	fake(&r, "layer/x/threads:2", "ggml-bf16", 40e6);
	fake(&r, "layer/x/threads:2", "ggml-q4_0", 25e6);
	r.v[1].cost.weight_bytes = 4e5;
	moe_bench_results_derive(&r, &cal, NULL);
	const struct moe_bench_result *t2 = &r.v[1];
	/* 30 ms / 20 ms at one thread */
	ck_assert_double_eq_tol(t2->speedup_1t, 1.5, 1e-9);
	ck_assert(isnan(r.v[0].speedup_1t));
	/* the faster ggml row (25 ms) over 20 ms */
	ck_assert_double_eq_tol(t2->speedup_ggml, 1.25, 1e-9);
	/* ceilings of the 1 core it had, not of 2: max(1e9/100, 1e6/10) ns = 10 ms over 20 ms = 0.5 */
	ck_assert_double_eq_tol(t2->roof_frac, 0.5, 1e-9);
	/* weight bytes 4e5 / 2e7 ns = 0.02 GB/s */
	ck_assert_double_eq_tol(t2->weight_gbps, 0.02, 1e-12);
	/* with the 2 cores it claims, the ceiling doubles: 5 ms / 20 ms */
	r.v[1].cores = 2;
	moe_bench_results_derive(&r, &cal, NULL);
	ck_assert_double_eq_tol(r.v[1].roof_frac, 0.25, 1e-9);
	moe_bench_results_free(&r);
}
END_TEST

START_TEST(test_group_keeps_keys_together)
{
	/* A/ref, B/ref, then A/torch merged at the end: grouping gives A/ref, A/torch, B/ref. */
	struct moe_bench_results r = { 0 };
	fake(&r, "route/a", "ref", 100);
	fake(&r, "route/b", "ref", 100);
	fake(&r, "route/a", "torch", 100);
	ck_assert_int_eq(moe_bench_results_group(&r), MOE_OK);
	ck_assert_str_eq(r.v[0].name, "route/a/ref");
	ck_assert_str_eq(r.v[1].name, "route/a/torch");
	ck_assert_str_eq(r.v[2].name, "route/b/ref");
	moe_bench_results_free(&r);
}
END_TEST

static volatile long calls;

static void count_body(void *arg, int tid, int64_t iters)
{
	for (int64_t i = 0; i < iters; i++)
		calls = calls + 1;
}

static void sleep_body(void *arg, int tid, int64_t iters)
{
	struct timespec ts = { 0, 5000000 };
	for (int64_t i = 0; i < iters; i++)
		nanosleep(&ts, NULL);
}

START_TEST(test_measure_bookkeeping)
{
	struct moe_bench_pool *pool;
	ck_assert_int_eq(moe_bench_pool_create(1, &pool), MOE_OK);
	struct moe_bench_config cfg = { .min_time = 0.001, .reps = 7, .threads = 1 };
	struct moe_bench_timing t;
	calls = 0;
	ck_assert_int_eq(moe_bench_measure(pool, count_body, NULL, &cfg, &t), MOE_OK);
	ck_assert_int_eq(t.reps, 7);
	ck_assert_int_ge(t.iters, 1);
	/* at least the first call, the warm-up batch and 7 repetitions of iters calls each */
	ck_assert_int_ge(calls, 1 + t.iters + 7 * t.iters);
	for (int i = 0; i < 7; i++)
		ck_assert(t.real_ns[i] >= 0);

	/* A 5 ms call in a 35 ms budget: the first call, a warm-up and 7 samples (45 ms) do not fit, so
	 * fewer samples are taken: at most 35/5 - 2 = 5, and at least the floor of 3. */
	cfg.budget = 0.035;
	ck_assert_int_eq(moe_bench_measure(pool, sleep_body, NULL, &cfg, &t), MOE_OK);
	ck_assert_int_ge(t.reps, MOE_BENCH_FLOOR_REPS);
	ck_assert_int_le(t.reps, 5);
	ck_assert_int_eq(t.iters, 1);

	/* A 5 ms call cannot fit first call + warm-up + 3 samples (25 ms) into 10 ms: refused, saying why. */
	cfg.budget = 0.01;
	ck_assert_int_eq(moe_bench_measure(pool, sleep_body, NULL, &cfg, &t), MOE_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "budget"));

	cfg.reps = 3;
	ck_assert_int_eq(moe_bench_measure(pool, count_body, NULL, &cfg, &t), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "reps=3"));
	moe_bench_pool_destroy(pool);
}
END_TEST

static int seen[4];

static void mark(void *arg, int tid)
{
	seen[tid]++;
}

START_TEST(test_pool_runs_every_thread)
{
	struct moe_bench_pool *pool;
	ck_assert_int_eq(moe_bench_pool_create(3, &pool), MOE_OK);
	ck_assert_int_eq(moe_bench_pool_threads(pool), 3);
	memset(seen, 0, sizeof seen);
	moe_bench_pool_run(pool, mark, NULL);
	moe_bench_pool_run(pool, mark, NULL);
	ck_assert_int_eq(seen[0], 2);
	ck_assert_int_eq(seen[1], 2);
	ck_assert_int_eq(seen[2], 2);
	ck_assert_ptr_nonnull(strstr(moe_bench_pool_binding(pool), "thread 2:"));
	moe_bench_pool_destroy(pool);
	ck_assert_int_eq(moe_bench_pool_create(0, &pool), MOE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_pick_cpus)
{
	/* n threads on the c cores this process may use: min(n, c) distinct, wrapping around */
	const int c = moe_bench_cores_available();
	ck_assert_int_ge(c, 1);
	int cpus[257];
	ck_assert_int_eq(moe_bench_pick_cpus(c + 1, cpus), c);
	ck_assert_int_eq(cpus[c], cpus[0]);
	for (int i = 1; i < c; i++)
		ck_assert_int_ne(cpus[i], cpus[0]);
	ck_assert_int_eq(moe_bench_pick_cpus(1, cpus), 1);
}
END_TEST

START_TEST(test_case_list)
{
	struct moe_bench_options o = { .op_mask = 1u << MOE_OP_ROUTE };
	o.models[0] = "qwen3-30b-a3b";
	struct moe_bench_case *c;
	size_t n;
	ck_assert_int_eq(moe_bench_build_cases(&o, &c, &n), MOE_OK);
	/* routing at T in {1, 16, 256, 4096} */
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(c[3].key, "route/qwen3-30b-a3b/RenormalizeNaive-bf16/T:4096");
	ck_assert_int_eq(c[0].u.route.p.num_experts, 128);
	ck_assert_int_eq(c[0].u.route.p.top_k, 8);
	free(c);

	/* expert: 6 token counts x warm/cold, plus the f32 copy of Qwen3 for the OpenBLAS baseline */
	o.op_mask = 1u << MOE_OP_EXPERT;
	ck_assert_int_eq(moe_bench_build_cases(&o, &c, &n), MOE_OK);
	ck_assert_uint_eq(n, 24);
	ck_assert_str_eq(c[0].key, "expert/qwen3-30b-a3b/W=f32.A=none/M:1/warm");
	ck_assert(c[23].cold);
	free(c);

	/* layer: T in {1, 4, 16, 64, 256, 512, 2048}, warm then cold */
	o.op_mask = 1u << MOE_OP_LAYER;
	ck_assert_int_eq(moe_bench_build_cases(&o, &c, &n), MOE_OK);
	ck_assert_uint_eq(n, 14);
	ck_assert_str_eq(c[0].key, "layer/qwen3-30b-a3b/W=bf16.A=bf16/T:1/warm");
	ck_assert_str_eq(c[13].key, "layer/qwen3-30b-a3b/W=bf16.A=bf16/T:2048/cold");
	ck_assert(!c[6].cold && c[7].cold);
	free(c);

	/* --scaling: the layer (14) and the expert at M in {64, 256, 1024} warm and cold in both formats (12) */
	o.op_mask = 0;
	o.scaling = true;
	ck_assert_int_eq(moe_bench_build_cases(&o, &c, &n), MOE_OK);
	ck_assert_uint_eq(n, 26);
	free(c);
	o.scaling = false;

	o.models[0] = "gpt-5";
	ck_assert_int_eq(moe_bench_build_cases(&o, &c, &n), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "gpt-5"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench");
	TCase *tc = tcase_create("bench");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_median_odd_even);
	tcase_add_test(tc, test_summary_cv);
	tcase_add_test(tc, test_mann_whitney_exact);
	tcase_add_test(tc, test_mann_whitney_ties);
	tcase_add_test(tc, test_cost_model);
	tcase_add_test(tc, test_derive_roofline_speedup);
	tcase_add_test(tc, test_derive_threads_ggml_scaling);
	tcase_add_test(tc, test_pick_cpus);
	tcase_add_test(tc, test_group_keeps_keys_together);
	tcase_add_test(tc, test_measure_bookkeeping);
	tcase_add_test(tc, test_pool_runs_every_thread);
	tcase_add_test(tc, test_case_list);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
