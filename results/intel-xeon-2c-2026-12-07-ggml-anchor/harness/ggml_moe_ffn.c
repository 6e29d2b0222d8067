/* ggml_moe_ffn: times ggml's MoE FFN graph (the anchor of issues 9 and 10), written against ggml's
 * public API only.
 *
 * Graph, per call, for T tokens x[T][H] with router output given as inputs (ids[T][K] distinct
 * expert ids, w[T][K] weights):
 *   g = mul_mat_id(W_gate, x, ids)  [I, K, T]
 *   u = mul_mat_id(W_up,   x, ids)  [I, K, T]
 *   h = silu(g) * u                 (ggml_swiglu_split, the fused op llama.cpp's MoE uses; --unfused
 *                                    gives ggml_silu then ggml_mul)
 *   d = mul_mat_id(W_down, h, ids)  [H, K, T]
 *   y = sum_k d[:, k, :] * w[k, :]  (ggml_mul by w broadcast, then K-1 ggml_add of views)
 * W_gate/W_up are [E][I][H], W_down is [E][H][I] (ggml ne order: H, I, E / I, H, E).
 *
 * Weights: bf16, q4_0 or mxfp4, from seeded uniform values (quantized by ggml_quantize_chunk).
 * Where the CPU device offers an extra buffer type that repacks the format for mul_mat_id (ggml's
 * CPU_REPACK: q4_0 and mxfp4 to 8-row interleaved blocks on AVX2/AVX-512), the expert tensors live
 * in that buffer and ggml repacks them when they are set ("pack", timed once per copy); otherwise
 * (bf16) they live in the plain CPU buffer. --no-repack forces the plain buffer.
 *
 * Warm: one copy of the weights, the same ids every call. Cold: C copies (same values, distinct
 * memory) used round-robin, C chosen so that C copies fit in --cold-mb (default 8000 MB) and at least
 * 2, so that successive calls read weights that have left the caches when C x copy > 2 x LLC.
 *
 * Timing: CLOCK_MONOTONIC around ggml_backend_graph_compute only (the graph allocation for the copy
 * is done before, outside the timed region). One warm-up pass over all copies, then --reps samples;
 * a sample is the mean over n calls, n grown until a sample lasts >= --min-ms. Reported: median and
 * min of the samples, ms per call, GB/s on the bytes of the touched experts (distinct ids x the
 * stored bytes of one expert's three matrices), GFLOP/s (6 H I per token-slot).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#define MAX_T 8 /* entries of --tokens */
#define MAX_COPIES 64

