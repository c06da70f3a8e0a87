/* queue.c - the bottom of the pool: the library-wide lock, chunks and what they say about
 * themselves, the pool's queue of chunks and its list of owners that make theirs lazily, and
 * settling a chunk through its owner's ops.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool/pool.h"

uint64_t mproc__chunk_new_id(void) {
    static _Atomic uint64_t last;
    return atomic_fetch_add(&last, 1) + 1;
}

static pthread_cond_t core_cond;
static pthread_once_t core_cond_once = PTHREAD_ONCE_INIT;

static void init_core_cond(void) { mproc__cond_init(&core_cond); }

void mproc__cond_init(pthread_cond_t *c) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

void mproc__cond_wait(pthread_cond_t *c, double deadline) {
    if (deadline < 0) {
        pthread_cond_wait(c, &mproc__core_lock);
        return;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)deadline;
    ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
    pthread_cond_timedwait(c, &mproc__core_lock, &ts);
}

void mproc__core_wait(double deadline) {
    pthread_once(&core_cond_once, init_core_cond);
    mproc__cond_wait(&core_cond, deadline);
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

/* ---- the queue ------------------------------------------------------------------------- */

void mproc__pool_enqueue(mproc_pool *p, mproc__chunk *c) {
    c->next = NULL;
    if (p->qtail) p->qtail->next = c;
    else p->qhead = c;
    p->qtail = c;
    p->outstanding++;
    mproc__pool_kick(p);
}

void mproc__pool_feed_add(mproc_pool *p, mproc__owner *o) {
    o->feed_next = NULL;
    if (p->feed_tail) p->feed_tail->feed_next = o;
    else p->feed_head = o;
    p->feed_tail = o;
    mproc__pool_kick(p);
}

/* Puts the list first..last back at the front of its queue, in order: a suspect (a lost rank's
 * re-run, faults.c) in the suspects' queue, any other chunk in the pool's queue. */
void mproc__pool_push_front_list(mproc_pool *p, mproc__chunk *first, mproc__chunk *last) {
    mproc__chunk *plain = NULL, **ptail = &plain, *sus = NULL, **stail = &sus, *plain_last = NULL, *sus_last = NULL;
    last->next = NULL;
    for (mproc__chunk *c = first, *next; c; c = next) {
        next = c->next;
        c->next = NULL;
        if (c->suspect) {
            *stail = sus_last = c;
            stail = &c->next;
        } else {
            *ptail = plain_last = c;
            ptail = &c->next;
        }
    }
    if (plain) {
        plain_last->next = p->qhead;
        p->qhead = plain;
        if (!p->qtail) p->qtail = plain_last;
    }
    if (sus) {
        sus_last->next = p->sq_head;
        p->sq_head = sus;
        if (!p->sq_tail) p->sq_tail = sus_last;
    }
}

void mproc__pool_push_front(mproc_pool *p, mproc__chunk *c) { mproc__pool_push_front_list(p, c, c); }

static void feed_pop(mproc_pool *p) {
    p->feed_head = p->feed_head->feed_next;
    if (!p->feed_head) p->feed_tail = NULL;
}

void mproc__pool_feed_remove(mproc_pool *p, mproc__owner *o) {
    mproc__owner *prev = NULL;
    for (mproc__owner *f = p->feed_head; f; prev = f, f = f->feed_next) {
        if (f != o) continue;
        if (prev) prev->feed_next = f->feed_next;
        else p->feed_head = f->feed_next;
        if (p->feed_tail == f) p->feed_tail = prev;
        f->feed_next = NULL;
        return;
    }
}

mproc__chunk *mproc__pool_next_suspect(mproc_pool *p) {
    mproc__chunk *c;
    while ((c = p->sq_head)) {
        p->sq_head = c->next;
        if (!p->sq_head) p->sq_tail = NULL;
        c->next = NULL;
        if (!c->owner->cancel_err) return c;
        mproc__pool_settle_cancelled(p, c);
    }
    return NULL;
}

/* Unlinks o's chunks from the queue at *head / *tail onto **out, in order. */
static void take_owner_from(mproc__chunk **head, mproc__chunk **tail, const mproc__owner *o, mproc__chunk ***out) {
    mproc__chunk **pp = head, *last = NULL;
    while (*pp) {
        mproc__chunk *c = *pp;
        if (c->owner == o) {
            *pp = c->next;
            c->next = NULL;
            **out = c;
            *out = &c->next;
        } else {
            last = c;
            pp = &c->next;
        }
    }
    *tail = last;
}

mproc__chunk *mproc__pool_unqueue_owner(mproc_pool *p, const mproc__owner *o) {
    mproc__chunk *mine = NULL, **out = &mine;
    take_owner_from(&p->sq_head, &p->sq_tail, o, &out);
    take_owner_from(&p->qhead, &p->qtail, o, &out);
    return mine;
}

