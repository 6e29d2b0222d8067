/* Tests of the verify engine end to end, in process: case specs (print/parse round trip over the
 * whole quick catalogue, every parse error with its status), --cases files, the quick catalogue on
 * the reference backend (everything PASS), broken in-process backends caught on the op they break,
 * SKIP reasons (not provided, ISA unavailable, profile not supported), the ABI 2 path (route_mt at
 * 1, 2 and 3 threads), the regression file, the JSON report, and golden vectors (export, check,
 * malformed files refused). */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "vcases.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_verify_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct moe_verify_opts opts(unsigned ops)
{
	return (struct moe_verify_opts){ .op_mask = ops, .profile_mask = 7u, .depth = MOE_DEPTH_QUICK, .seed = 1 };
}

START_TEST(test_spec_round_trip)
{
	/* every quick catalogue case prints to a spec that parses back to the same spec and the same
	 * problem */
	for (int op = 0; op < MOE_OP_COUNT; op++) {
		struct moe_vcase_list l = { 0 };
		ck_assert_int_eq(moe_catalogue((enum moe_op)op, MOE_DEPTH_QUICK, 1, 7u, &l), MOE_OK);
		ck_assert_uint_gt(l.n, 0);
		for (size_t i = 0; i < l.n; i++) {
			char a[512], b[512];
			struct moe_vcase c;
			moe_vcase_format(&l.v[i], a, sizeof a);
			ck_assert_msg(moe_vcase_parse(a, &c) == MOE_OK, "%s: %s", a, moe_last_error());
			ck_assert_int_eq(moe_vcase_validate(&c), MOE_OK);
			moe_vcase_format(&c, b, sizeof b);
			ck_assert_str_eq(a, b);
			ck_assert_int_eq(c.seed, l.v[i].seed);
			ck_assert_int_eq(c.T, l.v[i].T);
		}
		moe_vcase_list_free(&l);
	}
}
END_TEST

START_TEST(test_full_catalogue_size)
{
	/* --full promises at least 1e5 routing cases, over every shape, profile and generator */
	struct moe_vcase_list l = { 0 };
	ck_assert_int_eq(moe_catalogue(MOE_OP_ROUTE, MOE_DEPTH_FULL, 1, 7u, &l), MOE_OK);
	ck_assert_uint_ge(l.n, 100000);
	unsigned gens = 0, profiles = 0;
	for (size_t i = 0; i < l.n; i++) {
		gens |= 1u << l.v[i].gen;
		profiles |= 1u << l.v[i].route.profile;
	}
	ck_assert_uint_eq(profiles, 7u);
	for (int g = MOE_GEN_NORMAL; g <= MOE_GEN_SKEWED; g++)
		ck_assert_msg((gens >> g) & 1u, "generator %s missing from the route catalogue", moe_vgen_name((enum moe_vgen)g));
	moe_vcase_list_free(&l);
}
END_TEST

START_TEST(test_spec_errors)
{
	struct moe_vcase c;
	ck_assert_int_eq(moe_vcase_parse("route method=Nope", &c), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "Nope"));
	ck_assert_int_eq(moe_vcase_parse("route E=abc", &c), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "E=abc"));
	ck_assert_int_eq(moe_vcase_parse("route foo=1", &c), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "unknown key 'foo'"));
	ck_assert_int_eq(moe_vcase_parse("bogus E=8", &c), MOE_ERR_FORMAT);
	ck_assert_int_eq(moe_vcase_parse("", &c), MOE_ERR_FORMAT);
	ck_assert_int_eq(moe_vcase_parse("route gen=midpoints", &c), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "does not apply"));
	ck_assert_int_eq(moe_vcase_parse("norm T=3", &c), MOE_ERR_FORMAT);
	ck_assert_int_eq(moe_vcase_parse("route seed=-1", &c), MOE_ERR_FORMAT);
	ck_assert_int_eq(moe_vcase_parse("route K", &c), MOE_ERR_FORMAT);
	ck_assert_int_eq(moe_vcase_parse("route renorm=2", &c), MOE_ERR_FORMAT);
	/* parses, but Llama4 needs K = 1 */
	ck_assert_int_eq(moe_vcase_parse("route method=Llama4 E=16 K=2", &c), MOE_OK);
	ck_assert_int_eq(moe_vcase_validate(&c), MOE_ERR_INVALID_ARG);
	/* NVFP4 needs cols % 16 == 0 */
	ck_assert_int_eq(moe_vcase_parse("quantize dtype=nvfp4 scaling=nvfp4 rows=2 cols=24", &c), MOE_OK);
	ck_assert_int_eq(moe_vcase_validate(&c), MOE_ERR_INVALID_ARG);

	char buf[640];
	ck_assert_int_eq(moe_vcase_parse("route method=DeepSeekV3 profile=vllm E=256 K=8 G=8 TG=4 rsf=2.5 "
					 "bias=f32 T=3 gen=bf16-ties seed=1234", &c), MOE_OK);
	moe_vrepro("X", &c, buf, sizeof buf);
	ck_assert_str_eq(buf, "moebench verify --backend X --op route --case 'route method=DeepSeekV3 profile=vllm "
			      "E=256 K=8 G=8 TG=4 rsf=2.5 bias=f32 T=3 gen=bf16-ties seed=1234'");
}
END_TEST

