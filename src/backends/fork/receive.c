/* receive.c - the fork backend's receiving side: frames from the workers by socket, by the
 * rings' mailboxes (no system call while both ends look) or as references into the up ring
 * (copied once, straight into the caller's array when the send said where), a socket frame
 * that overtook a posted one held back, events found while a send waited, and the wait itself
 * with its short spin for the reply to a lone frame. A worker whose socket closes or whose
 * frame does not decode becomes a DIED event (workers.c).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/fork/group.h"
#include "backends/frame_mailbox.h"
#include "common/common.h"
#include "wire/wire.h"

/* The kinds of a worker's answers. */
static int is_reply(uint16_t k) { return k == MPROC__FRAME_RESULT || k == MPROC__FRAME_BATCH || k == MPROC__FRAME_INIT_RESULT; }

/* A reply came from w: the round trip of a lone frame is timed. */
static void note_reply(mproc__group *g, fworker *w) {
    if (w->owed <= 0) return;
    w->owed--;
    if (--g->owed == 0 && g->sent_at > 0) {
        double took = mproc__now() - g->sent_at;
        g->reply_s = g->reply_s > 0 ? 0.75 * g->reply_s + 0.25 * took : took;
        g->sent_at = 0;
    }
}

/* Takes the home noted for frame id's reply, if any: 1 with *h. */
static int take_home(fworker *w, uint64_t id, reply_home *h) {
    for (int k = 0; k < w->nhomes; k++)
        if (w->homes[k].id == id) {
            *h = w->homes[k];
            w->homes[k] = w->homes[--w->nhomes];
            return 1;
        }
    return 0;
}

/* A reply in w's up ring (f, len bytes, checked): copied once, into its home when it has one
 * and every item came back with the expected size (the event then carries only its header and
 * prefix, ev->placed), else into a frame of its own. The ring space is released either way.
 * 0, or MPROC_ENOMEM. */
static int take_ring_reply(fworker *w, const uint8_t *f, size_t len, mproc__event *ev) {
    const size_t lead = MPROC__WIRE_HDR_SIZE + MPROC__WIRE_RESULT_PREFIX;
    reply_home h;
    int homed = mproc__hdr_kind(f) == MPROC__FRAME_RESULT && take_home(w, mproc__hdr_id(f), &h);
    /* Only what the frame itself holds is read: one too short for its prefix goes to the core
     * whole (which rejects it as malformed), never "placed" from bytes beyond it. */
    if (homed && len >= lead) {
        uint64_t count = mproc__get_u32(f + MPROC__WIRE_HDR_SIZE);
        uint64_t item = mproc__get_u32(f + MPROC__WIRE_HDR_SIZE + 4);
        homed = item != 0 && count * item == len - lead && len - lead == h.len;
    } else {
        homed = 0;
    }
    size_t keep = homed ? lead : len;
    uint8_t *own = malloc(keep);
    if (!own) return mproc__error(MPROC_ENOMEM, "no memory for a %zu-byte result", keep);
    memcpy(own, f, keep);
    if (homed) {
        memcpy(h.to, f + lead, h.len);
        mproc__put_u32(own + 16, MPROC__WIRE_RESULT_PREFIX);
    }
    mproc__ring_release_to(&w->rings.up, w->up_next);
    ev->frame = own;
    ev->frame_len = keep;
    ev->placed = homed;
    return 0;
}

/* A reference to a reply in worker i's up ring (from its socket or its mailbox): *ev, or the
 * worker's DIED event when the reference is bad. Returns 1. */
static int ring_ref_event(mproc__group *g, int i, const uint8_t *ref, mproc__event *ev) {
    fworker *w = &g->w[i];
    memset(ev, 0, sizeof *ev);
    ev->kind = MPROC__EV_FRAME;
    ev->worker = i;
    size_t flen = 0;
    const uint8_t *f = w->rings.base ? mproc__ring_resolve(&w->rings.up, ref, &w->up_next, &flen) : NULL;
    if (!f) {
        mproc__fork_worker_died(g, i, ev, "sent a reference to no frame of its ring");
        return 1;
    }
    if (is_reply(mproc__hdr_kind(f))) note_reply(g, w);
    if (take_ring_reply(w, f, flen, ev) < 0) mproc__fork_worker_died(g, i, ev, mproc_last_error());
    return 1;
}

