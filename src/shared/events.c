/* events.c - Event, Condition and Barrier in shared memory: state under a short internal mutex
 * (or a plain atomic flag for an Event) and a wait word that every change moves on, so sleepers
 * wake, look again, and a process that died while it slept changes nothing for the others.
 */
#include <pthread.h>

#include "shared/shared.h"

/* sleepers and dead, in both: a free while someone sleeps inside wakes them, and they leave
 * with EBADHANDLE; the block is then never reused (mproc__sh_free_ex), as they still read it. */
typedef struct shared_event {
    _Atomic uint32_t flag;
    _Atomic uint32_t word;
    _Atomic uint32_t sleepers, dead;
} shared_event;

typedef struct shared_condition {
    mproc_lock lock;
    int own_lock;
    _Atomic uint32_t word;
    _Atomic uint32_t sleepers, dead;
} shared_condition;

typedef struct shared_barrier {
    pthread_mutex_t mu;
    _Atomic uint32_t word;
    uint32_t parties, count;
    int broken, dead;
    uint64_t generation;
    uint64_t broken_generation; /* generation + 1 of the last one a reset broke, 0 = none */
} shared_barrier;

/* ---- Event ---------------------------------------------------------------------------------- */

int mproc_event_create(mproc_event *out) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_event_create: out is NULL");
    shared_event *e;
    return mproc__sh_alloc(MPROC__SH_EVENT, sizeof *e, &out->ref, (void **)&e, "mproc_event_create");
}

static shared_event *event_of(const mproc_event *ev, const char *fn, int *rc) {
    return mproc__sh_get(ev ? &ev->ref : NULL, MPROC__SH_EVENT, fn, rc);
}

int mproc_event_set(const mproc_event *ev) {
    int rc;
    shared_event *e = event_of(ev, "mproc_event_set", &rc);
    if (!e && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_EVENT_SET, &ev->ref, 0, 0, "mproc_event_set");
    if (!e) return rc;
    if (!atomic_exchange(&e->flag, 1)) mproc__sh_wake(&e->word, -1);
    return 0;
}

int mproc_event_clear(const mproc_event *ev) {
    int rc;
    shared_event *e = event_of(ev, "mproc_event_clear", &rc);
    if (!e && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_EVENT_CLEAR, &ev->ref, 0, 0, "mproc_event_clear");
    if (!e) return rc;
    atomic_store(&e->flag, 0);
    return 0;
}

int mproc_event_is_set(const mproc_event *ev) {
    int rc;
    shared_event *e = event_of(ev, "mproc_event_is_set", &rc);
    if (!e && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_EVENT_IS_SET, &ev->ref, 0, 0, "mproc_event_is_set");
    return e ? (int)atomic_load(&e->flag) : rc;
}

int mproc_event_wait(const mproc_event *ev, double timeout) {
    int rc;
    double dl;
    shared_event *e = event_of(ev, "mproc_event_wait", &rc);
    if (!e && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_event_wait")) < 0) return rc;
    if (!e) return mproc__sh_forward(MPROC__OP_EVENT_WAIT, &ev->ref, timeout, 0, "mproc_event_wait");
    for (;;) {
        uint32_t seen = atomic_load(&e->word);
        if (atomic_load(&e->flag)) return 0;
        atomic_fetch_add(&e->sleepers, 1); /* before the look at dead: free sees us or we see it */
        if (atomic_load(&e->dead)) {
            atomic_fetch_sub(&e->sleepers, 1);
            return mproc__sh_freed_while_waiting("mproc_event_wait");
        }
        rc = mproc__sh_wait(&e->word, seen, dl);
        atomic_fetch_sub(&e->sleepers, 1);
        if (atomic_load(&e->dead)) return mproc__sh_freed_while_waiting("mproc_event_wait");
        if (rc == MPROC_ETIMEDOUT && !atomic_load(&e->flag))
            return mproc__error(MPROC_ETIMEDOUT, "mproc_event_wait: not set within %g s", timeout);
    }
}

int mproc_event_free(mproc_event *ev) {
    int rc;
    shared_event *e = event_of(ev, "mproc_event_free", &rc);
    if (!e && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_EVENT_FREE, &ev->ref, "mproc_event_free");
    if (!e) return rc;
    atomic_store(&e->dead, 1);
    int busy = atomic_load(&e->sleepers) > 0;
    if (busy) mproc__sh_wake(&e->word, -1);
    return mproc__sh_free_ex(&ev->ref, MPROC__SH_EVENT, "mproc_event_free", !busy);
}

/* ---- Condition ------------------------------------------------------------------------------ */

int mproc_condition_create(mproc_condition *out, const mproc_lock *lock) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_condition_create: out is NULL");
    int rc;
    if (lock && !mproc__sh_get(&lock->ref, MPROC__SH_LOCK, "mproc_condition_create", &rc))
        return rc != MPROC__SH_REMOTE ? rc
                                      : mproc__error(MPROC_EREMOTE, "mproc_condition_create: the lock was made on another node; "
                                                                    "make the Condition where its Lock is");
    mproc_lock own = {{0}};
    if (!lock && (rc = mproc_lock_create(&own)) < 0) return rc;
    shared_condition *c;
    if ((rc = mproc__sh_alloc(MPROC__SH_CONDITION, sizeof *c, &out->ref, (void **)&c, "mproc_condition_create")) < 0) {
        if (!lock) mproc_lock_free(&own);
        return rc;
    }
    c->lock = lock ? *lock : own;
    c->own_lock = !lock;
    return 0;
}

