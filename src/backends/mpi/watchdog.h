/* watchdog.h - how the MPI master notices that a worker rank is gone (watchdog.c). */
#ifndef MPROC_MPI_WATCHDOG_H
#define MPROC_MPI_WATCHDOG_H

/* Reads MPROC_MPI_LOST_TIMEOUT: MPROC_EINVAL, named, on a bad value (mproc_init checks it on
 * every rank before MPI starts, so that a typo fails mproc_init rather than the running job). */
int mproc__mpi_lost_timeout_setting(void);
/* After start-up: reads MPROC_MPI_LOST_TIMEOUT and installs the look (mproc__mpi.watchdog). */
int mproc__mpi_watchdog_start(void);
/* Lock held. Before finalize's collectives: every rank that runs executors must answer a PING
 * within MPROC_MPI_LOST_TIMEOUT, or it is lost (a rank lost while idle was never asked). */
void mproc__mpi_watchdog_roll_call(void);
/* At finalize. */
void mproc__mpi_watchdog_stop(void);
/* Lock held. Queues a "worker w's rank is lost" event for the live group (also when a new pool
 * includes a rank lost earlier). */
void mproc__mpi_push_lost_worker(int w);

#endif /* MPROC_MPI_WATCHDOG_H */
