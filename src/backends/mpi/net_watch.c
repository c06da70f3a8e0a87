/* net_watch.c - wakes this process's sleeping waits when a TCP segment arrives, as the doorbells
 * (wait.c) do for ranks on the same node.
 *
 * Across nodes Open MPI moves our frames over TCP sockets that it opens itself; a wait that
 * sleeps between polls would otherwise notice a frame only at its next poll, up to a backoff
 * step (and, with ob1, a probe matches before it progresses TCP, so one step more) later: a
 * blocking apply across nodes took ~1.5 ms against ~30 us for a plain MPI ping-pong. A thread
 * of ours finds the process's TCP sockets (/proc/self/fd, looked at again from time to time
 * as Open MPI connects to more peers), waits on them with edge-triggered epoll, and rings our
 * own doorbell on every arrival. It only wakes: the data is still read by MPI, and a process
 * whose sockets it cannot find just polls as before. It makes no MPI call.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/mpi/net_watch.h"
#include "backends/mpi/wait.h"
#include "common/common.h"

static struct {
    int running;
    atomic_int stopping;
    int epfd, stopfd;
    pthread_t thread;
} watch = {.epfd = -1, .stopfd = -1};

/* Adds every TCP socket of this process to the epoll set (EEXIST for those already there). */
static void add_sockets(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == self || fd == watch.epfd || fd == watch.stopfd) continue;
        int domain = 0, type = 0;
        socklen_t len = sizeof domain;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) continue;
        len = sizeof type;
        if ((domain != AF_INET && domain != AF_INET6) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
            type != SOCK_STREAM)
            continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
        epoll_ctl(watch.epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    closedir(d);
}

/* Waits on the sockets only while a thread of ours sleeps: on a busy process TCP traffic then
 * costs no wake-up of this thread, and what arrived meanwhile is reported (edge-triggered
 * readiness stays queued) the moment a thread goes to sleep. */
static void *watch_main(void *arg) {
    (void)arg;
    double started = mproc__now(), scanned = -1;
    for (;;) {
        double now = mproc__now();
        /* Connections to peers are made while the job starts; look often then, rarely later. */
        double every = now - started < 5.0 ? 0.1 : 1.0;
        if (now - scanned >= every) {
            add_sockets();
            scanned = now;
        }
        mproc__mpi_park_until_sleeper((int)(every * 1000));
        if (atomic_load(&watch.stopping)) return NULL;
        struct epoll_event evs[16];
        int n;
        do n = epoll_wait(watch.epfd, evs, 16, (int)(every * 1000));
        while (n < 0 && errno == EINTR);
        if (atomic_load(&watch.stopping)) return NULL;
        if (n > 0) mproc__mpi_ring_self();
    }
}

void mproc__mpi_net_watch_start(void) {
    if (watch.running) return;
    watch.epfd = epoll_create1(EPOLL_CLOEXEC);
    watch.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (watch.epfd < 0 || watch.stopfd < 0) goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = watch.stopfd};
    if (epoll_ctl(watch.epfd, EPOLL_CTL_ADD, watch.stopfd, &ev) < 0) goto fail;
    if (pthread_create(&watch.thread, NULL, watch_main, NULL) != 0) goto fail;
    watch.running = 1;
    /* A round trip over TCP is tens of microseconds plus two wake-ups on each side: worth
     * yield-polling for while replies keep coming within a quarter millisecond. */
    mproc__mpi_stream_gap(250e-6);
    return;
fail: /* no watcher: waits poll as before */
    if (watch.epfd >= 0) close(watch.epfd);
    if (watch.stopfd >= 0) close(watch.stopfd);
    watch.epfd = watch.stopfd = -1;
}

void mproc__mpi_net_watch_stop(void) {
    if (!watch.running) return;
    atomic_store(&watch.stopping, 1);
    uint64_t one = 1;
    while (write(watch.stopfd, &one, sizeof one) < 0 && errno == EINTR) {}
    mproc__mpi_unpark_watcher();
    pthread_join(watch.thread, NULL);
    close(watch.epfd);
    close(watch.stopfd);
    watch.epfd = watch.stopfd = -1;
    watch.running = 0;
}