struct opts {
	enum ggml_type type;
	int64_t H, I, E, K;
	int tokens[MAX_T], ntok;
	int threads[4], nthr;
	int reps;
	double min_ms;
	double cold_mb;
	bool warm, cold, repack, unfused, check;
	uint64_t seed;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s) /* [-1, 1) */
{
	return (float)((double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "ggml_moe_ffn: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

static int parse_list(const char *s, int *out, int max)
{
	int n = 0;
	char *dup = strdup(s), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long v = strtol(t, &end, 10);
		if (*end || v <= 0 || v > 65536 || n == max)
			die("bad list (positive integers, few entries)", s);
		out[n++] = (int)v;
	}
	free(dup);
	if (n == 0)
		die("empty list", s);
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ggml_moe_ffn [--type bf16|q4_0|mxfp4] [--tokens 1,4,16,64,256,512] [--threads 1,2]\n"
		"                    [--mode warm|cold|both] [--reps 7] [--min-ms 20] [--cold-mb 8000]\n"
		"                    [--no-repack] [--unfused] [--check] [--shape H,I,E,K] [--seed N]\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .type = GGML_TYPE_BF16, .H = 2048, .I = 768, .E = 128, .K = 8, .reps = 7,
			    .min_ms = 20, .cold_mb = 8000, .warm = true, .cold = true, .repack = true,
			    .seed = 42 };
	o->ntok = parse_list("1,4,16,64,256,512", o->tokens, MAX_T);
	o->nthr = parse_list("1,2", o->threads, 4);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die("missing value for", a); i++; } while (0)
		if (!strcmp(a, "--type")) {
			NEEDV();
			if (!strcmp(v, "bf16")) o->type = GGML_TYPE_BF16;
			else if (!strcmp(v, "q4_0")) o->type = GGML_TYPE_Q4_0;
			else if (!strcmp(v, "mxfp4")) o->type = GGML_TYPE_MXFP4;
			else if (!strcmp(v, "f32")) o->type = GGML_TYPE_F32;
			else die("unknown --type (bf16, q4_0, mxfp4, f32)", v);
		} else if (!strcmp(a, "--tokens")) {
			NEEDV();
			o->ntok = parse_list(v, o->tokens, MAX_T);
		} else if (!strcmp(a, "--threads")) {
			NEEDV();
			o->nthr = parse_list(v, o->threads, 4);
		} else if (!strcmp(a, "--mode")) {
			NEEDV();
			o->warm = !strcmp(v, "warm") || !strcmp(v, "both");
			o->cold = !strcmp(v, "cold") || !strcmp(v, "both");
			if (!o->warm && !o->cold)
				die("unknown --mode (warm, cold, both)", v);
		} else if (!strcmp(a, "--reps")) {
			NEEDV();
			o->reps = atoi(v);
			if (o->reps < 1 || o->reps > 1000)
				die("bad --reps", v);
		} else if (!strcmp(a, "--min-ms")) {
			NEEDV();
			o->min_ms = atof(v);
			if (!(o->min_ms >= 0))
				die("bad --min-ms", v);
		} else if (!strcmp(a, "--cold-mb")) {
			NEEDV();
			o->cold_mb = atof(v);
			if (!(o->cold_mb > 0))
				die("bad --cold-mb", v);
		} else if (!strcmp(a, "--seed")) {
			NEEDV();
			o->seed = strtoull(v, NULL, 10);
		} else if (!strcmp(a, "--shape")) {
			NEEDV();
			int s[4];
			if (parse_list(v, s, 4) != 4)
				die("--shape needs H,I,E,K", v);
			o->H = s[0], o->I = s[1], o->E = s[2], o->K = s[3];
			if (o->K > o->E)
				die("--shape: K > E", v);
		} else if (!strcmp(a, "--no-repack")) {
			o->repack = false;
		} else if (!strcmp(a, "--check")) {
			o->check = true;
		} else if (!strcmp(a, "--unfused")) {
			o->unfused = true;
		} else {
			usage();
		}
#undef NEEDV
	}
	const int64_t blk = ggml_blck_size(o->type);
	if (o->H % blk || o->I % blk)
		die("H and I must be multiples of the format's block size", ggml_type_name(o->type));
}

/* The extra buffer type of the CPU device that can hold `probe` (a mul_mat_id node whose src0 is a
 * weight tensor) repacked, or NULL. Tries each extra buffer type: a zero-size buffer of that type is
 * assigned to the weight, then the device is asked whether it runs the op (the same check an engine
 * makes at load). */
