/* scheduler.c - the pool's result thread: it starts the workers, keeps each `inflight` frames
 * deep (so a worker never waits for the master), matches results to chunks by the id in the
 * frame header and hands them to their owners, and acts on faults: what faults.c decides about
 * a dead worker's chunks, then a replacement worker; the worker running a late chunk is killed.
 * The thread sleeps in the backend's wait() when there is nothing to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

/* 1 when the chunk's input outlives its reply and the group (MPROC__SEND_RETAIN): its own copy,
 * or a map's input (the map is not done before every chunk is; a cancelled chunk is withdrawn
 * first, cancel.c), and no time limit (a chunk that times out is settled before its reply). An
 * iterator's array input is not: the iterator may be freed, and the input with it, while its
 * chunks are out. */
static int input_outlives_reply(const mproc_pool *p, const mproc__chunk *c) {
    if (mproc__chunk_timeout(p, c) > 0) return 0;
    if (c->owned && c->in == c->owned) return 1;
    return c->owner->input_outlives_reply;
}

/* Where a chunk's results may be received straight into (mproc__send_hint): a blocking map's
 * output, which its caller cannot free before the map returns (an async map's handle may be
 * freed early, and its output with it). Not with a time limit: such a chunk may be settled
 * before its reply. */
static void *reply_home(const mproc_pool *p, const mproc__chunk *c, size_t *len) {
    const mproc__owner *o = c->owner;
    if (!o->reply_base || !o->out_size || mproc__chunk_timeout(p, c) > 0) return NULL;
    *len = (size_t)c->count * o->out_size;
    return o->reply_base + c->first * o->out_size;
}

static int send_chunk(mproc_pool *p, int w, mproc__chunk *c) {
    uint8_t head[MPROC__CHUNK_HEAD_MAX];
    size_t head_len = mproc__chunk_head(c, head);
    struct iovec iov[2] = {{head, head_len}, {(void *)c->in, c->in_len}};
    mproc__send_hint hint = {input_outlives_reply(p, c) ? MPROC__SEND_RETAIN : 0, NULL, 0, 0};
    hint.reply_to = reply_home(p, c, &hint.reply_len);
    /* Input in the caller's memory that may go away before the reply (an iterator's array,
     * once mproc_iter_free returns): the free waits for this send to be done with it. */
    p->sending = !c->owned && !c->owner->input_outlives_reply ? c->owner : NULL;
    p->sending_chunk = c; /* a cancel meanwhile leaves c to us (cancel.c) */
    int rc = mproc__pool_send(p, w, iov, c->in_len ? 2 : 1, &hint);
    p->sending = NULL;
    p->sending_chunk = NULL;
    c->lent = hint.kept;
    if (p->sending_waited) {
        p->sending_waited = 0;
        mproc__core_broadcast();
    }
    return rc; /* a failed send means the worker is dead: its DIED event settles the chunk */
}

static int send_init(mproc_pool *p, int w) {
    const mproc_task *t = p->opts.initializer;
    uint8_t head[MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX + 8] = {0};
    size_t len = p->opts.initarg_len;
    mproc__hdr_encode(head, MPROC__FRAME_INIT, 0, (uint32_t)(MPROC__WIRE_TASK_PREFIX + 8 + len), (uint32_t)t->id);
    mproc__task_prefix_encode(head + MPROC__WIRE_HDR_SIZE, 1, 0);
    mproc__put_u32(head + MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX, (uint32_t)len);
    struct iovec iov[2] = {{head, sizeof head}, {p->initarg, len}};
    return mproc__pool_send(p, w, iov, len ? 2 : 1, NULL);
}

/* Marks a fresh worker: ready at once, or after its initializer reports success. */
static void worker_started(mproc_pool *p, int w) {
    mproc__wstate *ws = &p->ws[w];
    memset(ws, 0, sizeof *ws);
    ws->alive = 1;
    if (p->opts.initializer) {
        send_init(p, w);
    } else {
        ws->ready = 1;
        mproc__pool_worker_may_take(p, w);
    }
}

/* A worker whose running frame has run longer than this gets nothing more queued behind it
 * until that frame ends: queued frames wait for it however long it takes (a frame sent cannot
 * be taken back), while a free worker may idle (a fail_fast stop waited 2.3 s behind another
 * call's task: a new-user trial). Keeping workers `inflight` deep pays only for short tasks,
 * where the master's answer time counts; a frame queued when its worker answers still goes,
 * the new running frame being young then. */
