/* faults.c - what a worker's failure does to its chunks: a worker that died (crash, kill,
 * garbage on its channel) or a chunk that ran past its time limit.
 *
 * The chunk that was running fails, but first a multi-item chunk is split and re-run item by
 * item so only the item at fault fails, and a task may be retried; chunks queued behind it go
 * back to the front of the queue. This file decides and reports; replacing the worker is the
 * scheduler's act. Where a backend cannot kill a worker (MPI), a late chunk fails at once and a
 * ghost entry drops its result when it comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

/* ---- worker deaths and timeouts -------------------------------------------------------- */

static void free_chunks(mproc__chunk *c) {
    while (c) {
        mproc__chunk *n = c->next;
        mproc__chunk_free(c);
        c = n;
    }
}

/* Item i of c as a chunk of its own, with its own copy of its input if c owned its input. */
static mproc__chunk *single_of(mproc_pool *p, const mproc__chunk *c, uint32_t i) {
    mproc__chunk *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = *c;
    s->next = NULL;
    s->count = 1;
    s->first = c->first + i;
    s->in = c->in + (size_t)i * c->owner->in_size;
    s->in_len = c->owner->in_size;
    if (c->packed_lens) { /* a variable-length item: alone, as one argument */
        s->in = mproc__items_unpack(c->in, c->count, i, &s->in_len);
        s->packed_lens = 0;
    }
    s->owned = NULL;
    if (c->owned) {
        if (!(s->owned = malloc(s->in_len ? s->in_len : 1))) {
            free(s);
            return NULL;
        }
        memcpy(s->owned, s->in, s->in_len);
        s->in = s->owned;
    }
    s->isolated = 1;
    s->id = mproc__chunk_new_id();
    return s;
}

/* Splits a multi-item chunk into single-item chunks at the front of the queue, so a re-run
 * isolates the item that crashed or hung. Returns 0, or -1 if out of memory (chunk untouched). */
static int split_to_front(mproc_pool *p, mproc__chunk *c) {
    mproc__chunk *singles = NULL, *last = NULL;
    for (uint32_t i = 0; i < c->count; i++) {
        mproc__chunk *s = single_of(p, c, i);
        if (!s) {
            free_chunks(singles);
            return -1;
        }
        if (last) last->next = s;
        else singles = s;
        last = s;
    }
    mproc__pool_push_front_list(p, singles, last);
    p->outstanding += c->count - 1;
    c->owner->live_chunks += c->count - 1;
    mproc__chunk_free(c);
    return 0;
}

/* The chunk that was running when its worker died: split it so only the culprit item fails,
 * retry it if allowed, or fail it. */
static void settle_dead_head(mproc_pool *p, int w, long pid, mproc__chunk *c, int err, const char *why) {
    if (c->count > 1 && !c->isolated && split_to_front(p, c) == 0) return;
    if (err == MPROC_EWORKER && c->attempts < p->opts.max_retries) {
        c->attempts++;
        mproc__pool_push_front(p, c);
        return;
    }
    c->blamed = 1;
    char msg[400], tries[64] = "";
    if (c->attempts > 0) /* retried: say so, or max_retries looks ignored */
        snprintf(tries, sizeof tries, "; run %d times (max_retries %d)", c->attempts + 1, p->opts.max_retries);
    if (err == MPROC_ETIMEDOUT) {
        /* Where it was killed: under MPI the backend's account ends " on rank R (host H)". */
        const char *where = why ? strstr(why, " on rank ") : NULL;
        snprintf(msg, sizeof msg, "task '%s' ran past its %.3g s time limit; worker %d (pid %ld) was killed%.80s%s",
                 mproc__chunk_task_name(c), mproc__chunk_timeout(p, c), w, pid, where ? where : "", tries);
    } else {
        /* The hint goes right after the status, before MPI's " on rank R (host H)". */
        const char *where = strstr(why, " on rank ");
        int head = where ? (int)(where - why) : (int)strlen(why);
        snprintf(msg, sizeof msg, "worker %d (pid %ld) died while running task '%.64s': %.*s%s%.80s%s", w, pid,
                 mproc__chunk_task_name(c), head < 200 ? head : 200, why,
                 strstr(why, "exited with status") ? " (a task must return, not call exit())" : "",
                 where ? where : "", tries);
    }
    mproc__pool_settle_fail(p, c, err, msg);
}

/* Whether the worker had started the frame at the head of its queue. A backend that cannot
 * tell (taken_known == 0) is assumed to have: the head is the running frame. */
static int head_started(const mproc__event *ev, const mproc__chunk *head) {
    return !ev->taken_known || ev->taken_id == head->id;
}

/* A frame whose mere reading kills its worker (its size, say, under a memory limit) is never
 * "taken": after this many such deaths it is blamed as if it had run, or it would be requeued
 * and its worker replaced forever. */
#define UNREAD_DEATHS_MAX 2

/* An initializer that fails its worker would fail every replacement too: the pool is broken
 * once, never respawned in a loop. Only a worker that had taken its INIT frame (id 0) counts;
 * one killed from outside before reading it is replaced as any other. */
