/* pool.c - the Pool: its workers, its queue of chunks, and the result thread that feeds the
 * workers and handles what comes back.
 *
 * Each pool has one result thread. It keeps `depth` chunks in flight per worker (so a worker
 * never waits for the master), matches results to chunks by the id in the frame header, and
 * handles worker deaths: the chunk a dead worker was running fails (after being split so only
 * the item that crashed fails, and after any retries), the chunks queued behind it go back to
 * the queue, and a replacement worker starts. Timeouts kill the worker running a late chunk.
 * The thread sleeps in the backend's wait() when there is nothing to do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool/pool.h"

pthread_mutex_t mproc__core_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t core_cond;
static pthread_once_t core_cond_once = PTHREAD_ONCE_INIT;

static void init_core_cond(void) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&core_cond, &a);
    pthread_condattr_destroy(&a);
}

void mproc__core_wait(double deadline) {
    pthread_once(&core_cond_once, init_core_cond);
    if (deadline < 0) {
        pthread_cond_wait(&core_cond, &mproc__core_lock);
        return;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)deadline;
    ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
    pthread_cond_timedwait(&core_cond, &mproc__core_lock, &ts);
}

void mproc__core_broadcast(void) {
    pthread_once(&core_cond_once, init_core_cond);
    pthread_cond_broadcast(&core_cond);
}

int mproc__pool_check(const mproc_pool *p, const char *fn) {
    if (!p) return mproc__error(MPROC_EBADHANDLE, "%s: pool is NULL", fn);
    if (p->magic != MPROC__POOL_MAGIC)
        return mproc__error(MPROC_EBADHANDLE, "%s: not a live pool (freed or corrupt)", fn);
    return 0;
}

void mproc__chunk_free(mproc__chunk *c) {
    if (!c) return;
    free(c->owned);
    free(c);
}

size_t mproc__auto_chunksize(const mproc_pool *p, size_t n, size_t item_bytes, size_t asked) {
    if (asked) return asked;
    size_t per = (size_t)p->n * 4;
    size_t cs = n / per + (n % per ? 1 : 0);
    size_t cap = (1u << 20) / (item_bytes ? item_bytes : 1);
    if (cs > cap) cs = cap;
    return cs ? cs : 1;
}

void mproc__pool_enqueue(mproc_pool *p, mproc__chunk *c) {
    c->next = NULL;
    if (p->qtail) p->qtail->next = c;
    else p->qhead = c;
    p->qtail = c;
    p->outstanding++;
    mproc__pool_kick(p);
}

void mproc__pool_kick(mproc_pool *p) {
    /* An awake thread finds new work on its next loop; only a sleeping one needs the wake-up
     * (a syscall), and a wake-up stays pending until it is consumed, so none is lost. */
    if (p->g && p->sleeping) {
        p->sleeping = 0;
        p->be->wake(p->g);
    }
}

void mproc__pool_push_front(mproc_pool *p, mproc__chunk *c) {
    c->next = p->qhead;
    p->qhead = c;
    if (!p->qtail) p->qtail = c;
}

/* Settles a chunk for good: its result goes to its job or iterator. Lock held. */
void mproc__pool_settle_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg) {
    p->outstanding--;
    if (c->iter) mproc__iter_fail(c, err, msg);
    else mproc__job_fail(p, c, err, msg);
}

void mproc__pool_fail_queue(mproc_pool *p, int err, const char *msg) {
    mproc__feed_fail_all(p, err, msg);
    mproc__chunk *c;
    while ((c = p->qhead)) {
        p->qhead = c->next;
        if (!p->qhead) p->qtail = NULL;
        mproc__pool_settle_fail(p, c, err, msg);
    }
}

const char *mproc__chunk_task_name(const mproc__chunk *c) {
    const mproc_task *t = c->iter ? c->iter->task : c->job->task;
    return t->name;
}

size_t mproc__item_failure(char *buf, size_t cap, const mproc__chunk *c, const uint8_t *msg, size_t len) {
    int k = snprintf(buf, cap, "task '%.64s' failed on worker %d (pid %ld): %.*s", mproc__chunk_task_name(c),
                     c->ran_on, c->ran_pid, (int)(len > 700 ? 700 : len), msg ? (const char *)msg : "");
    return k < 0 ? 0 : (size_t)k >= cap ? cap - 1 : (size_t)k;
}

