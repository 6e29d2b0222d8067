/* `moebench calibrate`: the roofline ceilings of this machine, measured, and their cache.
 *
 * Ceilings per thread count (1 and every core): fp32 FMA peak, bf16 dot peak and, on AMX machines,
 * the AMX bf16 tile peak (calib_*.c, the
 * widest ISA the CPU and OS have), and read bandwidth with a per-thread buffer sized to sit in L1
 * (half of L1d), L2 (half of L2), L3 (a share of L3 well above L2) and DRAM (4x the LLC, at least
 * 256 MiB). Every measurement goes through moe_bench_measure (warm-up, >= min_time samples, 7
 * repetitions); a ceiling is the best repetition, since a ceiling is what the machine can reach
 * and the noise of a shared VM only ever pushes rates down. Rates count every thread's work.
 *
 * The cache is a JSON file at $XDG_CACHE_HOME/moebench/calibration.json (else
 * ~/.cache/moebench/calibration.json), reused only when its fingerprint (CPU model, cores, caches,
 * ISA, kernel version) matches this machine; `make bench` copies it into the result's context. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define MOE_CALIB_VERSION "cal1"

void moe_bench_fingerprint(const struct moe_bench_topo *t, char *out, size_t n)
{
	char model[128];
	moe_bench_cpu_model(model, sizeof model);
	snprintf(out, n, "%s|%d cores|L1 %zu L2 %zu L3 %zu|%s|%s", model, t->cores, t->cache_bytes[0],
		 t->cache_bytes[1], t->cache_bytes[2], moe_isa_name(moe_isa_hardware()), MOE_CALIB_VERSION);
}

enum calib_kind { CAL_FMA, CAL_BF16, CAL_AMX, CAL_READ };

struct calib_run {
	enum calib_kind kind;
	enum moe_isa isa;
	size_t floats;       /* per-thread buffer for CAL_READ */
	int64_t passes;      /* passes per call */
	float *bufs[64];
	float sink[64];
	double work;         /* flops or bytes of one call on one thread */
	enum moe_status status;
};

static void calib_body(void *arg, int tid, int64_t iters)
{
	struct calib_run *c = arg;
	for (int64_t i = 0; i < iters; i++) {
		switch (c->kind) {
		case CAL_FMA:
			if (c->isa >= MOE_ISA_AVX512)
				moe_calib_fma_f32__avx512(c->passes);
			else
				moe_calib_fma_f32__avx2(c->passes);
			break;
		case CAL_BF16:
			moe_calib_dot_bf16__avx512bf16(c->passes);
			break;
		case CAL_AMX:
			moe_calib_dot_bf16__amx(c->passes);
			break;
		case CAL_READ:
			if (c->isa >= MOE_ISA_AVX512)
				moe_calib_read__avx512(c->bufs[tid], c->floats, c->passes, &c->sink[tid]);
			else
				moe_calib_read__avx2(c->bufs[tid], c->floats, c->passes, &c->sink[tid]);
			break;
		}
	}
}

static void alloc_buf(void *arg, int tid)
{
	struct calib_run *c = arg;
	c->bufs[tid] = moe_bench_alloc(c->floats * sizeof(float));
	if (!c->bufs[tid]) {
		c->status = MOE_ERR_NOMEM;
		return;
	}
	for (size_t i = 0; i < c->floats; i++)
		c->bufs[tid][i] = 1e-3f * (float)(i & 1023);
}

static void free_buf(void *arg, int tid)
{
	struct calib_run *c = arg;
	free(c->bufs[tid]);
	c->bufs[tid] = NULL;
}

/* Best rate over the repetitions, in work units per ns (GFLOP/s or GB/s). */
static enum moe_status rate(struct moe_bench_pool *pool, struct calib_run *c, double min_time, double *out)
{
	struct moe_bench_config cfg = { .min_time = min_time, .reps = MOE_BENCH_MIN_REPS, .threads = 1 };
	struct moe_bench_timing t;
	enum moe_status s = moe_bench_measure(pool, calib_body, c, &cfg, &t);
	if (s != MOE_OK)
		return s;
	double best = t.real_ns[0];
	for (int r = 1; r < t.reps; r++)
		best = fmin(best, t.real_ns[r]);
	*out = c->work * moe_bench_pool_threads(pool) / best;
	return MOE_OK;
}

static size_t round_buf(size_t bytes)
{
	size_t floats = bytes / sizeof(float);
	floats -= floats % 128;
	return floats < 128 ? 128 : floats;
}

