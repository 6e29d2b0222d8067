/* The router on the vector helpers of simd_avx2.h or simd_avx512.h (whichever the including kernel
 * file chose); routing_avx2.c and routing_avx512.c are this file compiled for their ISA.
 *
 * Semantics: those of the scalar reference (reference/routing.c and its contract) for all ten
 * methods, fp32 and bf16 logits, fp32 and bf16 bias, and the flashinfer, vllm and hf profiles,
 * for E <= MOE_ROUTE_KERNEL_MAX_E (supports() declines wider rows).
 *
 * Per token, on a row whose logits are all finite (given a finite bias):
 *   scores   computed for all E in vectors: sigmoids in the profile's form (vllm, hf:
 *            1/(1 + exp(-x)); flashinfer: 0.5*t + 0.5 with t = tanh(x/2) evaluated as
 *            sign(x) (1 - e)/(1 + e), e = exp(-|x|), so t lands on the fp32 grid of the
 *            reference's tanhf and both saturate at nearly the same x), softmax numerators
 *            e = exp(x - max), keys s + b, DeepSeekV3 group scores (best + second best key of
 *            each group, vLLM without a bias: the best) and the topk_group best groups.
 *   top-k    on 32-bit total-order keys (flashinfer's twiddle; vLLM, Llama4 and HF's raw-logit
 *            ranking compare -0.0 equal to +0.0, so their logit keys are taken of x + 0.0),
 *            ordered by (key << 32 | ~index) so that equal keys go to the lower index. The K-th
 *            largest of the 16 column maxima of the keys (rows of 16) bounds the K-th largest key from below; only keys at or
 *            above it (typically K to 2K) are put in slot order (simd_topk_fast: on AVX-512 from
 *            each column's best two, compressed and sorted by a bitonic network in registers;
 *            on AVX2 by rank counting). K > 16 or more than 16 such keys (e.g. rows of equal
 *            keys) take a scalar insertion top-k on the same packed keys. Same ids as the
 *            reference wherever its keys and ours are equal; Default and RenormalizeNaive rank e,
 *            not the rounded e / Z (the same order except where the division rounds two values
 *            together: a near-tie). Weights read the selected scores back from their keys where
 *            the key is the score.
 *   weights  the reference's formulas and sum orders (flashinfer's 32-lane butterfly, vLLM and
 *            HF left to right; epsilon, guard and rsf placement per profile; canonical NaN;
 *            bf16 output for flashinfer and hf); softmax denominators over E are summed in vector
 *            order instead of left to right.
 * Precision (budgets, checked over a dense sweep in tests/test_kernels_routing.c, measured maxima
 * in brackets): exp within 2 ulp of expf [1]; the vllm/hf sigmoid within 4 ulp of
 * 1.0f/(1.0f + expf(-x)) [4, where 1 + exp(-x) is large and its rounding amplifies exp's ulp];
 * the flashinfer sigmoid within 2^-23 absolute of 0.5f*tanhf(0.5f*x)+0.5f [2^-23], i.e. 2 ulp for
 * s >= 0.5 and a few units of the 2^-25 grid the tanh form leaves below. fp32 weights within
 * 8 ulp (plus the reordered sum over E for Default and RenormalizeNaive, plus the flashinfer
 * sigmoid's absolute error carried through S), bf16 weights within one bf16 ulp of that.
 * Where our keys and the reference's differ by that much, ids may differ at a near-tie, which
 * verification accepts; exact ties (equal inputs, saturated sigmoids) follow the tie rule.
 *
 * A row holding a NaN or an infinity, or a call whose bias does, is routed by the reference
 * itself (moe_route__ref on that row): those rows are rare, their semantics differ per profile
 * (vLLM's replacement by 0, canonical NaNs, the -NaN..+NaN order), and the reference is the
 * definition, so they come out bit for bit equal.
 *
 * The block path (AVX-512, E <= 256, K <= 15: the usual shapes) routes 16 tokens at a time, phase by
 * phase over the block so that the out-of-order core overlaps the tokens' dependency chains, and
 * one token per lane wherever a step would otherwise be a short horizontal chain per token:
 *   keys     as above, except that Sigmoid, SigmoidRenorm, Default and RenormalizeNaive rank the
 *            logits (keys of x + 0.0) instead of computing E sigmoids or probabilities: both are
 *            monotone in x, so the order is the same except where they round distinct logits to
 *            one value. The K+1 best logits get their sigmoid or exp(x - max) / Z (Z over E as
 *            above, max read off the keys' column maxima); equal values among the K are put in
 *            index order, and a token whose K-th and (K+1)-th values are equal takes the per-token
 *            path (experts further down may share the value with a lower index). Finiteness is
 *            read off the smallest and largest key (the total order puts -NaN and -inf below every
 *            finite key, +inf and +NaN above).
 *   groups   DeepSeekV3 with G <= 8: each token's group scores from its keys (the best two per
 *            group by epu32 max/min, equal keys counted twice, then decoded: for finite values the
 *            key order is the float order), the groups ranked with one token per lane (each pair
 *            of groups compared once, ties to the lower group), the experts of the dropped groups
 *            out of the race (HF: key 0.0), as on the per-token path. G > 8 takes select_groups.
 *   bound    one token per lane: the 16 column maxima of each token's keys (rows of 16),
 *            transposed, sorted in every lane by a bitonic network; the (K+1)-th largest is t,
 *            below or at the (K+1)-th largest key. About K + 4 keys reach it (E = 128, random;
 *            more than 16 in about 3% of tokens, 5% at E = 256).
 *   top-k    the keys >= t (vpcompressd, register form), packed as above. K + 1 > 8: up to 32 of
 *            them (more, e.g. rows of equal keys: the per-token path); of more than 16 the best
 *            16, by one token's bitonic networks (the K + 1 best are among them); the packed
 *            candidates of the 16 tokens transposed (8 x 8 blocks of 64-bit values) and sorted by
 *            one 16-slot bitonic network of 64-bit max/min, a token per lane, into slot-major
 *            arrays. K + 1 <= 8: up to 16 (more: the per-token path), each token's candidates
 *            sorted on their own (one 8-key network when they are at most 8), then transposed to
 *            slot-major.
 *   weights  with a token per lane, from the slot-major arrays, for every method but TopK (whose
 *            weights are its raw logits, -0.0 kept: block_finish, token by token): the formulas
 *            and sum orders above run down the slots, so each lane performs the same fp32
 *            operations in the same order as the per-token code (flashinfer's butterfly as 31
 *            vertical adds, vLLM's and HF's sums left to right); the biased methods read s back by
 *            a gather. Tokens with equal weights from distinct keys among the K + 1 go to
 *            block_finish (index order or the per-token path), as do TopK's.
 * flashinfer's 32-lane butterfly over K <= MOE_VW weights runs in one vector on every path: its
 * steps across lanes past MOE_VW add +0.0 to each lane, done once (x + 0.0 is never -0.0, and the
 * weights are never -0.0), the rest as lane-0 of xor shuffles, the same additions in the same
 * order.
 * Elsewhere tokens go through three phases (scores, top-k, weights) in a three-deep software
 * pipeline; the scratch of the three tokens in flight is about 100 KB of stack, the block's about
 * 45 KB more. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "moe/backend.h"

#define MOE_ROUTE_KERNEL_MAX_E 1024

/* One token in flight: route_rows pipelines three tokens (scores of one, top-k of the one before,
 * weights of the one before that), so each has its own scratch and the three dependency chains
 * overlap in the out-of-order window instead of running back to back. */
struct route_scratch {
	float x[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));   /* logits (softmax) */
	float s[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));   /* sigmoid or exp(x - max) */
	float kf[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));  /* s + b (biased methods) */
	uint32_t key[MOE_ROUTE_KERNEL_MAX_E + 16] __attribute__((aligned(64)));
	uint32_t sel[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));  /* keys of the selected */
	int32_t ids[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));   /* the selected */
	float w[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));   /* weights before output */
	uint64_t *best;                                                 /* shared scalar top-k space */
	const void *row;
	float Z;     /* softmax denominator */
	bool finite; /* every logit finite: else the reference routes the row */
};

