/* exec_state.h - a worker rank's executors as its executor files share them: exec_state.c (the
 * state, spawning and reaping, what goes to the master about an executor's life), exec_give.c
 * (frames from the master to an executor), exec_replies.c (an executor's replies to the master,
 * the relay watch) and executor.c (the supervisor thread, start and stop). executor.h is what
 * the rest of the rank sees.
 *
 * Locks: mproc__execs.mu guards every executor's state; an executor's read_mu is held by
 * whoever reads its socket. Neither is taken while the MPI lock is held, except by trylock.
 */
#ifndef MPROC_MPI_EXEC_STATE_H
#define MPROC_MPI_EXEC_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/frame_mailbox.h"
#include "backends/mpi/exec_rings.h"
#include "backends/mpi/transport.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"

#define MPROC__EXEC_REAP_GRACE 2.0   /* seconds from its socket's EOF to its exit status */

typedef struct mproc__exec_item {
    struct mproc__exec_item *next;
    uint8_t *frame; /* NULL: a RESTART (len 1: the last one, with no successor; len 2: a KILL) */
    size_t len, off;
    int ident;      /* a RESTART: the worker number of the generation it starts */
    uint8_t ref[MPROC__WIRE_HDR_SIZE]; /* frame == ref: the frame went into the down ring */
} mproc__exec_item;

/* One executor of this rank. */
typedef struct mproc__executor {
    int index;                /* its place among the rank's executors (the master's `e`) */
    int ident;                /* the worker index its tasks see (mproc_current_index) */
    pid_t pid;
    int fd;                   /* the rank's end of its socket (non-blocking); -1: none alive */
    uint32_t gen;
    uint32_t given, answered; /* frames of this generation */
    int retiring;             /* asked to leave: its end is no news to the master */
    int restarting;           /* a RESTART is being carried out: later frames wait their turn */
    int done;                 /* its last RESTART (the rank's end) is carried out */
    mproc__exec_item *out_head, *out_tail; /* bytes for the executor not yet written */
    mproc__exec_item *in_head, *in_tail;   /* master's frames and RESTARTs for the supervisor, in order */
    mproc__reader reader;     /* read_mu's: the supervisor's, or the main thread's (relay watch) */
    mproc__exec_rings *rings;        /* NULL: frames go through the socket only */
    /* The mailboxes (backends/frame_mailbox.h), when its rings have them on: frames given so
     * far (mu's); replies taken (read_mu's). */
    uint64_t down_sent, up_taken;
    /* A reply read from the socket that turned out to come after the one in the mailbox
     * (frame_mailbox.h: a socket frame is checked against the mailbox after it is read): the
     * next reply, kept for the next look (read_mu's). */
    uint8_t *held;
    size_t held_len;
    unsigned quiet_looks;     /* the relay watch's looks that skipped the socket (read_mu's) */
    atomic_int due;           /* given - answered, readable without mu (the relay watch's hint) */
    /* How soon its next reply is due (mu's): since when it runs the frame it is on, and the
     * mean time a frame took it from then until the rank read its reply (so a reply read late,
     * by a woken supervisor, counts its wake-up too). reply_by, read without mu: until when the
     * main thread, watching it, polls for that reply rather than sleeps (0, or a time passed:
     * none due, the executor ended, or its frames take too long to be worth a poll). */
    double busy_since, service_mean;
    _Atomic double reply_by;
    /* Its rings' up mailbox while they are alive (set and cleared with mu held, before the rings
     * are retired): the main thread says there whether it watches, even holding only the MPI
     * lock, under which the rings are never freed. */
    _Atomic(mproc__mailbox *) watch_mail;
    /* Who reads its replies: 0 the supervisor, 1 the rank's main thread while it is awake
     * (the relay watch, exec_replies.c). Only the main thread sets it; it clears it before it sleeps. */
    atomic_int relay_reads;
    pthread_mutex_t read_mu;  /* held by whoever reads its socket (the reader, its fd's end) */
} mproc__executor;

