/* `moebench model`: the Cohere2-MoE model path end to end.
 *   init    write a Hugging Face-format checkpoint with seeded weights from a preset
 *   run     prefill a prompt, decode greedily, print the ids, write logits / hidden states
 *   verify  the reference and the optimized path on the same tokens: per-layer agreement under the
 *           criterion of model/forward.h (moe_forward_tau), greedy tokens where the margin is clear
 *   bench   prefill and decode tokens/s, per-phase times, bytes per decode token against DRAM
 * Usage and input errors exit 2 with a message; verify exits 1 on a disagreement. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "commands.h"
#include "forward.h"
#include "moe/registry.h"
#include "plugin.h"

#define MAX_PROMPT (1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moebench model init --out DIR --preset NAME [--seed N]\n"
		"       moebench model init --list-presets\n"
		"       moebench model run --model DIR (--prompt-ids 5,17,42 | --prompt-file F) --max-new-tokens N\n"
		"                          [--logits FILE] [--hidden-states FILE] [common options]\n"
		"       moebench model verify --model DIR (--prompt-ids ... | --prompt-file F) [--max-new-tokens N]\n"
		"                          [common options]\n"
		"       moebench model bench --model DIR [--json FILE] [--prompt-lengths 128,512,2048]\n"
		"                          [--contexts 128,...,4096] [--reps N] [common options]\n"
		"\n"
		"Common options:\n"
		"  --path ref|opt            run: which path (default opt). ref = the scalar reference table and\n"
		"                            plain C linear/attention, norms, dense MLP and MoE experts in double\n"
		"                            (the reference's twins) rounded once; opt = dispatched kernels (or --backend) and\n"
		"                            the AVX-512 linear/attention\n"
		"  --backend NAME|PLUGIN.so  the table the opt path takes norm/route/expert/layer from (missing ops\n"
		"                            come from the dispatched table); NAME as `moebench info` lists\n"
		"  --threads N               threads on one call (default 1; bench sweeps 1..N, default all cores)\n"
		"  --weights bf16|fp8|nvfp4|mxfp4|f32|as-stored   expert format after load (default as-stored)\n"
		"  --dense f32|bf16          dense tensors after load (default bf16)\n"
		"  --act none|bf16|fp8|fp8-1x128|nvfp4   expert activation handling (default none: fp32)\n"
		"  --window-convention hf|plus1   sliding window: W keys including the query (hf, default) or W+1\n"
		"  --profile vllm|flashinfer|hf   routing arithmetic (default vllm)\n"
		"  --max-layers N            load only the first N layers\n"
		"\n"
		"run writes safetensors F32 \"logits\" [T][V] for every fed position (the prompt, then each\n"
		"generated token, the last one included: T = prompt + N) and I32 \"ids\" [T]; --hidden-states\n"
		"writes \"hidden.<l>\" [T][H] (the residual stream after layer l) and \"ids\".\n"
		"\n"
		"verify runs the reference path greedily, then the optimized path on the same tokens, and requires\n"
		"for every layer l, position t and element i\n"
		"    |x_opt - x_ref| <= tau * rms(x_ref[t]),   tau = 2^-8 (one bf16 ulp at the row's magnitude)\n"
		"a statistical criterion: correct paths differ by fp32 summation order and exp (~1e-6 relative);\n"
		"storing the residual in bf16, as engines do, already moves it by up to 2^-9; structural errors move\n"
		"it by O(1). With quantized expert activations (--act) a correct kernel may round an element to the\n"
		"neighbouring code near a rounding boundary, so tau grows with the format's step: 2^-5 for bf16,\n"
		"2^-3 for fp8, 2^-2 for nvfp4 (those still catch O(1) errors, not small ones). Greedy tokens must agree wherever the reference's top-2 logit margin exceeds twice the\n"
		"logit bound that criterion implies through the final norm and the LM head. Exit 1 on disagreement.\n"
		"\n"
		"bench times prefill (prompt lengths, clipped to the preset's max_position_embeddings), decode at\n"
		"each context (the cache positioned there, not prefilled), per thread count; per-phase times of a\n"
		"decode step; bytes one decode token streams against the calibrated DRAM bandwidth (moebench\n"
		"calibrate); peak memory. --json writes Google Benchmark JSON.\n");
}

static int fail2(const char *sub, const char *what)
{
	fprintf(stderr, "moebench model %s: %s\n", sub, what);
	return 2;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* ids separated by commas and/or whitespace */
