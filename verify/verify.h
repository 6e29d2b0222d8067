/* The conformance engine behind `moebench verify` (internal interface of the moe_verify library).
 *
 * A case is one seeded, fully specified problem of one op; its text form ("case spec", one line,
 * e.g. `route method=DeepSeekV3 profile=vllm E=256 K=8 G=8 TG=4 T=3 gen=bf16-ties seed=1234`)
 * reproduces it exactly, so failures print it and --cases files list it. A run takes any backend
 * table, runs each case through it and through the oracle (the reference backend plus the
 * double-precision references), and compares with the comparator of the op: bitwise (codecs),
 * tie-aware ids plus ULP budgets (routing), a-priori error bounds (norms, experts, layer).
 * Results aggregate per (op, backend, case group) into one report line. */
#ifndef MOE_VERIFY_VERIFY_H
#define MOE_VERIFY_VERIFY_H

#include <stdio.h>

#include "moe/moe.h"

/* ---- cases ---- */

/* Input generators; which ones an op accepts is checked when a spec is parsed. */
enum moe_vgen {
	MOE_GEN_NORMAL = 0,     /* N(0, scale^2) */
	MOE_GEN_BF16_TIES,      /* N(0, scale^2) rounded to bf16: frequent exact ties */
	MOE_GEN_LEVELS,         /* values from 5 levels: many exact ties at every rank */
	MOE_GEN_EQUAL,          /* every element of a row equal */
	MOE_GEN_NEGATIVE,       /* all negative */
	MOE_GEN_UNDERFLOW,      /* logits in [-20, -10]: the tanh sigmoid underflows to 0 */
	MOE_GEN_DEEP_UNDERFLOW, /* logits in [-110, -90]: every fp32 sigmoid underflows */
	MOE_GEN_SATURATE,       /* logits in [17, 40]: sigmoid saturates to 1 */
	MOE_GEN_OVERFLOW,       /* |logit| up to 3000: exp overflows without max subtraction */
	MOE_GEN_NAN,            /* NaN injected in some rows (one row all NaN) */
	MOE_GEN_INF,            /* +-inf injected in some rows (one row all -inf) */
	MOE_GEN_DENORMAL,       /* subnormal values mixed with small normals */
	MOE_GEN_BIAS_HUGE,      /* route: |bias| >> score (1e3..1e4) */
	MOE_GEN_BIAS_NEG,       /* route: negative biases, keys below 0 */
	MOE_GEN_SKEWED,         /* route/layer: one expert takes almost every token, some get none */
	MOE_GEN_OFFSET,         /* norm: large mean, small spread (cancellation in the variance) */
	MOE_GEN_MIDPOINTS,      /* codecs: values exactly on rounding midpoints after scaling */
	MOE_GEN_ZERO_BLOCKS,    /* codecs: whole blocks of zeros */
	MOE_GEN_INF_BLOCKS,     /* codecs: blocks containing inf and NaN */
	MOE_GEN_TINY_SCALE,     /* codecs: block amax that makes the block scale subnormal */
	MOE_GEN_CODES,          /* dequantize: random bytes, every code and scale byte */
	MOE_GEN_COUNT
};

const char *moe_vgen_name(enum moe_vgen g);
enum moe_status moe_vgen_parse(const char *name, enum moe_vgen *out);

struct moe_vcase {
	enum moe_op op;
	enum moe_vgen gen;
	uint64_t seed;
	float scale;  /* generator scale; 0 = the generator's default */
	int64_t T;    /* route/layer tokens, norm rows, codec rows, expert M */
	struct moe_route_params route;   /* route, layer */
	struct moe_norm_params norm;     /* norm (rows = T) */
	struct moe_qtensor q;            /* quantize/dequantize: format and shape only (rows = T) */
	struct moe_expert_params expert; /* expert (tokens = T), layer */
	enum moe_rsf_site rsf_site;      /* layer */
	enum moe_shared_combine shared;  /* layer */
	int64_t shared_inter;            /* layer */
	char group[64];                  /* report line this case belongs to (not part of the spec) */
};

/* Defaults for an op (small valid problem, gen normal, seed 1). */
void moe_vcase_init(struct moe_vcase *c, enum moe_op op);
/* Parses one spec line; MOE_ERR_FORMAT with a message naming the bad token. The group is set to
 * "cases-file" unless the caller overrides it. */
enum moe_status moe_vcase_parse(const char *line, struct moe_vcase *c);
/* Writes the spec (every field that matters for the op) into buf; returns buf. */
char *moe_vcase_format(const struct moe_vcase *c, char *buf, size_t size);
/* Checks the case's problem with the op's validator (route, norm, qtensor, expert, layer). */
enum moe_status moe_vcase_validate(const struct moe_vcase *c);

/* A growable list of cases. */
struct moe_vcase_list {
	struct moe_vcase *v;
	size_t n, cap;
};

