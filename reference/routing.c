/* The scalar reference router: the ten methods of routing.md under the three profiles, one token
 * row at a time, in fp32 (bf16 logits and biases convert exactly; -ffp-contract=off).
 *
 * Per token, with x[e] the fp32 logit, s[e] = sig(x[e]) in the profile's form, b[e] the bias,
 * S the sum over the K selected in the profile's order (routing_score.c) and topk() the rank order
 * of routing_select.c (slot 0 = best; equal keys: lower index; flashinfer: the float total order
 * of the bits; HF: torch.topk's, every NaN first and -0.0 == +0.0; vLLM: `>`, NaN last):
 *
 *   Default           p = softmax(x) over E; ids = topk(p); w = p
 *   Renormalize       ids = topk(x), ranked in the input dtype (bf16 -> fp32 is exact and keeps
 *                     the order); w = softmax of the K selected logits
 *   RenormalizeNaive  p = softmax(x); ids = topk(p); w = p / S. The flashinfer profile runs the
 *                     Renormalize algorithm instead (flashinfer >= v0.6.8 does), so its ids rank
 *                     logits, not rounded probabilities, and its weights are Renormalize's
 *   DeepSeekV3        key = s + b; grouped (n_group > 1): a group's score is the sum of its two
 *                     best keys (vLLM without a bias: its best key), the topk_group best groups
 *                     are kept (equal scores: lower group index), ids = topk(key) over the experts
 *                     of the kept groups. The other experts are out of the race under flashinfer
 *                     and vLLM (their -inf mask); HF fills their key with 0.0, so with negative
 *                     keys HF picks experts of groups it did not keep, as transformers does.
 *                     flashinfer rounds the bias to bf16 in this grouped path only. Ungrouped
 *                     (n_group <= 1) it selects as MiniMax2 (bias not rounded).
 *                     Weights from the unbiased s, below.
 *   Llama4            K = 1; id = the first non-NaN logit, replaced by each later one strictly
 *                     greater (so -0.0 equals +0.0, the lower index wins, and -inf counts as a
 *                     value): a NaN is chosen only when the whole row is NaN, and then id 0.
 *                     [NaN, -inf, -inf, -inf] gives id 1 (w 0). w = sig(x[id]); every profile
 *                     (vLLM on its clamped logits, below)
 *   TopK              ids = topk(x); w = x[ids] (raw logits)
 *   SigmoidRenorm     ids = topk(s); w = s / denominator if renormalize, else s
 *   MiniMax2          ids = topk(s + b); w from the unbiased s, below
 *   Sigmoid           ids = topk(s); w = s
 *   TopKSigmoid       ids = topk(x) on raw logits; w = sig(x[ids])
 *
 * Softmax (over E, or over the K selected for Renormalize): m = the largest value, NaN ignored
 * (fmaxf from -inf); e = expf(v - m); Z = left-to-right sum of e over E, or S over the K; p = e / Z.
 *
 * Renormalization, rsf (routed_scaling_factor, MiniMax2 and DeepSeekV3 only) and epsilon:
 *
 *   method         flashinfer                 vLLM                  HF
 *   Renormalize    e / S                      e / S                 e / S
 *   RenormNaive    (as Renormalize)           p / S'                p / S
 *   SigmoidRenorm  s / fmaxf(S, 1e-20f)       s / S'                s / S
 *   MiniMax2       (s * rsf) / (S + 1e-20f)   (s / S') * rsf        (s / S) * rsf
 *   DeepSeekV3     (s * rsf) / (S + 1e-20f)   (s / S') * rsf        (s / (S + 1e-20f)) * rsf
 *
 * with S' = S > 0 ? S : 1 (vLLM's CUDA guard; Renormalize needs none, its S >= 1). HF's
 * MiniMax-M2, Cohere2-MoE and Qwen3-MoE routers divide by the bare sum; its DeepSeek-V3 router adds
 * 1e-20 whatever n_group is. So when every
 * selected sigmoid underflows to 0, HF's SigmoidRenorm and MiniMax2 weights are 0/0 = NaN (the
 * upstream bug routing.md lists), everything else gives 0. Ungrouped DeepSeekV3 therefore equals
 * MiniMax2 bit for bit under flashinfer and vLLM; under HF only the 1e-20 differs.
 *
 * vLLM profile: a NaN or +-inf SCORE is replaced by +0.0 before selection (vLLM PR #39391 clamps
 * the array it ranks), and the weights are computed from the clamped scores. The score is the
 * softmax probability (Default, RenormalizeNaive), the sigmoid before any bias is added (Sigmoid,
 * SigmoidRenorm, MiniMax2, DeepSeekV3) or the raw logit (Renormalize, TopK, TopKSigmoid,
 * Llama4). So:
 *   - softmax: one NaN or +inf logit makes the row's sum, hence every probability, NaN: the whole
 *     row clamps to 0, ids 0..K-1, weights 0 (RenormalizeNaive divides by S > 0 ? S : 1 = 1). An
 *     all -inf row too (expf(-inf - -inf) is NaN); a -inf logit among finite ones just has p = 0;
 *   - sigmoid: a NaN logit's score clamps to 0; sig(+inf) = 1 and sig(-inf) = 0 stay;
 *   - raw logit: a non-finite logit becomes 0 before it is ranked (an all-NaN row gives ids
 *     0..K-1, a -inf outranks negative logits, +inf loses its first place), and the weight sees
 *     that 0: TopK 0, TopKSigmoid and Llama4 sig(0) = 0.5, Renormalize's softmax over the K.
 * The bias is not touched: a non-finite bias ranks as routing_select.c says.
 *
 * Output: ids always distinct and in [0, E) whatever the data; weights in the profile's precision
 * (routing_score.c). A computed NaN weight is the positive quiet NaN; TopK copies its logit, NaN
 * included (bf16-rounded under flashinfer and HF).
 *
 * Left to the model layer: routing.md's Cohere2-MoE rows (HF ranks raw bf16 logits for its
 * sigmoid router and renormalizes its softmax router regardless of norm_topk_prob) describe which
 * method each engine runs for that model; the methods themselves keep the semantics above under
 * every profile. */