static int parse_ids(const char *sub, const char *text, const char *where, int32_t **ids, int64_t *n)
{
	*ids = malloc(sizeof(int32_t) * 16);
	int64_t cap = 16;
	*n = 0;
	const char *p = text;
	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (errno || end == p || v < 0 || v > INT32_MAX || (*end && !strchr(", \t\r\n", *end))) {
			char msg[256];
			snprintf(msg, sizeof msg, "%s: bad token id near '%.20s' (non-negative integers separated by commas)",
				 where, p);
			free(*ids);
			*ids = NULL;
			return fail2(sub, msg);
		}
		if (*n == cap) {
			cap *= 2;
			*ids = realloc(*ids, sizeof(int32_t) * (size_t)cap);
		}
		(*ids)[(*n)++] = (int32_t)v;
		if (*n > MAX_PROMPT) {
			free(*ids);
			*ids = NULL;
			return fail2(sub, "prompt longer than 2^20 tokens");
		}
		p = end;
	}
	if (*n == 0) {
		free(*ids);
		*ids = NULL;
		char msg[256];
		snprintf(msg, sizeof msg, "%s: no token ids", where);
		return fail2(sub, msg);
	}
	return 0;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	size_t r;
	while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			cap *= 2;
			b = realloc(b, cap);
		}
	}
	fclose(f);
	if (b)
		b[n] = 0;
	return b;
}

struct opts {
	const char *sub;
	const char *model, *prompt_ids, *prompt_file, *logits, *hidden, *json, *out, *preset, *backend;
	const char *prompt_lengths, *contexts;
	int64_t max_new, threads, seed, max_layers, reps;
	bool list_presets, threads_set, max_new_set;
	enum moe_fwd_path path;
	enum moe_model_weights weights;
	enum moe_dtype dense;
	enum moe_act_quant act;
	enum moe_window_conv window;
	enum moe_profile profile;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' },          { "prompt-ids", required_argument, NULL, 'i' },
		{ "prompt-file", required_argument, NULL, 'F' },    { "max-new-tokens", required_argument, NULL, 'n' },
		{ "logits", required_argument, NULL, 'l' },         { "hidden-states", required_argument, NULL, 'H' },
		{ "path", required_argument, NULL, 'p' },           { "backend", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },        { "weights", required_argument, NULL, 'w' },
		{ "dense", required_argument, NULL, 'd' },          { "act", required_argument, NULL, 'a' },
		{ "window-convention", required_argument, NULL, 'W' }, { "profile", required_argument, NULL, 'P' },
		{ "max-layers", required_argument, NULL, 'L' },     { "json", required_argument, NULL, 'j' },
		{ "out", required_argument, NULL, 'o' },            { "preset", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },           { "list-presets", no_argument, NULL, 'Q' },
		{ "prompt-lengths", required_argument, NULL, 'R' }, { "contexts", required_argument, NULL, 'C' },
		{ "reps", required_argument, NULL, 'r' },           { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct opts){ .sub = argv[0], .max_new = 0, .threads = 1, .seed = 1, .reps = 5, .path = MOE_FWD_OPT,
			    .weights = MOE_MODEL_WEIGHTS_AS_STORED, .dense = MOE_DTYPE_BF16, .act = MOE_ACT_NONE,
			    .window = MOE_WINDOW_HF, .profile = MOE_PROFILE_VLLM };
	int c;
	optind = 1;
	opterr = 0;
	char msg[512];
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'i': o->prompt_ids = optarg; break;
		case 'F': o->prompt_file = optarg; break;
		case 'l': o->logits = optarg; break;
		case 'H': o->hidden = optarg; break;
		case 'j': o->json = optarg; break;
		case 'o': o->out = optarg; break;
		case 's': o->preset = optarg; break;
		case 'b': o->backend = optarg; break;
		case 'R': o->prompt_lengths = optarg; break;
		case 'C': o->contexts = optarg; break;
		case 'Q': o->list_presets = true; break;
		case 'n':
			if (!parse_i64(optarg, 0, 1 << 20, &o->max_new)) {
				snprintf(msg, sizeof msg, "bad --max-new-tokens '%s' (0..1048576)", optarg);
				return fail2(o->sub, msg);
			}
			o->max_new_set = true;
			break;
		case 't':
			if (!parse_i64(optarg, 1, 1024, &o->threads)) {
				snprintf(msg, sizeof msg, "bad --threads '%s' (1..1024)", optarg);
				return fail2(o->sub, msg);
			}
			o->threads_set = true;
			break;
		case 'S':
			if (!parse_i64(optarg, 0, INT64_MAX, &o->seed)) {
				snprintf(msg, sizeof msg, "bad --seed '%s' (a non-negative integer)", optarg);
				return fail2(o->sub, msg);
			}
			break;
		case 'L':
			if (!parse_i64(optarg, 1, MOE_MODEL_MAX_LAYERS, &o->max_layers)) {
				snprintf(msg, sizeof msg, "bad --max-layers '%s' (1..%d)", optarg, MOE_MODEL_MAX_LAYERS);
				return fail2(o->sub, msg);
			}
			break;
		case 'r':
			if (!parse_i64(optarg, 1, 1000, &o->reps)) {
				snprintf(msg, sizeof msg, "bad --reps '%s' (1..1000)", optarg);
				return fail2(o->sub, msg);
			}
			break;
		case 'p':
			if (!strcmp(optarg, "ref"))
				o->path = MOE_FWD_REF;
			else if (!strcmp(optarg, "opt"))
				o->path = MOE_FWD_OPT;
			else {
				snprintf(msg, sizeof msg, "bad --path '%s' (ref or opt)", optarg);
				return fail2(o->sub, msg);
			}
			break;
		case 'w':
			if (moe_model_weights_parse(optarg, &o->weights) != MOE_OK) {
				snprintf(msg, sizeof msg, "bad --weights '%s': %s", optarg, moe_last_error());
				return fail2(o->sub, msg);
			}
			break;
		case 'd':
			if (!strcmp(optarg, "f32"))
				o->dense = MOE_DTYPE_F32;
			else if (!strcmp(optarg, "bf16"))
				o->dense = MOE_DTYPE_BF16;
			else {
				snprintf(msg, sizeof msg, "bad --dense '%s' (f32 or bf16)", optarg);
				return fail2(o->sub, msg);
			}
			break;
		case 'a':
			if (moe_act_quant_parse(optarg, &o->act) != MOE_OK) {
				snprintf(msg, sizeof msg, "bad --act '%s': %s", optarg, moe_last_error());
				return fail2(o->sub, msg);
			}
			break;
		case 'W':
			if (!strcmp(optarg, "hf"))
				o->window = MOE_WINDOW_HF;
			else if (!strcmp(optarg, "plus1"))
				o->window = MOE_WINDOW_PLUS1;
			else {
				snprintf(msg, sizeof msg, "bad --window-convention '%s' (hf or plus1)", optarg);
				return fail2(o->sub, msg);
			}
			break;
		case 'P':
			if (moe_profile_parse(optarg, &o->profile) != MOE_OK) {
				snprintf(msg, sizeof msg, "bad --profile '%s' (vllm, flashinfer or hf)", optarg);
				return fail2(o->sub, msg);
			}
			break;
		case 'h': usage(stdout); return -1;
		default:
			snprintf(msg, sizeof msg, "unknown option or missing value '%s' (see --help)", argv[optind - 1]);
			return fail2(o->sub, msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[optind]);
		return fail2(o->sub, msg);
	}
	return 0;
}