START_TEST(test_cases_file)
{
	char path[320];
	make_tmpdir();
	snprintf(path, sizeof path, "%s/cases.txt", tmpdir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "# a comment\n\nroute method=Renormalize E=8 K=2 T=2 seed=5  # trailing comment\n"
		   "norm kind=rmsnorm rows=1 cols=8 eps=1e-6 in=f32 w=f32 out=f32 gen=normal seed=2\n");
	fclose(f);
	struct moe_vcase_list l = { 0 };
	ck_assert_int_eq(moe_cases_read(path, &l), MOE_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.v[0].op, MOE_OP_ROUTE);
	ck_assert_int_eq(l.v[0].seed, 5);
	ck_assert_int_eq(l.v[1].op, MOE_OP_NORM);
	moe_vcase_list_free(&l);

	f = fopen(path, "w");
	fprintf(f, "# ok\nroute E=8 K=2\nroute E=8 K=2 frob=1\n");
	fclose(f);
	ck_assert_int_eq(moe_cases_read(path, &l), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), ":3:"));
	moe_vcase_list_free(&l);

	snprintf(path, sizeof path, "%s/missing.txt", tmpdir);
	ck_assert_int_eq(moe_cases_read(path, &l), MOE_ERR_IO);
	moe_vcase_list_free(&l);
	remove_tree(tmpdir);
}
END_TEST

START_TEST(test_quick_reference_all_pass)
{
	struct moe_vreport rep = { 0 };
	struct moe_verify_opts o = opts((1u << MOE_OP_COUNT) - 1);
	ck_assert_int_eq(moe_verify_backend(moe_backend_reference(), MOE_ISA_SCALAR, &o, &rep), MOE_OK);
	for (size_t i = 0; i < rep.n; i++)
		ck_assert_msg(rep.g[i].status == MOE_V_PASS, "%s %s: %s", moe_op_name(rep.g[i].op), rep.g[i].name,
			      moe_vstatus_name(rep.g[i].status));
	/* every op has groups, and the catalogue is not trivially small */
	unsigned seen = 0;
	for (size_t i = 0; i < rep.n; i++)
		seen |= 1u << rep.g[i].op;
	ck_assert_uint_eq(seen, (1u << MOE_OP_COUNT) - 1);
	ck_assert_int_gt(rep.cases, 2000);
	moe_vreport_free(&rep);
}
END_TEST

/* ---- broken backends in process ---- */

static void route_weights_off(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			      int32_t *ids, float *w)
{
	moe_route__ref(p, T, logits, bias, ids, w);
	for (int64_t i = 0; i < T * p->top_k; i++)
		w[i] *= 1.001f; /* 0.1%: about 1.7e4 u, far above every weight budget */
}

static void quantize_flip(const float *x, struct moe_qtensor *q)
{
	moe_quantize__ref(x, q);
	if (moe_qtensor_data_bytes(q))
		((unsigned char *)q->data)[0] ^= 1u;
}

static void dequantize_nan(const struct moe_qtensor *q, float *x)
{
	moe_dequantize__ref(q, x);
	if (q->rows * q->cols > 0)
		x[q->rows * q->cols - 1] = -NAN;
}

static void expert_scaled(const struct moe_expert_params *p, const float *x, const struct moe_expert_weights *w,
			  float *y, void *ws)
{
	moe_expert__ref(p, x, w, y, ws);
	for (int64_t i = 0; i < p->tokens * p->hidden; i++)
		y[i] *= 1.01f;
}

