"""Independent model of the ten routing methods under the flashinfer, vllm and hf profiles.

Written from docs/routing.md and include/moe/routing.h only (not from reference/).
All arithmetic is fp32 op by op (fp32.py); a token is a row, and every row is routed at once.
After the first comparison, four readings where the spec is silent were settled on the side of the
reference, each for a stated upstream reason (marked [aligned] below), and three where the
reference departed from the spec were fixed in the reference ([fixed] below), so crosscheck.py's
KNOWN_DISAGREEMENTS is empty. The VARIANT_* constants are deliberately wrong implementations, used
only to build inputs that tell them apart from this model.

Readings of the spec that the text leaves open, decided here (each one is a sentence in the report):
- Selection keys are ranked per profile:
    flashinfer: the float total order of the twiddled bits (-NaN < -inf < ... < -0 < +0 < ... < +NaN);
    vllm: value order with -0 == +0; NaN and +-inf in the scored array are replaced by +0 before
          selection (vLLM PR #39391 clamps the scores after softmax/sigmoid; for methods ranked on
          raw logits the logits are that array), and weights are derived from the replaced values
          ([fixed]: the reference used to replace the logits before scoring);
    hf: value order with -0 == +0 and every NaN above +inf (torch.topk's NaN order) ([fixed]: the
        reference used to rank raw logits by flashinfer's bit total order).
  Equal keys: lower expert index first, everywhere.
- Llama4 has its own rule: strict '>' scan from index 0, NaN never selected, an all-NaN row gives
  expert 0; under vllm its key (the logits) is sanitized first, like every selection key
  ([fixed]: the reference's scan kept a NaN at index 0 when nothing after it beat -inf).
- [aligned] flashinfer keys computed by arithmetic (sigmoid, softmax, + bias, group sums) take
  CUDA's canonical positive NaN; raw logit keys keep their own bits, sign and payload.
- RenormalizeNaive under flashinfer runs the Renormalize algorithm (routing.md: flashinfer has run it
  for this method since v0.6.8).
- Softmax over a row: m = max (NaN propagates), e = exp(x - m), S = sum in index order, p = e / S.
  Over the K selected (Renormalize) m is the slot-0 logit and S is the profile's K-sum.
- Renormalization by profile (s = score, S = K-sum, c = rsf where the method applies it):
    flashinfer: SigmoidRenorm s / fmax(S, 1e-20) ([aligned] CUDA max() is fmaxf, so a NaN sum
                gives 1e-20); MiniMax2/DeepSeekV3 s * c / (S + 1e-20);
    vllm:       s / S' and (s / S') * c with S' = S > 0 ? S : 1;
    hf:         DeepSeekV3 (s / (S + 1e-20)) * c (HF's DeepSeek, grouped or not); [aligned]
                MiniMax2 (s / S) * c (HF's MiniMax-M2 divides by the plain sum); SigmoidRenorm and
                RenormalizeNaive s / S.
- K-sums: flashinfer the 32-lane xor butterfly over slots; vllm and hf sequential in slot order.
- DeepSeekV3 group score: top1 + top2 of the keys in the group (profile order), except vllm without
  a bias: top1. Groups ranked with the profile order, lower group index first on ties.
"""
import numpy as np

from fp32 import F32, U32, bits, f32, quiet, round_bf16, exp32, tanh32, ulp32

DEFAULT, RENORMALIZE, DEEPSEEKV3, LLAMA4, RENORMALIZE_NAIVE, TOPK, SIGMOID_RENORM, MINIMAX2, \
    SIGMOID, TOPK_SIGMOID = range(10)
METHOD_NAMES = ["Default", "Renormalize", "DeepSeekV3", "Llama4", "RenormalizeNaive", "TopK",
                "SigmoidRenorm", "MiniMax2", "Sigmoid", "TopKSigmoid"]
FLASHINFER, VLLM, HF = range(3)
PROFILE_NAMES = ["flashinfer", "vllm", "hf"]

EPS = F32(1e-20)

# A wrong implementation, to find inputs that tell it apart (crosscheck.py sum-order rows):
# flashinfer's K-sums taken left to right instead of by the butterfly.
VARIANT_SEQUENTIAL_SUM = "sequential-k-sum"
# ... and rsf applied in the other order: flashinfer (s / (S + eps)) * rsf, hf (s * rsf) / S'.
VARIANT_RSF_SWAPPED = "rsf-order-swapped"
NAN_TOP = 1 << 34  # hf: NaN above every finite and infinite key
CANONICAL_NAN = np.array([0x7FFFFFFF], dtype=U32).view(F32)[0]  # what CUDA arithmetic returns


