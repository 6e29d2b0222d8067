/* The benchmark engine's internal interface (library moe_bench), shared by the bench tools and the
 * tests. Nothing here is part of the public plugin interface in include/moe.
 *
 * Flow: suite.c builds a list of cases (op, model shape, variant), sets each up once (case_*.c,
 * data on the threads that use it), measures every backend that provides the op on it (timer.c,
 * pool.c), derives flops, bytes and the roofline (cost.c, calibrate.c), and writes JSON in Google
 * Benchmark's schema, CSV and a table (json_out.c, csv_out.c, table.c) atomically (fileio.c). */
#ifndef MOE_BENCH_BENCH_H
#define MOE_BENCH_BENCH_H

#include <stdio.h>

#include <jansson.h>

#include "moe/moe.h"
#include "moe/models.h"

#define MOE_BENCH_MAX_REPS 100
#define MOE_BENCH_MIN_REPS 7
/* Long calls: the repetitions are cut (never below this) to keep a benchmark within its budget. */
#define MOE_BENCH_FLOOR_REPS 3

/* ---- statistics (stats.c) ---- */

struct moe_bench_summary {
	size_t n;
	double median, mean, min, max;
	double stddev; /* sample standard deviation (n - 1); 0 when n < 2 */
	double cv;     /* stddev / mean; 0 when the mean is 0 */
};

/* Median of x[n] (mean of the two middle values when n is even); NAN when n is 0. */
double moe_bench_median(const double *x, size_t n);
void moe_bench_summarize(const double *x, size_t n, struct moe_bench_summary *s);

struct moe_bench_mwu {
	double u_a;    /* U of sample a: pairs (a_i, b_j) with a_i > b_j, ties counting 1/2 */
	double u_b;    /* na*nb - u_a */
	double z;      /* normal approximation (tie and continuity corrected); 0 when exact */
	double p;      /* two-sided p-value */
	bool exact;    /* p from the exact null distribution (no ties, na, nb <= 50) */
};

/* Mann-Whitney U test of a against b (two-sided). MOE_ERR_INVALID_ARG when a sample is empty. */
enum moe_status moe_bench_mann_whitney(const double *a, size_t na, const double *b, size_t nb,
				       struct moe_bench_mwu *out);

/* ---- clocks and measurement (timer.c, pool.c) ---- */

double moe_bench_now_ns(void);     /* CLOCK_MONOTONIC */
double moe_bench_cpu_now_ns(void); /* CLOCK_PROCESS_CPUTIME_ID: every thread of the process */

struct moe_bench_config {
	double min_time;   /* seconds: each repetition's sample lasts at least this long */
	int reps;          /* repetitions, MOE_BENCH_MIN_REPS .. MOE_BENCH_MAX_REPS */
	int threads;       /* threads of one call (a moe_pool handed to the kernels); 0 = 1 */
	int copies;        /* concurrent independent instances ("throughput mode"); 0 = 1 */
	double budget;     /* seconds one benchmark should take (all reps); 0 = unlimited. Calls too long
			    * for reps repetitions run fewer (MOE_BENCH_FLOOR_REPS at least, each one call);
			    * a benchmark whose floor does not fit is skipped with the reason. */
};

struct moe_bench_timing {
	int reps;
	int64_t iters;                        /* calls per thread in each repetition */
	double real_ns[MOE_BENCH_MAX_REPS];   /* wall time of one round (every thread one call) */
	double cpu_ns[MOE_BENCH_MAX_REPS];    /* process CPU time per round, all threads together */
	double first_call_ns;                 /* the cold first call, before warm-up */
	double counters[4];                   /* PAPI per call on thread 0 (papi.c order); NAN if none */
};

struct moe_bench_pool;

/* body(arg, tid, iters) runs `iters` calls of the benchmark on thread tid. */
typedef void moe_bench_body_fn(void *arg, int tid, int64_t iters);

/* Runs one call (the first, cold), warms up while calibrating the calls per repetition until one
 * sample lasts >= cfg->min_time, then measures cfg->reps samples, or fewer (down to
 * MOE_BENCH_FLOOR_REPS) when the first call shows that first call + warm-up + cfg->reps samples
 * would exceed cfg->budget; t->reps says how many. MOE_ERR_UNSUPPORTED (message says why) when even
 * the floor would exceed the budget. */