static void note_init_death(mproc_pool *p, const mproc__event *ev, int was_ready) {
    if (!p->opts.initializer || was_ready || p->broken_err) return;
    /* Not read: not the initializer's doing, unless fresh workers keep dying this way. */
    if (ev->taken_known && ev->taken_id != 0 && ++p->init_unread_deaths <= UNREAD_DEATHS_MAX) return;
    p->broken_err = MPROC_EINITFAIL;
    snprintf(p->broken_msg, sizeof p->broken_msg, "pool initializer '%.64s' killed worker %d: %.150s",
             p->opts.initializer->name, ev->worker, ev->why);
}

/* A worker whose whole rank was lost before its initializer finished. A rank lost before the
 * pool began (its slot closed at start) is nobody's doing; one lost while the initializer ran
 * may be the initializer's (one that kills its rank), but lost ranks are never replaced, so no
 * loop can follow: the pool goes on with the ranks left, and only if none is left does it say
 * (MPROC_EINITFAIL) that the initializer was running when a rank was lost. */
static void note_init_loss(mproc_pool *p, const mproc__event *ev, int was_ready) {
    if (!p->opts.initializer || was_ready || p->broken_err || p->init_lost[0]) return;
    if (ev->gone_since > 0 && ev->gone_since < p->started_at) return;
    snprintf(p->init_lost, sizeof p->init_lost, "worker %d: %.120s", ev->worker, ev->why);
}

/* Settles every chunk of a cancelled call in the list at *head (the dead worker's frames) and
 * keeps the others in order. The running one may have been its worker's death: a cancelled
 * call's chunk is never retried, split or blamed. */
static mproc__chunk *settle_cancelled(mproc_pool *p, mproc__chunk *head) {
    mproc__chunk *keep = NULL, **tail = &keep;
    for (int first = 1; head; first = 0) {
        mproc__chunk *c = head;
        head = c->next;
        c->next = NULL;
        if (c->ghost && !first) { /* a cancelled chunk that never ran: nothing to requeue */
            free(c);
            continue;
        }
        if (!c->ghost && c->owner->cancel_err) {
            mproc__pool_settle_cancelled(p, c);
            continue;
        }
        *tail = c;
        tail = &c->next;
    }
    return keep;
}

/* Its whole rank was lost (MPI's watchdog): nobody knows which of the chunks it held was
 * running - its executor runs them in order, and results finished just before may have died in
 * the rank - nor is a lost rank any task's fault. So each goes back, in order, to run with
 * nothing else in flight on its rank (suspect, never batched; domains.c); one that was with a
 * lost rank before (then alone there, or a chunk split from such a one) is the culprit and
 * settles as a crash's would. A task that kills its rank thus costs two ranks, not one per
 * re-run. */
static void settle_lost_rank(mproc_pool *p, int w, const mproc__event *ev, mproc__chunk *all) {
    mproc__chunk *back = NULL, *last = NULL;
    for (mproc__chunk *c = all, *next; c; c = next) {
        next = c->next;
        c->next = NULL;
        if (c->ghost) { /* its task was failed already */
            free(c);
            continue;
        }
        int reached = !(ev->gone_since > 0 && c->given >= ev->gone_since); /* sent before the loss */
        if (reached && c->innocent_reruns++ >= 1) {
            settle_dead_head(p, w, ev->pid, c, MPROC_EWORKER, ev->why);
            continue;
        }
        c->suspect = c->solo = 1;
        p->suspects_seen = 1;
        c->batched = 0;
        if (last) last->next = c;
        else back = c;
        last = c;
    }
    if (back) mproc__pool_push_front_list(p, back, last);
}

int mproc__faults_on_died(mproc_pool *p, const mproc__event *ev) {
    int w = ev->worker;
    mproc__wstate *ws = &p->ws[w];
    int killed_for_time = ws->killed_for_time, was_ready = ws->ready;
    int killed_for_cancel = ws->killed_for_cancel;
    int timed_out = killed_for_time && ws->head && ws->head->id == ws->killed_chunk;
    mproc__chunk *all = ws->head;
    ws->head = ws->tail = NULL;
    ws->frames_out = 0;
    ws->alive = ws->ready = ws->killed_for_time = ws->killed_for_cancel = 0;
    mproc__chunk *head = settle_cancelled(p, all);
    if (ev->innocent) {
        settle_lost_rank(p, w, ev, head);
        note_init_loss(p, ev, was_ready);
        return p->state != MPROC__POOL_TERMINATED && !p->broken_err;
    }
    if (head != all) timed_out = 0; /* the running chunk was the cancelled call's */
    mproc__chunk *rest = head ? head->next : NULL;
    if (head && !head->ghost &&
        ((!head_started(ev, head) && head->unread_deaths++ < UNREAD_DEATHS_MAX) || (killed_for_time && !timed_out) ||
         killed_for_cancel)) {
        /* It died before it read its next frame (killed while idle, say), or we killed it for
         * a chunk that finished just before: nothing it was given failed by its own doing, so
         * everything goes back to the queue unblamed. */
        rest = head;
        head = NULL;
    }
    if (head && head->batched) {
        /* A batch was running and nobody knows which item killed it: every batched chunk
         * goes back to run alone, so only the culprit fails (the others may run twice). */
        for (mproc__chunk *c = head; c; c = c->next)
            if (c->batched) c->solo = 1, c->batched = 0;
        rest = head;
        head = NULL;
    }
    if (head && head->ghost) { /* its task was failed already */
        free(head);
        head = NULL;
    }
    /* Chunks that never started go back to the front, in order. */
    if (rest) {
        mproc__chunk *last = rest;
        while (last->next) last = last->next;
        mproc__pool_push_front_list(p, rest, last);
    }
    if (head) {
        head->next = NULL;
        settle_dead_head(p, w, ev->pid, head, timed_out ? MPROC_ETIMEDOUT : MPROC_EWORKER, ev->why);
    }
    note_init_death(p, ev, was_ready);
    /* A broken pool fails all its work (dispatch); a replacement would only run the failing
     * initializer again, and again. */
    return p->state != MPROC__POOL_TERMINATED && !p->broken_err;
}

