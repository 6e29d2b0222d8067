/* Prefill plus greedy (or teacher-forced) decode over a moe_forward, and the agreement criterion of
 * two forward paths (forward.h: tau and the logit bound it implies). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"

enum moe_status moe_forward_generate(struct moe_forward *f, const int32_t *prompt, int64_t P, int64_t N,
				     const int32_t *forced, int32_t *ids, float *logits, float *hidden,
				     int32_t *argmax, const struct moe_threads *th, moe_fwd_progress_fn *progress,
				     void *progress_ctx)
{
	if (!f || !prompt || P < 1 || N < 0 || !ids || !logits)
		return moe_fail(MOE_ERR_INVALID_ARG, "generate: needs a prompt of >= 1 token, N >= 0, ids and logits");
	if (moe_forward_position(f) != 0)
		return moe_fail(MOE_ERR_INVALID_ARG, "generate: the forward is not at position 0");
	/* each call's hidden rows [L][n][H] are scattered into [L][P+N][H] */
	const struct moe_model *m = moe_forward_model(f);
	const int64_t V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers, TT = P + N;
	float *hl = NULL;
	if (hidden && !(hl = malloc((size_t)L * (size_t)P * (size_t)H * sizeof(float))))
		return moe_fail(MOE_ERR_NOMEM, "generate: no memory for %lld hidden rows", (long long)(L * P));
	memcpy(ids, prompt, (size_t)P * sizeof(int32_t));
	enum moe_status s = moe_forward_run(f, prompt, P, logits, hl, th);
	for (int64_t i = 0; s == MOE_OK && i <= N; i++) {
		const int64_t t0 = i == 0 ? 0 : P + i - 1, n = i == 0 ? P : 1; /* rows just computed */
		if (hidden)
			for (int64_t l = 0; l < L; l++)
				memcpy(hidden + ((size_t)l * (size_t)TT + (size_t)t0) * (size_t)H, hl + (size_t)l * (size_t)n * (size_t)H,
				       (size_t)(n * H) * sizeof(float));
		if (argmax)
			for (int64_t t = t0; t < t0 + n; t++)
				argmax[t] = moe_argmax_f32(logits + t * V, V);
		if (progress)
			progress(progress_ctx, t0 + n, TT);
		if (i == N)
			break;
		const int32_t next = forced ? forced[i] : moe_argmax_f32(logits + (P + i - 1) * V, V);
		ids[P + i] = next;
		s = moe_forward_run(f, &ids[P + i], 1, logits + (P + i) * V, hl, th);
	}
	free(hl);
	return s;
}

double moe_forward_tau(const struct moe_model *m)
{
	switch (m->expert_params.act_quant) {
	case MOE_ACT_NONE: return MOE_FWD_TAU;
	case MOE_ACT_BF16: return 0x1p-5;
	case MOE_ACT_FP8_TENSOR:
	case MOE_ACT_FP8_1x128: return 0x1p-3;
	default: return 0x1p-2;
	}
}

void moe_forward_layer_diff(const float *ref, const float *opt, int64_t T, int64_t H, double tau,
			    struct moe_fwd_layer_diff *out)
{
	*out = (struct moe_fwd_layer_diff){ 0 };
	for (int64_t t = 0; t < T; t++) {
		double ss = 0.0;
		for (int64_t i = 0; i < H; i++)
			ss += (double)ref[t * H + i] * ref[t * H + i];
		const double bound = tau * sqrt(ss / (double)H);
		for (int64_t i = 0; i < H; i++) {
			const double d = fabs((double)opt[t * H + i] - (double)ref[t * H + i]);
			const double r = d / bound;
			if (d > out->max_abs) {
				out->max_abs = d;
				out->bound_there = bound;
			}
			if (r > out->worst || isnan(d)) {
				out->worst = isnan(d) ? INFINITY : r;
				out->worst_t = t;
			}
		}
	}
}

static float qf(const struct moe_qtensor *q, int64_t i)
{
	return q->dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)q->data)[i]) : ((const float *)q->data)[i];
}

double moe_forward_logit_bound(const struct moe_model *m, const float *x)
{
	const int64_t H = m->cfg.hidden_size, V = m->cfg.vocab_size;
	const bool ln = m->cfg.norm == MOE_NORM_LAYERNORM;
	double mu = 0.0, ss = 0.0, var = 0.0;
	for (int64_t i = 0; i < H; i++)
		mu += x[i], ss += (double)x[i] * x[i];
	mu /= (double)H;
	for (int64_t i = 0; i < H; i++)
		var += ((double)x[i] - mu) * ((double)x[i] - mu);
	const double rms = sqrt(ss / (double)H);
	if (!ln)
		mu = 0.0;
	const double sigma = sqrt((ln ? var / (double)H : ss / (double)H) + (double)m->cfg.norm_eps);
	const double d0 = moe_forward_tau(m) * rms / sigma;
	double worst = 0.0;
	for (int64_t v = 0; v < V; v++) {
		double acc = 0.0;
		for (int64_t i = 0; i < H; i++)
			acc += fabs((double)qf(&m->lm_head, v * H + i)) * fabs((double)qf(&m->final_norm, i)) *
			       (2.0 + fabs((double)x[i] - mu) / sigma);
		worst = acc > worst ? acc : worst;
	}
	return fabs((double)m->cfg.logit_scale) * d0 * worst;
}
