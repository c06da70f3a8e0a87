/* executor.h - the process a worker rank runs its tasks in, and the rank's supervision of it
 * (executor.c).
 *
 * A worker rank never runs a task itself: it relays the master's TASK, INIT and BATCH frames to
 * its executor (a socket_worker, the fork backend's worker code, forked by the rank's fork
 * server) and the executor's replies back to the master. A task that crashes, hangs or exits
 * takes only the executor with it; the rank tells the master and starts a new one when asked.
 *
 * The frames that carry this between master and rank (wire.h):
 * - EXEC_DIED (rank -> master): header id = the executor's generation (1 for the first, one
 *   more for each restart), arg = frames it was given and never answered; payload i32 exit code
 *   (Python's: minus the signal), u32 pid, u64 the id of the last frame it took (or
 *   MPROC__TAKEN_NONE), then a sentence (exit status, rank, host).
 * - EXEC_STARTED (rank -> master): id = generation, arg = pid of a new executor.
 * - EXEC_KILL (master -> rank): SIGKILL the executor (a time limit, terminate).
 * - EXEC_RESTART (master -> rank): retire the executor (SHUTDOWN, killed after 5 s) and start
 *   the next generation; frames sent after it go to the new one.
 * - EXEC_DROPPED (rank -> master): arg frames arrived while no executor was alive and will never
 *   be answered (their tasks go back to the master's queue; the count keeps its books).
 *
 * Threads: the rank's main thread (its MPI receive loop) hands frames in; a supervisor thread
 * writes what cannot be written at once, reads the executor's replies, sends them to the master
 * and notices the executor's end. Neither holds the MPI lock while taking the executor's own.
 */
#ifndef MPROC_MPI_EXECUTOR_H
#define MPROC_MPI_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backends/mpi/transport.h"

/* EXEC_DIED payload before the sentence. */
#define MPROC__EXEC_DIED_MIN 16u

/* Starts the first executor and the supervisor. `sink` takes frames from the master that
 * arrive while the supervisor sends (lock held, as for mproc__mpi_send_frame). 0 or an error. */
int mproc__exec_start(mproc__mpi_sink sink);
/* The executor's pid now (0 if none). */
long mproc__exec_pid(void);
/* A TASK, INIT or BATCH frame from the master, taken over (freed when done). MPI lock not held. */
void mproc__exec_take(uint8_t *frame, size_t len);
/* EXEC_KILL and EXEC_RESTART. MPI lock not held. */
void mproc__exec_kill(void);
void mproc__exec_restart(void);
/* At the rank's end: the executor is asked to leave (killed after 5 s), the supervisor joins. */
void mproc__exec_stop(void);

#endif /* MPROC_MPI_EXECUTOR_H */
