/* The expert-parallel layer over MPI_COMM_WORLD, one layer call per repetition.
 *
 * Rank r owns tokens [T*r/R, T*(r+1)/R) and the experts the placement gives it. Per call:
 *   route    the backend's router on the rank's tokens (per-token, so equal to routing all T);
 *   counts   scnt[d][j] = this rank's slots for rank d's j-th expert; MPI_Alltoall (Lmax per rank);
 *   pack     send rows grouped by destination, then by the destination's expert (increasing id),
 *            each group in increasing slot order;
 *   dispatch MPI_Alltoallv of rows (an MPI row type of H floats);
 *   experts  for each local expert, the rows from ranks 0..R-1 concatenated: since rank s's tokens
 *            precede rank s+1's, that is the expert's tokens in global slot order, exactly the
 *            matrix moe_layer__ref gives it; the backend's expert op runs on it (single thread,
 *            weights packed once when the backend packs) and the outputs go back to their places;
 *   return   MPI_Alltoallv of the output rows, the inverse of dispatch;
 *   shared   the shared expert on the rank's own tokens (row-independent, checked at setup);
 *   combine  moe_ep_combine_token per token in slot order.
 * --chunks C splits every rank's experts into C groups: all C dispatches are posted at once
 * (MPI_Ialltoallv), group c computes as soon as its rows arrive and its outputs go back
 * (MPI_Ialltoallv) while the next group computes. An expert is never split, so the numbers do not
 * change. With --check, rank 0 gathers y (MPI_Gatherv) and compares it bit for bit with the
 * single-process oracle (ep_oracle.c). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ep_mpi.h"

enum { PH_ROUTE, PH_COUNTS, PH_PACK, PH_DISPATCH, PH_EXPERTS, PH_RETURN, PH_SHARED, PH_COMBINE, PH_TOTAL, PH_N };
static const char *const phase_names[PH_N] = { "route", "counts (Alltoall)", "pack rows", "dispatch (Alltoallv)",
					       "experts", "return (Alltoallv)", "shared expert", "combine", "total" };

struct ep_rank {
	const struct moe_ep_config *c;
	const struct moe_ep_problem *pr;
	const struct moe_ep_placement *pl;
	int R, me, L, Lmax;
	int64_t t0, Tr;
	MPI_Datatype row;
	struct moe_expert_weights *local_w; /* [L] */
	struct moe_packed *packed;
	int32_t *ids;
	float *wts;
	int *scnt, *rcnt, *soff, *roff, *cursor; /* [R*Lmax] */
	int *sendcounts, *sdispls, *recvcounts, *rdispls; /* [R] */
	int *csc, *csd, *crc, *crd;  /* per-chunk counts and displacements [C*R] */
	int32_t *sendpos;            /* [Tr*K] */
	float *sendbuf, *backbuf;    /* [Tr*K][H] */
	float *recvbuf, *retbuf;     /* [Nrecv][H] */
	float *xg, *og;              /* [Mmax][H] */
	float *ysh, *y;              /* [Tr][H] */
	void *ws;
	const float **rows;          /* [K] */
	int64_t nrecv, mmax;
	double t[PH_N];
};

static double now(void)
{
	return MPI_Wtime();
}

static void *xalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
	if (!p) {
		moe_fail(MOE_ERR_NOMEM, "ep: no memory for %zu bytes", n);
		return NULL;
	}
	return p;
}

