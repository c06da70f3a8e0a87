/* exec_give.c - frames from the master to a worker rank's executors (executor.h's
 * mproc__exec_take, _skip, _kill, _restart).
 *
 * Frames go to the executor in the order they came, across restarts: the main thread writes a
 * frame straight to the executor (its down mailbox, its down ring, its socket) when nothing is
 * queued ahead of it (the common case, no thread hand-off), else appends it to the inbox that
 * the supervisor (executor.c) works through in order (RESTART entries included). A big TASK or
 * BATCH is received from MPI straight into the executor's down ring (mproc__exec_home). When the
 * rank is idle it trims those rings (mproc__exec_trim_idle).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "backends/frame_mailbox.h"
#include "backends/frame_ring.h"
#include "backends/mpi/exec_rings.h"
#include "backends/mpi/exec_state.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/wait.h"
#include "backends/mpi/world.h"
#include "common/common.h"
#include "wire/wire.h"

/* ---- frame rings (exec_rings.h) ----------------------------------------------------------- */

/* Moves a frame for the executor into its down ring when it fits: q then carries only the
 * reference. mu held. */
static void ring_down(mproc__executor *x, mproc__exec_item *q) {
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

/* A frame received straight into x's down ring: its reference, to be sent. */
static mproc__exec_item *ring_item(uint64_t pos, size_t len) {
    mproc__exec_item *q = calloc(1, sizeof *q);
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
    const mproc__executor *x;
    mproc__exec_rings *rings; /* pinned meanwhile: the supervisor may retire them */
} homed;

/* mproc__mpi_home's place; MPI lock held. */
static uint8_t *home_place(void *ctx, const uint8_t *first, size_t first_len, size_t want) {
    (void)ctx;
    uint16_t kind = mproc__hdr_kind(first);
    uint64_t e = mproc__hdr_id(first) >> MPROC__EXEC_ID_SHIFT;
    if (first_len < MPROC__WIRE_HDR_SIZE || (kind != MPROC__FRAME_TASK && kind != MPROC__FRAME_BATCH) ||
        e >= (uint64_t)mproc__execs.k || homed.at || want > UINT32_MAX)
        return NULL;
    /* Never wait for mu with the MPI lock held: spawn_locked takes them the other way. */
    if (pthread_mutex_trylock(&mproc__execs.mu) != 0) return NULL;
    mproc__executor *x = &mproc__execs.x[e];
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
    pthread_mutex_unlock(&mproc__execs.mu);
    return at;
}

/* mproc__mpi_home's drop: the frame never came whole (the rank ends on it). MPI lock held. */
static void home_drop(void *ctx) {
    (void)ctx;
    mproc__exec_rings_unpin(homed.rings);
    homed.at = NULL;
}

static const mproc__mpi_home home = {home_place, home_drop, NULL};

const mproc__mpi_home *mproc__exec_home(void) { return mproc__execs.started && mproc__execs.ring_size ? &home : NULL; }
/* ---- writing to the executor ------------------------------------------------------------ */

/* Writes what it can of x's out queue; mu held. 0, or -1 when the socket is gone (its EOF
 * follows on the read side). */
int mproc__exec_flush_out_locked(mproc__executor *x) {
    while (x->out_head && x->fd >= 0) {
        mproc__exec_item *q = x->out_head;
        ssize_t w = send(x->fd, q->frame + q->off, q->len - q->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        q->off += (size_t)w;
        if (q->off < q->len) continue;
        mproc__exec_pop(&x->out_head, &x->out_tail);
        mproc__exec_item_free(q);
    }
    return 0;
}

/* Queues bytes for x's socket and writes what it can; mu held. counted: a frame (a WAKE is not). */
static void queue_out_locked(mproc__executor *x, mproc__exec_item *q, int counted) {
    if (counted) {
        x->down_sent++;
        if (x->rings) mproc__mail_count(x->rings->p.down.mail, x->down_sent);
    }
    mproc__exec_push(&x->out_head, &x->out_tail, q);
    if (mproc__exec_flush_out_locked(x) == 0 && x->out_head) mproc__exec_wake_supervisor(); /* it watches for room */
}

/* Posts q's frame in x's down mailbox when the executor is awake for it and nothing is queued
 * ahead (frame_mailbox.h): 1 (q freed), or 0 (it goes by socket). mu held. */
static int mail_down_locked(mproc__executor *x, mproc__exec_item *q) {
    mproc__exec_rings *r = x->rings;
    if (!r || x->out_head || x->fd < 0 || !mproc__mail_ready(r->p.down.mail, x->down_sent)) return 0;
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
    mproc__exec_item_free(q);
    if (!mproc__mail_post(r->p.down.mail, x->down_sent++, pos, (uint32_t)len)) {
        uint8_t *wake = malloc(MPROC__WIRE_HDR_SIZE); /* it may have gone to sleep meanwhile */
        if (!wake) mproc__mpi_fatal("worker rank %d: out of memory", mproc__mpi.rank);
        mproc__hdr_encode(wake, MPROC__FRAME_WAKE, 0, 0, 0);
        queue_out_locked(x, mproc__exec_item_new(wake, MPROC__WIRE_HDR_SIZE), 0);
    }
    return 1;
}

/* Gives x's live executor a frame (taken over); mu held. */
void mproc__exec_give_locked(mproc__executor *x, mproc__exec_item *q) {
    x->given++;
    if (atomic_fetch_add(&x->due, 1) == 0) mproc__exec_note_busy(x, mproc__now());
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
static mproc__executor *executor_at(uint64_t e) {
    if (e >= (uint64_t)mproc__execs.k)
        mproc__mpi_fatal("worker rank %d: the master named executor %llu of %d", mproc__mpi.rank,
                         (unsigned long long)e, mproc__execs.k);
    return &mproc__execs.x[e];
}

/* While frames stream in, or x's reply is due soon (its frames take it little time), the main
 * thread watches for x's reply itself (the relay watch, exec_replies.c), and says so in x's up
 * mailbox, so the executor posts its reply there; mu held. */
static void take_watch_if_due_locked(mproc__executor *x) {
    if (!mproc__mpi_streaming() && !(atomic_load_explicit(&x->reply_by, memory_order_relaxed) > mproc__now())) return;
    mproc__mailbox *mb = atomic_load(&x->watch_mail);
    if (mb) mproc__mail_awake(mb, 1);
    atomic_store(&x->relay_reads, 1);
}

void mproc__exec_take(uint8_t *frame, size_t len) {
    uint64_t id = mproc__hdr_id(frame);
    mproc__executor *x = executor_at(id >> MPROC__EXEC_ID_SHIFT);
    id &= MPROC__EXEC_ID_MASK;
    mproc__put_u64(frame + 8, id); /* the executor sees the core's own id */
    mproc__exec_rings *pinned = frame == homed.at ? homed.rings : NULL;
    homed.at = NULL;
    pthread_mutex_lock(&mproc__execs.mu);
    if (pinned) {
        /* Only this thread queues frames, so nothing can be queued ahead of this one now; but the
         * executor may have ended meanwhile: then the frame is answered as dropped, as below. */
        int live = homed.x == x && x->rings == pinned && x->fd >= 0 && !x->in_head && !x->restarting;
        if (live) {
            mproc__exec_give_locked(x, ring_item(homed.pos, len));
            take_watch_if_due_locked(x);
        }
        pthread_mutex_unlock(&mproc__execs.mu);
        unpin(pinned);
        if (!live) mproc__exec_send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
        return;
    }
    if (x->in_head || x->restarting) { /* a RESTART (or frames) ahead: in order, by the supervisor */
        mproc__exec_push(&x->in_head, &x->in_tail, mproc__exec_item_new(frame, len));
        pthread_mutex_unlock(&mproc__execs.mu);
        mproc__exec_wake_supervisor();
        return;
    }
    if (x->fd < 0) { /* no executor: the frame is answered as dropped; its task is requeued */
        pthread_mutex_unlock(&mproc__execs.mu);
        free(frame);
        mproc__exec_send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
        return;
    }
    mproc__exec_give_locked(x, mproc__exec_item_new(frame, len));
    take_watch_if_due_locked(x);
    pthread_mutex_unlock(&mproc__execs.mu);
}

/* Only the main thread writes skips; a respawn keeps them (socket_worker.h), so a skip for a
 * frame queued behind a RESTART holds for the executor that gets it. */
void mproc__exec_skip(uint64_t id) {
    mproc__executor *x = executor_at(id >> MPROC__EXEC_ID_SHIFT);
    mproc__taken_slot *slot = mproc__fserver_slot(x->index);
    if (slot) mproc__taken_slot_skip(slot, id & MPROC__EXEC_ID_MASK);
}

void mproc__exec_kill(uint64_t e) {
    int queued = 0;
    pthread_mutex_lock(&mproc__execs.mu);
    for (int i = 0; i < mproc__execs.k; i++) {
        mproc__executor *x = &mproc__execs.x[i];
        if (e != MPROC__EXEC_ALL && e != (uint64_t)i) continue;
        if (x->in_head || x->restarting) { /* meant for what comes after the queued RESTART */
            mproc__exec_push(&x->in_head, &x->in_tail, mproc__exec_item_new(NULL, 2));
            queued = 1;
            /* One being retired meanwhile (asked to leave, perhaps still in a task of the pool
             * now terminated) goes at once rather than when it finishes or its grace ends. */
            if (x->restarting && x->retiring && x->fd >= 0 && x->pid > 0) kill(x->pid, SIGKILL);
        } else if (x->fd >= 0 && x->pid > 0) {
            kill(x->pid, SIGKILL); /* its EOF tells the supervisor */
        }
    }
    pthread_mutex_unlock(&mproc__execs.mu);
    if (queued) mproc__exec_wake_supervisor();
}

void mproc__exec_restart(uint64_t e, int ident) {
    mproc__executor *x = executor_at(e);
    pthread_mutex_lock(&mproc__execs.mu);
    mproc__exec_item *q = mproc__exec_item_new(NULL, 0);
    /* Taken on when the RESTART is carried out: a generation started for an earlier RESTART
     * still queued (its pool stopped meanwhile) keeps that one's number. */
    q->ident = ident;
    mproc__exec_push(&x->in_head, &x->in_tail, q);
    pthread_mutex_unlock(&mproc__execs.mu);
    mproc__exec_wake_supervisor();
}

int mproc__exec_count(void) { return mproc__execs.k; }

long mproc__exec_pid(int e) {
    pthread_mutex_lock(&mproc__execs.mu);
    long pid = e >= 0 && e < mproc__execs.k ? mproc__execs.x[e].pid : 0;
    pthread_mutex_unlock(&mproc__execs.mu);
    return pid;
}


int mproc__exec_trim_idle(void) {
    int left = 0;
    pthread_mutex_lock(&mproc__execs.mu); /* the down rings' writer lock (ring_down, exec_home) */
    for (int i = 0; i < mproc__execs.k; i++) {
        mproc__executor *x = &mproc__execs.x[i];
        if (!x->rings || x->restarting) continue;
        left |= mproc__ring_trim_idle(&x->rings->p.down);
        /* Its up ring: the executor writes there only in answer to a frame given to it (under
         * mu, held here), so with none owed it is quiet; the rank trims it itself, where an MPI
         * that sent from those pages hears of it. Not released yet (MPI still sending): later. */
        if (x->fd >= 0 && atomic_load(&x->due) == 0) left |= mproc__ring_trim_quiet(&x->rings->p.up);
    }
    pthread_mutex_unlock(&mproc__execs.mu);
    return left;
}

int mproc__exec_replies_due(void) {
    for (int i = 0; i < mproc__execs.k; i++)
        if (atomic_load_explicit(&mproc__execs.x[i].due, memory_order_relaxed) > 0) return 1;
    return 0;
}

unsigned mproc__exec_forwarded(void) { return mproc__execs.forwarded; }
