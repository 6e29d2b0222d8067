/* Tests of ISA detection, the registry and run-time dispatch: MOE_MAX_ISA capping (set in main()
 * before the first dispatch query, since dispatch reads it once), MOE_VERBOSE's report, the layout
 * of the registry (reference, whole tables, one single-variant table per list-file line), the
 * per-problem choice of the whole tables and their fallback to the reference. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "moe/moe.h"

static char verbose_report[8192];

START_TEST(test_dispatch_honours_cap)
{
	const struct moe_backend *d = moe_backend_dispatched();
	const char *want = moe_isa_hardware() >= MOE_ISA_AVX2 ? "avx2" : "ref";
	ck_assert_str_eq(d->name, want);
	ck_assert_ptr_eq(d, moe_backend_for_isa(moe_isa_hardware() >= MOE_ISA_AVX2 ? MOE_ISA_AVX2 : MOE_ISA_SCALAR));
	/* read once: a later change of the environment does not move dispatch */
	setenv("MOE_MAX_ISA", "scalar", 1);
	ck_assert_ptr_eq(moe_backend_dispatched(), d);
	setenv("MOE_MAX_ISA", "avx2", 1);
}
END_TEST

START_TEST(test_verbose_report)
{
	if (moe_isa_hardware() < MOE_ISA_AVX2)
		return;
	ck_assert_msg(strstr(verbose_report, "dispatch uses table 'avx2'"), "report: %s", verbose_report);
	ck_assert_msg(strstr(verbose_report, "MOE_MAX_ISA avx2"), "report: %s", verbose_report);
	/* one line per op, the chosen kernel first, the reference last */
	ck_assert_msg(strstr(verbose_report, "route      moe_route__avx2, ref"), "report: %s", verbose_report);
	ck_assert_msg(strstr(verbose_report, "norm       moe_norm__avx2, ref"), "report: %s", verbose_report);
	ck_assert_msg(!strstr(verbose_report, "avx512,"), "an AVX-512 kernel offered under the avx2 cap: %s",
		      verbose_report);
	int lines = 0;
	for (const char *c = verbose_report; *c; c++)
		lines += *c == '\n';
	ck_assert_int_eq(lines, 1 + MOE_OP_COUNT);
}
END_TEST

/* moe_isa_effective reads the environment on every call: valid caps lower it, never raise it;
 * unknown names and empty values are ignored. */
START_TEST(test_isa_effective)
{
	const enum moe_isa hw = moe_isa_hardware();
	setenv("MOE_MAX_ISA", "scalar", 1);
	ck_assert_int_eq(moe_isa_effective(), MOE_ISA_SCALAR);
	setenv("MOE_MAX_ISA", "avx512", 1);
	ck_assert_int_eq(moe_isa_effective(), hw < MOE_ISA_AVX512 ? hw : MOE_ISA_AVX512);
	setenv("MOE_MAX_ISA", "avx512bf16", 1);
	ck_assert_int_eq(moe_isa_effective(), hw < MOE_ISA_AVX512_BF16 ? hw : MOE_ISA_AVX512_BF16);
	setenv("MOE_MAX_ISA", "avx512amx", 1);
	ck_assert_int_eq(moe_isa_effective(), hw);
	setenv("MOE_MAX_ISA", "sse9", 1);
	ck_assert_int_eq(moe_isa_effective(), hw);
	setenv("MOE_MAX_ISA", "", 1);
	ck_assert_int_eq(moe_isa_effective(), hw);
	unsetenv("MOE_MAX_ISA");
	ck_assert_int_eq(moe_isa_effective(), hw);
	setenv("MOE_MAX_ISA", "avx2", 1);

	enum moe_isa isa;
	for (int i = 0; i < MOE_ISA_COUNT; i++) {
		ck_assert_int_eq(moe_isa_parse(moe_isa_name((enum moe_isa)i), &isa), MOE_OK);
		ck_assert_int_eq(isa, i);
	}
	ck_assert_int_eq(moe_isa_parse("avx1024", &isa), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "avx1024"));
	ck_assert_str_eq(moe_isa_name(MOE_ISA_COUNT), "?");
}
END_TEST