enum moe_status moe_vcase_push(struct moe_vcase_list *l, const struct moe_vcase *c);
/* Pushes c when moe_vcase_validate accepts it (generators skip the combinations an op refuses);
 * MOE_OK when skipped. */
enum moe_status moe_vcase_push_valid(struct moe_vcase_list *l, const struct moe_vcase *c);
void moe_vcase_list_free(struct moe_vcase_list *l);

enum moe_vdepth { MOE_DEPTH_QUICK = 0, MOE_DEPTH_FULL = 1 };

/* The built-in catalogue of an op at a depth, seeds derived from base_seed. profile_mask selects
 * routing profiles (bit per enum moe_profile) for route and layer. */
enum moe_status moe_catalogue(enum moe_op op, enum moe_vdepth depth, uint64_t base_seed,
			      unsigned profile_mask, struct moe_vcase_list *out);
/* Reads a --cases file: one spec per line, '#' starts a comment, blank lines ignored. Refuses what
 * is not a regular text file of at most 64 MiB, and a file holding no case (MOE_ERR_FORMAT). */
enum moe_status moe_cases_read(const char *path, struct moe_vcase_list *out);

/* ---- results ---- */

enum moe_vstatus { MOE_V_PASS = 0, MOE_V_SKIP = 1, MOE_V_UNTRUSTED = 2, MOE_V_FAIL = 3 };
const char *moe_vstatus_name(enum moe_vstatus s); /* "PASS", "SKIP", "UNTRUSTED", "FAIL" */

#define MOE_V_MAX_MISMATCH 5

struct moe_vmismatch {
	char what[24];   /* which output: "ids", "weights", "y", "data", "scales", ... */
	int64_t index;   /* flat element index in that output */
	double kernel;
	double ref;
	double err;
	double bound;    /* allowed error (0 for bitwise) */
};

struct moe_vresult {
	enum moe_vstatus status;
	char reason[160];          /* SKIP/UNTRUSTED reason, or the first failure's summary */
	double worst_ulp;          /* worst ULP distance observed (-1 when no ULP check ran) */
	double ulp_budget;         /* the budget of the element that gave worst_ulp */
	double worst_ratio;        /* worst error/bound (-1 when no bound check ran) */
	int64_t near_ties;         /* rows where the kernel chose differently within the key budget */
	int64_t checked;           /* output elements compared */
	int nmis;                  /* recorded mismatches (<= MOE_V_MAX_MISMATCH) */
	int64_t total_mis;         /* all mismatches */
	struct moe_vmismatch mis[MOE_V_MAX_MISMATCH];
	char ran[96];              /* which built-in variant(s) ran the case, where knowable ("" else) */
	bool nomem;                /* the case could not get its memory and did not run */
};

void moe_vresult_init(struct moe_vresult *r);
/* Records a mismatch (keeps the first MOE_V_MAX_MISMATCH) and marks the result FAIL. */
void moe_vresult_mismatch(struct moe_vresult *r, const char *what, int64_t index, double kernel,
			  double ref, double err, double bound);
void moe_vresult_ulp(struct moe_vresult *r, double ulp, double budget);
void moe_vresult_ratio(struct moe_vresult *r, double ratio);
/* Adds each name of the ", "-separated `names` to the ", "-separated list (size bytes) unless it
 * is there already; names that do not fit are dropped. */