static ggml_backend_buffer_type_t pick_repack_buft(ggml_backend_dev_t dev, struct ggml_tensor *op)
{
	ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
	ggml_backend_dev_get_extra_bufts_t get =
		(ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
	if (!get)
		return NULL;
	struct ggml_tensor *w = op->src[0];
	for (ggml_backend_buffer_type_t *b = get(dev); b && *b; b++) {
		ggml_backend_buffer_t buf = ggml_backend_buft_alloc_buffer(*b, 0);
		if (!buf)
			continue;
		w->buffer = buf;
		const bool ok = ggml_backend_dev_supports_op(dev, op);
		w->buffer = NULL;
		ggml_backend_buffer_free(buf);
		if (ok)
			return *b;
	}
	return NULL;
}

struct copy {
	struct ggml_context *ctx;
	ggml_backend_buffer_t buf;
	struct ggml_tensor *gate, *up, *down;
};

static struct ggml_context *new_meta_ctx(size_t ntensors)
{
	struct ggml_init_params ip = { .mem_size = ggml_tensor_overhead() * ntensors + ggml_graph_overhead() + 1024,
				       .mem_buffer = NULL, .no_alloc = true };
	struct ggml_context *c = ggml_init(ip);
	if (!c)
		die("ggml_init failed", NULL);
	return c;
}

/* One expert matrix set [E][rows][cols] as stored bytes, from seeded uniform values times `scale`. */
static void *make_weights(enum ggml_type t, int64_t E, int64_t rows, int64_t cols, float scale, uint64_t seed)
{
	const size_t rb = ggml_row_size(t, cols);
	uint8_t *out = malloc(rb * (size_t)(rows * E));
	float *tmp = malloc(sizeof(float) * (size_t)(rows * cols));
	if (!out || !tmp)
		die("no memory for the staging weights", NULL);
	uint64_t s = seed;
	for (int64_t e = 0; e < E; e++) {
		for (int64_t i = 0; i < rows * cols; i++)
			tmp[i] = scale * rng_uniform(&s);
		uint8_t *dst = out + (size_t)e * rb * (size_t)rows;
		if (t == GGML_TYPE_F32)
			memcpy(dst, tmp, sizeof(float) * (size_t)(rows * cols));
		else if (t == GGML_TYPE_BF16)
			ggml_fp32_to_bf16_row(tmp, (ggml_bf16_t *)dst, rows * cols);
		else
			ggml_quantize_chunk(t, tmp, dst, 0, rows, cols, NULL);
	}
	free(tmp);
	return out;
}

/* Builds the FFN graph over copy c's weights, inputs given. */
static struct ggml_cgraph *build_graph(struct ggml_context *ctx, const struct copy *c, struct ggml_tensor *x,
				       struct ggml_tensor *ids, struct ggml_tensor *wts, int64_t K, bool unfused,
				       struct ggml_tensor **first_mmid)
{
	struct ggml_cgraph *gf = ggml_new_graph_custom(ctx, 64, false);
	const int64_t H = x->ne[0], T = x->ne[1];
	struct ggml_tensor *cur = ggml_reshape_3d(ctx, x, H, 1, T);
	struct ggml_tensor *g = ggml_mul_mat_id(ctx, c->gate, cur, ids);
	struct ggml_tensor *u = ggml_mul_mat_id(ctx, c->up, cur, ids);
	if (first_mmid)
		*first_mmid = g;
	struct ggml_tensor *h = unfused ? ggml_mul(ctx, ggml_silu(ctx, g), u) : ggml_swiglu_split(ctx, g, u);
	struct ggml_tensor *d = ggml_mul_mat_id(ctx, c->down, h, ids); /* [H, K, T] */
	d = ggml_mul(ctx, d, wts);                                    /* wts [1, K, T] */
	ggml_build_forward_expand(gf, d);
	struct ggml_tensor *views[64];
	for (int64_t k = 0; k < K; k++) {
		views[k] = ggml_view_2d(ctx, d, H, T, d->nb[2], (size_t)k * d->nb[1]);
		ggml_build_forward_expand(gf, views[k]);
	}
	struct ggml_tensor *y = views[0];
	for (int64_t k = 1; k < K; k++) {
		y = ggml_add(ctx, y, views[k]);
		ggml_build_forward_expand(gf, y);
	}
	if (K == 1) {
		y = ggml_cont(ctx, y);
		ggml_build_forward_expand(gf, y);
	}
	return gf;
}

static void to_f32(const struct ggml_type_traits *tr, const void *src, float *dst, int64_t n)
{
	if (tr->to_float)
		tr->to_float(src, dst, n);
	else /* f32 */
		memcpy(dst, src, sizeof(float) * (size_t)n);
}

/* Largest |y - y_ref| over the first min(T, 2) tokens, relative to max |y_ref|, where y_ref is the FFN
 * in double precision on the dequantized stored weights and the f32 inputs (ggml rounds the
 * activations to bf16 or q8_0 on the way, so a few 1e-3 is expected; a layout error gives O(1)). */
static double check_output(enum ggml_type t, int64_t H, int64_t I, int64_t K, int64_t T, const void *gu,
			   const void *dn, const float *x, const int32_t *ids, const float *w, const float *y)
{
	const struct ggml_type_traits *tr = ggml_get_type_traits(t);
	const size_t rbh = ggml_row_size(t, H), rbi = ggml_row_size(t, I);
	float *row = malloc(sizeof(float) * (size_t)(H > I ? H : I));
	double *h = malloc(sizeof(double) * (size_t)I), *yr = malloc(sizeof(double) * (size_t)H);
	double maxdiff = 0, maxref = 0;
	for (int64_t tok = 0; tok < (T < 2 ? T : 2); tok++) {
		const float *xt = x + tok * H;
		for (int64_t j = 0; j < H; j++)
			yr[j] = 0;
		for (int64_t k = 0; k < K; k++) {
			const int64_t e = ids[tok * K + k];
			for (int64_t i = 0; i < I; i++) {
				to_f32(tr, (const uint8_t *)gu + (size_t)(e * I + i) * rbh, row, H);
				double g = 0;
				for (int64_t j = 0; j < H; j++)
					g += (double)row[j] * xt[j];
				/* gate and up share their values (the same staging data) */
				h[i] = g / (1.0 + exp(-g)) * g;
			}
			for (int64_t j = 0; j < H; j++) {
				to_f32(tr, (const uint8_t *)dn + (size_t)(e * H + j) * rbi, row, I);
				double d = 0;
				for (int64_t i = 0; i < I; i++)
					d += (double)row[i] * h[i];
				yr[j] += w[tok * K + k] * d;
			}
		}
		for (int64_t j = 0; j < H; j++) {
			maxdiff = fmax(maxdiff, fabs(yr[j] - (double)y[tok * H + j]));
			maxref = fmax(maxref, fabs(yr[j]));
		}
	}
	free(row);
	free(h);
	free(yr);
	return maxref > 0 ? maxdiff / maxref : maxdiff;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ggml's debug and info lines (one per repacked tensor) dropped; warnings and errors kept. */
static void log_filter(enum ggml_log_level level, const char *text, void *user)
{
	(void)user;
	if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR)
		fputs(text, stderr);
}

int main(int argc, char **argv)
{
	struct opts o;
	parse(argc, argv, &o);
	ggml_log_set(log_filter, NULL);
	const int64_t H = o.H, I = o.I, E = o.E, K = o.K;

	ggml_backend_t be = ggml_backend_cpu_init();
	if (!be)
		die("ggml_backend_cpu_init failed", NULL);
	ggml_backend_dev_t dev = ggml_backend_get_device(be);

	/* bytes */
	const size_t gate_bytes = ggml_row_size(o.type, H) * (size_t)(I * E);
	const size_t down_bytes = ggml_row_size(o.type, I) * (size_t)(H * E);
	const size_t copy_bytes = 2 * gate_bytes + down_bytes;
	const double expert_bytes = (double)copy_bytes / (double)E;

	/* choose the weight buffer type with a probe graph over a metadata-only copy */
	ggml_backend_buffer_type_t wbuft = ggml_backend_cpu_buffer_type();
	const char *packing = "none (plain CPU buffer)";
	{
		struct ggml_context *pc = new_meta_ctx(16);
		struct copy pcopy = { 0 };
		pcopy.gate = ggml_new_tensor_3d(pc, o.type, H, I, E);
		pcopy.up = ggml_new_tensor_3d(pc, o.type, H, I, E);
		pcopy.down = ggml_new_tensor_3d(pc, o.type, I, H, E);
		struct ggml_tensor *x = ggml_new_tensor_2d(pc, GGML_TYPE_F32, H, 4);
		struct ggml_tensor *ids = ggml_new_tensor_2d(pc, GGML_TYPE_I32, K, 4);
		struct ggml_tensor *mm = ggml_mul_mat_id(pc, pcopy.gate, ggml_reshape_3d(pc, x, H, 1, 4), ids);
		if (o.repack) {
			ggml_backend_buffer_type_t b = pick_repack_buft(dev, mm);
			if (b) {
				wbuft = b;
				packing = ggml_backend_buft_name(b);
			}
		}
		ggml_free(pc);
	}

	/* copies */
	int ncopy_cold = (int)floor(o.cold_mb * 1e6 / (double)copy_bytes);
	if (ncopy_cold > MAX_COPIES)
		ncopy_cold = MAX_COPIES;
	if (ncopy_cold < 2)
		ncopy_cold = 2;
	const int ncopies = o.cold ? ncopy_cold : 1;

	printf("# ggml_moe_ffn: ggml %s, type %s, H=%" PRId64 " I=%" PRId64 " E=%" PRId64 " K=%" PRId64
	       ", weights buffer: %s, act: %s\n",
	       ggml_version(), ggml_type_name(o.type), H, I, E, K, packing,
	       o.unfused ? "silu+mul" : "swiglu_split");
	printf("# one copy of the layer's experts: %.1f MB (one expert %.3f MB); cold copies: %d (%.1f MB)\n",
	       copy_bytes / 1e6, expert_bytes / 1e6, o.cold ? ncopies : 0, o.cold ? ncopies * copy_bytes / 1e6 : 0.0);
	fflush(stdout);

	void *gu_host = make_weights(o.type, E, I, H, 0.05f, o.seed);
	void *dn_host = make_weights(o.type, E, H, I, 0.05f, o.seed + 1);

	struct copy *copies = calloc((size_t)ncopies, sizeof *copies);
	double pack_ms = 0;
	for (int c = 0; c < ncopies; c++) {
		copies[c].ctx = new_meta_ctx(4);
		copies[c].gate = ggml_new_tensor_3d(copies[c].ctx, o.type, H, I, E);
		copies[c].up = ggml_new_tensor_3d(copies[c].ctx, o.type, H, I, E);
		copies[c].down = ggml_new_tensor_3d(copies[c].ctx, o.type, I, H, E);
		copies[c].buf = ggml_backend_alloc_ctx_tensors_from_buft(copies[c].ctx, wbuft);
		if (!copies[c].buf)
			die("cannot allocate the weight copies (lower --cold-mb)", NULL);
		ggml_backend_buffer_set_usage(copies[c].buf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
		const double t0 = now_ms();
		ggml_backend_tensor_set(copies[c].gate, gu_host, 0, gate_bytes);
		ggml_backend_tensor_set(copies[c].up, gu_host, 0, gate_bytes);
		ggml_backend_tensor_set(copies[c].down, dn_host, 0, down_bytes);
		pack_ms += now_ms() - t0;
	}
	if (!o.check) {
		free(gu_host);
		free(dn_host);
		gu_host = dn_host = NULL;
	}
	printf("# set/pack time: %.1f ms per copy (%s)\n", pack_ms / ncopies, packing);
	printf("%-6s %-5s %4s %3s %6s %9s %9s %8s %9s %8s %5s %s\n", "type", "mode", "T", "thr", "copies", "median_ms",
	       "min_ms", "cv", "touch_MB", "GB/s", "GF/s", "calls/sample");
	fflush(stdout);

	for (int ti = 0; ti < o.ntok; ti++) {
		const int64_t T = o.tokens[ti];
		/* inputs */
		struct ggml_context *ictx = new_meta_ctx(4);
		struct ggml_tensor *x = ggml_new_tensor_2d(ictx, GGML_TYPE_F32, H, T);
		struct ggml_tensor *ids = ggml_new_tensor_2d(ictx, GGML_TYPE_I32, K, T);
		struct ggml_tensor *wts = ggml_new_tensor_3d(ictx, GGML_TYPE_F32, 1, K, T);
		ggml_backend_buffer_t ibuf = ggml_backend_alloc_ctx_tensors(ictx, be);
		float *xh = malloc(sizeof(float) * (size_t)(H * T));
		int32_t *idh = malloc(sizeof(int32_t) * (size_t)(K * T));
		float *wh = malloc(sizeof(float) * (size_t)(K * T));
		bool *touched = calloc((size_t)E, 1);
		uint64_t s = o.seed * 1000003u + (uint64_t)T;
		for (int64_t i = 0; i < H * T; i++)
			xh[i] = rng_uniform(&s);
		int64_t ntouched = 0;
		for (int64_t t = 0; t < T; t++) {
			float sum = 0;
			for (int64_t k = 0; k < K; k++) {
				int32_t e;
				bool dup;
				do { /* K distinct uniformly drawn experts per token */
					e = (int32_t)(rng_next(&s) % (uint64_t)E);
					dup = false;
					for (int64_t j = 0; j < k; j++)
						dup |= idh[t * K + j] == e;
				} while (dup);
				idh[t * K + k] = e;
				wh[t * K + k] = 0.5f + 0.5f * (rng_uniform(&s) + 1.0f);
				sum += wh[t * K + k];
				if (!touched[e]) {
					touched[e] = true;
					ntouched++;
				}
			}
			for (int64_t k = 0; k < K; k++)
				wh[t * K + k] /= sum;
		}
		ggml_backend_tensor_set(x, xh, 0, ggml_nbytes(x));
		ggml_backend_tensor_set(ids, idh, 0, ggml_nbytes(ids));
		ggml_backend_tensor_set(wts, wh, 0, ggml_nbytes(wts));
		const double touch_bytes = (double)ntouched * expert_bytes;
		const double flops = 6.0 * (double)(H * I) * (double)(T * K);

		/* one graph per copy, one allocator (same shapes: it reuses one buffer) */
		struct ggml_context **gctx = calloc((size_t)ncopies, sizeof *gctx);
		struct ggml_cgraph **gfs = calloc((size_t)ncopies, sizeof *gfs);
		for (int c = 0; c < ncopies; c++) {
			gctx[c] = new_meta_ctx(64);
			struct ggml_tensor *mm = NULL;
			gfs[c] = build_graph(gctx[c], &copies[c], x, ids, wts, K, o.unfused, &mm);
			if (c == 0 && ti == 0 && !ggml_backend_dev_supports_op(dev, mm))
				die("the CPU device refuses mul_mat_id on these weights", NULL);
		}
		ggml_gallocr_t galloc = ggml_gallocr_new(ggml_backend_cpu_buffer_type());
		if (o.check) {
			ggml_backend_cpu_set_n_threads(be, o.threads[0]);
			for (int c = 0; c < ncopies; c += ncopies > 1 ? ncopies - 1 : 1) { /* first and last copy */
				if (!ggml_gallocr_alloc_graph(galloc, gfs[c]) ||
				    ggml_backend_graph_compute(be, gfs[c]) != GGML_STATUS_SUCCESS)
					die("graph compute failed", NULL);
				struct ggml_tensor *out = ggml_graph_node(gfs[c], -1);
				float *yh = malloc(ggml_nbytes(out));
				ggml_backend_tensor_get(out, yh, 0, ggml_nbytes(out));
				const double rel = check_output(o.type, H, I, K, T, gu_host, dn_host, xh, idh, wh, yh);
				printf("# check T=%" PRId64 " copy %d: max |y - y_ref| / max |y_ref| = %.2e%s\n", T, c, rel,
				       rel < 0.05 ? "" : "  <-- FAIL");
				free(yh);
				if (rel >= 0.05)
					exit(1);
			}
		}

		for (int hi = 0; hi < o.nthr; hi++) {
			ggml_backend_cpu_set_n_threads(be, o.threads[hi]);
			for (int mode = 0; mode < 2; mode++) {
				const bool cold = mode == 1;
				if ((cold && !o.cold) || (!cold && !o.warm))
					continue;
				const int nc = cold ? ncopies : 1;
				int next = 0;
				/* warm-up: every copy once (faults pages, fills thread pool) */
				for (int c = 0; c < nc; c++) {
					if (!ggml_gallocr_alloc_graph(galloc, gfs[c]))
						die("graph allocation failed", NULL);
					if (ggml_backend_graph_compute(be, gfs[c]) != GGML_STATUS_SUCCESS)
						die("graph compute failed", NULL);
				}
				/* calls per sample */
				int n = 1;
				double samples[1000];
				for (int r = -1; r < o.reps; r++) {
					double total = 0;
					for (int i = 0; i < n; i++) {
						const int c = cold ? next : 0;
						next = (next + 1) % nc;
						ggml_gallocr_alloc_graph(galloc, gfs[c]);
						const double t0 = now_ms();
						ggml_backend_graph_compute(be, gfs[c]);
						total += now_ms() - t0;
					}
					if (r < 0) { /* calibration sample: choose n */
						const double per = total / n;
						n = per > 0 ? (int)ceil(o.min_ms / per) : 1;
						if (n < 1)
							n = 1;
						if (cold && n < nc && per * nc < 4 * o.min_ms)
							n = nc; /* a sample visits every copy when cheap to do so */
						continue;
					}
					samples[r] = total / n;
				}
				double sorted[1000];
				memcpy(sorted, samples, sizeof(double) * (size_t)o.reps);
				qsort(sorted, (size_t)o.reps, sizeof(double), cmp_double);
				const double med = o.reps % 2 ? sorted[o.reps / 2]
							      : 0.5 * (sorted[o.reps / 2 - 1] + sorted[o.reps / 2]);
				double mean = 0, var = 0;
				for (int r = 0; r < o.reps; r++)
					mean += samples[r] / o.reps;
				for (int r = 0; r < o.reps; r++)
					var += (samples[r] - mean) * (samples[r] - mean) / (o.reps > 1 ? o.reps - 1 : 1);
				printf("%-6s %-5s %4" PRId64 " %3d %6d %9.3f %9.3f %8.3f %9.1f %8.2f %5.1f %d\n",
				       ggml_type_name(o.type), cold ? "cold" : "warm", T, o.threads[hi], nc, med, sorted[0],
				       mean > 0 ? sqrt(var) / mean : 0.0, touch_bytes / 1e6, touch_bytes / (med * 1e-3) / 1e9,
				       flops / (med * 1e-3) / 1e9, n);
				fflush(stdout);
			}
		}
		ggml_gallocr_free(galloc);
		for (int c = 0; c < ncopies; c++)
			ggml_free(gctx[c]);
		free(gctx);
		free(gfs);
		ggml_backend_buffer_free(ibuf);
		ggml_free(ictx);
		free(xh);
		free(idh);
		free(wh);
		free(touched);
	}
	for (int c = 0; c < ncopies; c++) {
		ggml_backend_buffer_free(copies[c].buf);
		ggml_free(copies[c].ctx);
	}
	free(copies);
	free(gu_host);
	free(dn_host);
	ggml_backend_free(be);
	return 0;
}