static void route_and_count(struct ep_rank *k)
{
	const struct moe_layer_params *p = &k->pr->p;
	const int32_t E = p->route.num_experts, K = p->route.top_k;
	struct moe_route_params route = p->route;
	if (p->rsf_site == MOE_RSF_AT_OUTPUT)
		route.routed_scaling_factor = 1.0f;
	const size_t esz = p->route.logits_dtype == MOE_DTYPE_BF16 ? 2 : 4;
	double t = now();
	moe_ep_phase("route");
	if (k->Tr > 0)
		moe_backend_route(k->pr->b, &route, k->Tr, (const char *)k->pr->logits + (size_t)(k->t0 * E) * esz,
				  k->pr->bias, k->ids, k->wts, moe_threads_serial());
	memset(k->scnt, 0, (size_t)(k->R * k->Lmax) * sizeof(int));
	for (int64_t s = 0; s < k->Tr * K; s++) {
		const int32_t e = k->ids[s];
		k->scnt[k->pl->rank_of[e] * k->Lmax + k->pl->slot_of[e]]++;
	}
	k->t[PH_ROUTE] = now() - t;
	t = now();
	moe_ep_phase("counts exchange (MPI_Alltoall)");
	moe_ep_mpi_ok(MPI_Alltoall(k->scnt, k->Lmax, MPI_INT, k->rcnt, k->Lmax, MPI_INT, MPI_COMM_WORLD),
		      "MPI_Alltoall of the per-expert counts");
	k->t[PH_COUNTS] = now() - t;
}

/* Offsets from the counts: send layout [d][j], receive layout [s][j], the chunks of each. */
static void layout(struct ep_rank *k)
{
	const int R = k->R, Lm = k->Lmax, C = k->c->chunks;
	int acc = 0;
	for (int d = 0; d < R; d++) {
		k->sdispls[d] = acc;
		for (int j = 0; j < k->pl->count[d]; j++) {
			k->soff[d * Lm + j] = acc;
			acc += k->scnt[d * Lm + j];
		}
		k->sendcounts[d] = acc - k->sdispls[d];
	}
	acc = 0;
	for (int s = 0; s < R; s++) {
		k->rdispls[s] = acc;
		for (int j = 0; j < k->L; j++) {
			k->roff[s * Lm + j] = acc;
			acc += k->rcnt[s * Lm + j];
		}
		k->recvcounts[s] = acc - k->rdispls[s];
	}
	k->nrecv = acc;
	for (int c = 0; c < C; c++)
		for (int d = 0; d < R; d++) {
			const int Ld = k->pl->count[d], lo = Ld * c / C, hi = Ld * (c + 1) / C;
			int n = 0;
			for (int j = lo; j < hi; j++)
				n += k->scnt[d * Lm + j];
			k->csc[c * R + d] = n;
			k->csd[c * R + d] = lo < Ld ? k->soff[d * Lm + lo] : 0;
			const int mlo = k->L * c / C, mhi = k->L * (c + 1) / C;
			n = 0;
			for (int j = mlo; j < mhi; j++)
				n += k->rcnt[d * Lm + j];
			k->crc[c * R + d] = n;
			k->crd[c * R + d] = mlo < k->L ? k->roff[d * Lm + mlo] : 0;
		}
}

static void pack_rows(struct ep_rank *k)
{
	const int64_t H = k->pr->p.expert.hidden;
	const int32_t K = k->pr->p.route.top_k;
	double t = now();
	moe_ep_phase("pack");
	memcpy(k->cursor, k->soff, (size_t)(k->R * k->Lmax) * sizeof(int));
	for (int64_t s = 0; s < k->Tr * K; s++) {
		const int32_t e = k->ids[s];
		const int pos = k->cursor[k->pl->rank_of[e] * k->Lmax + k->pl->slot_of[e]]++;
		k->sendpos[s] = pos;
		memcpy(k->sendbuf + (int64_t)pos * H, k->pr->x + (k->t0 + s / K) * H, (size_t)H * sizeof(float));
	}
	k->t[PH_PACK] = now() - t;
}

