/* groups.h - a pool's workers under MPI (groups.c): the backend operations on groups. */
#ifndef MPROC_MPI_GROUPS_H
#define MPROC_MPI_GROUPS_H

#include "backend.h"

int mproc__mpi_group_start(int n, int per_rank, mproc__group **out);
int mproc__mpi_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt, mproc__send_hint *hint);
int mproc__mpi_wait(mproc__group *g, double timeout, mproc__event *ev);
void mproc__mpi_wake(mproc__group *g);
int mproc__mpi_kill_worker(mproc__group *g, int worker);
int mproc__mpi_skip(mproc__group *g, int worker, uint64_t id);
int mproc__mpi_withdraw(mproc__group *g, int worker, uint64_t id, uint64_t kept);
int mproc__mpi_restart_worker(mproc__group *g, int worker);
long mproc__mpi_worker_pid(mproc__group *g, int worker);
/* The group's lowest worker on the same rank as `worker` (backend op fault_domain). */
int mproc__mpi_fault_domain(mproc__group *g, int worker);
void mproc__mpi_group_stop(mproc__group *g, int graceful);

#endif /* MPROC_MPI_GROUPS_H */
