/* spawn.c - forking children safely from a threaded master, for both backends (spawn.h).
 *
 * Every master-side socket end is tracked; a new child closes them all, so that when a worker
 * dies its socket reads EOF in the master at once instead of being held open by a sibling.
 * The table is guarded by a lock that fork() holds, so a child never sees it half-written.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/spawn.h"
#include "common/common.h"

static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int *tracked;
static size_t n_tracked, cap_tracked;

static void track_locked(int fd) {
    if (n_tracked == cap_tracked) {
        size_t cap = cap_tracked ? cap_tracked * 2 : 16;
        int *p = realloc(tracked, cap * sizeof *p);
        if (p) {
            tracked = p;
            cap_tracked = cap;
        }
    }
    if (n_tracked < cap_tracked) tracked[n_tracked++] = fd;
}

void mproc__fork_track_fd(int fd) {
    pthread_mutex_lock(&fd_lock);
    track_locked(fd);
    pthread_mutex_unlock(&fd_lock);
}

void mproc__fork_untrack_fd(int fd) {
    pthread_mutex_lock(&fd_lock);
    for (size_t i = 0; i < n_tracked; i++) {
        if (tracked[i] == fd) {
            tracked[i] = tracked[--n_tracked];
            break;
        }
    }
    pthread_mutex_unlock(&fd_lock);
}

const int mproc__crash_signals[5] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void mproc__fork_child_signals(void) {
    for (size_t k = 0; k < sizeof mproc__crash_signals / sizeof *mproc__crash_signals; k++)
        signal(mproc__crash_signals[k], SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
}

int mproc__gate_signal(void) { return SIGRTMAX - 3; }

void mproc__gate_block(sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, mproc__gate_signal());
    pthread_sigmask(SIG_BLOCK, &set, old);
}

void mproc__gate_restore(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

void mproc__gate_wait(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, mproc__gate_signal());
    int sig;
    while (sigwait(&set, &sig) != 0) {
    }
}

int mproc__fork_socketpair(int sv[2]) {
    pthread_mutex_lock(&fd_lock);
    int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    int err = errno;
    if (rc == 0) {
        track_locked(sv[0]);
        track_locked(sv[1]);
    }
    pthread_mutex_unlock(&fd_lock);
    if (rc < 0) return mproc__error(MPROC_ESYS, "socketpair: %s", strerror(err));
    return 0;
}

void mproc__fork_child_stdio(void) {
    __fpurge(stdout);
    __fpurge(stderr);
}

int mproc__fork_memfd(const char *name) {
    pthread_mutex_lock(&fd_lock);
    int fd = memfd_create(name, MFD_CLOEXEC);
    int err = errno;
    if (fd >= 0) track_locked(fd);
    pthread_mutex_unlock(&fd_lock);
    if (fd < 0) return mproc__error(MPROC_ESYS, "memfd_create: %s", strerror(err));
    return fd;
}

pid_t mproc__fork(int keep_fd) { return mproc__fork_keeping(keep_fd, -1); }

pid_t mproc__fork_keeping(int keep_a, int keep_b) {
    fflush(NULL); /* so output printed so far appears before the child's, in order */
    pthread_mutex_lock(&fd_lock);
    pid_t pid = fork();
    if (pid == 0) {
        mproc__fork_child_stdio(); /* first: nothing may flush the parent's bytes */
        for (size_t i = 0; i < n_tracked; i++)
            if (tracked[i] != keep_a && tracked[i] != keep_b) close(tracked[i]);
        /* The lock was held by this thread at fork; the child owns its copy. */
        pthread_mutex_unlock(&fd_lock);
        return 0;
    }
    int err = errno;
    pthread_mutex_unlock(&fd_lock);
    if (pid < 0) mproc__error(MPROC_ESYS, "fork failed: %s", strerror(err));
    return pid;
}

int mproc__exitcode(int status) {
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 0;
}

void mproc__describe_exit(int status, char *buf, size_t len) {
    if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, len, "ended (wait status 0x%x)", status);
}

void mproc__describe_worker_exit(int status, int channel_lost, char *buf, size_t len) {
    if (channel_lost && WIFEXITED(status))
        snprintf(buf, len, "lost its channel (a task closed file descriptors it did not open?)");
    else
        mproc__describe_exit(status, buf, len);
}

pid_t mproc__waitpid(pid_t pid, int *status, int flags) {
    pid_t r;
    do r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

/* pidfd lets a timed wait sleep in poll() until the child ends; older kernels get a backoff. */
static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static void nap(double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

int mproc__wait_child(pid_t pid, double timeout, int *status) {
    double deadline = mproc__deadline(timeout), step = 50e-6;
    if (deadline < 0) { /* for ever (a negative or an endless timeout) */
        if (mproc__waitpid(pid, status, 0) == pid) return 0;
        return mproc__error(MPROC_ESYS, "waitpid(%ld): %s", (long)pid, strerror(errno));
    }
    int pfd = open_pidfd(pid);
    for (;;) {
        pid_t r = mproc__waitpid(pid, status, WNOHANG);
        if (r == pid) break;
        if (r < 0) {
            if (pfd >= 0) close(pfd);
            return mproc__error(MPROC_ESYS, "waitpid(%ld): %s", (long)pid, strerror(errno));
        }
        double left = mproc__remaining(deadline);
        if (left <= 0) {
            if (pfd >= 0) close(pfd);
            return MPROC_ETIMEDOUT;
        }
        if (pfd >= 0) {
            struct pollfd p = {pfd, POLLIN, 0};
            poll(&p, 1, (int)(left * 1000) + 1);
        } else {
            nap(step < left ? step : left);
            step = step * 2 < 0.01 ? step * 2 : 0.01;
        }
    }
    if (pfd >= 0) close(pfd);
    return 0;
}