static void layer_rsf_twice(const struct moe_layer_params *p, const float *x, const void *logits, const void *bias,
			    const struct moe_layer_weights *w, float *y, int32_t *ids, float *weights, void *ws)
{
	moe_layer__ref(p, x, logits, bias, w, y, ids, weights, ws);
	for (int64_t i = 0; i < p->tokens * p->expert.hidden; i++)
		y[i] *= 2.0f;
}

static bool decline_vllm(enum moe_op op, const void *problem)
{
	return op != MOE_OP_ROUTE || ((const struct moe_route_params *)problem)->profile != MOE_PROFILE_VLLM;
}

/* The status of the report's groups for op: FAIL if any, else UNTRUSTED if any, else PASS if any,
 * else SKIP. */
static enum moe_vstatus op_status(const struct moe_vreport *rep, enum moe_op op)
{
	int64_t n[4] = { 0 };
	for (size_t i = 0; i < rep->n; i++)
		if (rep->g[i].op == op)
			n[rep->g[i].status]++;
	return n[MOE_V_FAIL] ? MOE_V_FAIL : n[MOE_V_UNTRUSTED] ? MOE_V_UNTRUSTED : n[MOE_V_PASS] ? MOE_V_PASS : MOE_V_SKIP;
}

START_TEST(test_broken_backends_caught)
{
	struct moe_backend b = *moe_backend_reference();
	b.name = "broken";
	b.route = route_weights_off;
	b.quantize = quantize_flip;
	b.dequantize = dequantize_nan;
	b.expert = expert_scaled;
	b.layer = layer_rsf_twice;
	struct moe_vreport rep = { 0 };
	struct moe_verify_opts o = opts((1u << MOE_OP_COUNT) - 1);
	ck_assert_int_eq(moe_verify_backend(&b, MOE_ISA_SCALAR, &o, &rep), MOE_OK);
	ck_assert_int_eq(op_status(&rep, MOE_OP_ROUTE), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_NORM), MOE_V_PASS);
	ck_assert_int_eq(op_status(&rep, MOE_OP_QUANTIZE), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_DEQUANTIZE), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_EXPERT), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_LAYER), MOE_V_FAIL);
	/* a failing group keeps a repro spec and its first mismatches */
	for (size_t i = 0; i < rep.n; i++) {
		if (rep.g[i].status != MOE_V_FAIL)
			continue;
		struct moe_vcase c;
		ck_assert_int_ge(rep.g[i].nfail_kept, 1);
		ck_assert_int_eq(moe_vcase_parse(rep.g[i].fail_spec[0], &c), MOE_OK);
		ck_assert_int_eq(c.op, rep.g[i].op);
		ck_assert_int_ge(rep.g[i].fail[0].nmis, 1);
	}
	/* two worker threads give the same report, failures kept included */
	struct moe_vreport rep2 = { 0 };
	o.jobs = 2;
	ck_assert_int_eq(moe_verify_backend(&b, MOE_ISA_SCALAR, &o, &rep2), MOE_OK);
	ck_assert_uint_eq(rep2.n, rep.n);
	ck_assert_int_eq(rep2.cases, rep.cases);
	for (size_t i = 0; i < rep.n; i++) {
		ck_assert_str_eq(rep2.g[i].name, rep.g[i].name);
		ck_assert_int_eq(rep2.g[i].status, rep.g[i].status);
		ck_assert_mem_eq(rep2.g[i].n, rep.g[i].n, sizeof rep.g[i].n);
		ck_assert_str_eq(rep2.g[i].fail_spec[0], rep.g[i].fail_spec[0]);
	}
	moe_vreport_free(&rep2);
	moe_vreport_free(&rep);
}
END_TEST

