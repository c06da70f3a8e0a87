/* async.c - apply and map, blocking and async: checking a call, making its job (job.c) and its
 * chunks, and handing each chunk's results to the job. A job is the owner of its chunks
 * (pool.h): the scheduler reaches it only through job_ops.
 *
 * A map job does not make all its chunks up front: the pool pulls them from the job as
 * workers free up (make_chunk), so a chunksize-1 map over millions of items costs a
 * few chunk records, not millions; items a journal already holds are skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

static const mproc__owner_ops job_ops;

/* map_items: each result into a buffer of its own. Returns how many of c's items failed. */
static size_t deliver_items(mproc_async *a, const mproc__chunk *c, const mproc__results *r) {
    size_t cur = 0, failed = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        int st;
        size_t len;
        const uint8_t *blob = mproc__results_next(r, i, &cur, &st, &len);
        if (st == 0 && mproc__job_store(a, c->first + i, blob, len) < 0) {
            st = MPROC_ENOMEM; /* the item fails (not recorded: it runs again on resume) */
            failed++;
        } else if (st == 0) {
            mproc__job_journal_item(a, c->first + i, 0, blob, len);
        } else {
            mproc__job_item_error(a, c, c->first + i, st, blob, len);
            failed++;
        }
        mproc__job_set_status(a, c->first + i, st);
    }
    return failed;
}

/* Returns how many of c's items failed. */
static size_t deliver_map(mproc_async *a, const mproc__chunk *c, const mproc__results *r) {
    if (a->items) return deliver_items(a, c, r);
    int ok_out = a->out && !a->user_freed;
    size_t out_size = a->owner.out_size;
    if (r->item_size && (r->item_size == out_size || !out_size)) {
        /* No data: the transport received it straight into out (mproc__send_hint). */
        if (ok_out && out_size && r->data)
            memcpy((uint8_t *)a->out + c->first * out_size, r->data, (size_t)c->count * out_size);
        /* Placed results are in out already (a blocking map's, which outlives the call). */
        const uint8_t *res = r->data ? r->data : a->owner.reply_base ? a->owner.reply_base + c->first * out_size : NULL;
        if (a->opts.item_status && !a->user_freed) /* here, not a call per item: 10M items a map */
            memset(a->opts.item_status + c->first, 0, (size_t)c->count * sizeof(int));
        if (res && a->journal) mproc__journal_add_run(a->journal, c->first, c->count, r->item_size, res);
        return 0;
    }
    size_t cur = 0, failed = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        int st;
        size_t len;
        const uint8_t *blob = mproc__results_next(r, i, &cur, &st, &len);
        if (st == 0 && out_size && len != out_size) {
            char m[160];
            int k = snprintf(m, sizeof m, "task '%s' returned %zu bytes for item %zu; map expects %zu",
                             a->owner.task->name, len, c->first + i, out_size);
            mproc__job_record_error(a, c->first + i, MPROC_ESIZE, m, (size_t)k);
            mproc__job_journal_item(a, c->first + i, MPROC_ESIZE, m, (size_t)k);
            st = MPROC_ESIZE;
        } else if (st == 0) {
            if (ok_out && out_size) memcpy((uint8_t *)a->out + (c->first + i) * out_size, blob, len);
            mproc__job_journal_item(a, c->first + i, 0, blob, len);
        } else if (st < 0) {
            mproc__job_item_error(a, c, c->first + i, st, blob, len);
        }
        failed += st != 0;
        mproc__job_set_status(a, c->first + i, st);
    }
    return failed;
}

static void job_deliver(mproc_pool *p, mproc__chunk *c, uint8_t *frame, const mproc__results *r) {
    mproc_async *a = (mproc_async *)c->owner;
    size_t failed = 0, items = c->count;
    if (!a->is_map) {
        size_t cur = 0, len;
        int st;
        const uint8_t *blob = mproc__results_next(r, 0, &cur, &st, &len);
        if (st < 0) {
            mproc__job_item_error(a, c, 0, st, blob, len);
            failed = 1;
        } else if ((a->result = malloc(len ? len : 1))) {
            memcpy(a->result, blob, len);
            a->result_len = len;
        } else {
            mproc__job_record_error(a, 0, MPROC_ENOMEM, "no memory for the result", 25);
            failed = 1;
        }
    } else {
        failed = deliver_map(a, c, r);
    }
    free(frame);
    mproc__chunk_free(c);
    mproc__job_settled(p, a, items, failed);
}

