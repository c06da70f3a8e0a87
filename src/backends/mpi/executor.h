/* executor.h - the process a worker rank runs its tasks in, and the rank's supervision of it
 * (executor.c, exec_give.c, exec_replies.c, exec_state.c).
 *
 * A worker rank never runs a task itself: it relays the master's TASK, INIT and BATCH frames to
 * its executor (a socket_worker, the fork backend's worker code, forked by the rank's fork
 * server) and the executor's replies back to the master. A task that crashes, hangs or exits
 * takes only the executor with it; the rank tells the master and starts a new one when asked.
 *
 * The frames that carry this between master and rank (wire.h):
 * A rank runs k executors (MPROC_MPI_EXECUTORS; the hybrid layout of one rank per node runs one
 * per core); each is one worker of the pool.
 *
 * - EXEC_DIED (rank -> master): header id = the executor's generation (1 for the first, one
 *   more for each restart), arg = frames it was given and never answered; payload i32 exit code
 *   (Python's: minus the signal), u32 pid, u64 the id of the last frame it took (or
 *   MPROC__TAKEN_NONE), u32 its index, then a sentence (exit status, rank, host).
 * - EXEC_STARTED (rank -> master): id = generation | index << 32, arg = pid of a new executor.
 * - EXEC_KILL (master -> rank): id = index: SIGKILL the executor (a time limit, terminate).
 * - EXEC_RESTART (master -> rank): id = index, arg = the worker number its tasks are to see
 *   (mproc_current_index): retire the executor (SHUTDOWN, killed after 5 s) and start its next
 *   generation with that number; frames sent after it go to the new one.
 * - EXEC_DROPPED (rank -> master): arg frames arrived while no executor was alive and will never
 *   be answered (their tasks go back to the master's queue; the count keeps its books).
 *
 * Threads: the rank's main thread (its MPI receive loop) hands frames in; a supervisor thread
 * writes what cannot be written at once, reads the executor's replies, sends them to the master
 * and notices the executor's end (while frames stream in, or a reply is due soon, the main
 * thread reads the replies itself: the relay watch, exec_replies.c). Neither holds the MPI
 * lock while taking the executor's own.
 */
#ifndef MPROC_MPI_EXECUTOR_H
#define MPROC_MPI_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backends/mpi/transport.h"

/* EXEC_DIED payload before the sentence (it ends with the executor's index, u32). */
#define MPROC__EXEC_DIED_MIN 20u
/* With k executors per rank the master names executor e in the top byte of a TASK, INIT or
 * BATCH frame's id (and the rank in its replies' ids); KILL and RESTART carry e as their id,
 * EXEC_STARTED as bits 32.. of its id (the generation below). e = 0 leaves every id as it is. */
#define MPROC__EXEC_ID_SHIFT 56
#define MPROC__EXEC_ID_MASK ((UINT64_C(1) << MPROC__EXEC_ID_SHIFT) - 1)
#define MPROC__EXEC_ALL UINT64_MAX /* EXEC_KILL: every executor of the rank */

/* MPROC_MPI_EXEC_RING and MPROC_MPI_EXEC_MAILBOX read: MPROC_EINVAL, named, on a bad value
 * (mproc_init checks them on every rank before MPI starts, executors or not). */
int mproc__exec_settings(void);
/* Starts k executors and the supervisor; executor i gets worker index ident_base + i
 * (mproc_current_index). `sink` takes frames from the master that arrive while the supervisor
 * sends (lock held, as for mproc__mpi_send_frame). 0 or an error. */
int mproc__exec_start(int k, int ident_base, mproc__mpi_sink sink);
int mproc__exec_count(void);
/* Executor e's pid now (0 if none). */
long mproc__exec_pid(int e);
/* Where the main thread receives the master's frames (mproc__mpi_try_recv_into): a big TASK
 * or BATCH straight into its executor's down ring, as the next frame there, when it can go
 * straight on (nothing queued ahead); the frame must then go to mproc__exec_take before the
 * next one is received. NULL before the executors start. */
const mproc__mpi_home *mproc__exec_home(void);
/* A TASK, INIT or BATCH frame from the master (executor index in its id), taken over (freed
 * when done, unless it is in the down ring). MPI lock not held. */
void mproc__exec_take(uint8_t *frame, size_t len);
/* SKIP (wire.h): frame id (executor index in its top byte) is to be answered unrun by its
 * executor if it has not taken it yet. MPI lock not held. */
void mproc__exec_skip(uint64_t id);
/* EXEC_KILL (e, or MPROC__EXEC_ALL) and EXEC_RESTART (e). MPI lock not held. */
void mproc__exec_kill(uint64_t e);
void mproc__exec_restart(uint64_t e, int ident);
/* The relay watch (exec_replies.c): the main thread, awake between its looks at MPI, reads the
 * replies of executors it handed a frame to while frames stream in or while their reply is due
 * soon (their frames take them under MPROC__EXEC_REPLY_POLL_MAX_S on average; MPI lock not
 * held). Nonzero while a reply is due from one it watches (that executor may share its core),
 * and then *poll_until: until when such a reply is due soon, worth polling for rather than
 * sleeping (0: none is)... */
int mproc__exec_relay_pump(double *poll_until);
/* ...and gives them back to the supervisor before it sleeps (its mproc__mpi_on_sleep hook;
 * lock-free). */
void mproc__exec_relay_sleeps(void);
/* The rank idle (rank.c): its executors' rings give back their pages past the kept part (the
 * down rings as their writer, frame_ring.h's mproc__ring_trim_idle; the up rings of executors
 * that owe nothing as their reader, mproc__ring_trim_quiet). 1 while a frame not yet released
 * still lies there (look again later). MPI lock not held. */
int mproc__exec_trim_idle(void);
/* The idle rank (rank.c): the supervisor thread gives back its own heap arena's free top
 * (worker.h's mproc__worker_give_back_heap: replies read from the sockets were malloc'd there),
 * soon, from its own thread. Lock-free. */
void mproc__exec_give_back_heap(void);
/* 1 while an executor owes a reply to a frame it was given (lock-free); how many replies have
 * been sent on to the master so far (MPI lock held), which tells an idle rank that something
 * happened since it last looked (a reply counted as no longer due a moment before its send). */
int mproc__exec_replies_due(void);
unsigned mproc__exec_forwarded(void);
/* At the rank's end: every executor is asked to leave (killed after 5 s), the supervisor joins. */
void mproc__exec_stop(void);

#endif /* MPROC_MPI_EXECUTOR_H */