#define QUEUE_BEHIND_MAX_S 1e-3

static int can_take(const mproc_pool *p, int w) {
    const mproc__wstate *ws = &p->ws[w];
    if (!ws->alive || !ws->ready || ws->recycling || ws->killed_for_time || ws->killed_for_cancel ||
        ws->frames_out >= p->inflight)
        return 0;
    if (ws->frames_out > 0 && ws->head && mproc__now() - ws->head->started > QUEUE_BEHIND_MAX_S) return 0;
    if (mproc__domain_runs_suspect(p, w)) return 0; /* it runs alone there (faults.c, a lost rank) */
    int max = p->opts.maxtasksperchild;
    return max <= 0 || ws->tasks_done + ws->frames_out < max;
}

/* A replacement for worker w (dead, or recycled): started, or if none can be had, the slot
 * stays dead and the pool breaks once no worker is left. */
static void replace_worker(mproc_pool *p, int w) {
    mproc__wstate *ws = &p->ws[w];
    if (p->driver == MPROC__DRIVER_CALLER) {
        /* Workers are forked by the result thread only: a worker's parent-death signal follows
         * the thread that forked it, and a caller's thread may end long before the pool. */
        if (!ws->restart_due) p->restarts_due++;
        ws->restart_due = 1;
        return;
    }
    int rc = mproc__pool_restart_worker(p, w);
    if (rc == MPROC_ENOTBUILT && ws->recycling) { /* cannot replace (MPI): keep the worker */
        ws->recycling = 0;
        ws->tasks_done = 0;
        mproc__pool_worker_may_take(p, w);
        return;
    }
    if (rc < 0) { /* the old worker is gone and no new one started (fork failed, say) */
        ws->alive = ws->recycling = 0;
        mproc__faults_check_alive(p);
        return;
    }
    worker_started(p, w);
}

static void append_inflight(mproc__wstate *ws, mproc__chunk *c) {
    c->next = NULL;
    if (ws->tail) ws->tail->next = c;
    else {
        ws->head = c;
        c->started = mproc__now();
    }
    ws->tail = c;
}

/* Gives worker w one frame: a chunk, or a BATCH of small ones when the queue is deep and the
 * tasks are measured to be short. */
static void give(mproc_pool *p, int w, mproc__chunk *c) {
    mproc__wstate *ws = &p->ws[w];
    uint32_t want = mproc__batchable(p, c) ? mproc__batch_size(p) : 1, frames = 1, items = c->count;
    size_t bytes = c->in_len;
    append_inflight(ws, c);
    mproc__chunk *last = c;
    while (frames < want && (p->qhead || p->feed_head)) {
        mproc__chunk *n = mproc__pool_next_chunk(p);
        if (!n) break;
        if (!mproc__batchable(p, n) || bytes + n->in_len > (64u << 10)) {
            mproc__pool_push_front(p, n);
            break;
        }
        append_inflight(ws, n);
        last = n;
        frames++;
        items += n->count;
        bytes += n->in_len;
    }
    double now = mproc__now();
    for (mproc__chunk *k = c;; k = k->next) {
        k->batched = frames > 1;
        k->slot_end = k == last;
        k->given = now;
        if (k == last) break;
    }
    last->frame_items = items;
    last->sent = now;
    ws->frames_out++;
    if (mproc__chunk_timeout(p, c) > 0) p->any_limit = 1;
    if (frames > 1) mproc__send_batch(p, w, c, frames);
    else send_chunk(p, w, c);
}

/* What worker w (free to take a frame) gets next. A chunk that was with a lost rank (suspect,
 * faults.c) goes only to a worker whose whole fault domain (its rank) has nothing in flight, so
 * that if this rank is lost too, the chunk is known to be the one it ran. While suspects wait,
 * one rank at a time (suspect_room) gets no new work so that it drains for them; the others go
 * on with the chunks queued behind them. NULL with *held set: w waits for its rank to drain. */
static mproc__chunk *next_for(mproc_pool *p, int w, int *held) {
    *held = 0;
    if (!p->sq_head) p->suspect_room = -1;
    else {
        if (!mproc__domain_busy(p, w)) {
            mproc__chunk *c = mproc__pool_next_suspect(p);
            if (c) {
                /* The room, if this was it, is taken; else it goes on draining for the next. */
                if (p->suspect_room >= 0 && mproc__domain_has(p, p->suspect_room, w)) p->suspect_room = -1;
                return c;
            }
        } else {
            int room = p->suspect_room;
            if (room < 0 || !p->ws[room].alive) p->suspect_room = room = w;
            if (mproc__domain_has(p, room, w)) {
                *held = 1; /* back in the ring when a slot of its rank frees (take_inflight) */
                return NULL;
            }
        }
    }
    return mproc__pool_next_chunk(p);
}

