/* Case catalogues and input generators per op (verify/cases_*.c), shared by the runners and the
 * golden-vector exporter. */
#ifndef MOE_VERIFY_VCASES_H
#define MOE_VERIFY_VCASES_H

#include "verify.h"

enum moe_status moe_catalogue_route(enum moe_vdepth depth, uint64_t base_seed, unsigned profile_mask,
				    struct moe_vcase_list *out);
enum moe_status moe_catalogue_norm(enum moe_vdepth depth, uint64_t base_seed, struct moe_vcase_list *out);
enum moe_status moe_catalogue_codec(enum moe_op op, enum moe_vdepth depth, uint64_t base_seed,
				    struct moe_vcase_list *out);
enum moe_status moe_catalogue_expert(enum moe_vdepth depth, uint64_t base_seed, struct moe_vcase_list *out);
enum moe_status moe_catalogue_layer(enum moe_vdepth depth, uint64_t base_seed, unsigned profile_mask,
				    struct moe_vcase_list *out);

/* Routing inputs in fp32: L32[T][E] and, when b32 is non-NULL, the bias b32[E]. */
void moe_gen_route(const struct moe_vcase *c, float *L32, float *b32);
/* Norm inputs: x32[rows][cols], w32[cols] (already representable in the case's dtypes). */
void moe_gen_norm(const struct moe_vcase *c, float *x32, float *w32);
/* Codec inputs: x32[rows][cols] (quantize, and the source of dequantize unless gen=codes). */
void moe_gen_codec(const struct moe_vcase *c, float *x32);
/* Dequantize input: the quantized tensor q (allocated by the caller) from x32 by the reference
 * quantizer, or random bytes for gen=codes. */
void moe_gen_codec_q(const struct moe_vcase *c, const float *x32, struct moe_qtensor *q);
/* Expert activations x[M][H]. */
void moe_gen_expert_x(const struct moe_vcase *c, uint64_t seed, int64_t M, int64_t H, float *x);

/* Checking a backend on given inputs against given oracle outputs: the runners generate both, the
 * golden-vector checker reads both from a file. Scratch slots 0..7 belong to the runners, 8..15 to
 * these checkers (16..17 for the expert checker, 16..22 for the layer's), 24..31 to the ABI 2 paths
 * they run next (run_abi2.c). */
void moe_vcheck_route(const struct moe_backend *b, const struct moe_vcase *c, const void *logits,
		      const float *L32, const void *bias, const float *b32, const int32_t *ids_r,
		      const float *w_r, struct moe_vscratch *s, struct moe_vresult *r);
void moe_vcheck_norm(const struct moe_backend *b, const struct moe_vcase *c, const void *x, const void *w,
		     const double *y_ref, struct moe_vscratch *s, struct moe_vresult *r);

void moe_vcheck_quantize(const struct moe_backend *b, const struct moe_vcase *c, const float *x,
			 const struct moe_qtensor *qr, struct moe_vscratch *s, struct moe_vresult *r);
void moe_vcheck_dequantize(const struct moe_backend *b, const struct moe_vcase *c, const struct moe_qtensor *q,
			   const float *xr, struct moe_vscratch *s, struct moe_vresult *r);
/* The generated fp32 input x and the reference's quantized tensor q of a codec case (scratch slots
 * 0..2): quantize's expected output, or dequantize's input. false when out of memory. */
bool moe_vcodec_oracle(const struct moe_vcase *c, struct moe_vscratch *s, float **x, struct moe_qtensor *q);
void moe_vcheck_expert(const struct moe_backend *b, const struct moe_vcase *c, const float *x,
		       const struct moe_expert_weights *w, const double *y_ref, const double *bound,
		       struct moe_vscratch *s, struct moe_vresult *r);
/* Expert weights in the case's format: fp32 weights (gate/up ~ N(0, 1/H), down ~ N(0, 1/I)) quantized
 * by the reference quantizer into tensors allocated with moe_qtensor_alloc; `inter` is the expert's
 * width (the shared expert of a layer has its own). Free with moe_free_expert_weights. */
enum moe_status moe_gen_expert_weights(const struct moe_vcase *c, uint64_t seed, int64_t inter,
				       struct moe_expert_weights *w);
void moe_free_expert_weights(struct moe_expert_weights *w);

/* Layer cases: the generated inputs and the reference router's output (scratch slots 0..6), the
 * expert weights (E routed, then the shared one; free with moe_free_layer_weights), and the check
 * of a backend given all of them (scratch slots 16..22). */
