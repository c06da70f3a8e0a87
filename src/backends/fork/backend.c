/* backend.c - the fork backend's ops: pool workers are forked children, each talking to the
 * master over its own socketpair and, where they can be made (MPROC_FORK_RING=0: not), a pair of
 * shared-memory frame rings (frame_ring.h) with their mailboxes (frame_mailbox.h). This file starts and stops a group and sends frames;
 * workers.c owns the processes, receive.c the frames coming back and the wait.
 *
 * The master never blocks on a write while a worker blocks writing back (the classic pipe
 * deadlock): a send that would block keeps reading whatever arrives and queues it. A worker
 * that closes its socket, dies, or sends a frame that does not decode is reported once as a
 * DIED event with its exit status described; the core decides what to do with its tasks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <signal.h>

#include "backends/fork/group.h"
#include "backends/fork/processes.h"
#include "backends/frame_mailbox.h"
#include "backends/socket_worker.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/wire.h"

/* The kinds of frame a worker answers. */
static int is_request(uint16_t k) { return k == MPROC__FRAME_TASK || k == MPROC__FRAME_BATCH || k == MPROC__FRAME_INIT; }

static int fork_init(int *argc, char ***argv) { return 0; }
static int fork_finalize(void) { return 0; }
static int fork_max_workers(void) { return 4096; }

static void fork_group_stop(mproc__group *g, int graceful);

static int fork_group_start(int n, int per_rank, mproc__group **out) {
    (void)per_rank; /* one host, no ranks */
    *out = NULL;
    mproc__group *g = calloc(1, sizeof *g);
    if (!g) return mproc__error(MPROC_ENOMEM, "no memory for a worker group");
    g->n = n;
    g->spun = -1;
    g->w = calloc((size_t)n, sizeof *g->w);
    g->pfds = calloc((size_t)n + 1, sizeof *g->pfds);
    g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    void *taken = mmap(NULL, (size_t)n * sizeof(mproc__taken_slot), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    g->taken = taken == MAP_FAILED ? NULL : taken;
    if (!g->w || !g->pfds || g->wake_fd < 0 || !g->taken) {
        int rc = mproc__error(MPROC_ESYS, "cannot set up %d workers: %s", n, strerror(errno));
        free(g->w), free(g->pfds);
        if (g->wake_fd >= 0) close(g->wake_fd);
        if (g->taken) munmap(g->taken, (size_t)n * sizeof(mproc__taken_slot));
        free(g);
        return rc;
    }
    mproc__fork_track_fd(g->wake_fd);
    for (int i = 0; i < n; i++) g->w[i].fd = -1;
    int rc = mproc__ring_size_wanted("MPROC_FORK_RING", n, &g->ring_size);
    if (rc < 0) {
        fork_group_stop(g, 0);
        return rc;
    }
    for (int i = 0; i < n && rc == 0; i++) rc = mproc__fork_worker_spawn(g, i);
    if (rc < 0) {
        fork_group_stop(g, 0);
        return rc;
    }
    *out = g;
    return 0;
}

/* Notes where frame id's reply data may go (the send hint), for a reply that comes through the
 * ring (hint->kept then set). 0, or -1 without memory (the reply then takes the usual path). */
static int note_home(fworker *w, uint64_t id, mproc__send_hint *hint) {
    if (!hint || !hint->reply_to || !w->rings.base) return 0;
    if (w->nhomes == w->cap_homes) {
        int cap = w->cap_homes ? 2 * w->cap_homes : 8;
        reply_home *h = realloc(w->homes, (size_t)cap * sizeof *h);
        if (!h) return -1;
        w->homes = h;
        w->cap_homes = cap;
    }
    w->homes[w->nhomes++] = (reply_home){id, hint->reply_to, hint->reply_len};
    hint->kept = 1;
    return 0;
}

/* A cancelled frame's reply has no home any more (a fork send copies its input: nothing else to
 * give up). Its reply, when it comes, takes the usual path. */
static int fork_withdraw(mproc__group *g, int worker, uint64_t id, uint64_t kept) {
    (void)kept;
    if (worker < 0 || worker >= g->n) return 1;
    fworker *w = &g->w[worker];
    for (int k = 0; k < w->nhomes; k++)
        if (w->homes[k].id == id) w->homes[k--] = w->homes[--w->nhomes];
    return 1;
}

static int fork_skip(mproc__group *g, int worker, uint64_t id) {
    if (worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "skip: no worker %d", worker);
    mproc__taken_slot_skip(&g->taken[worker], id);
    return 0;
}

static int fork_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                     mproc__send_hint *hint) {
    if (worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "send: no worker %d", worker);
    fworker *w = &g->w[worker];
    if (w->fd < 0) return MPROC_EWORKER;
    g->sends++;
    mproc__fork_send_wait sw = {g, w->fd, worker};
    /* A frame that fits goes into the worker's down ring (one copy, the socket then carries a
     * 24-byte reference); a socket write is done with the caller's buffers when it returns. */
    size_t total = mproc__iov_total(iov, iovcnt);
    uint8_t ref[MPROC__WIRE_HDR_SIZE];
    struct iovec rv = {ref, sizeof ref};
    uint64_t pos;
    if (iov[0].iov_len < MPROC__WIRE_HDR_SIZE) return mproc__error(MPROC_EINVAL, "send: a frame starts with its header");
    uint16_t kind = mproc__hdr_kind(iov[0].iov_base);
    /* Noted before the write: a reply may be read while the write waits for room. */
    note_home(w, mproc__hdr_id(iov[0].iov_base), hint);
    /* Into the ring also when small if the worker looks at its mailbox now: no system call. */
    int post = w->mail && mproc__mail_ready(w->rings.down.mail, w->down_sent);
    int in_ring = w->rings.base && total >= MPROC__WIRE_HDR_SIZE && total <= UINT32_MAX &&
                  (total >= MPROC__RING_MIN_FRAME || post) && mproc__ring_put(&w->rings.down, iov, iovcnt, total, &pos);
    if (in_ring) {
        mproc__ring_ref_encode(ref, pos, total);
        iov = &rv;
        iovcnt = 1;
    }
    if (is_request(kind)) { /* counted before the write: its reply may be read during it */
        w->owed++;
        g->sent_at = ++g->owed == 1 ? mproc__now() : 0;
        g->lone = worker;
    }
    if (in_ring && post) {
        if (mproc__mail_post(w->rings.down.mail, w->down_sent++, pos, (uint32_t)total)) return 0;
        /* It may have gone to sleep: wake it. The frame is its already, so this write's failure
         * is not the send's (a worker that died meanwhile is found by its EOF). */
        mproc__hdr_encode(ref, MPROC__FRAME_WAKE, 0, 0, 0);
        mproc__sock_write_frame(w->fd, iov, iovcnt, mproc__fork_receive_while_sending, &sw);
        return 0;
    }
    if (w->mail) {
        mproc__mail_count(w->rings.down.mail, ++w->down_sent);
    }
    int rc = mproc__sock_write_frame(w->fd, iov, iovcnt, mproc__fork_receive_while_sending, &sw);
    if (rc == MPROC_EWORKER) {
        /* Its EOF (and so its DIED event) will be seen by the next wait. */
        return mproc__error(MPROC_EWORKER, "worker %d closed its channel", worker);
    }
    return rc;
}

