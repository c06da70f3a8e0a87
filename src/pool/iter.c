/* iter.c - imap and imap_unordered: results stream back through an iterator while new
 * input is submitted only as old results are consumed, so at most `window` chunks exist at
 * once whatever the input's length (array or generator). An iterator is the owner of its
 * chunks (pool.h): the scheduler reaches it only through iter_ops.
 *
 * A result chunk keeps the frame it arrived in; items are read out of it in place. Ordered
 * iteration delivers by input index, so chunks split after a crash still come back in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

static void iter_chunk_free(mproc__chunk *c) {
    free(c->frame);
    free(c->fail_msg);
    mproc__chunk_free(c);
}

static void iter_destroy(mproc_iter *it) {
    mproc__mark_dead(&it->magic, MPROC__DEAD_MAGIC);
    mproc__progress_free(it->owner.prog);
    free(it->owner.cancel_msg);
    free(it);
}

static void iter_unlink(mproc_iter *it) {
    mproc_pool *p = it->pool;
    if (!p) return;
    if (it->prev_live) it->prev_live->next_live = it->next_live;
    else if (p->iters == it) p->iters = it->next_live;
    if (it->next_live) it->next_live->prev_live = it->prev_live;
    it->next_live = it->prev_live = NULL;
}

/* A settled chunk reaches its iterator (lock held). */
static void iter_settled(mproc__chunk *c) {
    mproc_iter *it = (mproc_iter *)c->owner;
    if (it->abandoned) {
        iter_chunk_free(c);
        if (--it->owner.live_chunks == 0) iter_destroy(it);
        return;
    }
    c->next = it->done;
    it->done = c;
    mproc__core_broadcast();
}

/* Items of a result that failed (a table of statuses; fixed-size results cannot fail). */
static size_t failed_items(const mproc__results *r) {
    if (r->item_size) return 0;
    size_t cur = 0, len, failed = 0;
    int st;
    for (uint32_t i = 0; i < r->count; i++) {
        mproc__results_next(r, i, &cur, &st, &len);
        failed += st != 0;
    }
    return failed;
}

/* Counts a settled chunk's items; the callback (lock dropped) runs while c is still live, so
 * an mproc_iter_free meanwhile leaves the iterator to its last chunk. */
static void count_items(mproc_iter *it, size_t items, size_t failed) {
    if (!it->abandoned) mproc__progress_note(it->owner.prog, items, failed);
}

/* The chunk keeps its frame: items are read out of it in place. */
static void iter_deliver(mproc_pool *p, mproc__chunk *c, uint8_t *frame, const mproc__results *r) {
    (void)p;
    c->frame = frame;
    c->res = *r;
    mproc_iter *it = (mproc_iter *)c->owner;
    if (!it->abandoned) mproc__iter_journal_results(it, c, r);
    count_items(it, c->count, failed_items(r));
    iter_settled(c);
}

static void iter_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg) {
    (void)p;
    c->fail_err = err;
    c->fail_msg = strdup(msg ? msg : "");
    mproc_iter *it = (mproc_iter *)c->owner;
    if (!it->abandoned) mproc__iter_journal_failed(it, c, err, c->fail_msg ? c->fail_msg : "");
    count_items(it, c->count, c->count);
    iter_settled(c);
}

/* An iterator submits its own chunks (top_up), as they are consumed: no lazy ops. */
static const mproc__owner_ops iter_ops = {.deliver = iter_deliver, .fail = iter_fail};

void mproc__iter_detach_all(mproc_pool *p) {
    mproc_iter *it;
    while ((it = p->iters)) {
        iter_unlink(it);
        it->pool = NULL;
    }
}

/* Reads up to chunksize items from the generator into a new buffer (lock released meanwhile). */
static size_t generate(mproc_iter *it, uint8_t **buf) {
    uint8_t *b = malloc(it->chunksize * it->owner.in_size);
    size_t count = 0;
    *buf = b;
    if (!b) {
        it->input_err = mproc__error(MPROC_ENOMEM, "imap: no memory for generated input");
        return 0;
    }
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = 1;
    while (count < it->chunksize && (rc = it->gen(it->userdata, it->next_item + count, b + count * it->owner.in_size)) == 1)
        count++;
    pthread_mutex_lock(&mproc__core_lock);
    if (rc < 0) it->input_err = rc;
    if (rc != 1) it->input_done = 1;
    return count;
}