#include <assert.h>
#include <math.h>

#include "routing_internal.h"

static float logit_in(const struct moe_route_row *r, int32_t e)
{
	return r->p->logits_dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)r->logits)[e])
						    : ((const float *)r->logits)[e];
}

/* The logit as the methods that rank raw logits see it: it is their score. */
static float logit(const struct moe_route_row *r, int32_t e)
{
	return moe_route_clamp(r->p->profile, logit_in(r, e));
}

static float bias_at(const struct moe_route_row *r, int32_t e)
{
	float b = r->p->bias_dtype == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)r->bias)[e])
						     : ((const float *)r->bias)[e];
	return r->round_bias ? moe_round_bf16(b) : b;
}

/* The sigmoid score of the sigmoid-scored methods, clamped as a score. */
static float sigmoid_at(const struct moe_route_row *r, int32_t e)
{
	const enum moe_profile profile = r->p->profile;
	return moe_route_clamp(profile, moe_route_sigmoid(profile, logit_in(r, e)));
}

/* The weight of the methods that rank raw logits and weigh by a sigmoid (TopKSigmoid, Llama4):
 * the sigmoid of their (clamped) score. */
static float sigmoid_of_logit(const struct moe_route_row *r, int32_t e)
{
	return moe_route_sigmoid(r->p->profile, logit(r, e));
}

static float prob_at(const struct moe_route_row *r, int32_t e)
{
	return moe_route_clamp(r->p->profile, moe_route_canon(expf(logit_in(r, e) - r->smax) / r->ssum));
}

static float biased_at(const struct moe_route_row *r, int32_t e)
{
	float s = sigmoid_at(r, e);
	return r->bias ? moe_route_canon(s + bias_at(r, e)) : s;
}

static bool key_logit(struct moe_route_row *r, int32_t e, float *key)
{
	*key = logit(r, e);
	return true;
}

static bool key_prob(struct moe_route_row *r, int32_t e, float *key)
{
	*key = prob_at(r, e);
	return true;
}

static bool key_sigmoid(struct moe_route_row *r, int32_t e, float *key)
{
	*key = sigmoid_at(r, e);
	return true;
}

static bool key_biased(struct moe_route_row *r, int32_t e, float *key)
{
	*key = biased_at(r, e);
	return true;
}

