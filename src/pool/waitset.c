/* waitset.c - waiting on many handles: mproc_waitset (as_completed), mproc_async_wait_any and
 * mproc_async_wait_all.
 *
 * A set keeps its members in a list and its ready members in a queue, in the order they became
 * ready: a handle that completes queues itself (async.c calls mproc__waitset_ready), so taking
 * the next ready handle is O(1) however many are pending. wait_any over an array uses a set of
 * its own for the wait, so each wake-up costs one look, not a scan of the array.
 */
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

static int handle_ok(const mproc_async *a) { return a && a->magic == MPROC__ASYNC_MAGIC && !a->user_freed; }

/* 1 when this thread waiting for a would wait for itself: a is not ready and belongs to the
 * pool whose loop runs here (a callback), or is the call a cancel on this thread is ending, so
 * it can be ready only once the callback returns. Lock held. */
static int stuck_here(const mproc_async *a) {
    if (a->ready) return 0;
    return (mproc__loop_pool && a->owner.pool == mproc__loop_pool) || mproc__owner_settling_here(&a->owner);
}

/* The error for a wait that stuck_here(a) says would wait for itself. */
static int refuse_stuck(const mproc_async *a, const char *fn) {
    return mproc__refuse_wait_for(a->owner.pool, &a->owner, fn);
}

static int set_check(const mproc_waitset *ws, const char *fn) {
    if (!ws) return mproc__error(MPROC_EBADHANDLE, "%s: waitset is NULL", fn);
    if (ws->magic != MPROC__WAITSET_MAGIC) return mproc__error(MPROC_EBADHANDLE, "%s: not a live waitset", fn);
    return 0;
}

void mproc__waitset_ready(mproc_async *a) {
    mproc__set_link *l = a->link;
    if (!l || l->in_ready_queue) return;
    mproc_waitset *ws = l->set;
    l->in_ready_queue = 1;
    l->ready_next = NULL;
    if (ws->ready_tail) ws->ready_tail->link->ready_next = a;
    else ws->ready_head = a;
    ws->ready_tail = a;
}

static void unqueue_ready(mproc_waitset *ws, mproc_async *a) {
    if (!a->link->in_ready_queue) return;
    mproc_async *prev = NULL;
    for (mproc_async *r = ws->ready_head; r; prev = r, r = r->link->ready_next) {
        if (r != a) continue;
        if (prev) prev->link->ready_next = r->link->ready_next;
        else ws->ready_head = r->link->ready_next;
        if (ws->ready_tail == r) ws->ready_tail = prev;
        break;
    }
    a->link->in_ready_queue = 0;
}

void mproc__waitset_leave(mproc_async *a) {
    mproc__set_link *l = a->link;
    if (!l) return;
    mproc_waitset *ws = l->set;
    unqueue_ready(ws, a); /* O(1) for the usual caller, which takes the queue's head */
    if (l->prev) l->prev->link->next = l->next;
    else ws->members = l->next;
    if (l->next) l->next->link->prev = l->prev;
    a->link = NULL;
    free(l);
    ws->size--;
}

/* 0, or -1 when out of memory. */
static int join_set(mproc_waitset *ws, mproc_async *a) {
    mproc__set_link *l = calloc(1, sizeof *l);
    if (!l) return -1;
    l->set = ws;
    l->next = ws->members;
    if (ws->members) ws->members->link->prev = a;
    ws->members = a;
    a->link = l;
    ws->size++;
    if (a->ready) mproc__waitset_ready(a);
    return 0;
}

/* Freed sets are kept for reuse, never returned to malloc: a second free, or a call on a freed
 * set, reads its dead magic (EBADHANDLE) rather than freed memory. Lock held. */
static mproc_waitset *dead_sets;

int mproc_waitset_create(mproc_waitset **out) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_waitset_create: out is NULL");
    pthread_mutex_lock(&mproc__core_lock);
    mproc_waitset *ws = dead_sets;
    if (ws) dead_sets = ws->next_dead;
    pthread_mutex_unlock(&mproc__core_lock);
    if (!ws && !(ws = malloc(sizeof *ws))) {
        *out = NULL;
        return mproc__error(MPROC_ENOMEM, "mproc_waitset_create: out of memory");
    }
    memset(ws, 0, sizeof *ws);
    ws->magic = MPROC__WAITSET_MAGIC;
    *out = ws;
    return 0;
}

int mproc_waitset_add(mproc_waitset *ws, mproc_async *a) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = set_check(ws, "mproc_waitset_add");
    if (rc == 0 && !handle_ok(a)) rc = mproc__error(MPROC_EBADHANDLE, "mproc_waitset_add: handle is NULL or freed");
    if (rc == 0 && a->link)
        rc = mproc__error(MPROC_EBUSY, "mproc_waitset_add: the handle is in a waitset already");
    if (rc == 0 && join_set(ws, a) < 0) rc = mproc__error(MPROC_ENOMEM, "mproc_waitset_add: out of memory");
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

/* Lock held. */
static int next_ready(mproc_waitset *ws, double timeout, mproc_async **a, const char *fn) {
    int rc = mproc__timeout_check(timeout, fn);
    if (rc < 0) return rc;
    double deadline = mproc__deadline(timeout);
    int stuck = timeout != 0 && !ws->ready_head && ws->members;
    for (mproc_async *m = ws->members; stuck && m; m = m->link->next) stuck = stuck_here(m);
    if (stuck) return refuse_stuck(ws->members, fn);
    for (;;) {
        if (ws->ready_head) {
            *a = ws->ready_head;
            mproc__waitset_leave(*a);
            return 0;
        }
        if (ws->size == 0) return mproc__error(MPROC_EOF, "%s: the waitset is empty: every handle was handed back", fn);
        if (deadline >= 0 && mproc__remaining(deadline) <= 0)
            return mproc__error(MPROC_ETIMEDOUT, "%s: none of %zu handles ready after %g s", fn, ws->size, timeout);
        mproc__core_wait(deadline);
    }
}

