/* async.c - apply and map, blocking and async: the job behind an async handle, which gathers
 * results, records a map's finished items in its journal and replays them from it, stops a
 * fail_fast map, and runs the result and error callbacks (handle.c has the handle's calls). A
 * job is the owner of its chunks (pool.h): the scheduler reaches it only through job_ops.
 *
 * A map job does not make all its chunks up front: the pool pulls them from the job as
 * workers free up (make_chunk), so a chunksize-1 map over millions of items costs a
 * few chunk records, not millions. Handles are recycled through a free list rather than
 * returned to malloc, so a second free of the same handle is detected as long as the handle
 * has not been reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

static mproc_async *free_asyncs;

static const mproc__owner_ops job_ops;
static void journal_end(mproc_async *a);

static mproc_async *async_new(int is_map, const mproc_task *t, const mproc_call_opts *o) {
    mproc_async *a = free_asyncs;
    if (a) free_asyncs = a->next_free;
    else if (!(a = malloc(sizeof *a))) return NULL;
    memset(a, 0, sizeof *a);
    a->magic = MPROC__ASYNC_MAGIC;
    a->refs = 2; /* the caller's handle + the job in progress */
    a->is_map = is_map;
    a->owner.ops = &job_ops;
    a->owner.task = t;
    if (o) a->opts = *o;
    a->owner.timeout = a->opts.timeout;
    return a;
}

void mproc__async_unref(mproc_async *a) {
    if (--a->refs > 0) return;
    free(a->errmsg);
    free(a->result);
    free(a->replayed);
    a->errmsg = NULL;
    a->result = NULL;
    a->replayed = NULL;
    a->magic = MPROC__DEAD_MAGIC;
    a->next_free = free_asyncs;
    free_asyncs = a;
}

int mproc__async_check(const mproc_async *a, const char *fn) {
    if (!a) return mproc__error(MPROC_EBADHANDLE, "%s: handle is NULL", fn);
    if (a->magic != MPROC__ASYNC_MAGIC || a->user_freed)
        return mproc__error(MPROC_EBADHANDLE, "%s: handle was already freed", fn);
    return 0;
}

/* Keeps the failure of the lowest item index, whatever order results arrive in, so a map's
 * error is the same on every run. */
static void record_error(mproc_async *a, size_t index, int err, const char *msg, size_t len) {
    /* A cancelled item (ECANCELLED) counts only while no item failed of its own: the call
     * ends with the failure that stopped it (fail_fast), or that came before the cancel. */
    int cancelled = err == MPROC_ECANCELLED, had_cancelled = a->err == MPROC_ECANCELLED;
    if (a->err && cancelled && !had_cancelled) return;
    if (a->err && index >= a->err_index && cancelled == had_cancelled) return;
    free(a->errmsg);
    a->err = err;
    a->err_index = index;
    a->errmsg = malloc(len + 1);
    if (a->errmsg) {
        memcpy(a->errmsg, msg, len);
        a->errmsg[len] = '\0';
    }
}

/* All chunks settled: run the callbacks (lock released), then mark ready. Lock held. */
static void complete(mproc_async *a) {
    journal_end(a);
    mproc__progress_end(&a->owner.prog); /* a freed handle's bar still ends its line */
    if (!a->user_freed) {
        mproc_call_opts o = a->opts;
        pthread_mutex_unlock(&mproc__core_lock);
        if (a->err && o.error_callback)
            o.error_callback(o.userdata, a->err, a->errmsg ? a->errmsg : mproc_strerror(a->err));
        else if (!a->err && o.callback && !a->is_map)
            o.callback(o.userdata, a->result, a->result_len);
        else if (!a->err && o.callback)
            o.callback(o.userdata, a->out, a->n * a->owner.out_size);
        pthread_mutex_lock(&mproc__core_lock);
    }
    a->ready = 1;
    a->owner.pool = NULL; /* nothing of it is left in the pool */
    if (a->waitset) mproc__waitset_ready(a);
    mproc__core_broadcast();
    mproc__async_unref(a);
}

