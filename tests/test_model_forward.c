/* Unit tests of the forward pass (model/forward*.c, attention*.c, rope.c, linear*.c, kv_cache.c).
 *
 * Hand-worked values for the smallest pieces: RoPE on a 4-dim head at positions 0 and 1 (theta
 * 10000; the cosines and sines written out below), the sliding-window mask W = 2 under both
 * conventions (the visible keys read back through an attention whose values are their positions),
 * and one parallel-residual step of a one-layer model whose projections are identities, so
 * x' = x + 2h + silu(h) * h with h = x / sqrt(1 + eps) can be written down. Then whole models built
 * in memory from seeded weights (the two kinds of routing, both norms, both shared combines, a
 * dense prefix, sliding and full layers): the reference and the optimized path agree under the
 * stated criterion (forward.h, MOE_FWD_TAU) at 1 and 2 threads; each path gives the same bits at 1
 * and 2 threads; prefill and token-by-token decode agree; the linear ops match a double product. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "forward_impl.h"
#include "test_rng.h"

/* ---- models in memory ---- */

struct tiny {
	const char *name;
	int32_t L, H, heads, kv, hd, V, E, K, I, DI, shared, W, dense_prefix;
	enum moe_norm_kind norm;
	enum moe_model_selection sel;
	bool norm_topk;
	enum moe_shared_combine combine;
	enum moe_dtype wdt; /* dense and expert weights */
};

static const struct tiny tiny_a = { "sigmoid-ln-average-dense", 4, 64, 4, 2, 16, 97, 8, 2, 32, 48, 1, 3, 1,
				    MOE_NORM_LAYERNORM, MOE_MODEL_SELECT_SIGMOID, true, MOE_SHARED_AVERAGE, MOE_DTYPE_BF16 };
static const struct tiny tiny_b = { "softmax-rms-sum-f32", 3, 48, 6, 3, 16, 80, 6, 3, 24, 0, 2, 2, 0,
				    MOE_NORM_RMSNORM, MOE_MODEL_SELECT_SOFTMAX, false, MOE_SHARED_SUM, MOE_DTYPE_F32 };
static const struct tiny tiny_c = { "softmax-ln-none-hd8", 2, 32, 4, 1, 8, 50, 4, 2, 16, 0, 0, 4, 0,
				    MOE_NORM_LAYERNORM, MOE_MODEL_SELECT_SOFTMAX, true, MOE_SHARED_NONE, MOE_DTYPE_BF16 };

static void fill(struct moe_qtensor *q, enum moe_dtype dt, int64_t rows, int64_t cols, double sd, double mean)
{
	*q = (struct moe_qtensor){ .dtype = dt, .scaling = MOE_SCALING_NONE, .rows = rows, .cols = cols };
	ck_assert_int_eq(moe_qtensor_alloc(q), MOE_OK);
	for (int64_t i = 0; i < rows * cols; i++) {
		const float v = (float)(mean + sd * rng_normal());
		if (dt == MOE_DTYPE_F32)
			((float *)q->data)[i] = v;
		else
			((moe_bf16 *)q->data)[i] = moe_f32_to_bf16(v);
	}
}

static void fill_expert(struct moe_expert_weights *w, enum moe_dtype dt, int64_t H, int64_t I)
{
	fill(&w->gate, dt, I, H, 1.0 / sqrt((double)H), 0.0);
	fill(&w->up, dt, I, H, 1.0 / sqrt((double)H), 0.0);
	fill(&w->down, dt, H, I, 1.0 / sqrt((double)I), 0.0);
}

static void free_expert(struct moe_expert_weights *w)
{
	moe_qtensor_free(&w->gate);
	moe_qtensor_free(&w->up);
	moe_qtensor_free(&w->down);
}