/* ---- shared setup: model, backend, threads, prompt ---- */

struct env {
	struct moe_model *m;
	struct moe_plugin *plugin;
	const struct moe_backend *backend;
	struct moe_pool *pool;
	const struct moe_threads *th;
	int32_t *prompt;
	int64_t P;
};

static void env_free(struct env *e)
{
	if (e->m)
		moe_model_free(e->m);
	if (e->plugin)
		moe_plugin_close(e->plugin);
	if (e->pool)
		moe_pool_destroy(e->pool);
	free(e->prompt);
	*e = (struct env){ 0 };
}

static int make_pool(const char *sub, int64_t n, struct env *e)
{
	if (e->pool)
		moe_pool_destroy(e->pool);
	e->pool = NULL;
	e->th = moe_threads_serial();
	if (n <= 1)
		return 0;
	if (moe_pool_create((int)n, NULL, &e->pool) != MOE_OK) {
		fprintf(stderr, "moebench model %s: %s\n", sub, moe_last_error());
		return 1;
	}
	e->th = moe_pool_threads(e->pool);
	return 0;
}

static int env_init(const struct opts *o, bool want_prompt, struct env *e)
{
	*e = (struct env){ 0 };
	char msg[1024];
	if (!o->model)
		return fail2(o->sub, "--model DIR is required");
	if (want_prompt) {
		if (!!o->prompt_ids == !!o->prompt_file)
			return fail2(o->sub, "give exactly one of --prompt-ids and --prompt-file");
		int rc;
		if (o->prompt_ids) {
			rc = parse_ids(o->sub, o->prompt_ids, "--prompt-ids", &e->prompt, &e->P);
		} else {
			char *t = read_text(o->prompt_file);
			if (!t) {
				snprintf(msg, sizeof msg, "cannot read --prompt-file '%s': %s", o->prompt_file, strerror(errno));
				return fail2(o->sub, msg);
			}
			rc = parse_ids(o->sub, t, o->prompt_file, &e->prompt, &e->P);
			free(t);
		}
		if (rc)
			return rc;
	}
	if (o->backend) {
		if (o->path == MOE_FWD_REF)
			return fail2(o->sub, "--backend applies to the opt path, not --path ref");
		const struct moe_builtin *b = moe_builtin_find(o->backend);
		if (b) {
			e->backend = b->table;
		} else if (strchr(o->backend, '/') || strstr(o->backend, ".so")) {
			if (moe_plugin_open(o->backend, &e->plugin) != MOE_OK) {
				snprintf(msg, sizeof msg, "--backend %s: %s", o->backend, moe_last_error());
				env_free(e);
				return fail2(o->sub, msg);
			}
			e->backend = moe_plugin_backend(e->plugin);
		} else {
			snprintf(msg, sizeof msg, "--backend '%s': no such built-in backend (see moebench info) and not a "
				 "plugin path", o->backend);
			env_free(e);
			return fail2(o->sub, msg);
		}
	}
	struct moe_model_load_options lo = { o->weights, o->dense, o->act, (int32_t)o->max_layers };
	fprintf(stderr, "loading %s ...\n", o->model);
	const double t0 = now();
	if (moe_model_load(o->model, &lo, &e->m) != MOE_OK) {
		snprintf(msg, sizeof msg, "%s", moe_last_error());
		env_free(e);
		return fail2(o->sub, msg);
	}
	fprintf(stderr, "loaded in %.2f s: %d layers, H=%lld, V=%lld, E=%d, K=%d, experts %s\n", now() - t0,
		(int)e->m->cfg.num_hidden_layers, (long long)e->m->cfg.hidden_size, (long long)e->m->cfg.vocab_size,
		(int)e->m->cfg.num_experts, (int)e->m->cfg.num_experts_per_tok, moe_dtype_name(e->m->expert_params.weight_dtype));
	for (int64_t i = 0; i < e->P; i++)
		if (e->prompt[i] >= e->m->cfg.vocab_size) {
			snprintf(msg, sizeof msg, "prompt token %lld is %d, outside the vocabulary [0, %lld)", (long long)i,
				 (int)e->prompt[i], (long long)e->m->cfg.vocab_size);
			env_free(e);
			return fail2(o->sub, msg);
		}
	if (make_pool(o->sub, o->threads, e)) {
		env_free(e);
		return 1;
	}
	return 0;
}

