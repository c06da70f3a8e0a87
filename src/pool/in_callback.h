/* in_callback.h - which pool calls a callback may make: the checks that refuse, with
 * MPROC_ESTATE, a call that would wait for itself or pull a pool out from under the code
 * running the callback (a pool's loop: mproc__loop_pool; a cancel or mproc_iter_free settling
 * a call on this thread: mproc__settling_top, both in common.h). Inline, because files on every
 * level of src/pool/ ask them; included by pool.h.
 */
#ifndef MPROC_POOL_IN_CALLBACK_H
#define MPROC_POOL_IN_CALLBACK_H

#include "common/common.h"

/* mproc__loop_pool (common.h; defined at the bottom, in common/runtime.c, as files on every
 * level here read it): the pool whose loop this thread runs now - its result thread, or a
 * caller driving it - and so whose callbacks run here; NULL elsewhere. join and free refuse to
 * wait for that loop from inside it, and terminate there does not wait for it (lifecycle.c).
 * MPROC_ESTATE naming fn when this thread runs p's loop (a wait for p would wait for itself),
 * else 0. Inline: the files of every level below the scheduler ask it. */
static inline int mproc__pool_refuse_wait_in_loop(const mproc_pool *p, const char *fn) {
    if (!p || mproc__loop_pool != p) return 0;
    return mproc__error(MPROC_ESTATE, "%s: called in a callback on this pool's own loop, which would wait for "
                                      "itself; call it after the callback returns (mproc_pool_terminate may be "
                                      "called there)", fn);
}
/* 1 when a cancel or mproc_iter_free on this thread is settling calls of p (its callbacks run
 * here, and it uses p after them: mproc__settling_top, common.h). */
static inline int mproc__pool_settling_here(const mproc_pool *p) {
    for (const mproc__settling *s = mproc__settling_top; s; s = s->outer)
        if (s->pool == p) return 1;
    return 0;
}
/* 1 when the call owner (an mproc__owner) is being cancelled on this thread. */
static inline int mproc__owner_settling_here(const void *owner) {
    for (const mproc__settling *s = mproc__settling_top; s; s = s->outer)
        if (s->owner == owner) return 1;
    return 0;
}
/* For a wait on a call of p not yet ready (owner): refused on p's loop, and in a callback run
 * inside that call's own cancel (it ends when the cancel goes on, after the callback). */
static inline int mproc__refuse_wait_for(const mproc_pool *p, const void *owner, const char *fn) {
    int rc = mproc__pool_refuse_wait_in_loop(p, fn);
    if (rc == 0 && mproc__owner_settling_here(owner))
        rc = mproc__error(MPROC_ESTATE, "%s: called in a callback run inside the cancel of the call it waits for, "
                                        "which ends only after the callback returns", fn);
    return rc;
}
/* For join, free and finalize: refused on p's loop, and also in a callback run inside a cancel
 * of p on this thread (the pool would be destroyed, or waited for, under that cancel). */
static inline int mproc__pool_refuse_free_in_callback(const mproc_pool *p, const char *fn) {
    int rc = mproc__pool_refuse_wait_in_loop(p, fn);
    if (rc == 0 && p && mproc__pool_settling_here(p))
        rc = mproc__error(MPROC_ESTATE, "%s: called in a callback run inside mproc_async_cancel or mproc_iter_free "
                                        "on this pool, which still uses the pool; call it after that returns "
                                        "(mproc_pool_terminate may be called there)", fn);
    return rc;
}

#endif /* MPROC_POOL_IN_CALLBACK_H */
