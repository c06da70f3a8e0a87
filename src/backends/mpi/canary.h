/* canary.h - a worker rank's watch on its own descriptors while it runs tasks itself (canary.c). */
#ifndef MPROC_MPI_CANARY_H
#define MPROC_MPI_CANARY_H

/* Tasks inside the rank share its process: one that closes descriptors it did not open takes
 * MPI's connections with them. Starts a thread that looks every 100 ms at a memfd of the rank's
 * own and, once it is gone or replaced, ends the rank (and so the job) naming the last task it
 * ran. Nothing when it cannot start: the rank works as before, unwatched. */
void mproc__mpi_canary_start(void);

#endif /* MPROC_MPI_CANARY_H */
