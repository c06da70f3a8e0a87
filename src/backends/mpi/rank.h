/* rank.h - a worker rank (rank.c). */
#ifndef MPROC_MPI_RANK_H
#define MPROC_MPI_RANK_H

/* MPROC_MPI_EXECUTORS read: *k the count asked for, -1 for unset or `auto`; MPROC_EINVAL, named,
 * on a bad value (mproc_init checks it on every rank before MPI starts). */
int mproc__mpi_executors_setting(int *k);
/* How many executors this rank runs (MPROC_MPI_EXECUTORS; 0: tasks in the rank). mproc_init
 * refused a bad value already (mproc__mpi_executors_setting); should one appear, the job ends. */
int mproc__mpi_rank_executors(int rank);
/* The body of a worker rank after init, with k executors (rank_executors) whose pool worker
 * indexes start at first_worker; serves until SHUTDOWN, then finalizes MPI and exits. */
_Noreturn void mproc__mpi_rank_main(int k, int first_worker);

#endif /* MPROC_MPI_RANK_H */