START_TEST(test_registry_layout)
{
	const size_t n = moe_builtin_count();
	ck_assert_uint_ge(n, 5 + 4); /* ref, four whole tables, at least the two route and two norm kernels */
	const struct moe_builtin *ref = moe_builtin_at(0);
	ck_assert_ptr_eq(ref->table, moe_backend_reference());
	ck_assert_int_eq(ref->op, MOE_OP_COUNT);
	static const char *const whole[] = { "avx2", "avx512", "avx512bf16", "avx512amx" };
	for (int i = 0; i < 4; i++) {
		const struct moe_builtin *b = moe_builtin_at((size_t)i + 1);
		ck_assert_str_eq(b->table->name, whole[i]);
		ck_assert_int_eq(b->isa, (enum moe_isa)(i + 1));
		ck_assert_int_eq(b->op, MOE_OP_COUNT);
		ck_assert_ptr_eq(moe_builtin_find(whole[i]), b);
		ck_assert_ptr_eq(moe_backend_for_isa(b->isa), b->table);
		for (int op = 0; op < MOE_OP_COUNT; op++)
			ck_assert(moe_backend_provides(b->table, (enum moe_op)op, NULL));
	}
	/* every single-variant table provides exactly its op, carries a supports() and is named after it */
	for (size_t i = 5; i < n; i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		ck_assert_int_lt(b->op, MOE_OP_COUNT);
		ck_assert_int_ge(b->isa, MOE_ISA_AVX2);
		ck_assert_ptr_nonnull(b->table->supports);
		ck_assert_uint_eq(b->table->abi_version, MOE_BACKEND_ABI_VERSION);
		char prefix[32];
		snprintf(prefix, sizeof prefix, "moe_%s_", moe_op_name(b->op));
		ck_assert_msg(strncmp(b->table->name, prefix, strlen(prefix)) == 0, "%s", b->table->name);
		for (int op = 0; op < MOE_OP_COUNT; op++)
			ck_assert(moe_backend_provides(b->table, (enum moe_op)op, NULL) == (op == (int)b->op));
		ck_assert_ptr_eq(moe_builtin_find(b->table->name), b);
	}
	ck_assert_ptr_null(moe_builtin_at(n));
	ck_assert_ptr_null(moe_builtin_find("no-such-table"));
	ck_assert_ptr_null(moe_builtin_find(NULL));
	ck_assert_ptr_eq(moe_backend_for_isa(MOE_ISA_SCALAR), moe_backend_reference());
}
END_TEST

/* The whole tables choose per problem: never a kernel above their level, the preferred
 * variant when it accepts the problem, the reference when none does. */
START_TEST(test_pick)
{
	for (int level = 0; level < MOE_ISA_COUNT; level++) {
		for (int op = 0; op < MOE_OP_COUNT; op++) {
			const struct moe_builtin *b = moe_builtin_pick((enum moe_isa)level, (enum moe_op)op, NULL);
			ck_assert(b == moe_builtin_at(0) || (b->op == (enum moe_op)op && (int)b->isa <= level));
		}
	}
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_SCALAR, MOE_OP_NORM, NULL), moe_builtin_at(0));
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX2, MOE_OP_NORM, NULL), moe_builtin_find("moe_norm__avx2"));
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_NORM, NULL), moe_builtin_find("moe_norm__avx512"));
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512_BF16, MOE_OP_ROUTE, NULL), moe_builtin_find("moe_route__avx512"));
	struct moe_route_params wide = moe_route_params_default(MOE_ROUTE_TOPK, 2048, 4);
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_ROUTE, &wide), moe_builtin_at(0));
}
END_TEST

/* Calls through the whole tables reach the picked kernel: bitwise the variant's result where it
 * applies, bitwise the reference's where no variant accepts the problem (E = 2048). */
