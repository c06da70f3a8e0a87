/* executor.c - a worker rank's executor supervisor (executor.h): the thread that writes what
 * could not be written at once, reads replies while the main thread sleeps, works through each
 * executor's inbox in order (frames, RESTARTs, KILLs), and retires and restarts executors; and
 * the executors' start and stop.
 *
 * The supervisor sleeps in poll() on the executors' sockets and an eventfd, so an idle rank
 * costs nothing.
 *
 * Book-keeping the master relies on (routing.c): every TASK/INIT/BATCH frame the rank took is
 * answered exactly once, by a reply, or inside an EXEC_DIED (given, never answered), or by an
 * EXEC_DROPPED (no executor was alive).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend.h"
#include "backends/frame_mailbox.h"
#include "backends/frame_ring.h"
#include "backends/mpi/exec_state.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/world.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/wire.h"
#include "worker/worker.h"

#define RETIRE_GRACE 5.0 /* seconds an executor asked to leave may take */

/* Asks x's live executor to leave and waits (bounded) for its end; then starts the next,
 * unless this is the rank's end. Other executors' replies wait meanwhile (a retirement takes
 * milliseconds unless a task holds the executor). */
static void restart_locked(mproc__executor *x, int last);

static void restart(mproc__executor *x, int last) {
    pthread_mutex_lock(&x->read_mu); /* the main thread keeps off its socket meanwhile */
    restart_locked(x, last);
    pthread_mutex_unlock(&x->read_mu);
}

/* read_mu held. */
static void restart_locked(mproc__executor *x, int last) {
    /* This thread reads x until it has gone, sleeping in poll(): replies must come by socket. */
    mproc__mailbox *mb = atomic_load(&x->watch_mail);
    if (mb) mproc__mail_awake(mb, 0);
    pthread_mutex_lock(&mproc__execs.mu);
    int live = x->fd >= 0;
    if (live) {
        uint8_t *f = malloc(MPROC__WIRE_HDR_SIZE);
        if (f) {
            mproc__hdr_encode(f, MPROC__FRAME_SHUTDOWN, 0, 0, 0);
            x->down_sent++;
            if (x->rings) mproc__mail_count(x->rings->p.down.mail, x->down_sent);
            mproc__exec_push(&x->out_head, &x->out_tail, mproc__exec_item_new(f, MPROC__WIRE_HDR_SIZE));
        }
        x->retiring = 1;
        if (!f) kill(x->pid, SIGKILL);
    }
    pthread_mutex_unlock(&mproc__execs.mu);
    double deadline = mproc__deadline(RETIRE_GRACE);
    int killed = 0;
    while (live) {
        pthread_mutex_lock(&mproc__execs.mu);
        int want_out = x->out_head != NULL;
        if (want_out && mproc__exec_flush_out_locked(x) < 0) want_out = 0;
        want_out = want_out && x->out_head != NULL;
        pthread_mutex_unlock(&mproc__execs.mu);
        int pumped = mproc__exec_pump_replies(x, 0);
        if (pumped < 0) break;
        double left = mproc__remaining(deadline);
        if (left <= 0) {
            if (killed) { /* a SIGKILLed process whose socket never closes: give up on it */
                mproc__exec_ended(x, "it did not end after SIGKILL");
                break;
            }
            kill(x->pid, SIGKILL);
            killed = 1;
            deadline = mproc__deadline(MPROC__EXEC_REAP_GRACE);
            left = MPROC__EXEC_REAP_GRACE;
        }
        struct pollfd p = {x->fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0};
        poll(&p, 1, pumped == MPROC__EXEC_PUMP_MORE ? 0 : (int)(left * 1000) + 1);
    }
    if (last) return;
    pthread_mutex_lock(&mproc__execs.mu);
    int rc = mproc__exec_spawn_next_locked(x);
    uint32_t gen = x->gen;
    long pid = x->pid;
    pthread_mutex_unlock(&mproc__execs.mu);
    if (rc < 0) {
        /* A death with pid 0, of the generation the master expects: this executor's slot can
         * no longer run tasks, and the pool stops counting on it (routing.c). */
        char why[400];
        snprintf(why, sizeof why, "no executor could be started on rank %d (host %s): %.200s", mproc__mpi.rank,
                 mproc__execs.host, mproc_last_error());
        mproc__exec_send_died(x, gen, 0, 255, 0, MPROC__TAKEN_NONE, why);
        return;
    }
    mproc__exec_send_master_hdr(MPROC__FRAME_EXEC_STARTED, gen | ((uint64_t)x->index << 32), (uint32_t)pid);
}

