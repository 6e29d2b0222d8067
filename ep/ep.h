/* Expert parallelism over MPI (`moebench ep`): the library part.
 *
 * The experts of one MoE layer are sharded over R ranks by a placement (contiguous, round-robin or
 * a file). Every rank builds the same seeded problem (ep_problem.c), routes its own contiguous share
 * of the T tokens, sends each token-slot's activation row to the rank that holds its expert
 * (MPI_Alltoall of counts, MPI_Alltoallv of rows), runs its local experts on their gathered rows,
 * sends the outputs back and combines them per token in the fixed slot order of moe_layer__ref.
 * Because each expert receives exactly the rows, in exactly the order (global slot order), that the
 * single-process layer gives it, and the combine performs the same fp32 operations in the same
 * order, the output is bitwise equal to the single-process layer for any R and any placement.
 *
 * Files: ep_placement.c (placements and the file format), ep_problem.c (configuration, seeded
 * problem, configuration text and hash), ep_oracle.c (the single-process result the run is checked
 * against), ep_cost.c (the communication cost model), ep_agree.c and ep_run.c (MPI only: the
 * cross-rank configuration check, and the exchange itself). */
#ifndef MOE_EP_H
#define MOE_EP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "moe/moe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- placement: which rank holds each expert ---- */

enum moe_ep_placement_kind { MOE_EP_CONTIGUOUS = 0, MOE_EP_ROUND_ROBIN = 1, MOE_EP_FILE = 2 };

struct moe_ep_placement {
	int32_t experts, ranks;
	int32_t *rank_of;  /* [E] */
	int32_t *slot_of;  /* [E]: the expert's index among its rank's experts */
	int32_t *count;    /* [R]: experts per rank */
	int32_t *first;    /* [R+1]: prefix sums of count */
	int32_t *experts_of; /* [E]: rank r's experts at first[r] .. first[r+1]-1, increasing */
	int32_t max_local;   /* max over ranks of count */
};

/* Contiguous: rank r holds experts [E*r/R, E*(r+1)/R). Round-robin: expert e on rank e % R. */
enum moe_status moe_ep_placement_make(enum moe_ep_placement_kind kind, int32_t E, int32_t R,
				      struct moe_ep_placement *out);
/* A text file, one line per expert: "EXPERT RANK" (decimal integers); blank lines and lines whose
 * first non-blank character is '#' are ignored. Every expert 0..E-1 exactly once, 0 <= RANK < R.
 * Errors name the file and the line (MOE_ERR_FORMAT, MOE_ERR_IO). */
enum moe_status moe_ep_placement_load(const char *path, int32_t E, int32_t R, struct moe_ep_placement *out);
void moe_ep_placement_free(struct moe_ep_placement *pl);
const char *moe_ep_placement_kind_name(enum moe_ep_placement_kind k); /* "contiguous", "round-robin", "file" */

/* ---- configuration and the seeded problem ---- */

enum moe_ep_fault { MOE_EP_FAULT_NONE = 0, MOE_EP_FAULT_DIE, MOE_EP_FAULT_HANG, MOE_EP_FAULT_COMBINE_ORDER };

struct moe_ep_config {
	const char *model;       /* a name in moe/models.h */
	int64_t tokens;          /* T */
	int64_t hidden, inter;   /* 0: the model's */
	int32_t experts;         /* 0: the model's */
	bool no_shared;          /* drop the model's shared expert */
	uint64_t seed;
	const char *backend;     /* "ref" (default), "dispatched" or a built-in table name */
	enum moe_ep_placement_kind placement;
	const char *placement_file;
	int chunks;              /* >= 1: local experts in this many groups, dispatch of group c+1 overlaps compute of c */
	int reps;                /* timed repetitions (--bench) */
	bool bench, check;
	double timeout_s;        /* watchdog: every rank ends after this long (0: none) */
	enum moe_ep_fault fault;
	int fault_rank;          /* -1: every rank */
};