static inline float canon_nan(float v)
{
	return v != v ? moe_f32_from_bits(0x7fc00000u) : v;
}

static inline bool route_kernel_supports(enum moe_op op, const void *problem)
{
	if (op != MOE_OP_ROUTE)
		return false;
	const struct moe_route_params *p = problem;
	return !p || (p->num_experts >= 1 && p->num_experts <= MOE_ROUTE_KERNEL_MAX_E);
}

static inline float elem(const void *base, enum moe_dtype t, int32_t i)
{
	return t == MOE_DTYPE_BF16 ? moe_bf16_to_f32(((const moe_bf16 *)base)[i]) : ((const float *)base)[i];
}

static inline moe_vf load_any(const void *base, enum moe_dtype t, int32_t i, int32_t E, float fill)
{
	return E - i >= MOE_VW ? vf_load(base, t, i) : vf_load_tail(base, t, i, E - i, fill);
}

static inline void fill_u32(uint32_t *p, int32_t n, uint32_t v)
{
	const moe_vf c = vf_set1(moe_f32_from_bits(v));
	int32_t i = 0;
	for (; i + MOE_VW <= n; i += MOE_VW)
		vf_store(p, MOE_DTYPE_F32, i, c);
	if (i < n)
		vf_store_tail(p, MOE_DTYPE_F32, i, c, n - i);
}

/* The sigmoid in the profile's form (see the contract). */
static inline moe_vf vf_sigmoid(moe_vf x, enum moe_profile profile)
{
	const moe_vf one = vf_set1(1.0f);
	if (profile == MOE_PROFILE_FLASHINFER) {
		/* tanh(|x|/2) = (1 - e) / (1 + e) with e = exp(-|x|): near saturation 1 - e keeps the
		 * 2^-24 grid below 1 that tanhf's result lies on, so the two saturate together. */
		const moe_vf ax = vf_abs(x), e = vf_exp(vf_sub(vf_zero(), ax));
		const moe_vf t = vf_copysign(vf_div(vf_sub(one, e), vf_add(one, e)), x);
		return vf_fmadd(vf_set1(0.5f), t, vf_set1(0.5f));
	}
	return vf_div(one, vf_add(one, vf_exp(vf_sub(vf_zero(), x))));
}

/* w[k] = sigmoid(w[k]) over K values. */
static inline void sigmoid_k(float *w, int32_t K, enum moe_profile profile)
{
	for (int32_t i = 0; i < K; i += MOE_VW)
		vf_store(w, MOE_DTYPE_F32, i, vf_sigmoid(vf_load(w, MOE_DTYPE_F32, i), profile));
}

/* ---- passes over one row; each returns whether every logit was finite ---- */

/* key[e] = key of the logit (of x + 0.0 when -0.0 must equal +0.0). */
static inline bool pass_logit_keys(const void *row, enum moe_dtype t, int32_t E, bool zero_equal, uint32_t *key)
{
	unsigned fin = (1u << MOE_VW) - 1u;
	const moe_vf z = vf_set1(zero_equal ? 0.0f : -0.0f); /* x + -0.0 is x, -0.0 included */
	for (int32_t i = 0; i < E; i += MOE_VW) {
		const moe_vf v = load_any(row, t, i, E, 0.0f);
		fin &= vf_finite_mask(v);
		vi_store_key(key + i, vf_add(v, z));
	}
	return fin == (1u << MOE_VW) - 1u;
}

/* s[e] = sigmoid; kf[e] = s + b when there is a bias; key[e] = key of kf or s. kf may be NULL
 * (the block path decodes the keys where it needs s + b). */
static inline bool pass_sigmoid(const void *row, enum moe_dtype t, int32_t E, enum moe_profile profile,
				const float *bias, float *s, float *kf, uint32_t *key)
{
	unsigned fin = (1u << MOE_VW) - 1u;
	for (int32_t i = 0; i < E; i += MOE_VW) {
		const moe_vf v = load_any(row, t, i, E, 0.0f);
		fin &= vf_finite_mask(v);
		const moe_vf sg = vf_sigmoid(v, profile);
		if (s)
			vf_store(s, MOE_DTYPE_F32, i, sg);
		if (bias) {
			const moe_vf k = vf_add(sg, load_any(bias, MOE_DTYPE_F32, i, E, 0.0f));
			if (kf)
				vf_store(kf, MOE_DTYPE_F32, i, k);
			vi_store_key(key + i, k);
		} else {
			vi_store_key(key + i, sg);
		}
	}
	return fin == (1u << MOE_VW) - 1u;
}

/* x[e] = logit, returns max through *mx. */
static inline bool pass_load_max(const void *row, enum moe_dtype t, int32_t E, float *x, float *mx)
{
	unsigned fin = (1u << MOE_VW) - 1u;
	moe_vf m0 = vf_set1(-INFINITY), m1 = m0;
	int32_t i = 0;
	for (; i + 2 * MOE_VW <= E; i += 2 * MOE_VW) {
		const moe_vf a = vf_load(row, t, i), b = vf_load(row, t, i + MOE_VW);
		fin &= vf_finite_mask(a) & vf_finite_mask(b);
		vf_store(x, MOE_DTYPE_F32, i, a);
		vf_store(x, MOE_DTYPE_F32, i + MOE_VW, b);
		m0 = vf_max(m0, a);
		m1 = vf_max(m1, b);
	}
	for (; i < E; i += MOE_VW) {
		const moe_vf v = load_any(row, t, i, E, 0.0f);
		fin &= vf_finite_mask(v);
		/* Lanes past E become -inf, so that they add exp(-inf) = 0 to the sum. */
		const int32_t n = E - i < MOE_VW ? E - i : MOE_VW;
		const moe_vf a = vf_mask_set(v, ((1u << MOE_VW) - 1u) & ~((1u << n) - 1u), -INFINITY);
		vf_store(x, MOE_DTYPE_F32, i, a);
		m0 = vf_max(m0, a);
	}
	*mx = vf_hmax(vf_max(m0, m1));
	return fin == (1u << MOE_VW) - 1u;
}

/* e[i] = exp(x[i] - mx) and its key; returns the sum of e (vector order). */
static inline float pass_exp(const float *x, int32_t E, float mx, float *e, uint32_t *key)
{
	const moe_vf m = vf_set1(mx);
	moe_vf z0 = vf_zero(), z1 = vf_zero();
	int32_t i = 0;
	for (; i + 2 * MOE_VW <= E; i += 2 * MOE_VW) {
		const moe_vf a = vf_exp(vf_sub(vf_load(x, MOE_DTYPE_F32, i), m));
		const moe_vf b = vf_exp(vf_sub(vf_load(x, MOE_DTYPE_F32, i + MOE_VW), m));
		vf_store(e, MOE_DTYPE_F32, i, a);
		vf_store(e, MOE_DTYPE_F32, i + MOE_VW, b);
		vi_store_key(key + i, a);
		vi_store_key(key + i + MOE_VW, b);
		z0 = vf_add(z0, a);
		z1 = vf_add(z1, b);
	}
	for (; i < E; i += MOE_VW) {
		/* x beyond E is -inf (pass_load_max's fill): e = 0 there. */
		const moe_vf a = vf_exp(vf_sub(vf_load(x, MOE_DTYPE_F32, i), m));
		vf_store(e, MOE_DTYPE_F32, i, a);
		vi_store_key(key + i, a);
		z0 = vf_add(z0, a);
	}
	return vf_hsum(vf_add(z0, z1));
}

/* ---- top-k ---- */

static inline void insert_desc(uint64_t *best, int32_t n, uint64_t v)
{
	int32_t j = n;
	while (j > 0 && best[j - 1] < v) {
		best[j] = best[j - 1];
		j--;
	}
	best[j] = v;
}

/* sc->ids = the K best keys among key[0..E) (0 = not in the race; at least K keys are not),
 * sc->sel = their keys; the vector path, else an insertion top-k on the packed keys. */