enum moe_status moe_bench_measure(struct moe_bench_pool *pool, moe_bench_body_fn *body, void *arg,
				  const struct moe_bench_config *cfg, struct moe_bench_timing *t);

/* ---- topology and pinning (topo.c) ---- */

enum moe_bench_level { MOE_LEVEL_L1 = 0, MOE_LEVEL_L2, MOE_LEVEL_L3, MOE_LEVEL_DRAM, MOE_LEVEL_COUNT };

struct moe_bench_topo {
	int packages, cores, pus, numa_nodes;
	size_t cache_bytes[3];   /* L1d, L2, L3 per instance; 0 when absent */
	int cache_count[3];      /* instances of each */
	size_t memory_bytes;
	char summary[512];       /* one line: cores, caches, NUMA */
};

const char *moe_bench_level_name(enum moe_bench_level l); /* "L1", "L2", "L3", "DRAM" */
/* Fills t from hwloc (falls back to sysconf values, saying so in the summary). */
void moe_bench_topo_get(struct moe_bench_topo *t);
/* The last-level cache size (L3, else L2), at least 1 MiB. */
size_t moe_bench_topo_llc(const struct moe_bench_topo *t);
/* Pins the calling thread to the (tid mod cores)-th core this process may run on (its affinity
 * mask when the topology was first loaded). Writes what happened into why[n] (the PU, or the
 * reason binding failed) and returns whether it succeeded. Never fatal. */
bool moe_bench_bind_thread(int tid, char *why, size_t n);
/* The logical CPU for each of n threads: one PU of each core the process may run on, in topology
 * order, wrapping around when n exceeds them (as moe_bench_bind_thread does). Returns the number
 * of distinct cores the n threads land on: min(n, cores available). */
int moe_bench_pick_cpus(int n, int *cpus);
/* Cores this process may run on (affinity mask when the topology was first loaded), >= 1. */
int moe_bench_cores_available(void);

/* A pool of `threads` pinned threads; thread 0 is the caller. */
enum moe_status moe_bench_pool_create(int threads, struct moe_bench_pool **out);
int moe_bench_pool_threads(const struct moe_bench_pool *p);
/* Runs fn(arg, tid) on every thread and returns when all are done. */
void moe_bench_pool_run(struct moe_bench_pool *p, void (*fn)(void *arg, int tid), void *arg);
/* "thread 0 -> PU 0; thread 1 -> PU 1" or the binding failures. */
const char *moe_bench_pool_binding(const struct moe_bench_pool *p);
void moe_bench_pool_destroy(struct moe_bench_pool *p);

/* ---- hardware counters (papi.c) ---- */

#define MOE_BENCH_COUNTERS 4
extern const char *const moe_bench_counter_names[MOE_BENCH_COUNTERS]; /* cycles, instructions, ... */
/* Initializes PAPI once; false with PAPI's reason in why[n] when no counter can be read. */
bool moe_bench_papi_init(char *why, size_t n);
void moe_bench_papi_start(void);
/* Stops and writes the counts divided by `calls` (NAN where an event is missing). */
void moe_bench_papi_stop(double calls, double out[MOE_BENCH_COUNTERS]);

/* ---- calibration: the roofline ceilings (calibrate.c, calib_*.c) ---- */

struct moe_roofline {
	int threads;
	double fp32_gflops;                  /* FMA peak */
	double bf16_gflops;                  /* vdpbf16ps peak; 0 without AVX512_BF16 */
	double amx_gflops;                   /* AMX tdpbf16ps peak; 0 without AMX */
	double bw_gbs[MOE_LEVEL_COUNT];      /* read bandwidth with the buffer in that level */
	size_t bw_bytes[MOE_LEVEL_COUNT];    /* per-thread buffer used for each */
};

#define MOE_BENCH_MAX_CAL 4

struct moe_calibration {
	char fingerprint[256];  /* CPU model, cores, caches, ISA: a cache entry is reused only on a match */
	char date[32];
	char isa[16];           /* the ISA the calibration kernels used */
	int count;
	struct moe_roofline r[MOE_BENCH_MAX_CAL];
};

