/* queue.c - the Queue: a byte ring in shared memory under one robust internal mutex, with wait
 * words for "not empty", "not full" and "all done". An item is an 8-byte length and its bytes
 * padded to 8; a put copies the item and then moves the tail, a get copies it out and then moves
 * the head, so a process killed mid-copy leaves no torn item. The counters beside them are
 * counted again from the ring when a holder of the mutex is found dead.
 */
#include <stdlib.h>
#include <string.h>

#include "shared/shared.h"

#define ROUND8(n) (((n) + 7u) & ~(uint64_t)7u)
#define DEFAULT_CAPACITY (1u << 20)
#define RING_AT ROUND8(sizeof(mproc__sh_queue))

static char *ring(mproc__sh_queue *q) { return (char *)q + q->ring_offset; }

static void ring_write(mproc__sh_queue *q, uint64_t pos, const void *src, uint64_t n) {
    if (n == 0) return; /* src may be NULL then */
    uint64_t at = pos % q->capacity, first = n < q->capacity - at ? n : q->capacity - at;
    memcpy(ring(q) + at, src, first);
    if (n > first) memcpy(ring(q), (const char *)src + first, n - first);
}

static void ring_read(mproc__sh_queue *q, uint64_t pos, void *dst, uint64_t n) {
    uint64_t at = pos % q->capacity, first = n < q->capacity - at ? n : q->capacity - at;
    memcpy(dst, ring(q) + at, first);
    if (n > first) memcpy((char *)dst + first, ring(q), n - first);
}

/* After a holder died: items from the ring itself; unfinished gains what a put committed but
 * did not count. */
static void recount(mproc__sh_queue *q) {
    uint64_t n = 0;
    for (uint64_t pos = q->head; pos < q->tail; n++) {
        uint64_t len;
        ring_read(q, pos, &len, 8);
        pos += 8 + ROUND8(len);
    }
    if (n > q->items) q->unfinished += n - q->items;
    q->items = n;
}

static void enter(mproc__sh_queue *q) {
    if (mproc__sh_enter(&q->mu)) recount(q);
}

size_t mproc__sh_queue_bytes(size_t capacity) { return (size_t)(RING_AT + ROUND8(capacity)); }

int mproc__sh_queue_init(mproc__sh_queue *q, size_t maxsize, size_t capacity, uint64_t ring_offset) {
    int rc = mproc__sh_mutex_init(&q->mu, PTHREAD_MUTEX_NORMAL);
    if (rc < 0) return rc;
    q->maxsize = maxsize;
    q->capacity = ROUND8(capacity);
    q->ring_offset = ring_offset;
    return 0;
}

/* With q->mu held: sleeps on word (counted in *sleepers) until it moves or the deadline, and
 * holds q->mu again after. 1 when the deadline had passed (nothing slept), else 0. */
static int sleep_in(mproc__sh_queue *q, _Atomic uint32_t *word, uint32_t *sleepers, double deadline) {
    if (deadline >= 0 && mproc__now() >= deadline) return 1;
    uint32_t seen = atomic_load(word);
    (*sleepers)++;
    mproc__sh_leave(&q->mu);
    mproc__sh_wait(word, seen, deadline);
    enter(q);
    (*sleepers)--;
    return 0;
}

int mproc__sh_queue_put(mproc__sh_queue *q, const void *data, size_t len, double deadline) {
    uint64_t need = 8 + ROUND8((uint64_t)len);
    if (need > q->capacity) return MPROC_ETOOBIG;
    enter(q);
    for (int rc = 0; !rc;) {
        if (q->dead || q->closed) rc = q->dead ? MPROC_EBADHANDLE : MPROC_ECLOSED;
        else if (q->tail - q->head + need <= q->capacity && (!q->maxsize || q->items < q->maxsize)) break;
        else if (sleep_in(q, &q->not_full, &q->putters, deadline)) rc = MPROC_EFULL;
        if (rc) {
            mproc__sh_leave(&q->mu);
            return rc;
        }
    }
    uint64_t hdr = len;
    ring_write(q, q->tail, &hdr, 8);
    ring_write(q, q->tail + 8, data, len);
    q->tail += need; /* the commit */
    q->items++;
    q->unfinished++;
    int wake = q->getters > 0;
    mproc__sh_leave(&q->mu);
    if (wake) mproc__sh_wake(&q->not_empty, 1);
    return 0;
}