static inline void topk(struct route_scratch *sc, int32_t E, int32_t K)
{
	const uint32_t *key = sc->key;
	if (simd_topk_fast(key, E, K, sc->ids, sc->sel))
		return;
	int32_t n = 0;
	for (int32_t i = 0; i < E; i++) {
		if (!key[i])
			continue;
		const uint64_t v = (uint64_t)key[i] << 32 | (uint32_t)~(uint32_t)i;
		if (n < K)
			insert_desc(sc->best, n++, v);
		else if (v > sc->best[K - 1])
			insert_desc(sc->best, K - 1, v);
	}
	assert(n == K);
	for (int32_t k = 0; k < K; k++) {
		sc->ids[k] = (int32_t)~(uint32_t)sc->best[k];
		sc->sel[k] = (uint32_t)(sc->best[k] >> 32);
	}
}

/* ---- DeepSeekV3 groups (scores of eight groups at a time: simd_group_top2) ---- */

/* kf: the keys as floats (s + b, or s); key: their total-order keys, those of the groups not kept
 * replaced. */
static inline void select_groups(const float *kf, uint32_t *key, const struct moe_route_params *p, bool has_bias)
{
	const int32_t G = p->n_group, gs = p->num_experts / G;
	const bool top2 = has_bias || p->profile != MOE_PROFILE_VLLM;
	float score[MOE_ROUTE_KERNEL_MAX_E], t1[8], t2[8];
	bool kept[MOE_ROUTE_KERNEL_MAX_E];
	for (int32_t g0 = 0; g0 < G; g0 += 8) {
		const int ng = G - g0 < 8 ? (int)(G - g0) : 8;
		simd_group_top2(kf + g0 * gs, gs, ng, t1, t2);
		for (int g = 0; g < ng; g++) {
			score[g0 + g] = top2 ? canon_nan(t1[g] + t2[g]) : t1[g];
			kept[g0 + g] = false;
		}
	}
	/* Keep the topk_group best scores, equal scores to the lower group: a group's rank counts the
	 * groups before it in that order, G broadcasts against all G lanes at once (a walk of
	 * topk_group dependent argmax passes costs several times more for the usual G = 8). */
	if (G <= MOE_VW) {
		for (int32_t g = G; g < MOE_VW; g++)
			score[g] = -INFINITY; /* lanes past G rank below every group and are never kept */
		const moe_vf sv = vf_load(score, MOE_DTYPE_F32, 0);
		moe_vf rank = vf_zero();
		for (int32_t j = 0; j < G; j++) {
			const moe_vf sj = vf_set1(score[j]);
			const unsigned later = ((1u << MOE_VW) - 1u) & ~((2u << j) - 1u); /* lanes g > j */
			const unsigned before = vf_gt_mask(sj, sv) | (vf_eq_mask(sj, sv) & later);
			rank = vf_add(rank, vf_mask_set(vf_zero(), before, 1.0f));
		}
		const unsigned kept_bits = vf_gt_mask(vf_set1((float)p->topk_group - 0.5f), rank);
		for (int32_t g = 0; g < G; g++)
			kept[g] = (kept_bits >> g) & 1u;
	} else {
		for (int32_t g = 0; g < G; g++) {
			int32_t rank = 0;
			for (int32_t j = 0; j < G; j++)
				rank += (int32_t)(score[j] > score[g]) + ((int32_t)(score[j] == score[g]) & (int32_t)(j < g));
			kept[g] = rank < p->topk_group;
		}
	}
	/* Experts of the other groups leave the race (flashinfer, vLLM) or get key 0.0 (HF). */
	const uint32_t out = p->profile == MOE_PROFILE_HF ? 0x80000000u : 0u;
	for (int32_t g = 0; g < G; g++)
		if (!kept[g])
			fill_u32(key + g * gs, gs, out);
}

/* ---- weights ---- */

static inline float sum_k(enum moe_profile profile, const float *v, int32_t K)
{
	if (profile == MOE_PROFILE_FLASHINFER && K <= MOE_VW) {
		/* Lane 0 of the xor butterfly over 32 lanes (lanes >= K hold 0): the steps across
		 * lanes past MOE_VW add +0.0 to each lane, which the first add does once for all (x + 0
		 * is never -0.0, so adding +0.0 again changes nothing), and the rest run in the vector. */
		return canon_nan(vf_sum_xor_lane0(vf_add(load_any(v, MOE_DTYPE_F32, 0, K, 0.0f), vf_zero())));
	}
	if (profile == MOE_PROFILE_FLASHINFER) {
		/* Lane 0 of the xor butterfly over 32 lanes (lanes >= K hold 0). */
		float a[32] = { 0.0f };
		for (int32_t k = 0; k < K; k++)
			a[k] = v[k];
		for (int h = 16; h >= 1; h /= 2)
			for (int i = 0; i < h; i++)
				a[i] = a[i] + a[i + h];
		return canon_nan(a[0]);
	}
	float s = 0.0f;
	for (int32_t k = 0; k < K; k++)
		s = s + v[k];
	return canon_nan(s);
}

/* The helpers below work on whole vectors of the scratch arrays (K rounded up to MOE_VW lanes,
 * the lanes past K unused), so each vector load is forwarded from the vector store before it. */

/* w[k] = w[k] / d. */
static inline void div_k(float *w, int32_t K, float d)
{
	const moe_vf vd = vf_set1(d);
	for (int32_t i = 0; i < K; i += MOE_VW)
		vf_store(w, MOE_DTYPE_F32, i, vf_div(vf_load(w, MOE_DTYPE_F32, i), vd));
}

/* w[k] = the score a selected key was made from. */
static inline void decode_k(struct route_scratch *sc, int32_t K)
{
	for (int32_t i = 0; i < K; i += MOE_VW)
		vf_store(sc->w, MOE_DTYPE_F32, i, vf_key_value(vf_load(sc->sel, MOE_DTYPE_F32, i)));
}

/* out[k] = the profile's output of w[k] (canonical NaN first, except TopK's raw logits), ids out;
 * w and sel are read in whole vectors (K rounded up to MOE_VW lanes). */
static inline void store_out(const int32_t *sel, const float *w, int32_t *ids, float *out, int32_t K,
			     enum moe_profile profile, bool canon)
{
	for (int32_t i = 0; i < K; i += MOE_VW) {
		moe_vf v = vf_load(w, MOE_DTYPE_F32, i);
		if (canon)
			v = vf_mask_set(v, ~vf_eq_mask(v, v) & ((1u << MOE_VW) - 1u), moe_f32_from_bits(0x7fc00000u));
		if (profile != MOE_PROFILE_VLLM)
			v = vf_round_bf16(v);
		const moe_vf id = vf_load(sel, MOE_DTYPE_F32, i);
		if (K - i >= MOE_VW) {
			vf_store(out, MOE_DTYPE_F32, i, v);
			vf_store(ids, MOE_DTYPE_F32, i, id);
		} else {
			vf_store_tail(out, MOE_DTYPE_F32, i, v, K - i);
			vf_store_tail(ids, MOE_DTYPE_F32, i, id, K - i);
		}
	}
}

/* Renormalize's weights: softmax over the K selected logits in w (w[0] is the largest). */
static inline void softmax_k(enum moe_profile profile, float *w, int32_t K)
{
	const moe_vf vm = vf_set1(w[0]);
	for (int32_t i = 0; i < K; i += MOE_VW)
		vf_store(w, MOE_DTYPE_F32, i, vf_exp(vf_sub(vf_load(w, MOE_DTYPE_F32, i), vm)));
	float S = sum_k(profile, w, K);
	if (profile == MOE_PROFILE_VLLM && !(S > 0.0f))
		S = 1.0f;
	div_k(w, K, S);
}

static inline void renormalize(const struct moe_route_params *p, enum moe_routing_method m, float *w, int32_t K)
{
	float S = sum_k(p->profile, w, K);
	if (p->profile == MOE_PROFILE_FLASHINFER && m == MOE_ROUTE_SIGMOID_RENORM)
		S = fmaxf(S, 1e-20f);
	else if (p->profile == MOE_PROFILE_VLLM && !(S > 0.0f))
		S = 1.0f;
	div_k(w, K, S);
}