mproc__chunk *mproc__pool_next_chunk(mproc_pool *p) {
    mproc__chunk *c;
    /* A cancelled call's chunk that came back to the queue (its worker died, a re-run split
     * it) is settled here rather than sent. */
    while ((c = p->qhead) && c->owner->cancel_err) {
        p->qhead = c->next;
        if (!p->qhead) p->qtail = NULL;
        mproc__pool_settle_cancelled(p, c);
    }
    if (c) {
        p->qhead = c->next;
        if (!p->qhead) p->qtail = NULL;
    } else if (p->feed_head) {
        mproc__owner *o = p->feed_head;
        int exhausted = 0;
        c = o->ops->make_chunk(p, o, &exhausted);
        if (exhausted) feed_pop(p);
    }
    if (c) c->next = NULL;
    return c;
}

void mproc__pool_settle_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg) {
    p->outstanding--;
    c->owner->ops->fail(p, c, err, msg);
}

void mproc__pool_settle_cancelled(mproc_pool *p, mproc__chunk *c) {
    mproc__owner *o = c->owner;
    mproc__pool_settle_fail(p, c, o->cancel_err, o->cancel_msg ? o->cancel_msg : mproc_strerror(o->cancel_err));
}

int mproc__pool_settle_withdrawn(mproc_pool *p) {
    mproc__chunk *left = NULL, *c;
    while ((c = p->withdrawn)) { /* settling drops the lock: a cancel may add more meanwhile */
        p->withdrawn = c->next;
        c->next = NULL;
        if (c->lent && !mproc__pool_withdraw(p, c->withdraw_from, c)) {
            c->next = left; /* its input still in a send: next time */
            left = c;
            continue;
        }
        mproc__pool_settle_cancelled(p, c);
    }
    p->withdrawn = left;
    return left != NULL;
}

/* Fails every chunk of the queue at *head / *tail. */
static void fail_list(mproc_pool *p, mproc__chunk **head, mproc__chunk **tail, int err, const char *msg) {
    mproc__chunk *c;
    while ((c = *head)) {
        *head = c->next;
        if (!*head) *tail = NULL;
        mproc__pool_settle_fail(p, c, err, msg);
    }
}

void mproc__pool_fail_queue(mproc_pool *p, int err, const char *msg) {
    while (p->feed_head) {
        mproc__owner *o = p->feed_head;
        feed_pop(p);
        p->outstanding -= o->ops->fail_unmade(p, o, err, msg);
    }
    fail_list(p, &p->sq_head, &p->sq_tail, err, msg);
    fail_list(p, &p->qhead, &p->qtail, err, msg);
}

void mproc__pool_worker_may_take(mproc_pool *p, int w) {
    if (p->in_ring[w]) return;
    p->in_ring[w] = 1;
    p->ring[(p->ring_head + p->ring_len++) % p->n] = w;
}

int mproc__pool_next_worker(mproc_pool *p) {
    if (p->ring_len == 0) return -1;
    int w = p->ring[p->ring_head];
    p->ring_head = (p->ring_head + 1) % p->n;
    p->ring_len--;
    p->in_ring[w] = 0;
    return w;
}

void mproc__pool_wait_send(mproc_pool *p, const mproc__owner *o) {
    while (p->sending == o) {
        p->sending_waited = 1;
        mproc__core_wait(-1);
    }
}

/* ---- what a chunk says about itself ---------------------------------------------------- */

const char *mproc__chunk_task_name(const mproc__chunk *c) { return c->owner->task->name; }

double mproc__chunk_timeout(const mproc_pool *p, const mproc__chunk *c) {
    double t = c->owner->timeout;
    if (t <= 0) t = p->opts.task_timeout;
    return t > 0 ? t * c->count : 0;
}

size_t mproc__item_failure(char *buf, size_t cap, const mproc__chunk *c, const uint8_t *msg, size_t len) {
    int k = snprintf(buf, cap, "task '%.64s' failed on worker %d (pid %ld): %.*s", mproc__chunk_task_name(c),
                     c->ran_on, c->ran_pid, (int)(len > 700 ? 700 : len), msg ? (const char *)msg : "");
    return k < 0 ? 0 : (size_t)k >= cap ? cap - 1 : (size_t)k;
}

