/* fork_server.h - the process a worker rank's executors are forked from (fork_server.c).
 *
 * Made in mproc_init before MPI_Init, as Python's forkserver: a child of the rank that never
 * initializes MPI, so no executor inherits MPI's sockets, shared-memory segments or pinned
 * network memory, and a respawn never forks a process that holds them (forking a process with
 * registered RDMA memory can corrupt it). The rank asks it for an executor; it forks one, hands
 * back the rank's end of the executor's socket (SCM_RIGHTS) and its pid, and reports each
 * executor's exit status when it ends. Where the program initialized MPI itself before
 * mproc_init, there is no such moment: executors are then forked from the rank (executor.c).
 *
 * One thread of the rank talks to it (the executor supervisor).
 */
#ifndef MPROC_MPI_FORK_SERVER_H
#define MPROC_MPI_FORK_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/socket_worker.h"

/* Executors a rank may have at once (their taken slots are made before the server). */
#define MPROC__FSERVER_MAX_EXECUTORS 256

/* Before MPI_Init: makes the shared taken slots and forks the server. 0, or an error (then the
 * rank forks its executors itself). */
int mproc__fserver_start(void);
/* 1 while the server is there to ask. */
int mproc__fserver_running(void);
/* The shared slot of executor index i (made by mproc__fserver_start, or on first use). */
mproc__taken_slot *mproc__fserver_slot(int i);
/* Asks the server for an executor on taken slot `slot`, with worker index ident and this name
 * (mproc_current_*), sharing the frame rings of memfd ring_fd (-1: none; the caller keeps its
 * descriptor): 0 with the rank's end of its socket (*fd, close-on-exec) and *pid, or an error
 * (the server is gone, or could not fork). */
int mproc__fserver_spawn(int slot, int ident, const char *name, int ring_fd, int *fd, pid_t *pid);
/* Asks the server to fork a Process running task task_id on arg (copied) under name: 0 with
 * *pid, or an error. Its end is reported as any child's (mproc__fserver_take_exit). */
int mproc__fserver_spawn_process(uint32_t task_id, const char *name, const void *arg, size_t len, pid_t *pid);
/* Descriptor that turns readable when the server reports an exit (poll it with the others). */
int mproc__fserver_fd(void);
/* Takes the exit report of child pid (an executor or a Process): 1 with its wait *status, 0 if it is not there yet
 * (reports of other executors read meanwhile are kept for them), < 0 when the server is gone. */
int mproc__fserver_take_exit(pid_t pid, int *status);
/* Gives both ends of an executor's socket room for whole frames. */
void mproc__fserver_size_socket(const int sv[2]);
/* 1 when the server has ended on its own (killed): it is reaped, a warning naming rank (ours),
 * host and how it ended is printed, and it is no longer used, so that executors and Processes
 * are forked from the rank from then on. 0 while it runs. */
int mproc__fserver_ended(int rank);
/* Ends the server (its executors die with it). */
void mproc__fserver_stop(void);

#endif /* MPROC_MPI_FORK_SERVER_H */