/* The ISA-specific kernels. Each runs `reps` passes and returns the work done (flops or bytes). */
double moe_calib_fma_f32__avx512(int64_t reps);
double moe_calib_fma_f32__avx2(int64_t reps);
double moe_calib_dot_bf16__avx512bf16(int64_t reps);
double moe_calib_dot_bf16__amx(int64_t reps);
double moe_calib_read__avx512(const float *buf, size_t n, int64_t reps, float *sink);
double moe_calib_read__avx2(const float *buf, size_t n, int64_t reps, float *sink);

void moe_bench_fingerprint(const struct moe_bench_topo *t, char *out, size_t n);
/* Measures the ceilings for 1 thread and for every core. */
enum moe_status moe_bench_calibrate(const struct moe_bench_topo *t, double min_time, bool verbose,
				    struct moe_calibration *out);
/* The default cache file: $XDG_CACHE_HOME/moebench/calibration.json, else
 * $HOME/.cache/moebench/calibration.json. */
enum moe_status moe_bench_calibration_path(char *out, size_t n);
/* Loads the cache; MOE_ERR_UNSUPPORTED when it belongs to another machine (fingerprint). */
enum moe_status moe_bench_calibration_load(const char *path, const char *fingerprint,
					   struct moe_calibration *out);
enum moe_status moe_bench_calibration_save(const char *path, const struct moe_calibration *c);
json_t *moe_bench_calibration_json(const struct moe_calibration *c);
/* The ceilings for `threads` (the nearest calibrated count not above it); NULL if none. */
const struct moe_roofline *moe_bench_roofline_for(const struct moe_calibration *c, int threads);

/* ---- machine context (context.c) ---- */

/* The Google Benchmark context block plus CPU model, ISA flags, hwloc summary, compiler and flags,
 * git revision, thread binding, calibration and counter availability. */
json_t *moe_bench_context(const struct moe_bench_topo *t, const struct moe_calibration *cal,
			  const char *binding, const char *counters_note, int threads);
void moe_bench_cpu_model(char *out, size_t n);
/* A short file-name-safe machine name, e.g. "amd-epyc-2c". */
void moe_bench_machine_name(const struct moe_bench_topo *t, char *out, size_t n);

/* ---- files (fileio.c) ---- */

/* Writes path atomically: `write` fills a temporary file in the same directory, which is flushed,
 * synced and renamed over path only if `write` returns MOE_OK. On failure no temporary remains and
 * an existing file at path is untouched. */
typedef enum moe_status moe_bench_writer_fn(FILE *f, void *ctx);
enum moe_status moe_bench_write_atomic(const char *path, moe_bench_writer_fn *write, void *ctx);
/* mkdir -p */
enum moe_status moe_bench_mkdirs(const char *path);

/* ---- results ---- */

enum moe_bench_compute { MOE_COMPUTE_FP32 = 0, MOE_COMPUTE_BF16 = 1 };

/* What one call moves and computes (cost.c). */
struct moe_bench_cost {
	double flops;   /* 0 for ops that are not multiply-add work (routing, codecs) */
	double bytes;   /* bytes the kernel must read and write at their stored sizes */
	double weight_bytes; /* of those, expert weights (the touched experts'); 0 for other ops */
	double tokens;  /* tokens (rows) processed; 0 where tokens/s does not apply */
	enum moe_bench_compute compute;
	size_t working_set; /* bytes touched by one call: picks the cache level of a warm run */
};