static void fork_wake(mproc__group *g) {
    uint64_t one = 1;
    while (write(g->wake_fd, &one, sizeof one) < 0 && errno == EINTR) {}
}

static int fork_kill_worker(mproc__group *g, int worker) {
    if (worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "kill: no worker %d", worker);
    if (g->w[worker].pid > 0) kill(g->w[worker].pid, SIGKILL);
    return 0;
}

static int fork_restart_worker(mproc__group *g, int worker) {
    if (worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "restart: no worker %d", worker);
    mproc__fork_worker_retire(g, worker, 1);
    return mproc__fork_worker_spawn(g, worker);
}

static long fork_worker_pid(mproc__group *g, int worker) {
    return (worker >= 0 && worker < g->n) ? (long)g->w[worker].pid : 0;
}

static void fork_group_stop(mproc__group *g, int graceful) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        mproc__fork_worker_retire(g, i, graceful); /* unmaps its rings too */
        free(g->w[i].homes);
    }
    mproc__event ev;
    while (mproc__fork_receive_dequeue(g, &ev)) free(ev.frame);
    mproc__fork_untrack_fd(g->wake_fd);
    close(g->wake_fd);
    munmap(g->taken, (size_t)g->n * sizeof(mproc__taken_slot));
    free(g->w);
    free(g->pfds);
    free(g);
}

/* One per CPU by default, as Python's Pool (the affinity mask, not the machine's total). */
static int fork_default_workers(void) { return mproc_cpu_count(); }

const mproc__backend_ops mproc__backend_fork = {
    .version = MPROC__BACKEND_VERSION,
    .name = "fork",
    .init = fork_init,
    .finalize = fork_finalize,
    .max_workers = fork_max_workers,
    .group_start = fork_group_start,
    .send = fork_send,
    .wait = mproc__fork_receive_wait,
    .wake = fork_wake,
    .kill_worker = fork_kill_worker,
    .withdraw = fork_withdraw,
    .skip = fork_skip,
    .restart_worker = fork_restart_worker,
    .worker_pid = fork_worker_pid,
    .group_stop = fork_group_stop,
    .proc_start = mproc__fork_proc_start,
    .proc_wait = mproc__fork_proc_wait,
    .proc_signal = mproc__fork_proc_signal,
    .proc_free = mproc__fork_proc_free,
    .default_workers = fork_default_workers,
};
