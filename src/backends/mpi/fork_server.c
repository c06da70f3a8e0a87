/* fork_server.c - the fork server of a worker rank (fork_server.h): a small single-threaded
 * process, forked before MPI_Init, that forks executors on request and reports their ends.
 *
 * Rank and server talk over a SOCK_SEQPACKET pair, one fixed-size message each: SPAWN (index,
 * name) -> SPAWNED (pid, or an errno) with the socket end attached; PROCESS (task id, with a
 * memfd attached that holds the name and the argument) -> SPAWNED (pid); EXITED (pid, wait
 * status) whenever a child is reaped. The rank's supervisor thread and its main thread (for
 * Processes) both talk to it, under one lock; an exit report one of them reads for the other
 * waits in a stash. The server learns of exits through a signalfd, so it sleeps in
 * poll() until there is something to do. It dies with the rank (PR_SET_PDEATHSIG), and each
 * executor with the server.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/mpi/fork_server.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "worker/worker.h"

enum { OP_SPAWN = 1, OP_SPAWNED = 2, OP_EXITED = 3, OP_PROCESS = 4 };

#define SPAWN_TIMEOUT_S 10.0 /* a fork takes milliseconds; longer means the server is stuck */

typedef struct fs_msg {
    uint32_t op;
    int32_t index;  /* SPAWN: its taken slot; PROCESS: the task id */
    int32_t ident;  /* SPAWN: its worker index (mproc_current_index) */
    int32_t pid;    /* SPAWNED (0: failed), EXITED */
    int32_t status; /* SPAWNED: errno on failure; EXITED: wait status */
    char name[48];  /* SPAWN */
} fs_msg;

/* Exit reports read while waiting for a SPAWNED answer, kept for take_exit. */
typedef struct pending_exit {
    pid_t pid;
    int status;
} pending_exit;

static struct {
    pthread_mutex_t mu;       /* the socket and the stash: two threads of the rank talk to it */
    int fd;                   /* the rank's end; -1 when there is no server */
    pid_t pid;
    mproc__taken_slot *slots; /* MPROC__FSERVER_MAX_EXECUTORS, MAP_SHARED */
    pending_exit pending[64];
    int npending;
} fs = {PTHREAD_MUTEX_INITIALIZER, -1, 0, NULL, {{0, 0}}, 0};

mproc__taken_slot *mproc__fserver_slot(int i) {
    if (!fs.slots) {
        void *m = mmap(NULL, MPROC__FSERVER_MAX_EXECUTORS * sizeof(mproc__taken_slot), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        fs.slots = m;
    }
    return i >= 0 && i < MPROC__FSERVER_MAX_EXECUTORS ? &fs.slots[i] : NULL;
}

void mproc__fserver_size_socket(const int sv[2]) {
    /* A map's chunks and their results (80 KB and more) and the frames in flight behind them fit
     * whole, so neither side's write stops halfway and waits for the other to be scheduled. The
     * system's cap (net.core.wmem_max) may grant less; that only costs speed. */
    int sz = 1 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
}

/* ---- the server process ---------------------------------------------------------------- */

static void send_msg(int fd, const fs_msg *m, int pass_fd) {
    struct iovec iov = {(void *)m, sizeof *m};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    while (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

static void serve_spawn(int ctl, int sfd, const fs_msg *req, int ring_fd) {
    fs_msg ans = {OP_SPAWNED, req->index, 0, 0, 0, ""};
    int sv[2];
    mproc__taken_slot *slot = mproc__fserver_slot(req->index);
    if (!slot || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        ans.status = slot ? errno : EINVAL;
        send_msg(ctl, &ans, -1);
        return;
    }
    mproc__taken_slot_reset(slot);
    mproc__fserver_size_socket(sv);
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl);
        close(sfd);
        close(sv[0]);
        char name[sizeof req->name];
        memcpy(name, req->name, sizeof name);
        name[sizeof name - 1] = '\0';
        mproc__socket_worker_main(sv[1], slot, name, req->ident, me, ring_fd);
    }
    ans.status = pid < 0 ? errno : 0;
    ans.pid = pid < 0 ? 0 : (int32_t)pid;
    close(sv[1]);
    send_msg(ctl, &ans, pid < 0 ? -1 : sv[0]);
    close(sv[0]);
}

/* The body of a Process forked by the server: never returns. */
_Noreturn static void process_child(const fs_msg *req, const uint8_t *blob, size_t len, pid_t server) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server) _exit(1);
    mproc__gate_wait(); /* the rank's word that the master knows we started (spawn.h) */
    mproc__fork_child_signals();
    signal(SIGINT, SIG_DFL); /* the server ignores it; a Process is the program's, as on fork */
    const mproc_task *t = mproc__registry_get((uint32_t)req->index);
    size_t nl = strnlen((const char *)blob, len);
    if (!t || nl == len) _exit(1);
    const char *name = (const char *)blob;
    mproc__set_identity(name, -1);
    int code = mproc__process_main(t, blob + nl + 1, len - nl - 1, name);
    fflush(NULL);
    _exit(code & 0xff);
}