void mproc__faults_check_alive(mproc_pool *p) {
    for (int i = 0; i < p->n; i++)
        if (p->ws[i].alive) return;
    if (p->broken_err) return;
    /* Nothing can run what is queued or what comes later: every task fails at once, as
     * with a failed initializer, instead of waiting for a worker that will never exist. */
    if (p->init_lost[0] && !p->init_ever_ready) { /* the initializer never finished anywhere */
        p->broken_err = MPROC_EINITFAIL;
        snprintf(p->broken_msg, sizeof p->broken_msg,
                 "every worker of the pool is gone; pool initializer '%.48s' was running when a rank was lost (%.100s)",
                 p->opts.initializer->name, p->init_lost);
    } else {
        p->broken_err = MPROC_EWORKER;
        snprintf(p->broken_msg, sizeof p->broken_msg, "every worker of the pool died and none could be replaced: %.180s",
                 mproc_last_error());
    }
    mproc__pool_fail_queue(p, p->broken_err, p->broken_msg);
}

mproc__chunk *mproc__faults_ghost_in_place(mproc__wstate *ws, mproc__chunk *prev, mproc__chunk *c) {
    mproc__chunk *ghost = calloc(1, sizeof *ghost);
    if (!ghost) return NULL;
    ghost->id = c->id;
    ghost->count = c->count;
    ghost->ghost = 1;
    ghost->next = c->next;
    ghost->started = c->started;
    /* The frame's book-keeping stays with the ghost: its reply still frees the worker's slot.
     * (Not `batched`: a dead worker's ghost is dropped, never re-run with its batch.) */
    ghost->slot_end = c->slot_end;
    ghost->frame_items = c->frame_items;
    ghost->sent = c->sent;
    if (prev) prev->next = ghost;
    else ws->head = ghost;
    if (ws->tail == c) ws->tail = ghost;
    c->next = NULL;
    return c;
}

void mproc__faults_expire_in_place(mproc_pool *p, int w, int err, const char *msg) {
    mproc__chunk *c = mproc__faults_ghost_in_place(&p->ws[w], NULL, p->ws[w].head);
    if (c) mproc__pool_settle_fail(p, c, err, msg); /* else: tried again at the next check */
}

/* The running chunk of a worker that cannot be killed is past its time. */
static void expire_late(mproc_pool *p, int w) {
    const mproc__chunk *c = p->ws[w].head;
    char msg[200];
    snprintf(msg, sizeof msg, "task '%.64s' ran past its %.3g s time limit (the %s backend cannot stop it; its result will be dropped)",
             mproc__chunk_task_name(c), mproc__chunk_timeout(p, c), p->be->name);
    p->ws[w].head->blamed = 1;
    mproc__faults_expire_in_place(p, w, MPROC_ETIMEDOUT, msg);
}

/* Kills workers whose running chunk is past its time; returns seconds to the next deadline
 * (< 0: none). */
double mproc__faults_check_timeouts(mproc_pool *p) {
    if (!p->any_limit) return -1; /* nothing with a limit was ever sent: no scan per event */
    double now = mproc__now(), next = -1;
    for (int w = 0; w < p->n; w++) {
        mproc__wstate *ws = &p->ws[w];
        if (!ws->head || ws->head->ghost || ws->killed_for_time || ws->killed_for_cancel) continue;
        double limit = mproc__chunk_timeout(p, ws->head);
        if (limit <= 0) continue;
        double left = ws->head->started + limit - now;
        if (left <= 0) {
            ws->killed_for_time = 1; /* until its DIED event */
            ws->killed_chunk = ws->head->id;
            if (mproc__pool_kill_worker(p, w) < 0) {
                ws->killed_for_time = 0; /* cannot kill (MPI): fail the task now, drop its result later */
                mproc__pool_worker_may_take(p, w);
                mproc__domain_may_take(p, w); /* its suspect, if it ran one, is a ghost now */
                expire_late(p, w);
            }
        } else if (next < 0 || left < next) {
            next = left;
        }
    }
    return next;
}