static struct moe_model *build(const struct tiny *t, uint64_t seed)
{
	rng_state = seed;
	struct moe_model *m = calloc(1, sizeof *m);
	struct moe_model_config *c = &m->cfg;
	c->vocab_size = t->V;
	c->hidden_size = t->H;
	c->intermediate_size = t->I;
	c->prefix_dense_intermediate_size = t->DI;
	c->num_hidden_layers = t->L;
	c->num_attention_heads = t->heads;
	c->num_key_value_heads = t->kv;
	c->head_dim = t->hd;
	c->norm = t->norm;
	c->norm_eps = 1e-5f;
	c->logit_scale = 0.5f;
	c->tie_word_embeddings = true;
	c->rope_theta = 10000.0;
	c->sliding_window = t->W;
	c->max_position_embeddings = 256;
	c->num_experts = t->E;
	c->num_experts_per_tok = t->K;
	c->num_shared_experts = t->shared;
	c->shared_combine = t->shared ? t->combine : MOE_SHARED_NONE;
	c->selection = t->sel;
	c->norm_topk_prob = t->norm_topk;
	for (int32_t l = 0; l < t->L; l++) {
		c->dense[l] = l < t->dense_prefix;
		c->sliding[l] = (l + 1) % 4 != 0; /* pattern 4: every 4th layer full */
		c->rope[l] = c->sliding[l];
	}
	m->expert_params = (struct moe_expert_params){ 0, t->H, t->I, t->wdt, MOE_SCALING_NONE, MOE_SF_LINEAR,
						       MOE_ACT_NONE, { 0, 0 } };
	fill(&m->embed, t->wdt, t->V, t->H, 1.0, 0.0);
	m->lm_head = m->embed;
	fill(&m->final_norm, MOE_DTYPE_F32, 1, t->H, 0.1, 1.0);
	m->layers = calloc((size_t)t->L, sizeof *m->layers);
	for (int32_t l = 0; l < t->L; l++) {
		struct moe_model_layer *ly = &m->layers[l];
		const double s = 1.0 / sqrt((double)t->H);
		fill(&ly->input_norm, MOE_DTYPE_F32, 1, t->H, 0.1, 1.0);
		fill(&ly->q_proj, t->wdt, (int64_t)t->heads * t->hd, t->H, 2.0 * s, 0.0);
		fill(&ly->k_proj, t->wdt, (int64_t)t->kv * t->hd, t->H, 2.0 * s, 0.0);
		fill(&ly->v_proj, t->wdt, (int64_t)t->kv * t->hd, t->H, s, 0.0);
		fill(&ly->o_proj, t->wdt, t->H, (int64_t)t->heads * t->hd, 1.0 / sqrt((double)t->heads * t->hd), 0.0);
		if (c->dense[l]) {
			fill_expert(&ly->dense_mlp, t->wdt, t->H, t->DI);
			continue;
		}
		fill(&ly->router, t->wdt, t->E, t->H, s, 0.0);
		ly->experts = calloc((size_t)t->E, sizeof *ly->experts);
		for (int32_t e = 0; e < t->E; e++)
			fill_expert(&ly->experts[e], t->wdt, t->H, t->I);
		if (t->shared)
			fill_expert(&ly->shared, t->wdt, t->H, (int64_t)t->I * t->shared);
	}
	return m;
}

static void unbuild(struct moe_model *m)
{
	for (int32_t l = 0; l < m->cfg.num_hidden_layers; l++) {
		struct moe_model_layer *ly = &m->layers[l];
		moe_qtensor_free(&ly->input_norm);
		moe_qtensor_free(&ly->q_proj);
		moe_qtensor_free(&ly->k_proj);
		moe_qtensor_free(&ly->v_proj);
		moe_qtensor_free(&ly->o_proj);
		moe_qtensor_free(&ly->router);
		free_expert(&ly->dense_mlp);
		free_expert(&ly->shared);
		if (ly->experts)
			for (int32_t e = 0; e < m->cfg.num_experts; e++)
				free_expert(&ly->experts[e]);
		free(ly->experts);
	}
	free(m->layers);
	moe_qtensor_free(&m->embed);
	moe_qtensor_free(&m->final_norm);
	free(m);
}

/* ---- hand-worked pieces ---- */