static inline void scaled_renormalize(const struct moe_route_params *p, float *w, int32_t K)
{
	const float rsf = p->routed_scaling_factor;
	float S = sum_k(p->profile, w, K);
	const moe_vf vr = vf_set1(rsf);
	if (p->profile == MOE_PROFILE_FLASHINFER) {
		const moe_vf d = vf_set1(S + 1e-20f);
		for (int32_t i = 0; i < K; i += MOE_VW)
			vf_store(w, MOE_DTYPE_F32, i, vf_div(vf_mul(vf_load(w, MOE_DTYPE_F32, i), vr), d));
		return;
	}
	if (p->profile == MOE_PROFILE_VLLM && !(S > 0.0f))
		S = 1.0f;
	if (p->profile == MOE_PROFILE_HF && p->method == MOE_ROUTE_DEEPSEEKV3)
		S = S + 1e-20f;
	const moe_vf d = vf_set1(S);
	for (int32_t i = 0; i < K; i += MOE_VW)
		vf_store(w, MOE_DTYPE_F32, i, vf_mul(vf_div(vf_load(w, MOE_DTYPE_F32, i), d), vr));
}

/* ---- one token, in three phases ---- */

static inline enum moe_routing_method effective_method(const struct moe_route_params *p)
{
	if (p->method == MOE_ROUTE_RENORMALIZE_NAIVE && p->profile == MOE_PROFILE_FLASHINFER)
		return MOE_ROUTE_RENORMALIZE;
	return p->method;
}

/* Scores and keys of every expert (DeepSeekV3: with the groups chosen); sc->finite says whether
 * the row can be routed here. */
static inline void route_prepare(struct route_scratch *sc, const struct moe_route_params *p, const void *row,
				 const float *bias)
{
	const enum moe_profile profile = p->profile;
	const enum moe_dtype t = p->logits_dtype;
	const int32_t E = p->num_experts;
	const enum moe_routing_method m = effective_method(p);
	sc->row = row;
	switch (m) {
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE: {
		float mx;
		sc->finite = pass_load_max(row, t, E, sc->x, &mx);
		if (sc->finite)
			sc->Z = pass_exp(sc->x, E, mx, sc->s, sc->key);
		break;
	}
	case MOE_ROUTE_RENORMALIZE:
	case MOE_ROUTE_TOPK:
	case MOE_ROUTE_TOPK_SIGMOID:
	case MOE_ROUTE_LLAMA4:
		sc->finite = pass_logit_keys(row, t, E, profile != MOE_PROFILE_FLASHINFER || m == MOE_ROUTE_LLAMA4, sc->key);
		break;
	default:
		sc->finite = pass_sigmoid(row, t, E, profile, bias, sc->s, sc->kf, sc->key);
		if (sc->finite && m == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1)
			select_groups(bias ? sc->kf : sc->s, sc->key, p, bias != NULL);
		break;
	}
	fill_u32(sc->key + E, 16, 0u);
}

static inline void route_select(struct route_scratch *sc, const struct moe_route_params *p)
{
	if (sc->finite)
		topk(sc, p->num_experts, p->top_k);
}

/* Weights and output; a row holding a NaN or an infinity goes to the reference. */
static inline void route_finish(struct route_scratch *sc, const struct moe_route_params *p, const void *bias,
				const float *b, int32_t *ids, float *out)
{
	const enum moe_profile profile = p->profile;
	const int32_t K = p->top_k;
	const enum moe_routing_method m = effective_method(p);
	float *w = sc->w;
	if (!sc->finite) {
		moe_route__ref(p, 1, sc->row, bias, ids, out);
		return;
	}
	switch (m) {
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE:
		decode_k(sc, K);
		div_k(w, K, sc->Z);
		if (m == MOE_ROUTE_RENORMALIZE_NAIVE)
			renormalize(p, m, w, K);
		break;
	case MOE_ROUTE_RENORMALIZE:
	case MOE_ROUTE_TOPK:
	case MOE_ROUTE_TOPK_SIGMOID:
	case MOE_ROUTE_LLAMA4:
		/* TopK returns the raw logit (-0.0 included); the others see x + 0.0 alike */
		if (m == MOE_ROUTE_TOPK)
			for (int32_t k = 0; k < K; k++)
				w[k] = elem(sc->row, p->logits_dtype, sc->ids[k]);
		else
			decode_k(sc, K);
		if (m == MOE_ROUTE_RENORMALIZE)
			softmax_k(profile, w, K);
		else if (m != MOE_ROUTE_TOPK)
			sigmoid_k(w, K, profile);
		break;
	default:
		/* the key is s itself unless a bias or HF's 0.0 group mask made it something else */
		if (b || (m == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1 && profile == MOE_PROFILE_HF))
			for (int32_t k = 0; k < K; k++)
				w[k] = sc->s[sc->ids[k]];
		else
			decode_k(sc, K);
		if (m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3)
			scaled_renormalize(p, w, K);
		else if (m == MOE_ROUTE_SIGMOID_RENORM && p->renormalize)
			renormalize(p, m, w, K);
		break;
	}
	store_out(sc->ids, sc->w, ids, out, K, profile, m != MOE_ROUTE_TOPK);
}

#if MOE_VW == 16
/* ---- the block path: 16 tokens at a time, one token per lane for the threshold ---- */

#define MOE_ROUTE_BLOCK_MAX_E 256

/* What a token's keys are made of on the block path. */
enum block_kind {
	BLOCK_LOGITS,  /* Renormalize, TopK, TopKSigmoid, Llama4: the logits, ranked as they are */
	BLOCK_SIGMOID, /* Sigmoid, SigmoidRenorm: the logits, ranked for their sigmoids */
	BLOCK_SOFTMAX, /* Default, RenormalizeNaive: the logits, ranked for their probabilities */
	BLOCK_BIASED,  /* MiniMax2, DeepSeekV3: the sigmoid plus the bias, all E computed */
};

struct route_block {
	uint32_t key[16][MOE_ROUTE_BLOCK_MAX_E + 16] __attribute__((aligned(64)));
	uint32_t cm[16][16] __attribute__((aligned(64)));                 /* column maxima of the keys */
	uint32_t t[16] __attribute__((aligned(64)));                      /* each token's threshold */
	float gscore[16][16] __attribute__((aligned(64)));                /* DeepSeekV3 group scores */
	uint32_t drop[16] __attribute__((aligned(64)));                   /* groups not kept, a bit each */
	float s[16][MOE_ROUTE_BLOCK_MAX_E] __attribute__((aligned(64)));  /* sigmoids (BLOCK_BIASED) */
	int32_t cid[16][48] __attribute__((aligned(64)));                 /* candidates: keys >= t */
	uint32_t ckey[16][48] __attribute__((aligned(64)));
	int32_t sel[16][16] __attribute__((aligned(64)));                 /* the K + 1 best, in order */
	uint32_t skey[16][16] __attribute__((aligned(64)));
	uint32_t skv[16][16] __attribute__((aligned(64)));                /* slot-major: key of slot s, token i */
	int32_t sid[16][16] __attribute__((aligned(64)));                 /* slot-major: expert of slot s, token i */
	unsigned nc[16];
	unsigned ncmax;                                                   /* the most candidates sorted here */
	float mx[16], Z[16];                                              /* softmax max and sum */
	bool finite[16];
};

static inline bool block_supports(const struct moe_route_params *p)
{
	return p->num_experts <= MOE_ROUTE_BLOCK_MAX_E && p->top_k + 1 <= 16;
}

static inline enum block_kind block_kind_of(enum moe_routing_method m)
{
	switch (m) {
	case MOE_ROUTE_SIGMOID:
	case MOE_ROUTE_SIGMOID_RENORM:
		return BLOCK_SIGMOID;
	case MOE_ROUTE_DEFAULT:
	case MOE_ROUTE_RENORMALIZE_NAIVE:
		return BLOCK_SOFTMAX;
	case MOE_ROUTE_MINIMAX2:
	case MOE_ROUTE_DEEPSEEKV3:
		return BLOCK_BIASED;
	default:
		return BLOCK_LOGITS;
	}
}