struct moe_bench_result {
	char name[224];       /* key + "/" + backend */
	char key[192];        /* op/model/variant/shape[/cold]: the group compared across backends */
	char op[16];
	char model[32];
	char backend[64];
	char base[192];       /* the case key without a --scaling thread suffix */
	int threads;          /* threads of one call (or, with copies > 1, the copies) */
	int copies;           /* concurrent instances (throughput mode); 1 = one call at a time */
	int cores;            /* distinct cores the measurement ran on (< threads: oversubscribed) */
	bool cold;
	bool dispatched;      /* this backend's kernel for the op is the one dispatch runs */
	bool packed;          /* the runs used the backend's packed weights (moe_backend_pack) */
	double pack_ns;       /* time of the pack at setup, measured once; NAN when not packed */
	double packed_bytes;  /* bytes the packed handle(s) hold; NAN when not packed */
	char note[160];       /* what the reader should know about this row (e.g. why not packed) */
	double axis;          /* T, M or rows: the scaling plot's x */
	bool skipped;
	bool failed;          /* skipped because the plugin crashed, hung or exited in its child */
	char error[256];
	struct moe_bench_timing t;
	struct moe_bench_summary real, cpu;
	struct moe_bench_cost cost;  /* per round: all threads */
	double gflops, gbps, tokens_per_s;
	enum moe_bench_level level;  /* bandwidth ceiling used */
	double roof_ns;              /* max(flops / peak, bytes / bandwidth) */
	double roof_frac;            /* roof_ns / median; NAN without calibration */
	double speedup_ref, speedup_openblas, speedup_torch; /* median(other) / median(this); NAN */
	double speedup_ggml;         /* against the best ggml row of the key; NAN */
	double speedup_1t;           /* --scaling: median at 1 thread / this median; NAN */
	double weight_gbps;          /* weight bytes of the touched experts / median; NAN */
	bool counters_valid;
};

struct moe_bench_results {
	struct moe_bench_result *v;
	size_t n, cap;
	char warning[512];    /* run-wide (e.g. fewer cores than threads): table footnote and JSON */
	char ggml_note[160];  /* "ggml baseline: ..." line of the table; empty when not applicable */
};

struct moe_bench_result *moe_bench_results_add(struct moe_bench_results *r);
void moe_bench_results_free(struct moe_bench_results *r);
/* Reorders the results (stably) so that results of one key are adjacent, in the order keys first
 * appear: merged baselines (PyTorch) land next to the rows they compare with. */
enum moe_status moe_bench_results_group(struct moe_bench_results *r);
/* Fills summaries, GFLOP/s, GB/s, tokens/s and the roofline fraction of every result from its
 * timing and cost, then the speedups against "ref", "openblas" and "torch" of the same key. */
void moe_bench_results_derive(struct moe_bench_results *r, const struct moe_calibration *cal,
			      const struct moe_bench_topo *topo);

/* ---- output (json_out.c, json_in.c, csv_out.c, table.c) ---- */

/* Google Benchmark JSON: {"context": ctx, "benchmarks": [...]}: per result its repetitions
 * (run_type "iteration") then the aggregates mean, median, stddev, cv, min, max. */
json_t *moe_bench_json(const struct moe_bench_results *r, json_t *context);
enum moe_status moe_bench_write_json(const char *path, const struct moe_bench_results *r, json_t *context);
enum moe_status moe_bench_write_csv(const char *path, const struct moe_bench_results *r);
void moe_bench_print_table(FILE *f, const struct moe_bench_results *r);
enum moe_status moe_bench_write_table(const char *path, const struct moe_bench_results *r);

/* Reads a Google Benchmark JSON file: one result per run_name with its per-repetition real times
 * (ns). Aggregate-only files give results with t.reps == 0 and real.median from the "median"
 * aggregate. MOE_ERR_IO / MOE_ERR_FORMAT with a message naming the file and the problem. */
enum moe_status moe_bench_read_json(const char *path, struct moe_bench_results *out);

/* ---- comparison (compare.c) ---- */

struct moe_bench_compare_opts {
	double threshold; /* a regression is a median ratio above 1 + threshold ... */
	double alpha;     /* ... with p < alpha */
};

/* Compares B against A, prints a table to f, returns 0 (no significant regression), 1 (some
 * benchmark regressed), 2 (bad input: the message is printed to err). */
int moe_bench_compare_files(const char *a, const char *b, const struct moe_bench_compare_opts *o,
			    FILE *f, FILE *err);

/* ---- the suite (suite.c, case_*.c, cost.c; model shapes from include/moe/models.h) ---- */


struct moe_bench_case {
	enum moe_op op;
	char key[192];    /* op/model/variant/shape[/warm|cold] */
	char group[192];  /* the key without the shape: cases of one sweep, smallest first */
	char model[32];
	bool cold;
	double axis;
	union {
		struct { struct moe_route_params p; int64_t tokens; } route;
		struct moe_norm_params norm;
		struct moe_qtensor codec; /* shape and format; data NULL */
		struct moe_expert_params expert;
		struct moe_layer_params layer;
	} u;
};