/* Score of group g: its best key plus its second best (vLLM without a bias: the best alone). */
static bool key_group(struct moe_route_row *r, int32_t g, float *score)
{
	const enum moe_profile profile = r->p->profile;
	const int32_t first = g * r->group_size;
	int32_t i1 = -1, i2 = -1;
	float k1 = 0.0f, k2 = 0.0f;
	for (int32_t e = first; e < first + r->group_size; e++) {
		float k = biased_at(r, e);
		if (i1 < 0 || moe_route_before(profile, k, e, k1, i1)) {
			i2 = i1;
			k2 = k1;
			i1 = e;
			k1 = k;
		} else if (i2 < 0 || moe_route_before(profile, k, e, k2, i2)) {
			i2 = e;
			k2 = k;
		}
	}
	bool top2 = r->bias || profile != MOE_PROFILE_VLLM;
	assert(i1 >= 0 && (!top2 || i2 >= 0));
	*score = top2 ? moe_route_canon(k1 + k2) : k1;
	return true;
}

static bool group_kept(struct moe_route_row *r, int32_t g)
{
	if (g != r->open_group) {
		float score;
		key_group(r, g, &score);
		r->open_group = g;
		r->open = g == r->cut_group ||
			  moe_route_before(r->p->profile, score, g, r->cut_score, r->cut_group);
	}
	return r->open;
}

static bool key_grouped(struct moe_route_row *r, int32_t e, float *key)
{
	if (group_kept(r, e / r->group_size)) {
		*key = biased_at(r, e);
		return true;
	}
	if (r->p->profile == MOE_PROFILE_HF) {
		*key = 0.0f;
		return true;
	}
	return false;
}

static void softmax_stats(struct moe_route_row *r)
{
	const int32_t E = r->p->num_experts;
	float m = -INFINITY, z = 0.0f;
	for (int32_t e = 0; e < E; e++)
		m = fmaxf(m, logit_in(r, e));
	for (int32_t e = 0; e < E; e++)
		z += expf(logit_in(r, e) - m);
	r->smax = m;
	r->ssum = z;
}

/* The grouped DeepSeekV3 selection: find the topk_group-th best group (the cut), then rank the
 * experts of the cut and of the groups ranked before it (w holds the keys until the weights replace
 * them). */
static void select_grouped(struct moe_route_row *r, int32_t *ids, float *w)
{
	const struct moe_route_params *p = r->p;
	r->group_size = p->num_experts / p->n_group;
	r->round_bias = r->bias && p->profile == MOE_PROFILE_FLASHINFER;
	int32_t g = -1;
	float score = 0.0f;
	for (int32_t j = 0; j < p->topk_group; j++) {
		g = moe_route_next(r, key_group, p->n_group, g, score, &score);
		assert(g >= 0);
	}
	r->cut_group = g;
	r->cut_score = score;
	r->open_group = -1;
	moe_route_topk(r, key_grouped, p->num_experts, p->top_k, ids, w);
}

/* Llama4's argmax: the first non-NaN logit, then strict `>`; 0 when every logit is NaN. */
static int32_t argmax_strict(const struct moe_route_row *r)
{
	int32_t best = -1;
	float m = 0.0f;
	for (int32_t e = 0; e < r->p->num_experts; e++) {
		float x = logit(r, e);
		if (!isnan(x) && (best < 0 || x > m)) {
			m = x;
			best = e;
		}
	}
	return best < 0 ? 0 : best;
}

/* w[k] = e^(v[k] - max v) / S over the K logits in w (Renormalize). No epsilon and no guard in
 * any profile: the largest term is expf(0) = 1, so S >= 1 unless a NaN makes it NaN. */
static void softmax_k(enum moe_profile profile, float *w, int32_t K)
{
	float m = -INFINITY;
	for (int32_t k = 0; k < K; k++)
		m = fmaxf(m, w[k]);
	for (int32_t k = 0; k < K; k++)
		w[k] = moe_route_canon(expf(w[k] - m));
	float S = moe_route_sum_k(profile, w, K);
	for (int32_t k = 0; k < K; k++)
		w[k] = w[k] / S;
}

/* w[k] /= S over the K values in w (RenormalizeNaive and SigmoidRenorm). */
static void renormalize(const struct moe_route_params *p, float *w, int32_t K)
{
	float S = moe_route_sum_k(p->profile, w, K);
	if (p->profile == MOE_PROFILE_FLASHINFER && p->method == MOE_ROUTE_SIGMOID_RENORM)
		S = fmaxf(S, 1e-20f);
	else if (p->profile == MOE_PROFILE_VLLM && !(S > 0.0f))
		S = 1.0f;
	for (int32_t k = 0; k < K; k++)
		w[k] = w[k] / S;
}

