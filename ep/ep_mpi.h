/* The MPI side of expert parallelism (built only when CMake finds MPI): the cross-rank agreement on
 * setup and configuration, the watchdog, and the error path. Every MPI call runs under
 * MPI_ERRORS_RETURN; a failing call prints the rank, the call and the phase, then MPI_Abort. */
#ifndef MOE_EP_MPI_H
#define MOE_EP_MPI_H

#include <mpi.h>

#include "ep.h"

/* What this rank is doing, for the watchdog's and the error path's messages. */
void moe_ep_phase(const char *name);
/* Starts the watchdog: after timeout_s seconds (0: never) the rank prints its rank and phase and
 * exits with status 3, which makes mpirun end the others. */
void moe_ep_watchdog(int rank, double timeout_s);
/* rc of an MPI call: returns on MPI_SUCCESS, else prints and aborts the job. */
void moe_ep_mpi_ok(int rc, const char *call);

/* Collective. local_ok: whether this rank's setup succeeded (its message in moe_last_error());
 * every rank learns whether all did; the failing ranks print their message, the others name them. */
bool moe_ep_agree_setup(MPI_Comm comm, bool local_ok);
/* Collective: compares the hash of each rank's configuration text (MPI_Allreduce MIN and MAX); on a
 * difference every rank whose text differs from rank 0's prints the first differing key with both
 * values, rank 0 lists the ranks. Returns whether all agree. */
bool moe_ep_agree_config(MPI_Comm comm, const char *text);

#endif
