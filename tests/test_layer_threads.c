/* The whole per-ISA tables' layer on the host's threads (backend ABI 2): for every weight format
 * (f32, bf16, FP8 per-tensor / per-channel / 1x128 / 128x128, NVFP4 in each scale layout, MXFP4)
 * and every act_quant the format takes, at T in {1, 5, 16, 17, 64, 300} (decode and prefill groups,
 * route_mt's token chunks past 256):
 *   - moe_backend_layer with a moe_pool of 1, 2 and 3 threads gives the same bytes (y, ids, weights);
 *   - the same on packed weights (moe_backend_pack, the plain tensors then overwritten with garbage,
 *     so a handle that still read them would show) gives the same bytes as on the plain weights;
 *   - the output is within moe_layer_ref_f64's bound for the routing returned, and that routing is
 *     the reference router's (these logits have no near-ties);
 *   - moe_backend_expert (expert_mt) on one expert, packed and plain, 1 and 3 threads: same bytes,
 *     within moe_expert_ref_f64's bound.
 * One bf16 case holds subnormal weights and inputs (the panel path's fp32 blocks). Tables whose ISA
 * the CPU lacks are skipped; the tables below this CPU's own run the f32 and bf16 cases only. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"
#include "test_rng.h"

struct fmt {
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
};

static const struct fmt fmts[] = {
	{ MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR },
	{ MOE_DTYPE_BF16, MOE_SCALING_NONE, MOE_SF_LINEAR },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_TENSOR, MOE_SF_LINEAR },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_PER_CHANNEL, MOE_SF_LINEAR },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_1x128, MOE_SF_LINEAR },
	{ MOE_DTYPE_FP8E4M3, MOE_SCALING_BLOCK_128x128, MOE_SF_LINEAR },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_LINEAR },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_128x4 },
	{ MOE_DTYPE_NVFP4, MOE_SCALING_NVFP4, MOE_SF_SWIZZLED_8x4 },
	{ MOE_DTYPE_MXFP4, MOE_SCALING_MX, MOE_SF_LINEAR },
};

static const enum moe_act_quant acts[] = { MOE_ACT_NONE, MOE_ACT_BF16, MOE_ACT_FP8_TENSOR, MOE_ACT_FP8_1x128,
					   MOE_ACT_NVFP4 };

static const int64_t Ts[] = { 1, 5, 16, 17, 64, 300 };

#define NFMT (int)(sizeof fmts / sizeof fmts[0])
#define NACT (int)(sizeof acts / sizeof acts[0])

static bool subnormals; /* the current case plants subnormal weights and inputs */

static void make_weight(struct moe_qtensor *q, const struct fmt *f, int64_t rows, int64_t cols)
{
	*q = (struct moe_qtensor){ .dtype = f->dtype, .scaling = f->scaling, .sf_layout = f->layout, .rows = rows, .cols = cols };
	ck_assert_int_eq(moe_qtensor_alloc(q), MOE_OK);
	float *v = malloc((size_t)(rows * cols) * sizeof(float));
	ck_assert_ptr_nonnull(v);
	for (int64_t i = 0; i < rows * cols; i++)
		v[i] = (float)(rng_normal() / sqrt((double)cols));
	if (subnormals)
		for (int64_t i = 0; i < rows * cols; i += 97)
			v[i] = 0x1p-130f;
	moe_quantize__ref(v, q);
	free(v);
}

static void make_expert(struct moe_expert_weights *e, const struct fmt *f, int64_t H, int64_t I)
{
	make_weight(&e->gate, f, I, H);
	make_weight(&e->up, f, I, H);
	make_weight(&e->down, f, H, I);
}

static void spoil(struct moe_qtensor *q)
{
	memset(q->data, 0x3c, moe_qtensor_data_bytes(q));
	if (q->scales)
		memset(q->scales, 0x3c, moe_qtensor_scale_bytes(q));
}