/* Works through x's inbox in order: frames go to the executor, RESTARTs restart it. */
static void work_inbox(mproc__executor *x) {
    for (;;) {
        pthread_mutex_lock(&mproc__execs.mu);
        mproc__exec_item *q = mproc__exec_pop(&x->in_head, &x->in_tail);
        if (!q) {
            pthread_mutex_unlock(&mproc__execs.mu);
            return;
        }
        if (!q->frame && q->len == 2) { /* a KILL queued behind a RESTART */
            if (x->fd >= 0 && x->pid > 0) kill(x->pid, SIGKILL);
            pthread_mutex_unlock(&mproc__execs.mu);
            free(q);
            continue;
        }
        if (!q->frame) {
            int last = q->len == 1;
            x->restarting = 1;
            if (!last) x->ident = q->ident; /* what its next generation's tasks see as their index */
            pthread_mutex_unlock(&mproc__execs.mu);
            free(q);
            restart(x, last);
            pthread_mutex_lock(&mproc__execs.mu);
            x->restarting = 0;
            if (last) x->done = 1;
            pthread_mutex_unlock(&mproc__execs.mu);
            continue;
        }
        if (x->fd >= 0) {
            mproc__exec_give_locked(x, q);
            pthread_mutex_unlock(&mproc__execs.mu);
            continue;
        }
        pthread_mutex_unlock(&mproc__execs.mu);
        uint64_t id = mproc__hdr_id(q->frame);
        mproc__exec_item_free(q);
        mproc__exec_send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
    }
}

void mproc__exec_give_back_heap(void) {
    atomic_store(&mproc__execs.give_back_heap, 1);
    mproc__exec_wake_supervisor();
}