/* Waits until an item is first in the queue: 0 with q->mu held, or (q->mu released)
 * MPROC_EBADHANDLE (freed), MPROC_ECLOSED (closed and empty), MPROC_EEMPTY (the deadline). */
static int wait_for_item(mproc__sh_queue *q, double deadline) {
    enter(q);
    for (int rc = 0;;) {
        if (q->dead) rc = MPROC_EBADHANDLE;
        else if (q->tail != q->head) return 0;
        else if (q->closed) rc = MPROC_ECLOSED;
        else if (sleep_in(q, &q->not_empty, &q->getters, deadline)) rc = MPROC_EEMPTY;
        if (rc) {
            mproc__sh_leave(&q->mu);
            return rc;
        }
    }
}

int mproc__sh_queue_get(mproc__sh_queue *q, void *buf, size_t cap, int exact, void **owned, size_t *len, double deadline) {
    int rc = wait_for_item(q, deadline);
    if (rc) return rc;
    uint64_t n;
    ring_read(q, q->head, &n, 8);
    *len = (size_t)n;
    if (buf && (n > cap || (exact && n != cap))) { /* stays first; someone else asleep may have room for it */
        int pass = q->getters > 0;
        mproc__sh_leave(&q->mu);
        if (pass) mproc__sh_wake(&q->not_empty, 1);
        return MPROC_ESIZE;
    }
    if (!buf && !(buf = *owned = malloc(n ? (size_t)n : 1))) {
        mproc__sh_leave(&q->mu);
        return MPROC_ENOMEM;
    }
    ring_read(q, q->head + 8, buf, n);
    q->head += 8 + ROUND8(n); /* the commit */
    q->items--;
    int wake = q->putters > 0, more = q->getters > 0 && q->tail != q->head;
    mproc__sh_leave(&q->mu);
    if (wake) mproc__sh_wake(&q->not_full, -1); /* all: a woken putter may need more room than was freed */
    if (more) mproc__sh_wake(&q->not_empty, 1);
    return 0;
}

int mproc__sh_queue_poll(mproc__sh_queue *q, double deadline) {
    int rc = wait_for_item(q, deadline);
    if (rc == 0) mproc__sh_leave(&q->mu);
    return rc == 0 || rc == MPROC_ECLOSED ? 1 : rc == MPROC_EEMPTY ? 0 : rc;
}

void mproc__sh_queue_close(mproc__sh_queue *q) {
    enter(q);
    q->closed = 1;
    mproc__sh_leave(&q->mu);
    mproc__sh_wake(&q->not_empty, -1);
    mproc__sh_wake(&q->not_full, -1);
}

int mproc__sh_queue_kill(mproc__sh_queue *q) {
    enter(q);
    q->dead = 1;
    int busy = q->getters + q->putters + q->joiners > 0;
    mproc__sh_leave(&q->mu);
    if (busy) {
        mproc__sh_wake(&q->not_empty, -1);
        mproc__sh_wake(&q->not_full, -1);
        mproc__sh_wake(&q->joined, -1);
    }
    return busy;
}

/* ---- the public Queue ----------------------------------------------------------------------- */

static mproc__sh_queue *queue_of(const mproc_queue *q, const char *fn, int *rc) {
    return mproc__sh_get(q ? &q->ref : NULL, MPROC__SH_QUEUE, fn, rc);
}

int mproc_queue_create(mproc_queue *out, const mproc_queue_opts *opts) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_queue_create: out is NULL");
    size_t cap = opts && opts->capacity ? opts->capacity : DEFAULT_CAPACITY, maxsize = opts ? opts->maxsize : 0;
    if (cap < 64 || cap > ((size_t)1 << 40))
        return mproc__error(MPROC_EINVAL, "mproc_queue_create: capacity %zu bytes, want 64..2^40 (0 for 1 MiB)", cap);
    mproc__sh_queue *q;
    int rc = mproc__sh_alloc(MPROC__SH_QUEUE, mproc__sh_queue_bytes(cap), &out->ref, (void **)&q, "mproc_queue_create");
    if (rc < 0) return rc;
    if ((rc = mproc__sh_queue_init(q, maxsize, cap, RING_AT)) < 0) mproc__sh_free(&out->ref, MPROC__SH_QUEUE, "mproc_queue_create");
    return rc;
}

