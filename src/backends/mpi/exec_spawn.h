/* exec_spawn.h - starting one executor process for a worker rank and collecting its exit status
 * (exec_spawn.c); the supervision around it is executor.c's.
 *
 * Executors come from the fork server made before MPI_Init (fork_server.h), so that none
 * inherits MPI's state; when the program initialized MPI itself before mproc_init there is no
 * server, and the rank forks them itself (docs/mpi.md says what that costs).
 */
#ifndef MPROC_MPI_EXEC_SPAWN_H
#define MPROC_MPI_EXEC_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "backends/mpi/exec_rings.h"

/* Starts executor `index` of this rank as worker `ident` (mproc_current_index) named `name`,
 * with frame rings of ring_size bytes each (0: none): 0 with the rank's end of its socket
 * (blocking, tracked) in *fd, its pid and its rings (NULL when none could be made: the socket
 * then carries everything), or an error with nothing left behind. */
int mproc__exec_spawn(int index, int ident, const char *name, size_t ring_size, int *fd, pid_t *pid,
                      mproc__exec_rings **rings);
/* The wait status of an executor whose socket closed: 1 and *status; 2 when its fork server
 * ended first (the executor was killed with it: PR_SET_PDEATHSIG, SIGKILL; *status says so);
 * or 0 if it could not be had within grace seconds, then again after a SIGKILL. */
int mproc__exec_reap(pid_t pid, double grace, int *status);

#endif /* MPROC_MPI_EXEC_SPAWN_H */