double mproc__chunk_timeout(const mproc_pool *p, const mproc__chunk *c) {
    double t = c->iter ? c->iter->timeout : c->job->opts.timeout;
    if (t <= 0) t = p->opts.task_timeout;
    return t > 0 ? t * c->count : 0;
}

/* ---- sending --------------------------------------------------------------------------- */

size_t mproc__chunk_head(const mproc__chunk *c, uint8_t head[MPROC__CHUNK_HEAD_MAX]) {
    const mproc_task *t = c->iter ? c->iter->task : c->job->task;
    size_t item = c->iter ? c->iter->in_size : c->job->in_size;
    int variable = (c->job && c->job->kind == MPROC__JOB_APPLY);
    size_t head_len = MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX + (variable ? 8 : 0);
    size_t payload = head_len - MPROC__WIRE_HDR_SIZE + c->in_len;
    memset(head, 0, head_len); /* head may sit inside a batch buffer: write only head_len */
    mproc__hdr_encode(head, MPROC__FRAME_TASK, c->id, (uint32_t)payload, (uint32_t)t->id);
    mproc__task_prefix_encode(head + MPROC__WIRE_HDR_SIZE, c->count, variable ? 0 : (uint32_t)item);
    if (variable) mproc__put_u32(head + MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX, (uint32_t)c->in_len);
    return head_len;
}

/* 1 when the chunk's input outlives its reply and the group (MPROC__SEND_RETAIN): its own copy,
 * or a map's input (the map is not done before every chunk is), and no time limit (a chunk
 * that times out is settled before its reply). An iterator's array input is not: the iterator
 * may be freed, and the input with it, while its chunks are out. */
static int input_outlives_reply(const mproc_pool *p, const mproc__chunk *c) {
    if (mproc__chunk_timeout(p, c) > 0) return 0;
    if (c->owned && c->in == c->owned) return 1;
    return c->job && c->job->kind == MPROC__JOB_MAP;
}

/* Where a chunk's results may be received straight into (mproc__send_hint): a blocking map's
 * output, which its caller cannot free before the map returns (an async map's handle may be
 * freed early, and its output with it). Not with a time limit: such a chunk may be settled
 * before its reply. */
static void *reply_home(const mproc_pool *p, const mproc__chunk *c, size_t *len) {
    const mproc_async *a = c->job;
    if (!a || a->kind != MPROC__JOB_MAP || !a->out_pinned || !a->out || !a->out_size ||
        mproc__chunk_timeout(p, c) > 0)
        return NULL;
    *len = (size_t)c->count * a->out_size;
    return (uint8_t *)a->out + c->first * a->out_size;
}

static int send_chunk(mproc_pool *p, int w, mproc__chunk *c) {
    uint8_t head[MPROC__CHUNK_HEAD_MAX];
    size_t head_len = mproc__chunk_head(c, head);
    struct iovec iov[2] = {{head, head_len}, {(void *)c->in, c->in_len}};
    mproc__group *g = p->g;
    mproc__send_hint hint = {input_outlives_reply(p, c) ? MPROC__SEND_RETAIN : 0, NULL, 0};
    hint.reply_to = reply_home(p, c, &hint.reply_len);
    /* An iterator's array input is the caller's, who may free it once mproc_iter_free has
     * returned: that call waits for this send to be done with it. */
    p->sending = c->iter && !c->owned ? c->iter : NULL;
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = p->be->send(g, w, iov, c->in_len ? 2 : 1, &hint);
    pthread_mutex_lock(&mproc__core_lock);
    p->sending = NULL;
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
    mproc__group *g = p->g;
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = p->be->send(g, w, iov, len ? 2 : 1, NULL);
    pthread_mutex_lock(&mproc__core_lock);
    return rc;
}

/* Marks a fresh worker: ready at once, or after its initializer reports success. */
void mproc__pool_worker_started(mproc_pool *p, int w) {
    mproc__wstate *ws = &p->ws[w];
    memset(ws, 0, sizeof *ws);
    ws->alive = 1;
    if (p->opts.initializer) send_init(p, w);
    else ws->ready = 1;
}

