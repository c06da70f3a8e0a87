/* rank_children.c - the Processes of an MPI worker rank. Under MPI a Process runs as a forked
 * child of a worker rank: PROC_START forks it (reply PROC_STARTED with its pid), it waits at
 * its start gate (spawn.h) until the master's word, PROC_SIGNAL kill()s it, and the rank's
 * receive loop (rank.c) has its ends reaped here and reported as PROC_EXIT with Python's exit
 * code (minus the signal number). The rank's loop calls in; nothing here calls back into it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "backends/spawn.h"
#include "common/common.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/rank_children.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/wait.h"
#include "wire/wire.h"
#include "worker/worker.h"

typedef struct rchild {
    pid_t pid;
    uint64_t id;    /* the master's id for this Process */
    int via_server; /* forked by the fork server (its end comes as the server's report) */
    int released;   /* its gate (spawn.h) opened: it runs its target */
} rchild;

/* Children of this rank. */
static struct {
    rchild *kids;
    size_t nkids, cap;
} children;

/* Lock held. Reaps children that ended and reports each with PROC_EXIT; returns how many. */
int mproc__mpi_rank_report_exits(mproc__mpi_sink sink) {
    int n = 0;
    for (size_t i = 0; i < children.nkids;) {
        int st = 0, code;
        if (children.kids[i].via_server) {
            int rc = mproc__fserver_take_exit(children.kids[i].pid, &st);
            if (rc == 0) {
                i++;
                continue;
            }
            /* The server gone: so is its child, SIGKILLed with it (PR_SET_PDEATHSIG). */
            code = rc < 0 ? -SIGKILL : mproc__exitcode(st);
        } else {
            pid_t r = mproc__waitpid(children.kids[i].pid, &st, WNOHANG);
            if (r == 0) {
                i++;
                continue;
            }
            code = r < 0 ? 255 : mproc__exitcode(st);
        }
        uint8_t f[MPROC__WIRE_HDR_SIZE + 4];
        mproc__hdr_encode(f, MPROC__FRAME_PROC_EXIT, children.kids[i].id, 4, 0);
        mproc__put_u32(f + MPROC__WIRE_HDR_SIZE, (uint32_t)code);
        children.kids[i] = children.kids[--children.nkids];
        struct iovec iov = {f, sizeof f};
        mproc__mpi_send_frame(0, &iov, 1, sink);
        n++;
    }
    return n;
}

/* Answers PROC_START: status 0 and the pid, or an error code and a sentence. */
static int reply_started(uint64_t id, int status, pid_t pid, const char *why, mproc__mpi_sink sink) {
    size_t wl = strlen(why);
    uint8_t f[MPROC__WIRE_HDR_SIZE + MPROC__MPI_STARTED_MIN];
    mproc__hdr_encode(f, MPROC__FRAME_PROC_STARTED, id, (uint32_t)(MPROC__MPI_STARTED_MIN + wl), 0);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE, (uint32_t)status);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 4, (uint32_t)pid);
    struct iovec iov[2] = {{f, sizeof f}, {(void *)why, wl}};
    pthread_mutex_lock(&mproc__mpi.lock);
    int rc = mproc__mpi_send_frame(0, iov, 2, sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

/* Body of a Process child: it must never touch MPI or return into the rank's loop. */
_Noreturn static void child_main(const mproc_task *t, const uint8_t *arg, size_t len,
                                 const char *name, pid_t parent) {
#ifdef __linux__
    /* If the rank dies, the child goes too: an orphan would hold mpirun's output pipes open
     * (also while it waits at its gate, below). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
#else
    (void)parent;
#endif
    mproc__gate_wait(); /* the rank's word that the master knows we started (spawn.h) */
    /* Its own crash is its exit code (-11), not a rank's death. */
    mproc__fork_child_signals();
    signal(SIGCHLD, SIG_DFL);
    mproc__set_identity(name, -1);
    int code = mproc__process_main(t, arg, len, name);
    fflush(NULL);
    _exit(code & 0xff);
}

/* A child's end rings our own doorbell, so the loop reports it at once rather than at its next
 * poll. Ringing is async-signal-safe (an atomic add and a futex call). */
static void on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    mproc__mpi_ring_self();
    errno = saved;
}

