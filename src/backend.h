/* backend.h - the transport interface the core talks to, and nothing more.
 *
 * A backend moves whole frames (wire.h) between the master and its workers, starts and stops
 * workers, and runs one-shot Processes. It knows nothing about pools, chunks or results: the
 * core (src/pool/, process.c) does all scheduling and only ever calls through this table, from
 * thin wrappers (pool/backend_calls.c). Adding a backend means one new folder, one line in
 * backends/table.c and its CMake entry.
 *
 * Threads: in the master, each pool has one result thread that calls send/wait/restart for its
 * group; wake() may be called from any thread; process calls come from user threads. A backend
 * makes that safe (the MPI backend serialises its MPI calls behind one lock).
 *
 * Worker side: a backend runs mproc__worker_serve() (worker/worker.h) inside each worker with a
 * channel of its own, and mproc__process_main() inside each Process child.
 */
#ifndef MPROC_BACKEND_H
#define MPROC_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mproc.h"

#define MPROC__BACKEND_VERSION 10

typedef struct mproc__group mproc__group; /* backend-private: the workers of one pool */
typedef struct mproc__child mproc__child; /* backend-private: one Process */

typedef enum mproc__event_kind {
    MPROC__EV_FRAME = 1,   /* a whole frame arrived from `worker` */
    MPROC__EV_DIED = 2,    /* `worker` is gone (crash, kill, garbage on its channel) */
    MPROC__EV_WAKE = 3,    /* wake() was called */
    MPROC__EV_TIMEOUT = 4  /* the wait's timeout passed */
} mproc__event_kind;

typedef struct mproc__event {
    int kind;
    int worker;        /* index 0..n-1 for FRAME and DIED */
    uint8_t *frame;    /* FRAME: header + payload, malloc'd; the core frees it with free() */
    size_t frame_len;
    int placed;        /* FRAME: a RESULT whose data went to its send hint's reply_to; the frame
                        * is its header and the 8-byte count/item_size prefix (length 8) */
    int exitcode;      /* DIED: exit status >= 0, or minus the signal number */
    long pid;          /* DIED: the process id the worker had (0 if unknown) */
    char why[320];     /* DIED: a sentence, e.g. "killed by signal 11 (Segmentation fault)" */
    /* DIED, where the backend can tell (taken_known != 0): the id of the last frame the worker
     * took off its channel to run, or MPROC__TAKEN_NONE. Frames sent after that one were never
     * read: their tasks did not start, so the death is not theirs to carry. */
    int taken_known;
    uint64_t taken_id;
    /* DIED: not the tasks' doing (MPI: the worker's whole rank was lost). What was running is
     * re-run once without counting against max_retries, and the worker is not replaced. */
    int innocent;
    /* DIED, innocent: since when (mproc__now()) the backend has taken the worker for gone; a
     * frame sent to it later never reached it (its DIED events come one by one, and the pool
     * may give a worker of a lost rank work between them). 0: unknown. */
    double gone_since;
} mproc__event;

#define MPROC__TAKEN_NONE UINT64_MAX

/* send() flag: the core promises that the bytes of iov[1..] stay valid and unchanged until wait()
 * has returned this frame's reply, or group_stop() has returned, so the transport may go on
 * reading them after send() returns (MPI: the payload is not copied and not waited for). */
#define MPROC__SEND_RETAIN 1u

/* What the core tells send() about a frame beyond its bytes (NULL: nothing). */
typedef struct mproc__send_hint {
    unsigned flags; /* MPROC__SEND_RETAIN */
    /* A TASK whose reply's result data (count x item_size bytes, when every item succeeds with
     * a fixed size) has a home: the caller's output array. The transport may receive that data
     * straight there (reply_len bytes at reply_to) and deliver the reply with ev->placed set.
     * The core keeps reply_to valid, and writes nothing else there, until wait() has returned
     * the reply or group_stop() has returned. */
    void *reply_to;
    size_t reply_len;
    /* Set by send(): non-zero (a token for withdraw) when the transport keeps a reference past
     * send() (input it reads later, or the reply's home): the core withdraws the frame before
     * it settles it early. */
    uint64_t kept;
} mproc__send_hint;