/* Local expert j: gather its rows (ranks in order), run it, put the outputs where the rows were. */
static void run_expert(struct ep_rank *k, int j)
{
	const int64_t H = k->pr->p.expert.hidden;
	int64_t M = 0;
	for (int s = 0; s < k->R; s++) {
		const int n = k->rcnt[s * k->Lmax + j];
		memcpy(k->xg + M * H, k->recvbuf + (int64_t)k->roff[s * k->Lmax + j] * H, (size_t)(n * H) * sizeof(float));
		M += n;
	}
	if (M == 0)
		return;
	struct moe_expert_params ep = k->pr->p.expert;
	ep.tokens = M;
	moe_backend_expert(k->pr->b, &ep, k->xg, &k->local_w[j], k->packed, j, k->og, k->ws, moe_threads_serial());
	M = 0;
	for (int s = 0; s < k->R; s++) {
		const int n = k->rcnt[s * k->Lmax + j];
		memcpy(k->retbuf + (int64_t)k->roff[s * k->Lmax + j] * H, k->og + M * H, (size_t)(n * H) * sizeof(float));
		M += n;
	}
}

static void exchange_and_compute(struct ep_rank *k)
{
	const int C = k->c->chunks, R = k->R;
	if (C == 1) {
		double t = now();
		moe_ep_phase("dispatch (MPI_Alltoallv)");
		moe_ep_mpi_ok(MPI_Alltoallv(k->sendbuf, k->sendcounts, k->sdispls, k->row, k->recvbuf, k->recvcounts,
					    k->rdispls, k->row, MPI_COMM_WORLD), "MPI_Alltoallv of the token rows");
		k->t[PH_DISPATCH] = now() - t;
		t = now();
		moe_ep_phase("experts");
		for (int j = 0; j < k->L; j++)
			run_expert(k, j);
		k->t[PH_EXPERTS] = now() - t;
		t = now();
		moe_ep_phase("return (MPI_Alltoallv)");
		moe_ep_mpi_ok(MPI_Alltoallv(k->retbuf, k->recvcounts, k->rdispls, k->row, k->backbuf, k->sendcounts,
					    k->sdispls, k->row, MPI_COMM_WORLD), "MPI_Alltoallv of the expert outputs");
		k->t[PH_RETURN] = now() - t;
		return;
	}
	MPI_Request *rq = malloc((size_t)(2 * C) * sizeof *rq);
	if (!rq) {
		fprintf(stderr, "moebench ep: rank %d: no memory for %d requests\n", k->me, 2 * C);
		MPI_Abort(MPI_COMM_WORLD, 3);
	}
	double t = now();
	moe_ep_phase("dispatch (MPI_Ialltoallv)");
	for (int c = 0; c < C; c++)
		moe_ep_mpi_ok(MPI_Ialltoallv(k->sendbuf, k->csc + c * R, k->csd + c * R, k->row, k->recvbuf, k->crc + c * R,
					     k->crd + c * R, k->row, MPI_COMM_WORLD, &rq[c]),
			      "MPI_Ialltoallv of a chunk of token rows");
	k->t[PH_DISPATCH] = now() - t;
	k->t[PH_EXPERTS] = 0;
	for (int c = 0; c < C; c++) {
		t = now();
		moe_ep_phase("dispatch wait (MPI_Wait)");
		moe_ep_mpi_ok(MPI_Wait(&rq[c], MPI_STATUS_IGNORE), "MPI_Wait on a dispatch chunk");
		k->t[PH_DISPATCH] += now() - t;
		t = now();
		moe_ep_phase("experts");
		for (int j = k->L * c / C; j < k->L * (c + 1) / C; j++)
			run_expert(k, j);
		k->t[PH_EXPERTS] += now() - t;
		t = now();
		moe_ep_mpi_ok(MPI_Ialltoallv(k->retbuf, k->crc + c * R, k->crd + c * R, k->row, k->backbuf, k->csc + c * R,
					     k->csd + c * R, k->row, MPI_COMM_WORLD, &rq[C + c]),
			      "MPI_Ialltoallv of a chunk of expert outputs");
		k->t[PH_DISPATCH] += now() - t;
	}
	t = now();
	moe_ep_phase("return wait (MPI_Waitall)");
	moe_ep_mpi_ok(MPI_Waitall(C, rq + C, MPI_STATUSES_IGNORE), "MPI_Waitall on the returned chunks");
	k->t[PH_RETURN] = now() - t;
	free(rq);
}