START_TEST(test_rope_hand)
{
	struct moe_rope r;
	ck_assert_int_eq(moe_rope_init(&r, 2, 4, 10000.0), MOE_OK);
	/* the same head at positions 0 and 1: [2][1 head][4] */
	float x[8] = { 1, 2, 3, 4, 1, 2, 3, 4 };
	moe_rope_apply(&r, 2, 0, 1, 4, x);
	/* position 0: angle 0, unchanged */
	ck_assert_float_eq(x[0], 1.0f);
	ck_assert_float_eq(x[1], 2.0f);
	ck_assert_float_eq(x[2], 3.0f);
	ck_assert_float_eq(x[3], 4.0f);
	/* position 1: pair (1,2) turns by 1 rad (freq 10000^0), pair (3,4) by 0.01 rad (10000^(-2/4));
	 * cos 1 = 0.540302306, sin 1 = 0.841470985, cos 0.01 = 0.999950000, sin 0.01 = 0.009999833:
	 * (1c - 2s, 1s + 2c) = (-1.142639664, 1.922075597); (3c - 4s, 3s + 4c) = (2.959850668, 4.029799502) */
	ck_assert_double_eq_tol(x[4], -1.142639664, 1e-6);
	ck_assert_double_eq_tol(x[5], 1.922075597, 1e-6);
	ck_assert_double_eq_tol(x[6], 2.959850668, 1e-6);
	ck_assert_double_eq_tol(x[7], 4.029799502, 1e-6);
	/* pairs are (x[2i], x[2i+1]), not split halves: a half-split RoPE would mix x[0] with x[2] */
	moe_rope_free(&r);
}
END_TEST

/* Values v_j = j in every dimension and q = 0 (all scores equal): the output is the mean of the
 * visible positions, which names the window. */
static void window_case(moe_attention_fn *fn, int64_t W, int64_t qpos, double want)
{
	enum { HD = 16, CTX = 6 };
	float k[CTX * HD], v[CTX * HD], q[HD] = { 0 }, out[HD], scratch[2 * CTX];
	for (int j = 0; j < CTX; j++)
		for (int d = 0; d < HD; d++) {
			k[j * HD + d] = (float)(d - j);
			v[j * HD + d] = (float)j;
		}
	const struct moe_attn_params p = { 1, 1, HD, W, HD, 0.25f };
	fn(&p, 1, qpos, q, k, v, out, scratch, moe_threads_serial());
	for (int d = 0; d < HD; d++)
		ck_assert_double_eq_tol(out[d], want, 1e-6);
}

START_TEST(test_window_hand)
{
	/* W = 2. HF masks kv_idx <= q_idx - W: a query at 3 sees keys 2, 3 (mean 2.5); W + 1 sees 1, 2, 3
	 * (mean 2). At position 0 both see key 0 alone; at position 1 both see 0, 1 (mean 0.5). */
	ck_assert_int_eq(moe_attn_first_key(3, 2), 2);
	ck_assert_int_eq(moe_attn_first_key(3, 3), 1);
	ck_assert_int_eq(moe_attn_first_key(0, 2), 0);
	ck_assert_int_eq(moe_attn_first_key(5, 0), 0);
	moe_attention_fn *fns[2] = { moe_attention__ref, moe_linear_avx512_available() ? moe_attention__avx512 : moe_attention__ref };
	for (int i = 0; i < 2; i++) {
		window_case(fns[i], 2, 3, 2.5);  /* hf */
		window_case(fns[i], 3, 3, 2.0);  /* plus1: the forward passes W + 1 */
		window_case(fns[i], 2, 0, 0.0);
		window_case(fns[i], 2, 1, 0.5);
		window_case(fns[i], 0, 3, 1.5);  /* full attention: 0..3 */
	}
}
END_TEST

/* One layer, H = 16, one head of 16, RMSNorm with unit weight, dense MLP of width 16 with
 * gate = up = down = I, v = I, o = 2I, q = k = 0: a single token attends to itself only, so
 * attn(h) = 2h and mlp(h) = silu(h) * h with h = x / sqrt(1 + eps). x = (+1, -1, ...):
 * x' = 1 + 2h + silu(h) h = 3.731040285 for +1, -1 - 2h + silu(-h)(-h) = -2.731050285 for -1. */