static void watch_children(void) {
    static int installed;
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP; /* tasks' own syscalls go on undisturbed */
    sigaction(SIGCHLD, &sa, NULL);
}

/* Forks a Process: from the fork server where there is one (*via_server set: the child inherits
 * nothing of MPI's, and its end comes as the server's report), else from the rank itself. Its
 * pid, or -1 with the error set. */
static pid_t fork_process(const mproc_task *t, uint32_t task_id, const uint8_t *arg, size_t alen,
                          const char *name, int *via_server) {
    if (mproc__fserver_running()) {
        pid_t pid = 0;
        *via_server = 1;
        if (mproc__fserver_spawn_process(task_id, name, arg, alen, &pid) == 0) return pid;
        if (!mproc__fserver_ended(mproc__mpi.rank)) return -1;
        *via_server = 0; /* the server was killed: the rank forks it */
    }
    pid_t parent = getpid();
    watch_children();
    sigset_t mask;
    mproc__gate_block(&mask);
    pid_t pid = mproc__fork(-1); /* the same fork as the fork backend's: stdio, fds, signals */
    if (pid == 0) child_main(t, arg, alen, name, parent);
    mproc__gate_restore(&mask);
    return pid;
}

/* Opens a Process's gate (spawn.h), once: a second gate signal would reach it unblocked and
 * end it. */
static void release_child(rchild *k) {
    if (k->released) return;
    k->released = 1;
    kill(k->pid, mproc__gate_signal());
}

int mproc__mpi_rank_start_child(uint64_t id, const uint8_t *p, size_t n, int at_once,
                                mproc__mpi_sink sink) {
    char why[160];
    if (n < MPROC__MPI_START_PREFIX || mproc__get_u32(p + 4) > n - MPROC__MPI_START_PREFIX)
        return mproc__error(MPROC_EPROTO, "worker rank %d: malformed PROC_START", mproc__mpi.rank);
    uint32_t task_id = mproc__get_u32(p), nlen = mproc__get_u32(p + 4);
    const uint8_t *arg = p + MPROC__MPI_START_PREFIX + nlen;
    size_t alen = n - MPROC__MPI_START_PREFIX - nlen;
    const mproc_task *t = mproc__registry_get(task_id);
    if (children.nkids == children.cap) {
        size_t cap = children.cap ? children.cap * 2 : 8;
        rchild *k = realloc(children.kids, cap * sizeof *k);
        if (k) {
            children.kids = k;
            children.cap = cap;
        }
    }
    char *name = malloc((size_t)nlen + 1);
    if (!t || !name || children.nkids == children.cap) {
        free(name);
        snprintf(why, sizeof why, "%s on rank %d", !t ? "unknown task id" : "out of memory",
                 mproc__mpi.rank);
        return reply_started(id, !t ? MPROC_ENOTASK : MPROC_ENOMEM, 0, why, sink);
    }
    memcpy(name, p + MPROC__MPI_START_PREFIX, nlen);
    name[nlen] = '\0';
    int via_server = 0;
    pid_t pid = fork_process(t, task_id, arg, alen, name, &via_server);
    free(name);
    if (pid < 0) {
        snprintf(why, sizeof why, "on rank %d: %.120s", mproc__mpi.rank, mproc_last_error());
        return reply_started(id, MPROC_ESYS, 0, why, sink);
    }
    rchild *k = &children.kids[children.nkids++];
    *k = (rchild){pid, id, via_server, 0};
    int rc = reply_started(id, 0, pid, "", sink);
    if (at_once) release_child(k);
    return rc;
}

/* Signal 0 is the master's word that it knows the Process started (processes.c). */
void mproc__mpi_rank_signal_child(uint64_t id, int signo) {
    for (size_t i = 0; i < children.nkids; i++) {
        if (children.kids[i].id != id) continue;
        if (signo == 0) release_child(&children.kids[i]);
        else kill(children.kids[i].pid, signo);
    }
    /* Not found: it ended already and its PROC_EXIT is on the way; nothing to do. */
}

/* At shutdown no Process should be left (the master frees them first); if one is, it goes. */
void mproc__mpi_rank_end_children(void) {
    for (size_t i = 0; i < children.nkids; i++) {
        kill(children.kids[i].pid, SIGKILL);
        while (waitpid(children.kids[i].pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    children.nkids = 0;
}