int mproc_queue_put(const mproc_queue *queue, const void *data, size_t len, double timeout) {
    int rc;
    double dl;
    mproc__sh_queue *q = queue_of(queue, "mproc_queue_put", &rc);
    if (!q && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_queue_put")) < 0) return rc;
    if (!data && len) return mproc__error(MPROC_EINVAL, "mproc_queue_put: data is NULL but len is %zu", len);
    if (!q) {
        mproc__sh_call c = {.op = MPROC__OP_QUEUE_PUT, .ref = &queue->ref, .timeout = timeout, .in = data, .in_len = len,
                            .fn = "mproc_queue_put"};
        return mproc__sh_remote(&c);
    }
    rc = mproc__sh_queue_put(q, data, len, dl);
    switch (rc) {
    case MPROC_EBADHANDLE:
        return mproc__sh_freed_while_waiting("mproc_queue_put");
    case MPROC_ETOOBIG:
        return mproc__error(rc, "mproc_queue_put: an item of %zu bytes can never fit a queue of %llu bytes (an item takes "
                                "its length rounded up to 8, plus 8)", len, (unsigned long long)q->capacity);
    case MPROC_EFULL:
        return mproc__error(rc, "mproc_queue_put: the queue stayed full for %g s", timeout);
    case MPROC_ECLOSED:
        return mproc__error(rc, "mproc_queue_put: the queue is closed");
    }
    return rc;
}

static int queue_get(const mproc_queue *queue, void *buf, size_t cap, int exact, void **owned, size_t *len, double timeout, const char *fn) {
    int rc;
    double dl;
    mproc__sh_queue *q = queue_of(queue, fn, &rc);
    if (!q && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, fn)) < 0) return rc;
    if (!q) { /* a = the room (-1: any length, into a buffer of its own), b = exact */
        mproc__sh_call c = {.op = MPROC__OP_QUEUE_GET, .ref = &queue->ref, .timeout = timeout, .a = buf ? (int64_t)cap : -1,
                            .b = exact, .out = buf, .out_cap = buf ? cap : 0, .owned = owned, .fn = fn};
        rc = mproc__sh_remote(&c);
        *len = rc == 0 ? c.out_len : (size_t)c.value;
        if (rc == 0 && !buf && !*owned && !(*owned = malloc(1))) return mproc__error(MPROC_ENOMEM, "%s: no memory", fn);
        return rc;
    }
    rc = mproc__sh_queue_get(q, buf, cap, exact, owned, len, dl);
    switch (rc) {
    case MPROC_EBADHANDLE:
        return mproc__sh_freed_while_waiting(fn);
    case MPROC_EEMPTY:
        return mproc__error(rc, "%s: the queue stayed empty for %g s", fn, timeout);
    case MPROC_ECLOSED:
        return mproc__error(rc, "%s: the queue is closed and empty", fn);
    case MPROC_ESIZE:
        return mproc__error(rc, "%s: the next item is %zu bytes, %s %zu (the item stays in the queue)", fn, *len,
                            exact ? "want exactly" : "the buffer holds", cap);
    case MPROC_ENOMEM:
        return mproc__error(rc, "%s: no memory for an item of %zu bytes (it stays in the queue)", fn, *len);
    }
    return rc;
}

int mproc_queue_get(const mproc_queue *q, void *buf, size_t cap, size_t *len, double timeout) {
    size_t n = 0;
    if (!buf && cap) return mproc__error(MPROC_EINVAL, "mproc_queue_get: buf is NULL but cap is %zu", cap);
    char dummy;
    int rc = queue_get(q, buf ? buf : &dummy, cap, 0, NULL, &n, timeout, "mproc_queue_get");
    if (len) *len = rc == 0 || rc == MPROC_ESIZE ? n : 0;
    return rc;
}

