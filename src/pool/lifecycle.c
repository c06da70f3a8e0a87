/* lifecycle.c - a Pool's public life: create (options checked, result thread started,
 * which starts the workers), close, terminate, join, free, and the list of live pools that
 * mproc_finalize() frees. The scheduling itself is in scheduler.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "pool/pool.h"

static mproc_pool *live_pools;

static int check_opts(const mproc_pool_opts *o) {
    if (o->processes < 0) return mproc__error(MPROC_EINVAL, "mproc_pool_create: processes must be >= 0 (0 = CPU count), got %d", o->processes);
    if (o->maxtasksperchild < 0) return mproc__error(MPROC_EINVAL, "mproc_pool_create: maxtasksperchild must be >= 0");
    if (o->inflight < 0 || o->inflight > MPROC__INFLIGHT_MAX)
        return mproc__error(MPROC_EINVAL, "mproc_pool_create: inflight must be 0..%d, got %d", MPROC__INFLIGHT_MAX, o->inflight);
    if (!(o->task_timeout >= 0)) /* negative or NaN (a NaN would silently mean "no limit") */
        return mproc__error(MPROC_EINVAL, "mproc_pool_create: task_timeout is %g: want seconds >= 0 (0 = no limit)", o->task_timeout);
    if (o->max_retries < 0) return mproc__error(MPROC_EINVAL, "mproc_pool_create: max_retries must be >= 0");
    if (o->workers_per_rank < 0)
        return mproc__error(MPROC_EINVAL, "mproc_pool_create: workers_per_rank must be >= 0 (0 = all a rank runs), got %d",
                            o->workers_per_rank);
    if (o->initarg_len && !o->initarg) return mproc__error(MPROC_EINVAL, "mproc_pool_create: initarg is NULL but initarg_len is %zu", o->initarg_len);
    if (o->initarg_len > MPROC__WIRE_MAX_PAYLOAD / 2) return mproc__error(MPROC_ETOOBIG, "mproc_pool_create: initarg too large");
    if (o->initializer) return mproc__task_check(o->initializer, "mproc_pool_create");
    return 0;
}

/* Freed pools are kept (dead, and reused by the next create) rather than returned to malloc,
 * so a second free or any later call on a freed pool reads its dead magic (EBADHANDLE), not
 * freed memory. Pools are few; their arrays are freed. Lock held. */
static mproc_pool *dead_pools;

static void pool_destroy(mproc_pool *p) {
    mproc__mark_dead(&p->magic, MPROC__DEAD_MAGIC);
    pthread_cond_destroy(&p->park);
    free(p->ws);
    free(p->ring);
    free(p->in_ring);
    free(p->dom_next);
    free(p->initarg);
    p->next_live = dead_pools; /* the live list's link, free now */
    dead_pools = p;
}

/* A pool that never started (create failed); lock not held. */
static void pool_discard(mproc_pool *p) {
    pthread_mutex_lock(&mproc__core_lock);
    pool_destroy(p);
    pthread_mutex_unlock(&mproc__core_lock);
}

static mproc_pool *pool_alloc(void) {
    pthread_mutex_lock(&mproc__core_lock);
    mproc_pool *p = dead_pools;
    if (p) dead_pools = p->next_live;
    pthread_mutex_unlock(&mproc__core_lock);
    if (!p) return calloc(1, sizeof *p);
    memset(p, 0, sizeof *p);
    return p;
}

static int start_pool(mproc_pool *p) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = pthread_create(&p->thread, NULL, mproc__pool_result_thread, p);
    if (rc != 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        return mproc__error(MPROC_ESYS, "mproc_pool_create: cannot start the result thread: %s", strerror(rc));
    }
    while (p->thread_running == 0) mproc__core_wait(-1);
    rc = p->thread_running < 0 ? -1 : 0;
    if (rc == 0) {
        p->next_live = live_pools;
        if (live_pools) live_pools->prev_live = p;
        live_pools = p;
    }
    pthread_mutex_unlock(&mproc__core_lock);
    if (rc < 0) {
        pthread_join(p->thread, NULL);
        return mproc__error(p->start_rc < 0 ? p->start_rc : MPROC_ESYS, "mproc_pool_create: cannot start %d worker%s: %s",
                            p->n, p->n == 1 ? "" : "s", p->broken_msg);
    }
    return 0;
}

int mproc_pool_create(mproc_pool **out, const mproc_pool_opts *opts) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_pool_create: out is NULL");
    *out = NULL;
    int rc = mproc__require_init("mproc_pool_create");
    if (rc < 0) return rc;
    mproc_pool_opts o = {0};
    if (opts) o = *opts;
    if ((rc = check_opts(&o)) < 0) return rc;
    mproc_pool *p = pool_alloc();
    if (!p) return mproc__error(MPROC_ENOMEM, "mproc_pool_create: out of memory");
    p->magic = MPROC__POOL_MAGIC;
    p->be = mproc__backend();
    p->opts = o;
    int maxw = mproc__pool_max_workers(p);
    p->n = o.processes ? o.processes : mproc__pool_default_workers(p);
    if (p->n > maxw) p->n = maxw;
    p->inflight = o.inflight ? o.inflight : mproc__pool_default_inflight(p);
    mproc__cond_init(&p->park);
    p->last_worker = -1;
    p->suspect_room = -1;
    p->ws = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *p->ws);
    p->ring = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *p->ring);
    p->in_ring = calloc((size_t)(p->n > 0 ? p->n : 1), 1);
    p->dom_next = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *p->dom_next);
    if (o.initarg_len) p->initarg = malloc(o.initarg_len);
    if (!p->ws || !p->ring || !p->in_ring || !p->dom_next || (o.initarg_len && !p->initarg)) {
        pool_discard(p);
        return mproc__error(MPROC_ENOMEM, "mproc_pool_create: out of memory");
    }
    if (o.initarg_len) memcpy(p->initarg, o.initarg, o.initarg_len);
    if (p->n <= 0) {
        rc = mproc__error(MPROC_EINVAL, "mproc_pool_create: the %s backend has no workers to give", p->be->name);
        pool_discard(p);
        return rc;
    }
    if ((rc = start_pool(p)) < 0) {
        pool_discard(p);
        return rc;
    }
    *out = p;
    return 0;
}