/* Submits chunks until the window is full or the input ends (lock held). */
static void top_up(mproc_iter *it) {
    /* A journaled imap keeps the narrow window: what runs unrecorded when it is dropped (or
     * killed) stays a few chunks per worker, as its resume promises. */
    if (it->pool) it->window = mproc__iter_window(it->pool, it->chunksize, it->journal ? 0 : it->chunksize * it->owner.in_size);
    while (!it->input_done && it->owner.live_chunks < it->window && it->pool && it->pool->state == MPROC__POOL_RUN) {
        uint8_t *owned = NULL;
        size_t count;
        if (it->gen) {
            count = generate(it, &owned);
            if (!it->pool || it->pool->state != MPROC__POOL_RUN) count = 0; /* freed meanwhile */
        } else {
            while (mproc__iter_replayed(it, it->next_item)) it->next_item++; /* delivered from the journal */
            if (it->next_item >= it->n) {
                it->input_done = 1;
                break;
            }
            count = it->n - it->next_item;
            if (count > it->chunksize) count = it->chunksize;
            for (size_t k = 1; it->replayed && k < count; k++) /* a chunk ends where a replayed item is */
                if (mproc__iter_replayed(it, it->next_item + k)) count = k;
        }
        size_t packed_len = 0;
        if (it->items && count && mproc__items_pack(it->items + it->next_item, count, &owned, &packed_len) < 0) {
            free(owned);
            owned = NULL;
            count = 0; /* out of memory: reported below */
            it->input_err = mproc__error(MPROC_ENOMEM, "imap: out of memory");
        }
        mproc__chunk *c = count ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            free(owned);
            if (count) it->input_err = mproc__error(MPROC_ENOMEM, "imap: out of memory");
            it->input_done = 1;
            return;
        }
        c->owner = &it->owner;
        c->id = mproc__chunk_new_id();
        c->first = it->next_item;
        c->count = (uint32_t)count;
        c->owned = owned;
        c->in = owned ? owned : it->in + it->next_item * it->owner.in_size;
        c->in_len = it->items ? packed_len : count * it->owner.in_size;
        c->packed_lens = it->items != NULL;
        it->next_item += count;
        while (mproc__iter_replayed(it, it->next_item)) it->next_item++;
        if (!it->gen && it->next_item >= it->n) it->input_done = 1;
        it->owner.live_chunks++;
        mproc__pool_enqueue(it->pool, c);
    }
    if (it->gen && it->input_done && !it->input_err && it->owner.prog && !it->owner.prog->total && it->next_item) {
        it->owner.prog->total = it->next_item; /* now known */
        mproc__progress_note(it->owner.prog, 0, 0);
    }
}

static mproc__chunk *pick_done(mproc_iter *it) {
    mproc__chunk **pp = &it->done;
    for (; *pp; pp = &(*pp)->next) {
        if (it->ordered && (*pp)->first != it->want_item) continue;
        mproc__chunk *c = *pp;
        *pp = c->next;
        c->next = NULL;
        if (it->ordered) it->want_item += c->count;
        return c;
    }
    return NULL;
}

/* Takes the next item of the current chunk (lock held). */
static int take_item(mproc_iter *it, const void **data, size_t *len, size_t *index) {
    mproc__chunk *c = it->cur;
    uint32_t i = it->cur_i++;
    if (index) *index = c->first + i;
    if (c->fail_err)
        return mproc__error(c->fail_err, "%s", c->fail_msg ? c->fail_msg : mproc_strerror(c->fail_err));
    int st;
    size_t blen;
    const uint8_t *blob = mproc__results_next(&c->res, i, &it->cur_cursor, &st, &blen);
    if (st < 0) {
        char m[512];
        mproc__item_failure(m, sizeof m, c, blob, blen);
        return mproc__error(st, "%s", m);
    }
    if (data) *data = blob;
    if (len) *len = blen;
    return 0;
}

/* The pool stopped taking work before the whole input was submitted, and everything that was
 * submitted has been delivered. Each item that never reached a worker is reported once, as
 * ECLOSED with its own index; generated input, whose length nobody knows, reports its next
 * index once and ends there. Then EOF. Lock held. */
static int unsubmitted_item(mproc_iter *it, size_t *index) {
    while (mproc__iter_replayed(it, it->next_item)) it->next_item++; /* those come from the journal */
    size_t i = it->next_item;
    if (index) *index = i;
    it->want_item = ++it->next_item;
    if (it->gen || it->next_item >= it->n) it->input_done = 1;
    mproc__progress_note(it->owner.prog, 1, 1); /* counted as reported: ended, failed */
    if (it->gen)
        return mproc__error(MPROC_ECLOSED, "mproc_iter_next: the pool was %s before the generated input "
                            "ended; item %zu and any after it were never generated", it->pool ? "closed" : "freed", i);
    return mproc__error(MPROC_ECLOSED, "mproc_iter_next: item %zu never ran: the pool was %s before it was "
                        "submitted", i, it->pool ? "closed" : "freed");
}