START_TEST(test_parallel_residual_hand)
{
	enum { H = 16 };
	struct moe_model *m = calloc(1, sizeof *m);
	struct moe_model_config *c = &m->cfg;
	*c = (struct moe_model_config){ .vocab_size = 2, .hidden_size = H, .intermediate_size = H,
					.prefix_dense_intermediate_size = H, .num_hidden_layers = 1,
					.num_attention_heads = 1, .num_key_value_heads = 1, .head_dim = H,
					.norm = MOE_NORM_RMSNORM, .norm_eps = 1e-5f, .logit_scale = 1.0f,
					.rope_theta = 10000.0, .num_experts = 0 };
	c->dense[0] = true;
	m->expert_params = (struct moe_expert_params){ 0, H, H, MOE_DTYPE_F32, MOE_SCALING_NONE, MOE_SF_LINEAR, MOE_ACT_NONE, { 0, 0 } };
	rng_state = 1;
	fill(&m->embed, MOE_DTYPE_F32, 2, H, 0.0, 0.0);
	for (int i = 0; i < H; i++)
		((float *)m->embed.data)[i] = i % 2 ? -1.0f : 1.0f;
	m->lm_head = m->embed;
	fill(&m->final_norm, MOE_DTYPE_F32, 1, H, 0.0, 1.0);
	m->layers = calloc(1, sizeof *m->layers);
	struct moe_model_layer *ly = &m->layers[0];
	fill(&ly->input_norm, MOE_DTYPE_F32, 1, H, 0.0, 1.0);
	fill(&ly->q_proj, MOE_DTYPE_F32, H, H, 0.0, 0.0);
	fill(&ly->k_proj, MOE_DTYPE_F32, H, H, 0.0, 0.0);
	fill(&ly->v_proj, MOE_DTYPE_F32, H, H, 0.0, 0.0);
	fill(&ly->o_proj, MOE_DTYPE_F32, H, H, 0.0, 0.0);
	fill_expert(&ly->dense_mlp, MOE_DTYPE_F32, H, H);
	struct moe_qtensor *eye[] = { &ly->v_proj, &ly->o_proj, &ly->dense_mlp.gate, &ly->dense_mlp.up, &ly->dense_mlp.down };
	for (size_t i = 0; i < sizeof eye / sizeof eye[0]; i++) {
		memset(eye[i]->data, 0, H * H * sizeof(float));
		for (int d = 0; d < H; d++)
			((float *)eye[i]->data)[d * H + d] = i == 1 ? 2.0f : 1.0f;
	}
	for (int path = 0; path < 2; path++) {
		struct moe_fwd_options o = { .path = path ? MOE_FWD_OPT : MOE_FWD_REF, .profile = MOE_PROFILE_VLLM, .context = 4 };
		struct moe_forward *f;
		ck_assert_int_eq(moe_forward_create(m, &o, NULL, &f), MOE_OK);
		const int32_t id = 0;
		float hidden[H], logits[2];
		ck_assert_int_eq(moe_forward_run(f, &id, 1, logits, hidden, NULL), MOE_OK);
		for (int i = 0; i < H; i++)
			ck_assert_double_eq_tol(hidden[i], i % 2 ? -2.731050285 : 3.731040285, 2e-6);
		/* final RMSNorm of (a, -b, ...) dotted with (1, -1, ...) = (H/2)(a + b) / rms */
		const double a = 3.731040285, b = 2.731050285, rms = sqrt((a * a + b * b) / 2 + 1e-5);
		ck_assert_double_eq_tol(logits[0], H / 2 * (a + b) / rms, 1e-4);
		ck_assert_double_eq_tol(logits[1], 0.0, 1e-6);
		moe_forward_free(f);
	}
	moe_qtensor_free(&ly->input_norm);
	moe_qtensor_free(&ly->q_proj);
	moe_qtensor_free(&ly->k_proj);
	moe_qtensor_free(&ly->v_proj);
	moe_qtensor_free(&ly->o_proj);
	free_expert(&ly->dense_mlp);
	free(m->layers);
	moe_qtensor_free(&m->embed);
	moe_qtensor_free(&m->final_norm);
	free(m);
}
END_TEST

/* ---- the linear ops against a double product ---- */