int mproc_waitset_next(mproc_waitset *ws, double timeout, mproc_async **a) {
    if (a) *a = NULL;
    pthread_mutex_lock(&mproc__core_lock);
    int rc = set_check(ws, "mproc_waitset_next");
    if (rc == 0 && !a) rc = mproc__error(MPROC_EINVAL, "mproc_waitset_next: a is NULL");
    if (rc == 0) rc = next_ready(ws, timeout, a, "mproc_waitset_next");
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

size_t mproc_waitset_size(const mproc_waitset *ws) {
    pthread_mutex_lock(&mproc__core_lock);
    size_t n = ws && ws->magic == MPROC__WAITSET_MAGIC ? ws->size : 0;
    pthread_mutex_unlock(&mproc__core_lock);
    return n;
}

int mproc_waitset_free(mproc_waitset *ws) {
    if (!ws) return 0;
    pthread_mutex_lock(&mproc__core_lock);
    int rc = set_check(ws, "mproc_waitset_free");
    if (rc == 0) {
        while (ws->members) mproc__waitset_leave(ws->members);
        ws->magic = MPROC__DEAD_MAGIC;
        ws->next_dead = dead_sets;
        dead_sets = ws;
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

/* Lock held: the first bad handle of the array (*index), or 0. */
static int check_array(mproc_async *const *h, size_t n, size_t *index, const char *fn) {
    if (!h && n) return mproc__error(MPROC_EINVAL, "%s: handles is NULL", fn);
    for (size_t i = 0; i < n; i++)
        if (!handle_ok(h[i])) {
            if (index) *index = i;
            return mproc__error(MPROC_EBADHANDLE, "%s: handle %zu is NULL or freed", fn, i);
        }
    return 0;
}

int mproc_async_wait_any(mproc_async *const *handles, size_t n, double timeout, size_t *index) {
    if (!index) return mproc__error(MPROC_EINVAL, "mproc_async_wait_any: index is NULL");
    *index = 0;
    pthread_mutex_lock(&mproc__core_lock);
    int rc = check_array(handles, n, index, "mproc_async_wait_any");
    if (rc == 0 && n == 0) rc = mproc__error(MPROC_EINVAL, "mproc_async_wait_any: no handles");
    if (rc == 0) rc = mproc__timeout_check(timeout, "mproc_async_wait_any");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (handles[i]->ready) {
            *index = i;
            pthread_mutex_unlock(&mproc__core_lock);
            return 0;
        }
    int stuck = rc == 0 && timeout != 0;
    for (size_t i = 0; stuck && i < n; i++) stuck = stuck_here(handles[i]);
    if (stuck) rc = refuse_stuck(handles[0], "mproc_async_wait_any");
    if (rc == 0) {
        /* None ready: wait in a set of our own, on the handles not in a set of the caller's
         * (those few are looked at on every wake-up). */
        mproc_waitset mine = {.magic = MPROC__WAITSET_MAGIC};
        size_t foreign = 0;
        for (size_t i = 0; i < n; i++) /* out of memory: looked at on every wake-up instead */
            if (handles[i]->link || join_set(&mine, handles[i]) < 0) foreign++;
        double deadline = mproc__deadline(timeout);
        rc = MPROC_ETIMEDOUT;
        while (rc == MPROC_ETIMEDOUT) {
            mproc_async *got = mine.ready_head;
            for (size_t i = 0; !got && foreign && i < n; i++)
                if ((!handles[i]->link || handles[i]->link->set != &mine) && handles[i]->ready) got = handles[i];
            if (got) {
                size_t lowest = n;
                for (size_t i = 0; i < n; i++) /* the lowest index ready: O(n) once */
                    if (handles[i]->ready) {
                        lowest = i;
                        break;
                    }
                *index = lowest;
                rc = 0;
                break;
            }
            if (deadline >= 0 && mproc__remaining(deadline) <= 0) break;
            mproc__core_wait(deadline);
        }
        while (mine.members) mproc__waitset_leave(mine.members);
        if (rc == MPROC_ETIMEDOUT) {
            *index = n; /* no handle's index */
            mproc__error(MPROC_ETIMEDOUT, "mproc_async_wait_any: none of %zu handles ready after %g s", n, timeout);
        }
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_async_wait_all(mproc_async *const *handles, size_t n, double timeout) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = check_array(handles, n, NULL, "mproc_async_wait_all");
    if (rc == 0) rc = mproc__timeout_check(timeout, "mproc_async_wait_all");
    for (size_t i = 0; rc == 0 && timeout != 0 && i < n; i++)
        if (stuck_here(handles[i])) rc = refuse_stuck(handles[i], "mproc_async_wait_all");
    double deadline = mproc__deadline(timeout);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        while (!handles[i]->ready) {
            if (deadline >= 0 && mproc__remaining(deadline) <= 0) {
                rc = mproc__error(MPROC_ETIMEDOUT, "mproc_async_wait_all: handle %zu of %zu not ready after %g s", i, n,
                                  timeout);
                break;
            }
            mproc__core_wait(deadline);
            if (!handle_ok(handles[i])) { /* freed by another thread meanwhile */
                rc = mproc__error(MPROC_EBADHANDLE, "mproc_async_wait_all: handle %zu was freed while waited on", i);
                break;
            }
        }
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}