START_TEST(test_whole_tables_call_through)
{
	if (moe_isa_hardware() < MOE_ISA_AVX2)
		return;
	const int E = 2048, K = 4;
	float *lg = malloc(sizeof(float) * 2 * (size_t)E);
	ck_assert_ptr_nonnull(lg);
	for (int i = 0; i < 2 * E; i++)
		lg[i] = (float)((i * 7919) % 1013) / 97.0f - 5.0f;
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_RENORMALIZE, E, K);
	int32_t ir[8], ik[8];
	float wr[8], wk[8];
	moe_route__ref(&p, 2, lg, NULL, ir, wr);
	moe_backend_for_isa(MOE_ISA_AVX2)->route(&p, 2, lg, NULL, ik, wk);
	ck_assert(memcmp(ir, ik, sizeof ir) == 0 && memcmp(wr, wk, sizeof wr) == 0);

	p.num_experts = 128;
	const struct moe_builtin *v = moe_builtin_find("moe_route__avx2");
	v->table->route(&p, 2, lg, NULL, ir, wr);
	moe_backend_for_isa(MOE_ISA_AVX2)->route(&p, 2, lg, NULL, ik, wk);
	ck_assert(memcmp(ir, ik, sizeof ir) == 0 && memcmp(wr, wk, sizeof wr) == 0);

	struct moe_norm_params np = { .kind = MOE_NORM_RMSNORM, .rows = 2, .cols = 100, .eps = 1e-5f,
				      .in_dtype = MOE_DTYPE_F32, .weight_dtype = MOE_DTYPE_F32,
				      .out_dtype = MOE_DTYPE_F32 };
	float y1[200], y2[200];
	const struct moe_builtin *nv = moe_builtin_find("moe_norm__avx2");
	nv->table->norm(&np, lg, lg + 1000, y1);
	moe_backend_for_isa(MOE_ISA_AVX2)->norm(&np, lg, lg + 1000, y2);
	ck_assert(memcmp(y1, y2, sizeof y1) == 0);
	free(lg);
}
END_TEST

/* Runs fn with stderr captured into out (n bytes). */
static void capture_stderr(void (*fn)(void), char *out, size_t n)
{
	fflush(stderr);
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	const int saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(tmp), 2), 0);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	const size_t got = fread(out, 1, n - 1, tmp);
	out[got] = '\0';
	fclose(tmp);
}

static int count_of(const char *hay, const char *needle)
{
	int c = 0;
	for (const char *at = strstr(hay, needle); at; at = strstr(at + 1, needle))
		c++;
	return c;
}

/* Size-aware dispatch of the router: the AVX-512 router routes short calls on its per-token
 * pipeline, which measured fastest at every T (registry.c), so no size rule passes it over: the
 * avx512 levels take it at T = 1 and T = 4096, the avx2 level its own, and a problem no variant
 * accepts (E = 2048) goes to the reference at any T. moe_builtin_pick is the unsized pick. */
START_TEST(test_pick_sized_route)
{
	const struct moe_builtin *v2 = moe_builtin_find("moe_route__avx2"), *v5 = moe_builtin_find("moe_route__avx512");
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT; m++) {
		struct moe_route_params p = moe_route_params_default((enum moe_routing_method)m, 128, m == MOE_ROUTE_LLAMA4 ? 1 : 8);
		static const int64_t Ts[] = { 1, 2, 4, 8, 16, 64, 256, 4096, -1 };
		for (size_t i = 0; i < sizeof Ts / sizeof Ts[0]; i++) {
			ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX512_BF16, MOE_OP_ROUTE, &p, Ts[i]), v5);
			ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX512, MOE_OP_ROUTE, &p, Ts[i]), v5);
			ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX2, MOE_OP_ROUTE, &p, Ts[i]), v2);
			ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_SCALAR, MOE_OP_ROUTE, &p, Ts[i]), moe_builtin_at(0));
		}
		ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_ROUTE, &p), v5);
	}
	struct moe_route_params wide = moe_route_params_default(MOE_ROUTE_TOPK, 2048, 4);
	ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX512, MOE_OP_ROUTE, &wide, 1), moe_builtin_at(0));
	ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX512, MOE_OP_ROUTE, &wide, 4096), moe_builtin_at(0));

	char why[640];
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_RENORMALIZE, 128, 8);
	ck_assert_ptr_eq(moe_builtin_pick_explain(MOE_ISA_AVX512, MOE_OP_ROUTE, &p, 1, why, sizeof why), v5);
	ck_assert_msg(strstr(why, "first variant of ISA <= avx512") && strstr(why, "at T=1"), "%s", why);
	ck_assert_ptr_eq(moe_builtin_pick_explain(MOE_ISA_AVX512, MOE_OP_ROUTE, &wide, 4096, why, sizeof why),
			 moe_builtin_at(0));
	ck_assert_msg(strstr(why, "no variant of ISA <= avx512 accepts") && strstr(why, "at T=4096"), "%s", why);
	/* the reason of a truncated buffer is still a string */
	moe_builtin_pick_explain(MOE_ISA_AVX512, MOE_OP_ROUTE, &p, 1, why, 8);
	ck_assert_uint_eq(strlen(why), 7);
}
END_TEST