/* The softmax denominator of a finite row: Z = the sum of exp(x - mx) in vector order (lanes
 * past E add 0), mx its largest logit, mn its smallest. Where mn - mx >= -100 (the usual row) every
 * x - mx is in vf_exp_in_range's range, and the exps of the whole rows skip vf_exp's clamp (the
 * same values); the tail's padding is -inf, so it keeps the clamp. */
static inline float softmax_sum(const void *row, enum moe_dtype t, int32_t E, float mx, float mn)
{
	const moe_vf m = vf_set1(mx);
	moe_vf z0 = vf_zero(), z1 = vf_zero();
	int32_t i = 0;
	if (mn - mx >= -100.0f) {
		for (; i + 2 * MOE_VW <= E; i += 2 * MOE_VW) {
			z0 = vf_add(z0, vf_exp_in_range(vf_sub(vf_load(row, t, i), m)));
			z1 = vf_add(z1, vf_exp_in_range(vf_sub(vf_load(row, t, i + MOE_VW), m)));
		}
	}
	for (; i + 2 * MOE_VW <= E; i += 2 * MOE_VW) {
		z0 = vf_add(z0, vf_exp(vf_sub(vf_load(row, t, i), m)));
		z1 = vf_add(z1, vf_exp(vf_sub(vf_load(row, t, i + MOE_VW), m)));
	}
	for (; i < E; i += MOE_VW)
		z0 = vf_add(z0, vf_exp(vf_sub(load_any(row, t, i, E, -INFINITY), m)));
	return vf_hsum(vf_add(z0, z1));
}

/* pass_logit_keys for the block path, with the zero padding past E and the 16 column maxima of
 * the keys (block_column_max) in the same pass; finiteness is read off the extreme keys instead
 * of every vector: a row is finite iff its largest key is below that of +inf (+NaN keys are
 * above) and its smallest above that of -inf (-NaN keys are below). *lo_key (unless NULL) = the
 * smallest key. */
static inline bool block_logit_keys(const void *row, enum moe_dtype t, int32_t E, bool zero_equal, uint32_t *key,
				    uint32_t *cm, uint32_t *lo_key)
{
	const moe_vf z = vf_set1(zero_equal ? 0.0f : -0.0f); /* x + -0.0 is x, -0.0 included */
	__m512i hi = _mm512_setzero_si512(), lo = _mm512_set1_epi32(-1);
	int32_t i = 0;
	for (; i + 16 <= E; i += 16) {
		const __m512i k = vi_key(vf_add(vf_load(row, t, i), z));
		hi = _mm512_max_epu32(hi, k);
		lo = _mm512_min_epu32(lo, k);
		_mm512_storeu_si512(key + i, k);
	}
	if (i < E) {
		const __mmask16 in = vm_first(E - i);
		const __m512i k = _mm512_maskz_mov_epi32(in, vi_key(vf_add(vf_load_tail(row, t, i, E - i, 0.0f), z)));
		hi = _mm512_max_epu32(hi, k);
		lo = _mm512_mask_min_epu32(lo, in, lo, k);
		_mm512_storeu_si512(key + i, k);
		i += 16;
	}
	_mm512_storeu_si512(key + i, _mm512_setzero_si512());
	_mm512_store_si512(cm, hi);
	if (lo_key)
		*lo_key = _mm512_reduce_min_epu32(lo);
	return !_mm512_cmpge_epu32_mask(hi, _mm512_set1_epi32((int)0xff800000u)) &&
	       !_mm512_cmple_epu32_mask(lo, _mm512_set1_epi32(0x007fffff));
}

/* Keys of token i of the block and (softmax) its statistics; for all but the biased methods also
 * the padding and the column maxima (block_column_max's part). */
static inline void block_prepare(struct route_block *bk, int i, const struct moe_route_params *p, enum block_kind kind,
				 const void *row, const float *b)
{
	const int32_t E = p->num_experts;
	const enum moe_dtype t = p->logits_dtype;
	uint32_t *key = bk->key[i], lo = 0;
	switch (kind) {
	case BLOCK_LOGITS:
		bk->finite[i] = block_logit_keys(row, t, E, p->profile != MOE_PROFILE_FLASHINFER || p->method == MOE_ROUTE_LLAMA4,
						 key, bk->cm[i], NULL);
		break;
	case BLOCK_SIGMOID:
	case BLOCK_SOFTMAX:
		/* sigmoid and exp map -0.0 and +0.0 to one value: rank them equal */
		bk->finite[i] = block_logit_keys(row, t, E, true, key, bk->cm[i], kind == BLOCK_SOFTMAX ? &lo : NULL);
		if (bk->finite[i] && kind == BLOCK_SOFTMAX) {
			/* the largest logit from the column maxima of its keys (x + 0.0: exp cannot tell) */
			bk->mx[i] = _mm512_cvtss_f32(vf_key_value(_mm512_castsi512_ps(_mm512_set1_epi32((int)_mm512_reduce_max_epu32(
				_mm512_load_si512(bk->cm[i]))))));
			const float mn = _mm512_cvtss_f32(vf_key_value(_mm512_castsi512_ps(_mm512_set1_epi32((int)lo))));
			bk->Z[i] = softmax_sum(row, t, E, bk->mx[i], mn);
		}
		break;
	default:
		bk->finite[i] = pass_sigmoid(row, t, E, p->profile, b, bk->s[i], NULL, key);
		break;
	}
}

/* select_groups for G <= 8 on the block path, in three steps over the block, so that no token's
 * chain of dependent steps stalls the others: the group scores of each token (from its keys:
 * simd_group_top2_keys; for finite values the key order is the float order, so their values are
 * the best two of s + b; the score is s1 + s2, vLLM without a bias s1), the ranks of the groups
 * with one token per lane, and the experts of each token's dropped groups taken out of the race
 * as select_groups does. Scores, ranking and tie rule are select_groups' own. */
static inline void block_group_scores(struct route_block *bk, int i, const struct moe_route_params *p, bool has_bias)
{
	const int32_t G = p->n_group, gs = p->num_experts / G;
	__m512i t1, t2;
	simd_group_top2_keys(bk->key[i], gs, G, &t1, &t2);
	moe_vf sv = vf_key_value(_mm512_castsi512_ps(t1));
	if (has_bias || p->profile != MOE_PROFILE_VLLM)
		sv = vf_add(sv, vf_key_value(_mm512_castsi512_ps(t2)));
	vf_store(bk->gscore[i], MOE_DTYPE_F32, 0, sv);
}

/* drop[i] = the groups token i does not keep: group g's rank counts the groups before it (better
 * scores, and equal ones of lower index); it is kept when its rank is below topk_group. Each pair
 * of groups is compared once, in all 16 lanes (tokens) at a time. */
static inline void block_rank_groups(struct route_block *bk, int nb, const struct moe_route_params *p)
{
	const int32_t G = p->n_group;
	__m512i r[16];
	for (int i = 0; i < 16; i++)
		r[i] = i < nb && bk->finite[i] ? _mm512_load_si512(bk->gscore[i]) : _mm512_setzero_si512();
	vi_transpose16(r);
	__m512i rank[8];
	for (int32_t g = 0; g < G; g++)
		rank[g] = _mm512_setzero_si512();
	const __m512i one = _mm512_set1_epi32(1);
	for (int32_t g = 1; g < G; g++)
		for (int32_t j = 0; j < g; j++) {
			/* j < g: j goes first unless g's score is greater */
			const __mmask16 jfirst = _mm512_cmp_ps_mask(_mm512_castsi512_ps(r[j]), _mm512_castsi512_ps(r[g]), _CMP_GE_OQ);
			rank[g] = _mm512_mask_add_epi32(rank[g], jfirst, rank[g], one);
			rank[j] = _mm512_mask_add_epi32(rank[j], (__mmask16)~jfirst, rank[j], one);
		}
	__m512i drop = _mm512_setzero_si512();
	const __m512i tg = _mm512_set1_epi32(p->topk_group);
	for (int32_t g = 0; g < G; g++)
		drop = _mm512_mask_or_epi32(drop, _mm512_cmpge_epi32_mask(rank[g], tg), drop, _mm512_set1_epi32(1 << g));
	_mm512_store_si512(bk->drop, drop);
}

