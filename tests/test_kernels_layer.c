/* Tests of the optimized MoE layer kernels: every built-in table that provides layer (each variant
 * of kernels/layer/layer.inc, and the whole per-ISA tables) on seeded layers of several weight
 * formats, with and without a shared expert, experts that get no token and one that gets most,
 * rsf at the output, T = 0, 1, decode-sized and prefill-sized groups, H above the prefill depth
 * block:
 *   - the output is within moe_layer_ref_f64's bound for the routing the kernel returned, and that
 *     routing is the reference router's (no near-ties in these logits);
 *   - the outputs, ids and weights are bitwise identical with 1, 2 and 3 host threads (a moe_pool
 *     through moe_backend_layer: the whole tables' layer_mt, the single-variant tables' layer).
 * Variants whose ISA the CPU lacks are skipped and said so. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "test_rng.h"


struct fmt {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	enum moe_act_quant act;
};

static const struct fmt fmts[] = {
	{ MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE },
	{ MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_BF16 },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR, MOE_ACT_FP8_1x128 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4, MOE_ACT_NVFP4 },
	{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR, MOE_ACT_BF16 },
};

struct shape {
	int64_t T, H, I;
	int32_t E, K;
	enum moe_shared_combine shared;
	int64_t shared_inter;
};

/* H and I are multiples of 32 (every format takes them); the last shape sends most tokens to
 * expert 0 (a prefill group) with H > 256 (the partial sums across depth blocks). */
static const struct shape shapes[] = {
	{ 0, 32, 32, 8, 2, MOE_SHARED_NONE, 0 },
	{ 1, 64, 32, 8, 2, MOE_SHARED_SUM, 32 },
	{ 6, 96, 64, 8, 2, MOE_SHARED_AVERAGE, 64 },
	{ 12, 64, 96, 16, 4, MOE_SHARED_NONE, 0 },
	{ 40, 320, 64, 8, 2, MOE_SHARED_SUM, 32 },
};

static void make_weight(struct moe_qtensor *q, const struct fmt *f, int64_t rows, int64_t cols)
{
	*q = (struct moe_qtensor){ .dtype = f->dtype, .scaling = f->scaling, .sf_layout = f->layout, .rows = rows, .cols = cols };
	ck_assert_int_eq(moe_qtensor_alloc(q), MOE_OK);
	float *v = malloc((size_t)(rows * cols) * sizeof(float));
	ck_assert_ptr_nonnull(v);
	for (int64_t i = 0; i < rows * cols; i++)
		v[i] = (float)(rng_normal() / sqrt((double)cols));
	moe_quantize__ref(v, q);
	free(v);
}

static void make_expert(struct moe_expert_weights *e, const struct fmt *f, int64_t H, int64_t I)
{
	make_weight(&e->gate, f, I, H);
	make_weight(&e->up, f, I, H);
	make_weight(&e->down, f, H, I);
}

static void free_expert(struct moe_expert_weights *e)
{
	moe_qtensor_free(&e->gate);
	moe_qtensor_free(&e->up);
	moe_qtensor_free(&e->down);
}

struct run {
	float *y;
	int32_t *ids;
	float *weights;
};

static struct run run_layer(const struct moe_backend *b, const struct moe_layer_params *p, const float *x,
			    const float *logits, const struct moe_layer_weights *w, int threads)
{
	const int64_t T = p->tokens, H = p->expert.hidden, K = p->route.top_k;
	struct run r = { malloc((size_t)(T * H + 1) * sizeof(float)), malloc((size_t)(T * K + 1) * sizeof(int32_t)),
			 malloc((size_t)(T * K + 1) * sizeof(float)) };
	const size_t ws_bytes = moe_backend_workspace(b, MOE_OP_LAYER, p, threads);
	void *ws = aligned_alloc(64, (ws_bytes + 64) / 64 * 64);
	struct moe_pool *pool = NULL;
	ck_assert(r.y && r.ids && r.weights && ws);
	ck_assert_int_eq(moe_pool_create(threads, NULL, &pool), MOE_OK);
	r.y[T * H] = 777.0f;
	moe_backend_layer(b, p, x, logits, NULL, w, NULL, NULL, r.y, r.ids, r.weights, ws, moe_pool_threads(pool));
	ck_assert_msg(r.y[T * H] == 777.0f, "%s wrote past y", b->name);
	moe_pool_destroy(pool);
	free(ws);
	return r;
}

static void free_run(struct run *r)
{
	free(r->y);
	free(r->ids);
	free(r->weights);
}