/* The norm rule (dispatch_rules.inc): on bf16 rows the one-pass moe_norm__avx512bf16_dot runs
 * LayerNorm and f32 output, RMSNorm with bf16 output goes to moe_norm__avx512bf16, at 1 row and
 * at 4096 rows; the avx512 level never sees an AVX512_BF16 kernel. The norm's size is its own
 * (rows * cols): the size argument does not change the pick. */
START_TEST(test_pick_sized_norm_rule)
{
	const struct moe_builtin *dot = moe_builtin_find("moe_norm__avx512bf16_dot");
	const struct moe_builtin *bf = moe_builtin_find("moe_norm__avx512bf16");
	const struct moe_builtin *v5 = moe_builtin_find("moe_norm__avx512");
	ck_assert(dot && bf && v5);
	struct moe_norm_params np = { .kind = MOE_NORM_RMSNORM, .rows = 1, .cols = 4096, .eps = 1e-5f,
				      .in_dtype = MOE_DTYPE_BF16, .weight_dtype = MOE_DTYPE_BF16,
				      .out_dtype = MOE_DTYPE_BF16 };
	for (int64_t rows = 1; rows <= 4096; rows *= 4096) {
		np.rows = rows;
		np.kind = MOE_NORM_RMSNORM;
		np.out_dtype = MOE_DTYPE_BF16;
		ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX512_BF16, MOE_OP_NORM, &np, -1), bf);
		ck_assert_ptr_eq(moe_builtin_pick_sized(MOE_ISA_AVX512_BF16, MOE_OP_NORM, &np, 7), bf);
		ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512_BF16, MOE_OP_NORM, &np), bf);
		ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512, MOE_OP_NORM, &np), v5);
		np.out_dtype = MOE_DTYPE_F32;
		ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512_BF16, MOE_OP_NORM, &np), dot);
		np.kind = MOE_NORM_LAYERNORM;
		np.out_dtype = MOE_DTYPE_BF16;
		ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512_BF16, MOE_OP_NORM, &np), dot);
	}
	char why[640];
	np.kind = MOE_NORM_RMSNORM;
	np.rows = 2;
	ck_assert_ptr_eq(moe_builtin_pick_explain(MOE_ISA_AVX512_BF16, MOE_OP_NORM, &np, -1, why, sizeof why), bf);
	ck_assert_msg(strstr(why, "rule at elements=8192: moe_norm__avx512bf16_dot passed over (RMSNorm with bf16 output)"),
		      "%s", why);
	/* no problem: every variant is a candidate, no class rule applies */
	ck_assert_ptr_eq(moe_builtin_pick(MOE_ISA_AVX512_BF16, MOE_OP_NORM, NULL), dot);
}
END_TEST