static shared_condition *condition_of(const mproc_condition *cond, const char *fn, int *rc) {
    return mproc__sh_get(cond ? &cond->ref : NULL, MPROC__SH_CONDITION, fn, rc);
}

int mproc_condition_acquire(const mproc_condition *cond, double timeout) {
    int rc;
    shared_condition *c = condition_of(cond, "mproc_condition_acquire", &rc);
    if (!c && rc == MPROC__SH_REMOTE) {
        double dl;
        if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_condition_acquire")) < 0) return rc;
        return mproc__sh_forward(MPROC__OP_COND_ACQUIRE, &cond->ref, timeout, 0, "mproc_condition_acquire");
    }
    return c ? mproc_lock_acquire(&c->lock, timeout) : rc;
}

int mproc_condition_release(const mproc_condition *cond) {
    int rc;
    shared_condition *c = condition_of(cond, "mproc_condition_release", &rc);
    if (!c && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_COND_RELEASE, &cond->ref, 0, 0, "mproc_condition_release");
    return c ? mproc_lock_release(&c->lock) : rc;
}

/* The wait itself, with the caller's lock held: gives it up, sleeps until a notify moves the
 * word (the word is read once, so none is lost), the deadline, or the object's free, then takes
 * the lock back. slice > 0 (the broker): sleeps and the taking back are made in slices with a
 * look at still_there(arg) between them, and a caller gone is MPROC__SH_GONE, the lock not
 * taken back. slice < 0: one sleep to the deadline. */
static int condition_wait_in(shared_condition *c, double timeout, double slice, int (*still_there)(void *), void *arg) {
    double dl = mproc__deadline(timeout);
    uint32_t seen = atomic_load(&c->word); /* read with the lock held: a notify cannot slip by */
    int released = mproc_lock_release(&c->lock);
    if (released == MPROC_EBADHANDLE)
        return mproc__error(MPROC_EBADHANDLE, "mproc_condition_wait: the condition's lock was freed");
    if (released < 0)
        return mproc__error(MPROC_ESTATE, "mproc_condition_wait: call it with the condition's lock held");
    int waited = 0, rc;
    atomic_fetch_add(&c->sleepers, 1);
    while (!atomic_load(&c->dead) && atomic_load(&c->word) == seen) {
        double left = mproc__remaining(dl);
        if (dl >= 0 && left <= 0) {
            waited = MPROC_ETIMEDOUT;
            break;
        }
        mproc__sh_wait(&c->word, seen, slice > 0 && (dl < 0 || left > slice) ? mproc__deadline(slice) : dl);
        if (still_there && !still_there(arg)) {
            atomic_fetch_sub(&c->sleepers, 1);
            return MPROC__SH_GONE;
        }
    }
    atomic_fetch_sub(&c->sleepers, 1);
    if (atomic_load(&c->dead)) return mproc__sh_freed_while_waiting("mproc_condition_wait");
    while ((rc = mproc_lock_acquire(&c->lock, slice > 0 ? slice : -1)) == MPROC_ETIMEDOUT)
        if (still_there && !still_there(arg)) return MPROC__SH_GONE;
    if (rc < 0) return rc; /* EOWNERDEAD: held again, and the caller must know */
    return waited == MPROC_ETIMEDOUT ? mproc__error(MPROC_ETIMEDOUT, "mproc_condition_wait: no notify within %g s", timeout) : 0;
}