static void free_expert(struct moe_expert_weights *e)
{
	moe_qtensor_free(&e->gate);
	moe_qtensor_free(&e->up);
	moe_qtensor_free(&e->down);
}

struct out {
	float *y;
	int32_t *ids;
	float *w;
};

static struct out run(const struct moe_backend *b, const struct moe_layer_params *p, const float *x, const float *logits,
		      const struct moe_layer_weights *w, const struct moe_packed *pk, const struct moe_packed *pks,
		      struct moe_pool *pool)
{
	const int64_t T = p->tokens, H = p->expert.hidden, K = p->route.top_k;
	const int n = moe_pool_threads(pool)->count;
	struct out o = { malloc((size_t)(T * H + 1) * sizeof(float)), malloc((size_t)(T * K) * sizeof(int32_t)),
			 malloc((size_t)(T * K) * sizeof(float)) };
	const size_t bytes = moe_backend_workspace(b, MOE_OP_LAYER, p, n);
	void *ws = aligned_alloc(64, (bytes + 64) / 64 * 64);
	ck_assert(o.y && o.ids && o.w && ws);
	o.y[T * H] = 777.0f;
	moe_backend_layer(b, p, x, logits, NULL, w, pk, pks, o.y, o.ids, o.w, ws, moe_pool_threads(pool));
	ck_assert_msg(o.y[T * H] == 777.0f, "%s wrote past y", b->name);
	free(ws);
	return o;
}

static void same(const struct out *a, const struct out *b, int64_t T, int64_t H, int64_t K, const char *what)
{
	ck_assert_msg(memcmp(a->y, b->y, (size_t)(T * H) * sizeof(float)) == 0 &&
			      memcmp(a->ids, b->ids, (size_t)(T * K) * sizeof(int32_t)) == 0 &&
			      memcmp(a->w, b->w, (size_t)(T * K) * sizeof(float)) == 0,
		      "%s", what);
}

static void free_out(struct out *o)
{
	free(o->y);
	free(o->ids);
	free(o->w);
}

/* One expert through expert_mt: plain and packed, 1 and 3 threads, against moe_expert_ref_f64, at
 * M tokens (19: the panel path; 3: the decode kernels, where the workspace the table asks for must
 * cover the expert kernel's own, moe_expert_workspace_bytes, which that path hands it). */
static void check_expert_m(const struct moe_backend *b, const struct moe_expert_params *ep0, const struct moe_expert_weights *w,
			   const struct moe_packed *pk, int32_t index, struct moe_pool *const pools[3], const char *tag, int64_t tokens)
{
	struct moe_expert_params ep = *ep0;
	ep.tokens = tokens;
	for (int n = 1; tokens <= 16 && n <= 3; n++) /* M <= 16: the layer files' decode path (LK_DECODE_MAX) */
		ck_assert_msg(moe_backend_workspace(b, MOE_OP_EXPERT, &ep, n) >= moe_expert_workspace_bytes(&ep),
			      "%s: M=%lld, %d threads: expert_mt workspace %zu below the expert kernel's %zu", tag,
			      (long long)tokens, n, moe_backend_workspace(b, MOE_OP_EXPERT, &ep, n), moe_expert_workspace_bytes(&ep));
	const int64_t M = ep.tokens, H = ep.hidden;
	float *x = malloc((size_t)(M * H) * sizeof(float)), *y[4];
	double *ref = malloc((size_t)(M * H) * sizeof(double)), *bound = malloc((size_t)(M * H) * sizeof(double));
	ck_assert(x && ref && bound);
	for (int64_t i = 0; i < M * H; i++)
		x[i] = (float)rng_normal();
	for (int r = 0; r < 4; r++) {
		struct moe_pool *pool = pools[r % 2 == 0 ? 0 : 2];
		const size_t bytes = moe_backend_workspace(b, MOE_OP_EXPERT, &ep, moe_pool_threads(pool)->count);
		void *ws = aligned_alloc(64, (bytes + 64) / 64 * 64);
		y[r] = malloc((size_t)(M * H) * sizeof(float));
		ck_assert(ws && y[r]);
		moe_backend_expert(b, &ep, x, w, r < 2 ? NULL : pk, index, y[r], ws, moe_pool_threads(pool));
		free(ws);
	}
	for (int r = 1; r < 4; r++)
		ck_assert_msg(memcmp(y[0], y[r], (size_t)(M * H) * sizeof(float)) == 0, "%s: expert_mt run %d differs", tag, r);
	struct moe_expert_f64_info info;
	ck_assert_int_eq(moe_expert_ref_f64_ex(&ep, x, w, ref, bound, &info), MOE_OK);
	for (int64_t j = 0; j < M * H; j++)
		ck_assert_msg(fabs((double)y[0][j] - ref[j]) <= bound[j], "%s: expert y[%lld] = %.9g, ref %.9g, bound %.3g", tag,
			      (long long)j, (double)y[0][j], ref[j], bound[j]);
	for (int r = 0; r < 4; r++)
		free(y[r]);
	free(x);
	free(ref);
	free(bound);
}