static void route_twice_t1_and_t4096(void)
{
	static float lg[4096 * 128];
	static int32_t ids[4096 * 8];
	static float w[4096 * 8];
	for (int i = 0; i < 4096 * 128; i++)
		lg[i] = (float)((int)(((unsigned)i * 7919u) % 1013u)) / 97.0f - 5.0f;
	struct moe_route_params p = moe_route_params_default(MOE_ROUTE_RENORMALIZE, 128, 8);
	const struct moe_backend *t = moe_backend_for_isa(MOE_ISA_AVX2);
	t->route(&p, 1, lg, NULL, ids, w);
	t->route(&p, 1, lg, NULL, ids, w);
	t->route(&p, 4096, lg, NULL, ids, w);
	struct moe_route_params wide = moe_route_params_default(MOE_ROUTE_TOPK, 2048, 4);
	t->route(&wide, 1, lg, NULL, ids, w);
	t->route(&wide, 1, lg, NULL, ids, w);
	if (moe_isa_hardware() >= MOE_ISA_AVX512_BF16) {
		/* bf16 rows from the logits' bits */
		struct moe_norm_params np = { .kind = MOE_NORM_RMSNORM, .rows = 2, .cols = 256, .eps = 1e-5f,
					      .in_dtype = MOE_DTYPE_BF16, .weight_dtype = MOE_DTYPE_F32,
					      .out_dtype = MOE_DTYPE_BF16 };
		moe_backend_for_isa(MOE_ISA_AVX512_BF16)->norm(&np, lg, lg + 4096, ids);
		moe_backend_for_isa(MOE_ISA_AVX512_BF16)->norm(&np, lg, lg + 4096, ids);
	}
}

/* MOE_VERBOSE=1 (set in main): each distinct decision once, naming the variant and the rule. */
START_TEST(test_verbose_decisions)
{
	if (moe_isa_hardware() < MOE_ISA_AVX2)
		return;
	char out[8192];
	capture_stderr(route_twice_t1_and_t4096, out, sizeof out);
	const char *kernel = "moebench: dispatch route (table level avx2): moe_route__avx2, because the first variant "
			     "of ISA <= avx2 (highest ISA, then list order) that accepts the problem at T=1";
	ck_assert_msg(count_of(out, kernel) == 1, "%s", out);
	ck_assert_msg(count_of(out, "moebench: dispatch route (table level avx2): ref, because no variant of ISA <= avx2 "
				    "accepts the problem at T=1") == 1, "%s", out);
	int decisions = 2;
	if (moe_isa_hardware() >= MOE_ISA_AVX512_BF16) {
		ck_assert_msg(count_of(out, "moebench: dispatch norm (table level avx512bf16): moe_norm__avx512bf16, because "
					    "rule at elements=512: moe_norm__avx512bf16_dot passed over (RMSNorm with bf16 "
					    "output): moe_norm__avx512bf16 measured") == 1, "%s", out);
		decisions++;
	}
	/* T=4096 reached the same variant by the same rule: the same decision, not printed again */
	ck_assert_msg(count_of(out, "moebench: dispatch") == decisions, "%s", out);
	capture_stderr(route_twice_t1_and_t4096, out, sizeof out);
	ck_assert_msg(out[0] == '\0', "printed again: %s", out);
}
END_TEST

int main(void)
{
	/* Dispatch reads MOE_MAX_ISA and MOE_VERBOSE once, at its first query: set them first and
	 * catch the report on stderr. */
	setenv("MOE_MAX_ISA", "avx2", 1);
	setenv("MOE_VERBOSE", "1", 1);
	fflush(stderr);
	FILE *tmp = tmpfile();
	const int saved = dup(2);
	if (!tmp || saved < 0 || dup2(fileno(tmp), 2) < 0)
		return EXIT_FAILURE;
	moe_backend_dispatched();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t got = fread(verbose_report, 1, sizeof verbose_report - 1, tmp);
	verbose_report[got] = '\0';
	fclose(tmp);

	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("dispatch");
	tcase_add_test(tc, test_verbose_decisions); /* first: under CK_FORK=no later tests' decisions are seen */
	tcase_add_test(tc, test_dispatch_honours_cap);
	tcase_add_test(tc, test_verbose_report);
	tcase_add_test(tc, test_isa_effective);
	tcase_add_test(tc, test_registry_layout);
	tcase_add_test(tc, test_pick);
	tcase_add_test(tc, test_whole_tables_call_through);
	tcase_add_test(tc, test_pick_sized_route);
	tcase_add_test(tc, test_pick_sized_norm_rule);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
