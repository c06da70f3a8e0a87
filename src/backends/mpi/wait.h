/* wait.h - how the MPI backend waits without spinning a core: the poll-then-sleep backoff
 * and the per-process doorbells (wait.c).
 */
#ifndef MPROC_MPI_WAIT_H
#define MPROC_MPI_WAIT_H

#include "backends/mpi/world.h"

/* Idle backoff: a few polls back to back, then sleeps that double from 50 us to cap_ns (or the
 * whole cap at once when every rank shares our node and so rings our doorbell; wait.c). */
typedef struct mproc__backoff {
    unsigned polls;
    long ns;
    long cap_ns;
    unsigned seen; /* our doorbell's count when we last polled */
    int rung;      /* the doorbell rang since this wait began */
    double spin_until; /* yield-polling until then while frames stream (0: not yet decided) */
    /* The caller's say on yielding the core between polls: -1 (the default) only while frames
     * stream (stream_spin); 1 on every poll (a process this thread waits for may share the
     * core: a relaying rank's executor with a reply due); 0 never (nothing it waits for needs
     * the core, and a yield would hand it to a spinning executor for nothing). */
    int yield;
    /* The caller's: yield-poll rather than sleep until then (0: no say), e.g. while a relaying
     * rank's executor owes a reply due within microseconds. */
    double poll_until;
} mproc__backoff;

#define MPROC__MPI_IDLE_CAP_NS 1000000L /* 1 ms: an idle rank costs ~1000 cheap wakeups/s */
#define MPROC__MPI_BUSY_CAP_NS 250000L  /* results are due from ranks without a doorbell */
#define MPROC__MPI_SEND_CAP_NS 250000L  /* a pending send is a transfer someone waits on */

void mproc__mpi_backoff_init(mproc__backoff *b, long cap_ns);
/* Lock held. Notes that a frame arrived: waits yield-poll instead of sleeping while frames come
 * in quick succession (a streaming map), and sleep at once when they do not. */
void mproc__mpi_note_arrival(void);
/* 1 while frames stream in (what note_arrival measures); any thread, no lock needed. */
int mproc__mpi_streaming(void);
/* fn is called by the calling thread before each of its sleeps in a wait (lock held; fn must
 * not take it or block). NULL: none. */
void mproc__mpi_on_sleep(void (*fn)(void));
/* Lock held. Waits one step (the lock released meanwhile), never past deadline (< 0: none);
 * returns early when this process's doorbell rings. */
void mproc__mpi_backoff_wait(mproc__backoff *b, double deadline);

/* Doorbells (wait.c). Collective set-up and tear-down over our communicator. */
void mproc__mpi_bells_init(void);
void mproc__mpi_bells_free(void);
/* Wakes rank's waiting threads if it shares our node (send_frame does this after each send). */
void mproc__mpi_ring(int rank);
/* Wakes this process's own waiting threads: wake(), or a frame routed to another thread. */
void mproc__mpi_ring_self(void);
/* Lock held. As ring_self, but only when one of our threads sleeps (routing a frame). */
void mproc__mpi_ring_sleepers(void);
/* 1 when every rank shares the master's node, so doorbells announce every frame. */
int mproc__mpi_all_local(void);
/* How many ranks of our communicator run on this node, this one included. */
int mproc__mpi_node_ranks(void);
/* 1 when rank shares our node (and so has a doorbell we ring, and rings ours). */
int mproc__mpi_shares_node(int rank);
/* Frames arriving less than this apart on average are yield-polled for (default 100 us). */
void mproc__mpi_stream_gap(double seconds);
/* For the net watcher: returns once a thread of this process sleeps in a wait, or after ms. */
void mproc__mpi_park_until_sleeper(int ms);
/* Makes a parked watcher return (a thread is about to sleep, or the watcher is stopping). */
void mproc__mpi_unpark_watcher(void);

#endif /* MPROC_MPI_WAIT_H */