/* An item's outcome from the journal, when one is due: unordered, any time; ordered, in its
 * turn. 1 with *rc as for a live item, or 0. */
static int take_replayed(mproc_iter *it, int *rc, const void **data, size_t *len, size_t *index) {
    if (it->replay_cur == it->replay_n) return 0;
    const mproc__replayed_item *r = &it->replay[it->replay_cur];
    if (it->ordered && r->index != it->want_item) return 0;
    it->replay_cur++;
    if (it->ordered) it->want_item++;
    if (index) *index = r->index;
    if (r->status < 0) {
        *rc = mproc__error(r->status, "%.*s", (int)(r->len > 900 ? 900 : r->len), (const char *)r->bytes);
        return 1;
    }
    if (data) *data = r->bytes;
    if (len) *len = r->len;
    *rc = 0;
    return 1;
}

/* One step of next(): 1 = an item or an error was produced in *rc, 0 = must wait. */
static int next_step(mproc_iter *it, int *rc, const void **data, size_t *len, size_t *index) {
    if (it->cur && it->cur_i < it->cur->count) {
        *rc = take_item(it, data, len, index);
        return 1;
    }
    if (it->cur) {
        iter_chunk_free(it->cur);
        it->cur = NULL;
        it->owner.live_chunks--;
    }
    top_up(it);
    if (take_replayed(it, rc, data, len, index)) return 1;
    if ((it->cur = pick_done(it))) {
        it->cur_i = 0;
        it->cur_cursor = 0;
        return next_step(it, rc, data, len, index);
    }
    if (it->input_done && it->owner.live_chunks == 0 && it->replay_cur == it->replay_n) {
        mproc__iter_journal_flush(it, 1); /* every outcome is recorded: none waits for the free */
        mproc__progress_end(it->owner.prog); /* (all from a journal: nothing else ended it) */
        if (it->input_err) {
            *rc = mproc__error(it->input_err, "mproc_iter_next: the input generator failed with %d (%s)",
                               it->input_err, mproc_strerror(it->input_err));
        } else {
            *rc = mproc__error(MPROC_EOF, "mproc_iter_next: end of iteration: all %zu items were delivered",
                               it->next_item);
        }
        it->input_err = 0;
        return 1;
    }
    if (it->owner.live_chunks == 0 && (!it->pool || it->pool->state != MPROC__POOL_RUN)) {
        *rc = unsubmitted_item(it, index);
        return 1;
    }
    return 0;
}