/* A whole frame from worker i (malloc'd, taken over): *ev. Returns 1. */
static int frame_event(mproc__group *g, int i, uint8_t *frame, size_t len, mproc__event *ev) {
    fworker *w = &g->w[i];
    w->up_taken++;
    if (mproc__hdr_kind(frame) == MPROC__FRAME_RING) {
        ring_ref_event(g, i, frame, ev);
        free(frame);
        return 1;
    }
    memset(ev, 0, sizeof *ev);
    ev->kind = MPROC__EV_FRAME;
    ev->worker = i;
    ev->frame = frame;
    ev->frame_len = len;
    if (is_reply(mproc__hdr_kind(frame))) note_reply(g, w);
    if (w->nhomes && mproc__hdr_kind(frame) == MPROC__FRAME_RESULT) {
        reply_home h; /* came by the socket: the core copies it into place itself */
        take_home(w, mproc__hdr_id(frame), &h);
    }
    return 1;
}

/* Worker i's next frame when its mailbox holds it: 1 with *ev. No system call. */
static int take_mail(mproc__group *g, int i, mproc__event *ev) {
    fworker *w = &g->w[i];
    uint64_t pos;
    uint32_t n;
    if (!w->mail || w->fd < 0 || !mproc__mail_take(w->rings.up.mail, w->up_taken, &pos, &n)) return 0;
    w->up_taken++;
    uint8_t ref[MPROC__WIRE_HDR_SIZE];
    mproc__ring_ref_encode(ref, pos, n);
    return ring_ref_event(g, i, ref, ev);
}

/* Worker i's next frame from its mailbox or the one held back, without reading its socket:
 * 1 with *ev. */
static int take_buffered(mproc__group *g, int i, mproc__event *ev) {
    fworker *w = &g->w[i];
    if (take_mail(g, i, ev)) return 1; /* before a held frame: the mailbox's came first */
    if (!w->held) return 0;
    uint8_t *frame = w->held;
    w->held = NULL;
    g->nheld--;
    return frame_event(g, i, frame, w->held_len, ev);
}

/* Reads what is available from worker i. Returns 1 with *ev set when a frame completed or the
 * worker died, 0 when more bytes are needed. */
static int read_worker(mproc__group *g, int i, mproc__event *ev) {
    fworker *w = &g->w[i];
    for (;;) {
        if (take_buffered(g, i, ev)) return 1;
        uint8_t *frame;
        size_t len;
        int rc = mproc__reader_next(&w->in, w->fd, &frame, &len);
        if (rc == 0) return 0;
        if (rc == 1) {
            if (w->mail && mproc__hdr_kind(frame) == MPROC__FRAME_WAKE) { /* a post while we stopped looking */
                free(frame);
                continue;
            }
            /* Sent after a frame it posted to the mailbox, which we had not looked at since? */
            if (take_mail(g, i, ev)) {
                if (w->fd >= 0) {
                    w->held = frame;
                    w->held_len = len;
                    g->nheld++;
                } else {
                    free(frame); /* the mailbox's frame was bad: the worker is gone */
                }
                return 1;
            }
            return frame_event(g, i, frame, len, ev);
        }
        char cause[200];
        snprintf(cause, sizeof cause, "%s", rc == MPROC_EOF ? "" : mproc_last_error());
        mproc__fork_worker_died(g, i, ev, rc == MPROC_EOF ? NULL : cause);
        return 1;
    }
}

static int enqueue(mproc__group *g, const mproc__event *ev) {
    queued *q = malloc(sizeof *q);
    if (!q) return mproc__error(MPROC_ENOMEM, "no memory to queue a worker event");
    q->ev = *ev;
    q->next = NULL;
    if (g->tail) g->tail->next = q;
    else g->head = q;
    g->tail = q;
    return 0;
}