START_TEST(test_linear_vs_double)
{
	/* T, N, K: decode, token tiles of 6 and 3 and single tokens, the widened bf16 panel (T >= 12) */
	const int64_t shapes[][3] = { { 1, 37, 53 }, { 5, 64, 16 }, { 9, 19, 100 }, { 4, 8, 1 }, { 13, 21, 40 }, { 20, 37, 70 } };
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int dt = 0; dt < 2; dt++) {
			const int64_t T = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
			rng_state = 77 + s;
			struct moe_qtensor w;
			fill(&w, dt ? MOE_DTYPE_BF16 : MOE_DTYPE_F32, N, K, 1.0, 0.0);
			float *x = malloc((size_t)(T * K) * sizeof(float)), *y0 = malloc((size_t)(T * N) * sizeof(float));
			float *y1 = malloc((size_t)(T * N) * sizeof(float));
			for (int64_t i = 0; i < T * K; i++)
				x[i] = (float)rng_normal();
			moe_linear__ref(&w, T, x, y0, NULL);
			if (moe_linear_avx512_available()) {
				moe_linear__avx512(&w, T, x, y1, NULL);
				/* the per-output sum is the same whatever the tile: each token alone gives the same bits */
				float *y2 = malloc((size_t)N * sizeof(float));
				for (int64_t t = 0; t < T; t++) {
					moe_linear__avx512(&w, 1, x + t * K, y2, NULL);
					ck_assert_msg(!memcmp(y2, y1 + t * N, (size_t)N * sizeof(float)),
						      "opt T=%lld: token %lld alone gives other bits", (long long)T, (long long)t);
				}
				free(y2);
			} else {
				memcpy(y1, y0, (size_t)(T * N) * sizeof(float));
			}
			for (int64_t t = 0; t < T; t++)
				for (int64_t n = 0; n < N; n++) {
					double acc = 0.0, mag = 0.0;
					for (int64_t k = 0; k < K; k++) {
						const double wv = dt ? moe_bf16_to_f32(((moe_bf16 *)w.data)[n * K + k])
								     : ((float *)w.data)[n * K + k];
						acc += wv * x[t * K + k];
						mag += fabs(wv * x[t * K + k]);
					}
					/* any order of K fp32 additions: |err| <= K u sum|terms| (u = 2^-24) */
					const double bound = (double)K * 0x1p-24 * mag * 1.01;
					ck_assert_msg(fabs(y0[t * N + n] - acc) <= bound, "ref T=%lld N=%lld K=%lld", (long long)T, (long long)N, (long long)K);
					ck_assert_msg(fabs(y1[t * N + n] - acc) <= bound, "opt T=%lld N=%lld K=%lld", (long long)T, (long long)N, (long long)K);
				}
			free(x);
			free(y0);
			free(y1);
			moe_qtensor_free(&w);
		}
}
END_TEST

/* ---- whole models ---- */

struct run_out {
	int32_t *ids, *argmax;
	float *logits, *hidden;
};

static struct run_out run(const struct moe_model *m, enum moe_fwd_path path, enum moe_window_conv wc,
			  const struct moe_threads *th, const int32_t *prompt, int64_t P, int64_t N, const int32_t *forced)
{
	const int64_t TT = P + N, V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers;
	struct run_out r = { malloc((size_t)TT * 4), malloc((size_t)TT * 4), malloc((size_t)(TT * V) * 4),
			     malloc((size_t)(L * TT * H) * 4) };
	struct moe_fwd_options o = { .path = path, .profile = MOE_PROFILE_VLLM, .window = wc, .context = TT };
	struct moe_forward *f;
	ck_assert_msg(moe_forward_create(m, &o, th, &f) == MOE_OK, "%s", moe_last_error());
	ck_assert_msg(moe_forward_generate(f, prompt, P, N, forced, r.ids, r.logits, r.hidden, r.argmax, th, NULL, NULL) == MOE_OK,
		      "%s", moe_last_error());
	moe_forward_free(f);
	return r;
}

static void run_free(struct run_out *r)
{
	free(r->ids);
	free(r->argmax);
	free(r->logits);
	free(r->hidden);
}