static void job_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg) {
    mproc_async *a = (mproc_async *)c->owner;
    size_t items = c->count;
    mproc__job_fail_items(a, c->first, a->is_map ? c->count : 0, err, msg);
    for (uint32_t i = 0; c->blamed && i < c->count; i++) /* it crashed or ran out of time */
        mproc__job_journal_item(a, c->first + i, err, msg, strlen(msg));
    mproc__chunk_free(c);
    mproc__job_settled(p, a, items, items);
}

static mproc__chunk *job_make_chunk(mproc_pool *p, mproc__owner *o, int *exhausted) {
    mproc_async *a = (mproc_async *)o;
    mproc__chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL; /* tried again on the next dispatch */
    while (mproc__job_replayed(a, a->next_item)) a->next_item++; /* never the end: chunks_from counted it */
    size_t count = a->n - a->next_item;
    if (count > a->chunksize) count = a->chunksize;
    for (size_t k = 1; a->replayed && k < count; k++) /* a chunk ends where a replayed item is */
        if (mproc__job_replayed(a, a->next_item + k)) count = k;
    if (a->items && mproc__items_pack(a->items + a->next_item, count, &c->owned, &c->in_len) < 0) {
        free(c);
        return NULL; /* out of memory: tried again on the next dispatch */
    }
    c->owner = o;
    c->id = mproc__chunk_new_id();
    c->first = a->next_item;
    c->count = (uint32_t)count;
    c->packed_lens = a->items != NULL;
    c->in = a->items ? c->owned : a->in + a->next_item * o->in_size;
    if (!a->items) c->in_len = count * o->in_size;
    a->next_item += count;
    while (a->next_item < a->n && mproc__job_replayed(a, a->next_item)) a->next_item++;
    *exhausted = a->next_item == a->n;
    return c;
}

static size_t job_fail_unmade(mproc_pool *p, mproc__owner *o, int err, const char *msg) {
    mproc_async *a = (mproc_async *)o;
    (void)p;
    size_t chunks = mproc__job_chunks_from(a, a->next_item), left = 0;
    if (chunks == 0) return 0;
    for (size_t i = a->next_item; i < a->n; i++)
        if (!mproc__job_replayed(a, i)) {
            mproc__job_fail_items(a, i, 1, err, msg);
            left++;
        }
    a->next_item = a->n;
    mproc__progress_note(a->owner.prog, left, left);
    a->owner.live_chunks -= chunks;
    if (a->owner.live_chunks == 0) mproc__job_complete(a);
    return chunks;
}

static const mproc__owner_ops job_ops = {
    .deliver = job_deliver,
    .fail = job_fail,
    .make_chunk = job_make_chunk,
    .fail_unmade = job_fail_unmade,
};

/* ---- submitting ------------------------------------------------------------------------- */

/* Common checks of a pool call; lock not held. */
static int check_call(mproc_pool *pool, const mproc_task *task, const char *fn) {
    int rc = mproc__require_init(fn);
    if (rc == 0) rc = mproc__pool_check(pool, fn);
    if (rc == 0) rc = mproc__task_check(task, fn);
    return rc;
}

/* Lock held: the pool must still take work. */
static int check_open(mproc_pool *pool, const char *fn) {
    int rc = mproc__pool_check(pool, fn);
    if (rc == 0 && pool->state != MPROC__POOL_RUN)
        rc = mproc__error(MPROC_ECLOSED, "%s: the pool is %s", fn,
                          pool->state == MPROC__POOL_CLOSED ? "closed" : "terminated");
    return rc;
}

/* mproc_apply_async, and the first half of mproc_apply; fn names the caller's call in errors.
 * out_cap: the room the caller has for the result (SIZE_MAX: none given), so that a result
 * that cannot fit is refused before the task runs. */
