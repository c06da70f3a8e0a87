/* init_watch.h - MPI_Init bounded by MPROC_MPI_START_TIMEOUT (init_watch.c).
 *
 * Open MPI's MPI_Init waits for every rank of the job: a rank that never reaches mproc_init (a
 * different program, a crash or a hang before it) would hold every other rank in MPI_Init for
 * ever, where no deadline of mproc's can run. A watch thread, started just before MPI_Init and
 * stopped when it returns, ends the rank with a sentence when the time runs out; mpirun then
 * ends the job.
 */
#ifndef MPROC_MPI_INIT_WATCH_H
#define MPROC_MPI_INIT_WATCH_H

/* MPROC_MPI_START_TIMEOUT in seconds: 0 with *secs (-1 = wait for ever, from "0"; 120 unset),
 * or MPROC_EINVAL with a sentence naming the variable. */
int mproc__mpi_start_timeout(double *secs);
/* Before MPI_Init: starts the watch (nothing when the timeout is for ever). Rank 0 speaks
 * first; the other ranks wait 5 s more, so that one sentence, the master's, usually ends the
 * job. */
void mproc__mpi_init_watch_start(double secs);
/* MPI_Init returned: stops the watch. */
void mproc__mpi_init_watch_stop(void);

#endif /* MPROC_MPI_INIT_WATCH_H */
