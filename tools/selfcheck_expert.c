/* selfcheck rows for the reference expert MLP: each model's hidden size and weight format, the
 * fp32 reference against moe_expert_ref_f64 and its a-priori bound (error <= bound elementwise).
 * The expert width is capped at 512 to keep the scalar run short; the bound scales with the width,
 * so nothing is lost by the cap but time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"
#include "selfcheck.h"

static enum moe_status make_weight(struct moe_qtensor *q, const struct moe_expert_params *p, int64_t rows,
				   int64_t cols, uint64_t *rng)
{
	*q = (struct moe_qtensor){ .dtype = p->weight_dtype, .scaling = p->weight_scaling,
				   .sf_layout = p->weight_sf_layout, .rows = rows, .cols = cols };
	float *tmp = malloc(sizeof(float) * (size_t)(rows * cols));
	if (!tmp)
		return moe_fail(MOE_ERR_NOMEM, "selfcheck: %lld x %lld weight", (long long)rows, (long long)cols);
	enum moe_status s = moe_qtensor_alloc(q);
	if (s == MOE_OK) {
		for (int64_t i = 0; i < rows * cols; i++)
			tmp[i] = 0.05f * selfcheck_normal(rng);
		moe_quantize__ref(tmp, q);
	}
	free(tmp);
	return s;
}

static void expert_model(struct selfcheck *sc, const struct moe_model_shape *m)
{
	const int64_t M = 2, H = m->hidden, I = m->inter < 512 ? m->inter : 512;
	struct moe_expert_params p = moe_model_expert_params(m);
	p.tokens = M;
	p.inter = I;
	struct moe_expert_weights w = { 0 };
	float *x = malloc(sizeof(float) * (size_t)(M * H)), *y = malloc(sizeof(float) * (size_t)(M * H));
	double *y64 = malloc(sizeof(double) * (size_t)(M * H)), *bound = malloc(sizeof(double) * (size_t)(M * H));
	void *ws = NULL;
	uint64_t rng = sc->seed * 7919u + (uint64_t)H;
	char name[64];
	snprintf(name, sizeof name, "%s %s act=%s", m->name, moe_dtype_name(p.weight_dtype),
		 moe_act_quant_name(p.act_quant));
	selfcheck_row_begin(sc);
	enum moe_status s = (x && y && y64 && bound) ? MOE_OK : moe_fail(MOE_ERR_NOMEM, "selfcheck buffers");
	if (s == MOE_OK)
		s = make_weight(&w.gate, &p, I, H, &rng);
	if (s == MOE_OK)
		s = make_weight(&w.up, &p, I, H, &rng);
	if (s == MOE_OK)
		s = make_weight(&w.down, &p, H, I, &rng);
	if (s == MOE_OK)
		s = moe_expert_validate(&p, &w);
	if (s == MOE_OK && !(ws = aligned_alloc(64, (moe_expert_workspace_bytes(&p) + 63) / 64 * 64)))
		s = moe_fail(MOE_ERR_NOMEM, "selfcheck workspace");
	if (s == MOE_OK) {
		for (int64_t i = 0; i < M * H; i++)
			x[i] = selfcheck_normal(&rng);
		moe_expert__ref(&p, x, &w, y, ws);
		s = moe_expert_ref_f64(&p, x, &w, y64, bound);
	}
	selfcheck_expect(sc, s == MOE_OK, "%s", moe_last_error());
	for (int64_t i = 0; s == MOE_OK && i < M * H; i++) {
		const double err = fabs((double)y[i] - y64[i]);
		selfcheck_expect(sc, err <= bound[i], "output %lld: %.9g vs %.9g, error %.3g > bound %.3g",
				 (long long)i, y[i], y64[i], err, bound[i]);
	}
	selfcheck_row_end(sc, "expert", name);
	moe_qtensor_free(&w.gate);
	moe_qtensor_free(&w.up);
	moe_qtensor_free(&w.down);
	free(x);
	free(y);
	free(y64);
	free(bound);
	free(ws);
}

void selfcheck_expert(struct selfcheck *sc)
{
	for (size_t i = 0; i < moe_model_count(); i++)
		expert_model(sc, moe_model_at(i));
}