static bool same_bits(const struct run_out *a, const struct run_out *b, const struct moe_model *m, int64_t TT)
{
	const int64_t V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers;
	return !memcmp(a->ids, b->ids, (size_t)TT * 4) && !memcmp(a->logits, b->logits, (size_t)(TT * V) * 4) &&
	       !memcmp(a->hidden, b->hidden, (size_t)(L * TT * H) * 4);
}

static void check_model(const struct tiny *t, struct moe_pool *pool)
{
	struct moe_model *m = build(t, 1000 + (uint64_t)t->H);
	enum { P = 9, N = 6 };
	const int64_t TT = P + N, V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers;
	int32_t prompt[P];
	for (int i = 0; i < P; i++)
		prompt[i] = (int32_t)((i * 37 + 5) % V);
	const struct moe_threads *two = moe_pool_threads(pool);
	for (int wc = 0; wc < 2; wc++) {
		struct run_out r1 = run(m, MOE_FWD_REF, wc, NULL, prompt, P, N, NULL);
		struct run_out r2 = run(m, MOE_FWD_REF, wc, two, prompt, P, N, NULL);
		ck_assert_msg(same_bits(&r1, &r2, m, TT), "%s: reference path differs between 1 and 2 threads", t->name);
		struct run_out o1 = run(m, MOE_FWD_OPT, wc, NULL, prompt, P, N, r1.ids + P);
		struct run_out o2 = run(m, MOE_FWD_OPT, wc, two, prompt, P, N, r1.ids + P);
		ck_assert_msg(same_bits(&o1, &o2, m, TT), "%s: optimized path differs between 1 and 2 threads", t->name);
		for (int64_t l = 0; l < L; l++) {
			struct moe_fwd_layer_diff d;
			moe_forward_layer_diff(r1.hidden + l * TT * H, o1.hidden + l * TT * H, TT, H, MOE_FWD_TAU, &d);
			ck_assert_msg(d.worst <= 1.0, "%s window %d layer %lld: max |diff| %g, %g of the bound", t->name, wc,
				      (long long)l, d.max_abs, d.worst);
		}
		int checked = 0;
		for (int64_t tk = P - 1; tk < TT; tk++) {
			const float *lg = r1.logits + tk * V;
			const int32_t a = moe_argmax_f32(lg, V);
			float second = -INFINITY;
			for (int64_t v = 0; v < V; v++)
				if (v != a && lg[v] > second)
					second = lg[v];
			const double B = moe_forward_logit_bound(m, r1.hidden + ((L - 1) * TT + tk) * H);
			if (lg[a] - second > 2.0 * B) {
				ck_assert_msg(o1.argmax[tk] == a, "%s: greedy token differs at %lld", t->name, (long long)tk);
				checked++;
			}
		}
		ck_assert_msg(checked > 0, "%s: no position had a clear margin", t->name);
		/* prefill of everything at once against token-by-token: same function */
		struct run_out pf = run(m, MOE_FWD_OPT, wc, NULL, r1.ids, TT, 0, NULL);
		for (int64_t l = 0; l < L; l++) {
			struct moe_fwd_layer_diff d;
			moe_forward_layer_diff(o1.hidden + l * TT * H, pf.hidden + l * TT * H, TT, H, MOE_FWD_TAU, &d);
			ck_assert_msg(d.worst <= 1.0, "%s: prefill vs decode layer %lld: %g of the bound", t->name, (long long)l, d.worst);
		}
		run_free(&pf);
		run_free(&r1);
		run_free(&r2);
		run_free(&o1);
		run_free(&o2);
	}
	unbuild(m);
}

START_TEST(test_paths_agree)
{
	struct moe_pool *pool;
	ck_assert_int_eq(moe_pool_create(2, NULL, &pool), MOE_OK);
	check_model(&tiny_a, pool);
	check_model(&tiny_b, pool);
	check_model(&tiny_c, pool);
	moe_pool_destroy(pool);
}
END_TEST

/* A decode token's bytes are the weights' bytes in their format, whatever holds them: the OPT path's
 * packed handles (bf16 W16A16 packs hold the panels and the rows, twice the bytes) must not change
 * the count; the REF path holds no handle. */
