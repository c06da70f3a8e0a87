/* locks.c - Lock, RLock and Semaphore in shared memory. Lock and RLock are robust mutexes, so a
 * holder's death hands the lock to the next taker with MPROC_EOWNERDEAD; a Semaphore is a count
 * under an internal mutex with a wait word that its releases move on.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "shared/shared.h"

typedef struct shared_lock {
    pthread_mutex_t m;
    _Atomic int32_t owner; /* the holder's thread id (0 when free): what a Condition's notify
                            * and a free check */
    int32_t depth;         /* an RLock's acquisitions by its holder (the holder's alone) */
} shared_lock;

typedef struct shared_semaphore {
    pthread_mutex_t mu;
    _Atomic uint32_t word;
    uint32_t waiters;
    uint32_t value, bound;
    int dead;
} shared_semaphore;

/* The calling thread's id, cached: gettid() is a system call, and a Lock's every acquire and
 * release records its holder. A fork child's thread has another id: the cache is cleared then. */
static _Thread_local int32_t cached_tid;
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;
static void forget_tid(void) { cached_tid = 0; }
static void tid_setup(void) { pthread_atfork(NULL, NULL, forget_tid); }
static int32_t my_tid(void) {
    if (__builtin_expect(!cached_tid, 0)) {
        pthread_once(&tid_once, tid_setup);
        cached_tid = (int32_t)gettid();
    }
    return cached_tid;
}

static int lock_create(mproc_shared_ref *out, uint32_t kind, int type, const char *fn) {
    if (!out) return mproc__error(MPROC_EINVAL, "%s: out is NULL", fn);
    shared_lock *l;
    int rc = mproc__sh_alloc(kind, sizeof *l, out, (void **)&l, fn);
    if (rc < 0) return rc;
    if ((rc = mproc__sh_mutex_init(&l->m, type)) < 0) mproc__sh_free(out, kind, fn);
    return rc;
}

static int lock_acquire(const mproc_shared_ref *r, uint32_t kind, double timeout, const char *fn) {
    int rc;
    double dl;
    shared_lock *l = mproc__sh_get(r, kind, fn, &rc);
    if (!l && rc != MPROC__SH_REMOTE) return rc;
    if (timeout < 0) dl = -1; /* forever: no clock to read */
    else if ((rc = mproc__sh_deadline(timeout, &dl, fn)) < 0) return rc;
    if (!l) return mproc__sh_forward(kind == MPROC__SH_LOCK ? MPROC__OP_LOCK_ACQUIRE : MPROC__OP_RLOCK_ACQUIRE, r, timeout, 0, fn);
    rc = mproc__sh_mutex_lock(&l->m, dl);
    if (rc == 0 || rc == 1) {
        int32_t me = my_tid();
        /* A holder's death (rc 1) leaves a stale depth: the count starts again. */
        l->depth = rc == 0 && atomic_load(&l->owner) == me ? l->depth + 1 : 1;
        atomic_store(&l->owner, me);
    }
    if (rc == 1) return mproc__error(MPROC_EOWNERDEAD, "%s: acquired, but its last holder died (or ended) holding it", fn);
    if (rc == MPROC_ETIMEDOUT) return mproc__error(rc, "%s: not acquired within %g s", fn, timeout);
    if (rc == MPROC_ESTATE) return mproc__error(rc, "%s: the calling thread holds this Lock already", fn);
    return rc;
}

static int lock_release(const mproc_shared_ref *r, uint32_t kind, const char *fn) {
    int rc;
    shared_lock *l = mproc__sh_get(r, kind, fn, &rc);
    if (!l && rc == MPROC__SH_REMOTE)
        return mproc__sh_forward(kind == MPROC__SH_LOCK ? MPROC__OP_LOCK_RELEASE : MPROC__OP_RLOCK_RELEASE, r, 0, 0, fn);
    if (!l) return rc;
    int32_t was = atomic_load(&l->owner), me = my_tid(), depth = l->depth;
    /* Cleared before the unlock: the next holder sets its own. */
    int last = was == me && (kind == MPROC__SH_LOCK || depth <= 1);
    if (was == me) l->depth = depth - 1;
    if (last) atomic_store(&l->owner, 0);
    if (mproc__sh_mutex_unlock(&l->m) < 0) {
        if (was == me) l->depth = depth;
        if (last) atomic_store(&l->owner, was);
        return mproc__error(MPROC_ESTATE, "%s: the calling thread does not hold it", fn);
    }
    return 0;
}