static int can_take(const mproc_pool *p, const mproc__wstate *ws) {
    if (!ws->alive || !ws->ready || ws->recycling || ws->killed_for_time || ws->inflight >= p->depth) return 0;
    int max = p->opts.maxtasksperchild;
    return max <= 0 || ws->tasks_done + ws->inflight < max;
}

/* The next chunk to send: the queue first, then the map jobs' unmade chunks. */
static mproc__chunk *next_chunk(mproc_pool *p) {
    mproc__chunk *c = p->qhead;
    if (c) {
        p->qhead = c->next;
        if (!p->qhead) p->qtail = NULL;
    } else {
        c = mproc__feed_chunk(p);
    }
    if (c) c->next = NULL;
    return c;
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
        mproc__chunk *n = next_chunk(p);
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
    for (mproc__chunk *k = c;; k = k->next) {
        k->batched = frames > 1;
        k->slot_end = k == last;
        if (k == last) break;
    }
    last->frame_items = items;
    last->sent = mproc__now();
    ws->inflight++;
    if (frames > 1) mproc__send_batch(p, w, c, frames);
    else send_chunk(p, w, c);
}

/* Hands queued chunks to workers with free slots, one frame per worker per round (balance). */
static void dispatch(mproc_pool *p) {
    if (p->broken_err) {
        mproc__pool_fail_queue(p, p->broken_err, p->broken_msg);
        return;
    }
    int progress = 1;
    while (progress && (p->qhead || p->feed_head) && p->state != MPROC__POOL_TERMINATED) {
        progress = 0;
        for (int w = 0; w < p->n && (p->qhead || p->feed_head); w++) {
            if (!can_take(p, &p->ws[w])) continue;
            mproc__chunk *c = next_chunk(p);
            if (!c) break;
            give(p, w, c);
            progress = 1;
        }
    }
}

/* ---- receiving ----------------------------------------------------------------------------- */

static mproc__chunk *take_inflight(mproc__wstate *ws, uint64_t id) {
    mproc__chunk *prev = NULL;
    for (mproc__chunk *c = ws->head; c; prev = c, c = c->next) {
        if (c->id != id) continue;
        if (prev) prev->next = c->next;
        else ws->head = c->next;
        if (ws->tail == c) ws->tail = prev;
        if (c->slot_end) ws->inflight--;
        if (ws->head && !prev) ws->head->started = mproc__now();
        c->next = NULL;
        return c;
    }
    return NULL;
}

static void recycle_if_due(mproc_pool *p, int w) {
    mproc__wstate *ws = &p->ws[w];
    int max = p->opts.maxtasksperchild;
    if (max <= 0 || ws->tasks_done < max || ws->inflight) return;
    ws->recycling = 1;
    mproc__group *g = p->g;
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = p->be->restart_worker(g, w);
    pthread_mutex_lock(&mproc__core_lock);
    if (rc == MPROC_ENOTBUILT) { /* cannot replace (MPI): keep the worker */
        ws->recycling = 0;
        ws->tasks_done = 0;
        return;
    }
    if (rc < 0) { /* the old worker is gone and no new one started (fork failed, say) */
        ws->alive = ws->recycling = 0;
        mproc__pool_check_alive(p);
        return;
    }
    mproc__pool_worker_started(p, w);
}

/* A worker broke the protocol: it is killed and handled as dead. */
static void hostile(mproc_pool *p, int w, const char *what) {
    fprintf(stderr, "mproc: worker %d %s; killing it\n", w, what);
    p->be->kill_worker(p->g, w);
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
    if (!c->job || c->job->kind != MPROC__JOB_MAP || h->length != MPROC__WIRE_RESULT_PREFIX) return -1;
    r->count = mproc__get_u32(frame + MPROC__WIRE_HDR_SIZE);
    r->item_size = mproc__get_u32(frame + MPROC__WIRE_HDR_SIZE + 4);
    r->data_len = (size_t)r->count * r->item_size;
    return r->count == c->count && r->item_size && r->item_size == c->job->out_size ? 0 : -1;
}

