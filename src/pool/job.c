/* job.c - the job behind an async handle (apply, map): it gathers its items' outcomes (the
 * failure of the lowest index; a cancelled item counts only while none failed of its own),
 * records finished items in a map's journal and replays them from it, stops a fail_fast map,
 * counts progress, and completes - callbacks, ready, waiters woken. async.c makes jobs and
 * their chunks; handle.c has the calls on a handle.
 *
 * Handles are recycled through a free list rather than returned to malloc, so a second free
 * of the same handle is detected as long as the handle has not been reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

static mproc_async *free_asyncs;

static void journal_end(mproc_async *a);

mproc_async *mproc__job_new(int is_map, const mproc_task *t, const mproc_call_opts *o, const mproc__owner_ops *ops) {
    mproc_async *a = free_asyncs;
    if (a) free_asyncs = a->next_free;
    else if (!(a = malloc(sizeof *a))) return NULL;
    memset(a, 0, sizeof *a);
    a->magic = MPROC__ASYNC_MAGIC;
    a->refs = 2; /* the caller's handle + the job in progress */
    a->is_map = is_map;
    a->owner.ops = ops;
    a->owner.task = t;
    if (o) {
        a->opts = (mproc__job_opts){o->callback, o->error_callback, o->userdata, o->item_status, o->fail_fast};
        a->owner.timeout = o->timeout;
    }
    return a;
}