/* w[k] = s[k] * rsf / S in the profile's order and epsilon (MiniMax2 and DeepSeekV3). */
static void scaled_renormalize(const struct moe_route_params *p, float *w, int32_t K)
{
	const float rsf = p->routed_scaling_factor;
	float S = moe_route_sum_k(p->profile, w, K);
	switch (p->profile) {
	case MOE_PROFILE_FLASHINFER:
		for (int32_t k = 0; k < K; k++)
			w[k] = (w[k] * rsf) / (S + 1e-20f);
		break;
	case MOE_PROFILE_VLLM:
		if (!(S > 0.0f))
			S = 1.0f;
		for (int32_t k = 0; k < K; k++)
			w[k] = (w[k] / S) * rsf;
		break;
	default:
		if (p->method == MOE_ROUTE_DEEPSEEKV3)
			S = S + 1e-20f;
		for (int32_t k = 0; k < K; k++)
			w[k] = (w[k] / S) * rsf;
		break;
	}
}

static void route_row(struct moe_route_row *r, int32_t *ids, float *w)
{
	const struct moe_route_params *p = r->p;
	const int32_t E = p->num_experts, K = p->top_k;
	enum moe_routing_method m = p->method;
	if (m == MOE_ROUTE_RENORMALIZE_NAIVE && p->profile == MOE_PROFILE_FLASHINFER)
		m = MOE_ROUTE_RENORMALIZE;

	switch (m) {
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE:
		softmax_stats(r);
		moe_route_topk(r, key_prob, E, K, ids, w);
		for (int32_t k = 0; k < K; k++)
			w[k] = prob_at(r, ids[k]);
		if (m == MOE_ROUTE_RENORMALIZE_NAIVE)
			renormalize(p, w, K);
		break;
	case MOE_ROUTE_RENORMALIZE:
		moe_route_topk(r, key_logit, E, K, ids, w);
		for (int32_t k = 0; k < K; k++)
			w[k] = logit(r, ids[k]);
		softmax_k(p->profile, w, K);
		break;
	case MOE_ROUTE_DEEPSEEKV3:
	case MOE_ROUTE_MINIMAX2:
		if (m == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1)
			select_grouped(r, ids, w);
		else
			moe_route_topk(r, key_biased, E, K, ids, w);
		for (int32_t k = 0; k < K; k++)
			w[k] = sigmoid_at(r, ids[k]);
		scaled_renormalize(p, w, K);
		break;
	case MOE_ROUTE_LLAMA4:
		ids[0] = argmax_strict(r);
		w[0] = sigmoid_of_logit(r, ids[0]);
		break;
	case MOE_ROUTE_TOPK:
	case MOE_ROUTE_TOPK_SIGMOID:
		moe_route_topk(r, key_logit, E, K, ids, w);
		for (int32_t k = 0; k < K; k++)
			w[k] = m == MOE_ROUTE_TOPK ? logit(r, ids[k]) : sigmoid_of_logit(r, ids[k]);
		break;
	case MOE_ROUTE_SIGMOID_RENORM:
	case MOE_ROUTE_SIGMOID:
		moe_route_topk(r, key_sigmoid, E, K, ids, w);
		for (int32_t k = 0; k < K; k++)
			w[k] = sigmoid_at(r, ids[k]);
		if (m == MOE_ROUTE_SIGMOID_RENORM && p->renormalize)
			renormalize(p, w, K);
		break;
	default:
		assert(!"validated method");
	}

	for (int32_t k = 0; k < K; k++)
		w[k] = moe_route_out(p->profile, m == MOE_ROUTE_TOPK ? w[k] : moe_route_canon(w[k]));
}

void moe_route__ref(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
		    int32_t *ids, float *weights)
{
	assert(p && moe_route_validate(p) == MOE_OK);
	assert(T >= 0 && (T == 0 || (logits && ids && weights)));
	assert((bias == NULL) == (p->bias_dtype == MOE_DTYPE_NONE));
	const int32_t E = p->num_experts, K = p->top_k;
	const size_t row_bytes = (size_t)E * (p->logits_dtype == MOE_DTYPE_BF16 ? sizeof(moe_bf16) : sizeof(float));
	for (int64_t t = 0; t < T; t++) {
		struct moe_route_row r = {
			.p = p,
			.logits = (const char *)logits + (size_t)t * row_bytes,
			.bias = bias,
		};
		route_row(&r, ids + t * K, weights + t * K);
	}
}