/* Hands queued chunks to workers with free slots. Workers wait their turn in the pool's ring,
 * one frame each per turn (balance), so an event costs the workers it concerns, not a scan of
 * all of them: a worker leaves the ring when it cannot take more and comes back when a slot
 * frees (take_inflight) or it becomes ready. */
static void dispatch(mproc_pool *p) {
    if (p->broken_err) {
        mproc__pool_fail_queue(p, p->broken_err, p->broken_msg);
        return;
    }
    /* A lone call on an idle pool, run by its caller, goes to the worker that answered last:
     * that one is awake or just asleep and its caches are warm, where taking turns made each
     * worker sleep twice as long. */
    int hot = p->last_worker;
    if (p->driver == MPROC__DRIVER_CALLER && p->outstanding == 1 && p->qhead && hot >= 0 && hot < p->n &&
        can_take(p, hot)) {
        mproc__chunk *c = mproc__pool_next_chunk(p);
        if (c) give(p, hot, c);
        return;
    }
    int aside = -1;
    while ((p->qhead || p->feed_head || p->sq_head) && p->state != MPROC__POOL_TERMINATED) {
        int w = mproc__pool_next_worker(p);
        if (w < 0) break;
        if (!can_take(p, w)) { /* back in the ring when that changes */
            aside = -1;
            continue;
        }
        int held;
        mproc__chunk *c = next_for(p, w, &held);
        if (held) {
            aside = -1; /* the ring changed: every worker left in it is looked at again */
            continue;
        }
        if (!c) {
            mproc__pool_worker_may_take(p, w);
            /* Only suspects are left, and w's rank is busy: another's may be free. Each worker
             * waiting in the ring is looked at once after the last change (a chunk given, a
             * worker held): back at the first set aside, nobody can take anything. */
            if (!p->sq_head || aside == w) break;
            if (aside < 0) aside = w;
            continue;
        }
        aside = -1;
        give(p, w, c);
        if (can_take(p, w)) mproc__pool_worker_may_take(p, w);
    }
}

/* ---- receiving ----------------------------------------------------------------------------- */

static mproc__chunk *take_inflight(mproc_pool *p, int w, uint64_t id) {
    mproc__wstate *ws = &p->ws[w];
    mproc__chunk *prev = NULL;
    for (mproc__chunk *c = ws->head; c; prev = c, c = c->next) {
        if (c->id != id) continue;
        if (prev) prev->next = c->next;
        else ws->head = c->next;
        if (ws->tail == c) ws->tail = prev;
        if (c->slot_end) {
            ws->frames_out--;
            mproc__pool_worker_may_take(p, w);
            mproc__domain_may_take(p, w); /* a suspect may have held its domain-mates back */
        }
        if (ws->head && !prev) ws->head->started = mproc__now();
        c->next = NULL;
        return c;
    }
    return NULL;
}

static void recycle_if_due(mproc_pool *p, int w) {
    mproc__wstate *ws = &p->ws[w];
    int max = p->opts.maxtasksperchild;
    if (max <= 0 || ws->tasks_done < max || ws->frames_out) return;
    ws->recycling = 1;
    replace_worker(p, w);
}

/* A worker broke the protocol: it is killed and handled as dead. */
static void hostile(mproc_pool *p, int w, const char *what) {
    fprintf(stderr, "mproc: worker %d %s; killing it\n", w, what);
    mproc__pool_kill_worker(p, w);
}

static void on_init_result(mproc_pool *p, int w, const uint8_t *payload, size_t len) {
    mproc__results r;
    size_t cur = 0, blen = 0;
    int status = MPROC_EPROTO;
    const uint8_t *blob = NULL;
    if (mproc__results_decode(payload, len, &r) == 0 && r.count == 1)
        blob = mproc__results_next(&r, 0, &cur, &status, &blen);
    if (status == 0) {
        p->ws[w].ready = 1;
        p->init_ever_ready = 1;
        mproc__pool_worker_may_take(p, w);
        return;
    }
    p->broken_err = MPROC_EINITFAIL;
    snprintf(p->broken_msg, sizeof p->broken_msg, "pool initializer '%s' failed in worker %d: %.*s",
             p->opts.initializer->name, w, (int)(blen > 180 ? 180 : blen), blob ? (const char *)blob : "");
}