static void set_status(mproc_async *a, size_t i, int st) {
    if (a->opts.item_status && !a->user_freed) a->opts.item_status[i] = st;
}

/* ---- a map's journal (journal.c) ----------------------------------------------------------- */

static int was_replayed(const mproc_async *a, size_t i) { return a->replayed && (a->replayed[i / 8] >> (i % 8) & 1); }

/* Failures that are an item's own outcome are recorded; a call cut short (cancelled, the pool
 * terminated or broken) is not: those items run again when the call is made again. */
static void journal_item(mproc_async *a, size_t i, int st, const void *bytes, size_t len) {
    if (a->journal) mproc__journal_add(a->journal, i, st, bytes, len);
}

typedef struct replay_count {
    mproc_async *a;
    size_t done, failed;
} replay_count;

/* A record of the journal: the item is done, as it was then. */
static void replay_item(void *ud, size_t i, int st, const uint8_t *bytes, size_t len) {
    replay_count *rc = ud;
    mproc_async *a = rc->a;
    if (was_replayed(a, i)) return; /* a second record of one item: the first counts */
    a->replayed[i / 8] |= (uint8_t)(1u << (i % 8));
    rc->done++;
    if (st == 0 && a->out && a->owner.out_size && len == a->owner.out_size)
        memcpy((uint8_t *)a->out + i * a->owner.out_size, bytes, len);
    if (st < 0) {
        record_error(a, i, st, (const char *)bytes, len);
        rc->failed++;
    }
    set_status(a, i, st);
}

/* Chunks that items from..n-1 make: runs of items not replayed, chunksize at most each. */
static size_t chunks_from(const mproc_async *a, size_t from) {
    size_t cs = a->chunksize, left = a->n - from;
    if (!a->replayed) return left / cs + (left % cs ? 1 : 0);
    size_t chunks = 0, run = 0;
    for (size_t i = from; i <= a->n; i++) {
        if (i < a->n && !was_replayed(a, i)) {
            run++;
            continue;
        }
        chunks += run / cs + (run % cs ? 1 : 0);
        run = 0;
    }
    return chunks;
}

/* Opens the call's journal and takes what it holds; lock not held (the job is not yet seen by
 * anyone). Returns 0 or an error. */
static int journal_start(mproc_async *a, const mproc_call_opts *o, replay_count *rc) {
    rc->a = a;
    rc->done = rc->failed = 0;
    if (!o || !o->journal) return 0;
    a->replayed = calloc(a->n / 8 + 1, 1);
    if (!a->replayed) return mproc__error(MPROC_ENOMEM, "journal %s: out of memory", o->journal);
    return mproc__journal_open(&a->journal, o->journal, o->journal_sync, a->owner.task->name, a->owner.in_size,
                               a->owner.out_size, a->n, a->in, replay_item, rc);
}

/* The call is over: the journal's last records are written; a write error becomes the call's
 * error if it has none of its own. */
static void journal_end(mproc_async *a) {
    if (!a->journal) return;
    const char *why = mproc__journal_error(a->journal);
    char msg[320];
    snprintf(msg, sizeof msg, "%s", why ? why : "");
    int err = mproc__journal_close(a->journal);
    a->journal = NULL;
    if (!err || a->err) return;
    if (!why) snprintf(msg, sizeof msg, "%s", "journal: writing the last records failed");
    a->err = err;
    free(a->errmsg);
    a->errmsg = strdup(msg);
}

/* Records the first failure of an item that failed in its worker, as a sentence naming it. */
static void record_item_error(mproc_async *a, const mproc__chunk *c, size_t index, int st, const uint8_t *msg,
                              size_t len) {
    if (a->err && a->err != MPROC_ECANCELLED && index >= a->err_index && !a->journal) return;
    char m[1024];
    size_t k = mproc__item_failure(m, sizeof m, c, msg, len);
    journal_item(a, index, st, m, k);
    record_error(a, index, st, m, k);
}