int mproc_condition_wait(const mproc_condition *cond, double timeout) {
    int rc;
    double dl;
    shared_condition *c = condition_of(cond, "mproc_condition_wait", &rc);
    if (!c && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_condition_wait")) < 0) return rc;
    if (!c) return mproc__sh_forward(MPROC__OP_COND_WAIT, &cond->ref, timeout, 0, "mproc_condition_wait");
    return condition_wait_in(c, timeout, -1, NULL, NULL);
}

int mproc__sh_condition_wait_watched(const mproc_condition *cond, double timeout, double slice,
                                     int (*still_there)(void *), void *arg) {
    int rc;
    shared_condition *c = condition_of(cond, "mproc_condition_wait", &rc);
    if (!c) return rc == MPROC__SH_REMOTE ? mproc__error(MPROC_EBADHANDLE, "mproc_condition_wait: not of this node") : rc;
    return condition_wait_in(c, timeout, slice, still_there, arg);
}

int mproc_condition_notify(const mproc_condition *cond, int n) {
    int rc;
    shared_condition *c = condition_of(cond, "mproc_condition_notify", &rc);
    if (!c && rc != MPROC__SH_REMOTE) return rc;
    if (n < 1) return mproc__error(MPROC_EINVAL, "mproc_condition_notify: n is %d, want 1 or more", n);
    if (!c) return mproc__sh_forward(MPROC__OP_COND_NOTIFY, &cond->ref, 0, n, "mproc_condition_notify");
    if (!mproc__sh_lock_held_by_me(&c->lock))
        return mproc__error(MPROC_ESTATE, "mproc_condition_notify: call it with the condition's lock held");
    mproc__sh_wake(&c->word, n);
    return 0;
}

int mproc_condition_notify_all(const mproc_condition *cond) {
    int rc;
    shared_condition *c = condition_of(cond, "mproc_condition_notify_all", &rc);
    if (!c && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_COND_NOTIFY_ALL, &cond->ref, 0, 0, "mproc_condition_notify_all");
    if (!c) return rc;
    if (!mproc__sh_lock_held_by_me(&c->lock))
        return mproc__error(MPROC_ESTATE, "mproc_condition_notify_all: call it with the condition's lock held");
    mproc__sh_wake(&c->word, -1);
    return 0;
}

int mproc_condition_wait_for(const mproc_condition *cond, int (*predicate)(void *arg), void *arg, double timeout) {
    int rc;
    double dl;
    if (!condition_of(cond, "mproc_condition_wait_for", &rc) && rc != MPROC__SH_REMOTE) return rc;
    if (!predicate) return mproc__error(MPROC_EINVAL, "mproc_condition_wait_for: predicate is NULL");
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_condition_wait_for")) < 0) return rc;
    int owner_died = 0;
    while (!predicate(arg)) {
        double left = mproc__remaining(dl);
        if (dl >= 0 && left <= 0) return mproc__error(MPROC_ETIMEDOUT, "mproc_condition_wait_for: the predicate stayed false for %g s", timeout);
        rc = mproc_condition_wait(cond, left);
        if (rc == MPROC_EOWNERDEAD) owner_died = 1;
        else if (rc < 0 && rc != MPROC_ETIMEDOUT) return rc;
    }
    return owner_died ? mproc__error(MPROC_EOWNERDEAD, "mproc_condition_wait_for: the predicate holds, but a holder of the lock died meanwhile") : 0;
}

int mproc_condition_free(mproc_condition *cond) {
    int rc;
    shared_condition *c = condition_of(cond, "mproc_condition_free", &rc);
    if (!c && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_COND_FREE, &cond->ref, "mproc_condition_free");
    if (!c) return rc;
    /* Its own lock first: a held one refuses (EBUSY) and nothing is freed. */
    mproc_lock own = c->lock;
    if (c->own_lock && (rc = mproc__sh_lock_free_as(&own, "mproc_condition_free")) < 0) return rc;
    atomic_store(&c->dead, 1);
    int busy = atomic_load(&c->sleepers) > 0;
    if (busy) mproc__sh_wake(&c->word, -1);
    return mproc__sh_free_ex(&cond->ref, MPROC__SH_CONDITION, "mproc_condition_free", !busy);
}

/* ---- Barrier -------------------------------------------------------------------------------- */

int mproc_barrier_create(mproc_barrier *out, unsigned parties) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_barrier_create: out is NULL");
    if (parties < 1 || parties > INT32_MAX) return mproc__error(MPROC_EINVAL, "mproc_barrier_create: parties is %u, want 1 or more", parties);
    shared_barrier *b;
    int rc = mproc__sh_alloc(MPROC__SH_BARRIER, sizeof *b, &out->ref, (void **)&b, "mproc_barrier_create");
    if (rc < 0) return rc;
    if ((rc = mproc__sh_mutex_init(&b->mu, PTHREAD_MUTEX_NORMAL)) < 0) {
        mproc__sh_free(&out->ref, MPROC__SH_BARRIER, "mproc_barrier_create");
        return rc;
    }
    b->parties = parties;
    return 0;
}

static shared_barrier *barrier_of(const mproc_barrier *bar, const char *fn, int *rc) {
    return mproc__sh_get(bar ? &bar->ref : NULL, MPROC__SH_BARRIER, fn, rc);
}