/* The problem pointer moe_backend_provides expects for c->op. */
const void *moe_bench_case_problem(const struct moe_bench_case *c);

/* What a backend's pack at setup produced (prepare). */
struct moe_bench_pack {
	bool packed;       /* false: the backend has no pack, or refused (note says why): plain weights */
	double ns;         /* wall time of the pack(s) */
	double bytes;      /* bytes of the handle(s) */
	char note[160];
};

/* Per-op setup, call and teardown. One instance per copy; `cold` instances rotate weight copies
 * totalling more than 2x the last-level cache. prepare/unprepare (NULL for ops without weights)
 * pack the instance's weights for one backend before its runs and release them after. call runs
 * one call of b on th (the host threads of one call). */
struct moe_bench_op_impl {
	enum moe_status (*setup)(const struct moe_bench_case *c, size_t llc, void **inst);
	void (*call)(void *inst, const struct moe_backend *b, const struct moe_threads *th);
	void (*cost)(const struct moe_bench_case *c, const void *inst, struct moe_bench_cost *out);
	void (*teardown)(void *inst);
	enum moe_status (*prepare)(void *inst, const struct moe_backend *b, const struct moe_threads *th,
				   struct moe_bench_pack *out);
	void (*unprepare)(void *inst, const struct moe_backend *b);
};

const struct moe_bench_op_impl *moe_bench_op_impl(enum moe_op op);
extern const struct moe_bench_op_impl moe_bench_route_impl, moe_bench_norm_impl,
	moe_bench_quantize_impl, moe_bench_dequantize_impl, moe_bench_expert_impl, moe_bench_layer_impl;

/* Cost models (cost.c): the one place that defines flops and bytes per op. */
void moe_bench_cost_route(const struct moe_route_params *p, int64_t T, struct moe_bench_cost *c);
void moe_bench_cost_norm(const struct moe_norm_params *p, struct moe_bench_cost *c);
void moe_bench_cost_codec(enum moe_op op, const struct moe_qtensor *q, struct moe_bench_cost *c);
void moe_bench_cost_expert(const struct moe_expert_params *p, struct moe_bench_cost *c);
/* distinct: experts whose weights a call reads (received at least one token; with aliased expert
 * copies, the distinct copies), averaged over the calls of the benchmark. */
void moe_bench_cost_layer(const struct moe_layer_params *p, double distinct, struct moe_bench_cost *c);
/* Bytes of one expert's three weight tensors (data and scales) in p's format. */
double moe_bench_expert_weight_bytes(const struct moe_expert_params *p, int64_t inter);

/* Test data (data.c): deterministic normal(0, sigma) values. */
void moe_bench_fill_normal(float *x, size_t n, float sigma, uint64_t seed);
/* Quantized weights [rows][cols] in (dtype, scaling, layout), from normal(0, 1/sqrt(cols)) data. */
enum moe_status moe_bench_make_weight(enum moe_dtype dt, enum moe_scaling sc, enum moe_sf_layout l,
				      int64_t rows, int64_t cols, uint64_t seed, struct moe_qtensor *q);
enum moe_status moe_bench_copy_qtensor(const struct moe_qtensor *src, struct moe_qtensor *dst);
void *moe_bench_alloc(size_t bytes); /* 64-byte aligned, zeroed; NULL on failure */

/* The OpenBLAS baseline backend: an unfused f32 expert (sgemm/sgemv for gate and up, a SiLU*up
 * loop, sgemm/sgemv for down; f32 weights, f32 activations) and a layer written the way a user
 * would (baseline_openblas_layer.c): weights dequantized once to f32 by its pack, reference
 * routing, per expert a gather, sgemm gate/up, SiLU*up, sgemm down and a weighted scatter-add. */