int mproc__sh_lock_held_by_me(const mproc_lock *lock) {
    int rc;
    shared_lock *l = mproc__sh_get(lock ? &lock->ref : NULL, MPROC__SH_LOCK, "mproc_lock", &rc);
    return l && atomic_load(&l->owner) == my_tid();
}

/* A held lock is not freed (its holder would release freed memory); a dead holder's is. An
 * RLock's trylock succeeds for its holder: its owner says so. */
static int lock_free(mproc_shared_ref *r, uint32_t kind, const char *fn) {
    int rc;
    shared_lock *l = mproc__sh_get(r, kind, fn, &rc);
    if (!l && rc == MPROC__SH_REMOTE)
        return mproc__sh_forward_free(kind == MPROC__SH_LOCK ? MPROC__OP_LOCK_FREE : MPROC__OP_RLOCK_FREE, r, fn);
    if (!l) return rc;
    if (atomic_load(&l->owner) == my_tid())
        return mproc__error(MPROC_EBUSY, "%s: the calling thread holds it; release it before freeing it", fn);
    rc = pthread_mutex_trylock(&l->m);
    if (rc == EOWNERDEAD) pthread_mutex_consistent(&l->m), rc = 0;
    if (rc != 0) return mproc__error(MPROC_EBUSY, "%s: the lock is held; release it before freeing it", fn);
    pthread_mutex_unlock(&l->m);
    return mproc__sh_free(r, kind, fn);
}

int mproc_lock_create(mproc_lock *out) {
    return lock_create(out ? &out->ref : NULL, MPROC__SH_LOCK, PTHREAD_MUTEX_ERRORCHECK, "mproc_lock_create");
}
int mproc_lock_acquire(const mproc_lock *lock, double timeout) {
    return lock_acquire(lock ? &lock->ref : NULL, MPROC__SH_LOCK, timeout, "mproc_lock_acquire");
}
int mproc_lock_release(const mproc_lock *lock) {
    return lock_release(lock ? &lock->ref : NULL, MPROC__SH_LOCK, "mproc_lock_release");
}
int mproc_lock_free(mproc_lock *lock) {
    return lock_free(lock ? &lock->ref : NULL, MPROC__SH_LOCK, "mproc_lock_free");
}
int mproc__sh_lock_free_as(mproc_lock *lock, const char *fn) { return lock_free(&lock->ref, MPROC__SH_LOCK, fn); }

int mproc_rlock_create(mproc_rlock *out) {
    return lock_create(out ? &out->ref : NULL, MPROC__SH_RLOCK, PTHREAD_MUTEX_RECURSIVE, "mproc_rlock_create");
}
int mproc_rlock_acquire(const mproc_rlock *lock, double timeout) {
    return lock_acquire(lock ? &lock->ref : NULL, MPROC__SH_RLOCK, timeout, "mproc_rlock_acquire");
}
int mproc_rlock_release(const mproc_rlock *lock) {
    return lock_release(lock ? &lock->ref : NULL, MPROC__SH_RLOCK, "mproc_rlock_release");
}
int mproc_rlock_free(mproc_rlock *lock) {
    return lock_free(lock ? &lock->ref : NULL, MPROC__SH_RLOCK, "mproc_rlock_free");
}

int mproc_semaphore_create(mproc_semaphore *out, unsigned value, unsigned bound) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_semaphore_create: out is NULL");
    if (bound && value > bound)
        return mproc__error(MPROC_EINVAL, "mproc_semaphore_create: value %u is above its bound %u", value, bound);
    if (value > INT32_MAX) return mproc__error(MPROC_EINVAL, "mproc_semaphore_create: value %u is too large", value);
    shared_semaphore *s;
    int rc = mproc__sh_alloc(MPROC__SH_SEMAPHORE, sizeof *s, &out->ref, (void **)&s, "mproc_semaphore_create");
    if (rc < 0) return rc;
    if ((rc = mproc__sh_mutex_init(&s->mu, PTHREAD_MUTEX_NORMAL)) < 0) {
        mproc__sh_free(&out->ref, MPROC__SH_SEMAPHORE, "mproc_semaphore_create");
        return rc;
    }
    s->value = value;
    s->bound = bound;
    return 0;
}