static inline void block_drop_groups(struct route_block *bk, int i, const struct moe_route_params *p)
{
	const int32_t gs = p->num_experts / p->n_group;
	const uint32_t out = p->profile == MOE_PROFILE_HF ? 0x80000000u : 0u;
	for (uint32_t d = bk->drop[i]; d; d &= d - 1u)
		fill_u32(bk->key[i] + __builtin_ctz(d) * gs, gs, out);
}

/* Zero padding past E and the 16 column maxima of token i's keys. */
static inline void block_column_max(struct route_block *bk, int i, int32_t E)
{
	uint32_t *key = bk->key[i];
	fill_u32(key + E, 16, 0u);
	__m512i c = _mm512_setzero_si512();
	for (int32_t r = 0; r < E; r += 16)
		c = _mm512_max_epu32(c, _mm512_loadu_si512(key + r));
	_mm512_store_si512(bk->cm[i], c);
}

/* t[i] = the (K+1)-th largest of token i's 16 column maxima: K+1 distinct keys reach it, so it
 * bounds token i's (K+1)-th largest key from below, and few keys beyond those reach it (about
 * K + 3 for E = 128 on random data). One token per lane: transpose, sort each lane, pick. */
static inline void block_thresholds(struct route_block *bk, int nb, int32_t K)
{
	__m512i r[16];
	for (int i = 0; i < 16; i++)
		r[i] = i < nb ? _mm512_load_si512(bk->cm[i]) : _mm512_setzero_si512();
	vi_transpose16(r);
	vi_sort16_desc(r);
	uint32_t sorted[16][16] __attribute__((aligned(64)));
	for (int i = 0; i < 16; i++)
		_mm512_store_si512(sorted[i], r[i]);
	_mm512_store_si512(bk->t, _mm512_load_si512(sorted[K]));
}

/* Ranked by logits, weighted by a monotone function f of them (sigmoid, probability): w[0..K]
 * hold f of the K+1 best logits. The reference ranks f, equal values to the lower index, so the
 * order stands where f separates neighbours. Returns false where f(K-1) == f(K): experts past the
 * K+1 seen here may have that value too, with a lower index. Within the K, runs of equal f from
 * different logits are put in index order (runs of equal logits already are). */
static inline bool settle_monotone(const uint32_t *skey, int32_t *sel, float *w, int32_t K)
{
	if (w[K - 1] == w[K])
		return false;
	/* lanes k < K where w[k] == w[k + 1] from different keys */
	const __m512 wv = _mm512_load_ps(w), wn = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(wv),
											 _mm512_castps_si512(wv), 1));
	const __m512i kv = _mm512_load_si512(skey), kn = _mm512_alignr_epi32(kv, kv, 1);
	const __mmask16 tie = _mm512_cmp_ps_mask(wv, wn, _CMP_EQ_OQ) & _mm512_cmpneq_epu32_mask(kv, kn) &
			      (__mmask16)((1u << K) - 1u);
	if (!tie)
		return true;
	for (int32_t k = 1; k < K; k++) {
		const int32_t id = sel[k];
		const float v = w[k];
		int32_t j = k;
		for (; j > 0 && w[j - 1] == v && sel[j - 1] > id; j--) {
			sel[j] = sel[j - 1];
			w[j] = w[j - 1];
		}
		sel[j] = id;
		w[j] = v;
	}
	return true;
}

/* Weights and output of token i; false if the token needs the per-token path. */
static inline bool block_finish(struct route_block *bk, int i, const struct moe_route_params *p, enum block_kind kind,
				const void *row, int32_t *ids, float *out)
{
	const enum moe_profile profile = p->profile;
	const int32_t K = p->top_k;
	const enum moe_routing_method m = effective_method(p);
	int32_t *sel = bk->sel[i];
	const uint32_t *skey = bk->skey[i];
	float w[16] __attribute__((aligned(64)));
	const moe_vf x = vf_key_value(vf_load(skey, MOE_DTYPE_F32, 0));
	switch (kind) {
	case BLOCK_SIGMOID:
		vf_store(w, MOE_DTYPE_F32, 0, vf_sigmoid(x, profile));
		if (!settle_monotone(skey, sel, w, K))
			return false;
		if (m == MOE_ROUTE_SIGMOID_RENORM && p->renormalize)
			renormalize(p, m, w, K);
		break;
	case BLOCK_SOFTMAX:
		vf_store(w, MOE_DTYPE_F32, 0, vf_div(vf_exp(vf_sub(x, vf_set1(bk->mx[i]))), vf_set1(bk->Z[i])));
		if (!settle_monotone(skey, sel, w, K))
			return false;
		if (m == MOE_ROUTE_RENORMALIZE_NAIVE)
			renormalize(p, m, w, K);
		break;
	case BLOCK_LOGITS:
		vf_store(w, MOE_DTYPE_F32, 0, x);
		if (m == MOE_ROUTE_TOPK)
			for (int32_t k = 0; k < K; k++)
				w[k] = elem(row, p->logits_dtype, sel[k]);
		else if (m == MOE_ROUTE_RENORMALIZE)
			softmax_k(profile, w, K);
		else
			sigmoid_k(w, K, profile);
		break;
	default:
		for (int32_t k = 0; k < K; k++)
			w[k] = bk->s[i][sel[k]];
		if (m == MOE_ROUTE_MINIMAX2 || m == MOE_ROUTE_DEEPSEEKV3)
			scaled_renormalize(p, w, K);
		break;
	}
	store_out(sel, w, ids, out, K, profile, m != MOE_ROUTE_TOPK);
	return true;
}

/* ---- slot-major sort and weights: one token per lane ---- */

/* bk->skv[s] and bk->sid[s] = the key and the expert of slot s (0..16) of the 16 tokens, for
 * the tokens with nc <= 32 candidates (of more than 16, the best 16: simd_top16_candidates), as
 * simd_sort_candidates orders them: the packed candidates
 * (key << 32 | ~index) transposed in 8 x 8 blocks of 64-bit values and sorted by a bitonic
 * network of max/min pairs over the 16 slots, one token per lane (no shuffles inside the network
 * and no dependency chain through one token). Slots past a token's nc hold key 0. */
static inline void block_sort_candidates(struct route_block *bk, int nb)
{
	uint64_t pk[16][16] __attribute__((aligned(64)));
	for (int i = 0; i < 16; i++) {
		if (i < nb && bk->finite[i] && bk->nc[i] <= 16) {
			simd_pack_candidates(bk->cid[i], bk->ckey[i], bk->nc[i], pk[i]);
		} else if (i < nb && bk->finite[i] && bk->nc[i] <= 32) {
			simd_top16_candidates(bk->cid[i], bk->ckey[i], bk->nc[i], pk[i]);
		} else {
			_mm512_store_si512(pk[i], _mm512_setzero_si512());
			_mm512_store_si512(pk[i] + 8, _mm512_setzero_si512());
		}
	}
	const __m512i ones = _mm512_set1_epi64(-1);
	for (int h = 0; h < 16; h += 8) {
		__m512i c[16];
		for (int half = 0; half < 16; half += 8) {
			for (int j = 0; j < 8; j++)
				c[half + j] = _mm512_load_si512(pk[h + j] + half);
			vi_transpose8x64(c + half);
		}
		vi_sort16_desc_u64(c);
		for (int s = 0; s < 16; s++) {
			_mm256_store_si256((__m256i *)(bk->skv[s] + h), _mm512_cvtepi64_epi32(_mm512_srli_epi64(c[s], 32)));
			_mm256_store_si256((__m256i *)(bk->sid[s] + h), _mm512_cvtepi64_epi32(_mm512_xor_si512(c[s], ones)));
		}
	}
}

/* The slot-major arrays from sel and skey (token-major), for K + 1 <= 8: there each token's
 * candidates are sorted on their own (simd_sort_candidates: one 8-key network when they are at
 * most 8, the usual case), which beats the 16-slot network run for all tokens; lanes of tokens
 * without a sort hold whatever their rows held (block_finish_lanes masks them). */