static void check_expert(const struct moe_backend *b, const struct moe_expert_params *ep0, const struct moe_expert_weights *w,
			 const struct moe_packed *pk, int32_t index, struct moe_pool *const pools[3], const char *tag)
{
	check_expert_m(b, ep0, w, pk, index, pools, tag, 19);
	check_expert_m(b, ep0, w, pk, index, pools, tag, 3);
}

static int cases_run;

static void check_case(const struct fmt *f, enum moe_act_quant aq, int64_t H, int64_t I, int64_t SI, int32_t E, int32_t K,
		       struct moe_pool *const pools[3])
{
	const enum moe_shared_combine sh = SI ? MOE_SHARED_SUM : MOE_SHARED_NONE;
	struct moe_layer_params p = { .route = moe_route_params_default(MOE_ROUTE_RENORMALIZE, E, K),
				      .expert = { .hidden = H, .inter = I, .weight_dtype = f->dtype, .weight_scaling = f->scaling,
						  .weight_sf_layout = f->layout, .act_quant = aq },
				      .rsf_site = MOE_RSF_AT_OUTPUT, .shared = sh, .shared_inter = SI, .tokens = 1 };
	p.route.routed_scaling_factor = 1.5f;
	struct moe_expert_params sp = p.expert;
	sp.inter = SI;
	struct moe_expert_weights *ex = calloc((size_t)E, sizeof *ex), shared = { 0 };
	ck_assert_ptr_nonnull(ex);
	/* the format's constraints: skip what moe_expert_validate refuses (before allocating) */
	{
		struct moe_qtensor q = { .dtype = f->dtype, .scaling = f->scaling, .sf_layout = f->layout, .rows = I, .cols = H };
		struct moe_qtensor d = q;
		d.rows = H;
		d.cols = I;
		const bool ok = moe_qtensor_alloc(&q) == MOE_OK && moe_qtensor_validate(&q) == MOE_OK &&
				moe_qtensor_alloc(&d) == MOE_OK && moe_qtensor_validate(&d) == MOE_OK;
		moe_qtensor_free(&q);
		moe_qtensor_free(&d);
		if (!ok) {
			free(ex);
			return;
		}
	}
	for (int32_t e = 0; e < E; e++)
		make_expert(&ex[e], f, H, I);
	if (SI)
		make_expert(&shared, f, H, SI);
	struct moe_layer_weights w = { ex, SI ? &shared : NULL };
	if (moe_layer_validate(&p, &w) != MOE_OK) {
		for (int32_t e = 0; e < E; e++)
			free_expert(&ex[e]);
		if (SI)
			free_expert(&shared);
		free(ex);
		return;
	}
	char tag[160];
	for (size_t i = 1; i < moe_builtin_count(); i++) {
		const struct moe_builtin *bi = moe_builtin_at(i);
		if (bi->op != MOE_OP_COUNT || bi->isa > moe_isa_hardware())
			continue;
		/* every case on this CPU's own table; the tables below it (the same code on fewer lanes)
		 * on f32 and bf16 weights only, to keep the test short */
		if (bi->isa != moe_isa_hardware() && f->dtype != MOE_DTYPE_F32 && f->dtype != MOE_DTYPE_BF16)
			continue;
		const struct moe_backend *b = bi->table;
		ck_assert_ptr_nonnull(b->layer_mt);
		cases_run++;
		/* packed copies (the plain tensors to be spoiled afterwards are duplicates) */
		struct moe_packed *pk = NULL, *pks = NULL;
		ck_assert_int_eq(moe_backend_pack(b, &p.expert, E, ex, moe_pool_threads(pools[1]), &pk), MOE_OK);
		ck_assert_ptr_nonnull(pk);
		ck_assert(pk->bytes > 0 && pk->owner == b && pk->count == E);
		if (SI)
			ck_assert_int_eq(moe_backend_pack(b, &sp, 1, &shared, moe_pool_threads(pools[0]), &pks), MOE_OK);
		for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
			const int64_t T = Ts[ti];
			p.tokens = T;
			snprintf(tag, sizeof tag, "%s %s/%s/%s act %s H=%lld I=%lld T=%lld", b->name, moe_dtype_name(f->dtype),
				 moe_scaling_name(f->scaling), moe_sf_layout_name(f->layout), moe_act_quant_name(aq), (long long)H,
				 (long long)I, (long long)T);
			float *x = malloc((size_t)(T * H) * sizeof(float)), *logits = malloc((size_t)(T * E) * sizeof(float));
			ck_assert(x && logits);
			for (int64_t j = 0; j < T * H; j++)
				x[j] = subnormals && j % 53 == 0 ? 0x1p-131f : (float)rng_normal();
			for (int64_t j = 0; j < T * E; j++)
				logits[j] = (float)rng_normal() + (j % E == 0 ? 1.0f : 0.0f);
			struct out o1 = run(b, &p, x, logits, &w, NULL, NULL, pools[0]);
			for (int n = 1; n < 3; n++) {
				struct out on = run(b, &p, x, logits, &w, NULL, NULL, pools[n]);
				char what[220];
				snprintf(what, sizeof what, "%s: %d threads differ from 1", tag, n + 1);
				same(&o1, &on, T, H, K, what);
				free_out(&on);
			}
			/* the reference router's routing, and the bound */
			int32_t *rid = malloc((size_t)(T * K) * sizeof(int32_t));
			float *rw = malloc((size_t)(T * K) * sizeof(float));
			double *yr = malloc((size_t)(T * H) * sizeof(double)), *bd = malloc((size_t)(T * H) * sizeof(double));
			ck_assert(rid && rw && yr && bd);
			struct moe_route_params route = p.route;
			route.routed_scaling_factor = 1.0f;
			moe_route__ref(&route, T, logits, NULL, rid, rw);
			ck_assert_msg(memcmp(rid, o1.ids, (size_t)(T * K) * sizeof(int32_t)) == 0, "%s: routing differs", tag);
			struct moe_expert_f64_info info;
			ck_assert_int_eq(moe_layer_ref_f64(&p, x, o1.ids, o1.w, &w, yr, bd, &info), MOE_OK);
			ck_assert_msg(!info.unbounded, "%s: vacuous case", tag);
			for (int64_t j = 0; j < T * H; j++)
				ck_assert_msg(fabs((double)o1.y[j] - yr[j]) <= bd[j], "%s: y[%lld] = %.9g, ref %.9g, bound %.3g", tag,
					      (long long)j, (double)o1.y[j], yr[j], bd[j]);
			free(rid);
			free(rw);
			free(yr);
			free(bd);
			/* packed: the same bytes, with the plain weights spoiled in a duplicate */
			struct moe_expert_weights *junk = calloc((size_t)E, sizeof *junk), jshared = { 0 };
			ck_assert_ptr_nonnull(junk);
			for (int32_t e = 0; e < E; e++) {
				make_expert(&junk[e], f, H, I);
				spoil(&junk[e].gate);
				spoil(&junk[e].up);
				spoil(&junk[e].down);
			}
			if (SI) {
				make_expert(&jshared, f, H, SI);
				spoil(&jshared.gate);
				spoil(&jshared.up);
				spoil(&jshared.down);
			}
			const struct moe_layer_weights jw = { junk, SI ? &jshared : NULL };
			for (int n = 0; n < 3; n++) {
				struct out op = run(b, &p, x, logits, &jw, pk, pks, pools[n]);
				char what[220];
				snprintf(what, sizeof what, "%s: packed, %d threads, differs from plain", tag, n + 1);
				same(&o1, &op, T, H, K, what);
				free_out(&op);
			}
			for (int32_t e = 0; e < E; e++)
				free_expert(&junk[e]);
			free(junk);
			if (SI)
				free_expert(&jshared);
			free_out(&o1);
			free(x);
			free(logits);
		}
		snprintf(tag, sizeof tag, "%s %s/%s/%s act %s expert_mt", b->name, moe_dtype_name(f->dtype),
			 moe_scaling_name(f->scaling), moe_sf_layout_name(f->layout), moe_act_quant_name(aq));
		struct moe_expert_params ep = p.expert;
		check_expert(b, &ep, &ex[1], pk, 1, pools, tag);
		moe_backend_release(b, pk);
		moe_backend_release(b, pks);
	}
	for (int32_t e = 0; e < E; e++)
		free_expert(&ex[e]);
	if (SI)
		free_expert(&shared);
	free(ex);
}

