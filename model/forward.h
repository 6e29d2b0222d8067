/* The Cohere2-MoE forward pass over a loaded struct moe_model (docs/cohere2-moe.md).
 *
 * Per layer: h = Norm(x); x = x + Attn(h) + MLP(h) (one norm, parallel attention and MLP, one
 * residual, fp32 residual stream); final norm; logits = (x @ embed^T) * logit_scale. Attention is
 * GQA with scale head_dim^-0.5, fp32 softmax, interleaved RoPE (pairs x[2i], x[2i+1] rotated by
 * pos * theta^(-2i/d)) on cfg.rope[l] layers, a sliding window on cfg.sliding[l] layers and a KV
 * cache of fp32 keys (after RoPE) and values. The MoE block runs through the backend's layer op,
 * the dense prefix MLP through its expert op.
 *
 * Two paths: REF runs the scalar reference table and this folder's plain C linear and attention
 * (fp32, sequential sums); OPT runs a kernel table (dispatched, or a plugin) and the AVX-512 linear
 * and attention where the CPU has them. Both give the same bits for any thread count. */
#ifndef MOE_MODEL_FORWARD_H
#define MOE_MODEL_FORWARD_H

#include "model.h"
#include "moe/threads.h"

enum moe_fwd_path { MOE_FWD_REF = 0, MOE_FWD_OPT = 1 };

/* Sliding window of W = cfg.sliding_window: HF attends the W keys kv_idx > q_idx - W (the query's
 * own included); PLUS1 attends W + 1 keys (kv_idx >= q_idx - W), as some engines do. */
enum moe_window_conv { MOE_WINDOW_HF = 0, MOE_WINDOW_PLUS1 = 1 };

/* Timed phases of one forward call (seconds accumulated while opt.timing is on). MOE is the layer
 * op as one call (routing, experts, shared expert, combine) unless split_moe is on, which runs the
 * routing, the routed experts, the shared expert and the combine as separate timed calls. */
enum moe_fwd_phase {
	MOE_PH_NORM = 0,
	MOE_PH_ATTN_PROJ,  /* q, k, v, o projections */
	MOE_PH_ATTN,       /* RoPE, KV cache write, scores, softmax, weighted values */
	MOE_PH_ROUTER,     /* router GEMM h @ Wg^T */
	MOE_PH_MOE,        /* the layer op (when not split) */
	MOE_PH_ROUTING,    /* split: route op */
	MOE_PH_EXPERTS,    /* split: routed experts */
	MOE_PH_SHARED,     /* split: shared expert */
	MOE_PH_COMBINE,    /* split: weighted sum and shared combine; always: the residual adds */
	MOE_PH_DENSE_MLP,  /* dense prefix layers */
	MOE_PH_LM_HEAD,    /* final norm excluded (counted in NORM) */
	MOE_PH_COUNT
};
const char *moe_fwd_phase_name(enum moe_fwd_phase p);

struct moe_fwd_options {
	enum moe_fwd_path path;
	const struct moe_backend *backend; /* OPT: the table for norm/route/expert/layer; NULL = dispatched.
					    * Ops it lacks are taken from the dispatched table. REF ignores it. */
	enum moe_profile profile;          /* routing arithmetic (routing.md); vLLM by default */
	enum moe_window_conv window;
	int64_t context;                   /* KV cache positions (> 0) */
	bool timing;                       /* accumulate per-phase times */
	bool split_moe;                    /* OPT: time routing/experts/shared/combine apart (see above) */
	bool logits_last;                  /* moe_forward_run's logits: the last position only (V floats) */
};

struct moe_forward;

/* Checks the model against the options (routing method valid for the profile, shapes), sizes the KV
 * cache, packs the expert weights for the OPT table when the model holds no handle of that table. */
enum moe_status moe_forward_create(const struct moe_model *m, const struct moe_fwd_options *opt,
				   const struct moe_threads *th, struct moe_forward **out);
void moe_forward_free(struct moe_forward *f);
/* Forget the cache (position 0 again). */
void moe_forward_reset(struct moe_forward *f);
int64_t moe_forward_position(const struct moe_forward *f);
const struct moe_model *moe_forward_model(const struct moe_forward *f);
/* For benchmarks: continue at position pos as if the cache held pos tokens (it holds whatever it
 * holds, zeros at first): the cost of a decode step at a context without prefilling it.
 * MOE_ERR_INVALID_ARG when pos >= the context. */
enum moe_status moe_forward_seek(struct moe_forward *f, int64_t pos);
/* Bytes of weights and KV cache one decode token at position pos reads, as the forward runs it:
 * every dense tensor, the router, K routed experts (of the format they run in) per sparse layer,
 * the shared expert, the dense MLP, the LM head, and the cached keys and values each layer's
 * window covers. */
double moe_forward_decode_bytes(const struct moe_forward *f, int64_t pos);