static void shared_and_combine(struct ep_rank *k)
{
	const struct moe_layer_params *p = &k->pr->p;
	const int64_t H = p->expert.hidden;
	const int32_t K = p->route.top_k;
	double t = now();
	moe_ep_phase("shared expert");
	if (p->shared != MOE_SHARED_NONE && k->Tr > 0) {
		struct moe_expert_params sp = p->expert;
		sp.tokens = k->Tr;
		sp.inter = p->shared_inter;
		moe_backend_expert(k->pr->b, &sp, k->pr->x + k->t0 * H, &k->pr->shared, NULL, 0, k->ysh, k->ws,
				   moe_threads_serial());
	}
	k->t[PH_SHARED] = now() - t;
	t = now();
	moe_ep_phase("combine");
	const bool reversed = k->c->fault == MOE_EP_FAULT_COMBINE_ORDER && (k->c->fault_rank < 0 || k->c->fault_rank == k->me);
	for (int64_t i = 0; i < k->Tr; i++) {
		for (int32_t j = 0; j < K; j++)
			k->rows[j] = k->backbuf + (int64_t)k->sendpos[i * K + j] * H;
		moe_ep_combine_token(p, k->wts + i * K, k->rows, k->ysh + i * H, k->y + i * H, reversed);
	}
	k->t[PH_COMBINE] = now() - t;
}

static void layer_call(struct ep_rank *k)
{
	const double t = now();
	route_and_count(k);
	layout(k);
	pack_rows(k);
	exchange_and_compute(k);
	shared_and_combine(k);
	k->t[PH_TOTAL] = now() - t;
}

/* Buffers sized from the routing (the same on every call: the problem is fixed). */
static enum moe_status setup_buffers(struct ep_rank *k)
{
	const struct moe_layer_params *p = &k->pr->p;
	const int64_t H = p->expert.hidden;
	const int32_t K = p->route.top_k;
	const int R = k->R, Lm = k->Lmax, C = k->c->chunks;
	k->ids = xalloc((size_t)(k->Tr * K) * sizeof(int32_t));
	k->wts = xalloc((size_t)(k->Tr * K) * sizeof(float));
	k->sendpos = xalloc((size_t)(k->Tr * K) * sizeof(int32_t));
	k->sendbuf = xalloc((size_t)(k->Tr * K * H) * sizeof(float));
	k->backbuf = xalloc((size_t)(k->Tr * K * H) * sizeof(float));
	k->ysh = xalloc((size_t)(k->Tr * H) * sizeof(float));
	k->y = xalloc((size_t)(k->Tr * H) * sizeof(float));
	k->rows = xalloc((size_t)K * sizeof(float *));
	int **ints[] = { &k->scnt, &k->rcnt, &k->soff, &k->roff, &k->cursor };
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		*ints[i] = xalloc((size_t)(R * Lm + 1) * sizeof(int));
	int **per_rank[] = { &k->sendcounts, &k->sdispls, &k->recvcounts, &k->rdispls };
	for (size_t i = 0; i < sizeof per_rank / sizeof per_rank[0]; i++)
		*per_rank[i] = xalloc((size_t)R * sizeof(int));
	int **per_chunk[] = { &k->csc, &k->csd, &k->crc, &k->crd };
	for (size_t i = 0; i < sizeof per_chunk / sizeof per_chunk[0]; i++)
		*per_chunk[i] = xalloc((size_t)(C * R) * sizeof(int));
	if (!k->ids || !k->wts || !k->sendpos || !k->sendbuf || !k->backbuf || !k->ysh || !k->y || !k->rows ||
	    !k->scnt || !k->rcnt || !k->soff || !k->roff || !k->cursor || !k->sendcounts || !k->sdispls ||
	    !k->recvcounts || !k->rdispls || !k->csc || !k->csd || !k->crc || !k->crd)
		return MOE_ERR_NOMEM;
	route_and_count(k);
	layout(k);
	k->mmax = 0;
	for (int j = 0; j < k->L; j++) {
		int64_t M = 0;
		for (int s = 0; s < R; s++)
			M += k->rcnt[s * Lm + j];
		k->mmax = M > k->mmax ? M : k->mmax;
	}
	k->recvbuf = xalloc((size_t)(k->nrecv * H) * sizeof(float));
	k->retbuf = xalloc((size_t)(k->nrecv * H) * sizeof(float));
	k->xg = xalloc((size_t)(k->mmax * H) * sizeof(float));
	k->og = xalloc((size_t)(k->mmax * H) * sizeof(float));
	struct moe_expert_params ep = p->expert;
	ep.tokens = k->mmax;
	size_t wsb = moe_backend_workspace(k->pr->b, MOE_OP_EXPERT, &ep, 1);
	if (p->shared != MOE_SHARED_NONE) {
		ep.tokens = k->Tr;
		ep.inter = p->shared_inter;
		const size_t sb = moe_backend_workspace(k->pr->b, MOE_OP_EXPERT, &ep, 1);
		wsb = sb > wsb ? sb : wsb;
	}
	k->ws = xalloc(wsb);
	if (!k->recvbuf || !k->retbuf || !k->xg || !k->og || !k->ws)
		return MOE_ERR_NOMEM;
	return MOE_OK;
}