typedef struct mproc__exec_set {
    pthread_mutex_t mu;       /* every executor's state */
    pthread_t thread;
    int started;
    int efd;                  /* wakes the supervisor */
    atomic_int give_back_heap; /* the idle rank asks the supervisor to trim its arena */
    unsigned forwarded;       /* replies sent on to the master (the MPI lock's): the idle trim's clock */
    mproc__mpi_sink sink;
    int k;
    mproc__executor *x;
    size_t ring_size;         /* bytes of each frame ring; 0: none */
    char host[64];
} mproc__exec_set;

/* The rank's executors (exec_state.c). */
extern mproc__exec_set mproc__execs;

/* Queues of frames (and RESTART / KILL entries) for an executor. */
void mproc__exec_push(mproc__exec_item **head, mproc__exec_item **tail, mproc__exec_item *q);
mproc__exec_item *mproc__exec_pop(mproc__exec_item **head, mproc__exec_item **tail);
mproc__exec_item *mproc__exec_item_new(uint8_t *frame, size_t len); /* takes frame over */
void mproc__exec_item_free(mproc__exec_item *q);

/* A reply due within this is polled for by the rank's main thread (when the executor's frames
 * took this long on average): as long as an executor looks for its next frame
 * (socket_worker.c's MAIL_SPIN_MAX_S), as a sleep and the wake-ups of two threads cost more
 * than the look on a busy node. */
#define MPROC__EXEC_REPLY_POLL_MAX_S 250e-6

/* x began a frame at now (mu held): its reply is looked for until twice its mean frame time. */
static inline void mproc__exec_note_busy(mproc__executor *x, double now) {
    x->busy_since = now;
    double by = x->service_mean > 0 && x->service_mean < MPROC__EXEC_REPLY_POLL_MAX_S ? now + 2 * x->service_mean : 0;
    atomic_store_explicit(&x->reply_by, by, memory_order_relaxed);
}

/* Wakes the supervisor (it looks at every queue and socket again). */
void mproc__exec_wake_supervisor(void);

/* A header-only frame to the master (MPI lock not held). */
void mproc__exec_send_master_hdr(uint16_t kind, uint64_t id, uint32_t arg);
/* EXEC_DIED (executor.h) for x's generation gen. */
void mproc__exec_send_died(const mproc__executor *x, uint32_t gen, uint32_t unanswered, int code, pid_t pid,
                           uint64_t taken, const char *why);

/* Starts x's next generation; mu held. 0 or an error (then it has no executor alive). */
int mproc__exec_spawn_next_locked(mproc__executor *x);
/* x's socket ended (cause: NULL for a plain EOF, else why it was not trusted): reaped and
 * reported to the master. mu not held. */
void mproc__exec_ended(mproc__executor *x, const char *cause);

/* exec_give.c: writes what it can of x's out queue (mu held; 0, or -1 when the socket is gone),
 * and gives x's live executor a frame (taken over; mu held). */
int mproc__exec_flush_out_locked(mproc__executor *x);
void mproc__exec_give_locked(mproc__executor *x, mproc__exec_item *q);

/* exec_replies.c: reads the whole frames x's executor has sent (a bounded number) and forwards
 * its replies; read_mu held. 0, MPROC__EXEC_PUMP_MORE when it stopped at its bound (more may
 * wait where poll() does not see it: the mailbox, the reader), -1 when the executor ended
 * (reported), or MPROC__EXEC_HAND_BACK (by_relay only: an error or the executor's end is left
 * to the supervisor, so that the main thread never waits to reap). */
#define MPROC__EXEC_PUMP_MORE 1
#define MPROC__EXEC_HAND_BACK (-2)
int mproc__exec_pump_replies(mproc__executor *x, int by_relay);
/* Every executor back to the supervisor from the relay watch (MPI lock not held). */
void mproc__exec_relay_hand_all_back(void);

#endif /* MPROC_MPI_EXEC_STATE_H */