static inline void block_slot_major(struct route_block *bk)
{
	__m512i r[16];
	for (int i = 0; i < 16; i++)
		r[i] = _mm512_load_si512(bk->skey[i]);
	vi_transpose16(r);
	for (int s = 0; s < 16; s++)
		_mm512_store_si512(bk->skv[s], r[s]);
	for (int i = 0; i < 16; i++)
		r[i] = _mm512_load_si512(bk->sel[i]);
	vi_transpose16(r);
	for (int s = 0; s < 16; s++)
		_mm512_store_si512(bk->sid[s], r[s]);
}

/* sel and skey of token i (slot order, token-major) from the slot-major arrays. */
static inline void block_token_major(struct route_block *bk, int i)
{
	for (int s = 0; s < 16; s++) {
		bk->sel[i][s] = bk->sid[s][i];
		bk->skey[i][s] = bk->skv[s][i];
	}
}

/* S over slots 0..K of v (one token per lane) in the profile's order, as sum_k: flashinfer's
 * 32-lane xor butterfly (lane 0), the others left to right. */
static inline moe_vf lanes_sum(enum moe_profile profile, const moe_vf *v, int32_t K)
{
	if (profile == MOE_PROFILE_FLASHINFER) {
		moe_vf a[32];
		for (int32_t k = 0; k < 32; k++)
			a[k] = k < K ? v[k] : vf_zero();
		for (int h = 16; h >= 1; h /= 2)
			for (int k = 0; k < h; k++)
				a[k] = vf_add(a[k], a[k + h]);
		return a[0];
	}
	moe_vf s = vf_zero();
	for (int32_t k = 0; k < K; k++)
		s = vf_add(s, v[k]);
	return s;
}

static inline moe_vf lanes_canon(moe_vf v)
{
	return vf_mask_set(v, ~vf_eq_mask(v, v) & 0xffffu, moe_f32_from_bits(0x7fc00000u));
}

/* Weights and output of the block's tokens in lanes (every method but TopK): block_finish's
 * formulas with each token in
 * its lane, so the sums over the K run down the slots (the same additions in the same order) and
 * nothing is horizontal. Returns the tokens it did not finish (lanes): those block_finish must
 * see, i.e. the ones it declines (nc > ncmax, not finite) and those with equal weights from distinct
 * keys among the K + 1 (settle_monotone's cases). */
static inline unsigned block_finish_lanes(struct route_block *bk, int nb, const struct moe_route_params *p,
					  enum block_kind kind, int32_t *ids, float *out)
{
	const enum moe_profile profile = p->profile;
	const int32_t K = p->top_k;
	const enum moe_routing_method m = effective_method(p);
	unsigned todo = 0;
	for (int i = 0; i < nb; i++)
		todo |= (unsigned)(bk->finite[i] && bk->nc[i] <= bk->ncmax) << i;
	moe_vf w[16], x[16];
	for (int k = 0; k < 16; k++)
		w[k] = x[k] = vf_zero();
	for (int32_t k = 0; k <= K; k++)
		x[k] = vf_key_value(vf_load(bk->skv[k], MOE_DTYPE_F32, 0));
	unsigned tie = 0;
	if (kind == BLOCK_SIGMOID || kind == BLOCK_SOFTMAX) {
		const moe_vf mx = vf_load(bk->mx, MOE_DTYPE_F32, 0), Z = vf_load(bk->Z, MOE_DTYPE_F32, 0);
		for (int32_t k = 0; k <= K; k++)
			w[k] = kind == BLOCK_SIGMOID ? vf_sigmoid(x[k], profile) : vf_div(vf_exp(vf_sub(x[k], mx)), Z);
		tie = vf_eq_mask(w[K - 1], w[K]);
		for (int32_t k = 0; k + 1 < K; k++)
			tie |= vf_eq_mask(w[k], w[k + 1]) & ~vf_eq_mask(x[k], x[k + 1]);
		if ((m == MOE_ROUTE_SIGMOID_RENORM && p->renormalize) || m == MOE_ROUTE_RENORMALIZE_NAIVE) {
			moe_vf S = lanes_canon(lanes_sum(profile, w, K));
			if (profile == MOE_PROFILE_FLASHINFER && m == MOE_ROUTE_SIGMOID_RENORM)
				S = vf_max(S, vf_set1(1e-20f));
			else if (profile == MOE_PROFILE_VLLM)
				S = vf_mask_set(S, ~vf_gt_mask(S, vf_zero()) & 0xffffu, 1.0f);
			for (int32_t k = 0; k < K; k++)
				w[k] = vf_div(w[k], S);
		}
	} else if (kind == BLOCK_BIASED) {
		/* w = s of the selected (unbiased), read back from the block's sigmoids */
		const __m512i row = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
						       _mm512_set1_epi32(MOE_ROUTE_BLOCK_MAX_E));
		for (int32_t k = 0; k < K; k++)
			w[k] = _mm512_mask_i32gather_ps(vf_zero(), (__mmask16)todo, _mm512_add_epi32(row, _mm512_load_si512(bk->sid[k])),
							&bk->s[0][0], 4);
		const float rsf = p->routed_scaling_factor;
		const moe_vf vr = vf_set1(rsf);
		moe_vf S = lanes_canon(lanes_sum(profile, w, K));
		if (profile == MOE_PROFILE_FLASHINFER) {
			const moe_vf d = vf_add(S, vf_set1(1e-20f));
			for (int32_t k = 0; k < K; k++)
				w[k] = vf_div(vf_mul(w[k], vr), d);
		} else {
			if (profile == MOE_PROFILE_VLLM)
				S = vf_mask_set(S, ~vf_gt_mask(S, vf_zero()) & 0xffffu, 1.0f);
			if (profile == MOE_PROFILE_HF && p->method == MOE_ROUTE_DEEPSEEKV3)
				S = vf_add(S, vf_set1(1e-20f));
			for (int32_t k = 0; k < K; k++)
				w[k] = vf_mul(vf_div(w[k], S), vr);
		}
	} else if (m == MOE_ROUTE_RENORMALIZE) {
		for (int32_t k = 0; k < K; k++)
			w[k] = vf_exp(vf_sub(x[k], x[0]));
		moe_vf S = lanes_canon(lanes_sum(profile, w, K));
		if (profile == MOE_PROFILE_VLLM)
			S = vf_mask_set(S, ~vf_gt_mask(S, vf_zero()) & 0xffffu, 1.0f);
		for (int32_t k = 0; k < K; k++)
			w[k] = vf_div(w[k], S);
	} else {
		for (int32_t k = 0; k < K; k++)
			w[k] = vf_sigmoid(x[k], profile);
	}
	const unsigned done = todo & ~tie;
	/* token-major: one transpose each for the weights and the ids, then K lanes per token */
	__m512i rw[16], ri[16];
	for (int k = 0; k < 16; k++) {
		moe_vf v = k < K ? lanes_canon(w[k]) : vf_zero();
		if (profile != MOE_PROFILE_VLLM)
			v = vf_round_bf16(v);
		rw[k] = _mm512_castps_si512(v);
		ri[k] = k < K ? _mm512_load_si512(bk->sid[k]) : _mm512_setzero_si512();
	}
	vi_transpose16(rw);
	vi_transpose16(ri);
	for (int i = 0; i < nb; i++)
		if ((done >> i) & 1u) {
			vf_store_tail(out + (int64_t)i * K, MOE_DTYPE_F32, 0, _mm512_castsi512_ps(rw[i]), K);
			vf_store_tail(ids + (int64_t)i * K, MOE_DTYPE_F32, 0, _mm512_castsi512_ps(ri[i]), K);
		}
	return ((1u << nb) - 1u) & ~done;
}

/* The per-token path on one row (a token the block path declines). */
static inline void route_one(struct route_scratch *sc, const struct moe_route_params *p, const void *row,
			     const void *bias, const float *b, int32_t *ids, float *out)
{
	route_prepare(sc, p, row, b);
	route_select(sc, p);
	route_finish(sc, p, bias, b, ids, out);
}