static void on_result(mproc_pool *p, int w, const mproc__frame_hdr *h, uint8_t *frame, int placed) {
    mproc__chunk *c = take_inflight(&p->ws[w], h->id);
    if (!c) {
        free(frame);
        hostile(p, w, "answered a task it was not given");
        return;
    }
    if (c->slot_end) mproc__note_service(p, w, c);
    if (c->ghost) { /* already failed by its time limit */
        free(frame);
        free(c);
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
    c->ran_on = w;
    c->ran_pid = r.item_size ? 0 : p->be->worker_pid(p->g, w); /* only a table can hold failures */
    if (c->iter) {
        mproc__iter_deliver(c, frame, &r); /* keeps the frame */
    } else {
        mproc__job_deliver(p, c, &r);
        free(frame);
    }
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
    case MPROC__FRAME_HELLO:
        if (h.length != 12 || mproc__get_u64(frame + MPROC__WIRE_HDR_SIZE) != mproc__registry_fingerprint())
            hostile(p, ev->worker, "has a different task table");
        break;
    default:
        hostile(p, ev->worker, "sent an unexpected frame kind");
    }
    free(frame);
}

/* ---- the result thread ------------------------------------------------------------------- */

static void handle_event(mproc_pool *p, mproc__event *ev) {
    if (ev->kind == MPROC__EV_FRAME) on_frame(p, ev);
    else if (ev->kind == MPROC__EV_DIED) mproc__pool_on_died(p, ev);
}

static void serve_pool(mproc_pool *p) {
    for (;;) {
        if (p->state == MPROC__POOL_TERMINATED) break;
        if (p->state == MPROC__POOL_CLOSED && p->outstanding == 0) break;
        dispatch(p);
        double timeout = mproc__pool_check_timeouts(p);
        mproc__event ev;
        mproc__group *g = p->g;
        p->sleeping = 1;
        pthread_mutex_unlock(&mproc__core_lock);
        int rc = p->be->wait(g, timeout, &ev);
        pthread_mutex_lock(&mproc__core_lock);
        p->sleeping = 0;
        if (rc < 0) { /* the transport failed: every task fails with its reason, not ECLOSED */
            p->broken_err = rc;
            snprintf(p->broken_msg, sizeof p->broken_msg, "the pool stopped: its %s backend failed: %.180s",
                     p->be->name, mproc_last_error());
            fprintf(stderr, "mproc: %s\n", p->broken_msg);
            p->state = MPROC__POOL_TERMINATED;
            break;
        }
        handle_event(p, &ev);
    }
}

static void fail_everything(mproc_pool *p, int err, const char *msg) {
    mproc__pool_fail_queue(p, err, msg);
    for (int w = 0; w < p->n; w++) {
        mproc__chunk *c;
        while ((c = p->ws[w].head)) {
            p->ws[w].head = c->next;
            if (c->ghost) free(c);
            else mproc__pool_settle_fail(p, c, err, msg);
        }
        p->ws[w].tail = NULL;
        p->ws[w].inflight = 0;
    }
}

void *mproc__pool_result_thread(void *arg) {
    mproc_pool *p = arg;
    mproc__group *g = NULL;
    /* Workers are forked from this thread so their parent-death signal follows the pool. */
    int rc = p->be->group_start(p->n, &g);
    pthread_mutex_lock(&mproc__core_lock);
    p->g = g;
    p->thread_running = rc < 0 ? -1 : 1;
    p->start_rc = rc;
    if (rc < 0) snprintf(p->broken_msg, sizeof p->broken_msg, "%s", mproc_last_error());
    mproc__core_broadcast();
    if (rc < 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        return NULL;
    }
    for (int w = 0; w < p->n; w++) mproc__pool_worker_started(p, w);
    serve_pool(p);
    int graceful = p->state != MPROC__POOL_TERMINATED;
    p->g = NULL; /* no more wake()s: the group is freed below */
    pthread_mutex_unlock(&mproc__core_lock);
    /* The group stops before unfinished work fails: a transport may still read inputs it was
     * given with MPROC__SEND_RETAIN, which their callers may free once their work is settled. */
    p->be->group_stop(g, graceful);
    pthread_mutex_lock(&mproc__core_lock);
    if (p->broken_err) fail_everything(p, p->broken_err, p->broken_msg);
    else fail_everything(p, MPROC_ECLOSED, "the pool was terminated before the task finished");
    p->thread_running = 0;
    mproc__core_broadcast();
    pthread_mutex_unlock(&mproc__core_lock);
    return NULL;
}