/* A reply whose data the transport already wrote into the map's output (ev->placed): only its
 * header and count/item_size prefix are here. 0, or -1 if it does not fit the chunk. */
static int placed_results(const mproc__chunk *c, const mproc__frame_hdr *h, const uint8_t *frame,
                          mproc__results *r) {
    memset(r, 0, sizeof *r);
    if (!c->owner->reply_base || h->length != MPROC__WIRE_RESULT_PREFIX) return -1;
    r->count = mproc__get_u32(frame + MPROC__WIRE_HDR_SIZE);
    r->item_size = mproc__get_u32(frame + MPROC__WIRE_HDR_SIZE + 4);
    r->data_len = (size_t)r->count * r->item_size;
    return r->count == c->count && r->item_size && r->item_size == c->owner->out_size ? 0 : -1;
}

static void on_result(mproc_pool *p, int w, const mproc__frame_hdr *h, uint8_t *frame, int placed) {
    mproc__chunk *c = take_inflight(p, w, h->id);
    if (!c) {
        free(frame);
        hostile(p, w, "answered a task it was not given");
        return;
    }
    int skipped = c->ghost && h->length == 0 && !placed; /* answered unrun (backend.h's skip) */
    if (c->slot_end && skipped) p->ws[w].last_done = mproc__now(); /* no service time to learn from */
    else if (c->slot_end) mproc__note_service(p, w, c);
    if (c->ghost) { /* already failed (its time limit, its call cancelled): dropped */
        free(frame);
        free(c);
        if (skipped) return; /* no task ran */
        p->ws[w].tasks_done++;
        recycle_if_due(p, w);
        return;
    }
    mproc__results r;
    int bad = placed ? placed_results(c, h, frame, &r) < 0
                     : mproc__results_decode(frame + MPROC__WIRE_HDR_SIZE, h->length, &r) < 0 || r.count != c->count;
    if (bad) {
        free(frame);
        mproc__pool_push_front(p, c); /* the worker is killed; the chunk runs again elsewhere */
        hostile(p, w, "sent a malformed result");
        return;
    }
    p->ws[w].tasks_done++;
    p->outstanding--;
    p->last_worker = w;
    c->ran_on = w;
    c->ran_pid = r.item_size ? 0 : mproc__pool_worker_pid(p, w); /* only a table can hold failures */
    c->owner->ops->deliver(p, c, frame, &r);
    recycle_if_due(p, w);
}

/* The RESULTs of a BATCH, each handled as if it had come alone. */
static void on_batch(mproc_pool *p, int w, const mproc__frame_hdr *bh, const uint8_t *frame) {
    size_t cursor = 0, sub_len;
    mproc__frame_hdr h;
    const uint8_t *sub;
    int rc;
    while ((rc = mproc__batch_next(frame + MPROC__WIRE_HDR_SIZE, bh->length, &cursor, &h, &sub, &sub_len)) == 1) {
        uint8_t *copy = h.kind == MPROC__FRAME_RESULT ? malloc(sub_len) : NULL;
        if (!copy) {
            hostile(p, w, h.kind == MPROC__FRAME_RESULT ? "sent a batch too large for memory" : "sent a batch of non-results");
            return;
        }
        memcpy(copy, sub, sub_len);
        on_result(p, w, &h, copy, 0);
    }
    if (rc < 0) hostile(p, w, "sent a malformed batch");
}

static void on_frame(mproc_pool *p, mproc__event *ev) {
    mproc__frame_hdr h;
    uint8_t *frame = ev->frame;
    if (mproc__hdr_decode(frame, ev->frame_len, &h) < 0 || h.length != ev->frame_len - MPROC__WIRE_HDR_SIZE) {
        free(frame);
        hostile(p, ev->worker, "sent a malformed frame");
        return;
    }
    switch (h.kind) {
    case MPROC__FRAME_RESULT:
        on_result(p, ev->worker, &h, frame, ev->placed);
        return;
    case MPROC__FRAME_BATCH:
        on_batch(p, ev->worker, &h, frame);
        break;
    case MPROC__FRAME_INIT_RESULT:
        on_init_result(p, ev->worker, frame + MPROC__WIRE_HDR_SIZE, h.length);
        break;
    case MPROC__FRAME_HELLO: {
        uint64_t fp;
        uint32_t tasks;
        if (mproc__hello_decode(frame + MPROC__WIRE_HDR_SIZE, h.length, &fp, &tasks) < 0 ||
            fp != mproc__registry_fingerprint() || tasks != mproc__registry_count())
            hostile(p, ev->worker, "has a different task table");
        break;
    }
    default:
        hostile(p, ev->worker, "sent an unexpected frame kind");
    }
    free(frame);
}

