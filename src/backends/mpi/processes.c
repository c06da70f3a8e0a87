/* processes.c - Processes under MPI: a Process runs as a forked child of the least busy worker
 * rank, which answers PROC_START with PROC_STARTED (its pid, or why it could not) and later
 * PROC_EXIT (Python's exit code); PROC_SIGNAL asks it to signal the child. The frames arrive
 * through the master's router (routing.c), which updates the Process's record.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/master_state.h"
#include "backends/mpi/processes.h"
#include "backends/mpi/routing.h"
#include "wire/wire.h"

/* The least busy worker rank (pool tasks queued there plus its Processes); ties rotate. */
static int pick_rank(void) {
    int nw = mproc__mpi.size - 1, best = 0;
    uint32_t best_load = UINT32_MAX;
    for (int k = 0; k < nw; k++) {
        int r = 1 + (mproc__master.rr + k) % nw;
        if (mproc__mpi_is_gone(r)) continue;
        uint32_t load = mproc__master.outstanding[r] + mproc__master.nchild[r];
        if (load < best_load) {
            best = r;
            best_load = load;
        }
    }
    if (best) mproc__master.rr = best % nw;
    return best; /* 0: every worker rank is lost */
}

static void child_unlink(mproc__child *c) {
    for (mproc__child **pp = &mproc__master.children; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (c->state != MPROC__CHILD_EXITED && mproc__master.nchild[c->rank] > 0) mproc__master.nchild[c->rank]--;
}

static int child_started(const void *arg) {
    return ((const mproc__child *)arg)->state != MPROC__CHILD_STARTING;
}

static int child_exited(const void *arg) {
    return ((const mproc__child *)arg)->state == MPROC__CHILD_EXITED;
}

/* Lock held. Sends PROC_START for c and waits for the rank's answer. */
static int send_start(mproc__child *c, const mproc_task *t, const void *arg, size_t len,
                      const char *name) {
    size_t nlen = strlen(name);
    uint8_t hdr[MPROC__WIRE_HDR_SIZE], pre[MPROC__MPI_START_PREFIX];
    mproc__hdr_encode(hdr, MPROC__FRAME_PROC_START, c->id,
                      (uint32_t)(MPROC__MPI_START_PREFIX + nlen + len), (uint32_t)t->id);
    mproc__put_u32(pre, (uint32_t)t->id);
    mproc__put_u32(pre + 4, (uint32_t)nlen);
    struct iovec iov[4] = {{hdr, sizeof hdr}, {pre, sizeof pre}, {(void *)name, nlen},
                           {(void *)arg, len}};
    int rc = mproc__mpi_send_frame(c->rank, iov, 4, mproc__mpi_route);
    if (rc < 0) return rc;
    mproc__mpi_wait_until(child_started, c, -1.0, MPROC__MPI_BUSY_CAP_NS);
    if (c->state == MPROC__CHILD_FAILED)
        return mproc__error(c->status, "Process %s: rank %d could not start it: %s", name, c->rank,
                            c->why);
    return 0;
}

int mproc__mpi_proc_start(const mproc_task *target, const void *arg, size_t len, const char *name,
                          mproc__child **out, long *pid) {
    *out = NULL;
    if (pid) *pid = 0;
    if (!target || target->id < 0 || (!arg && len))
        return mproc__error(MPROC_EINVAL, "mpi proc_start: no task or a NULL argument");
    if (!name) name = "";
    size_t nlen = strlen(name);
    if (nlen > 4096 || len > MPROC__WIRE_MAX_PAYLOAD - MPROC__MPI_START_PREFIX - nlen)
        return mproc__error(MPROC_ETOOBIG, "mpi proc_start: a %zu-byte argument is too big", len);
    if (!mproc__mpi.ready) return mproc__error(MPROC_ESTATE, "mpi: the backend is not started");
    mproc__child *c = calloc(1, sizeof *c);
    if (!c) return mproc__error(MPROC_ENOMEM, "mpi proc_start: out of memory");
    pthread_mutex_lock(&mproc__mpi.lock);
    c->id = ++mproc__master.child_seq;
    c->next = mproc__master.children;
    mproc__master.children = c;
    int rc;
    /* A rank found lost before it started the Process (watchdog.c) is not the Process's
     * fault: it is started on another one. */
    do {
        c->rank = pick_rank();
        if (!c->rank) {
            rc = mproc__error(MPROC_EWORKER, "mpi proc_start: every worker rank is lost");
            break;
        }
        c->state = MPROC__CHILD_STARTING;
        mproc__master.nchild[c->rank]++;
        rc = send_start(c, target, arg, len, name);
    } while (rc < 0 && mproc__mpi_is_gone(c->rank));
    /* Now that we know it started, it may run: signal 0 tells its rank to open its gate
     * (spawn.h). Had its rank been lost before this, it never ran and went to another rank
     * above - a Process never runs twice. */
    if (rc == 0) rc = mproc__mpi_send_hdr(c->rank, MPROC__FRAME_PROC_SIGNAL, c->id, 0, mproc__mpi_route);
    if (rc < 0) {
        child_unlink(c);
        free(c);
    } else {
        *out = c;
        if (pid) *pid = c->pid;
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

int mproc__mpi_proc_wait(mproc__child *c, double timeout, int *exitcode) {
    if (!c) return mproc__error(MPROC_EINVAL, "mpi proc_wait: no process");
    pthread_mutex_lock(&mproc__mpi.lock);
    int done = mproc__mpi_wait_until(child_exited, c, mproc__deadline(timeout), MPROC__MPI_IDLE_CAP_NS);
    if (done && exitcode) *exitcode = c->exitcode;
    pthread_mutex_unlock(&mproc__mpi.lock);
    return done ? 0 : MPROC_ETIMEDOUT;
}

int mproc__mpi_proc_signal(mproc__child *c, int signo) {
    if (!c || signo <= 0) return mproc__error(MPROC_EINVAL, "mpi proc_signal: bad arguments");
    int rc = 0;
    pthread_mutex_lock(&mproc__mpi.lock);
    if (c->state == MPROC__CHILD_RUNNING)
        rc = mproc__mpi_send_hdr(c->rank, MPROC__FRAME_PROC_SIGNAL, c->id, (uint32_t)signo, mproc__mpi_route);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

void mproc__mpi_proc_free(mproc__child *c) {
    if (!c) return;
    pthread_mutex_lock(&mproc__mpi.lock);
    child_unlink(c);
    pthread_mutex_unlock(&mproc__mpi.lock);
    free(c);
}

void mproc__mpi_children_free(void) {
    while (mproc__master.children) {
        mproc__child *c = mproc__master.children;
        mproc__master.children = c->next;
        free(c);
    }
}