static enum moe_status calibrate_threads(const struct moe_bench_topo *t, int threads, double min_time,
					 bool verbose, struct moe_roofline *r)
{
	struct moe_bench_pool *pool;
	enum moe_status s = moe_bench_pool_create(threads, &pool);
	if (s != MOE_OK)
		return s;
	memset(r, 0, sizeof *r);
	r->threads = threads;
	enum moe_isa isa = moe_isa_hardware();
	if (isa < MOE_ISA_AVX2) {
		moe_bench_pool_destroy(pool);
		return moe_fail(MOE_ERR_UNSUPPORTED, "calibrate: the kernels need AVX2+FMA, this CPU has %s",
				moe_isa_name(isa));
	}
	struct calib_run c = { .kind = CAL_FMA, .isa = isa, .passes = 20000 };
	c.work = isa >= MOE_ISA_AVX512 ? 20000.0 * 12 * 16 * 2 : 20000.0 * 12 * 8 * 2;
	s = rate(pool, &c, min_time, &r->fp32_gflops);
	if (s == MOE_OK && isa >= MOE_ISA_AVX512_BF16) {
		c = (struct calib_run){ .kind = CAL_BF16, .isa = isa, .passes = 20000, .work = 20000.0 * 12 * 64 };
		s = rate(pool, &c, min_time, &r->bf16_gflops);
	}
	if (s == MOE_OK && isa >= MOE_ISA_AVX512_AMX) {
		c = (struct calib_run){ .kind = CAL_AMX, .isa = isa, .passes = 2000, .work = 2000.0 * 4 * 16384 };
		s = rate(pool, &c, min_time, &r->amx_gflops);
	}
	if (verbose && s == MOE_OK)
		fprintf(stderr, "calibrate: %d thread%s: fp32 FMA %.1f GFLOP/s, bf16 dot %.1f GFLOP/s, AMX bf16 %.1f GFLOP/s\n",
			threads, threads > 1 ? "s" : "", r->fp32_gflops, r->bf16_gflops, r->amx_gflops);

	size_t llc = moe_bench_topo_llc(t);
	size_t l1 = t->cache_bytes[0] ? t->cache_bytes[0] : 32u << 10;
	size_t l2 = t->cache_bytes[1] ? t->cache_bytes[1] : 1u << 20;
	size_t l3share = llc / (4 * (size_t)threads);
	size_t sizes[MOE_LEVEL_COUNT] = {
		l1 / 2, l2 / 2, l3share > 2 * l2 ? l3share : 2 * l2,
		4 * llc > ((size_t)256 << 20) ? 4 * llc : ((size_t)256 << 20),
	};
	for (int l = 0; l < MOE_LEVEL_COUNT && s == MOE_OK; l++) {
		c = (struct calib_run){ .kind = CAL_READ, .isa = isa, .floats = round_buf(sizes[l]) };
		size_t bytes = c.floats * sizeof(float);
		/* At least 4 MiB per call, so a call is long against its own loop overhead. */
		c.passes = bytes >= (4u << 20) ? 1 : (int64_t)((4u << 20) / bytes);
		c.work = (double)c.passes * (double)bytes;
		moe_bench_pool_run(pool, alloc_buf, &c);
		if (c.status == MOE_OK)
			s = rate(pool, &c, min_time, &r->bw_gbs[l]);
		else
			s = moe_fail(MOE_ERR_NOMEM, "calibrate: no memory for %d buffers of %zu bytes", threads, bytes);
		moe_bench_pool_run(pool, free_buf, &c);
		r->bw_bytes[l] = bytes;
		if (verbose && s == MOE_OK)
			fprintf(stderr, "calibrate: %d thread%s: %-4s read (%zu KiB per thread) %.1f GB/s\n", threads,
				threads > 1 ? "s" : "", moe_bench_level_name((enum moe_bench_level)l), bytes >> 10,
				r->bw_gbs[l]);
	}
	moe_bench_pool_destroy(pool);
	return s;
}