int mproc__call_opts_check(const mproc_call_opts *o, int kind, const char *fn) {
    if (!o) return 0;
    if (!(o->timeout >= 0)) /* negative or NaN */
        return mproc__error(MPROC_EINVAL, "%s: timeout is %g: want seconds >= 0 (0 = the pool's)", fn, o->timeout);
    if (o->journal_sync && !o->journal)
        return mproc__error(MPROC_EINVAL, "%s: journal_sync is %d but there is no journal", fn, o->journal_sync);
    if (kind == MPROC__CALL_MAP) return 0;
    const char *what = o->fail_fast ? "fail_fast" : NULL;
    if (kind == MPROC__CALL_APPLY && !what)
        what = o->journal ? "journal" : o->item_status ? "item_status" : o->progress ? "progress" : o->progress_bar ? "progress_bar"
             : o->progress_hz ? "progress_hz" : o->chunksize ? "chunksize" : NULL;
    if (kind == MPROC__CALL_IMAP && !what)
        what = o->item_status ? "item_status" : o->callback ? "callback" : o->error_callback ? "error_callback" : NULL;
    if (!what) return 0;
    return mproc__error(MPROC_EINVAL, "%s: option %s does not apply to this call (%s)", fn, what,
                        kind == MPROC__CALL_APPLY ? "it is for maps" : "an imap reports each item through mproc_iter_next, "
                                                                      "and stops when you stop reading");
}

int mproc__items_check(const mproc_task *task, const mproc_item *items, size_t n, const char *fn) {
    if (n && !items) return mproc__error(MPROC_EINVAL, "%s: in is NULL", fn);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].data && items[i].len)
            return mproc__error(MPROC_EINVAL, "%s: item %zu has %zu bytes at NULL", fn, i, items[i].len);
        if (task->in_size && items[i].len != task->in_size)
            return mproc__error(MPROC_ESIZE, "%s: task '%s' takes %zu-byte items; item %zu has %zu", fn, task->name,
                                task->in_size, i, items[i].len);
        if (items[i].len > MPROC__WIRE_MAX_PAYLOAD / 2)
            return mproc__error(MPROC_ETOOBIG, "%s: item %zu has %zu bytes, over 1 GiB", fn, i, items[i].len);
    }
    return 0;
}

size_t mproc__items_mean(const mproc_item *items, size_t n, size_t *largest) {
    size_t total = 0, top = 1;
    for (size_t i = 0; i < n; i++) {
        total += items[i].len;
        if (items[i].len > top) top = items[i].len;
    }
    *largest = top;
    return n ? total / n + 1 : 1;
}

size_t mproc__chunk_cap(size_t chunksize, size_t largest) {
    size_t cap = (MPROC__WIRE_MAX_PAYLOAD / 2) / (largest ? largest : 1);
    if (cap < 1) cap = 1; /* one item always fits: items are at most 1 GiB */
    if (chunksize > cap) chunksize = cap;
    return chunksize > MPROC__WIRE_MAX_ITEMS ? MPROC__WIRE_MAX_ITEMS : chunksize;
}

int mproc__items_pack(const mproc_item *items, size_t count, uint8_t **buf, size_t *len) {
    size_t table = mproc__wire_lens_size((uint32_t)count), total = table;
    for (size_t i = 0; i < count; i++) total += items[i].len;
    uint8_t *b = malloc(total ? total : 1);
    *buf = b;
    *len = total;
    if (!b) return -1;
    memset(b, 0, table); /* the table's padding is zeros */
    uint8_t *d = b + table;
    for (size_t i = 0; i < count; i++) {
        mproc__put_u32(b + 4 * i, (uint32_t)items[i].len);
        if (items[i].len) memcpy(d, items[i].data, items[i].len);
        d += items[i].len;
    }
    return 0;
}

const uint8_t *mproc__items_unpack(const uint8_t *buf, uint32_t count, uint32_t i, size_t *len) {
    const uint8_t *d = buf + mproc__wire_lens_size(count);
    for (uint32_t k = 0; k < i; k++) d += mproc__get_u32(buf + 4 * k);
    *len = mproc__get_u32(buf + 4 * i);
    return d;
}

size_t mproc__chunk_head(const mproc__chunk *c, uint8_t head[MPROC__CHUNK_HEAD_MAX]) {
    const mproc__owner *o = c->owner;
    /* One argument of its own length (apply, or an item re-run alone): its one-entry length
     * table goes in the head. A packed chunk carries its table in its input. */
    int variable = o->in_size == 0 && !c->packed_lens;
    size_t head_len = MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX + (variable ? 8 : 0);
    size_t payload = head_len - MPROC__WIRE_HDR_SIZE + c->in_len;
    memset(head, 0, head_len); /* head may sit inside a batch buffer: write only head_len */
    mproc__hdr_encode(head, MPROC__FRAME_TASK, c->id, (uint32_t)payload, (uint32_t)o->task->id);
    mproc__task_prefix_encode(head + MPROC__WIRE_HDR_SIZE, c->count, variable ? 0 : (uint32_t)o->in_size);
    if (variable) mproc__put_u32(head + MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX, (uint32_t)c->in_len);
    return head_len;
}
