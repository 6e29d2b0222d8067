/* Deliberately broken backends ("mutants") for proving that `moebench verify` can fail.
 *
 * Each mutant is a plugin whose table starts as a copy of the reference table; its file defines
 * moe_mutant_setup(), which replaces one slot with a kernel that breaks exactly one thing (usually a
 * wrapper that calls the reference and then damages its output the way the bug would). The helpers
 * below recompute the pieces of routing a wrapper needs (scores, sums, output rounding) with the
 * formulas of docs/routing.md, so that a mutant differs from the reference only where
 * its bug shows. */
#ifndef MOE_TESTS_MUTANT_H
#define MOE_TESTS_MUTANT_H

#include "moe/backend.h"

/* Defined by each mutant: overwrite the slots it breaks (b starts as the reference table). */
void moe_mutant_setup(struct moe_backend *b);

/* Logit i of a row-major logits array, converted exactly to fp32; under the vllm profile a NaN or
 * infinite logit reads as 0, as the reference does (vLLM PR #39391). */
float moe_mutant_logit(const struct moe_route_params *p, const void *logits, int64_t i);
/* Bias of expert e (0 when there is none). */
float moe_mutant_bias(const struct moe_route_params *p, const void *bias, int32_t e);
/* The profile's sigmoid: flashinfer 0.5*tanh(0.5x)+0.5, vllm and hf 1/(1+exp(-x)). */
float moe_mutant_sigmoid(enum moe_profile profile, float x);
/* The weight as the profile returns it: rounded to bf16 for flashinfer and hf. */
float moe_mutant_out(enum moe_profile profile, float w);
/* Whether the method divides the selected scores by their sum. */
bool moe_mutant_renormalizes(const struct moe_route_params *p);
/* The unnormalized weight of the selected expert e in row `row`: sigmoid(x) for the sigmoid
 * methods, the softmax probability over all E (max subtracted) for Default and RenormalizeNaive,
 * exp(x - max of the K selected) for Renormalize, the raw logit for TopK. */
float moe_mutant_score(const struct moe_route_params *p, const void *logits, int64_t row, const int32_t *ids,
		       int32_t e);

/* DeepSeekV3 grouped selection (n_group > 1) of token t, written out from routing.md so that a
 * mutant can change one step of it (dsv3_select.c): keys s + bias (bias rounded to bf16 in the
 * flashinfer profile), group score top1 + top2 of the keys, or the maximum when group_by_max, the
 * TG best groups (ties: lower group), then the top K keys with the experts of the other groups
 * keyed `mask`. Returns false, leaving ids alone, for a row with a NaN key: the mutants leave
 * such rows to the reference. */
bool moe_mutant_dsv3_ids(const struct moe_route_params *p, const void *logits, const void *bias, int64_t t,
			 bool group_by_max, float mask, int32_t *ids);
/* Whether the reference scores groups by their maximum (vLLM without a bias) rather than by
 * top1 + top2, and the value it gives the experts of unselected groups (hf 0.0, others -inf). */
bool moe_mutant_dsv3_groups_by_max(const struct moe_route_params *p);
float moe_mutant_dsv3_mask(const struct moe_route_params *p);
/* DeepSeekV3 weights of the selected ids: s * rsf / (S + 1e-20) in the profile's form and rounding
 * (sums left to right: only used on rows whose ids already differ from the reference's). */
void moe_mutant_dsv3_weights(const struct moe_route_params *p, const void *logits, int64_t t,
			     const int32_t *ids, float *w);

#endif