def valid(method, profile, E, K, G, TG, has_bias, rsf=1.0):
    """What a router accepts ([aligned]: routing.h lists the constraints without a profile).
    routing.md lists the constraints as flashinfer's host checks, so they
    bind the flashinfer profile (E % 4 == 0, K < E, K <= 32 for every method, TG <= 4,
    K < TG*E/G); every profile needs what the algorithm itself needs: 1 <= K <= E, Llama4 K == 1, a
    bias only for MiniMax2/DeepSeekV3, and when grouped E % G == 0, 1 <= TG <= G, K <= TG*E/G,
    and two experts per group wherever the group score is a top-2 sum; a finite rsf where it is
    applied."""
    if not (0 <= method < 10) or not (0 <= profile < 3) or E <= 0 or not (1 <= K <= E):
        return False
    if method == LLAMA4 and K != 1:
        return False
    if has_bias and method not in (MINIMAX2, DEEPSEEKV3):
        return False
    if method in (MINIMAX2, DEEPSEEKV3) and not np.isfinite(rsf):
        return False
    if profile == FLASHINFER and (E % 4 != 0 or K >= E or K > 32):
        return False
    if method == DEEPSEEKV3:
        if G < 0:
            return False
        if G > 1:
            if E % G != 0 or TG < 1 or TG > G or K > TG * E // G:
                return False
            top2 = not (profile == VLLM and not has_bias)
            if top2 and E // G < 2:
                return False
            if profile == FLASHINFER and (TG > 4 or K >= TG * E // G):
                return False
    return True


def rank_keys(v, profile):
    """Integers ordered as the profile ranks the fp32 keys v (bigger = better)."""
    v = f32(v)
    if profile != FLASHINFER:
        v = np.where(v == 0, F32(0), v)  # -0 == +0
    b = bits(v).astype(np.int64)
    k = np.where(b >= 0x80000000, 0xFFFFFFFF - b, b + 0x80000000)
    if profile == HF:
        k = np.where(np.isnan(v), NAN_TOP, k)
    elif profile == VLLM:
        k = np.where(np.isnan(v), -1, k)  # a NaN never wins a '>' comparison
    return k


def canonical_nan(x):
    """flashinfer runs on CUDA, whose arithmetic returns one positive NaN whatever the operands:
    every NaN a flashinfer key computes ranks first, and NaN keys tie among themselves."""
    return np.where(np.isnan(x), CANONICAL_NAN, x)


def topk_rows(rank, K):
    """Row-wise indices of the K largest ranks; equal ranks: lower index first (stable sort)."""
    return np.argsort(-rank, axis=1, kind="stable")[:, :K].astype(np.int32)


def sanitize(x):
    """vllm: NaN and +-inf -> +0 (vLLM PR #39391)."""
    return np.where(np.isfinite(x), x, F32(0))


def sigmoid(x, profile):
    x = f32(x)
    if profile == FLASHINFER:
        t = tanh32(F32(0.5) * x)
        s = F32(0.5) * t + F32(0.5)
        return np.where(np.isnan(x), quiet(x), s)
    e = exp32(-x)
    return F32(1) / (F32(1) + e)


def sigmoid_err(x, s, profile):
    """Bound on |s - sig(x)| between two faithful implementations of the profile's sigmoid.
    flashinfer: the tanh value has ulp <= 2^-24 and libm tanhf is within 2 ulps, halved by 0.5*t:
    2^-24 absolute, doubled for the final rounding flipping; none for |x| >= 20, where tanh is
    within 0.07 ulp of +-1 and any faithful tanhf returns +-1. vllm/hf: exp within 2 ulps, then one
    add and one divide: 4 ulps relative; none for x <= -88.75, where exp(-x) exceeds FLT_MAX by
    0.7% and overflows in any faithful expf (s = 0 exactly), but 1/(1 + FLT_MAX) = 2.9e-39 just
    above that, where exp(-x) may or may not overflow. None for non-finite x (0, 1 or NaN)."""
    x = np.asarray(x, dtype=np.float64)
    if profile == FLASHINFER:
        e = np.where(np.abs(x) >= 20, 0.0, 2.0 ** -23)
    else:
        e = np.where(x <= -88.75, 0.0, np.where(x < -88.70, 4e-39, 4.0 * ulp32(s)))
    return np.where(np.isfinite(x), e, 0.0)


def seq_sum(v):
    s = v[:, 0].copy()
    for k in range(1, v.shape[1]):
        s = s + v[:, k]
    return s


def butterfly_sum(v):
    """Lane i holds slot i (lanes >= K hold +0); for m in 16, 8, 4, 2, 1: a[i] += a[i ^ m]. Every
    lane ends with the same value; lane 0 is returned."""
    T, K = v.shape
    a = np.zeros((T, 32), dtype=F32)
    a[:, :K] = v
    lane = np.arange(32)
    for m in (16, 8, 4, 2, 1):
        a = a + a[:, lane ^ m]
    return a[:, 0]


def ksum(v, profile, variant=None):
    if profile == FLASHINFER and variant != VARIANT_SEQUENTIAL_SUM:
        return butterfly_sum(v)
    return seq_sum(v)


def softmax_rows(x):
    with np.errstate(all="ignore"):
        m = np.max(x, axis=1, keepdims=True)
        e = exp32(x - m)
        S = seq_sum(e)
        return e / S[:, None]


class Route:
    """Routes logits L[T][E] (fp32 values) with bias (fp32 values or None).

    After construction: ids[T][K]; weights[T][K] (fp32, bf16-rounded for flashinfer and hf);
    key[T][E] (the fp32 selection key before group masking), kbud[T][E] (bound on the key's error
    between faithful implementations), sig[T][E] (equal signatures = bitwise-equal inputs, so
    equal keys in any correct implementation). weights_for(ids) recomputes the weights (and their
    error bound) for another selection, to compare weights after a near-tie.
    """

    def __init__(self, method, profile, E, K, G, TG, renorm, rsf, L, bias, variant=None):
        self.method, self.profile, self.E, self.K = method, profile, E, K
        self.variant = variant
        self.G = G if (method == DEEPSEEKV3 and G > 1) else 1
        self.TG = TG
        self.renorm, self.rsf = renorm, F32(rsf)
        self.L = f32(L)
        self.bias = None if bias is None else f32(bias)
        lb = bits(self.L).astype(np.int64) << 32
        bb = np.zeros(E, np.int64) if self.bias is None else bits(self.bias).astype(np.int64)
        self.sig = lb | bb[None, :]
        self.exact_weights = False
        with np.errstate(all="ignore"):
            self._score()
            self._select()
            self.weights, self.wtol = self.weights_for(self.ids)

    # ---- scores and keys ----
    def _score(self):
        m, p, L = self.method, self.profile, self.L
        self.score = None
        if m in (DEFAULT, RENORMALIZE_NAIVE) and not (m == RENORMALIZE_NAIVE and p == FLASHINFER):
            prob = softmax_rows(L)
            if p == VLLM:
                self._mark_sanitized(~np.isfinite(prob))
                prob = sanitize(prob)
            self.score = prob
            self.score_err = 8.0 * ulp32(prob)
            self.key, self.kbud = prob, self.score_err
        elif m in (RENORMALIZE, RENORMALIZE_NAIVE, TOPK, TOPK_SIGMOID, LLAMA4):
            x = L
            if p == VLLM:
                self._mark_sanitized(~np.isfinite(x))
                x = sanitize(x)
            self.x = x
            self.key, self.kbud = x, np.zeros(x.shape)
        else:  # sigmoid scores: SigmoidRenorm, MiniMax2, Sigmoid, DeepSeekV3
            s = sigmoid(L, p)
            if p == VLLM:
                self._mark_sanitized(~np.isfinite(s))
                s = sanitize(s)
            self.score = s
            self.score_err = sigmoid_err(L, s, p)
            key, kbud = s, self.score_err
            if self.bias is not None and m in (MINIMAX2, DEEPSEEKV3):
                b = self.bias
                if m == DEEPSEEKV3 and self.G > 1 and p == FLASHINFER:
                    b = round_bf16(b)
                key = s + b[None, :]
                kbud = np.where(kbud > 0, kbud + ulp32(key), 0.0)  # an exact s adds exactly
            self.key, self.kbud = key, kbud
        if self.score is not None and p == FLASHINFER:
            self.key = canonical_nan(self.key)

    def _mark_sanitized(self, mask):
        # a replaced score is an exact zero whatever the logit was: keep only the bias in the signature
        self.sig = np.where(mask, (np.int64(0x7FFFFFFF) << 32) | (self.sig & 0xFFFFFFFF), self.sig)

    # ---- selection ----
    def _select(self):
        m, p, K = self.method, self.profile, self.K
        if m == LLAMA4:
            self.rank = rank_keys(self.key, VLLM)  # strict '>' from index 0: -0 == +0, NaN never wins
            self.ids = topk_rows(self.rank, 1)
            return
        self.rank = rank_keys(self.key, p)
        if self.G <= 1:
            self.group_ok = None
            self.ids = topk_rows(self.rank, K)
            return
        T, E, G, TG = self.key.shape[0], self.E, self.G, self.TG
        gsz = E // G
        kg = self.key.reshape(T, G, gsz)
        rg = self.rank.reshape(T, G, gsz)
        order = np.argsort(-rg, axis=2, kind="stable")
        top1 = np.take_along_axis(kg, order[:, :, :1], axis=2)[:, :, 0]
        b1 = np.take_along_axis(self.kbud.reshape(T, G, gsz), order[:, :, :1], axis=2)[:, :, 0]
        if p == VLLM and self.bias is None:
            gs, gbud = top1, b1
        else:
            top2 = np.take_along_axis(kg, order[:, :, 1:2], axis=2)[:, :, 0]
            b2 = np.take_along_axis(self.kbud.reshape(T, G, gsz), order[:, :, 1:2], axis=2)[:, :, 0]
            gs = top1 + top2
            gbud = np.where(b1 + b2 > 0, b1 + b2 + ulp32(gs), 0.0)
        if p == FLASHINFER:
            gs = canonical_nan(gs)
        self.gscore, self.gbud = gs, gbud
        self.grank = rank_keys(gs, p)
        gsel = topk_rows(self.grank, TG)
        ok = np.zeros((T, G), dtype=bool)
        np.put_along_axis(ok, gsel, True, axis=1)
        self.group_ok = ok
        allowed = np.repeat(ok, gsz, axis=1)
        fill = F32(0) if p == HF else F32(-np.inf)
        masked = np.where(allowed, self.key, fill)
        self.masked_fill = fill
        self.ids = topk_rows(rank_keys(masked, p), K)

    # ---- weights ----
    def weights_for(self, ids, row=None):
        """fp32 weights for the selection ids (all rows, or the one row `row`) and an absolute
        error bound for each (beyond the rounding budget crosscheck.py adds)."""
        m, p = self.method, self.profile
        rows = np.arange(ids.shape[0])[:, None] if row is None else np.array([[row]])
        tol = np.zeros(ids.shape)
        if m == TOPK:
            w = self.x[rows, ids]
            self.exact_weights = True
        elif m in (TOPK_SIGMOID, LLAMA4):
            w = sigmoid(self.x[rows, ids], p)
            tol = sigmoid_err(self.x[rows, ids], w, p)
        elif m == RENORMALIZE or (m == RENORMALIZE_NAIVE and p == FLASHINFER):
            x = self.x[rows, ids]
            e = exp32(x - x[:, :1])
            S = ksum(e, p, self.variant)
            w = e / S[:, None]
            tol = 4.0 * ulp32(w)
        elif m == DEFAULT:
            w = self.score[rows, ids]
            tol = self.score_err[rows, ids]
        elif m == RENORMALIZE_NAIVE:
            s = self.score[rows, ids]
            S = ksum(s, p, self.variant)
            if p == VLLM:
                S = np.where(S > 0, S, F32(1))
            w = s / S[:, None]
            tol = self._renorm_tol(s, S, self.score_err[rows, ids], F32(1))
        elif m == SIGMOID or (m == SIGMOID_RENORM and not self.renorm):
            w = self.score[rows, ids]
            tol = self.score_err[rows, ids]
        else:  # SigmoidRenorm (renormalized), MiniMax2, DeepSeekV3
            s = self.score[rows, ids]
            S = ksum(s, p, self.variant)
            err = self.score_err[rows, ids]
            if m == SIGMOID_RENORM:
                c = F32(1)
                if p == FLASHINFER:
                    w = s / np.fmax(S, EPS)[:, None]  # CUDA max() is fmaxf: a NaN sum gives 1e-20
                elif p == VLLM:
                    w = s / np.where(S > 0, S, F32(1))[:, None]
                else:
                    w = s / S[:, None]
            else:
                c = self.rsf
                swapped = self.variant == VARIANT_RSF_SWAPPED
                if p == FLASHINFER and swapped:
                    w = (s / (S + EPS)[:, None]) * c
                elif p == HF and swapped:
                    w = (s * c) / (S + EPS if m == DEEPSEEKV3 else S)[:, None]
                elif p == FLASHINFER:
                    w = (s * c) / (S + EPS)[:, None]
                elif p == VLLM:
                    w = (s / np.where(S > 0, S, F32(1))[:, None]) * c
                elif m == DEEPSEEKV3:
                    w = (s / (S + EPS)[:, None]) * c
                else:
                    w = (s / S[:, None]) * c
            tol = self._renorm_tol(s, S, err, c)
        if p in (FLASHINFER, HF):
            w = round_bf16(w)
        return f32(w), tol

    @staticmethod
    def _renorm_tol(s, S, err, c):
        """|d(c*s_k/S)| <= c*(err_k + (s_k/S)*sum(err))/S: the score errors pushed through the
        normalization (first order; S is at least s_k, and the bound is taken over S's error)."""
        S = np.asarray(S, dtype=np.float64)[:, None]
        s = np.asarray(s, dtype=np.float64)
        esum = err.sum(axis=1, keepdims=True)
        lo = S - esum  # the smallest S a faithful implementation can have
        with np.errstate(all="ignore"):
            t = float(c) * (err + np.minimum(s / S, 1.0) * esum) / lo
        # when the errors are comparable to S itself, any split of c between the slots is possible
        return np.where(esum == 0, 0.0, np.where(lo > 0.5 * S, t, float(c)))