/* ---- the result thread ------------------------------------------------------------------- */

static void handle_event(mproc_pool *p, mproc__event *ev) {
    if (ev->kind == MPROC__EV_FRAME) {
        on_frame(p, ev);
    } else if (ev->kind == MPROC__EV_DIED) {
        if (mproc__faults_on_died(p, ev)) replace_worker(p, ev->worker);
        mproc__domain_may_take(p, ev->worker); /* its suspect, if it ran one, is gone */
    }
}

/* One turn of the scheduler loop: feed workers, enforce time limits, wait (at most cap seconds;
 * < 0: no cap) for one event and handle it; no wait when *done (if given) turned true before it
 * (dispatch and time limits can settle a job: a broken pool fails its queue). 0, or < 0 when the
 * transport failed (the pool is then terminated with the reason). */
/* A withdrawn chunk still in a send (its receiver busy) is looked at again this often. */
#define WITHDRAW_LOOK_S 0.002

static int serve_step(mproc_pool *p, double cap, const int *done) {
    /* Cancelled chunks the transport held: ours to settle, between sends and waits. */
    int again = p->withdrawn && mproc__pool_settle_withdrawn(p);
    dispatch(p);
    double timeout = mproc__faults_check_timeouts(p);
    if (done && *done) return 0;
    if (cap >= 0 && (timeout < 0 || timeout > cap)) timeout = cap;
    if (again && (timeout < 0 || timeout > WITHDRAW_LOOK_S)) timeout = WITHDRAW_LOOK_S;
    mproc__event ev;
    int rc = mproc__pool_wait_event(p, timeout, &ev);
    if (rc < 0) { /* the transport failed: every task fails with its reason, not ECLOSED */
        p->broken_err = rc;
        snprintf(p->broken_msg, sizeof p->broken_msg, "the pool stopped: its %s backend failed: %.180s",
                 p->be->name, mproc_last_error());
        fprintf(stderr, "mproc: %s\n", p->broken_msg);
        p->state = MPROC__POOL_TERMINATED;
        return rc;
    }
    handle_event(p, &ev);
    return 0;
}

/* ---- who drives ----------------------------------------------------------------------------
 * The loop above is run by the result thread, or - while the pool has nothing else to do - by
 * a caller of mproc_apply waiting for its one task: it sends the task and waits for the reply
 * itself, so a call costs the two wake-ups a hand-written ping-pong costs (the worker's and the
 * caller's) instead of four (also the result thread's, twice). The result thread parks
 * meanwhile. A driving caller hands back as soon as anything needs the result thread (a worker
 * to replace), its own task is done, or the pool ends; work submitted meanwhile by other
 * threads it dispatches like the result thread would, and leaves to it when it goes. */

#define PARK_LOOK_S 0.25 /* a parked result thread looks at its idle workers this often */

static int pool_idle(const mproc_pool *p) {
    return p->outstanding == 0 && !p->qhead && !p->sq_head && !p->feed_head && !p->restarts_due && !p->broken_err &&
           !p->withdrawn && p->state == MPROC__POOL_RUN;
}

/* Replaces the workers a driving caller left for us. */
static void restart_due_workers(mproc_pool *p) {
    for (int w = 0; w < p->n && p->restarts_due; w++)
        if (p->ws[w].restart_due) {
            p->ws[w].restart_due = 0;
            p->restarts_due--;
            replace_worker(p, w);
        }
}

int mproc__pool_try_drive(mproc_pool *p) {
    /* A callback (on another pool's loop) waits the plain way: a drive inside it would hide
     * from join and free which loops this thread runs. */
    if (mproc__loop_pool || !p->parked || p->driver != MPROC__DRIVER_NONE || !pool_idle(p) || !p->g) return 0;
    p->driver = MPROC__DRIVER_CALLER;
    return 1;
}