/* PROCESS: the memfd holds "name\0" and the argument bytes. */
static void serve_process(int ctl, int sfd, const fs_msg *req, int memfd) {
    fs_msg ans = {OP_SPAWNED, req->index, 0, 0, 0, ""};
    struct stat st;
    uint8_t *blob = NULL;
    size_t len = 0;
    if (memfd >= 0 && fstat(memfd, &st) == 0 && st.st_size > 0) {
        len = (size_t)st.st_size;
        blob = malloc(len);
        if (blob && pread(memfd, blob, len, 0) != (ssize_t)len) {
            free(blob);
            blob = NULL;
        }
    }
    if (memfd >= 0) close(memfd);
    if (!blob) {
        ans.status = EINVAL;
        send_msg(ctl, &ans, -1);
        return;
    }
    pid_t me = getpid();
    sigset_t mask;
    mproc__gate_block(&mask);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl);
        close(sfd);
        process_child(req, blob, len, me);
    }
    mproc__gate_restore(&mask);
    free(blob);
    ans.status = pid < 0 ? errno : 0;
    ans.pid = pid < 0 ? 0 : (int32_t)pid;
    send_msg(ctl, &ans, -1);
}

/* recvmsg of one message into m, with the descriptor it carries in *passed (or -1): what
 * recvmsg returned (errno set on < 0). Both ends use it. */
static ssize_t recv_with_fd(int fd, fs_msg *m, int *passed, int flags) {
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;
    struct iovec iov = {m, sizeof *m};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = sizeof cbuf.buf;
    *passed = -1;
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(passed, CMSG_DATA(c), sizeof(int));
    return n;
}

/* One request, with the descriptor it carries (or -1); 1, 0 on EOF, -1 on EINTR. */
static int server_recv(int ctl, fs_msg *req, int *passed) {
    ssize_t n = recv_with_fd(ctl, req, passed, 0);
    if (n < 0 && errno == EINTR) return -1;
    if (n <= 0) return 0;
    if (n != (ssize_t)sizeof *req) {
        if (*passed >= 0) close(*passed);
        *passed = -1;
        req->op = 0;
    }
    return 1;
}

_Noreturn static void server_main(int ctl, pid_t rank) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != rank) _exit(0);
    mproc__fork_child_stdio();
    signal(SIGINT, SIG_IGN); /* Ctrl-C is for mpirun and the ranks to act on */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
    if (sfd < 0) _exit(1);
    for (;;) {
        struct pollfd p[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) < 0 && errno == EINTR) {
            }
            int st;
            pid_t r;
            while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
                fs_msg m = {OP_EXITED, 0, 0, (int32_t)r, st, ""};
                send_msg(ctl, &m, -1);
            }
        }
        if (p[0].revents) {
            fs_msg req;
            int passed = -1;
            int n = server_recv(ctl, &req, &passed);
            if (n < 0) continue;
            if (n == 0) _exit(0); /* the rank is done with us: executors go with us */
            /* Children unblock SIGCHLD themselves (mproc__fork_child_signals). */
            if (req.op == OP_SPAWN) serve_spawn(ctl, sfd, &req, passed);
            else if (req.op == OP_PROCESS) serve_process(ctl, sfd, &req, passed);
            if (req.op != OP_PROCESS && passed >= 0) close(passed);
        }
    }
}