struct moe_ep_problem {
	struct moe_layer_params p;
	const struct moe_backend *b;
	const char *backend_name;
	float *x;                         /* [T][H] */
	void *logits;                     /* [T][E] of p.route.logits_dtype */
	void *bias;                       /* [E] or NULL */
	struct moe_expert_weights *experts; /* [E]; only the generated ones hold data */
	bool *have;                       /* [E]: which experts are generated */
	struct moe_expert_weights shared; /* when p.shared != NONE */
};

/* The layer params of the configuration (model shape with overrides), checked: moe_layer_validate
 * plus what expert parallelism needs (a shared expert must be row-independent: its activation scale
 * may not come from all T tokens, which a data-parallel shared expert never sees). */
enum moe_status moe_ep_layer_params(const struct moe_ep_config *c, struct moe_layer_params *out);
/* The seeded inputs and the weights of the experts marked in want[E] (NULL: all) and the shared
 * expert. Expert e's weights depend only on (seed, e), so every rank builds the same ones. */
enum moe_status moe_ep_problem_make(const struct moe_ep_config *c, const bool *want, struct moe_ep_problem *out);
void moe_ep_problem_free(struct moe_ep_problem *pr);
/* A canonical "key=value key=value ..." text of everything that must agree across ranks (the
 * placement file by the hash of its content), and its FNV-1a 64-bit hash. */
void moe_ep_config_text(const struct moe_ep_config *c, const struct moe_ep_placement *pl, char *buf, size_t n);
uint64_t moe_ep_hash(const void *data, size_t n, uint64_t h);
#define MOE_EP_HASH_INIT 0xcbf29ce484222325ull

/* The single-process result the run must equal: moe_layer__ref for the reference backend, else the
 * same backend's route and expert ops over the moe_dispatch__ref grouping with the fixed combine.
 * y[T][H]. */
enum moe_status moe_ep_oracle(const struct moe_ep_problem *pr, float *y);

/* The fixed combine of one token (moe_layer__ref step 5): r = sum over k in slot order of
 * weights[k] * rows[k][h], then rsf at OUTPUT, then the shared combine with y_shared (may be NULL
 * when shared is NONE). reversed: the test mutant that sums k downwards. */
void moe_ep_combine_token(const struct moe_layer_params *p, const float *weights, const float *const *rows,
			  const float *y_shared, float *y, bool reversed);

/* ---- cost model ---- */

struct moe_ep_cost_params {
	double link_gbps;     /* per-rank link bandwidth, Gb/s, each direction */
	double latency_us;    /* per message */
	double dispatch_elem; /* bytes per activation element sent to the experts */
	double combine_elem;  /* bytes per element sent back */
	double gflops;        /* per-rank expert throughput */
	double imbalance;     /* max/mean slots per rank (1 = perfect) */
};
struct moe_ep_cost {
	double dispatch_bytes, combine_bytes; /* per rank per layer, leaving the rank */
	double dispatch_s, combine_s, compute_s;
};
/* One layer of shape m with T tokens per rank on R ranks; routing uniform, so (R-1)/R of the slots
 * leave the rank: bytes = T*K*(R-1)/R*H*elem each way; time = (R-1)*latency + bytes/bandwidth. */
struct moe_ep_cost moe_ep_cost_layer(const struct moe_model_shape *m, int64_t T, int32_t R,
				     const struct moe_ep_cost_params *cp);
/* The projection table for the named models (NULL: DeepSeek-V3 and Command A+) on ranks x links. */
void moe_ep_cost_table(FILE *f, const char *model, int64_t T, const struct moe_ep_cost_params *cp);

/* ---- MPI (built only with MPI) ---- */

/* Runs the whole subcommand on MPI_COMM_WORLD (MPI initialized by the caller); returns the exit
 * status this rank should end with (0, 1 mismatch, 2 configuration, 3 runtime failure). */
int moe_ep_main(const struct moe_ep_config *c);

#ifdef __cplusplus
}
#endif
#endif
