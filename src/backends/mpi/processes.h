/* processes.h - Processes under MPI (processes.c): the backend operations on Processes. */
#ifndef MPROC_MPI_PROCESSES_H
#define MPROC_MPI_PROCESSES_H

#include "backend.h"

int mproc__mpi_proc_start(const mproc_task *target, const void *arg, size_t len, const char *name,
                          mproc__child **out, long *pid);
int mproc__mpi_proc_wait(mproc__child *c, double timeout, int *exitcode);
int mproc__mpi_proc_signal(mproc__child *c, int signo);
void mproc__mpi_proc_free(mproc__child *c);
/* Frees every record at finalize. */
void mproc__mpi_children_free(void);

#endif /* MPROC_MPI_PROCESSES_H */