typedef struct mproc__backend_ops {
    int version; /* MPROC__BACKEND_VERSION */
    const char *name;

    /* Starts the backend. Worker ranks of a distributed backend never return from it. */
    int (*init)(int *argc, char ***argv);
    /* Stops worker ranks / MPI. Called once, after every group and child is freed. */
    int (*finalize)(void);
    /* Largest useful worker count (MPI: ranks - 1), or a big number. */
    int (*max_workers)(void);

    /* Largest worker count of a pool with at most per_rank workers on each worker rank (0: no
     * such limit). NULL: max_workers (a backend without ranks ignores per_rank). */
    int (*pool_capacity)(int per_rank);
    /* Starts n workers, each serving frames (worker/worker.h); *out cleared on failure. n is already
     * capped by pool_capacity(per_rank). */
    int (*group_start)(int n, int per_rank, mproc__group **out);
    /* Sends one whole frame (the iovecs concatenated) to a worker; blocks until it is handed to
     * the transport. A dead worker gives MPROC_EWORKER (its DIED event still comes). flags:
     * hint may be NULL. */
    int (*send)(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                mproc__send_hint *hint);
    /* Blocks up to timeout seconds (< 0: forever) for the next event. Returns 0 with *ev set,
     * or an error. Must not busy-wait for long: an idle master leaves its core to workers. */
    int (*wait)(mproc__group *g, double timeout, mproc__event *ev);
    /* Makes a blocked or the next wait() return MPROC__EV_WAKE; any thread. */
    void (*wake)(mproc__group *g);
    /* Kills a worker (SIGKILL or the transport's equivalent); its DIED event follows. A
     * backend that cannot (MPI) returns an error and the worker keeps running. */
    int (*kill_worker)(mproc__group *g, int worker);
    /* Frame id, sent to worker with a send hint that kept a reference (kept, the token send()
     * gave), is to be settled before its reply (its call was cancelled while it waited behind
     * another call's task): its reply_to is forgotten (a reply that still comes is an ordinary
     * frame), and 1 is returned once the transport reads none of its MPROC__SEND_RETAIN input
     * any more; 0: a send of it is still in flight (the receiver busy), ask again later. Never
     * waits. Called by the thread that calls send() and wait(), never during them. NULL: the
     * backend keeps no such references past send(). */
    int (*withdraw)(mproc__group *g, int worker, uint64_t id, uint64_t kept);
    /* Frame id (a TASK, or a BATCH: its first task's id), sent to worker, holds only chunks of
     * cancelled calls (ghosts now): usually one queued behind another call's running frame, or
     * one the backend could not kill. A worker that has not started it yet may answer each of
     * its tasks with an empty RESULT (payload length 0) instead of running it. Best effort: a
     * frame already taken runs (its result is dropped as before), and a worker remembers the
     * last MPROC__SKIP_SLOTS ids (socket_worker.h); never waits; any thread, with the core's
     * lock held. NULL: such frames run. */
    int (*skip)(mproc__group *g, int worker, uint64_t id);
    /* Replaces a worker that is dead (after its DIED event) or that the core wants recycled
     * (it is asked to exit first). MPROC_ENOTBUILT where a backend cannot replace workers (the
     * worker keeps running); any other error: the old worker is gone and no new one started. */
    int (*restart_worker)(mproc__group *g, int worker);
    /* Process id of a worker (on its host), or 0. */
    long (*worker_pid)(mproc__group *g, int worker);
    /* The lowest worker of the group lost together with `worker` when the process hosting
     * them goes (MPI: the executors of one rank): work suspected of killing its host runs with
     * nothing else there. NULL: every worker alone. */
    int (*fault_domain)(mproc__group *g, int worker);
    /* Stops every worker (graceful: SHUTDOWN and wait for them to exit; else kill), reaps them
     * all, and frees the group. */
    void (*group_stop)(mproc__group *g, int graceful);

    /* Processes: starts target(arg) in a new process named name. arg is copied. */
    int (*proc_start)(const mproc_task *target, const void *arg, size_t len, const char *name,
                      mproc__child **out, long *pid);
    /* Waits up to timeout for it to end: 0 and *exitcode (Python's meaning), or ETIMEDOUT. */
    int (*proc_wait)(mproc__child *c, double timeout, int *exitcode);
    int (*proc_signal)(mproc__child *c, int signo);
    /* Frees a child that has ended (proc_wait returned 0). */
    void (*proc_free)(mproc__child *c);

    /* Workers a pool gets when it asks for 0: fork, one per CPU; MPI, every worker rank. */
    int (*default_workers)(void);
    /* Frames a pool keeps queued per worker when it asks for 0 (NULL: 2). More where a relay
     * stands between the master and the process that runs the task (an MPI rank and its
     * executor): a worker's next frame should be past the relay when it answers. */
    int (*default_inflight)(void);
} mproc__backend_ops;

/* ---- the backends (src/backends/) ------------------------------------------------------- */

/* One line per backend in backends/table.c: how MPROC_BACKEND names it, its public kind, and
 * how to get its ops (NULL answers mean "not available", with the reason recorded). A new
 * backend is one folder, one line there and its CMake entry. */
typedef struct mproc__backend_entry {
    const char *name;
    mproc_backend_kind kind;
    const mproc__backend_ops *(*ops)(void);
} mproc__backend_entry;

/* The entry named name, or NULL. */
const mproc__backend_entry *mproc__backend_find(const char *name);
/* "fork, mpi": the names, for messages. */
const char *mproc__backend_names(void);

extern const mproc__backend_ops mproc__backend_fork;
/* Defined by backends/mpi/master.c in the module libmproc_mpi.so (built when MPI is found).
 * The core never links it: mproc__backend_mpi_load() dlopens the module when MPI is chosen, so
 * programs on fork workers never map libmpi (which would make every fork() copy its page
 * tables). */
extern const mproc__backend_ops mproc__backend_mpi;
/* backends/mpi_loader.c: the MPI backend from its module, or the stand-in with the reason. */
const mproc__backend_ops *mproc__backend_mpi_load(void);
/* backends/none.c: the stand-in for a backend that is not available: every op answers
 * MPROC_ENOTBUILT with "why" (copied). */
const mproc__backend_ops *mproc__backend_unavailable(const char *why);

#endif /* MPROC_BACKEND_H */