/* ---- the rank's side ----------------------------------------------------------------------- */

int mproc__fserver_start(void) {
    if (fs.fd >= 0) return 0;
    if (!mproc__fserver_slot(0)) return mproc__error(MPROC_ESYS, "fork server: mmap: %s", strerror(errno));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return mproc__error(MPROC_ESYS, "fork server: socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t rank = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        server_main(sv[1], rank);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return mproc__error(MPROC_ESYS, "fork server: fork: %s", strerror(errno));
    }
    fs.fd = sv[0];
    fs.pid = pid;
    mproc__fork_track_fd(fs.fd); /* the rank's Process children must not hold it */
    return 0;
}

int mproc__fserver_running(void) { return fs.fd >= 0; }
int mproc__fserver_fd(void) { return fs.fd; }

/* Keeps an exit report for later (the oldest goes when the stash is full). */
static void stash_exit(pid_t pid, int status) {
    if (fs.npending == (int)(sizeof fs.pending / sizeof *fs.pending))
        memmove(fs.pending, fs.pending + 1, (size_t)(--fs.npending) * sizeof *fs.pending);
    fs.pending[fs.npending++] = (pending_exit){pid, status};
}

/* Receives one message (and a descriptor passed with it); 1, 0 when none is there (nonblock),
 * < 0 when the server is gone. */
static int recv_msg(fs_msg *m, int *passed, int nonblock) {
    ssize_t n;
    do n = recv_with_fd(fs.fd, m, passed, nonblock ? MSG_DONTWAIT : 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n != (ssize_t)sizeof *m) {
        if (*passed >= 0) close(*passed);
        *passed = -1;
        return mproc__error(MPROC_ESYS, "the fork server is gone");
    }
    return 1;
}

/* Lock held. Waits (bounded) for the SPAWNED answer to a request just sent, stashing exit
 * reports read meanwhile: 0 with *pid (and *passed, the descriptor it carried, or -1). */
static int await_spawned(pid_t *pid, int *passed) {
    double deadline = mproc__deadline(SPAWN_TIMEOUT_S);
    for (;;) {
        fs_msg m;
        /* Bounded: a server that is stopped or stuck must not hang the rank. */
        struct pollfd p = {fs.fd, POLLIN, 0};
        double left = mproc__remaining(deadline);
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) == 0)
            return mproc__error(MPROC_ETIMEDOUT, "the fork server did not answer within %.0f s", SPAWN_TIMEOUT_S);
        int rc = recv_msg(&m, passed, 1);
        if (rc == 0) continue;
        if (rc < 0) return rc;
        if (m.op == OP_EXITED) {
            stash_exit(m.pid, m.status);
            continue;
        }
        if (m.op != OP_SPAWNED) {
            if (*passed >= 0) close(*passed);
            continue;
        }
        if (m.pid <= 0) {
            if (*passed >= 0) close(*passed);
            *passed = -1;
            return mproc__error(MPROC_ESYS, "the fork server could not fork: %s", strerror(m.status));
        }
        *pid = m.pid;
        return 0;
    }
}

int mproc__fserver_spawn(int slot, int ident, const char *name, int ring_fd, int *fd, pid_t *pid) {
    *fd = -1;
    *pid = 0;
    pthread_mutex_lock(&fs.mu);
    if (fs.fd < 0) {
        pthread_mutex_unlock(&fs.mu);
        return mproc__error(MPROC_ESTATE, "no fork server");
    }
    fs_msg req = {OP_SPAWN, slot, ident, 0, 0, ""};
    snprintf(req.name, sizeof req.name, "%s", name);
    send_msg(fs.fd, &req, ring_fd);
    int passed = -1;
    int rc = await_spawned(pid, &passed);
    pthread_mutex_unlock(&fs.mu);
    if (rc < 0) return rc;
    if (passed < 0) return mproc__error(MPROC_ESYS, "the fork server sent no socket for the executor");
    mproc__fork_track_fd(passed);
    *fd = passed;
    return 0;
}