START_TEST(test_skip_reasons)
{
	struct moe_backend b = { .abi_version = MOE_BACKEND_ABI_VERSION, .struct_size = sizeof b, .name = "partial",
				 .route = moe_route__ref, .supports = decline_vllm };
	struct moe_vreport rep = { 0 };
	struct moe_verify_opts o = opts((1u << MOE_OP_ROUTE) | (1u << MOE_OP_NORM));
	ck_assert_int_eq(moe_verify_backend(&b, MOE_ISA_SCALAR, &o, &rep), MOE_OK);
	bool norm_skip = false, vllm_skip = false, other_pass = false;
	for (size_t i = 0; i < rep.n; i++) {
		const struct moe_vgroup *g = &rep.g[i];
		if (g->op == MOE_OP_NORM)
			norm_skip = g->status == MOE_V_SKIP && !strcmp(g->skip_reason, "not provided");
		if (g->op == MOE_OP_ROUTE && strstr(g->name, " vllm"))
			vllm_skip = g->status == MOE_V_SKIP && strstr(g->skip_reason, "profile not supported");
		if (g->op == MOE_OP_ROUTE && strstr(g->name, " hf"))
			other_pass = g->status == MOE_V_PASS;
	}
	ck_assert(norm_skip && vllm_skip && other_pass);
	moe_vreport_free(&rep);

	/* a backend whose kernels need an ISA beyond this CPU's */
	ck_assert_int_eq(moe_verify_backend(moe_backend_reference(), (enum moe_isa)MOE_ISA_COUNT, &o, &rep), MOE_OK);
	ck_assert_uint_eq(rep.n, 2);
	for (size_t i = 0; i < rep.n; i++) {
		ck_assert_int_eq(rep.g[i].status, MOE_V_SKIP);
		ck_assert_ptr_nonnull(strstr(rep.g[i].skip_reason, "ISA unavailable"));
	}
	moe_vreport_free(&rep);
}
END_TEST

/* ABI 2: a table with route_mt is run again through it at 1, 2 and 3 threads. A correct one
 * passes and the report says the path ran; one whose weights move by one ULP when it has more than
 * one thread fails on the bitwise comparison only; one wrong on every thread count fails with the
 * 1-thread label. */
static void route_mt_ok(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			int32_t *ids, float *weights, const struct moe_threads *th)
{
	(void)th;
	moe_route__ref(p, T, logits, bias, ids, weights);
}

static void route_mt_by_count(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			      int32_t *ids, float *weights, const struct moe_threads *th)
{
	moe_route__ref(p, T, logits, bias, ids, weights);
	if (th->count > 1 && T > 0)
		weights[0] = nextafterf(weights[0], INFINITY);
}

static void route_mt_zero(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			  int32_t *ids, float *weights, const struct moe_threads *th)
{
	(void)th;
	moe_route__ref(p, T, logits, bias, ids, weights);
	for (int64_t i = 0; i < T * p->top_k; i++)
		weights[i] = 0.0f;
}

/* The first FAIL reason of the route groups of rep ("" when none failed); whether every group ran
 * route_mt. */
static const char *route_mt_report(moe_route_mt_fn *fn, struct moe_vreport *rep, bool *all_ran)
{
	struct moe_backend b = *moe_backend_reference();
	b.name = "mt";
	b.route_mt = fn;
	struct moe_verify_opts o = opts(1u << MOE_OP_ROUTE);
	o.profile_mask = 1u << MOE_PROFILE_VLLM;
	ck_assert_int_eq(moe_verify_backend(&b, MOE_ISA_SCALAR, &o, rep), MOE_OK);
	ck_assert_uint_gt(rep->n, 3);
	*all_ran = true;
	const char *reason = "";
	for (size_t i = 0; i < rep->n; i++) {
		const struct moe_vgroup *g = &rep->g[i];
		*all_ran = *all_ran && strstr(g->ran, "route_mt 1/2/3 threads");
		if (g->status == MOE_V_FAIL && !reason[0])
			reason = g->fail[0].reason;
	}
	return reason;
}

START_TEST(test_abi2_route_threads)
{
	struct moe_vreport rep = { 0 };
	bool ran;
	ck_assert_str_eq(route_mt_report(route_mt_ok, &rep, &ran), "");
	ck_assert(ran);
	ck_assert_uint_eq(moe_vreport_count(&rep, MOE_V_FAIL), 0);
	moe_vreport_free(&rep);

	const char *why = route_mt_report(route_mt_by_count, &rep, &ran);
	ck_assert_msg(strstr(why, "route_mt: 2 threads give other bits than 1 thread at weights[0]"), "reason '%s'", why);
	moe_vreport_free(&rep);

	why = route_mt_report(route_mt_zero, &rep, &ran);
	ck_assert_msg(!strncmp(why, "route_mt, 1 thread: ", 20), "reason '%s'", why);
	moe_vreport_free(&rep);
}
END_TEST