int mproc_queue_get_exact(const mproc_queue *q, void *buf, size_t size, double timeout) {
    if (!buf) return mproc__error(MPROC_EINVAL, "mproc_queue_get_exact: buf is NULL");
    size_t n = 0;
    return queue_get(q, buf, size, 1, NULL, &n, timeout, "mproc_queue_get_exact");
}

int mproc_queue_get_buf(const mproc_queue *q, mproc_buf *out, double timeout) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_queue_get_buf: out is NULL");
    void *data = NULL;
    size_t n = 0;
    int rc = queue_get(q, NULL, 0, 0, &data, &n, timeout, "mproc_queue_get_buf");
    out->data = rc == 0 ? data : NULL;
    out->len = rc == 0 ? n : 0;
    return rc;
}

long mproc_queue_qsize(const mproc_queue *queue) {
    int rc;
    mproc__sh_queue *q = queue_of(queue, "mproc_queue_qsize", &rc);
    if (!q && rc == MPROC__SH_REMOTE) {
        mproc__sh_call c = {.op = MPROC__OP_QUEUE_QSIZE, .ref = &queue->ref, .fn = "mproc_queue_qsize"};
        rc = mproc__sh_remote(&c);
        return rc < 0 ? rc : (long)c.value;
    }
    if (!q) return rc;
    enter(q);
    long n = (long)q->items;
    mproc__sh_leave(&q->mu);
    return n;
}

int mproc_queue_close(const mproc_queue *queue) {
    int rc;
    mproc__sh_queue *q = queue_of(queue, "mproc_queue_close", &rc);
    if (!q && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_QUEUE_CLOSE, &queue->ref, 0, 0, "mproc_queue_close");
    if (!q) return rc;
    mproc__sh_queue_close(q);
    return 0;
}

int mproc_queue_task_done(const mproc_queue *queue) {
    int rc;
    mproc__sh_queue *q = queue_of(queue, "mproc_queue_task_done", &rc);
    if (!q && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_QUEUE_TASK_DONE, &queue->ref, 0, 0, "mproc_queue_task_done");
    if (!q) return rc;
    enter(q);
    if (q->unfinished == 0) {
        mproc__sh_leave(&q->mu);
        return mproc__error(MPROC_ESTATE, "mproc_queue_task_done: called more times than items were put");
    }
    int done = --q->unfinished == 0;
    mproc__sh_leave(&q->mu);
    if (done) mproc__sh_wake(&q->joined, -1);
    return 0;
}

int mproc_queue_join(const mproc_queue *queue, double timeout) {
    int rc;
    double dl;
    mproc__sh_queue *q = queue_of(queue, "mproc_queue_join", &rc);
    if (!q && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_queue_join")) < 0) return rc;
    if (!q) return mproc__sh_forward(MPROC__OP_QUEUE_JOIN, &queue->ref, timeout, 0, "mproc_queue_join");
    for (;;) {
        uint32_t seen = atomic_load(&q->joined);
        enter(q);
        uint64_t left = q->unfinished;
        int dead = q->dead;
        if (left && !dead) q->joiners++;
        mproc__sh_leave(&q->mu);
        if (dead) return mproc__sh_freed_while_waiting("mproc_queue_join");
        if (left == 0) return 0;
        rc = mproc__sh_wait(&q->joined, seen, dl);
        enter(q);
        q->joiners--;
        mproc__sh_leave(&q->mu);
        if (rc == MPROC_ETIMEDOUT)
            return mproc__error(MPROC_ETIMEDOUT, "mproc_queue_join: %llu items still unfinished after %g s",
                                (unsigned long long)left, timeout);
    }
}

int mproc_queue_free(mproc_queue *queue) {
    int rc;
    mproc__sh_queue *q = queue_of(queue, "mproc_queue_free", &rc);
    if (!q && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_QUEUE_FREE, &queue->ref, "mproc_queue_free");
    if (!q) return rc;
    int busy = mproc__sh_queue_kill(q);
    return mproc__sh_free_ex(&queue->ref, MPROC__SH_QUEUE, "mproc_queue_free", !busy);
}