/* The fewest tokens a block of fewer than 16 needs to beat the per-token pipeline: a block's
 * transposes, sorting networks and lane passes cost about the same for 1 token as for 16, the
 * pipeline about 60-80 ns a token (E = 128). Crossovers measured per method (E = 128, K = 8;
 * DeepSeekV3 E = 256, G = 8, TG = 4; f32 and bf16 logits, flashinfer and vllm profiles; ratio of
 * the two paths at T = 1..15, interleaved; results/intel-xeon-2c-2026-12-07-dispatch/README.md): block
 * wins from 8 tokens for the sigmoid methods, 10-12 for the ranked logits, 13 for MiniMax2 and
 * vLLM's RenormalizeNaive, never below 16 for Default and TopK (at T = 15 the pipeline still
 * wins by 2-7%, except TopK on bf16 logits: the block by 5-7% from 14 tokens). The two paths
 * gave the same bits on every call compared (96,000, T = 1..40, the README), so this is speed. */
static inline int64_t block_min_tokens(const struct moe_route_params *p)
{
	switch (effective_method(p)) {
	case MOE_ROUTE_SIGMOID:
	case MOE_ROUTE_SIGMOID_RENORM:
	case MOE_ROUTE_DEEPSEEKV3:
		return 8;
	case MOE_ROUTE_RENORMALIZE:
	case MOE_ROUTE_LLAMA4:
		return 10;
	case MOE_ROUTE_TOPK_SIGMOID:
		return 12;
	case MOE_ROUTE_MINIMAX2:
	case MOE_ROUTE_RENORMALIZE_NAIVE:
		return 13;
	default:
		return 16;
	}
}

/* Routes T tokens in blocks of 16 (the last one may be shorter). */
static inline void route_blocks(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
				const float *b, int32_t *ids, float *weights)
{
	struct route_scratch one;
	uint64_t best[MOE_ROUTE_KERNEL_MAX_E];
	one.best = best;
	struct route_block bk;
	/* lanes of tokens a block does not sort are computed on and masked off: give them values */
	memset(bk.sel, 0, sizeof bk.sel);
	memset(bk.skey, 0, sizeof bk.skey);
	memset(bk.mx, 0, sizeof bk.mx);
	memset(bk.Z, 0, sizeof bk.Z);
	/* The 16-slot network takes the best 16 of up to 32 candidates; the per-token sort 16. */
	bk.ncmax = p->top_k + 1 > 8 ? 32 : 16;
	const int32_t E = p->num_experts, K = p->top_k;
	const enum block_kind kind = block_kind_of(effective_method(p));
	/* The weights are computed with one token per lane, except TopK's (raw logits, -0.0 kept),
	 * which finish token by token. */
	const bool lanes = p->method != MOE_ROUTE_TOPK;
	const size_t row_bytes = (size_t)E * (p->logits_dtype == MOE_DTYPE_BF16 ? sizeof(moe_bf16) : sizeof(float));
	for (int64_t t0 = 0; t0 < T; t0 += 16) {
		const int nb = T - t0 < 16 ? (int)(T - t0) : 16;
		for (int i = 0; i < nb; i++)
			block_prepare(&bk, i, p, kind, (const char *)logits + (size_t)(t0 + i) * row_bytes, b);
		if (p->method == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1 && p->n_group <= 8) {
			for (int i = 0; i < nb; i++)
				if (bk.finite[i])
					block_group_scores(&bk, i, p, b != NULL);
			block_rank_groups(&bk, nb, p);
			for (int i = 0; i < nb; i++)
				if (bk.finite[i])
					block_drop_groups(&bk, i, p);
		} else if (p->method == MOE_ROUTE_DEEPSEEKV3 && p->n_group > 1) {
			for (int i = 0; i < nb; i++)
				if (bk.finite[i]) {
					/* the keys are the floats s + b (or s) the group scores add */
					float kf[MOE_ROUTE_BLOCK_MAX_E] __attribute__((aligned(64)));
					for (int32_t e = 0; e < E; e += MOE_VW)
						vf_store(kf, MOE_DTYPE_F32, e, vf_key_value(vf_load(bk.key[i], MOE_DTYPE_F32, e)));
					select_groups(kf, bk.key[i], p, b != NULL);
				}
		}
		if (kind == BLOCK_BIASED)
			for (int i = 0; i < nb; i++)
				block_column_max(&bk, i, E);
		block_thresholds(&bk, nb, K);
		/* phase by phase over the block, so that the out-of-order core overlaps the tokens' chains */
		for (int i = 0; i < nb; i++)
			if (bk.finite[i])
				bk.nc[i] = simd_collect_above_max(bk.key[i], E, bk.t[i], bk.ncmax, bk.cid[i], bk.ckey[i]);
		if (K + 1 > 8) {
			block_sort_candidates(&bk, nb);
		} else {
			for (int i = 0; i < nb; i++)
				if (bk.finite[i] && bk.nc[i] <= 16)
					simd_sort_candidates(bk.cid[i], bk.ckey[i], bk.nc[i], K + 1, bk.sel[i], bk.skey[i]);
			block_slot_major(&bk);
		}
		unsigned rest = (1u << nb) - 1u;
		if (lanes)
			rest = block_finish_lanes(&bk, nb, p, kind, ids + t0 * K, weights + t0 * K);
		for (int i = 0; i < nb; i++) {
			if (!((rest >> i) & 1u))
				continue;
			const void *row = (const char *)logits + (size_t)(t0 + i) * row_bytes;
			int32_t *id = ids + (t0 + i) * K;
			float *w = weights + (t0 + i) * K;
			if (!bk.finite[i]) {
				moe_route__ref(p, 1, row, bias, id, w);
				continue;
			}
			if (bk.nc[i] <= bk.ncmax)
				block_token_major(&bk, i);
			if (bk.nc[i] > bk.ncmax || !block_finish(&bk, i, p, kind, row, id, w))
				route_one(&one, p, row, bias, b, id, w);
		}
	}
}
#endif

static inline void route_rows(const struct moe_route_params *p, int64_t T, const void *logits, const void *bias,
			      int32_t *ids, float *weights)
{
	assert(p && moe_route_validate(p) == MOE_OK);
	assert(p->num_experts <= MOE_ROUTE_KERNEL_MAX_E);
	assert(T >= 0 && (T == 0 || (logits && ids && weights)));
	assert((bias == NULL) == (p->bias_dtype == MOE_DTYPE_NONE));
	struct route_scratch sc[3];
	uint64_t best[MOE_ROUTE_KERNEL_MAX_E];
	float bconv[MOE_ROUTE_KERNEL_MAX_E] __attribute__((aligned(64)));
	const int32_t E = p->num_experts, K = p->top_k;
	const size_t row_bytes = (size_t)E * (p->logits_dtype == MOE_DTYPE_BF16 ? sizeof(moe_bf16) : sizeof(float));
	const float *b = NULL;
	if (bias) {
		const bool round = p->profile == MOE_PROFILE_FLASHINFER && p->method == MOE_ROUTE_DEEPSEEKV3 &&
				   p->n_group > 1;
		for (int32_t e = 0; e < E; e++) {
			const float v = elem(bias, p->bias_dtype, e);
			if (!isfinite(v)) {
				moe_route__ref(p, T, logits, bias, ids, weights);
				return;
			}
			bconv[e] = round ? moe_round_bf16(v) : v;
		}
		b = bconv;
	}
#if MOE_VW == 16
	if (block_supports(p)) {
		/* all but a last block of fewer than block_min_tokens(p), which the pipeline below routes */
		const int64_t done = T % 16 < block_min_tokens(p) ? T - T % 16 : T;
		if (done)
			route_blocks(p, done, logits, bias, b, ids, weights);
		logits = (const char *)logits + (size_t)done * row_bytes;
		ids += done * K;
		weights += done * K;
		T -= done;
	}
#endif
	for (int i = 0; i < 3; i++)
		sc[i].best = best;
	for (int64_t tk = 0; tk < T + 2; tk++) {
		if (tk < T)
			route_prepare(&sc[tk % 3], p, (const char *)logits + (size_t)tk * row_bytes, b);
		if (tk >= 1 && tk <= T)
			route_select(&sc[(tk - 1) % 3], p);
		if (tk >= 2)
			route_finish(&sc[(tk - 2) % 3], p, bias, b, ids + (tk - 2) * K, weights + (tk - 2) * K);
	}
}