static struct moe_fwd_options fwd_opts(const struct opts *o, const struct env *e, enum moe_fwd_path path, int64_t ctx)
{
	return (struct moe_fwd_options){ .path = path, .backend = e->backend, .profile = o->profile,
					 .window = o->window, .context = ctx };
}

static void progress(void *ctx, int64_t done, int64_t total)
{
	const char *what = ctx;
	if (total >= 64 && (done % 16 == 0 || done == total))
		fprintf(stderr, "\r%s: %lld/%lld positions", what, (long long)done, (long long)total);
	if (total >= 64 && done == total)
		fputc('\n', stderr);
}

/* ---- init ---- */

static int cmd_init(const struct opts *o)
{
	if (o->list_presets) {
		for (int32_t i = 0; i < moe_model_preset_count(); i++) {
			const struct moe_model_preset *p = moe_model_preset_at(i);
			printf("%-24s %s\n", p->name, p->description);
		}
		return 0;
	}
	if (!o->out || !o->preset)
		return fail2("init", "--out DIR and --preset NAME are required (--list-presets lists them)");
	const double t0 = now();
	if (moe_model_init(o->out, o->preset, (uint64_t)o->seed) != MOE_OK)
		return fail2("init", moe_last_error());
	printf("wrote preset %s (seed %lld) to %s in %.2f s\n", o->preset, (long long)o->seed, o->out, now() - t0);
	return 0;
}

/* ---- run ---- */

static int write_outputs(const struct opts *o, const struct moe_model *m, int64_t TT, const int32_t *ids,
			 const float *logits, const float *hidden)
{
	const int64_t V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers;
	if (o->logits) {
		const struct moe_fwd_st_out t[2] = { { "logits", MOE_FWD_ST_F32, 2, { TT, V }, logits }, { "ids", MOE_FWD_ST_I32, 1, { TT, 0 }, ids } };
		if (moe_fwd_st_write(o->logits, t, 2) != MOE_OK)
			return fail2(o->sub, moe_last_error());
	}
	if (o->hidden) {
		struct moe_fwd_st_out *t = calloc((size_t)L + 1, sizeof *t);
		char (*names)[32] = calloc((size_t)L, 32);
		if (!t || !names) {
			free(t);
			free(names);
			return fail2(o->sub, "no memory");
		}
		for (int64_t l = 0; l < L; l++) {
			snprintf(names[l], 32, "hidden.%lld", (long long)l);
			t[l] = (struct moe_fwd_st_out){ names[l], MOE_FWD_ST_F32, 2, { TT, H }, hidden + l * TT * H };
		}
		t[L] = (struct moe_fwd_st_out){ "ids", MOE_FWD_ST_I32, 1, { TT, 0 }, ids };
		const enum moe_status s = moe_fwd_st_write(o->hidden, t, (int32_t)L + 1);
		free(t);
		free(names);
		if (s != MOE_OK)
			return fail2(o->sub, moe_last_error());
	}
	return 0;
}