static void free_rank(struct ep_rank *k)
{
	void *all[] = { k->ids, k->wts, k->sendpos, k->sendbuf, k->backbuf, k->ysh, k->y, k->rows, k->scnt, k->rcnt,
			k->soff, k->roff, k->cursor, k->sendcounts, k->sdispls, k->recvcounts, k->rdispls, k->csc,
			k->csd, k->crc, k->crd, k->recvbuf, k->retbuf, k->xg, k->og, k->ws, k->local_w };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		free(all[i]);
	moe_backend_release(k->pr ? k->pr->b : NULL, k->packed);
}

/* Rank 0 compares the gathered y with the oracle; every rank learns the verdict. */
static int check(struct ep_rank *k)
{
	const struct moe_layer_params *p = &k->pr->p;
	const int64_t T = p->tokens, H = p->expert.hidden;
	int *cnt = NULL, *dsp = NULL;
	float *y = NULL, *want = NULL;
	int verdict = 0; /* 0 equal, 1 mismatch, 3 failure */
	moe_ep_phase("check (MPI_Gatherv)");
	if (k->me == 0) {
		cnt = malloc((size_t)k->R * sizeof *cnt);
		dsp = malloc((size_t)k->R * sizeof *dsp);
		y = xalloc((size_t)(T * H) * sizeof(float));
		want = xalloc((size_t)(T * H) * sizeof(float));
		if (!cnt || !dsp || !y || !want) {
			fprintf(stderr, "moebench ep: rank 0: no memory for the check (T=%lld H=%lld)\n", (long long)T, (long long)H);
			MPI_Abort(MPI_COMM_WORLD, 3);
		}
		for (int r = 0; r < k->R; r++) {
			dsp[r] = (int)(T * r / k->R);
			cnt[r] = (int)(T * (r + 1) / k->R) - dsp[r];
		}
	}
	MPI_Datatype row = k->row;
	moe_ep_mpi_ok(MPI_Gatherv(k->y, (int)k->Tr, row, y, cnt, dsp, row, 0, MPI_COMM_WORLD), "MPI_Gatherv of y");
	if (k->me == 0) {
		moe_ep_phase("check (single-process oracle)");
		if (moe_ep_oracle(k->pr, want) != MOE_OK) {
			fprintf(stderr, "moebench ep: rank 0: the single-process oracle failed: %s\n", moe_last_error());
			verdict = 3;
		} else {
			int64_t bad = 0, first = -1;
			for (int64_t i = 0; i < T * H; i++)
				if (memcmp(&y[i], &want[i], sizeof(float))) {
					bad++;
					if (first < 0)
						first = i;
				}
			const char *oracle = k->pr->b == moe_backend_reference() ? "moe_layer__ref" : "the single-process layer";
			if (bad == 0) {
				printf("check: bitwise equal to %s (%s ops), %lld values over %d rank(s)\n", oracle,
				       k->pr->backend_name, (long long)(T * H), k->R);
			} else {
				printf("check: MISMATCH against %s: %lld of %lld values differ; first at token %lld column %lld: "
				       "%.9g (%a) here, %.9g (%a) single-process\n",
				       oracle, (long long)bad, (long long)(T * H), (long long)(first / H), (long long)(first % H),
				       y[first], y[first], want[first], want[first]);
				verdict = 1;
			}
		}
		fflush(stdout);
	}
	moe_ep_mpi_ok(MPI_Bcast(&verdict, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast of the check verdict");
	free(cnt), free(dsp), free(y), free(want);
	return verdict;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Per phase: the median over repetitions of the slowest rank, and of the mean over ranks. */
static void bench(struct ep_rank *k)
{
	const struct moe_layer_params *p = &k->pr->p;
	const int reps = k->c->reps, R = k->R;
	const int64_t H = p->expert.hidden;
	double *mx = calloc((size_t)(reps * PH_N), sizeof(double)), *mean = calloc((size_t)(reps * PH_N), sizeof(double));
	if (!mx || !mean) {
		fprintf(stderr, "moebench ep: rank %d: no memory for %d repetitions\n", k->me, reps);
		MPI_Abort(MPI_COMM_WORLD, 3);
	}
	layer_call(k); /* warm-up */
	for (int r = 0; r < reps; r++) {
		moe_ep_mpi_ok(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier before a repetition");
		layer_call(k);
		moe_ep_mpi_ok(MPI_Reduce(k->t, mx + r * PH_N, PH_N, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD), "MPI_Reduce (MAX) of times");
		moe_ep_mpi_ok(MPI_Reduce(k->t, mean + r * PH_N, PH_N, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD), "MPI_Reduce (SUM) of times");
	}
	/* bytes and loads, from the fixed routing */
	double mine[4] = { 0, 0, 0, 0 }; /* dispatch remote, dispatch total, return remote, slots received */
	for (int d = 0; d < R; d++) {
		mine[1] += (double)k->sendcounts[d] * (double)H * 4;
		if (d != k->me) {
			mine[0] += (double)k->sendcounts[d] * (double)H * 4;
			mine[2] += (double)k->recvcounts[d] * (double)H * 4;
		}
	}
	mine[3] = (double)k->nrecv;
	double sum[4], max[4];
	moe_ep_mpi_ok(MPI_Reduce(mine, sum, 4, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD), "MPI_Reduce of bytes");
	moe_ep_mpi_ok(MPI_Reduce(mine, max, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD), "MPI_Reduce of bytes");
	const int32_t E = p->route.num_experts;
	int *cnt = calloc((size_t)E, sizeof(int)), *all = calloc((size_t)E, sizeof(int));
	if (!cnt || !all)
		MPI_Abort(MPI_COMM_WORLD, 3);
	for (int64_t s = 0; s < k->Tr * p->route.top_k; s++)
		cnt[k->ids[s]]++;
	moe_ep_mpi_ok(MPI_Reduce(cnt, all, E, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD), "MPI_Reduce of expert counts");
	if (k->me == 0) {
		double med_max[PH_N], med_mean[PH_N], v[256];
		const int n = reps < 256 ? reps : 256;
		for (int ph = 0; ph < PH_N; ph++) {
			for (int r = 0; r < n; r++)
				v[r] = mx[r * PH_N + ph];
			qsort(v, (size_t)n, sizeof v[0], cmp_double);
			med_max[ph] = v[n / 2];
			for (int r = 0; r < n; r++)
				v[r] = mean[r * PH_N + ph] / R;
			qsort(v, (size_t)n, sizeof v[0], cmp_double);
			med_mean[ph] = v[n / 2];
		}
		int emax = 0;
		for (int32_t e = 0; e < E; e++)
			emax = all[e] > emax ? all[e] : emax;
		const double slots = (double)(p->tokens * p->route.top_k);
		printf("bench: %d repetitions (+1 warm-up); per phase the median of the slowest rank and of the rank mean\n", reps);
		printf("  %-22s %12s %12s\n", "phase", "max-rank ms", "mean-rank ms");
		for (int ph = 0; ph < PH_N; ph++)
			printf("  %-22s %12.3f %12.3f\n", phase_names[ph], med_max[ph] * 1e3, med_mean[ph] * 1e3);
		const double comm = med_max[PH_COUNTS] + med_max[PH_DISPATCH] + med_max[PH_RETURN];
		printf("  dispatch bytes: %.0f leave their rank (of %.0f, %.1f%%), max %.0f per rank; %lld B per token-slot (H x 4)\n",
		       sum[0], sum[1], sum[1] > 0 ? 100 * sum[0] / sum[1] : 0.0, max[0], (long long)(H * 4));
		printf("  combine bytes: %.0f leave their rank, max %.0f per rank\n", sum[2], max[2]);
		printf("  load: slots per rank max/mean %.3f (max %.0f, mean %.1f); per expert max/mean %.3f (max %d, mean %.1f)\n",
		       max[3] / (slots / R), max[3], slots / R, emax / (slots / E), emax, slots / E);
		printf("  communication %.3f ms of %.3f ms total (%.1f%%); effective remote rate %.2f GB/s per rank\n",
		       comm * 1e3, med_max[PH_TOTAL] * 1e3, 100 * comm / med_max[PH_TOTAL],
		       med_max[PH_DISPATCH] + med_max[PH_RETURN] > 0 ? (max[0] + max[2]) / (med_max[PH_DISPATCH] + med_max[PH_RETURN]) / 1e9 : 0.0);
		printf("csv: model,T,H,I,E,K,R,placement,backend,chunks,reps,route_ms,counts_ms,pack_ms,dispatch_ms,experts_ms,"
		       "return_ms,shared_ms,combine_ms,total_ms,dispatch_remote_bytes,combine_remote_bytes,rank_imbalance,expert_imbalance\n");
		printf("csv: %s,%lld,%lld,%lld,%d,%d,%d,%s,%s,%d,%d", k->c->model, (long long)p->tokens, (long long)H,
		       (long long)p->expert.inter, E, p->route.top_k, R, moe_ep_placement_kind_name(k->c->placement),
		       k->pr->backend_name, k->c->chunks, reps);
		for (int ph = 0; ph < PH_N; ph++)
			printf(",%.4f", med_max[ph] * 1e3);
		printf(",%.0f,%.0f,%.4f,%.4f\n", sum[0], sum[2], max[3] / (slots / R), emax / (slots / E));
		fflush(stdout);
	}
	free(cnt), free(all), free(mx), free(mean);
}

int moe_ep_main(const struct moe_ep_config *c)
{
	struct ep_rank k = { .c = c };
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	MPI_Comm_size(MPI_COMM_WORLD, &k.R);
	MPI_Comm_rank(MPI_COMM_WORLD, &k.me);
	moe_ep_watchdog(k.me, c->timeout_s);
	moe_ep_phase("setup");

	struct moe_layer_params lp;
	struct moe_ep_placement pl = { 0 };
	struct moe_ep_problem pr = { 0 };
	bool *want = NULL;
	enum moe_status s = moe_ep_layer_params(c, &lp);
	if (s == MOE_OK)
		s = c->placement == MOE_EP_FILE ? moe_ep_placement_load(c->placement_file, lp.route.num_experts, k.R, &pl)
						: moe_ep_placement_make(c->placement, lp.route.num_experts, k.R, &pl);
	if (s == MOE_OK) {
		want = calloc((size_t)lp.route.num_experts, sizeof *want);
		if (!want)
			s = moe_fail(MOE_ERR_NOMEM, "ep: no memory");
		for (int32_t e = 0; want && e < lp.route.num_experts; e++)
			want[e] = pl.rank_of[e] == k.me || (k.me == 0 && c->check);
	}
	if (s == MOE_OK)
		s = moe_ep_problem_make(c, want, &pr);
	free(want);
	int rc = 0;
	if (!moe_ep_agree_setup(MPI_COMM_WORLD, s == MOE_OK)) {
		rc = 2;
		goto out;
	}
	char text[512];
	moe_ep_config_text(c, &pl, text, sizeof text);
	if (!moe_ep_agree_config(MPI_COMM_WORLD, text)) {
		rc = 2;
		goto out;
	}
	if (c->fault == MOE_EP_FAULT_DIE && k.me == c->fault_rank) {
		fprintf(stderr, "moebench ep: rank %d: --inject-fault die: killing myself (SIGKILL) before the exchange\n", k.me);
		fflush(stderr);
		raise(SIGKILL);
	}
	if (c->fault == MOE_EP_FAULT_HANG && k.me == c->fault_rank) {
		fprintf(stderr, "moebench ep: rank %d: --inject-fault hang: sleeping instead of exchanging\n", k.me);
		fflush(stderr);
		moe_ep_phase("injected hang");
		for (;;)
			pause();
	}

	k.pr = &pr;
	k.pl = &pl;
	k.L = pl.count[k.me];
	k.Lmax = pl.max_local;
	k.t0 = lp.tokens * k.me / k.R;
	k.Tr = lp.tokens * (k.me + 1) / k.R - k.t0;
	moe_ep_mpi_ok(MPI_Type_contiguous((int)lp.expert.hidden, MPI_FLOAT, &k.row), "MPI_Type_contiguous (a row)");
	moe_ep_mpi_ok(MPI_Type_commit(&k.row), "MPI_Type_commit (a row)");
	k.local_w = malloc((size_t)(k.L + 1) * sizeof *k.local_w);
	s = k.local_w ? MOE_OK : moe_fail(MOE_ERR_NOMEM, "ep: no memory");
	for (int j = 0; s == MOE_OK && j < k.L; j++)
		k.local_w[j] = pr.experts[pl.experts_of[pl.first[k.me] + j]];
	if (s == MOE_OK && k.L > 0) {
		struct moe_expert_params fmt = lp.expert;
		fmt.tokens = 0;
		s = moe_backend_pack(pr.b, &fmt, k.L, k.local_w, moe_threads_serial(), &k.packed);
		if (s == MOE_ERR_UNSUPPORTED)
			s = MOE_OK, k.packed = NULL;
	}
	if (s == MOE_OK && setup_buffers(&k) != MOE_OK)
		s = moe_fail(MOE_ERR_NOMEM, "ep: no memory for the exchange buffers (T=%lld H=%lld on %d ranks)",
			     (long long)lp.tokens, (long long)lp.expert.hidden, k.R);
	if (!moe_ep_agree_setup(MPI_COMM_WORLD, s == MOE_OK)) {
		rc = 3;
		goto out_type;
	}
	if (k.me == 0) {
		printf("ep: model %s T=%lld H=%lld I=%lld E=%d K=%d shared=%s, %d rank(s), placement %s, backend %s, chunks %d\n",
		       c->model, (long long)lp.tokens, (long long)lp.expert.hidden, (long long)lp.expert.inter,
		       lp.route.num_experts, lp.route.top_k, lp.shared == MOE_SHARED_NONE ? "none" : "yes", k.R,
		       c->placement == MOE_EP_FILE ? c->placement_file : moe_ep_placement_kind_name(c->placement),
		       pr.backend_name, c->chunks);
		fflush(stdout);
	}
	layer_call(&k);
	if (c->check)
		rc = check(&k);
	if (rc == 0 && c->bench)
		bench(&k);
out_type:
	MPI_Type_free(&k.row);
	free_rank(&k);
out:
	moe_ep_phase("finalize");
	moe_ep_problem_free(&pr);
	moe_ep_placement_free(&pl);
	return rc;
}
