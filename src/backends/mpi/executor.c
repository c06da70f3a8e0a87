/* executor.c - a worker rank's executor and its supervisor (executor.h).
 *
 * Frames from the master go to the executor in the order they came, across restarts: the main
 * thread writes a frame straight into the executor's socket when nothing is queued ahead of it
 * (the common case, no thread hand-off), else appends it to the inbox that the supervisor works
 * through in order (RESTART entries included). The supervisor sleeps in poll() on the
 * executor's socket and an eventfd, so an idle rank costs nothing.
 *
 * Book-keeping the master relies on (routing.c): every TASK/INIT/BATCH frame the rank took is
 * answered exactly once, by a reply, or inside an EXEC_DIED (given, never answered), or by an
 * EXEC_DROPPED (no executor was alive).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backends/frame_ring.h"
#include "backends/mpi/exec_rings.h"
#include "backends/mpi/exec_spawn.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/wait.h"
#include "backends/mpi/world.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"

#define RETIRE_GRACE 5.0 /* seconds an executor asked to leave may take */
#define REAP_GRACE 2.0   /* seconds from its socket's EOF to its exit status */

typedef struct qitem {
    struct qitem *next;
    uint8_t *frame; /* NULL: a RESTART (len 1: the last one, with no successor; len 2: a KILL) */
    size_t len, off;
    uint8_t ref[MPROC__WIRE_HDR_SIZE]; /* frame == ref: the frame went into the down ring */
} qitem;

/* One executor of this rank. */
typedef struct executor {
    int index;                /* its place among the rank's executors (the master's `e`) */
    pid_t pid;
    int fd;                   /* the rank's end of its socket (non-blocking); -1: none alive */
    uint32_t gen;
    uint32_t given, answered; /* frames of this generation */
    int retiring;             /* asked to leave: its end is no news to the master */
    int restarting;           /* a RESTART is being carried out: later frames wait their turn */
    int done;                 /* its last RESTART (the rank's end) is carried out */
    qitem *out_head, *out_tail; /* bytes for the executor not yet written */
    qitem *in_head, *in_tail;   /* master's frames and RESTARTs for the supervisor, in order */
    mproc__reader reader;     /* read_mu's: the supervisor's, or the main thread's (relay watch) */
    mproc__exec_rings *rings;        /* NULL: frames go through the socket only */
    /* The mailboxes (backends/frame_mailbox.h), when its rings have them on: frames given so
     * far (mu's) and the seq of our last post there; replies taken (read_mu's). */
    uint64_t down_sent, down_seq, up_taken;
    /* A reply read from the socket that turned out to come after the one in the mailbox
     * (frame_mailbox.h: a socket frame is checked against the mailbox after it is read): the
     * next reply, kept for the next look (read_mu's). */
    uint8_t *held;
    size_t held_len;
    unsigned quiet_looks;     /* the relay watch's looks that skipped the socket (read_mu's) */
    atomic_int due;           /* given - answered, readable without mu (the relay watch's hint) */
    /* Its rings' up mailbox while they are alive (set and cleared with mu held, before the rings
     * are retired): the main thread says there whether it watches, even holding only the MPI
     * lock, under which the rings are never freed. */
    _Atomic(mproc__mailbox *) watch_mail;
    /* Who reads its replies: 0 the supervisor, 1 the rank's main thread while it is awake
     * (relay watch, below). Only the main thread sets it; it clears it before it sleeps. */
    atomic_int relay_reads;
    pthread_mutex_t read_mu;  /* held by whoever reads its socket (the reader, its fd's end) */
} executor;

static struct {
    pthread_mutex_t mu;       /* every executor's state */
    pthread_t thread;
    int started;
    int efd;                  /* wakes the supervisor */
    mproc__mpi_sink sink;
    int k;
    executor *x;
    int ident_base;           /* mproc_current_index() of executor 0 */
    size_t ring_size;         /* bytes of each frame ring; 0: none */
    char host[64];
} ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

