/* handle.c - the calls on an async handle: wait, ready, successful, get, error, cancel,
 * progress and free (Python's AsyncResult and Future). The job behind a handle is async.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

int mproc_async_wait(mproc_async *a, double timeout) { return mproc__async_wait(a, timeout, "mproc_async_wait"); }

int mproc_async_ready(mproc_async *a) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, "mproc_async_ready");
    if (rc == 0) rc = a->ready;
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_async_successful(mproc_async *a) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, "mproc_async_successful");
    if (rc == 0 && !a->ready)
        rc = mproc__error(MPROC_ESTATE, "mproc_async_successful: the result is not ready");
    else if (rc == 0)
        rc = a->err == 0;
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_async_get(mproc_async *a, double timeout, const void **data, size_t *len) {
    return mproc__async_get(a, timeout, data, len, "mproc_async_get");
}

int mproc_async_get_into(mproc_async *a, double timeout, void *out, size_t out_len) {
    const void *data;
    size_t len;
    if (!out && out_len) return mproc__error(MPROC_EINVAL, "mproc_async_get_into: out is NULL");
    int rc = mproc__async_get(a, timeout, &data, &len, "mproc_async_get_into");
    if (rc < 0) return rc;
    if (len != out_len)
        return mproc__error(MPROC_ESIZE, "mproc_async_get_into: result has %zu bytes, out has %zu", len, out_len);
    if (len && data != out) memcpy(out, data, len);
    return 0;
}

const char *mproc_async_error(mproc_async *a) {
    pthread_mutex_lock(&mproc__core_lock);
    const char *m = NULL;
    if (mproc__async_check(a, "mproc_async_error") == 0 && a->ready && a->err)
        m = a->errmsg ? a->errmsg : mproc_strerror(a->err);
    pthread_mutex_unlock(&mproc__core_lock);
    return m;
}

int mproc_async_cancel(mproc_async *a) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, "mproc_async_cancel");
    if (rc == 0 && !a->ready && a->owner.pool) {
        char m[120];
        snprintf(m, sizeof m, "task '%.64s' was cancelled", a->owner.task->name);
        a->refs++; /* the handle outlives its completion inside the cancel */
        rc = mproc__owner_cancel(a->owner.pool, &a->owner, MPROC_ECANCELLED, m);
        mproc__async_unref(a);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_async_progress(mproc_async *a, mproc_progress *out) {
    if (out) memset(out, 0, sizeof *out);
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__async_check(a, "mproc_async_progress");
    if (rc == 0 && !out) rc = mproc__error(MPROC_EINVAL, "mproc_async_progress: out is NULL");
    if (rc == 0 && a->owner.prog) {
        mproc__progress_get(a->owner.prog, out);
    } else if (rc == 0) { /* apply: one item, counted by whether it is ready */
        out->total = 1;
        out->done = out->finished = a->ready;
        out->failed = a->ready && a->err;
        out->eta = -1;
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_async_free(mproc_async *a) {
    if (!a) return 0;
    return mproc__async_release(a, "mproc_async_free");
}