START_TEST(test_regressions_file)
{
	struct moe_vcase_list l = { 0 };
	ck_assert_int_eq(moe_cases_read(MOE_SOURCE_DIR "/tests/cases/regressions.txt", &l), MOE_OK);
	ck_assert_uint_ge(l.n, 20);
	struct moe_verify_opts o = opts((1u << MOE_OP_COUNT) - 1);
	o.cases = &l;
	struct moe_vreport rep = { 0 };
	ck_assert_int_eq(moe_verify_backend(moe_backend_reference(), MOE_ISA_SCALAR, &o, &rep), MOE_OK);
	ck_assert_uint_eq(moe_vreport_count(&rep, MOE_V_FAIL), 0);
	ck_assert_uint_eq(moe_vreport_count(&rep, MOE_V_UNTRUSTED), 0);
	ck_assert_uint_gt(moe_vreport_count(&rep, MOE_V_PASS), 0);
	moe_vreport_free(&rep);

	struct moe_backend b = *moe_backend_reference();
	b.route = route_weights_off;
	ck_assert_int_eq(moe_verify_backend(&b, MOE_ISA_SCALAR, &o, &rep), MOE_OK);
	ck_assert_int_eq(op_status(&rep, MOE_OP_ROUTE), MOE_V_FAIL);
	moe_vreport_free(&rep);
	moe_vcase_list_free(&l);
}
END_TEST

START_TEST(test_json_report)
{
	struct moe_backend b = *moe_backend_reference();
	b.name = "broken";
	b.route = route_weights_off;
	struct moe_vcase_list l = { 0 };
	struct moe_vcase c;
	ck_assert_int_eq(moe_vcase_parse("route method=SigmoidRenorm profile=vllm E=16 K=4 renorm=1 T=3 seed=9", &c),
			 MOE_OK);
	ck_assert_int_eq(moe_vcase_push(&l, &c), MOE_OK);
	struct moe_verify_opts o = opts(1u << MOE_OP_ROUTE);
	o.cases = &l;
	struct moe_vreport rep = { 0 };
	ck_assert_int_eq(moe_verify_backend(&b, MOE_ISA_SCALAR, &o, &rep), MOE_OK);
	make_tmpdir();
	char path[320];
	snprintf(path, sizeof path, "%s/report.json", tmpdir);
	ck_assert_int_eq(moe_vreport_write_json(&rep, path), MOE_OK);
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "summary"), "fail")), 1);
	json_t *g = json_array_get(json_object_get(root, "groups"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(g, "status")), "FAIL");
	json_t *f = json_array_get(json_object_get(g, "failures"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(f, "case")),
			 "route method=SigmoidRenorm profile=vllm E=16 K=4 renorm=1 T=3 gen=normal seed=9");
	ck_assert_int_gt(json_array_size(json_object_get(f, "mismatches")), 0);
	json_decref(root);
	snprintf(path, sizeof path, "%s/no/such/dir/report.json", tmpdir);
	ck_assert_int_eq(moe_vreport_write_json(&rep, path), MOE_ERR_IO);
	moe_vreport_free(&rep);
	moe_vcase_list_free(&l);
	remove_tree(tmpdir);
}
END_TEST