START_TEST(layer_against_reference_and_thread_counts)
{
	const struct fmt *f = &fmts[_i];
	rng_state = 500u + (uint64_t)_i;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		const struct shape *sh = &shapes[s];
		struct moe_layer_params p = { .route = moe_route_params_default(MOE_ROUTE_RENORMALIZE, sh->E, sh->K),
					      .expert = { .hidden = sh->H, .inter = sh->I, .weight_dtype = f->dtype,
							  .weight_scaling = f->scaling, .weight_sf_layout = f->layout,
							  .act_quant = f->act },
					      .rsf_site = MOE_RSF_AT_OUTPUT, .shared = sh->shared,
					      .shared_inter = sh->shared_inter, .tokens = sh->T };
		p.route.routed_scaling_factor = 2.5f;
		struct moe_expert_weights *experts = calloc((size_t)sh->E, sizeof *experts), shared;
		ck_assert_ptr_nonnull(experts);
		for (int32_t e = 0; e < sh->E; e++)
			make_expert(&experts[e], f, sh->H, sh->I);
		if (sh->shared != MOE_SHARED_NONE)
			make_expert(&shared, f, sh->H, sh->shared_inter);
		const struct moe_layer_weights w = { experts, sh->shared != MOE_SHARED_NONE ? &shared : NULL };
		ck_assert_int_eq(moe_layer_validate(&p, &w), MOE_OK);

		const int64_t T = sh->T, H = sh->H, E = sh->E, K = sh->K;
		float *x = malloc((size_t)(T * H + 1) * sizeof(float)), *logits = malloc((size_t)(T * E + 1) * sizeof(float));
		double *y_ref = malloc((size_t)(T * H + 1) * sizeof(double)), *bound = malloc((size_t)(T * H + 1) * sizeof(double));
		ck_assert(x && logits && y_ref && bound);
		for (int64_t i = 0; i < T * H; i++)
			x[i] = (float)rng_normal();
		/* distinct logits, expert 0 (and 1 when K = 2) favoured in the last shape; the last
		 * expert never wins, so it gets no token */
		for (int64_t t = 0; t < T; t++)
			for (int64_t e = 0; e < E; e++)
				logits[t * E + e] = (float)rng_normal() + (s == 4 && e < 2 ? 3.0f : 0.0f) - (e == E - 1 ? 50.0f : 0.0f);
		int32_t *ref_ids = malloc((size_t)(T * K + 1) * sizeof(int32_t));
		float *ref_w = malloc((size_t)(T * K + 1) * sizeof(float));
		ck_assert(ref_ids && ref_w);
		struct moe_route_params route = p.route;
		route.routed_scaling_factor = 1.0f;
		moe_route__ref(&route, T, logits, NULL, ref_ids, ref_w);

		int ran = 0;
		for (size_t i = 1; i < moe_builtin_count(); i++) {
			const struct moe_builtin *b = moe_builtin_at(i);
			if (b->isa > moe_isa_hardware() || !moe_backend_provides(b->table, MOE_OP_LAYER, &p))
				continue;
			struct run one = run_layer(b->table, &p, x, logits, &w, 1);
			ck_assert_msg(T == 0 || memcmp(one.ids, ref_ids, (size_t)(T * K) * sizeof(int32_t)) == 0,
				      "%s: routing differs from the reference router", b->table->name);
			struct moe_expert_f64_info info;
			ck_assert_int_eq(moe_layer_ref_f64(&p, x, one.ids, one.weights, &w, y_ref, bound, &info), MOE_OK);
			ck_assert_msg(!info.unbounded, "vacuous case");
			for (int64_t j = 0; j < T * H; j++)
				ck_assert_msg(fabs((double)one.y[j] - y_ref[j]) <= bound[j],
					      "%s (%s, T=%lld H=%lld): y[%lld] = %.9g, ref %.9g, bound %.3g", b->table->name,
					      moe_dtype_name(f->dtype), (long long)T, (long long)H, (long long)j, (double)one.y[j],
					      y_ref[j], bound[j]);
			/* the whole tables run layer_mt on the pool, the single-variant ones their layer */
			for (int threads = 2; threads <= 3; threads++) {
				struct run more = run_layer(b->table, &p, x, logits, &w, threads);
				ck_assert_msg(memcmp(more.y, one.y, (size_t)(T * H) * sizeof(float)) == 0 &&
						      memcmp(more.ids, one.ids, (size_t)(T * K) * sizeof(int32_t)) == 0 &&
						      memcmp(more.weights, one.weights, (size_t)(T * K) * sizeof(float)) == 0,
					      "%s (%s, T=%lld): %d threads differ from 1", b->table->name, moe_dtype_name(f->dtype),
					      (long long)T, threads);
				free_run(&more);
			}
			free_run(&one);
			ran++;
		}
		ck_assert_int_ge(ran, 1);
		free(x);
		free(logits);
		free(y_ref);
		free(bound);
		free(ref_ids);
		free(ref_w);
		for (int32_t e = 0; e < sh->E; e++)
			free_expert(&experts[e]);
		free(experts);
		if (sh->shared != MOE_SHARED_NONE)
			free_expert(&shared);
	}
}
END_TEST

START_TEST(variants_listed)
{
	int layer_variants = 0;
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		if (b->op != MOE_OP_LAYER)
			continue;
		layer_variants++;
		if (b->isa > moe_isa_hardware())
			printf("test_kernels_layer: %s skipped: this CPU lacks %s\n", b->table->name, moe_isa_name(b->isa));
		ck_assert(b->table->supports(MOE_OP_LAYER, NULL));
		ck_assert(!b->table->supports(MOE_OP_EXPERT, NULL));
	}
	ck_assert_int_ge(layer_variants, 1);
}
END_TEST

static Suite *layer_suite(void)
{
	Suite *s = suite_create("kernels_layer");
	TCase *tc = tcase_create("layer");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, layer_against_reference_and_thread_counts, 0, (int)(sizeof fmts / sizeof fmts[0]));
	tcase_add_test(tc, variants_listed);
	suite_add_tcase(s, tc);
	return s;
}

static void *run_suite(void *failed)
{
	SRunner *sr = srunner_create(layer_suite());
	srunner_run_all(sr, CK_NORMAL);
	*(int *)failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return NULL;
}

/* The tests run on a thread of their own (kept from when the layer used OpenMP; harmless). */
int main(void)
{
	int failed = 1;
	pthread_t th;
	if (pthread_create(&th, NULL, run_suite, &failed) != 0 || pthread_join(th, NULL) != 0)
		return EXIT_FAILURE;
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