/* Returns how many of c's items failed. */
static size_t deliver_map(mproc_async *a, const mproc__chunk *c, const mproc__results *r) {
    int ok_out = a->out && !a->user_freed;
    size_t out_size = a->owner.out_size;
    if (r->item_size && (r->item_size == out_size || !out_size)) {
        /* No data: the transport received it straight into out (mproc__send_hint). */
        if (ok_out && out_size && r->data)
            memcpy((uint8_t *)a->out + c->first * out_size, r->data, (size_t)c->count * out_size);
        /* Placed results are in out already (a blocking map's, which outlives the call). */
        const uint8_t *res = r->data ? r->data : a->owner.reply_base ? a->owner.reply_base + c->first * out_size : NULL;
        for (uint32_t i = 0; i < c->count; i++) set_status(a, c->first + i, 0);
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
            record_error(a, c->first + i, MPROC_ESIZE, m, (size_t)k);
            journal_item(a, c->first + i, MPROC_ESIZE, m, (size_t)k);
            st = MPROC_ESIZE;
        } else if (st == 0) {
            if (ok_out && out_size) memcpy((uint8_t *)a->out + (c->first + i) * out_size, blob, len);
            journal_item(a, c->first + i, 0, blob, len);
        } else if (st < 0) {
            record_item_error(a, c, c->first + i, st, blob, len);
        }
        failed += st != 0;
        set_status(a, c->first + i, st);
    }
    return failed;
}

/* fail_fast: the first item that failed of its own stops the rest of the call. */
static void stop_if_failing_fast(mproc_pool *p, mproc_async *a) {
    if (!a->opts.fail_fast || !a->err || a->err == MPROC_ECANCELLED || a->owner.cancel_err) return;
    char m[160];
    snprintf(m, sizeof m, "not run: item %zu failed first (fail_fast)", a->err_index);
    mproc__owner_cancel(p, &a->owner, MPROC_ECANCELLED, m);
}

/* Counts c's items as finished, stops a failing fail_fast call, and completes the call after
 * its last chunk. The progress callback may run (lock dropped) while c still counts as live,
 * so the job cannot complete under it. */
static void chunk_settled(mproc_pool *p, mproc_async *a, size_t items, size_t failed) {
    if (a->journal) mproc__journal_flush(a->journal, 0);
    stop_if_failing_fast(p, a);
    mproc__progress_note(&a->owner.prog, items, failed);
    if (--a->owner.live_chunks == 0) complete(a);
}

static void job_deliver(mproc_pool *p, mproc__chunk *c, uint8_t *frame, const mproc__results *r) {
    mproc_async *a = (mproc_async *)c->owner;
    size_t failed = 0, items = c->count;
    if (!a->is_map) {
        size_t cur = 0, len;
        int st;
        const uint8_t *blob = mproc__results_next(r, 0, &cur, &st, &len);
        if (st < 0) {
            record_item_error(a, c, 0, st, blob, len);
            failed = 1;
        } else if ((a->result = malloc(len ? len : 1))) {
            memcpy(a->result, blob, len);
            a->result_len = len;
        } else {
            record_error(a, 0, MPROC_ENOMEM, "no memory for the result", 25);
            failed = 1;
        }
    } else {
        failed = deliver_map(a, c, r);
    }
    free(frame);
    mproc__chunk_free(c);
    chunk_settled(p, a, items, failed);
}

static void fail_items(mproc_async *a, size_t first, size_t count, int err, const char *msg) {
    record_error(a, first, err, msg, strlen(msg));
    for (size_t i = 0; i < count; i++) set_status(a, first + i, err);
}

static void job_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg) {
    mproc_async *a = (mproc_async *)c->owner;
    size_t items = c->count;
    fail_items(a, c->first, a->is_map ? c->count : 0, err, msg);
    for (uint32_t i = 0; c->blamed && i < c->count; i++) /* it crashed or ran out of time */
        journal_item(a, c->first + i, err, msg, strlen(msg));
    mproc__chunk_free(c);
    chunk_settled(p, a, items, items);
}