static int cmd_run(const struct opts *o)
{
	if (!o->max_new_set)
		return fail2("run", "--max-new-tokens N is required");
	struct env e;
	int rc = env_init(o, true, &e);
	if (rc)
		return rc;
	const struct moe_model *m = e.m;
	const int64_t TT = e.P + o->max_new, V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers;
	int32_t *ids = malloc((size_t)TT * sizeof(int32_t));
	float *logits = malloc((size_t)(TT * V) * sizeof(float));
	float *hidden = o->hidden ? malloc((size_t)(L * TT * H) * sizeof(float)) : NULL;
	struct moe_forward *f = NULL;
	if (!ids || !logits || (o->hidden && !hidden)) {
		rc = fail2("run", "no memory for the outputs");
		goto out;
	}
	struct moe_fwd_options fo = fwd_opts(o, &e, o->path, TT);
	if (moe_forward_create(m, &fo, e.th, &f) != MOE_OK) {
		rc = fail2("run", moe_last_error());
		goto out;
	}
	const double t0 = now();
	if (moe_forward_generate(f, e.prompt, e.P, o->max_new, NULL, ids, logits, hidden, NULL, e.th, progress,
				 (void *)"run") != MOE_OK) {
		rc = fail2("run", moe_last_error());
		goto out;
	}
	const double dt = now() - t0;
	printf("generated:");
	for (int64_t i = e.P; i < TT; i++)
		printf(" %d", (int)ids[i]);
	printf("\n");
	fprintf(stderr, "%s path, %lld threads: %lld prompt + %lld generated tokens in %.3f s\n",
		o->path == MOE_FWD_REF ? "ref" : "opt", (long long)e.th->count, (long long)e.P, (long long)o->max_new, dt);
	rc = write_outputs(o, m, TT, ids, logits, hidden);
out:
	moe_forward_free(f);
	free(ids);
	free(logits);
	free(hidden);
	env_free(&e);
	return rc;
}

/* ---- verify ---- */

static int cmd_verify(const struct opts *o)
{
	struct env e;
	int rc = env_init(o, true, &e);
	if (rc)
		return rc;
	const struct moe_model *m = e.m;
	const int64_t N = o->max_new_set ? o->max_new : 8;
	const int64_t TT = e.P + N, V = m->cfg.vocab_size, H = m->cfg.hidden_size, L = m->cfg.num_hidden_layers;
	int32_t *ids_r = malloc((size_t)TT * 4), *ids_o = malloc((size_t)TT * 4), *am_r = malloc((size_t)TT * 4);
	int32_t *am_o = malloc((size_t)TT * 4);
	float *lg_r = malloc((size_t)(TT * V) * 4), *lg_o = malloc((size_t)(TT * V) * 4);
	float *hd_r = malloc((size_t)(L * TT * H) * 4), *hd_o = malloc((size_t)(L * TT * H) * 4);
	struct moe_forward *fr = NULL, *fo = NULL;
	if (!ids_r || !ids_o || !am_r || !am_o || !lg_r || !lg_o || !hd_r || !hd_o) {
		rc = fail2("verify", "no memory for two runs' logits and hidden states");
		goto out;
	}
	struct moe_fwd_options a = fwd_opts(o, &e, MOE_FWD_REF, TT), b = fwd_opts(o, &e, MOE_FWD_OPT, TT);
	if (moe_forward_create(m, &a, e.th, &fr) != MOE_OK || moe_forward_create(m, &b, e.th, &fo) != MOE_OK) {
		rc = fail2("verify", moe_last_error());
		goto out;
	}
	if (moe_forward_generate(fr, e.prompt, e.P, N, NULL, ids_r, lg_r, hd_r, am_r, e.th, progress, (void *)"reference") != MOE_OK ||
	    moe_forward_generate(fo, e.prompt, e.P, N, ids_r + e.P, ids_o, lg_o, hd_o, am_o, e.th, progress,
				 (void *)"optimized") != MOE_OK) {
		rc = fail2("verify", moe_last_error());
		goto out;
	}
	printf("verify %s: %lld prompt + %lld generated tokens, %lld threads, backend %s\n", o->model, (long long)e.P,
	       (long long)N, (long long)e.th->count, e.backend ? e.backend->name : moe_backend_dispatched()->name);
	const double tau = moe_forward_tau(m);
	printf("criterion: |x_opt - x_ref| <= tau * rms(x_ref row) per element, tau = 2^%d (expert activations %s; "
	       "see --help)\n", (int)lrint(log2(tau)), moe_act_quant_name(m->expert_params.act_quant));
	printf("%-6s %14s %14s %10s %8s  %s\n", "layer", "max|diff|", "bound there", "of bound", "at pos", "");
	bool ok = true;
	for (int64_t l = 0; l < L; l++) {
		struct moe_fwd_layer_diff d;
		moe_forward_layer_diff(hd_r + l * TT * H, hd_o + l * TT * H, TT, H, tau, &d);
		const bool pass = d.worst <= 1.0;
		ok = ok && pass;
		printf("%-6lld %14.6e %14.6e %10.3e %8lld  %s\n", (long long)l, d.max_abs, d.bound_there, d.worst,
		       (long long)d.worst_t, pass ? "ok" : "FAIL");
	}
	int64_t checked = 0, skipped = 0, bad = 0;
	double max_dl = 0.0, max_b = 0.0;
	for (int64_t t = e.P - 1; t < TT; t++) {
		const float *lr = lg_r + t * V;
		const int32_t top = am_r[t];
		float second = -INFINITY;
		for (int64_t v = 0; v < V; v++)
			if (v != top && lr[v] > second)
				second = lr[v];
		for (int64_t v = 0; v < V; v++) {
			const double dl = fabs((double)lg_o[t * V + v] - lr[v]);
			max_dl = dl > max_dl ? dl : max_dl;
		}
		const double B = moe_forward_logit_bound(m, hd_r + ((L - 1) * TT + t) * H);
		max_b = B > max_b ? B : max_b;
		if ((double)lr[top] - (double)second > 2.0 * B) {
			checked++;
			if (am_o[t] != top) {
				bad++;
				printf("position %lld: reference picks %d, optimized %d (margin %.4g > 2 x bound %.4g)\n",
				       (long long)t, (int)top, (int)am_o[t], (double)lr[top] - second, B);
			}
		} else {
			skipped++;
		}
	}
	printf("logits: max |diff| %.4e, largest implied bound %.4e\n", max_dl, max_b);
	printf("greedy tokens: %lld positions checked, %lld disagree, %lld skipped (margin within the bound)\n",
	       (long long)checked, (long long)bad, (long long)skipped);
	printf("generated (reference):");
	for (int64_t i = e.P; i < TT; i++)
		printf(" %d", (int)ids_r[i]);
	printf("\n");
	ok = ok && bad == 0;
	printf("%s\n", ok ? "PASS" : "FAIL");
	rc = ok ? 0 : 1;
out:
	moe_forward_free(fr);
	moe_forward_free(fo);
	free(ids_r);
	free(ids_o);
	free(am_r);
	free(am_o);
	free(lg_r);
	free(lg_o);
	free(hd_r);
	free(hd_o);
	env_free(&e);
	return rc;
}