int mproc_pool_size(const mproc_pool *pool) {
    int rc = mproc__pool_check(pool, "mproc_pool_size");
    return rc < 0 ? rc : pool->n;
}

int mproc_pool_close(mproc_pool *pool) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__pool_check(pool, "mproc_pool_close");
    if (rc == 0 && pool->state == MPROC__POOL_RUN) {
        pool->state = MPROC__POOL_CLOSED;
        mproc__pool_wake(pool);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

/* Waits for the result thread to finish and joins it once. Lock held on entry and exit. */
static void join_thread(mproc_pool *p) {
    while (p->thread_running) mproc__core_wait(-1);
    if (!p->joined) {
        p->joined = 1;
        pthread_mutex_unlock(&mproc__core_lock);
        pthread_join(p->thread, NULL);
        pthread_mutex_lock(&mproc__core_lock);
    }
}

int mproc_pool_terminate(mproc_pool *pool) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__pool_check(pool, "mproc_pool_terminate");
    if (rc == 0) {
        pool->state = MPROC__POOL_TERMINATED;
        mproc__pool_wake(pool);
        /* From a callback of the pool: it stops once the callback returns (its workers killed
         * then); a join or free after that waits for it, as after any terminate. */
        if (mproc__loop_pool != pool && !mproc__pool_settling_here(pool)) join_thread(pool);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_pool_join(mproc_pool *pool) {
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__pool_check(pool, "mproc_pool_join");
    if (rc == 0) rc = mproc__pool_refuse_free_in_callback(pool, "mproc_pool_join");
    if (rc == 0 && pool->state == MPROC__POOL_RUN)
        rc = mproc__error(MPROC_ESTATE, "mproc_pool_join: call mproc_pool_close() or mproc_pool_terminate() first");
    if (rc == 0) join_thread(pool);
    pthread_mutex_unlock(&mproc__core_lock);
    return rc;
}

int mproc_pool_free(mproc_pool *pool) {
    if (!pool) return 0;
    pthread_mutex_lock(&mproc__core_lock);
    int rc = mproc__pool_check(pool, "mproc_pool_free");
    if (rc == 0) rc = mproc__pool_refuse_free_in_callback(pool, "mproc_pool_free");
    if (rc < 0) {
        pthread_mutex_unlock(&mproc__core_lock);
        return rc;
    }
    if (pool->state == MPROC__POOL_RUN) pool->state = MPROC__POOL_TERMINATED;
    mproc__pool_wake(pool);
    join_thread(pool);
    /* A cancel on another thread still uses it: wait for it to end - unless this thread runs
     * callbacks itself, which that cancel's callback might be waiting for. */
    if (pool->settling && mproc__in_pool_loop()) {
        pthread_mutex_unlock(&mproc__core_lock);
        return mproc__error(MPROC_ESTATE, "mproc_pool_free: a cancel on another thread still uses the pool; it is "
                                          "terminated: free it after this callback returns");
    }
    while (pool->settling) mproc__core_wait(-1);
    mproc__iter_detach_all(pool);
    if (pool->prev_live) pool->prev_live->next_live = pool->next_live;
    else if (live_pools == pool) live_pools = pool->next_live;
    if (pool->next_live) pool->next_live->prev_live = pool->prev_live;
    pool_destroy(pool);
    pthread_mutex_unlock(&mproc__core_lock);
    return 0;
}

int mproc__in_pool_loop(void) { return mproc__loop_pool != NULL || mproc__settling_top != NULL; }

/* The pool a callback running on this thread belongs to (its loop, or a cancel settling it). */
static int runs_callbacks_here(const mproc_pool *p) { return p == mproc__loop_pool || mproc__pool_settling_here(p); }

void mproc__pools_shutdown(void) {
    for (;;) {
        pthread_mutex_lock(&mproc__core_lock);
        mproc_pool *p = live_pools;
        /* exit() or mproc_finalize in a callback: the pool whose loop runs it cannot be waited
         * for here; it is terminated (its workers go when the process does) and left. */
        while (p && runs_callbacks_here(p)) p = p->next_live;
        pthread_mutex_unlock(&mproc__core_lock);
        if (!p) break;
        if (mproc_pool_free(p) == MPROC_ESTATE) break; /* used by a cancel elsewhere, not waitable here */
    }
    if (mproc__loop_pool) mproc_pool_terminate(mproc__loop_pool);
}