int mproc__fork_receive_dequeue(mproc__group *g, mproc__event *ev) {
    queued *q = g->head;
    if (!q) return 0;
    *ev = q->ev;
    g->head = q->next;
    if (!g->head) g->tail = NULL;
    free(q);
    return 1;
}

/* poll()s every live worker plus the wake fd; ms < 0 waits forever. Returns ready count. */
static int poll_group(mproc__group *g, int ms) {
    for (int i = 0; i < g->n; i++) {
        g->pfds[i].fd = g->w[i].fd; /* -1 is ignored by poll */
        g->pfds[i].events = POLLIN;
        g->pfds[i].revents = 0;
    }
    g->pfds[g->n].fd = g->wake_fd;
    g->pfds[g->n].events = POLLIN;
    g->pfds[g->n].revents = 0;
    int r;
    do r = poll(g->pfds, (nfds_t)g->n + 1, ms);
    while (r < 0 && errno == EINTR);
    return r;
}

/* While a send to one worker would block: sleeps in poll() until that socket is writable again
 * or any worker has something to say, and queues whatever completes, so a worker blocked on
 * writing its results never deadlocks against the master writing its next task. */
int mproc__fork_receive_while_sending(void *arg) {
    mproc__fork_send_wait *sw = arg;
    mproc__group *g = sw->g;
    for (int i = 0; i < g->n; i++) {
        g->pfds[i].fd = g->w[i].fd;
        g->pfds[i].events = POLLIN | (g->w[i].fd == sw->fd ? POLLOUT : 0);
        g->pfds[i].revents = 0;
    }
    int r;
    do r = poll(g->pfds, (nfds_t)g->n, 1000);
    while (r < 0 && errno == EINTR);
    if (r <= 0) return 0;
    for (int i = 0; i < g->n; i++) {
        if (!(g->pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) || g->w[i].fd < 0) continue;
        mproc__event ev;
        while (g->w[i].fd >= 0 && read_worker(g, i, &ev))
            if (enqueue(g, &ev) < 0) return MPROC_ENOMEM;
    }
    /* The worker being written to died while we read (its socket is closed, and its number
     * may be another file's by now): the write must stop, not retry on that number. */
    if (g->w[sw->worker].fd != sw->fd) return MPROC_EWORKER;
    return 0;
}

/* Longest a wait spins for the reply to a lone frame: about what a sleep and a wake-up cost
 * together here, so a slower reply costs little more than sleeping at once would have. */
#define SPIN_MAX_S 50e-6

/* While the only frame owed was sent moments ago and such replies come within SPIN_MAX_S,
 * looks for it without sleeping (a caller of mproc_apply in a loop saves the wake-up: the
 * round trip went from 1.5x to 1.2x a pipe ping-pong). Meanwhile its worker may post the reply
 * to the mailbox instead of its socket: 1 with *ev when it came so. Never past deadline (< 0:
 * none). *ready: poll's count (0: nothing yet). */
static int spin_for_reply(mproc__group *g, double deadline, int *ready, mproc__event *ev) {
    *ready = 0;
    if (g->owed != 1 || g->sent_at <= 0 || g->reply_s >= SPIN_MAX_S) return 0;
    double until = g->sent_at + (g->reply_s > 0 ? 2 * g->reply_s + 5e-6 : SPIN_MAX_S);
    if (until > g->sent_at + SPIN_MAX_S) until = g->sent_at + SPIN_MAX_S;
    if (deadline >= 0 && until > deadline) until = deadline;
    fworker *w = &g->w[g->lone];
    int mail = w->mail && w->fd >= 0, got = 0, r = 0;
    if (mail) {
        mproc__mail_awake(w->rings.up.mail, 1);
        g->spun = g->lone;
    }
    while (r == 0 && mproc__now() < until) {
        if (mail && (got = take_mail(g, g->lone, ev))) break;
        r = poll_group(g, 0);
        if (r == 0) sched_yield(); /* with more processes than cores, the worker may need ours */
    }
    if (mail && w->fd >= 0) {
        mproc__mail_awake(w->rings.up.mail, 0);
        /* Posted before it saw us stop looking: it sends no WAKE, so look once more - at the
         * count of frames it sent (a sequentially consistent load, as frame_mailbox.h wants of
         * a reader going to sleep), then at the slot. More sent but not posted: on the socket. */
        if (!got && mproc__mail_more(w->rings.up.mail, w->up_taken)) got = take_mail(g, g->lone, ev);
    }
    *ready = r;
    return got;
}