static int broken(const char *fn) { return mproc__error(MPROC_EBROKEN, "%s: the barrier is broken (a timeout, abort or reset)", fn); }

int mproc_barrier_wait(const mproc_barrier *bar, double timeout) {
    int rc;
    double dl;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_wait", &rc);
    if (!b && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_barrier_wait")) < 0) return rc;
    if (!b) return mproc__sh_forward(MPROC__OP_BARRIER_WAIT, &bar->ref, timeout, 0, "mproc_barrier_wait");
    mproc__sh_enter(&b->mu);
    if (b->dead || b->broken) {
        int dead = b->dead;
        mproc__sh_leave(&b->mu);
        return dead ? mproc__sh_freed_while_waiting("mproc_barrier_wait") : broken("mproc_barrier_wait");
    }
    uint64_t gen = b->generation;
    int index = (int)b->count++;
    if (b->count == b->parties) {
        b->count = 0;
        b->generation++;
        mproc__sh_leave(&b->mu);
        mproc__sh_wake(&b->word, -1);
        return index;
    }
    for (;;) {
        uint32_t seen = atomic_load(&b->word);
        mproc__sh_leave(&b->mu);
        int waited = mproc__sh_wait(&b->word, seen, dl);
        mproc__sh_enter(&b->mu);
        if (b->dead) {
            mproc__sh_leave(&b->mu);
            return mproc__sh_freed_while_waiting("mproc_barrier_wait");
        }
        if (b->generation != gen) { /* passed, or a reset broke this round */
            int was_broken = b->broken_generation == gen + 1;
            mproc__sh_leave(&b->mu);
            return was_broken ? broken("mproc_barrier_wait") : index;
        }
        if (b->broken) {
            mproc__sh_leave(&b->mu);
            return broken("mproc_barrier_wait");
        }
        if (waited == MPROC_ETIMEDOUT) {
            b->broken = 1;
            mproc__sh_leave(&b->mu);
            mproc__sh_wake(&b->word, -1);
            return mproc__error(MPROC_ETIMEDOUT, "mproc_barrier_wait: not every party came within %g s; the barrier is broken", timeout);
        }
    }
}

int mproc_barrier_abort(const mproc_barrier *bar) {
    int rc;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_abort", &rc);
    if (!b && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_BARRIER_ABORT, &bar->ref, 0, 0, "mproc_barrier_abort");
    if (!b) return rc;
    mproc__sh_enter(&b->mu);
    b->broken = 1;
    mproc__sh_leave(&b->mu);
    mproc__sh_wake(&b->word, -1);
    return 0;
}

int mproc_barrier_reset(const mproc_barrier *bar) {
    int rc;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_reset", &rc);
    if (!b && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_BARRIER_RESET, &bar->ref, 0, 0, "mproc_barrier_reset");
    if (!b) return rc;
    mproc__sh_enter(&b->mu);
    if (b->count > 0) b->broken_generation = b->generation + 1;
    b->generation++;
    b->count = 0;
    b->broken = 0;
    mproc__sh_leave(&b->mu);
    mproc__sh_wake(&b->word, -1);
    return 0;
}

int mproc_barrier_waiting(const mproc_barrier *bar) {
    int rc;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_waiting", &rc);
    if (!b && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_BARRIER_WAITING, &bar->ref, 0, 0, "mproc_barrier_waiting");
    if (!b) return rc;
    mproc__sh_enter(&b->mu);
    int n = b->broken ? 0 : (int)b->count;
    mproc__sh_leave(&b->mu);
    return n;
}

int mproc_barrier_parties(const mproc_barrier *bar) {
    int rc;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_parties", &rc);
    if (!b && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_BARRIER_PARTIES, &bar->ref, 0, 0, "mproc_barrier_parties");
    return b ? (int)b->parties : rc;
}

int mproc_barrier_broken(const mproc_barrier *bar) {
    int rc;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_broken", &rc);
    if (!b && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_BARRIER_BROKEN, &bar->ref, 0, 0, "mproc_barrier_broken");
    if (!b) return rc;
    mproc__sh_enter(&b->mu);
    int v = b->broken;
    mproc__sh_leave(&b->mu);
    return v;
}

int mproc_barrier_free(mproc_barrier *bar) {
    int rc;
    shared_barrier *b = barrier_of(bar, "mproc_barrier_free", &rc);
    if (!b && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_BARRIER_FREE, &bar->ref, "mproc_barrier_free");
    if (!b) return rc;
    mproc__sh_enter(&b->mu);
    b->dead = 1;
    int busy = b->count > 0;
    mproc__sh_leave(&b->mu);
    if (busy) mproc__sh_wake(&b->word, -1);
    return mproc__sh_free_ex(&bar->ref, MPROC__SH_BARRIER, "mproc_barrier_free", !busy);
}