static int apply_submit(mproc_pool *pool, const mproc_task *task, const void *arg, size_t arg_len,
                        size_t out_cap, const mproc_call_opts *opts, mproc_async **out, int *drive,
                        const char *fn) {
    if (drive) *drive = 0;
    if (!out) return mproc__error(MPROC_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    int rc = check_call(pool, task, fn);
    if (rc == 0) rc = mproc__call_opts_check(opts, MPROC__CALL_APPLY, fn);
    if (rc < 0) return rc;
    if (task->out_size && out_cap < task->out_size)
        return mproc__error(MPROC_ESIZE, "%s: task '%s' returns %zu-byte results; out_cap is %zu", fn,
                            task->name, task->out_size, out_cap);
    if (!arg && arg_len) return mproc__error(MPROC_EINVAL, "%s: arg is NULL but arg_len is %zu", fn, arg_len);
    if (task->in_size && arg_len != task->in_size)
        return mproc__error(MPROC_ESIZE, "%s: task '%s' takes %zu-byte arguments, got %zu", fn,
                            task->name, task->in_size, arg_len);
    if (arg_len > MPROC__WIRE_MAX_PAYLOAD - 64)
        return mproc__error(MPROC_ETOOBIG, "%s: argument of %zu bytes is over 2 GiB", fn, arg_len);
    mproc__chunk *c = calloc(1, sizeof *c);
    uint8_t *copy = malloc(arg_len ? arg_len : 1);
    if (!c || !copy) {
        free(c);
        free(copy);
        return mproc__error(MPROC_ENOMEM, "%s: out of memory", fn);
    }
    if (arg_len) memcpy(copy, arg, arg_len);
    pthread_mutex_lock(&mproc__core_lock);
    mproc_async *a = NULL;
    rc = check_open(pool, fn);
    if (rc == 0 && !(a = mproc__job_new(0, task, opts, &job_ops)))
        rc = mproc__error(MPROC_ENOMEM, "%s: out of memory", fn);
    if (rc < 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        free(c);
        free(copy);
        return rc;
    }
    a->owner.live_chunks = 1;
    a->owner.pool = pool;
    a->n = 1;
    c->owner = &a->owner;
    c->id = mproc__chunk_new_id();
    c->count = 1;
    c->in = c->owned = copy;
    c->in_len = arg_len;
    /* Before the enqueue, whose kick would otherwise wake the parked result thread. */
    if (drive) *drive = mproc__pool_try_drive(pool);
    mproc__pool_enqueue(pool, c);
    pthread_mutex_unlock(&mproc__core_lock);
    *out = a;
    return 0;
}

int mproc_apply_async(mproc_pool *pool, const mproc_task *task, const void *arg, size_t arg_len,
                      const mproc_call_opts *opts, mproc_async **out) {
    return apply_submit(pool, task, arg, arg_len, SIZE_MAX, opts, out, NULL, "mproc_apply_async");
}

int mproc_apply(mproc_pool *pool, const mproc_task *task, const void *arg, size_t arg_len,
                void *out, size_t out_cap, size_t *out_len) {
    if (out_len) *out_len = 0;
    if (!out && out_cap) return mproc__error(MPROC_EINVAL, "mproc_apply: out is NULL but out_cap is %zu", out_cap);
    int rc = mproc__pool_refuse_wait_in_loop(pool, "mproc_apply");
    if (rc < 0) return rc;
    mproc_async *a;
    int drive;
    rc = apply_submit(pool, task, arg, arg_len, out_cap, NULL, &a, &drive, "mproc_apply");
    if (rc < 0) return rc;
    if (drive) { /* an idle pool: this thread sends the task and waits for its reply itself */
        pthread_mutex_lock(&mproc__core_lock);
        mproc__pool_drive(pool, &a->ready);
        pthread_mutex_unlock(&mproc__core_lock);
    }
    const void *data;
    size_t len;
    rc = mproc__async_get(a, -1.0, &data, &len, "mproc_apply");
    if (rc == 0 && len > out_cap)
        rc = mproc__error(MPROC_ESIZE, "mproc_apply: task '%s' returned %zu bytes; out holds %zu",
                          task->name, len, out_cap);
    if (rc == 0) {
        if (len) memcpy(out, data, len);
        if (out_len) *out_len = len;
    }
    char keep[512];
    snprintf(keep, sizeof keep, "%s", mproc_last_error());
    mproc__async_release(a, "mproc_async_free");
    if (rc < 0) mproc__error(rc, "%s", keep);
    return rc;
}

static int check_map(const mproc_task *task, const void *in, size_t in_size, const void *out,
                     size_t out_size, size_t n, const char *fn) {
    if (n == 0) return 0;
    if (!in) return mproc__error(MPROC_EINVAL, "%s: in is NULL", fn);
    /* A size the task disagrees with is ESIZE, as for apply; a zero size for a task that takes
     * any size is EINVAL (map's items need one). */
    if (task->in_size && in_size != task->in_size)
        return mproc__error(MPROC_ESIZE, "%s: task '%s' takes %zu-byte items; in_size is %zu", fn,
                            task->name, task->in_size, in_size);
    if (in_size == 0) return mproc__error(MPROC_EINVAL, "%s: in_size must be > 0", fn);
    if (!out && out_size) return mproc__error(MPROC_EINVAL, "%s: out is NULL but out_size is %zu", fn, out_size);
    /* Results are dropped only when asked for with out NULL: an out array with out_size 0 is
     * a slip (a sizeof of the wrong thing) that would lose every result without a word. */
    if (out && !out_size)
        return mproc__error(MPROC_ESIZE, "%s: out_size is 0 but out is not NULL (pass out NULL and out_size 0 "
                            "to drop the results)", fn);
    if (task->out_size && out_size && out_size != task->out_size)
        return mproc__error(MPROC_ESIZE, "%s: task '%s' returns %zu-byte results; out_size is %zu", fn,
                            task->name, task->out_size, out_size);
    if (n > SIZE_MAX / in_size || (out_size && n > SIZE_MAX / out_size))
        return mproc__error(MPROC_ETOOBIG, "%s: %zu items overflow memory sizes", fn, n);
    if (in_size > MPROC__WIRE_MAX_PAYLOAD / 2)
        return mproc__error(MPROC_ETOOBIG, "%s: items of %zu bytes are over 1 GiB", fn, in_size);
    if (out_size > MPROC__WIRE_MAX_PAYLOAD / 2)
        return mproc__error(MPROC_ETOOBIG, "%s: results of %zu bytes are over 1 GiB", fn, out_size);
    return 0;
}

/* What a map is over: fixed-size items (in, in_size; out, out_size) or variable-length ones
 * (items; bufs). */
typedef struct map_spec {
    const void *in;
    size_t in_size;
    void *out;
    size_t out_size;
    const mproc_item *items;
    mproc_buf *bufs;
    size_t n;
    int is_items;
} map_spec;

/* Items per chunk: the caller's, or Python's rule on the items' mean size. */
static size_t map_chunksize(const mproc_pool *pool, const map_spec *m, const mproc_call_opts *opts) {
    size_t item = m->in_size > m->out_size ? m->in_size : m->out_size, largest = item;
    if (m->is_items) item = mproc__items_mean(m->items, m->n, &largest); /* the mean to choose, the largest to cap */
    size_t cs = mproc__auto_chunksize(pool, m->n, item, opts ? opts->chunksize : 0);
    return mproc__chunk_cap(cs, largest);
}

/* A new map job for m; lock held. 0 or an error (nothing made). */
static int map_job(mproc_pool *pool, const mproc_task *task, const map_spec *m, const mproc_call_opts *opts,
                   int pinned, mproc_async **out, const char *fn) {
    int rc = check_open(pool, fn);
    mproc_async *a = NULL;
    if (rc == 0 && !(a = mproc__job_new(1, task, opts, &job_ops))) rc = mproc__error(MPROC_ENOMEM, "%s: out of memory", fn);
    if (a) a->fn = fn;
    if (rc == 0 && (rc = mproc__progress_start(&a->owner.prog, opts, m->n, task->name, fn)) < 0) {
        a->refs = 1;
        mproc__async_unref(a);
    }
    if (rc < 0) return rc;
    a->in = m->in;
    a->owner.in_size = m->in_size;
    a->out = m->out;
    a->owner.out_size = m->out_size;
    a->items = m->items;
    a->bufs = m->bufs;
    a->owner.input_outlives_reply = 1; /* the map is not done before every chunk is */
    /* A blocking map's output outlives every reply (its caller waits for the whole map), so
     * results may be received straight into it; an async map's handle may be freed early. */
    a->owner.reply_base = pinned && !m->is_items ? m->out : NULL;
    a->n = m->n;
    a->chunksize = map_chunksize(pool, m, opts);
    *out = a;
    return 0;
}

/* Reads the job's journal (without the lock: it may be long, and nobody sees the job yet),
 * then queues what is left to run. Lock held on entry and exit. 0 or an error (job freed). */
static int map_start(mproc_pool *pool, mproc_async *a, const mproc_call_opts *opts, const char *fn) {
    pthread_mutex_unlock(&mproc__core_lock);
    size_t got_done, got_failed;
    int rc = mproc__job_journal_start(a, opts, &got_done, &got_failed);
    pthread_mutex_lock(&mproc__core_lock);
    if (rc == 0) rc = check_open(pool, fn);
    if (rc < 0) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", mproc_last_error());
        if (a->journal) mproc__journal_close(a->journal);
        free(a->replayed);
        a->journal = NULL;
        a->replayed = NULL;
        a->refs = 1;
        mproc__async_unref(a);
        return mproc__error(rc, "%s: %s", fn, keep);
    }
    a->owner.pool = pool;
    mproc__progress_resumed(a->owner.prog, got_done, got_failed);
    if (!got_done) { /* nothing to skip: chunks are made without looking at bits */
        free(a->replayed);
        a->replayed = NULL;
    }
    a->owner.live_chunks = mproc__job_chunks_from(a, 0);
    if (a->owner.live_chunks == 0) { /* nothing to run: no items, or all were in the journal */
        a->refs++; /* mproc__job_complete() drops the job's reference */
        mproc__job_complete(a);
        a->refs--;
        return 0;
    }
    pool->outstanding += a->owner.live_chunks;
    mproc__pool_feed_add(pool, &a->owner);
    return 0;
}