/* ---- bench ---- */

static int parse_list(const char *sub, const char *flag, const char *text, int64_t *v, int max)
{
	int n = 0;
	const char *p = text;
	while (*p) {
		char *end;
		errno = 0;
		long long x = strtoll(p, &end, 10);
		if (errno || end == p || x < 1 || x > (1 << 20) || (*end && *end != ',') || n == max) {
			char msg[256];
			snprintf(msg, sizeof msg, "bad %s '%s' (up to %d positive integers separated by commas)", flag, text, max);
			return -fail2(sub, msg);
		}
		v[n++] = x;
		p = *end ? end + 1 : end;
	}
	if (!n) {
		char msg[256];
		snprintf(msg, sizeof msg, "bad %s '%s': empty", flag, text);
		return -fail2(sub, msg);
	}
	return n;
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static json_t *bm(const char *name, int64_t iters, double sec_per_iter, double items_per_s, double bytes_per_s)
{
	json_t *j = json_object();
	json_object_set_new(j, "name", json_string(name));
	json_object_set_new(j, "run_name", json_string(name));
	json_object_set_new(j, "run_type", json_string("iteration"));
	json_object_set_new(j, "repetitions", json_integer(1));
	json_object_set_new(j, "iterations", json_integer(iters));
	json_object_set_new(j, "real_time", json_real(sec_per_iter * 1e9));
	json_object_set_new(j, "cpu_time", json_real(sec_per_iter * 1e9));
	json_object_set_new(j, "time_unit", json_string("ns"));
	json_object_set_new(j, "items_per_second", json_real(items_per_s));
	if (bytes_per_s > 0)
		json_object_set_new(j, "bytes_per_second", json_real(bytes_per_s));
	return j;
}

static enum moe_status dump_json(FILE *f, void *ctx)
{
	return json_dumpf(ctx, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF ? MOE_OK
										  : moe_fail(MOE_ERR_IO, "model bench: writing JSON failed");
}

static int cmd_bench(const struct opts *o)
{
	struct env e;
	int rc = env_init(o, false, &e);
	if (rc)
		return rc;
	const struct moe_model *m = e.m;
	const struct moe_model_config *c = &m->cfg;
	int64_t plen[8] = { 128, 512, 2048 }, ctxs[16] = { 128, 256, 512, 1024, 2048, 4096 };
	int np = 3, nc = 6;
	if (o->prompt_lengths && (np = parse_list("bench", "--prompt-lengths", o->prompt_lengths, plen, 8)) < 0) {
		env_free(&e);
		return -np;
	}
	if (o->contexts && (nc = parse_list("bench", "--contexts", o->contexts, ctxs, 16)) < 0) {
		env_free(&e);
		return -nc;
	}
	const int64_t maxpos = c->max_position_embeddings > 0 ? c->max_position_embeddings : 4096;
	int64_t maxctx = 1;
	for (int i = 0; i < np; i++)
		plen[i] = plen[i] < maxpos ? plen[i] : maxpos, maxctx = plen[i] > maxctx ? plen[i] : maxctx;
	for (int i = 0; i < nc; i++)
		ctxs[i] = ctxs[i] < maxpos ? ctxs[i] : maxpos, maxctx = ctxs[i] + 1 > maxctx ? ctxs[i] + 1 : maxctx;
	/* thread counts: 1, 2, 4, ... up to N, and N itself */
	const int64_t tmax = o->threads_set ? o->threads : moe_cpus_available();
	int64_t tl[16];
	int nt = 0;
	for (int64_t t = 1; t < tmax && nt < 15; t *= 2)
		tl[nt++] = t;
	tl[nt++] = tmax;

	struct moe_bench_topo topo;
	moe_bench_topo_get(&topo);
	char fp[256], cpath[4096];
	moe_bench_fingerprint(&topo, fp, sizeof fp);
	struct moe_calibration cal;
	const bool have_cal = moe_bench_calibration_path(cpath, sizeof cpath) == MOE_OK &&
			      moe_bench_calibration_load(cpath, fp, &cal) == MOE_OK;
	json_t *benchmarks = json_array();
	const int64_t V = c->vocab_size;
	float *logits = malloc((size_t)V * sizeof(float));
	int32_t *ids = malloc((size_t)maxctx * sizeof(int32_t));
	for (int64_t i = 0; i < maxctx; i++)
		ids[i] = (int32_t)((i * 7919 + 13) % V);
	const char *pname = o->path == MOE_FWD_REF ? "ref" : "opt";
	printf("model bench: %s, %s path, backend %s, experts %s, act %s\n", o->model, pname,
	       o->path == MOE_FWD_REF ? "ref" : e.backend ? e.backend->name : moe_backend_dispatched()->name,
	       moe_dtype_name(m->expert_params.weight_dtype), moe_act_quant_name(m->expert_params.act_quant));
	printf("%-8s %-7s %8s %8s %12s %12s %10s %8s\n", "phase", "threads", "tokens", "context", "ms", "tokens/s",
	       "GB/s", "of DRAM");
	char name[160];
	for (int ti = 0; ti < nt && rc == 0; ti++) {
		if (make_pool("bench", tl[ti], &e)) {
			rc = 1;
			break;
		}
		struct moe_fwd_options fo = fwd_opts(o, &e, o->path, maxctx);
		fo.logits_last = true;
		struct moe_forward *f;
		if (moe_forward_create(m, &fo, e.th, &f) != MOE_OK) {
			rc = fail2("bench", moe_last_error());
			break;
		}
		for (int i = 0; i < np; i++) {
			double s[16];
			int reps = o->reps < 3 ? (int)o->reps : 3;
			for (int r = 0; r < reps; r++) {
				moe_forward_reset(f);
				const double t0 = now();
				if (moe_forward_run(f, ids, plen[i], logits, NULL, e.th) != MOE_OK) {
					rc = fail2("bench", moe_last_error());
					break;
				}
				s[r] = now() - t0;
				if (s[r] > 20.0) { /* long enough: one sample */
					reps = r + 1;
					break;
				}
			}
			if (rc)
				break;
			const double med = median(s, reps);
			printf("%-8s %-7lld %8lld %8s %12.3f %12.2f %10s %8s\n", "prefill", (long long)tl[ti], (long long)plen[i],
			       "-", med * 1e3, (double)plen[i] / med, "-", "-");
			fflush(stdout);
			snprintf(name, sizeof name, "model/prefill/%s/tokens:%lld/threads:%lld", pname, (long long)plen[i],
				 (long long)tl[ti]);
			json_array_append_new(benchmarks, bm(name, reps, med, (double)plen[i] / med, 0));
		}
		for (int i = 0; i < nc && rc == 0; i++) {
			double s[1000];
			const int reps = (int)o->reps;
			for (int r = 0; r < reps; r++) {
				moe_forward_seek(f, ctxs[i] - 1);
				const double t0 = now();
				if (moe_forward_run(f, ids + (r % maxctx), 1, logits, NULL, e.th) != MOE_OK) {
					rc = fail2("bench", moe_last_error());
					break;
				}
				s[r] = now() - t0;
			}
			if (rc)
				break;
			const double med = median(s, reps), bytes = moe_forward_decode_bytes(f, ctxs[i] - 1);
			const struct moe_roofline *rf = have_cal ? moe_bench_roofline_for(&cal, (int)tl[ti]) : NULL;
			char frac[16] = "n/a";
			if (rf && rf->bw_gbs[MOE_LEVEL_DRAM] > 0)
				snprintf(frac, sizeof frac, "%.0f%%", 100.0 * bytes / med / 1e9 / rf->bw_gbs[MOE_LEVEL_DRAM]);
			printf("%-8s %-7lld %8d %8lld %12.3f %12.2f %10.2f %8s\n", "decode", (long long)tl[ti], 1,
			       (long long)ctxs[i], med * 1e3, 1.0 / med, bytes / med / 1e9, frac);
			fflush(stdout);
			snprintf(name, sizeof name, "model/decode/%s/context:%lld/threads:%lld", pname, (long long)ctxs[i],
				 (long long)tl[ti]);
			json_array_append_new(benchmarks, bm(name, reps, med, 1.0 / med, bytes / med));
		}
		moe_forward_free(f);
		/* per-phase times of a decode step at the first context, the MoE block split into its ops */
		if (rc == 0) {
			fo.timing = true;
			fo.split_moe = true;
			if (moe_forward_create(m, &fo, e.th, &f) != MOE_OK) {
				rc = fail2("bench", moe_last_error());
				break;
			}
			/* one untimed token first; then, as the decode rows above, another token each time (the
			 * same token again would route to the same experts, partly still in a large L3) */
			for (int r = -1; r < (int)o->reps; r++) {
				if (r == 0)
					moe_forward_phase_clear(f);
				moe_forward_seek(f, ctxs[0] - 1);
				moe_forward_run(f, ids + ((r + 1) % maxctx), 1, logits, NULL, e.th);
			}
			const double *ph = moe_forward_phase_seconds(f);
			double tot = 0.0;
			for (int p = 0; p < MOE_PH_COUNT; p++)
				tot += ph[p];
			printf("decode phases, %lld threads, context %lld (ms per token, share):", (long long)tl[ti], (long long)ctxs[0]);
			for (int p = 0; p < MOE_PH_COUNT; p++)
				if (ph[p] > 0)
					printf(" %s %.3f (%.0f%%)", moe_fwd_phase_name(p), ph[p] / (double)o->reps * 1e3, 100.0 * ph[p] / tot);
			printf("\n");
			for (int p = 0; p < MOE_PH_COUNT; p++) {
				if (ph[p] <= 0)
					continue;
				snprintf(name, sizeof name, "model/decode_phase/%s/%s/context:%lld/threads:%lld", pname,
					 moe_fwd_phase_name(p), (long long)ctxs[0], (long long)tl[ti]);
				json_array_append_new(benchmarks, bm(name, o->reps, ph[p] / (double)o->reps, 0, 0));
			}
			moe_forward_free(f);
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("peak memory (max RSS): %.1f MiB%s\n", (double)ru.ru_maxrss / 1024.0,
	       have_cal ? "" : "; no calibration for this machine: run `moebench calibrate` for the DRAM roofline");
	if (rc == 0 && o->json) {
		json_t *root = json_object();
		json_t *ctx = moe_bench_context(&topo, have_cal ? &cal : NULL, e.pool ? moe_pool_binding(e.pool) : "0:unpinned", NULL, (int)tmax);
		if (ctx) {
			json_object_set_new(ctx, "model", json_string(o->model));
			json_object_set_new(ctx, "model_path", json_string(pname));
			json_object_set_new(ctx, "peak_rss_kib", json_integer(ru.ru_maxrss));
			json_object_set_new(root, "context", ctx);
		}
		json_object_set(root, "benchmarks", benchmarks);
		if (moe_bench_write_atomic(o->json, dump_json, root) != MOE_OK)
			rc = fail2("bench", moe_last_error());
		json_decref(root);
	}
	json_decref(benchmarks);
	free(logits);
	free(ids);
	env_free(&e);
	return rc;
}

int moe_cmd_model(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	struct opts o;
	int rc = parse(argc - 1, argv + 1, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!strcmp(sub, "init"))
		return cmd_init(&o);
	if (!strcmp(sub, "run"))
		return cmd_run(&o);
	if (!strcmp(sub, "verify"))
		return cmd_verify(&o);
	if (!strcmp(sub, "bench"))
		return cmd_bench(&o);
	fprintf(stderr, "moebench model: unknown subcommand '%s' (init, run, verify, bench; see --help)\n", sub);
	return 2;
}