START_TEST(test_vectors_round_trip)
{
	static const char *const specs[] = {
		"route method=DeepSeekV3 profile=flashinfer E=72 K=8 G=6 TG=3 rsf=2.5 bias=bf16 T=3 gen=bf16-ties seed=3",
		"route method=Renormalize profile=vllm E=32 K=4 logits=bf16 T=2 gen=nan seed=4",
		"norm kind=layernorm rows=2 cols=64 eps=1e-5 in=bf16 w=f32 out=bf16 gen=offset seed=5",
		"quantize dtype=nvfp4 scaling=nvfp4 layout=128x4 rows=3 cols=64 gen=normal seed=6",
		"dequantize dtype=fp8e4m3 scaling=1x128 rows=2 cols=200 gen=codes seed=7",
		"expert M=2 H=64 I=32 wdtype=fp8e4m3 wscaling=tensor act=fp8 gen=normal seed=8",
		"layer method=SigmoidRenorm profile=hf E=16 K=4 renorm=1 T=5 H=64 I=32 wdtype=nvfp4 wscaling=nvfp4 "
		"layout=128x4 act=bf16 shared=average SI=32 gen=normal seed=9",
	};
	struct moe_vcase_list l = { 0 };
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct moe_vcase c;
		ck_assert_msg(moe_vcase_parse(specs[i], &c) == MOE_OK, "%s", moe_last_error());
		ck_assert_msg(moe_vcase_validate(&c) == MOE_OK, "%s", moe_last_error());
		ck_assert_int_eq(moe_vcase_push(&l, &c), MOE_OK);
	}
	make_tmpdir();
	size_t written = 0;
	ck_assert_int_eq(moe_vectors_export(tmpdir, &l, &written), MOE_OK);
	ck_assert_uint_eq(written, l.n);

	struct moe_vreport rep = { 0 };
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_OK);
	ck_assert_int_eq(rep.cases, (int64_t)l.n);
	ck_assert_uint_eq(moe_vreport_count(&rep, MOE_V_FAIL), 0);
	ck_assert_uint_eq(moe_vreport_count(&rep, MOE_V_UNTRUSTED), 0);
	moe_vreport_free(&rep);

	struct moe_backend b = *moe_backend_reference();
	b.route = route_weights_off;
	b.quantize = quantize_flip;
	b.dequantize = dequantize_nan;
	b.expert = expert_scaled;
	b.layer = layer_rsf_twice;
	ck_assert_int_eq(moe_vectors_check(tmpdir, &b, "broken", ~0u, &rep), MOE_OK);
	ck_assert_int_eq(op_status(&rep, MOE_OP_LAYER), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_ROUTE), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_QUANTIZE), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_DEQUANTIZE), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_EXPERT), MOE_V_FAIL);
	ck_assert_int_eq(op_status(&rep, MOE_OP_NORM), MOE_V_PASS);
	moe_vreport_free(&rep);

	/* a file that is not safetensors at all */
	char path[320];
	snprintf(path, sizeof path, "%s/zz-garbage.safetensors", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("this is not a safetensors file", f);
	fclose(f);
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "zz-garbage"));
	moe_vreport_free(&rep);

	/* a valid safetensors file without our metadata */
	const float one = 1.0f;
	struct moe_st_tensor t = { .name = "x", .dtype = MOE_ST_F32, .ndim = 1, .shape = { 1 }, .data = &one,
				   .nbytes = 4 };
	ck_assert_int_eq(moe_st_write(path, &t, 1, NULL, 0), MOE_OK);
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "not a moebench vector file"));
	moe_vreport_free(&rep);

	/* our metadata without the tensor hashes: a damaged file */
	struct moe_st_meta meta[3] = { { "format", "moebench-vectors-1" },
				       { "case", "route method=Renormalize E=8 K=2 T=1 seed=1" },
				       { "fnv1a64.x", NULL } };
	ck_assert_int_eq(moe_st_write(path, &t, 1, meta, 2), MOE_OK);
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "damaged"));
	moe_vreport_free(&rep);

	/* with the right hash (FNV-1a 64 computed here), but not the tensors of a route case */
	char hash[20];
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < sizeof one; i++)
		h = (h ^ ((const unsigned char *)&one)[i]) * 0x100000001b3ull;
	snprintf(hash, sizeof hash, "%016llx", (unsigned long long)h);
	meta[2].value = hash;
	ck_assert_int_eq(moe_st_write(path, &t, 1, meta, 3), MOE_OK);
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "logits"));
	moe_vreport_free(&rep);

	/* one flipped byte in a stored tensor is refused as damaged, not judged as a kernel failure */
	remove(path);
	snprintf(path, sizeof path, "%s/route-0000.safetensors", tmpdir);
	FILE *rf = fopen(path, "r+b");
	ck_assert_ptr_nonnull(rf);
	ck_assert_int_eq(fseek(rf, -1, SEEK_END), 0);
	int last = fgetc(rf);
	ck_assert_int_eq(fseek(rf, -1, SEEK_END), 0);
	fputc(last ^ 0x40, rf);
	fclose(rf);
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "hash mismatch"));
	moe_vreport_free(&rep);
	remove_tree(tmpdir);

	ck_assert_int_eq(moe_vectors_check("/nonexistent/vectors", moe_backend_reference(), "ref", ~0u, &rep),
			 MOE_ERR_IO);
	make_tmpdir();
	ck_assert_int_eq(moe_vectors_check(tmpdir, moe_backend_reference(), "ref", ~0u, &rep), MOE_ERR_FORMAT);
	remove_tree(tmpdir);
	moe_vreport_free(&rep);
	moe_vcase_list_free(&l);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify_engine");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_spec_round_trip);
	tcase_add_test(tc, test_full_catalogue_size);
	tcase_add_test(tc, test_spec_errors);
	tcase_add_test(tc, test_cases_file);
	tcase_add_test(tc, test_quick_reference_all_pass);
	tcase_add_test(tc, test_broken_backends_caught);
	tcase_add_test(tc, test_skip_reasons);
	tcase_add_test(tc, test_regressions_file);
	tcase_add_test(tc, test_abi2_route_threads);
	tcase_add_test(tc, test_json_report);
	tcase_add_test(tc, test_vectors_round_trip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
