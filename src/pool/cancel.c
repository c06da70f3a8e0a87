/* cancel.c - stopping what is left of one call: mproc_async_cancel, and a map's fail_fast.
 *
 * The call's queued chunks and the items it has not yet made into chunks settle at once; a
 * worker running one of its frames is killed, and that worker's death (faults.c) settles the
 * chunks it held and puts other calls' chunks back in the queue, unblamed. A chunk of the call
 * that comes back to the queue later (a re-run) is settled when it is next picked (queue.c).
 * A chunk already sent to a worker behind another call's running frame settles too, and its
 * worker is told to skip it (backend.h's skip: it answers it empty instead of running it); one
 * it had taken already runs, and its ghost drops the result: taking it back would mean killing
 * a task nobody cancelled. If the transport may still read its input or write its results into the
 * caller's output (its send hints), it settles only once the driver has taken those back
 * (mproc__pool_settle_withdrawn): its caller may free both the moment the call is over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

/* Whether worker w's running frame holds a chunk of o (a BATCH may mix calls). */
static int runs_owner(const mproc__wstate *ws, const mproc__owner *o) {
    for (const mproc__chunk *c = ws->head; c; c = c->next) {
        if (!c->ghost && c->owner == o) return 1;
        if (c->slot_end) break;
    }
    return 0;
}

/* Whether c must be settled by the driver: a send is reading it now, or its send left the
 * transport a reference to its input or its results' home (send_chunk). */
static int lent_to_transport(const mproc_pool *p, const mproc__chunk *c) {
    return c == p->sending_chunk || (c->lent && mproc__pool_can_withdraw(p));
}

/* Takes every chunk of o out of worker w's in-flight list onto *tail (or, lent to the
 * transport, onto the pool's withdrawn list), each leaving a ghost behind to drop its late
 * result. A frame left with only ghosts (a chunk, or a BATCH whose every chunk was cancelled) is
 * to be skipped by the worker if it has not started it (backend.h's skip), the farthest first:
 * a worker remembers the last few, and the nearest run soonest. The ghost of one it started
 * drops the result. */
static void ghost_out(mproc_pool *p, int w, const mproc__owner *o, mproc__chunk ***tail) {
    mproc__wstate *ws = &p->ws[w];
    mproc__chunk *prev = NULL, *c = ws->head;
    uint64_t frame_id = 0; /* the frame's first chunk's id, which its header carries */
    int fresh = 0, all_ghosts = 1, frame_start = 1;
    uint64_t skips[MPROC__INFLIGHT_MAX];
    int nskips = 0;
    while (c) {
        mproc__chunk *next = c->next;
        int frame_end = c->slot_end;
        if (frame_start) frame_id = c->id, fresh = 0, all_ghosts = 1, frame_start = 0;
        mproc__chunk *out = !c->ghost && c->owner == o ? mproc__faults_ghost_in_place(ws, prev, c) : NULL;
        fresh |= out != NULL;
        all_ghosts &= out != NULL || c->ghost;
        if (out && lent_to_transport(p, out)) {
            out->withdraw_from = w;
            out->next = p->withdrawn;
            p->withdrawn = out;
            prev = prev ? prev->next : ws->head;
        } else if (out) {
            **tail = out;
            *tail = &out->next;
            prev = prev ? prev->next : ws->head; /* the ghost */
        } else {
            prev = c;
        }
        if (frame_end && fresh && all_ghosts && nskips < MPROC__INFLIGHT_MAX) skips[nskips++] = frame_id;
        frame_start = frame_end;
        c = next;
    }
    while (nskips > 0) mproc__pool_skip(p, w, skips[--nskips]);
}

/* o's frames in flight: a worker running one is killed (its death settles every chunk of o it
 * held); chunks of o waiting on a worker that runs another call's frame, or on one that cannot
 * be killed, are taken out now (onto *tail) and ghosted. */
static void stop_in_flight(mproc_pool *p, const mproc__owner *o, mproc__chunk ***tail) {
    for (int w = 0; w < p->n; w++) {
        mproc__wstate *ws = &p->ws[w];
        if (!ws->alive || !ws->head || ws->killed_for_time || ws->killed_for_cancel) continue;
        if (runs_owner(ws, o)) {
            ws->killed_for_cancel = 1; /* until its DIED event */
            ws->killed_chunk = ws->head->id;
            if (mproc__pool_kill_worker(p, w) == 0) continue;
            ws->killed_for_cancel = 0; /* it cannot be killed (MPI inside the ranks) */
        }
        ghost_out(p, w, o, tail);
        mproc__domain_may_take(p, w); /* a suspect ghosted here no longer holds its rank back */
    }
}

int mproc__owner_cancel(mproc_pool *p, mproc__owner *o, int err, const char *msg) {
    if (o->cancel_err || o->live_chunks == 0) return 0;
    o->cancel_err = err;
    o->cancel_msg = strdup(msg); /* NULL if out of memory: the code alone then (queue.c) */
    /* What ends here runs its callbacks on this thread with the lock dropped, and the pool is
     * used after them: a free or join in one is refused (the settling mark), and a free on
     * another thread waits until this cancel is done with the pool (p->settling). */
    mproc__settling me = {p, o, mproc__settling_top};
    mproc__settling_top = &me;
    p->settling++;
    /* Nothing settles before the lists are taken apart: settling a chunk may run callbacks
     * with the lock dropped, when anyone may change the queue and the workers' lists. */
    mproc__chunk *mine = NULL, **tail = &mine;
    mproc__chunk *withdrawn = p->withdrawn;
    if (p->g && p->state != MPROC__POOL_TERMINATED) stop_in_flight(p, o, &tail); /* else all die anyway */
    if (p->withdrawn != withdrawn) mproc__pool_wake(p); /* the driver settles them */
    *tail = mproc__pool_unqueue_owner(p, o);
    int unmade = 0;
    for (mproc__owner *f = p->feed_head; f; f = f->feed_next) unmade |= f == o;
    if (unmade) mproc__pool_feed_remove(p, o);
    if (unmade) p->outstanding -= o->ops->fail_unmade(p, o, err, o->cancel_msg ? o->cancel_msg : mproc_strerror(err));
    while (mine) {
        mproc__chunk *c = mine;
        mine = c->next;
        c->next = NULL;
        mproc__pool_settle_cancelled(p, c);
    }
    mproc__settling_top = me.outer;
    if (--p->settling == 0) mproc__core_broadcast();
    return 1;
}