int mproc_iter_next(mproc_iter *it, double timeout, const void **data, size_t *len, size_t *index) {
    if (data) *data = NULL;
    if (len) *len = 0;
    if (index) *index = 0;
    pthread_mutex_lock(&mproc__core_lock);
    if (!it || it->magic != MPROC__ITER_MAGIC || it->freeing) {
        pthread_mutex_unlock(&mproc__core_lock);
        return mproc__error(MPROC_EBADHANDLE, "mproc_iter_next: iterator is NULL or freed");
    }
    int rc = mproc__timeout_check(timeout, "mproc_iter_next");
    if (rc < 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        return rc;
    }
    double deadline = mproc__deadline(timeout);
    while (!next_step(it, &rc, data, len, index)) {
        if (deadline >= 0 && mproc__remaining(deadline) <= 0) {
            rc = mproc__error(MPROC_ETIMEDOUT, "mproc_iter_next: no result within %g s", timeout);
            break;
        }
        if ((rc = mproc__pool_refuse_wait_in_loop(it->pool, "mproc_iter_next")) < 0) break;
        mproc__core_wait(deadline);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

/* What an iterator reads: an array (in, in_size), a generator, or variable-length items. */
typedef struct iter_input {
    const void *in;
    mproc_gen_fn gen;
    void *userdata;
    const mproc_item *items;
    size_t in_size, n;
    int is_items;
} iter_input;

/* Checks what an iterator reads; *chunk_item: the bytes an item counts for in the chunk size,
 * *largest: the longest item (what a chunk must have room for). */
static int check_input(const mproc_task *task, const iter_input *src, size_t *chunk_item, size_t *largest,
                       const char *fn) {
    size_t in_size = src->in_size, n = src->n;
    *chunk_item = *largest = in_size;
    if (src->is_items) {
        if (n && !src->items) return mproc__error(MPROC_EINVAL, "%s: in is NULL", fn);
        *chunk_item = mproc__items_mean(src->items, n, largest);
        return mproc__items_check(task, src->items, n, fn);
    }
    /* As map: a size the task disagrees with (zero included) is ESIZE, a zero size for a task
     * that takes any size EINVAL. */
    if (task->in_size && in_size != task->in_size)
        return mproc__error(MPROC_ESIZE, "%s: task '%s' takes %zu-byte items; in_size is %zu", fn,
                            task->name, task->in_size, in_size);
    if (in_size == 0) return mproc__error(MPROC_EINVAL, "%s: in_size must be > 0", fn);
    if (!src->gen && !src->in && n) return mproc__error(MPROC_EINVAL, "%s: in is NULL", fn);
    if (in_size > MPROC__WIRE_MAX_PAYLOAD / 2 || (!src->gen && n > SIZE_MAX / in_size))
        return mproc__error(MPROC_ETOOBIG, "%s: input too large", fn);
    return 0;
}

static int iter_create(mproc_pool *pool, const mproc_task *task, const iter_input *src, int ordered,
                       const mproc_call_opts *opts, mproc_iter **out) {
    mproc_gen_fn gen = src->gen;
    size_t in_size = 1, n = src->n;
    const char *fn = src->is_items ? "mproc_imap_items" : gen ? "mproc_imap_gen" : ordered ? "mproc_imap" : "mproc_imap_unordered";
    if (!out) return mproc__error(MPROC_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    int rc = mproc__require_init(fn);
    if (rc == 0) rc = mproc__pool_check(pool, fn);
    if (rc == 0) rc = mproc__task_check(task, fn);
    if (rc == 0) rc = mproc__call_opts_check(opts, MPROC__CALL_IMAP, fn);
    size_t largest = 1;
    if (rc == 0) rc = check_input(task, src, &in_size, &largest, fn);
    if (rc < 0) return rc;
    mproc_iter *it = calloc(1, sizeof *it);
    if (!it) return mproc__error(MPROC_ENOMEM, "%s: out of memory", fn);
    it->magic = MPROC__ITER_MAGIC;
    it->owner.ops = &iter_ops;
    it->owner.task = task;
    it->ordered = ordered;
    it->in = src->in;
    it->gen = gen;
    it->userdata = src->userdata;
    it->items = src->items;
    it->owner.in_size = src->is_items ? 0 : in_size; /* items: any length, each with its own */
    it->n = gen ? SIZE_MAX : n;
    it->owner.timeout = opts ? opts->timeout : 0;
    size_t asked = opts ? opts->chunksize : 0;
    it->chunksize = mproc__auto_chunksize(pool, gen ? (size_t)pool->n * 4 * 1024 : n, in_size, asked);
    it->chunksize = mproc__chunk_cap(it->chunksize, largest);
    it->input_done = !gen && n == 0;
    size_t got_done, got_failed; /* the journal is read before anyone can see the iterator */
    rc = mproc__iter_journal_open(it, opts, &got_done, &got_failed);
    if (rc < 0) {
        free(it);
        if (strncmp(mproc_last_error(), "mproc_", 6) == 0) return rc; /* names the call already */
        char keep[512];
        snprintf(keep, sizeof keep, "%s", mproc_last_error());
        return mproc__error(rc, "%s: %s", fn, keep);
    }
    pthread_mutex_lock(&mproc__core_lock);
    rc = mproc__pool_check(pool, fn);
    if (rc == 0 && pool->state != MPROC__POOL_RUN)
        rc = mproc__error(MPROC_ECLOSED, "%s: the pool is %s", fn,
                          pool->state == MPROC__POOL_CLOSED ? "closed" : "terminated");
    if (rc == 0) rc = mproc__progress_start(&it->owner.prog, opts, gen ? 0 : n, task->name, fn);
    if (rc < 0) {
        mproc__iter_journal_end(mproc__iter_journal_take(it)); /* lock held: as the close wants */
        pthread_mutex_unlock(&mproc__core_lock);
        mproc__progress_free(it->owner.prog);
        free(it);
        return rc;
    }
    mproc__progress_resumed(it->owner.prog, got_done, got_failed);
    it->pool = pool;
    it->owner.pool = pool;
    it->next_live = pool->iters;
    if (pool->iters) pool->iters->prev_live = it;
    pool->iters = it;
    top_up(it);
    pthread_mutex_unlock(&mproc__core_lock);
    *out = it;
    return 0;
}

int mproc_imap(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size, size_t n,
               const mproc_call_opts *opts, mproc_iter **out) {
    iter_input src = {.in = in, .in_size = in_size, .n = n};
    return iter_create(pool, task, &src, 1, opts, out);
}

int mproc_imap_unordered(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
                         size_t n, const mproc_call_opts *opts, mproc_iter **out) {
    iter_input src = {.in = in, .in_size = in_size, .n = n};
    return iter_create(pool, task, &src, 0, opts, out);
}

int mproc_imap_gen(mproc_pool *pool, const mproc_task *task, mproc_gen_fn gen, void *userdata,
                   size_t in_size, int ordered, const mproc_call_opts *opts, mproc_iter **out) {
    if (!gen) {
        if (out) *out = NULL;
        return mproc__error(MPROC_EINVAL, "mproc_imap_gen: gen is NULL");
    }
    iter_input src = {.gen = gen, .userdata = userdata, .in_size = in_size};
    return iter_create(pool, task, &src, ordered != 0, opts, out);
}

int mproc_imap_items(mproc_pool *pool, const mproc_task *task, const mproc_item *in, size_t n, int ordered,
                     const mproc_call_opts *opts, mproc_iter **out) {
    iter_input src = {.items = in, .n = n, .is_items = 1};
    return iter_create(pool, task, &src, ordered != 0, opts, out);
}

int mproc_iter_free(mproc_iter *it) {
    if (!it) return 0;
    pthread_mutex_lock(&mproc__core_lock);
    if (it->magic != MPROC__ITER_MAGIC) {
        pthread_mutex_unlock(&mproc__core_lock);
        return mproc__error(MPROC_EBADHANDLE, "mproc_iter_free: iterator was already freed");
    }
    if (it->freeing) {
        pthread_mutex_unlock(&mproc__core_lock);
        return mproc__error(MPROC_EBADHANDLE, "mproc_iter_free: iterator is being freed (from its own callback?)");
    }
    /* Its callbacks run in this thread from here on, as in a cancel (cancel.c): a free or join
     * of the pool there is refused, a free on another thread waits (settling), and the
     * iterator itself is gone for them. Its progress counts no more from here: what the cancel
     * below settles is reported once, with the rest, as cancelled, after the cancel. */
    it->freeing = 1;
    mproc_pool *held = it->pool;
    mproc__settling me = {held, &it->owner, mproc__settling_top};
    if (held) {
        mproc__settling_top = &me;
        held->settling++;
    }
    mproc__progress_freeze(it->owner.prog);
    if (it->pool) mproc__pool_wait_send(it->pool, &it->owner); /* its input may be in a send */
    mproc__journal *j = mproc__iter_journal_take(it); /* closed last: the close drops the lock */
    /* Nobody will read what is left: as a cancel, its queued chunks are dropped (settled onto
     * it->done, freed below) and a worker running one of them is killed and replaced (the pool
     * is free at once, not after tasks whose results are dropped). */
    if (it->pool) mproc__owner_cancel(it->pool, &it->owner, MPROC_ECANCELLED, "the iterator was freed");
    /* The call is done: its progress callback is called once more, finished (in this thread,
     * the lock dropped). After the cancel, so that nothing of it runs or waits to run while
     * the callback does (a wait there would wait behind its tasks). */
    mproc__progress_end_stopped(it->owner.prog); /* the items never delivered count as cancelled */
    iter_unlink(it);
    mproc__chunk *c;
    if (it->cur) {
        iter_chunk_free(it->cur);
        it->owner.live_chunks--;
    }
    while ((c = it->done)) {
        it->done = c->next;
        iter_chunk_free(c);
        it->owner.live_chunks--;
    }
    mproc__mark_dead(&it->magic, MPROC__DEAD_MAGIC);
    if (it->owner.live_chunks == 0) iter_destroy(it);
    else it->abandoned = 1; /* freed when its last in-flight chunk settles */
    mproc__iter_journal_end(j);
    if (held) {
        mproc__settling_top = me.outer;
        if (--held->settling == 0) mproc__core_broadcast();
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return 0;
}

int mproc_iter_progress(mproc_iter *it, mproc_progress *out) {
    if (out) memset(out, 0, sizeof *out);
    pthread_mutex_lock(&mproc__core_lock);
    int rc = 0;
    if (!it || it->magic != MPROC__ITER_MAGIC) rc = mproc__error(MPROC_EBADHANDLE, "mproc_iter_progress: iterator is NULL or freed");
    else if (!out) rc = mproc__error(MPROC_EINVAL, "mproc_iter_progress: out is NULL");
    else mproc__progress_get(it->owner.prog, out);
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}