void mproc__pool_drive(mproc_pool *p, const int *done) {
    mproc_pool *outer = mproc__loop_pool; /* a callback of another pool may drive this one */
    mproc__loop_pool = p;
    while (!*done && !p->restarts_due && p->state != MPROC__POOL_TERMINATED)
        if (serve_step(p, -1.0, done) < 0) break;
    mproc__loop_pool = outer;
    p->driver = MPROC__DRIVER_NONE;
    /* The result thread takes over whatever is left; an idle pool lets it sleep on. */
    if (!pool_idle(p)) pthread_cond_signal(&p->park);
}

static void serve_pool(mproc_pool *p) {
    int look = 0; /* a parked look is due: one turn without waiting */
    for (;;) {
        if (p->driver == MPROC__DRIVER_CALLER || (pool_idle(p) && !look)) {
            p->parked = 1;
            double deadline = mproc__deadline(PARK_LOOK_S);
            mproc__cond_wait(&p->park, deadline);
            p->parked = 0;
            /* Idle for a while: look once whether a worker died meanwhile (it is replaced now,
             * not when the next task comes), and read what workers said (INIT results). */
            look = p->driver == MPROC__DRIVER_NONE && pool_idle(p) && mproc__remaining(deadline) <= 0;
            continue;
        }
        if (p->state == MPROC__POOL_TERMINATED) break;
        if (p->state == MPROC__POOL_CLOSED && p->outstanding == 0) break;
        p->driver = MPROC__DRIVER_THREAD;
        restart_due_workers(p);
        int rc = serve_step(p, look ? 0.0 : -1.0, NULL);
        look = 0;
        p->driver = MPROC__DRIVER_NONE;
        if (rc < 0) break;
    }
}

static void fail_everything(mproc_pool *p, int err, const char *msg) {
    mproc__pool_settle_withdrawn(p); /* the group has stopped: nothing to take back */
    mproc__pool_fail_queue(p, err, msg);
    for (int w = 0; w < p->n; w++) {
        mproc__chunk *c;
        while ((c = p->ws[w].head)) {
            p->ws[w].head = c->next;
            if (c->ghost) free(c);
            else mproc__pool_settle_fail(p, c, err, msg);
        }
        p->ws[w].tail = NULL;
        p->ws[w].frames_out = 0;
    }
}

/* A terminated pool's frames still on its workers must not start once join returns: workers
 * that cannot be killed (MPI ranks running tasks themselves) are told to skip each one (the
 * running one runs on). Farthest first, as cancel.c does. */
static void skip_everything_sent(mproc_pool *p) {
    for (int w = 0; w < p->n; w++) {
        uint64_t ids[MPROC__INFLIGHT_MAX];
        int n = 0, frame_start = 1;
        for (const mproc__chunk *c = p->ws[w].head; c && n < MPROC__INFLIGHT_MAX; c = c->next) {
            if (frame_start) ids[n++] = c->id;
            frame_start = c->slot_end;
        }
        while (n > 0) mproc__pool_skip(p, w, ids[--n]);
    }
}

void *mproc__pool_result_thread(void *arg) {
    mproc_pool *p = arg;
    mproc__loop_pool = p;
    mproc__group *g = NULL;
    /* Workers are forked from this thread so their parent-death signal follows the pool. */
    p->started_at = mproc__now(); /* published under the lock below, before any event */
    int rc = mproc__pool_group_start(p, &g);
    pthread_mutex_lock(&mproc__core_lock);
    p->g = g;
    if (rc >= 0) mproc__domains_map(p);
    p->thread_running = rc < 0 ? -1 : 1;
    p->start_rc = rc;
    if (rc < 0) snprintf(p->broken_msg, sizeof p->broken_msg, "%s", mproc_last_error());
    mproc__core_broadcast();
    if (rc < 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        return NULL;
    }
    for (int w = 0; w < p->n; w++) worker_started(p, w);
    serve_pool(p);
    int graceful = p->state != MPROC__POOL_TERMINATED;
    if (!graceful) skip_everything_sent(p);
    p->g = NULL; /* no more wake()s: the group is freed below */
    pthread_mutex_unlock(&mproc__core_lock);
    /* The group stops before unfinished work fails: a transport may still read inputs it was
     * given with MPROC__SEND_RETAIN, which their callers may free once their work is settled. */
    mproc__pool_group_stop(p, g, graceful);
    pthread_mutex_lock(&mproc__core_lock);
    if (p->broken_err) fail_everything(p, p->broken_err, p->broken_msg);
    else fail_everything(p, MPROC_ECLOSED, "the pool was terminated before the task finished");
    p->thread_running = 0;
    mproc__core_broadcast();
    pthread_mutex_unlock(&mproc__core_lock);
    return NULL;
}