enum moe_status moe_bench_calibrate(const struct moe_bench_topo *t, double min_time, bool verbose,
				    struct moe_calibration *out)
{
	memset(out, 0, sizeof *out);
	moe_bench_fingerprint(t, out->fingerprint, sizeof out->fingerprint);
	time_t now = time(NULL);
	strftime(out->date, sizeof out->date, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
	snprintf(out->isa, sizeof out->isa, "%s", moe_isa_name(moe_isa_hardware()));
	int counts[2] = { 1, t->cores };
	for (int i = 0; i < 2; i++) {
		if (i == 1 && (counts[1] <= 1 || counts[1] > 64))
			break;
		enum moe_status s = calibrate_threads(t, counts[i], min_time, verbose, &out->r[out->count]);
		if (s != MOE_OK)
			return s;
		out->count++;
	}
	return MOE_OK;
}

const struct moe_roofline *moe_bench_roofline_for(const struct moe_calibration *c, int threads)
{
	const struct moe_roofline *best = NULL;
	for (int i = 0; c && i < c->count; i++)
		if (c->r[i].threads <= threads && (!best || c->r[i].threads > best->threads))
			best = &c->r[i];
	return best;
}

enum moe_status moe_bench_calibration_path(char *out, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(out, n, "%s/moebench/calibration.json", xdg);
	else if (home && *home)
		snprintf(out, n, "%s/.cache/moebench/calibration.json", home);
	else
		return moe_fail(MOE_ERR_IO, "calibrate: neither XDG_CACHE_HOME nor HOME is set: no cache location");
	return MOE_OK;
}

json_t *moe_bench_calibration_json(const struct moe_calibration *c)
{
	json_t *o = json_object(), *arr = json_array();
	json_object_set_new(o, "fingerprint", json_string(c->fingerprint));
	json_object_set_new(o, "date", json_string(c->date));
	json_object_set_new(o, "isa", json_string(c->isa));
	json_object_set_new(o, "method", json_string("best of 7 repetitions of >= min_time; rates sum all threads"));
	for (int i = 0; i < c->count; i++) {
		const struct moe_roofline *r = &c->r[i];
		json_t *e = json_object(), *bw = json_object(), *sz = json_object();
		json_object_set_new(e, "threads", json_integer(r->threads));
		json_object_set_new(e, "fp32_fma_gflops", json_real(r->fp32_gflops));
		json_object_set_new(e, "bf16_dot_gflops", json_real(r->bf16_gflops));
		json_object_set_new(e, "amx_bf16_gflops", json_real(r->amx_gflops));
		for (int l = 0; l < MOE_LEVEL_COUNT; l++) {
			json_object_set_new(bw, moe_bench_level_name((enum moe_bench_level)l), json_real(r->bw_gbs[l]));
			json_object_set_new(sz, moe_bench_level_name((enum moe_bench_level)l),
					    json_integer((json_int_t)r->bw_bytes[l]));
		}
		json_object_set_new(e, "read_gbs", bw);
		json_object_set_new(e, "buffer_bytes_per_thread", sz);
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "ceilings", arr);
	return o;
}

static enum moe_status dump_json(FILE *f, void *ctx)
{
	if (json_dumpf(ctx, f, JSON_INDENT(2)) != 0 || fputc('\n', f) == EOF)
		return moe_fail(MOE_ERR_IO, "calibrate: writing the cache failed");
	return MOE_OK;
}

enum moe_status moe_bench_calibration_save(const char *path, const struct moe_calibration *c)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		enum moe_status s = moe_bench_mkdirs(dir);
		if (s != MOE_OK)
			return s;
	}
	json_t *o = moe_bench_calibration_json(c);
	enum moe_status s = moe_bench_write_atomic(path, dump_json, o);
	json_decref(o);
	return s;
}

enum moe_status moe_bench_calibration_load(const char *path, const char *fingerprint,
					   struct moe_calibration *out)
{
	json_error_t err;
	json_t *o = json_load_file(path, 0, &err);
	if (!o)
		return moe_fail(MOE_ERR_IO, "calibrate: cannot read %s: %s", path, err.text);
	memset(out, 0, sizeof *out);
	enum moe_status s = MOE_OK;
	const char *fp = json_string_value(json_object_get(o, "fingerprint"));
	json_t *arr = json_object_get(o, "ceilings");
	if (!fp || !json_is_array(arr)) {
		s = moe_fail(MOE_ERR_FORMAT, "calibrate: %s has no fingerprint or ceilings", path);
		goto out;
	}
	if (fingerprint && strcmp(fp, fingerprint) != 0) {
		s = moe_fail(MOE_ERR_UNSUPPORTED, "calibrate: %s was measured on another machine (%s)", path, fp);
		goto out;
	}
	snprintf(out->fingerprint, sizeof out->fingerprint, "%s", fp);
	snprintf(out->date, sizeof out->date, "%s", json_string_value(json_object_get(o, "date")) ?: "");
	snprintf(out->isa, sizeof out->isa, "%s", json_string_value(json_object_get(o, "isa")) ?: "");
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		if (out->count == MOE_BENCH_MAX_CAL)
			break;
		struct moe_roofline *r = &out->r[out->count];
		json_t *bw = json_object_get(e, "read_gbs"), *sz = json_object_get(e, "buffer_bytes_per_thread");
		r->threads = (int)json_integer_value(json_object_get(e, "threads"));
		r->fp32_gflops = json_number_value(json_object_get(e, "fp32_fma_gflops"));
		r->bf16_gflops = json_number_value(json_object_get(e, "bf16_dot_gflops"));
		r->amx_gflops = json_number_value(json_object_get(e, "amx_bf16_gflops")); /* 0 when absent */
		for (int l = 0; l < MOE_LEVEL_COUNT; l++) {
			const char *name = moe_bench_level_name((enum moe_bench_level)l);
			r->bw_gbs[l] = json_number_value(json_object_get(bw, name));
			r->bw_bytes[l] = (size_t)json_integer_value(json_object_get(sz, name));
		}
		if (r->threads < 1 || !(r->fp32_gflops > 0) || !(r->bw_gbs[MOE_LEVEL_DRAM] > 0)) {
			s = moe_fail(MOE_ERR_FORMAT, "calibrate: %s: entry %zu is incomplete", path, i);
			goto out;
		}
		out->count++;
	}
	if (out->count == 0)
		s = moe_fail(MOE_ERR_FORMAT, "calibrate: %s holds no ceilings", path);
out:
	json_decref(o);
	return s;
}