/* Runs T tokens at the next positions, appending to the KV cache. logits: NULL or T*V floats (V
 * with opt.logits_last);
 * hidden: NULL or L*T*H floats, hidden[l][t] the residual stream after layer l. MOE_ERR_INVALID_ARG
 * when an id is out of range or the context would overflow (nothing is run then). */
enum moe_status moe_forward_run(struct moe_forward *f, const int32_t *ids, int64_t T, float *logits,
				float *hidden, const struct moe_threads *th);

/* The routing method the forward uses for the model's selection under a profile (and the reason). */
enum moe_routing_method moe_forward_method(const struct moe_model_config *c, enum moe_profile profile,
					   const char **why);

const double *moe_forward_phase_seconds(const struct moe_forward *f); /* [MOE_PH_COUNT] */
void moe_forward_phase_clear(struct moe_forward *f);

/* Index of the largest value (lowest index on ties; NaN never chosen unless all are NaN). */
int32_t moe_argmax_f32(const float *v, int64_t n);

/* ---- generation and the agreement of two paths (forward_generate.c) ---- */

/* Feeds the prompt (one call), then N tokens one at a time: forced[i] when forced is given, else the
 * argmax of the previous position's logits (greedy). ids receives the P + N tokens fed, logits
 * (P+N)*V floats, one row per fed position (the last generated token is fed too, so its logits are
 * there); hidden (NULL or L*(P+N)*H) each layer's residual stream; argmax (NULL or P+N) the greedy
 * choice after each position. The forward must be fresh (position 0), its logits all rows. */
typedef void moe_fwd_progress_fn(void *ctx, int64_t done, int64_t total);
enum moe_status moe_forward_generate(struct moe_forward *f, const int32_t *prompt, int64_t P, int64_t N,
				     const int32_t *forced, int32_t *ids, float *logits, float *hidden,
				     int32_t *argmax, const struct moe_threads *th, moe_fwd_progress_fn *progress,
				     void *progress_ctx);

/* The agreement criterion of two correct forward paths (a statistical one: the paths differ in the
 * order of fp32 sums, in exp, and in the kernels' own roundings, amplified by the layers in ways no
 * a-priori bound follows usefully). Every element of a layer's hidden state must satisfy
 *   |x_opt[t][i] - x_ref[t][i]| <= tau * rms(x_ref[t]),
 * tau = MOE_FWD_TAU = 2^-8 with fp32 expert activations: one bf16 ulp at the row's typical
 * magnitude, less than the perturbation every engine already applies when it stores the residual
 * stream in bf16. Correct paths measure around 1e-6 relative (fp32 reordering), over two orders of
 * magnitude below; structural errors (RoPE, window, routing, combine, norm, activation) move rows by
 * O(1). With quantized expert activations a correct kernel may round an element of x or of the
 * intermediate to the neighbouring code where its fp32 value lies near a rounding boundary (a
 * "flip", verification.md), a change of one step of the format, which later layers carry on; tau
 * then grows with the format's relative step (moe_forward_tau): 2^-5 for bf16 (flips measured up to
 * 1.6 x 2^-8 on the tiny presets), 2^-3 for FP8 and 2^-2 for NVFP4 (steps of 2^-3 and up to 2^-1,
 * isolated). Those criteria still catch O(1) structural errors, not small ones. */
#define MOE_FWD_TAU 0x1p-8
double moe_forward_tau(const struct moe_model *m);

struct moe_fwd_layer_diff {
	double max_abs;     /* largest |x_opt - x_ref| */
	double bound_there; /* tau * rms of that element's reference row */
	double worst;       /* largest |x_opt - x_ref| / (tau * rms(row)); <= 1 passes */
	int64_t worst_t;    /* the position of worst */
};
void moe_forward_layer_diff(const float *ref, const float *opt, int64_t T, int64_t H, double tau,
			    struct moe_fwd_layer_diff *out);

/* The logit bound the hidden-state criterion (tau = moe_forward_tau(m)) implies at position t, to
 * first order: with every element of the final residual x moved by at most tau*rms(x), the final norm output moves by at
 * most |w_i| * tau*rms(x)/sigma * (2 + |x_i - mu|/sigma) (mu = 0 for RMSNorm; sigma its divisor),
 * and each logit by |logit_scale| * sum_i |e_vi| times that. x_final: the reference's last-layer
 * hidden state row. Greedy tokens must agree where the reference's top-2 margin exceeds twice it. */
double moe_forward_logit_bound(const struct moe_model *m, const float *x_final);

/* ---- F32/I32 safetensors output (forward_st_write.c) ---- */

struct moe_fwd_st_out {
	const char *name;
	enum { MOE_FWD_ST_F32 = 0, MOE_FWD_ST_I32 = 1 } dtype;
	int32_t ndim;
	int64_t shape[2];
	const void *data;
};
/* Writes the tensors to path through a temporary file in the same folder, renamed over path only
 * when everything is written; names in the order given. */
enum moe_status moe_fwd_st_write(const char *path, const struct moe_fwd_st_out *t, int32_t n);

#endif
