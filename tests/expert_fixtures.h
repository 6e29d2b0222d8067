/* Test fixtures shared by tests/test_expert.c and tests/test_layer.c: seeded random data, expert
 * weights of a given format quantized by the codec, a runner that gives the expert kernel an exact-
 * size workspace filled with garbage (so that ASan and valgrind see any overrun or any reliance on
 * zeroed memory), and the error/bound ratio the verifier reports. */
#ifndef MOE_TEST_EXPERT_FIXTURES_H
#define MOE_TEST_EXPERT_FIXTURES_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"
#include "moe/rng.h"

struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	return moe_splitmix64(&r->s);
}

/* uniform in (0, 1) */
static inline double rng_uniform(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

static inline float rng_normal(struct rng *r, double sigma)
{
	return (float)(sigma * sqrt(-2.0 * log(rng_uniform(r))) * cos(6.283185307179586 * rng_uniform(r)));
}

static inline float *normal_array(struct rng *r, size_t n, double sigma)
{
	float *v = malloc(n * sizeof(float));
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++)
		v[i] = rng_normal(r, sigma);
	return v;
}

/* A weight format and activation handling, as a test case names it. */
struct wformat {
	const char *name;
	enum moe_dtype dtype;
	enum moe_scaling scaling;
	enum moe_sf_layout layout;
	enum moe_act_quant act;
	float act_gs[2];
};

/* v[rows][cols] quantized by the codec into a freshly allocated tensor (NVFP4: global scale gs,
 * <= 0 derived from amax). */
static inline struct moe_qtensor make_qtensor(const float *v, int64_t rows, int64_t cols, const struct wformat *f,
					      float gs)
{
	struct moe_qtensor q = { .dtype = f->dtype, .scaling = f->scaling, .sf_layout = f->layout,
				 .rows = rows, .cols = cols, .global_scale = gs };
	ck_assert_int_eq(moe_qtensor_alloc(&q), MOE_OK);
	moe_quantize__ref(v, &q);
	return q;
}

static inline struct moe_expert_params expert_params(const struct wformat *f, int64_t m, int64_t h, int64_t i)
{
	return (struct moe_expert_params){ .tokens = m, .hidden = h, .inter = i, .weight_dtype = f->dtype,
					   .weight_scaling = f->scaling, .weight_sf_layout = f->layout,
					   .act_quant = f->act, .act_global_scale = { f->act_gs[0], f->act_gs[1] } };
}

/* Random weights: gate and up N(0, 1/H) so that g and u are about N(0, 1) for x ~ N(0, 1), down
 * N(0, 1/I). */
static inline struct moe_expert_weights random_weights(struct rng *r, const struct wformat *f, int64_t h, int64_t i)
{
	struct moe_expert_weights w;
	float *g = normal_array(r, (size_t)(i * h), 1.0 / sqrt((double)h));
	float *u = normal_array(r, (size_t)(i * h), 1.0 / sqrt((double)h));
	float *d = normal_array(r, (size_t)(h * i), 1.0 / sqrt((double)i));
	w.gate = make_qtensor(g, i, h, f, 0.0f);
	w.up = make_qtensor(u, i, h, f, 0.0f);
	w.down = make_qtensor(d, h, i, f, 0.0f);
	free(g);
	free(u);
	free(d);
	return w;
}

static inline void free_weights(struct moe_expert_weights *w)
{
	moe_qtensor_free(&w->gate);
	moe_qtensor_free(&w->up);
	moe_qtensor_free(&w->down);
}

/* A workspace of exactly `bytes`, 64-byte aligned, filled with 0xA5. */
static inline void *garbage_workspace(size_t bytes)
{
	void *ws = NULL;
	if (!bytes)
		return NULL;
	ck_assert_int_eq(posix_memalign(&ws, 64, bytes), 0);
	memset(ws, 0xA5, bytes);
	return ws;
}

static inline void run_expert(moe_expert_fn *fn, const struct moe_expert_params *p, const float *x,
			      const struct moe_expert_weights *w, float *y)
{
	ck_assert_int_eq(moe_expert_validate(p, w), MOE_OK);
	void *ws = garbage_workspace(moe_expert_workspace_bytes(p));
	fn(p, x, w, y, ws);
	free(ws);
}

/* max_i |y_i - ref_i| / bound_i (0/0 counts as 0, e/0 as +inf). */
static inline double max_ratio(const float *y, const double *ref, const double *bound, size_t n)
{
	double worst = 0.0;
	for (size_t i = 0; i < n; i++) {
		const double e = fabs((double)y[i] - ref[i]);
		const double r = e == 0.0 ? 0.0 : bound[i] > 0.0 ? e / bound[i] : INFINITY;
		if (!(r <= worst))
			worst = r;
	}
	return worst;
}

/* The built-in single-variant table `name`'s expert kernel, or NULL (with a line saying why, for
 * the test log `test`) when this CPU lacks its ISA. */
static inline moe_expert_fn *variant_or_skip(const char *name, const char *test)
{
	const struct moe_builtin *b = moe_builtin_find(name);
	ck_assert_ptr_nonnull(b);
	if (b->isa > moe_isa_hardware()) {
		printf("%s: skipped: this CPU lacks %s\n", test, moe_isa_name(b->isa));
		return NULL;
	}
	return b->table->expert;
}

/* Runs fn on (p, x, w) and checks every output against the f64 reference's bound, and that nothing
 * was written past y. Returns y (M * H floats) and, when ref_out is given, the reference's values;
 * the caller frees them. */
static inline float *check_against_f64(moe_expert_fn *fn, const struct moe_expert_params *p, const float *x,
				       const struct moe_expert_weights *w, const char *what, double **ref_out)
{
	const size_t n = (size_t)(p->tokens * p->hidden);
	double *ref = malloc(n * sizeof *ref), *bound = malloc(n * sizeof *bound);
	float *y = malloc((n + 1) * sizeof *y);
	ck_assert(ref && bound && y);
	struct moe_expert_f64_info info;
	ck_assert_int_eq(moe_expert_ref_f64_ex(p, x, w, ref, bound, &info), MOE_OK);
	ck_assert_msg(!info.unbounded, "%s: vacuous case", what);
	y[n] = 777.0f;
	run_expert(fn, p, x, w, y);
	const double worst = max_ratio(y, ref, bound, n);
	ck_assert_msg(worst <= 1.0, "%s (M=%lld H=%lld I=%lld): error/bound %g", what, (long long)p->tokens,
		      (long long)p->hidden, (long long)p->inter, worst);
	ck_assert_msg(y[n] == 777.0f, "%s: wrote past y", what);
	free(bound);
	if (ref_out)
		*ref_out = ref;
	else
		free(ref);
	return y;
}

#endif