START_TEST(test_decode_bytes_ignore_packing)
{
	struct moe_model *m = build(&tiny_a, 11);
	m->expert_params.act_quant = MOE_ACT_BF16;
	struct moe_fwd_options o = { .path = MOE_FWD_REF, .profile = MOE_PROFILE_VLLM, .context = 16 };
	struct moe_forward *fr, *fo;
	ck_assert_msg(moe_forward_create(m, &o, NULL, &fr) == MOE_OK, "%s", moe_last_error());
	o.path = MOE_FWD_OPT;
	ck_assert_msg(moe_forward_create(m, &o, NULL, &fo) == MOE_OK, "%s", moe_last_error());
	const double br = moe_forward_decode_bytes(fr, 5), bo = moe_forward_decode_bytes(fo, 5);
	ck_assert_msg(br > 0 && bo == br, "decode bytes: opt %.0f, ref %.0f", bo, br);
	moe_forward_free(fr);
	moe_forward_free(fo);
	unbuild(m);
}
END_TEST

/* The window convention changes the result exactly where a sliding layer sees more than W keys,
 * and the criterion notices: a forward with the other convention is far outside the bound. */
START_TEST(test_window_convention_matters)
{
	struct moe_model *m = build(&tiny_a, 5);
	enum { P = 8 };
	int32_t prompt[P] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct run_out a = run(m, MOE_FWD_REF, MOE_WINDOW_HF, NULL, prompt, P, 0, NULL);
	struct run_out b = run(m, MOE_FWD_REF, MOE_WINDOW_PLUS1, NULL, prompt, P, 0, NULL);
	const int64_t H = m->cfg.hidden_size;
	struct moe_fwd_layer_diff d;
	/* layer 0 (sliding, W = 3): positions 0..2 see at most 3 keys under both conventions */
	moe_forward_layer_diff(a.hidden, b.hidden, 3, H, MOE_FWD_TAU, &d);
	ck_assert_double_eq(d.max_abs, 0.0);
	moe_forward_layer_diff(a.hidden, b.hidden, P, H, MOE_FWD_TAU, &d);
	ck_assert_msg(d.worst > 10.0, "window conventions gave %g of the bound apart", d.worst);
	run_free(&a);
	run_free(&b);
	unbuild(m);
}
END_TEST

START_TEST(test_bad_input)
{
	struct moe_model *m = build(&tiny_b, 9);
	struct moe_fwd_options o = { .path = MOE_FWD_OPT, .profile = MOE_PROFILE_VLLM, .context = 4 };
	struct moe_forward *f;
	ck_assert_int_eq(moe_forward_create(m, &o, NULL, &f), MOE_OK);
	const int32_t bad = 80, ok[5] = { 1, 2, 3, 4, 5 };
	float lg[5 * 80];
	ck_assert_int_eq(moe_forward_run(f, &bad, 1, lg, NULL, NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "outside the vocabulary"));
	ck_assert_int_eq(moe_forward_run(f, ok, 5, lg, NULL, NULL), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "overflow the context"));
	ck_assert_int_eq(moe_forward_position(f), 0);
	moe_forward_free(f);
	o.context = 0;
	ck_assert_int_eq(moe_forward_create(m, &o, NULL, &f), MOE_ERR_INVALID_ARG);
	/* the flashinfer profile refuses E = 6 (E % 4 != 0) */
	o.context = 4;
	o.profile = MOE_PROFILE_FLASHINFER;
	ck_assert_int_eq(moe_forward_create(m, &o, NULL, &f), MOE_ERR_INVALID_ARG);
	unbuild(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("model_forward");
	TCase *tc = tcase_create("forward");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_rope_hand);
	tcase_add_test(tc, test_window_hand);
	tcase_add_test(tc, test_parallel_residual_hand);
	tcase_add_test(tc, test_linear_vs_double);
	tcase_add_test(tc, test_paths_agree);
	tcase_add_test(tc, test_decode_bytes_ignore_packing);
	tcase_add_test(tc, test_window_convention_matters);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
