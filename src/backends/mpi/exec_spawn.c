/* exec_spawn.c - starting one executor process and collecting its exit status (exec_spawn.h):
 * from the rank's fork server, or from the rank itself where there is none (MPI initialized by
 * the program) or it has ended (killed).
 */
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "backend.h"
#include "backends/mpi/exec_spawn.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/world.h"
#include "backends/socket_worker.h"
#include "backends/spawn.h"
#include "common/common.h"

/* Forks the executor from the rank itself: where the program initialized MPI before mproc_init
 * (no fork server could be made before MPI_Init, docs/mpi.md), or once the server has ended. */
static int fork_from_rank(int index, int ident, const char *name, int ring_fd, int *fd, pid_t *pid) {
    int rc;
    int sv[2];
    rc = mproc__fork_socketpair(sv);
    mproc__taken_slot *slot = mproc__fserver_slot(index);
    if (rc == 0 && slot) {
        mproc__taken_slot_reset(slot);
        mproc__fserver_size_socket(sv);
        pid_t me = getpid();
        *pid = mproc__fork_keeping(sv[1], ring_fd);
        if (*pid == 0) {
            close(sv[0]);
            mproc__socket_worker_main(sv[1], slot, name, ident, me, ring_fd);
        }
        mproc__fork_untrack_fd(sv[1]);
        close(sv[1]);
        *fd = sv[0];
        if (*pid < 0) {
            mproc__fork_untrack_fd(sv[0]);
            close(sv[0]);
            *fd = -1;
            *pid = 0;
            rc = MPROC_ESYS;
        }
    } else if (rc == 0) {
        for (int i = 0; i < 2; i++) {
            mproc__fork_untrack_fd(sv[i]);
            close(sv[i]);
        }
        rc = mproc__error(MPROC_ESYS, "no memory shared with the executor");
    }
    return rc;
}

int mproc__exec_spawn(int index, int ident, const char *name, size_t ring_size, int *fd, pid_t *pid,
                      mproc__exec_rings **rings) {
    int ring_fd = -1, rc;
    *fd = -1;
    *pid = 0;
    mproc__exec_rings *r = mproc__exec_rings_new(ring_size, &ring_fd);
    rc = MPROC_ESYS;
    if (mproc__fserver_running()) {
        rc = mproc__fserver_spawn(index, ident, name, ring_fd, fd, pid);
        if (rc < 0) mproc__fserver_ended(mproc__mpi.rank); /* killed: then from the rank */
    }
    if (!mproc__fserver_running()) rc = fork_from_rank(index, ident, name, ring_fd, fd, pid);
    if (ring_fd >= 0) { /* the executor has its own now */
        mproc__fork_untrack_fd(ring_fd);
        close(ring_fd);
    }
    if (rc < 0) {
        mproc__exec_rings_retire(r); /* nothing lent from it yet: freed at once */
        return rc;
    }
    *rings = r;
    return 0;
}

int mproc__exec_reap(pid_t pid, double grace, int *status) {
    if (!mproc__fserver_running()) {
        if (mproc__wait_child(pid, grace, status) == 0) return 1;
        kill(pid, SIGKILL);
        return mproc__waitpid(pid, status, 0) == pid;
    }
    double deadline = mproc__deadline(grace);
    int killed = 0;
    for (;;) {
        int rc = mproc__fserver_take_exit(pid, status);
        if (rc == 1) return 1;
        if (rc < 0) { /* the server is gone: so is its child, SIGKILLed with it */
            *status = SIGKILL;
            return 2;
        }
        double left = mproc__remaining(deadline);
        if (left <= 0) {
            if (killed) return 0;
            kill(pid, SIGKILL);
            killed = 1;
            deadline = mproc__deadline(grace);
            continue;
        }
        /* Short steps: the rank's main thread may take the report off the socket for us (it
         * then waits in the server's stash, where the next look finds it). */
        struct pollfd p = {mproc__fserver_fd(), POLLIN, 0};
        poll(&p, 1, left > 0.01 ? 10 : (int)(left * 1000) + 1);
    }
}