static struct moe_pool *pools[3];

static void make_pools(void)
{
	for (int n = 0; n < 3; n++)
		ck_assert_int_eq(moe_pool_create(n + 1, NULL, &pools[n]), MOE_OK);
}

static void free_pools(void)
{
	for (int n = 0; n < 3; n++)
		moe_pool_destroy(pools[n]);
}

/* _i: format * NACT + act. Shape: H = 320 (two depth blocks of the panel path, tails in the
 * 32-row panels), I = 96, a shared expert of 64, E = 8, K = 2. */
START_TEST(every_format_and_act)
{
	const struct fmt *f = &fmts[_i / NACT];
	const enum moe_act_quant aq = acts[_i % NACT];
	rng_state = 900u + (uint64_t)_i;
	cases_run = 0;
	subnormals = false;
	make_pools();
	check_case(f, aq, 320, 96, 64, 8, 2, pools);
	free_pools();
	/* every format takes bf16 activations or none */
	if (aq == MOE_ACT_BF16)
		ck_assert_int_ge(cases_run, 1);
}
END_TEST

/* bf16 and f32 at odd widths (H = 263, I = 45: bf16 pairs straddling the end, partial panels), no
 * shared expert, E = 16, K = 4. */
START_TEST(odd_widths)
{
	const struct fmt *f = &fmts[_i];
	rng_state = 1900u + (uint64_t)_i;
	subnormals = false;
	make_pools();
	check_case(f, _i == 0 ? MOE_ACT_NONE : MOE_ACT_BF16, 263, 45, 0, 16, 4, pools);
	free_pools();
}
END_TEST

/* bf16 W16A16 with subnormal weights and inputs: the panel path's fp32 blocks. */
START_TEST(bf16_subnormals)
{
	rng_state = 2900u;
	subnormals = true;
	make_pools();
	check_case(&fmts[1], MOE_ACT_BF16, 320, 96, 64, 8, 2, pools);
	free_pools();
	subnormals = false;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("layer_threads");
	TCase *tc = tcase_create("layer_threads");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, every_format_and_act, 0, NFMT * NACT);
	tcase_add_loop_test(tc, odd_widths, 0, 2);
	tcase_add_test(tc, bf16_subnormals);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	const int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