static mproc__chunk *job_make_chunk(mproc_pool *p, mproc__owner *o, int *exhausted) {
    mproc_async *a = (mproc_async *)o;
    mproc__chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL; /* tried again on the next dispatch */
    while (was_replayed(a, a->next_item)) a->next_item++; /* never the end: chunks_from counted it */
    size_t count = a->n - a->next_item;
    if (count > a->chunksize) count = a->chunksize;
    for (size_t k = 1; a->replayed && k < count; k++) /* a chunk ends where a replayed item is */
        if (was_replayed(a, a->next_item + k)) count = k;
    c->owner = o;
    c->id = ++p->next_id;
    c->first = a->next_item;
    c->count = (uint32_t)count;
    c->in = a->in + a->next_item * o->in_size;
    c->in_len = count * o->in_size;
    a->next_item += count;
    while (a->next_item < a->n && was_replayed(a, a->next_item)) a->next_item++;
    *exhausted = a->next_item == a->n;
    return c;
}

static size_t job_fail_unmade(mproc_pool *p, mproc__owner *o, int err, const char *msg) {
    mproc_async *a = (mproc_async *)o;
    (void)p;
    size_t chunks = chunks_from(a, a->next_item), left = 0;
    if (chunks == 0) return 0;
    for (size_t i = a->next_item; i < a->n; i++)
        if (!was_replayed(a, i)) {
            fail_items(a, i, 1, err, msg);
            left++;
        }
    a->next_item = a->n;
    mproc__progress_note(&a->owner.prog, left, left);
    a->owner.live_chunks -= chunks;
    if (a->owner.live_chunks == 0) complete(a);
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
    if (rc == 0 && !(a = async_new(0, task, opts)))
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
    mproc__progress_start(&a->owner.prog, NULL, 1, task->name, 0); /* readable; never drawn */
    c->owner = &a->owner;
    c->id = ++pool->next_id;
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
    mproc_async *a;
    int drive;
    int rc = apply_submit(pool, task, arg, arg_len, out_cap, NULL, &a, &drive, "mproc_apply");
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
    if (task->out_size && out_size && out_size != task->out_size)
        return mproc__error(MPROC_ESIZE, "%s: task '%s' returns %zu-byte results; out_size is %zu", fn,
                            task->name, task->out_size, out_size);
    if (n > SIZE_MAX / in_size || (out_size && n > SIZE_MAX / out_size))
        return mproc__error(MPROC_ETOOBIG, "%s: %zu items overflow memory sizes", fn, n);
    if (in_size > MPROC__WIRE_MAX_PAYLOAD / 2)
        return mproc__error(MPROC_ETOOBIG, "%s: items of %zu bytes are over 1 GiB", fn, in_size);
    return 0;
}

/* mproc_map_async, and mproc_map with pinned = 1: its caller waits for the whole map, so out
 * outlives every reply and results may be received straight into it (scheduler.c, reply_home). */