/* mproc_map(_items)_async, and the blocking calls with pinned = 1: their caller waits for the
 * whole map, so out outlives every reply and results may be received straight into it
 * (scheduler.c, reply_home). */
static int map_submit(mproc_pool *pool, const mproc_task *task, const map_spec *m, const mproc_call_opts *opts,
                      int pinned, mproc_async **out_handle, const char *fn) {
    if (!out_handle) return mproc__error(MPROC_EINVAL, "%s: out_handle is NULL", fn);
    *out_handle = NULL;
    int rc = check_call(pool, task, fn);
    if (rc == 0) rc = mproc__call_opts_check(opts, MPROC__CALL_MAP, fn);
    if (rc == 0 && m->is_items) rc = mproc__items_check(task, m->items, m->n, fn);
    else if (rc == 0) rc = check_map(task, m->in, m->in_size, m->out, m->out_size, m->n, fn);
    if (rc < 0) return rc;
    for (size_t i = 0; m->bufs && i < m->n; i++) m->bufs[i] = (mproc_buf){NULL, 0};
    pthread_mutex_lock(&mproc__core_lock);
    mproc_async *a = NULL;
    rc = map_job(pool, task, m, opts, pinned, &a, fn);
    if (rc == 0) rc = map_start(pool, a, opts, fn);
    pthread_mutex_unlock(&mproc__core_lock);
    if (rc == 0) *out_handle = a;
    return rc;
}

