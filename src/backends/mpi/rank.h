/* rank.h - a worker rank (rank.c). */
#ifndef MPROC_MPI_RANK_H
#define MPROC_MPI_RANK_H

/* The body of a worker rank after init; serves until SHUTDOWN, then finalizes MPI
 * and exits. */
_Noreturn void mproc__mpi_rank_main(void);

#endif /* MPROC_MPI_RANK_H */
