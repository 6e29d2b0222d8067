/* moebench public interface: normalization over the last dimension.
 *
 * Centered LayerNorm (weight only, Cohere): x32 = f(x); mu = mean(x32); var = mean((x32-mu)^2);
 * y = w * ((x32 - mu) * rsqrt(var + eps)), cast to the output dtype.
 * RMSNorm: y = w * (x32 * rsqrt(mean(x32^2) + eps)), cast to the output dtype.
 * The precise fp32 order of operations is the reference's contract (reference/norm.c). */
#ifndef MOE_NORM_H
#define MOE_NORM_H

#include "moe/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

enum moe_norm_kind {
	MOE_NORM_LAYERNORM = 0, /* centered, weight only, no bias */
	MOE_NORM_RMSNORM = 1,
};

struct moe_norm_params {
	enum moe_norm_kind kind;
	int64_t rows;
	int64_t cols;
	float eps;
	enum moe_dtype in_dtype;     /* F32 or BF16 */
	enum moe_dtype weight_dtype; /* F32 or BF16 */
	enum moe_dtype out_dtype;    /* F32 or BF16 */
};

/* x: rows*cols of in_dtype; w: cols of weight_dtype; y: rows*cols of out_dtype. */
typedef void moe_norm_fn(const struct moe_norm_params *p, const void *x, const void *w, void *y);

enum moe_status moe_norm_validate(const struct moe_norm_params *p);
const char *moe_norm_kind_name(enum moe_norm_kind k); /* "layernorm", "rmsnorm" */

moe_norm_fn moe_norm__ref;

/* The same function computed in double from the same inputs, without the output rounding: the
 * value error bounds are measured against. */
void moe_norm_ref_f64(const struct moe_norm_params *p, const void *x, const void *w, double *y);

#ifdef __cplusplus
}
#endif
#endif