void moe_vname_list_add(char *list, size_t size, const char *names);
/* Adds a variant name to r->ran unless it is there already. */
void moe_vresult_ran(struct moe_vresult *r, const char *name);
/* Marks untrusted (unless already FAIL) with a reason. */
void moe_vresult_untrusted(struct moe_vresult *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The case could not get its memory: UNTRUSTED with the reason, and counted in the report's nomem,
 * which makes `verify` exit non-zero (a case that did not run proves nothing). */
void moe_vresult_nomem(struct moe_vresult *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- tolerances (verify/tolerance.c) ---- */

/* u = 2^-24, the unit roundoff of fp32. */
#define MOE_U32 0x1p-24

/* gamma_n = n*u / (1 - n*u), the classical bound on n fp32 roundings (verification.md). */
double moe_gamma(double n);
/* ULP of |x| in fp32 and bf16 (the spacing of the format at x; subnormal spacing below normal). */
double moe_ulp_f32(double x);
double moe_ulp_bf16(double x);
/* ULP distance between two fp32 values on the ordered integer line (+0 and -0 coincide); NaN
 * against NaN is 0, NaN against a number is infinite. */
double moe_ulp_dist_f32(float a, float b);

/* A-priori bound of a correct fp32 norm kernel against moe_norm_ref_f64, per element of one row
 * (x, w: the row's inputs as fp32; y_ref: the f64 result; bound: cols outputs). */
void moe_norm_bound(const struct moe_norm_params *p, const float *x, const float *w, const double *y_ref,
		    double *bound);

/* ---- running cases ---- */

/* Per-run scratch reused across cases so that generating does not allocate per case. */
struct moe_vscratch;
struct moe_vscratch *moe_vscratch_new(void);
void moe_vscratch_free(struct moe_vscratch *s);
/* A buffer of at least `bytes` bytes, 64-byte aligned, slot 0..MOE_VSCRATCH_SLOTS-1; contents are
 * not preserved across a grow. NULL when out of memory. */
#define MOE_VSCRATCH_SLOTS 32
void *moe_vscratch_get(struct moe_vscratch *s, int slot, size_t bytes);
/* The thread counts every op with an _mt slot runs at; results must be bitwise equal. */
#define MOE_VTHREADS_MAX 3
/* A host pool of `count` threads (1..MOE_VTHREADS_MAX) owned by s (moe_pool_create); NULL when
 * it cannot be created. */
const struct moe_threads *moe_vscratch_threads(struct moe_vscratch *s, int count);

/* Runs one case on backend b (the op's slot must be provided; SKIP decisions are the engine's). */
void moe_vrun_case(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		   struct moe_vresult *r);

/* Per op (verify/run_*.c). */
void moe_vrun_route(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r);
void moe_vrun_norm(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		   struct moe_vresult *r);
void moe_vrun_codec(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r);
void moe_vrun_expert(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		     struct moe_vresult *r);
void moe_vrun_layer(const struct moe_backend *b, const struct moe_vcase *c, struct moe_vscratch *s,
		    struct moe_vresult *r);

/* The problem pointer supports() receives for this case (points into c or into tmp). */
const void *moe_vcase_problem(const struct moe_vcase *c, struct moe_layer_params *tmp);

/* ---- the engine ---- */

struct moe_vgroup {
	char backend[64];
	enum moe_op op;
	char name[64];
	enum moe_vstatus status;
	int64_t n[4];            /* cases by enum moe_vstatus */
	double worst_ulp, ulp_budget, worst_ratio;
	int64_t near_ties;
	char skip_reason[160];
	int nfail_kept;          /* failing cases kept below (first few) */
	char fail_spec[3][320];
	struct moe_vresult fail[3];
	char untrusted_spec[320];
	char untrusted_reason[160];
	char ran[200];           /* the distinct variants its cases ran, comma-separated */
};

struct moe_vreport {
	struct moe_vgroup *g;
	size_t n, cap;
	int64_t cases;
	int64_t nomem;           /* cases that could not get their memory (moe_vresult_nomem) */
	double seconds;
};

void moe_vreport_free(struct moe_vreport *rep);
/* Adds the result of case c run on backend `bname` to its group. */
enum moe_status moe_vreport_add(struct moe_vreport *rep, const char *bname, const struct moe_vcase *c,
				const struct moe_vresult *r);
/* Number of groups with the given status. */
size_t moe_vreport_count(const struct moe_vreport *rep, enum moe_vstatus s);

struct moe_verify_opts {
	unsigned op_mask;        /* bit per enum moe_op */
	unsigned profile_mask;   /* bit per enum moe_profile */
	enum moe_vdepth depth;
	uint64_t seed;
	const struct moe_vcase_list *cases; /* explicit cases instead of the catalogue (NULL: catalogue) */
	const char *backend_arg; /* for repro lines: how the backend was named on the command line */
	FILE *log;               /* per-group lines as they finish (NULL: silent) */
	int jobs;                /* worker threads (<= 1: run in the calling thread) */
	bool hide_declined;      /* do not log groups whose every case supports() declined (for
				  * single-variant tables, which decline every other format) */
	bool isolate;            /* run the backend's code in child processes (plugins; isolate.h for
				  * the timeout): a crash, hang or exit in it is a FAIL of its case */
};

/* Runs every selected case on backend b and adds the results to rep. `isa` is the ISA b's kernels
 * need (MOE_ISA_SCALAR for plugins). */
enum moe_status moe_verify_backend(const struct moe_backend *b, enum moe_isa isa,
				   const struct moe_verify_opts *o, struct moe_vreport *rep);

/* ---- reports (verify/report.c) ---- */

void moe_vreport_print_group(FILE *f, const struct moe_vgroup *g, const char *backend_arg);
void moe_vreport_print_summary(FILE *f, const struct moe_vreport *rep);
/* Full report as JSON, written atomically (temporary file, then rename). */
enum moe_status moe_vreport_write_json(const struct moe_vreport *rep, const char *path);

/* The one-line command reproducing a case on a backend. */
char *moe_vrepro(const char *backend_arg, const struct moe_vcase *c, char *buf, size_t size);

/* ---- golden vectors (verify/vectors.c) ---- */

/* Writes one safetensors file per case into dir (created if missing); *written counts files. */
enum moe_status moe_vectors_export(const char *dir, const struct moe_vcase_list *cases, size_t *written);
/* Checks backend b against every *.safetensors file in dir; results go to rep (group = file's
 * case group). MOE_ERR_FORMAT / MOE_ERR_IO for unreadable or malformed files. */
enum moe_status moe_vectors_check(const char *dir, const struct moe_backend *b, const char *bname,
				  unsigned op_mask, struct moe_vreport *rep);

#endif
