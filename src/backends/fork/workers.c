/* workers.c - the fork backend's worker processes: forking one (with its frame rings and
 * socket), closing the master's end, reaping one that died and describing how, retiring one.
 * Called by receive.c (a death found while reading) and backend.c (start, restart, stop).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "backends/fork/group.h"
#include "backends/frame_mailbox.h"
#include "backends/socket_worker.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/wire.h"

static unsigned long worker_counter; /* PoolWorker-<n> numbering, as Python's */

/* Fresh rings for worker i's next process (none if they cannot be made: the socket carries
 * everything then); the memfd to hand it, or -1. */
static int new_rings(mproc__group *g, fworker *w) {
    mproc__ring_pair_unmap(&w->rings);
    w->up_next = 0;
    w->mail = 0;
    w->down_sent = w->up_taken = 0;
    if (g->ring_size == 0) return -1;
    int memfd = mproc__fork_memfd("mproc-frame-rings");
    if (memfd < 0) return -1;
    if (mproc__ring_pair_create(memfd, g->ring_size, &w->rings) < 0) {
        mproc__fork_untrack_fd(memfd);
        close(memfd);
        return -1;
    }
    /* Workers forked later must not see this worker's frames. */
    madvise(w->rings.base, w->rings.map_len, MADV_DONTFORK);
    mproc__mail_enable(w->rings.down.mail);
    mproc__mail_enable(w->rings.up.mail);
    w->mail = 1;
    return memfd;
}

int mproc__fork_worker_spawn(mproc__group *g, int i) {
    int sv[2];
    if (mproc__fork_socketpair(sv) < 0) return MPROC_ESYS;
    int ring_fd = new_rings(g, &g->w[i]);
    worker_counter++;
    mproc__taken_slot_reset(&g->taken[i]);
    pid_t master = getpid();
    pid_t pid = mproc__fork_keeping(sv[1], ring_fd);
    if (pid == 0) {
        close(sv[0]);
        char name[32];
        snprintf(name, sizeof name, "PoolWorker-%lu", worker_counter);
        mproc__socket_worker_main(sv[1], &g->taken[i], name, i, master, ring_fd);
    }
    if (ring_fd >= 0) {
        mproc__fork_untrack_fd(ring_fd);
        close(ring_fd);
    }
    mproc__fork_untrack_fd(sv[1]);
    close(sv[1]);
    if (pid < 0) {
        mproc__fork_untrack_fd(sv[0]);
        close(sv[0]);
        return MPROC_ESYS;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    fworker *w = &g->w[i];
    mproc__reader_reset(&w->in);
    w->pid = pid;
    w->fd = sv[0];
    g->spawned++;
    return 0;
}

/* Closes the master's end of w (socket, rings, a held frame); its frames are the core's to
 * settle. */
static void close_worker_fd(mproc__group *g, fworker *w) {
    if (w->fd >= 0) {
        mproc__fork_untrack_fd(w->fd);
        close(w->fd);
        w->fd = -1;
    }
    mproc__reader_reset(&w->in);
    mproc__ring_pair_unmap(&w->rings);
    w->mail = 0;
    if (w->held) {
        free(w->held);
        w->held = NULL;
        g->nheld--;
    }
    w->nhomes = 0; /* its frames are the core's to settle (DIED) */
}

/* Reaps a worker whose socket closed: give it a moment to exit on its own (so its real status
 * is reported), then kill it. */
static void reap_worker(fworker *w, const mproc__taken_slot *slot, mproc__event *ev, const char *cause) {
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 200 && r == 0; i++) {
        r = mproc__waitpid(w->pid, &status, WNOHANG);
        if (r == 0) usleep(i < 20 ? 100 : 1000);
    }
    if (r == 0) {
        kill(w->pid, SIGKILL);
        r = mproc__waitpid(w->pid, &status, 0);
    }
    char how[96] = "was already reaped";
    if (r == w->pid) {
        mproc__describe_worker_exit(status, (int)atomic_load(&slot->channel_lost), how, sizeof how);
        ev->exitcode = mproc__exitcode(status);
    }
    if (cause) snprintf(ev->why, sizeof ev->why, "%.200s; %s", cause, how);
    else snprintf(ev->why, sizeof ev->why, "%s", how);
    w->pid = 0;
}

/* Nothing more is owed by worker w (it died or left). */
static void forget_owed(mproc__group *g, fworker *w) {
    g->owed -= w->owed;
    w->owed = 0;
}

void mproc__fork_worker_died(mproc__group *g, int i, mproc__event *ev, const char *cause) {
    fworker *w = &g->w[i];
    forget_owed(g, w);
    memset(ev, 0, sizeof *ev);
    ev->kind = MPROC__EV_DIED;
    ev->worker = i;
    ev->pid = (long)w->pid;
    ev->taken_known = 1;
    ev->taken_id = atomic_load_explicit(&g->taken[i].id, memory_order_acquire);
    if (cause) kill(w->pid, SIGKILL); /* garbage on the wire: the worker is not to be trusted */
    close_worker_fd(g, w);
    reap_worker(w, &g->taken[i], ev, cause);
}

/* Asks a live worker to leave (SHUTDOWN), waits for it briefly, kills it if it lingers. */
void mproc__fork_worker_retire(mproc__group *g, int i, int graceful) {
    fworker *w = &g->w[i];
    forget_owed(g, w);
    if (w->pid <= 0) {
        close_worker_fd(g, w);
        return;
    }
    if (graceful && w->fd >= 0) {
        uint8_t f[MPROC__WIRE_HDR_SIZE];
        mproc__hdr_encode(f, MPROC__FRAME_SHUTDOWN, 0, 0, 0);
        struct iovec iov = {f, sizeof f};
        if (w->mail) mproc__mail_count(w->rings.down.mail, ++w->down_sent);
        mproc__sock_write_frame(w->fd, &iov, 1, NULL, NULL);
    } else {
        kill(w->pid, SIGKILL);
    }
    close_worker_fd(g, w);
    int status;
    if (mproc__wait_child(w->pid, graceful ? 5.0 : -1.0, &status) == MPROC_ETIMEDOUT) {
        kill(w->pid, SIGKILL);
        mproc__waitpid(w->pid, &status, 0);
    }
    w->pid = 0;
}