/* Idle this long with pages past a down ring's kept part (big inputs went that way), the
 * master gives them back, as a worker does with its up ring (socket_worker.c): frames that
 * follow each other closer than this keep them. */
#define IDLE_TRIM_MS 100

static int down_rings_to_trim(const mproc__group *g) {
    for (int i = 0; i < g->n; i++)
        if (g->w[i].rings.base && g->w[i].rings.down.touched > MPROC__RING_KEEP) return 1;
    return 0;
}

static void trim_down_rings(mproc__group *g) {
    for (int i = 0; i < g->n; i++)
        if (g->w[i].rings.base) mproc__ring_trim_idle(&g->w[i].rings.down);
}

/* poll_group, but after IDLE_TRIM_MS with nothing to do the down rings are trimmed first. */
static int poll_group_idle(mproc__group *g, int ms) {
    if (ms == 0 && g->sends == g->sends_at_look && down_rings_to_trim(g)) trim_down_rings(g);
    if (ms == 0) g->sends_at_look = g->sends; /* a parked pool looks every 0.25 s (scheduler.c) */
    if ((ms >= 0 && ms <= IDLE_TRIM_MS) || !down_rings_to_trim(g)) return poll_group(g, ms);
    int r = poll_group(g, IDLE_TRIM_MS);
    if (r != 0) return r;
    trim_down_rings(g);
    return poll_group(g, ms < 0 ? -1 : ms - IDLE_TRIM_MS);
}

int mproc__fork_receive_wait(mproc__group *g, double timeout, mproc__event *ev) {
    if (mproc__fork_receive_dequeue(g, ev)) return 0;
    /* Frames already in a read buffer, held back or in a mailbox would not wake poll(). Only
     * the worker we last spun for can have posted to its mailbox unseen (else a WAKE came). */
    if (g->spun >= 0) {
        if (take_buffered(g, g->spun, ev)) return 0;
        g->spun = -1; /* its mailbox is empty, and it posts no more while we do not look */
    }
    for (int i = 0; i < g->n; i++) {
        fworker *w = &g->w[i];
        if (w->fd < 0) continue;
        if (g->nheld && take_buffered(g, i, ev)) return 0;
        if (mproc__reader_pending(&w->in) && read_worker(g, i, ev)) return 0;
    }
    double deadline = mproc__deadline(timeout);
    for (;;) {
        double left = mproc__remaining(deadline);
        int ms = left < 0 ? -1 : (int)(left * 1000.0 + 0.999);
        int r;
        if (spin_for_reply(g, deadline, &r, ev)) return 0;
        if (r == 0) r = poll_group_idle(g, ms);
        if (r < 0) return mproc__error(MPROC_ESYS, "poll: %s", strerror(errno));
        if (r == 0 && left >= 0 && mproc__remaining(deadline) <= 0) {
            memset(ev, 0, sizeof *ev);
            ev->kind = MPROC__EV_TIMEOUT;
            return 0;
        }
        for (int k = 0; k < g->n; k++) {
            int i = (g->next_start + k) % g->n;
            if (!g->pfds[i].revents || g->w[i].fd < 0) continue;
            if (read_worker(g, i, ev)) {
                g->next_start = (i + 1) % g->n;
                return 0;
            }
        }
        if (g->pfds[g->n].revents) {
            uint64_t v;
            while (read(g->wake_fd, &v, sizeof v) < 0 && errno == EINTR) {}
            memset(ev, 0, sizeof *ev);
            ev->kind = MPROC__EV_WAKE;
            return 0;
        }
    }
}