/* Blocking: waits for the whole map and frees its handle. */
static int map_wait(mproc_async *a, const char *fn) {
    int rc = mproc__async_get(a, -1.0, NULL, NULL, fn);
    char keep[512];
    snprintf(keep, sizeof keep, "%s", mproc_last_error());
    mproc__async_release(a, "mproc_async_free");
    if (rc < 0) mproc__error(rc, "%s", keep);
    return rc;
}

int mproc_map_async(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
                    void *out, size_t out_size, size_t n, const mproc_call_opts *opts,
                    mproc_async **out_handle) {
    map_spec m = {in, in_size, out, out_size, NULL, NULL, n, 0};
    return map_submit(pool, task, &m, opts, 0, out_handle, "mproc_map_async");
}

int mproc_map(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
              void *out, size_t out_size, size_t n, const mproc_call_opts *opts) {
    mproc_async *a;
    map_spec m = {in, in_size, out, out_size, NULL, NULL, n, 0};
    int rc = mproc__pool_refuse_wait_in_loop(pool, "mproc_map");
    if (rc == 0) rc = map_submit(pool, task, &m, opts, 1, &a, "mproc_map");
    return rc < 0 ? rc : map_wait(a, "mproc_map");
}

int mproc_map_items_async(mproc_pool *pool, const mproc_task *task, const mproc_item *in, size_t n,
                          mproc_buf *out, const mproc_call_opts *opts, mproc_async **out_handle) {
    map_spec m = {NULL, 0, NULL, 0, in, out, n, 1};
    return map_submit(pool, task, &m, opts, 0, out_handle, "mproc_map_items_async");
}

int mproc_map_items(mproc_pool *pool, const mproc_task *task, const mproc_item *in, size_t n, mproc_buf *out,
                    const mproc_call_opts *opts) {
    mproc_async *a;
    map_spec m = {NULL, 0, NULL, 0, in, out, n, 1};
    int rc = mproc__pool_refuse_wait_in_loop(pool, "mproc_map_items");
    if (rc == 0) rc = map_submit(pool, task, &m, opts, 1, &a, "mproc_map_items");
    return rc < 0 ? rc : map_wait(a, "mproc_map_items");
}