static void *supervise(void *arg) {
    (void)arg;
    struct pollfd *p = calloc((size_t)mproc__execs.k + 1, sizeof *p);
    int *fds = calloc((size_t)mproc__execs.k, sizeof *fds);
    char *pumped_max = calloc((size_t)mproc__execs.k, 1); /* its last pump stopped at PUMP_MAX */
    int more = 0;
    if (!p || !fds || !pumped_max) mproc__mpi_fatal("worker rank %d: out of memory", mproc__mpi.rank);
    for (;;) {
        pthread_mutex_lock(&mproc__execs.mu);
        int done = 0;
        p[0] = (struct pollfd){mproc__execs.efd, POLLIN, 0};
        for (int i = 0; i < mproc__execs.k; i++) {
            mproc__executor *x = &mproc__execs.x[i];
            done += x->done;
            fds[i] = x->fd;
            short want = (short)((atomic_load(&x->relay_reads) ? 0 : POLLIN) | (x->out_head ? POLLOUT : 0));
            p[i + 1] = (struct pollfd){want ? x->fd : -1, want, 0}; /* -1: ignored */
        }
        pthread_mutex_unlock(&mproc__execs.mu);
        if (done == mproc__execs.k) break;
        int r = poll(p, (nfds_t)mproc__execs.k + 1, more ? 0 : -1);
        more = 0;
        if (r < 0 && errno != EINTR) mproc__mpi_fatal("worker rank %d: poll: %s", mproc__mpi.rank, strerror(errno));
        if (r <= 0) continue;
        int woken = p[0].revents != 0;
        if (woken) {
            uint64_t v;
            while (read(mproc__execs.efd, &v, sizeof v) < 0 && errno == EINTR) {
            }
        }
        if (woken && atomic_exchange(&mproc__execs.give_back_heap, 0)) mproc__worker_give_back_heap();
        for (int i = 0; i < mproc__execs.k; i++) {
            mproc__executor *x = &mproc__execs.x[i];
            if (fds[i] < 0 || fds[i] != x->fd) continue; /* restarted meanwhile: look again */
            if (p[i + 1].revents & POLLOUT) {
                pthread_mutex_lock(&mproc__execs.mu);
                mproc__exec_flush_out_locked(x);
                pthread_mutex_unlock(&mproc__execs.mu);
            }
            /* Woken: the main thread may have handed x back with a frame or its end already
             * read into the reader, which no poll() would show. */
            if ((woken || pumped_max[i] || (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) &&
                !atomic_load(&x->relay_reads)) {
                pthread_mutex_lock(&x->read_mu);
                pumped_max[i] = x->fd >= 0 && mproc__exec_pump_replies(x, 0) == MPROC__EXEC_PUMP_MORE;
                more |= pumped_max[i];
                pthread_mutex_unlock(&x->read_mu);
            }
        }
        for (int i = 0; i < mproc__execs.k; i++) work_inbox(&mproc__execs.x[i]);
    }
    free(p);
    free(fds);
    free(pumped_max);
    return NULL;
}

int mproc__exec_settings(void) {
    size_t size;
    int rc = mproc__ring_size_wanted("MPROC_MPI_EXEC_RING", 1, &size);
    if (rc < 0) return rc;
    const char *mail = mproc__env("MPROC_MPI_EXEC_MAILBOX"); /* read by exec_rings.c */
    if (mail && strcmp(mail, "0") != 0 && strcmp(mail, "1") != 0)
        return mproc__error(MPROC_EINVAL, "MPROC_MPI_EXEC_MAILBOX='%s': want 0 (off) or 1 (on, the default)", mail);
    return 0;
}

int mproc__exec_start(int k, int ident_base, mproc__mpi_sink sink) {
    if (k < 1 || k > MPROC__FSERVER_MAX_EXECUTORS)
        return mproc__error(MPROC_EINVAL, "%d executors per rank: want 1..%d", k, MPROC__FSERVER_MAX_EXECUTORS);
    mproc__execs.sink = sink;
    int rc = mproc__exec_settings();
    if (rc < 0) return rc;
    rc = mproc__ring_size_wanted("MPROC_MPI_EXEC_RING", k, &mproc__execs.ring_size);
    if (rc < 0) return rc;
    if (gethostname(mproc__execs.host, sizeof mproc__execs.host) < 0)
        snprintf(mproc__execs.host, sizeof mproc__execs.host, "?");
    mproc__execs.host[sizeof mproc__execs.host - 1] = '\0';
    mproc__execs.x = calloc((size_t)k, sizeof *mproc__execs.x);
    if (!mproc__execs.x) return mproc__error(MPROC_ENOMEM, "no memory for %d executors", k);
    mproc__execs.k = k;
    mproc__execs.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (mproc__execs.efd < 0) return mproc__error(MPROC_ESYS, "eventfd: %s", strerror(errno));
    mproc__fork_track_fd(mproc__execs.efd);
    pthread_mutex_lock(&mproc__execs.mu);
    for (int i = 0; i < k && rc == 0; i++) {
        mproc__execs.x[i].index = i;
        mproc__execs.x[i].ident = ident_base + i; /* until a pool numbers it (EXEC_RESTART) */
        mproc__execs.x[i].fd = -1;
        pthread_mutex_init(&mproc__execs.x[i].read_mu, NULL);
        rc = mproc__exec_spawn_next_locked(&mproc__execs.x[i]);
    }
    pthread_mutex_unlock(&mproc__execs.mu);
    if (rc < 0) return rc;
    if (pthread_create(&mproc__execs.thread, NULL, supervise, NULL) != 0)
        return mproc__error(MPROC_ESYS, "cannot start the executor supervisor thread");
    mproc__execs.started = 1;
    return 0;
}

void mproc__exec_stop(void) {
    if (!mproc__execs.started) return;
    mproc__exec_relay_hand_all_back(); /* the main thread watches no more */
    /* A last restart without a successor, after whatever is queued: each executor leaves on
     * SHUTDOWN (killed if a task keeps it past the grace), then the supervisor does. */
    pthread_mutex_lock(&mproc__execs.mu);
    for (int i = 0; i < mproc__execs.k; i++) {
        mproc__executor *x = &mproc__execs.x[i];
        mproc__exec_push(&x->in_head, &x->in_tail, mproc__exec_item_new(NULL, 1));
    }
    pthread_mutex_unlock(&mproc__execs.mu);
    mproc__exec_wake_supervisor();
    pthread_join(mproc__execs.thread, NULL);
    mproc__execs.started = 0;
    mproc__fork_untrack_fd(mproc__execs.efd);
    close(mproc__execs.efd);
    mproc__execs.efd = -1;
}
