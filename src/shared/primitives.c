/* primitives.c - the two things every shared object is built from: a robust process-shared
 * mutex (a holder that dies hands the next taker the lock and a flag, never a deadlock) and a
 * wait word (a futex on shared memory: the kernel only queues live sleepers, so a process killed
 * while it waited takes no wake-up with it, which a process-shared condition variable cannot
 * promise). Deadlines are CLOCK_MONOTONIC seconds, as mproc__deadline() makes them.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shared/shared.h"

static struct timespec to_timespec(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    if (ts.tv_nsec < 0) ts.tv_nsec = 0;
    return ts;
}

int mproc__sh_mutex_init(pthread_mutex_t *m, int type) {
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0) return mproc__error(MPROC_ESYS, "pthread_mutexattr_init failed");
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutexattr_settype(&a, type);
    if (rc == 0) rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc == 0 ? 0 : mproc__error(MPROC_ESYS, "a process-shared robust mutex: %s", strerror(rc));
}

int mproc__sh_mutex_lock(pthread_mutex_t *m, double deadline) {
    int rc;
    if (deadline < 0) {
        rc = pthread_mutex_lock(m);
    } else if (deadline <= mproc__now()) {
        rc = pthread_mutex_trylock(m);
        if (rc == EBUSY) rc = ETIMEDOUT;
    } else {
        struct timespec ts = to_timespec(deadline);
        rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
    }
    switch (rc) {
    case 0:
        return 0;
    case EOWNERDEAD:
        pthread_mutex_consistent(m);
        return 1;
    case ETIMEDOUT:
        return MPROC_ETIMEDOUT;
    case EDEADLK:
        return MPROC_ESTATE;
    default:
        return mproc__error(MPROC_ESYS, "locking a shared mutex: %s", strerror(rc));
    }
}

int mproc__sh_mutex_unlock(pthread_mutex_t *m) {
    int rc = pthread_mutex_unlock(m);
    return rc == 0 ? 0 : MPROC_ESTATE;
}

int mproc__sh_enter(pthread_mutex_t *m) {
    if (pthread_mutex_lock(m) != EOWNERDEAD) return 0;
    pthread_mutex_consistent(m);
    return 1;
}

void mproc__sh_leave(pthread_mutex_t *m) { pthread_mutex_unlock(m); }

int mproc__sh_wait(_Atomic uint32_t *word, uint32_t seen, double deadline) {
    struct timespec ts, *tsp = NULL;
    if (deadline >= 0) {
        if (deadline <= mproc__now()) return MPROC_ETIMEDOUT;
        ts = to_timespec(deadline);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time; no PRIVATE flag: the word is in
     * memory other processes map. */
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, seen, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r < 0 && errno == ETIMEDOUT) return MPROC_ETIMEDOUT;
    return 0; /* woken, the word moved (EAGAIN) or a signal (EINTR): the caller looks again */
}

void mproc__sh_wake(_Atomic uint32_t *word, int n) {
    atomic_fetch_add_explicit(word, 1, memory_order_seq_cst);
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n < 0 ? INT_MAX : n, NULL, NULL, 0);
}

int mproc__sh_deadline(double timeout, double *deadline, const char *fn) {
    int rc = mproc__timeout_check(timeout, fn);
    if (rc < 0) return rc;
    *deadline = mproc__deadline(timeout);
    return 0;
}

int mproc__sh_freed_while_waiting(const char *fn) {
    return mproc__error(MPROC_EBADHANDLE, "%s: the object was freed while this call waited on it", fn);
}