const struct moe_backend *moe_bench_baseline_openblas(void);
/* The OpenBLAS layer's pack, layer and workspace (baseline_openblas_layer.c). */
moe_pack_fn moe_bench_openblas_pack;
moe_release_fn moe_bench_openblas_release;
moe_layer_mt_fn moe_bench_openblas_layer;
moe_workspace_fn moe_bench_openblas_workspace;
/* Points w's f32 tensors (dtype F32, shapes kept) at expert `index` of an OpenBLAS packed handle. */
void moe_bench_openblas_packed_weights(const struct moe_packed *packed, int32_t index, struct moe_expert_weights *w);
/* The ggml baseline (baseline_ggml.c, built only when ggml was found at configure time): the
 * layer as ggml's graph, bf16 and q4_0 weights, on the bench's threads. NULL when not built. */
const struct moe_backend *moe_bench_baseline_ggml_bf16(void);
const struct moe_backend *moe_bench_baseline_ggml_q4_0(void);
/* "ggml <version> from <dir>" or "not built (ggml not found at configure time)". */
const char *moe_bench_ggml_status(void);
/* Workspace the OpenBLAS baseline needs (gate and up outputs). */
size_t moe_bench_openblas_workspace_bytes(const struct moe_expert_params *p);

struct moe_bench_options {
	struct moe_bench_config cfg;
	unsigned op_mask;              /* 1 << enum moe_op; 0 = every op */
	const char *models[16];        /* NULL-terminated; empty = every model */
	int64_t shape_T[16], shape_M[16], shape_rows[16];
	int n_T, n_M, n_rows;          /* 0 = the defaults */
	int warm_cold;                 /* 1 warm only, 2 cold only, 3 both */
	/* Synthetic routing cases (--method): 1 << method for each method to time on one shape
	 * instead of the models' routers; 0 = the models'. */
	unsigned route_methods;
	unsigned route_profiles;       /* 1 << profile; 0 = vllm */
	int32_t route_E, route_K, route_G, route_TG; /* 0 = defaults (cases.c) */
	enum moe_dtype route_logits;   /* NONE = f32 */
	bool quick;                    /* fewer models and shapes */
	bool list_only;
	/* --weights: the expert and layer cases in this weight format (and the activation handling the
	 * engines pair with it) instead of each model's own; NULL = the model's */
	const char *weights;
	/* --scaling: only the layer and the expert prefill (M >= 64) cases, each run at 1..cores
	 * threads (the caller runs them once per thread count). */
	bool scaling;
	/* a thread-count suffix for the keys ("/threads:N"), set by the caller per scaling pass */
	int key_threads;
};

/* Whether w names a --weights format: f32, bf16, fp8, nvfp4, mxfp4. */
bool moe_bench_weights_valid(const char *w);

/* Builds the case list of the suite for these options. */
enum moe_status moe_bench_build_cases(const struct moe_bench_options *o, struct moe_bench_case **cases,
				      size_t *count);

struct moe_bench_backend_ref {
	const struct moe_backend *b;
	bool whole; /* a whole registry table: its variants, else the reference (registry.h) */
	bool isolate; /* a plugin: its code runs in child processes (verify/isolate.h) */
};

/* Runs every case on every backend that provides it, appending to out. Stops early (keeping what
 * was measured) when moe_bench_interrupted() becomes true. Progress goes to stderr. */
/* pool: the copies (one instance per thread); th: the threads of one call (NULL: serial); cores:
 * distinct cores the measurement runs on (recorded per result). */
enum moe_status moe_bench_run_suite(const struct moe_bench_case *cases, size_t ncases,
				    const struct moe_bench_backend_ref *backends, size_t nbackends,
				    const struct moe_bench_options *o, struct moe_bench_pool *pool,
				    const struct moe_threads *th, int cores,
				    const struct moe_bench_topo *topo, bool counters,
				    struct moe_bench_results *out);

/* SIGINT: the handler only sets a flag; the suite checks it between benchmarks. */
void moe_bench_install_sigint(void);
bool moe_bench_interrupted(void);

/* PyTorch routing baseline (torch.c): runs `script` on the routing cases; appends its results
 * (backend "torch"). Returns false with the reason in why[n] (e.g. torch not installed). */
bool moe_bench_run_torch(const char *script, const struct moe_bench_case *cases, size_t ncases,
			 const struct moe_bench_config *cfg, struct moe_bench_results *out,
			 char *why, size_t n);

#endif