void mproc__async_unref(mproc_async *a) {
    if (--a->refs > 0) return;
    free(a->errmsg);
    free(a->result);
    free(a->replayed);
    free(a->owner.cancel_msg);
    a->owner.cancel_msg = NULL;
    mproc__progress_free(a->owner.prog);
    a->owner.prog = NULL;
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
void mproc__job_record_error(mproc_async *a, size_t index, int err, const char *msg, size_t len) {
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
void mproc__job_complete(mproc_async *a) {
    journal_end(a);
    mproc__progress_end(a->owner.prog); /* a freed handle's bar still ends its line */
    if (!a->user_freed) {
        mproc__job_opts o = a->opts;
        pthread_mutex_unlock(&mproc__core_lock);
        if (a->err && o.error_callback)
            o.error_callback(o.userdata, a->err, a->errmsg ? a->errmsg : mproc_strerror(a->err));
        else if (!a->err && o.callback && !a->is_map)
            o.callback(o.userdata, a->result, a->result_len);
        else if (!a->err && o.callback)
            o.callback(o.userdata, a->bufs ? (void *)a->bufs : a->out,
                       a->bufs ? a->n * sizeof *a->bufs : a->n * a->owner.out_size);
        pthread_mutex_lock(&mproc__core_lock);
    }
    a->ready = 1;
    a->owner.pool = NULL; /* nothing of it is left in the pool */
    if (a->link) mproc__waitset_ready(a);
    mproc__core_broadcast();
    mproc__async_unref(a);
}

int mproc__job_store(mproc_async *a, size_t i, const void *bytes, size_t len) {
    if (!a->bufs || a->user_freed) return 0;
    void *b = malloc(len ? len : 1);
    if (!b) {
        mproc__job_record_error(a, i, MPROC_ENOMEM, "no memory for the result", 24);
        return MPROC_ENOMEM;
    }
    if (len) memcpy(b, bytes, len);
    a->bufs[i].data = b;
    a->bufs[i].len = len;
    return 0;
}

void mproc__job_set_status(mproc_async *a, size_t i, int st) {
    if (a->opts.item_status && !a->user_freed) a->opts.item_status[i] = st;
}

/* ---- a map's journal (journal.c) ----------------------------------------------------------- */

int mproc__job_replayed(const mproc_async *a, size_t i) { return a->replayed && (a->replayed[i / 8] >> (i % 8) & 1); }

/* Failures that are an item's own outcome are recorded; a call cut short (cancelled, the pool
 * terminated or broken) is not: those items run again when the call is made again. */
void mproc__job_journal_item(mproc_async *a, size_t i, int st, const void *bytes, size_t len) {
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
    if (mproc__job_replayed(a, i)) return; /* a second record of one item: the first counts */
    a->replayed[i / 8] |= (uint8_t)(1u << (i % 8));
    rc->done++;
    if (st == 0 && a->out && a->owner.out_size && len == a->owner.out_size)
        memcpy((uint8_t *)a->out + i * a->owner.out_size, bytes, len);
    if (st == 0 && a->bufs && mproc__job_store(a, i, bytes, len) < 0) {
        st = MPROC_ENOMEM; /* recorded by the store */
        rc->failed++;
    } else if (st < 0) {
        mproc__job_record_error(a, i, st, (const char *)bytes, len);
        rc->failed++;
    }
    mproc__job_set_status(a, i, st);
}

/* Chunks that items from..n-1 make: runs of items not replayed, chunksize at most each. */
size_t mproc__job_chunks_from(const mproc_async *a, size_t from) {
    size_t cs = a->chunksize, left = a->n - from;
    if (!a->replayed) return left / cs + (left % cs ? 1 : 0);
    size_t chunks = 0, run = 0;
    for (size_t i = from; i <= a->n; i++) {
        if (i < a->n && !mproc__job_replayed(a, i)) {
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
int mproc__job_journal_start(mproc_async *a, const mproc_call_opts *o, size_t *done, size_t *failed) {
    replay_count rc = {a, 0, 0};
    *done = *failed = 0;
    if (!o || !o->journal) return 0;
    a->replayed = calloc(a->n / 8 + 1, 1);
    if (!a->replayed) return mproc__error(MPROC_ENOMEM, "journal %s: out of memory", o->journal);
    uint64_t fp = a->items ? mproc__journal_fingerprint_items(a->items, a->n)
                           : mproc__journal_fingerprint(a->in, a->owner.in_size, a->n);
    int err = mproc__journal_open(&a->journal, o->journal, o->journal_sync, a->owner.task->name, a->owner.in_size,
                                  a->owner.out_size, a->n, fp, replay_item, &rc, 0);
    *done = rc.done;
    *failed = rc.failed;
    return err;
}

/* The call is over: the journal's last records are written; a write error becomes the call's
 * error if it has none of its own. */
static void journal_end(mproc_async *a) {
    if (!a->journal) return;
    const char *why = mproc__journal_error(a->journal);
    char msg[320];
    const char *fn = a->fn ? a->fn : "mproc_map_async";
    snprintf(msg, sizeof msg, "%s: %s", fn, why ? why : "");
    int err = mproc__journal_close(a->journal);
    a->journal = NULL;
    if (!err) return;
    if (!why) snprintf(msg, sizeof msg, "%s: %s", fn, mproc_last_error()); /* the last writes' failure */
    /* A journal that missed records must be said even when items failed: its items would run
     * again on resume. Items' own failures stay in item_status; their first is named too. A
     * cancelled or closed call keeps its code, with the journal's failure in its message. */
    int keep = a->err == MPROC_ECANCELLED || a->err == MPROC_ECLOSED;
    char both[640];
    const char *own = a->errmsg ? a->errmsg : a->err ? mproc_strerror(a->err) : NULL;
    if (!own) snprintf(both, sizeof both, "%s", msg);
    else if (keep) snprintf(both, sizeof both, "%.300s (and %.300s)", own, msg);
    else snprintf(both, sizeof both, "%.300s; besides, %.300s", msg, own);
    if (!keep) a->err = err;
    free(a->errmsg);
    a->errmsg = strdup(both);
}

/* Records the first failure of an item that failed in its worker, as a sentence naming it. */
void mproc__job_item_error(mproc_async *a, const mproc__chunk *c, size_t index, int st, const uint8_t *msg,
                              size_t len) {
    if (a->err && a->err != MPROC_ECANCELLED && index >= a->err_index && !a->journal) return;
    char m[1024];
    size_t k = mproc__item_failure(m, sizeof m, c, msg, len);
    mproc__job_journal_item(a, index, st, m, k);
    mproc__job_record_error(a, index, st, m, k);
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
void mproc__job_settled(mproc_pool *p, mproc_async *a, size_t items, size_t failed) {
    if (a->journal) mproc__journal_flush(a->journal, 0);
    stop_if_failing_fast(p, a);
    mproc__progress_note(a->owner.prog, items, failed);
    if (--a->owner.live_chunks == 0) mproc__job_complete(a);
}

void mproc__job_fail_items(mproc_async *a, size_t first, size_t count, int err, const char *msg) {
    mproc__job_record_error(a, first, err, msg, strlen(msg));
    for (size_t i = 0; i < count; i++) mproc__job_set_status(a, first + i, err);
}

/* ---- waiting for a handle (handle.c has the rest of its calls) -------------------------- */

/* Waits for a handle to be ready; fn names the caller's call in errors. */
int mproc__async_wait(mproc_async *a, double timeout, const char *fn) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, fn);
    if (rc == 0) rc = mproc__timeout_check(timeout, fn);
    /* In a callback on the handle's pool's loop, or inside its own cancel, it cannot be ready
     * until the callback returns. */
    if (rc == 0 && !a->ready && timeout != 0) rc = mproc__refuse_wait_for(a->owner.pool, &a->owner, fn);
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
        if (data) *data = a->bufs ? (void *)a->bufs : a->out;
        if (len) *len = a->bufs ? a->n * sizeof *a->bufs : a->n * a->owner.out_size;
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc__async_release(mproc_async *a, const char *fn) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, fn);
    if (rc == 0) {
        mproc__waitset_leave(a);
        mproc__progress_mute(a->owner.prog); /* nobody to tell any more */
        a->user_freed = 1;
        a->out = NULL; /* a map still running stops writing into the caller's array */
        mproc__async_unref(a);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}
