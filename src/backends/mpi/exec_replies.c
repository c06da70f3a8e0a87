/* exec_replies.c - a worker rank's executors' replies, read from their mailboxes, rings and
 * sockets and forwarded to the master, by the supervisor (executor.c) or, while frames stream
 * in or a reply is due soon, by the rank's main thread itself (the relay watch, below). A
 * reply that breaks the book-keeping (a frame of an unexpected kind, an answer to nothing
 * given) ends its executor.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/frame_mailbox.h"
#include "backends/frame_ring.h"
#include "backends/mpi/exec_rings.h"
#include "backends/mpi/exec_state.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/world.h"
#include "common/common.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"

/* A reference frame from the executor: the reply it names in the up ring, checked (1 with
 * *frame, *len, *end), or 0 when it is not a frame of this ring in order. Supervisor. */
static int ring_up(mproc__executor *x, const uint8_t *ref, uint8_t **frame, size_t *len, uint64_t *end) {
    mproc__exec_rings *r = x->rings;
    uint8_t *f = r ? mproc__ring_resolve(&r->p.up, ref, &r->last_end, len) : NULL;
    if (!f) return 0;
    *end = r->last_end;
    *frame = f;
    return 1;
}

/* A reply goes to the master with the executor's index in its id's top byte, so the master
 * knows which worker answered (executor.h); index 0 leaves the frame as it is. lent: the frame
 * is in x's up ring, ending at ring_end (else malloc'd, taken over). */
static void forward_to_master(const mproc__executor *x, uint8_t *frame, size_t len, int lent, uint64_t ring_end) {
    if (x->index)
        mproc__put_u64(frame + 8,
                       (mproc__hdr_id(frame) & MPROC__EXEC_ID_MASK) | ((uint64_t)x->index << MPROC__EXEC_ID_SHIFT));
    pthread_mutex_lock(&mproc__mpi.lock);
    int rc;
    if (lent) {
        mproc__exec_rings *r = x->rings;
        rc = mproc__mpi_send_lent(0, frame, len, mproc__exec_rings_given_back, r,
                                   mproc__exec_rings_lend(r, ring_end), mproc__execs.sink);
    } else {
        rc = mproc__mpi_send_owned(0, frame, len, mproc__execs.sink);
    }
    mproc__execs.forwarded++;
    pthread_mutex_unlock(&mproc__mpi.lock);
    if (rc < 0) mproc__mpi_fatal("worker rank %d: cannot send a result: %s", mproc__mpi.rank, mproc_last_error());
}

/* x answered the frame it was on (mu held): the mean frame time learns from it, and the next
 * frame, if one is due, began now. A frame's time is capped at a second, so one long task does
 * not keep the mean above the poll limit for long after it. */
static void note_answered(mproc__executor *x) {
    double now = mproc__now(), took = now - x->busy_since;
    if (took > 1.0) took = 1.0;
    x->service_mean = x->service_mean > 0 ? x->service_mean + (took - x->service_mean) / 4 : took;
    if (atomic_fetch_sub(&x->due, 1) > 1) mproc__exec_note_busy(x, now);
    else atomic_store_explicit(&x->reply_by, 0, memory_order_relaxed);
}

/* Frames (or WAKEs) one pump takes at most before it returns: an executor that floods its rank
 * cannot hold the thread that reads it (the rest waits in the reader for its next pump). */
#define PUMP_MAX 64

/* The next frame x's executor sent, from its mailbox (the reference then in mref) or its
 * socket (malloc'd): 1 with *f and *len; 0 when there is none now; -1 when the executor ended
 * (reported), or MPROC__EXEC_HAND_BACK (by_relay only). read_mu held. */