int mproc_semaphore_acquire(const mproc_semaphore *sem, double timeout) {
    int rc;
    double dl;
    shared_semaphore *s = mproc__sh_get(sem ? &sem->ref : NULL, MPROC__SH_SEMAPHORE, "mproc_semaphore_acquire", &rc);
    if (!s && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_semaphore_acquire")) < 0) return rc;
    if (!s) return mproc__sh_forward(MPROC__OP_SEM_ACQUIRE, &sem->ref, timeout, 0, "mproc_semaphore_acquire");
    mproc__sh_enter(&s->mu);
    for (;;) {
        if (s->dead) {
            mproc__sh_leave(&s->mu);
            return mproc__sh_freed_while_waiting("mproc_semaphore_acquire");
        }
        if (s->value > 0) { /* looked at first: a wake-up that came with the timeout is not lost */
            s->value--;
            mproc__sh_leave(&s->mu);
            return 0;
        }
        if (dl >= 0 && mproc__now() >= dl) break;
        uint32_t seen = atomic_load(&s->word);
        s->waiters++;
        mproc__sh_leave(&s->mu);
        mproc__sh_wait(&s->word, seen, dl);
        mproc__sh_enter(&s->mu);
        s->waiters--;
    }
    mproc__sh_leave(&s->mu);
    return mproc__error(MPROC_ETIMEDOUT, "mproc_semaphore_acquire: not acquired within %g s", timeout);
}

int mproc_semaphore_release(const mproc_semaphore *sem) {
    int rc;
    shared_semaphore *s = mproc__sh_get(sem ? &sem->ref : NULL, MPROC__SH_SEMAPHORE, "mproc_semaphore_release", &rc);
    if (!s && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_SEM_RELEASE, &sem->ref, 0, 0, "mproc_semaphore_release");
    if (!s) return rc;
    mproc__sh_enter(&s->mu);
    if ((s->bound && s->value >= s->bound) || s->value >= INT32_MAX) {
        unsigned b = s->bound;
        mproc__sh_leave(&s->mu);
        return mproc__error(MPROC_ESTATE, "mproc_semaphore_release: released more often than acquired (bound %u)", b);
    }
    s->value++;
    int wake = s->waiters > 0;
    mproc__sh_leave(&s->mu);
    if (wake) mproc__sh_wake(&s->word, 1);
    return 0;
}

int mproc_semaphore_value(const mproc_semaphore *sem) {
    int rc;
    shared_semaphore *s = mproc__sh_get(sem ? &sem->ref : NULL, MPROC__SH_SEMAPHORE, "mproc_semaphore_value", &rc);
    if (!s && rc == MPROC__SH_REMOTE) return mproc__sh_forward(MPROC__OP_SEM_VALUE, &sem->ref, 0, 0, "mproc_semaphore_value");
    if (!s) return rc;
    mproc__sh_enter(&s->mu);
    int v = (int)s->value;
    mproc__sh_leave(&s->mu);
    return v;
}

int mproc_semaphore_free(mproc_semaphore *sem) {
    int rc;
    shared_semaphore *s = mproc__sh_get(sem ? &sem->ref : NULL, MPROC__SH_SEMAPHORE, "mproc_semaphore_free", &rc);
    if (!s && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_SEM_FREE, &sem->ref, "mproc_semaphore_free");
    if (!s) return rc;
    mproc__sh_enter(&s->mu);
    s->dead = 1;
    int busy = s->waiters > 0;
    mproc__sh_leave(&s->mu);
    if (busy) mproc__sh_wake(&s->word, -1);
    return mproc__sh_free_ex(&sem->ref, MPROC__SH_SEMAPHORE, "mproc_semaphore_free", !busy);
}