struct moe_vlayer_inputs {
	float *x, *L32, *b32;
	void *logits, *bias;
	int32_t *ids_r;
	float *w_r;
};
bool moe_gen_layer_inputs(const struct moe_vcase *c, struct moe_vscratch *s, struct moe_vlayer_inputs *in);
enum moe_status moe_gen_layer_weights(const struct moe_vcase *c, struct moe_expert_weights **out);
void moe_free_layer_weights(const struct moe_vcase *c, struct moe_expert_weights *ew);
void moe_vcheck_layer(const struct moe_backend *b, const struct moe_vcase *c, const float *x, const void *logits,
		      const float *L32, const void *bias, const float *b32, const struct moe_layer_weights *lw,
		      const int32_t *ids_r, const float *w_r, struct moe_vscratch *s, struct moe_vresult *r);

/* Judges one layer run's outputs (ids_k, w_k, y): routing against the reference router's, y against
 * moe_layer_ref_f64 for the kernel's own routing in scratch slots 19..20 (computed unless ref_valid
 * says they already hold it for this routing; slot 21 for the comparator). Returns whether slots
 * 19..20 now hold that reference. */
bool moe_vjudge_layer(const struct moe_vcase *c, const struct moe_layer_params *lp, const float *x,
		      const float *L32, const float *b32, const struct moe_layer_weights *lw, const int32_t *ids_r,
		      const float *w_r, const int32_t *ids_k, const float *w_k, const float *y, bool ref_valid,
		      struct moe_vscratch *s, struct moe_vresult *r);
/* y against y_ref within bound, elementwise (expert outputs). */
void moe_vjudge_expert_y(const float *y, const double *y_ref, const double *bound, int64_t n, struct moe_vresult *r);

/* The ABI 2 paths (run_abi2.c), run after the plain path of a case when the table has the slot:
 * route_mt, expert_mt and layer_mt at 1, 2 and 3 threads, on packed weights when it has pack; the
 * 1-thread result judged as the plain one, the others bitwise against it. Scratch slots 24..31. */
void moe_vmt_route(const struct moe_backend *b, const struct moe_vcase *c, const void *logits, const float *L32,
		   const void *bias, const float *b32, const int32_t *ids_r, const float *w_r,
		   struct moe_vscratch *s, struct moe_vresult *r);
void moe_vmt_expert(const struct moe_backend *b, const struct moe_vcase *c, const float *x,
		    const struct moe_expert_weights *w, const double *y_ref, const double *bound,
		    struct moe_vscratch *s, struct moe_vresult *r);
/* ids_plain/w_plain: the plain path's routing, whose f64 reference slots 19..20 hold when ref_valid. */
void moe_vmt_layer(const struct moe_backend *b, const struct moe_vcase *c, const float *x, const void *logits,
		   const float *L32, const void *bias, const float *b32, const struct moe_layer_weights *lw,
		   const int32_t *ids_r, const float *w_r, const int32_t *ids_plain, const float *w_plain,
		   bool ref_valid, struct moe_vscratch *s, struct moe_vresult *r);
/* Which built-in variant runs a problem of op on b (moe_builtin_pick for a whole table, the
 * variant itself for a single-variant table; nothing for a plugin), added to r->ran; for the layer
 * also the router and the expert variant per token count of the routing ids. */
void moe_vran(const struct moe_backend *b, enum moe_op op, const void *problem, struct moe_vresult *r);
void moe_vran_layer(const struct moe_backend *b, const struct moe_layer_params *lp, const int32_t *ids,
		    struct moe_vresult *r);

/* One case as the engine runs it: SKIP with the reason when supports() declines the problem, else
 * before_run(ctx) (when not NULL) and the op's runner. */
void moe_vrun_one(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		  struct moe_vresult *r, void (*before_run)(void *ctx), void *ctx);
/* The same for cases c[0..n) of one op, in child processes (verify/run_isolated.c): r[k] for every
 * case with ran[k] true. A case whose child crashed, aborted, hung past the timeout or exited is a
 * FAIL saying so; the later cases of its group are not run (ran[k] false). jobs: threads per child. */
void moe_vrun_isolated(const struct moe_backend *b, const struct moe_vcase *const *c, size_t n, int jobs,
		       struct moe_vresult *r, bool *ran);
/* Whether b provides op at all (moe_backend_provides(b, op, NULL), which calls supports()), asked in
 * a child process; on a crash false with how the child ended in why[size]. */
bool moe_vprovides_isolated(const struct moe_backend *b, enum moe_op op, bool *provides, char *why, size_t size);

/* Bytes per element of a storage dtype (F32 4, BF16 2, NONE 0). */
size_t moe_storage_size(enum moe_dtype t);
/* Stores fp32 values in a storage dtype (F32 copy, BF16 by RNE) and back. */
void moe_store_as(enum moe_dtype t, const float *x32, void *dst, int64_t n);
void moe_load_f32(enum moe_dtype t, const void *src, float *x32, int64_t n);

#endif