static void wake_supervisor(void) {
    uint64_t one = 1;
    while (write(ex.efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static void push(qitem **head, qitem **tail, qitem *q) {
    q->next = NULL;
    if (*tail) (*tail)->next = q;
    else *head = q;
    *tail = q;
}

static qitem *pop(qitem **head, qitem **tail) {
    qitem *q = *head;
    if (q) {
        *head = q->next;
        if (!*head) *tail = NULL;
    }
    return q;
}

static qitem *new_item(uint8_t *frame, size_t len) {
    qitem *q = malloc(sizeof *q);
    if (!q) mproc__mpi_fatal("worker rank %d: out of memory queueing a frame", mproc__mpi.rank);
    *q = (qitem){NULL, frame, len, 0, {0}};
    return q;
}

static void free_item(qitem *q) {
    if (q->frame != q->ref) free(q->frame);
    free(q);
}

/* ---- frame rings (exec_rings.h) ----------------------------------------------------------- */

/* Moves a frame for the executor into its down ring when it fits: q then carries only the
 * reference. mu held. */
static void ring_down(executor *x, qitem *q) {
    if (!x->rings || !q->frame || q->len < MPROC__RING_MIN_FRAME || q->len > UINT32_MAX) return;
    uint64_t pos;
    struct iovec v = {q->frame, q->len};
    if (!mproc__ring_put(&x->rings->p.down, &v, 1, q->len, &pos)) return; /* full: by socket */
    free(q->frame);
    mproc__ring_ref_encode(q->ref, pos, q->len);
    q->frame = q->ref;
    q->len = sizeof q->ref;
    q->off = 0;
}

/* A reference frame from the executor: the reply it names in the up ring, checked (1 with
 * *frame, *len, *end), or 0 when it is not a frame of this ring in order. Supervisor. */
static int ring_up(executor *x, const uint8_t *ref, uint8_t **frame, size_t *len, uint64_t *end) {
    mproc__exec_rings *r = x->rings;
    uint8_t *f = r ? mproc__ring_resolve(&r->p.up, ref, &r->last_end, len) : NULL;
    if (!f) return 0;
    *end = r->last_end;
    *frame = f;
    return 1;
}

/* A frame received straight into x's down ring: its reference, to be sent. */
static qitem *ring_item(uint64_t pos, size_t len) {
    qitem *q = calloc(1, sizeof *q);
    if (!q) mproc__mpi_fatal("worker rank %d: out of memory", mproc__mpi.rank);
    mproc__ring_ref_encode(q->ref, pos, len);
    q->frame = q->ref;
    q->len = sizeof q->ref;
    return q;
}

/* The frame being received into a down ring (mproc__exec_home), until mproc__exec_take hands it
 * on. One at a time: only the main thread's receive homes frames, and its frame goes straight
 * to exec_take, so no frame for the same executor comes between the room taken and the
 * reference sent, and the references stay in the ring's order. */
static struct {
    uint8_t *at;
    uint64_t pos;
    size_t len;
    const executor *x;
    mproc__exec_rings *rings; /* pinned meanwhile: the supervisor may retire them */
} homed;

/* mproc__mpi_home's place; MPI lock held. */
static uint8_t *home_place(void *ctx, const uint8_t *first, size_t first_len, size_t want) {
    (void)ctx;
    uint16_t kind = mproc__hdr_kind(first);
    uint64_t e = mproc__hdr_id(first) >> MPROC__EXEC_ID_SHIFT;
    if (first_len < MPROC__WIRE_HDR_SIZE || (kind != MPROC__FRAME_TASK && kind != MPROC__FRAME_BATCH) ||
        e >= (uint64_t)ex.k || homed.at || want > UINT32_MAX)
        return NULL;
    /* Never wait for mu with the MPI lock held: spawn_locked takes them the other way. */
    if (pthread_mutex_trylock(&ex.mu) != 0) return NULL;
    executor *x = &ex.x[e];
    uint8_t *at = NULL;
    if (x->rings && x->fd >= 0 && !x->in_head && !x->restarting)
        at = mproc__ring_reserve(&x->rings->p.down, want, &homed.pos);
    if (at) {
        homed.at = at;
        homed.len = want;
        homed.x = x;
        homed.rings = x->rings;
        mproc__exec_rings_pin(x->rings);
    }
    pthread_mutex_unlock(&ex.mu);
    return at;
}

/* mproc__mpi_home's drop: the frame never came whole (the rank ends on it). MPI lock held. */
static void home_drop(void *ctx) {
    (void)ctx;
    mproc__exec_rings_unpin(homed.rings);
    homed.at = NULL;
}

static const mproc__mpi_home home = {home_place, home_drop, NULL};

const mproc__mpi_home *mproc__exec_home(void) { return ex.started && ex.ring_size ? &home : NULL; }

/* ---- to the master ---------------------------------------------------------------------- */

static void send_master_hdr(uint16_t kind, uint64_t id, uint32_t arg) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_hdr(0, kind, id, arg, ex.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

/* A reply goes to the master with the executor's index in its id's top byte, so the master
 * knows which worker answered (executor.h); index 0 leaves the frame as it is. lent: the frame
 * is in x's up ring, ending at ring_end (else malloc'd, taken over). */
static void forward_to_master(const executor *x, uint8_t *frame, size_t len, int lent, uint64_t ring_end) {
    if (x->index)
        mproc__put_u64(frame + 8, (mproc__hdr_id(frame) & MPROC__EXEC_ID_MASK) | ((uint64_t)x->index << MPROC__EXEC_ID_SHIFT));
    pthread_mutex_lock(&mproc__mpi.lock);
    int rc;
    if (lent) {
        mproc__exec_rings *r = x->rings;
        rc = mproc__mpi_send_lent(0, frame, len, mproc__exec_rings_given_back, r,
                                   mproc__exec_rings_lend(r, ring_end), ex.sink);
    } else {
        rc = mproc__mpi_send_owned(0, frame, len, ex.sink);
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    if (rc < 0) mproc__mpi_fatal("worker rank %d: cannot send a result: %s", mproc__mpi.rank, mproc_last_error());
}

/* EXEC_DIED (executor.h). */
static void send_died(const executor *x, uint32_t gen, uint32_t unanswered, int code, pid_t pid, uint64_t taken,
                      const char *why) {
    size_t wl = strlen(why);
    uint8_t f[MPROC__WIRE_HDR_SIZE + MPROC__EXEC_DIED_MIN];
    mproc__hdr_encode(f, MPROC__FRAME_EXEC_DIED, gen, (uint32_t)(MPROC__EXEC_DIED_MIN + wl), unanswered);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE, (uint32_t)code);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 4, (uint32_t)pid);
    mproc__put_u64(f + MPROC__WIRE_HDR_SIZE + 8, taken);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 16, (uint32_t)x->index);
    struct iovec iov[2] = {{f, sizeof f}, {(void *)why, wl}};
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_frame(0, iov, 2, ex.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

/* ---- spawning and reaping --------------------------------------------------------------- */

/* Starts x's next generation; mu held. 0 or an error (then it has no executor alive). */
static int spawn_locked(executor *x) {
    char name[48];
    snprintf(name, sizeof name, "Worker-rank-%d", mproc__mpi.rank);
    if (ex.k > 1) snprintf(name, sizeof name, "Worker-rank-%d.%d", mproc__mpi.rank, x->index);
    int fd = -1;
    pid_t pid = 0;
    mproc__exec_rings *rings = NULL;
    int rc = mproc__exec_spawn(x->index, ex.ident_base + x->index, name, ex.ring_size, &fd, &pid, &rings);
    x->gen++; /* a failed start too: the generation the master now expects is the one that failed */
    if (rc < 0) return rc;
    x->rings = rings;
    x->down_sent = x->down_seq = x->up_taken = 0;
    atomic_store(&x->watch_mail, rings && mproc__mail_on(rings->p.up.mail) ? rings->p.up.mail : NULL);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    x->fd = fd;
    x->pid = pid;
    x->given = x->answered = 0;
    atomic_store(&x->due, 0);
    x->retiring = 0;
    mproc__reader_reset(&x->reader);
    return 0;
}

/* x's socket ended (cause: NULL for a plain EOF, else why it was not trusted): the master hears
 * of it with everything it needs to blame the right task. Supervisor, mu not held. */
static void executor_ended(executor *x, const char *cause) {
    pthread_mutex_lock(&ex.mu);
    pid_t pid = x->pid;
    uint32_t gen = x->gen, unanswered = x->given - x->answered;
    int retiring = x->retiring;
    mproc__fork_untrack_fd(x->fd);
    close(x->fd);
    x->fd = -1;
    x->pid = 0;
    mproc__exec_rings *rings = x->rings;
    x->rings = NULL;
    atomic_store(&x->watch_mail, NULL);
    qitem *q;
    while ((q = pop(&x->out_head, &x->out_tail))) free_item(q); /* counted in `given`: unanswered */
    pthread_mutex_unlock(&ex.mu);
    mproc__exec_rings_retire(rings);
    if (cause) kill(pid, SIGKILL); /* garbage on the wire: the executor is not to be trusted */
    int status = 0;
    char how[96] = "exit status unknown";
    int code = 255;
    if (mproc__exec_reap(pid, REAP_GRACE, &status)) {
        mproc__describe_exit(status, how, sizeof how);
        code = mproc__exitcode(status);
    }
    mproc__reader_reset(&x->reader);
    free(x->held); /* a reply of the ended executor: its task is unanswered */
    x->held = NULL;
    if (retiring && unanswered == 0) return;
    char why[400];
    snprintf(why, sizeof why, "%.150s%s%s on rank %d (host %s)", cause ? cause : "", cause ? "; " : "", how,
             mproc__mpi.rank, ex.host);
    mproc__taken_slot *slot = mproc__fserver_slot(x->index);
    send_died(x, gen, unanswered, code, pid, slot ? atomic_load(&slot->id) : MPROC__TAKEN_NONE, why);
}

/* ---- writing to the executor ------------------------------------------------------------ */

/* Writes what it can of x's out queue; mu held. 0, or -1 when the socket is gone (its EOF
 * follows on the read side). */
static int flush_out_locked(executor *x) {
    while (x->out_head && x->fd >= 0) {
        qitem *q = x->out_head;
        ssize_t w = send(x->fd, q->frame + q->off, q->len - q->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        q->off += (size_t)w;
        if (q->off < q->len) continue;
        pop(&x->out_head, &x->out_tail);
        free_item(q);
    }
    return 0;
}

/* Queues bytes for x's socket and writes what it can; mu held. counted: a frame (a WAKE is not). */
static void queue_out_locked(executor *x, qitem *q, int counted) {
    if (counted) {
        x->down_sent++;
        if (x->rings) mproc__mail_count(x->rings->p.down.mail, x->down_sent);
    }
    push(&x->out_head, &x->out_tail, q);
    if (flush_out_locked(x) == 0 && x->out_head) wake_supervisor(); /* it watches for room */
}

/* Posts q's frame in x's down mailbox when the executor is awake for it and nothing is queued
 * ahead (frame_mailbox.h): 1 (q freed), or 0 (it goes by socket). mu held. */
static int mail_down_locked(executor *x, qitem *q) {
    mproc__exec_rings *r = x->rings;
    if (!r || x->out_head || x->fd < 0 || !mproc__mail_ready(r->p.down.mail, x->down_seq)) return 0;
    uint64_t pos;
    size_t len;
    if (q->frame == q->ref) { /* received into the ring already */
        pos = mproc__hdr_id(q->ref);
        len = mproc__hdr_arg(q->ref);
    } else {
        struct iovec v = {q->frame, q->len};
        if (q->len < MPROC__WIRE_HDR_SIZE || q->len > UINT32_MAX || !mproc__ring_put(&r->p.down, &v, 1, q->len, &pos))
            return 0;
        len = q->len;
    }
    free_item(q);
    if (!mproc__mail_post(r->p.down.mail, x->down_sent++, pos, (uint32_t)len, &x->down_seq)) {
        uint8_t *wake = malloc(MPROC__WIRE_HDR_SIZE); /* it may have gone to sleep meanwhile */
        if (!wake) mproc__mpi_fatal("worker rank %d: out of memory", mproc__mpi.rank);
        mproc__hdr_encode(wake, MPROC__FRAME_WAKE, 0, 0, 0);
        queue_out_locked(x, new_item(wake, MPROC__WIRE_HDR_SIZE), 0);
    }
    return 1;
}

/* Gives x's live executor a frame (taken over); mu held. */
static void give_locked(executor *x, qitem *q) {
    x->given++;
    atomic_fetch_add(&x->due, 1);
    if (mail_down_locked(x, q)) return;
    ring_down(x, q);
    queue_out_locked(x, q, 1);
}

static void unpin(mproc__exec_rings *r) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__exec_rings_unpin(r);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

/* The executor a frame from the master is for; a bad index is the master's bug. */
static executor *executor_at(uint64_t e) {
    if (e >= (uint64_t)ex.k)
        mproc__mpi_fatal("worker rank %d: the master named executor %llu of %d", mproc__mpi.rank,
                         (unsigned long long)e, ex.k);
    return &ex.x[e];
}

/* While frames stream in, the main thread watches for x's reply itself (the relay watch, below),
 * and says so in x's up mailbox, so the executor posts its reply there; mu held. */
static void watch_if_streaming_locked(executor *x) {
    if (!mproc__mpi_streaming()) return;
    mproc__mailbox *mb = atomic_load(&x->watch_mail);
    if (mb) mproc__mail_awake(mb, 1);
    atomic_store(&x->relay_reads, 1);
}

void mproc__exec_take(uint8_t *frame, size_t len) {
    uint64_t id = mproc__hdr_id(frame);
    executor *x = executor_at(id >> MPROC__EXEC_ID_SHIFT);
    id &= MPROC__EXEC_ID_MASK;
    mproc__put_u64(frame + 8, id); /* the executor sees the core's own id */
    mproc__exec_rings *pinned = frame == homed.at ? homed.rings : NULL;
    homed.at = NULL;
    pthread_mutex_lock(&ex.mu);
    if (pinned) {
        /* Only this thread queues frames, so nothing can be queued ahead of this one now; but the
         * executor may have ended meanwhile: then the frame is answered as dropped, as below. */
        int live = homed.x == x && x->rings == pinned && x->fd >= 0 && !x->in_head && !x->restarting;
        if (live) {
            give_locked(x, ring_item(homed.pos, len));
            watch_if_streaming_locked(x);
        }
        pthread_mutex_unlock(&ex.mu);
        unpin(pinned);
        if (!live) send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
        return;
    }
    if (x->in_head || x->restarting) { /* a RESTART (or frames) ahead: in order, by the supervisor */
        push(&x->in_head, &x->in_tail, new_item(frame, len));
        pthread_mutex_unlock(&ex.mu);
        wake_supervisor();
        return;
    }
    if (x->fd < 0) { /* no executor: the frame is answered as dropped; its task is requeued */
        pthread_mutex_unlock(&ex.mu);
        free(frame);
        send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
        return;
    }
    give_locked(x, new_item(frame, len));
    watch_if_streaming_locked(x);
    pthread_mutex_unlock(&ex.mu);
}

void mproc__exec_kill(uint64_t e) {
    int queued = 0;
    pthread_mutex_lock(&ex.mu);
    for (int i = 0; i < ex.k; i++) {
        executor *x = &ex.x[i];
        if (e != MPROC__EXEC_ALL && e != (uint64_t)i) continue;
        if (x->in_head || x->restarting) { /* meant for what comes after the queued RESTART */
            push(&x->in_head, &x->in_tail, new_item(NULL, 2));
            queued = 1;
        } else if (x->fd >= 0 && x->pid > 0) {
            kill(x->pid, SIGKILL); /* its EOF tells the supervisor */
        }
    }
    pthread_mutex_unlock(&ex.mu);
    if (queued) wake_supervisor();
}

void mproc__exec_restart(uint64_t e) {
    executor *x = executor_at(e);
    pthread_mutex_lock(&ex.mu);
    push(&x->in_head, &x->in_tail, new_item(NULL, 0));
    pthread_mutex_unlock(&ex.mu);
    wake_supervisor();
}

int mproc__exec_count(void) { return ex.k; }

long mproc__exec_pid(int e) {
    pthread_mutex_lock(&ex.mu);
    long pid = e >= 0 && e < ex.k ? ex.x[e].pid : 0;
    pthread_mutex_unlock(&ex.mu);
    return pid;
}

/* ---- the supervisor --------------------------------------------------------------------- */


/* pump_replies by the main thread: an error or the executor's end is left to the supervisor
 * (the reader keeps returning it), so that the main thread never waits to reap. */
#define HAND_BACK (-2)

static void relay_hand_all_back(void);

/* Frames (or WAKEs) one pump takes at most before it returns: an executor that floods its rank
 * cannot hold the thread that reads it (the rest waits in the reader for its next pump). */
#define PUMP_MAX 64
#define PUMP_MORE 1

/* The next frame x's executor sent, from its mailbox (the reference then in mref) or its
 * socket (malloc'd): 1 with *f and *len; 0 when there is none now; -1 when the executor ended
 * (reported), or HAND_BACK (by_relay only). read_mu held. */
static int next_reply(executor *x, int by_relay, uint8_t *mref, uint8_t **f, size_t *len) {
    if (x->held) {
        *f = x->held;
        *len = x->held_len;
        x->held = NULL;
        x->up_taken++;
        return 1;
    }
    for (int wakes = 0; wakes < PUMP_MAX; wakes++) {
        mproc__mailbox *mb = x->rings && mproc__mail_on(x->rings->p.up.mail) ? x->rings->p.up.mail : NULL;
        int more = mb && mproc__mail_more(mb, x->up_taken); /* before the mailbox: frame_mailbox.h */
        uint64_t pos;
        uint32_t n;
        if (mb && mproc__mail_take(mb, x->up_taken, &pos, &n)) {
            x->up_taken++;
            mproc__ring_ref_encode(mref, pos, n);
            *f = mref;
            *len = MPROC__WIRE_HDR_SIZE;
            return 1;
        }
        /* The watch skips the socket while the executor says it sent nothing more, but looks
         * now and then all the same: an executor's end shows only there. */
        if (by_relay && mb && !more && !mproc__reader_pending(&x->reader) && ++x->quiet_looks % 32 != 0) return 0;
        int rc = mproc__reader_next(&x->reader, x->fd, f, len);
        if (rc == 0) return 0;
        if (rc < 0 && by_relay) return HAND_BACK;
        if (rc < 0 && rc != MPROC_EOF) {
            char cause[200];
            snprintf(cause, sizeof cause, "%s", mproc_last_error());
            executor_ended(x, cause);
            return -1;
        }
        if (rc == MPROC_EOF) {
            executor_ended(x, NULL);
            return -1;
        }
        if (mproc__hdr_kind(*f) != MPROC__FRAME_WAKE) {
            /* Posted before this one was sent, after the look above? Then it comes first. */
            if (mb && mproc__mail_take(mb, x->up_taken, &pos, &n)) {
                x->held = *f;
                x->held_len = *len;
                mproc__ring_ref_encode(mref, pos, n);
                *f = mref;
                *len = MPROC__WIRE_HDR_SIZE;
            }
            x->up_taken++;
            return 1;
        }
        free(*f); /* a WAKE: look in the mailbox again */
    }
    return 0; /* a flood of WAKEs: the caller comes back (the reader still holds the rest) */
}

/* Reads the whole frames x's executor has sent (PUMP_MAX at most) and forwards its replies;
 * read_mu held. Returns 0, PUMP_MORE when it stopped at PUMP_MAX (more may wait where poll()
 * does not see it: the mailbox, the reader), -1 when the executor ended (reported), or
 * HAND_BACK (by_relay only). */
static int pump_replies(executor *x, int by_relay) {
    uint8_t mref[MPROC__WIRE_HDR_SIZE];
    for (int taken = 0; taken < PUMP_MAX; taken++) {
        uint8_t *f;
        size_t len;
        int rc = next_reply(x, by_relay, mref, &f, &len);
        if (rc <= 0) return rc;
        uint16_t kind = mproc__hdr_kind(f);
        int lent = 0;
        uint64_t end = 0;
        if (kind == MPROC__FRAME_RING) { /* the reply is in the up ring */
            uint8_t *ref = f;
            lent = ring_up(x, ref, &f, &len, &end);
            if (ref != mref) free(ref);
            if (!lent) {
                if (by_relay) relay_hand_all_back(); /* nobody left unwatched while this one is reaped */
                executor_ended(x, "it sent a reference to no frame of its ring");
                return -1;
            }
            kind = mproc__hdr_kind(f);
        }
        /* A HELLO, only as a generation's first frame: the same program, forked from us, nothing
         * to check. In the ring, it is released with the next reply released after it. */
        if (kind == MPROC__FRAME_HELLO && x->up_taken == 1) {
            if (!lent) free(f);
            continue;
        }
        /* A frame left in the ring unforwarded is never released: the executor ends anyway. */
        if (kind != MPROC__FRAME_RESULT && kind != MPROC__FRAME_INIT_RESULT && kind != MPROC__FRAME_BATCH) {
            if (!lent) free(f);
            if (by_relay) relay_hand_all_back(); /* nobody left unwatched while this one is reaped */
            executor_ended(x, "it sent a frame of an unexpected kind");
            return -1;
        }
        pthread_mutex_lock(&ex.mu);
        int extra = x->answered == x->given; /* a reply to nothing it was given */
        if (!extra) {
            x->answered++;
            atomic_fetch_sub(&x->due, 1);
        }
        pthread_mutex_unlock(&ex.mu);
        if (extra) {
            if (!lent) free(f);
            if (by_relay) relay_hand_all_back();
            executor_ended(x, "it answered a frame it was not given");
            return -1;
        }
        forward_to_master(x, f, len, lent, end);
    }
    return PUMP_MORE;
}

/* ---- the relay watch ---------------------------------------------------------------------
 *
 * While the master's frames stream in (a loop of blocking calls, a map of small chunks), the
 * main thread stays awake for the next one (wait.c yield-polls), and the reply to the frame it
 * just handed on is due within microseconds. Then the main thread reads the executor's replies
 * itself between its looks at MPI, and the supervisor leaves that socket alone: one thread
 * awake in the rank instead of two woken in turn, a wake-up less per frame. The main thread
 * takes the watch only while awake and hands every executor back before it sleeps
 * (mproc__mpi_on_sleep), so a reply never waits for a sleeper; an error or an executor's end
 * is handed back too (the supervisor reaps and reports it, as before).
 * ------------------------------------------------------------------------------------------- */

/* x back to the supervisor: its executor posts no more in the mailbox without a WAKE. x's rings
 * are alive: the caller holds x's read_mu or the MPI lock (rings are freed under it). */
static int unwatch(executor *x) {
    if (!atomic_exchange(&x->relay_reads, 0)) return 0;
    mproc__mailbox *mb = atomic_load(&x->watch_mail);
    if (mb) mproc__mail_awake(mb, 0);
    return 1;
}

/* Every executor back to the supervisor (wakes it to look at their sockets). Lock-free: called
 * by the main thread about to sleep, MPI lock held. */
void mproc__exec_relay_sleeps(void) {
    int any = 0;
    for (int i = 0; i < ex.k; i++) any |= unwatch(&ex.x[i]);
    if (any) wake_supervisor();
}

/* The same without the MPI lock held (read_mu may be: that order is the forwarder's too). */
static void relay_hand_all_back(void) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__exec_relay_sleeps();
    pthread_mutex_unlock(&mproc__mpi.lock);
}

int mproc__exec_relay_pump(void) {
    int due = 0;
    for (int i = 0; i < ex.k; i++) {
        executor *x = &ex.x[i];
        if (!atomic_load_explicit(&x->relay_reads, memory_order_relaxed)) continue;
        due |= atomic_load_explicit(&x->due, memory_order_relaxed) > 0;
        if (pthread_mutex_trylock(&x->read_mu) != 0) continue; /* the supervisor has it */
        if (x->fd >= 0 && atomic_load(&x->relay_reads) && pump_replies(x, 1) == HAND_BACK && unwatch(x))
            wake_supervisor();
        pthread_mutex_unlock(&x->read_mu);
    }
    return due;
}

/* Asks x's live executor to leave and waits (bounded) for its end; then starts the next,
 * unless this is the rank's end. Other executors' replies wait meanwhile (a retirement takes
 * milliseconds unless a task holds the executor). */
static void restart_locked(executor *x, int last);

static void restart(executor *x, int last) {
    pthread_mutex_lock(&x->read_mu); /* the main thread keeps off its socket meanwhile */
    restart_locked(x, last);
    pthread_mutex_unlock(&x->read_mu);
}

/* read_mu held. */
static void restart_locked(executor *x, int last) {
    /* This thread reads x until it has gone, sleeping in poll(): replies must come by socket. */
    mproc__mailbox *mb = atomic_load(&x->watch_mail);
    if (mb) mproc__mail_awake(mb, 0);
    pthread_mutex_lock(&ex.mu);
    int live = x->fd >= 0;
    if (live) {
        uint8_t *f = malloc(MPROC__WIRE_HDR_SIZE);
        if (f) {
            mproc__hdr_encode(f, MPROC__FRAME_SHUTDOWN, 0, 0, 0);
            x->down_sent++;
            if (x->rings) mproc__mail_count(x->rings->p.down.mail, x->down_sent);
            push(&x->out_head, &x->out_tail, new_item(f, MPROC__WIRE_HDR_SIZE));
        }
        x->retiring = 1;
        if (!f) kill(x->pid, SIGKILL);
    }
    pthread_mutex_unlock(&ex.mu);
    double deadline = mproc__deadline(RETIRE_GRACE);
    int killed = 0;
    while (live) {
        pthread_mutex_lock(&ex.mu);
        int want_out = x->out_head != NULL;
        if (want_out && flush_out_locked(x) < 0) want_out = 0;
        want_out = want_out && x->out_head != NULL;
        pthread_mutex_unlock(&ex.mu);
        int pumped = pump_replies(x, 0);
        if (pumped < 0) break;
        double left = mproc__remaining(deadline);
        if (left <= 0) {
            if (killed) { /* a SIGKILLed process whose socket never closes: give up on it */
                executor_ended(x, "it did not end after SIGKILL");
                break;
            }
            kill(x->pid, SIGKILL);
            killed = 1;
            deadline = mproc__deadline(REAP_GRACE);
            left = REAP_GRACE;
        }
        struct pollfd p = {x->fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0};
        poll(&p, 1, pumped == PUMP_MORE ? 0 : (int)(left * 1000) + 1);
    }
    if (last) return;
    pthread_mutex_lock(&ex.mu);
    int rc = spawn_locked(x);
    uint32_t gen = x->gen;
    long pid = x->pid;
    pthread_mutex_unlock(&ex.mu);
    if (rc < 0) {
        /* A death with pid 0, of the generation the master expects: this executor's slot can
         * no longer run tasks, and the pool stops counting on it (routing.c). */
        char why[400];
        snprintf(why, sizeof why, "no executor could be started on rank %d (host %s): %.200s", mproc__mpi.rank,
                 ex.host, mproc_last_error());
        send_died(x, gen, 0, 255, 0, MPROC__TAKEN_NONE, why);
        return;
    }
    send_master_hdr(MPROC__FRAME_EXEC_STARTED, gen | ((uint64_t)x->index << 32), (uint32_t)pid);
}

/* Works through x's inbox in order: frames go to the executor, RESTARTs restart it. */
static void work_inbox(executor *x) {
    for (;;) {
        pthread_mutex_lock(&ex.mu);
        qitem *q = pop(&x->in_head, &x->in_tail);
        if (!q) {
            pthread_mutex_unlock(&ex.mu);
            return;
        }
        if (!q->frame && q->len == 2) { /* a KILL queued behind a RESTART */
            if (x->fd >= 0 && x->pid > 0) kill(x->pid, SIGKILL);
            pthread_mutex_unlock(&ex.mu);
            free(q);
            continue;
        }
        if (!q->frame) {
            int last = q->len == 1;
            x->restarting = 1;
            pthread_mutex_unlock(&ex.mu);
            free(q);
            restart(x, last);
            pthread_mutex_lock(&ex.mu);
            x->restarting = 0;
            if (last) x->done = 1;
            pthread_mutex_unlock(&ex.mu);
            continue;
        }
        if (x->fd >= 0) {
            give_locked(x, q);
            pthread_mutex_unlock(&ex.mu);
            continue;
        }
        pthread_mutex_unlock(&ex.mu);
        uint64_t id = mproc__hdr_id(q->frame);
        free_item(q);
        send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
    }
}

static void *supervise(void *arg) {
    (void)arg;
    struct pollfd *p = calloc((size_t)ex.k + 1, sizeof *p);
    int *fds = calloc((size_t)ex.k, sizeof *fds);
    char *pumped_max = calloc((size_t)ex.k, 1); /* its last pump stopped at PUMP_MAX */
    int more = 0;
    if (!p || !fds || !pumped_max) mproc__mpi_fatal("worker rank %d: out of memory", mproc__mpi.rank);
    for (;;) {
        pthread_mutex_lock(&ex.mu);
        int done = 0;
        p[0] = (struct pollfd){ex.efd, POLLIN, 0};
        for (int i = 0; i < ex.k; i++) {
            executor *x = &ex.x[i];
            done += x->done;
            fds[i] = x->fd;
            short want = (short)((atomic_load(&x->relay_reads) ? 0 : POLLIN) | (x->out_head ? POLLOUT : 0));
            p[i + 1] = (struct pollfd){want ? x->fd : -1, want, 0}; /* -1: ignored */
        }
        pthread_mutex_unlock(&ex.mu);
        if (done == ex.k) break;
        int r = poll(p, (nfds_t)ex.k + 1, more ? 0 : -1);
        more = 0;
        if (r < 0 && errno != EINTR) mproc__mpi_fatal("worker rank %d: poll: %s", mproc__mpi.rank, strerror(errno));
        if (r <= 0) continue;
        int woken = p[0].revents != 0;
        if (woken) {
            uint64_t v;
            while (read(ex.efd, &v, sizeof v) < 0 && errno == EINTR) {
            }
        }
        for (int i = 0; i < ex.k; i++) {
            executor *x = &ex.x[i];
            if (fds[i] < 0 || fds[i] != x->fd) continue; /* restarted meanwhile: look again */
            if (p[i + 1].revents & POLLOUT) {
                pthread_mutex_lock(&ex.mu);
                flush_out_locked(x);
                pthread_mutex_unlock(&ex.mu);
            }
            /* Woken: the main thread may have handed x back with a frame or its end already
             * read into the reader, which no poll() would show. */
            if ((woken || pumped_max[i] || (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) &&
                !atomic_load(&x->relay_reads)) {
                pthread_mutex_lock(&x->read_mu);
                pumped_max[i] = x->fd >= 0 && pump_replies(x, 0) == PUMP_MORE;
                more |= pumped_max[i];
                pthread_mutex_unlock(&x->read_mu);
            }
        }
        for (int i = 0; i < ex.k; i++) work_inbox(&ex.x[i]);
    }
    free(p);
    free(fds);
    free(pumped_max);
    return NULL;
}

int mproc__exec_start(int k, int ident_base, mproc__mpi_sink sink) {
    if (k < 1 || k > MPROC__FSERVER_MAX_EXECUTORS)
        return mproc__error(MPROC_EINVAL, "%d executors per rank: want 1..%d", k, MPROC__FSERVER_MAX_EXECUTORS);
    ex.sink = sink;
    ex.ident_base = ident_base;
    int rc = mproc__ring_size_wanted("MPROC_MPI_EXEC_RING", k, &ex.ring_size);
    if (rc < 0) return rc;
    const char *mail = getenv("MPROC_MPI_EXEC_MAILBOX"); /* read by exec_rings.c */
    if (mail && strcmp(mail, "0") != 0 && strcmp(mail, "1") != 0)
        return mproc__error(MPROC_EINVAL, "MPROC_MPI_EXEC_MAILBOX=%s: want 0 (off) or 1 (on, the default)", mail);
    if (gethostname(ex.host, sizeof ex.host) < 0) snprintf(ex.host, sizeof ex.host, "?");
    ex.host[sizeof ex.host - 1] = '\0';
    ex.x = calloc((size_t)k, sizeof *ex.x);
    if (!ex.x) return mproc__error(MPROC_ENOMEM, "no memory for %d executors", k);
    ex.k = k;
    ex.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ex.efd < 0) return mproc__error(MPROC_ESYS, "eventfd: %s", strerror(errno));
    mproc__fork_track_fd(ex.efd);
    pthread_mutex_lock(&ex.mu);
    for (int i = 0; i < k && rc == 0; i++) {
        ex.x[i].index = i;
        ex.x[i].fd = -1;
        pthread_mutex_init(&ex.x[i].read_mu, NULL);
        rc = spawn_locked(&ex.x[i]);
    }
    pthread_mutex_unlock(&ex.mu);
    if (rc < 0) return rc;
    if (pthread_create(&ex.thread, NULL, supervise, NULL) != 0)
        return mproc__error(MPROC_ESYS, "cannot start the executor supervisor thread");
    ex.started = 1;
    return 0;
}

void mproc__exec_stop(void) {
    if (!ex.started) return;
    relay_hand_all_back(); /* the main thread watches no more */
    /* A last restart without a successor, after whatever is queued: each executor leaves on
     * SHUTDOWN (killed if a task keeps it past the grace), then the supervisor does. */
    pthread_mutex_lock(&ex.mu);
    for (int i = 0; i < ex.k; i++) push(&ex.x[i].in_head, &ex.x[i].in_tail, new_item(NULL, 1));
    pthread_mutex_unlock(&ex.mu);
    wake_supervisor();
    pthread_join(ex.thread, NULL);
    ex.started = 0;
    mproc__fork_untrack_fd(ex.efd);
    close(ex.efd);
    ex.efd = -1;
}