static int next_reply(mproc__executor *x, int by_relay, uint8_t *mref, uint8_t **f, size_t *len) {
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
        if (x->held) { /* the next reply: none earlier was in the mailbox */
            *f = x->held;
            *len = x->held_len;
            x->held = NULL;
            x->up_taken++;
            return 1;
        }
        /* The watch skips the socket while the executor says it sent nothing more, but looks
         * now and then all the same: an executor's end shows only there. */
        if (by_relay && mb && !more && !mproc__reader_pending(&x->reader) && ++x->quiet_looks % 32 != 0) return 0;
        int rc = mproc__reader_next(&x->reader, x->fd, f, len);
        if (rc == 0) return 0;
        if (rc < 0 && by_relay) return MPROC__EXEC_HAND_BACK;
        if (rc < 0 && rc != MPROC_EOF) {
            char cause[200];
            snprintf(cause, sizeof cause, "%s", mproc_last_error());
            mproc__exec_ended(x, cause);
            return -1;
        }
        if (rc == MPROC_EOF) {
            mproc__exec_ended(x, NULL);
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
 * read_mu held. Returns 0, MPROC__EXEC_PUMP_MORE when it stopped at PUMP_MAX (more may wait where poll()
 * does not see it: the mailbox, the reader), -1 when the executor ended (reported), or
 * MPROC__EXEC_HAND_BACK (by_relay only). */
int mproc__exec_pump_replies(mproc__executor *x, int by_relay) {
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
                if (by_relay) mproc__exec_relay_hand_all_back(); /* nobody left unwatched while this one is reaped */
                mproc__exec_ended(x, "it sent a reference to no frame of its ring");
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
            if (by_relay) mproc__exec_relay_hand_all_back(); /* nobody left unwatched while this one is reaped */
            mproc__exec_ended(x, "it sent a frame of an unexpected kind");
            return -1;
        }
        pthread_mutex_lock(&mproc__execs.mu);
        int extra = x->answered == x->given; /* a reply to nothing it was given */
        if (!extra) {
            x->answered++;
            note_answered(x);
        }
        pthread_mutex_unlock(&mproc__execs.mu);
        if (extra) {
            if (!lent) free(f);
            if (by_relay) mproc__exec_relay_hand_all_back();
            mproc__exec_ended(x, "it answered a frame it was not given");
            return -1;
        }
        forward_to_master(x, f, len, lent, end);
    }
    return MPROC__EXEC_PUMP_MORE;
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
 *
 * The same holds, frames streaming or not, while an executor the main thread handed a frame
 * to owes a reply due soon: its frames took it under MPROC__EXEC_REPLY_POLL_MAX_S on average
 * (exec_state.h). The main thread then polls for that reply (yielding its core at each look)
 * until twice that mean has passed, rather than sleeping: on a busy node a map's frames reach
 * a rank further apart than the stream rule's 100 us, and it slept once per chunk or two.
 * ------------------------------------------------------------------------------------------- */

/* x back to the supervisor: its executor posts no more in the mailbox without a WAKE. x's rings
 * are alive: the caller holds x's read_mu or the MPI lock (rings are freed under it). */
static int unwatch(mproc__executor *x) {
    if (!atomic_exchange(&x->relay_reads, 0)) return 0;
    mproc__mailbox *mb = atomic_load(&x->watch_mail);
    if (mb) mproc__mail_awake(mb, 0);
    return 1;
}

/* Every executor back to the supervisor (wakes it to look at their sockets). Lock-free: called
 * by the main thread about to sleep, MPI lock held. */
void mproc__exec_relay_sleeps(void) {
    int any = 0;
    for (int i = 0; i < mproc__execs.k; i++) any |= unwatch(&mproc__execs.x[i]);
    if (any) mproc__exec_wake_supervisor();
}

/* The same without the MPI lock held (read_mu may be: that order is the forwarder's too). */
void mproc__exec_relay_hand_all_back(void) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__exec_relay_sleeps();
    pthread_mutex_unlock(&mproc__mpi.lock);
}

int mproc__exec_relay_pump(double *poll_until) {
    int due = 0;
    *poll_until = 0;
    for (int i = 0; i < mproc__execs.k; i++) {
        mproc__executor *x = &mproc__execs.x[i];
        if (!atomic_load_explicit(&x->relay_reads, memory_order_relaxed)) continue;
        if (atomic_load_explicit(&x->due, memory_order_relaxed) > 0) {
            due = 1;
            double by = atomic_load_explicit(&x->reply_by, memory_order_relaxed);
            if (by > *poll_until) *poll_until = by;
        }
        if (pthread_mutex_trylock(&x->read_mu) != 0) continue; /* the supervisor has it */
        if (x->fd >= 0 && atomic_load(&x->relay_reads) && mproc__exec_pump_replies(x, 1) == MPROC__EXEC_HAND_BACK &&
            unwatch(x))
            mproc__exec_wake_supervisor();
        pthread_mutex_unlock(&x->read_mu);
    }
    return due;
}