static int map_submit(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
                      void *out, size_t out_size, size_t n, const mproc_call_opts *opts,
                      int pinned, mproc_async **out_handle, const char *fn) {
    if (!out_handle) return mproc__error(MPROC_EINVAL, "%s: out_handle is NULL", fn);
    *out_handle = NULL;
    int rc = check_call(pool, task, fn);
    if (rc == 0) rc = check_map(task, in, in_size, out, out_size, n, fn);
    if (rc < 0) return rc;
    pthread_mutex_lock(&mproc__core_lock);
    mproc_async *a = NULL;
    rc = check_open(pool, fn);
    if (rc == 0 && !(a = async_new(1, task, opts)))
        rc = mproc__error(MPROC_ENOMEM, "%s: out of memory", fn);
    if (rc == 0 && (rc = mproc__progress_start(&a->owner.prog, opts, n, task->name, 1)) < 0) {
        a->refs = 1;
        mproc__async_unref(a);
    }
    if (rc < 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        return rc;
    }
    size_t item = in_size > out_size ? in_size : out_size;
    size_t cs = mproc__auto_chunksize(pool, n, item, opts ? opts->chunksize : 0);
    size_t cap = (MPROC__WIRE_MAX_PAYLOAD / 2) / item;
    if (cs > cap) cs = cap;
    if (cs > MPROC__WIRE_MAX_ITEMS) cs = MPROC__WIRE_MAX_ITEMS;
    a->in = in;
    a->owner.in_size = in_size;
    a->out = out;
    a->owner.out_size = out_size;
    a->owner.input_outlives_reply = 1; /* the map is not done before every chunk is */
    /* A blocking map's output outlives every reply (its caller waits for the whole map), so
     * results may be received straight into it; an async map's handle may be freed early. */
    a->owner.reply_base = pinned ? out : NULL;
    a->n = n;
    a->chunksize = cs;
    /* The journal is read without the lock (it may be long): nobody sees this job yet. */
    pthread_mutex_unlock(&mproc__core_lock);
    replay_count got;
    rc = journal_start(a, opts, &got);
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
        pthread_mutex_unlock(&mproc__core_lock);
        return mproc__error(rc, "%s: %s", fn, keep);
    }
    a->owner.pool = pool;
    if (got.done) mproc__progress_note(&a->owner.prog, got.done, got.failed);
    if (!got.done) { /* nothing to skip: chunks are made without looking at bits */
        free(a->replayed);
        a->replayed = NULL;
    }
    a->owner.live_chunks = chunks_from(a, 0);
    *out_handle = a;
    if (a->owner.live_chunks == 0) { /* nothing to run: no items, or all were in the journal */
        a->refs++; /* complete() drops the job's reference */
        complete(a);
        a->refs--;
        pthread_mutex_unlock(&mproc__core_lock);
        return 0;
    }
    pool->outstanding += a->owner.live_chunks;
    mproc__pool_feed_add(pool, &a->owner);
    pthread_mutex_unlock(&mproc__core_lock);
    return 0;
}

int mproc_map_async(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
                    void *out, size_t out_size, size_t n, const mproc_call_opts *opts,
                    mproc_async **out_handle) {
    return map_submit(pool, task, in, in_size, out, out_size, n, opts, 0, out_handle, "mproc_map_async");
}

int mproc_map(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
              void *out, size_t out_size, size_t n, const mproc_call_opts *opts) {
    mproc_async *a;
    int rc = map_submit(pool, task, in, in_size, out, out_size, n, opts, 1, &a, "mproc_map");
    if (rc < 0) return rc;
    rc = mproc__async_get(a, -1.0, NULL, NULL, "mproc_map");
    char keep[512];
    snprintf(keep, sizeof keep, "%s", mproc_last_error());
    mproc__async_release(a, "mproc_async_free");
    if (rc < 0) mproc__error(rc, "%s", keep);
    return rc;
}

/* ---- waiting for a handle (handle.c has the rest of its calls) -------------------------- */

/* Waits for a handle to be ready; fn names the caller's call in errors. */
int mproc__async_wait(mproc_async *a, double timeout, const char *fn) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, fn);
    double deadline = mproc__deadline(timeout);
    while (rc == 0 && !a->ready) {
        if (deadline >= 0 && mproc__remaining(deadline) <= 0) {
            rc = mproc__error(MPROC_ETIMEDOUT, "%s: task '%s' not ready after %g s", fn,
                              a->owner.task->name, timeout);
            break;
        }
        mproc__core_wait(deadline);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc__async_get(mproc_async *a, double timeout, const void **data, size_t *len, const char *fn) {
    if (data) *data = NULL;
    if (len) *len = 0;
    int rc = mproc__async_wait(a, timeout, fn);
    if (rc < 0) return rc;
    pthread_mutex_lock(&mproc__core_lock);
    if (a->err) {
        rc = mproc__error(a->err, "%s", a->errmsg ? a->errmsg : mproc_strerror(a->err));
    } else if (!a->is_map) {
        if (data) *data = a->result;
        if (len) *len = a->result_len;
    } else {
        if (data) *data = a->out;
        if (len) *len = a->n * a->owner.out_size;
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc__async_release(mproc_async *a, const char *fn) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, fn);
    if (rc == 0) {
        mproc__waitset_leave(a);
        a->owner.prog.cb = NULL; /* nobody to tell any more */
        a->user_freed = 1;
        a->out = NULL; /* a map still running stops writing into the caller's array */
        mproc__async_unref(a);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}