int mproc__fserver_spawn_process(uint32_t task_id, const char *name, const void *arg, size_t len, pid_t *pid) {
    *pid = 0;
    size_t nl = strlen(name);
    int memfd = memfd_create("mproc-process-arg", MFD_CLOEXEC);
    if (memfd < 0) return mproc__error(MPROC_ESYS, "memfd_create: %s", strerror(errno));
    if (write(memfd, name, nl + 1) != (ssize_t)(nl + 1) || (len && write(memfd, arg, len) != (ssize_t)len)) {
        int err = errno;
        close(memfd);
        return mproc__error(MPROC_ESYS, "cannot hand a %zu-byte argument to the fork server: %s", len, strerror(err));
    }
    pthread_mutex_lock(&fs.mu);
    int rc;
    if (fs.fd < 0) {
        rc = mproc__error(MPROC_ESTATE, "no fork server");
    } else {
        fs_msg req = {OP_PROCESS, (int32_t)task_id, 0, 0, 0, ""};
        send_msg(fs.fd, &req, memfd);
        int passed = -1;
        rc = await_spawned(pid, &passed);
        if (passed >= 0) close(passed);
    }
    pthread_mutex_unlock(&fs.mu);
    close(memfd);
    return rc;
}

int mproc__fserver_take_exit(pid_t pid, int *status) {
    pthread_mutex_lock(&fs.mu);
    int rc = 0;
    for (int i = 0; i < fs.npending; i++)
        if (fs.pending[i].pid == pid) {
            *status = fs.pending[i].status;
            memmove(fs.pending + i, fs.pending + i + 1, (size_t)(fs.npending - i - 1) * sizeof *fs.pending);
            fs.npending--;
            pthread_mutex_unlock(&fs.mu);
            return 1;
        }
    if (fs.fd < 0) rc = MPROC_ESTATE;
    while (rc == 0) {
        fs_msg m;
        int passed = -1;
        rc = recv_msg(&m, &passed, 1);
        if (rc <= 0) break;
        rc = 0;
        if (passed >= 0) close(passed);
        if (m.op != OP_EXITED) continue;
        if (m.pid == pid) {
            *status = m.status;
            rc = 1;
            break;
        }
        stash_exit(m.pid, m.status); /* another child's: its reaper asks later */
    }
    pthread_mutex_unlock(&fs.mu);
    return rc;
}

int mproc__fserver_ended(int rank) {
    pthread_mutex_lock(&fs.mu);
    int st, ended = fs.fd >= 0 && fs.pid > 0 && mproc__waitpid(fs.pid, &st, WNOHANG) == fs.pid;
    int fd = fs.fd;
    pid_t pid = fs.pid;
    if (ended) {
        fs.fd = -1;
        fs.pid = 0;
    }
    pthread_mutex_unlock(&fs.mu);
    if (ended) {
        mproc__fork_untrack_fd(fd);
        close(fd);
        /* Said once (the server is not asked again), instead of this rank's workers being lost
         * one by one in silence. */
        char host[64] = "?", how[96];
        if (gethostname(host, sizeof host) < 0) snprintf(host, sizeof host, "?");
        host[sizeof host - 1] = '\0';
        mproc__describe_exit(st, how, sizeof how);
        fprintf(stderr, "mproc: warning: worker rank %d (host %s): its fork server (pid %ld) %s; its executors and "
                        "Processes are forked from the rank from now on\n", rank, host, (long)pid, how);
        fflush(stderr);
    }
    return ended;
}

void mproc__fserver_stop(void) {
    pthread_mutex_lock(&fs.mu);
    int fd = fs.fd;
    fs.fd = -1;
    pthread_mutex_unlock(&fs.mu);
    if (fd < 0) return;
    mproc__fork_untrack_fd(fd);
    close(fd); /* EOF: the server leaves, its children die with it */
    int st;
    mproc__waitpid(fs.pid, &st, 0);
    fs.pid = 0;
}
