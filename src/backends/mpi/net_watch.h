/* net_watch.h - a thread that rings this process's doorbell when TCP data arrives (net_watch.c),
 * for processes whose peers are on other nodes. */
#ifndef MPROC_MPI_NET_WATCH_H
#define MPROC_MPI_NET_WATCH_H

/* Starts it (once); a process where it cannot start just polls. After mproc__mpi_bells_init. */
void mproc__mpi_net_watch_start(void);
/* Stops and joins it; before mproc__mpi_bells_free. */
void mproc__mpi_net_watch_stop(void);

#endif /* MPROC_MPI_NET_WATCH_H */
