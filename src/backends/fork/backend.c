/* backend.c - the fork backend: pool workers are forked children, each talking to the
 * master over its own socketpair; the master multiplexes them with poll().
 *
 * The master never blocks on a write while a worker blocks writing back (the classic pipe
 * deadlock): a send that would block keeps reading whatever arrives and queues it. A worker
 * that closes its socket, dies, or sends a frame that does not decode is reported once as a
 * DIED event with its exit status described; the core decides what to do with its tasks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backends/fork/processes.h"
#include "backends/frame_mailbox.h"
#include "backends/frame_ring.h"
#include "backends/socket_worker.h"
#include "wire/stream_reader.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/wire.h"
#include "worker/worker.h"

/* Where a frame's reply data may go (mproc__send_hint.reply_to), until its reply arrives. */
typedef struct reply_home {
    uint64_t id;
    uint8_t *to;
    size_t len;
} reply_home;

typedef struct fworker {
    pid_t pid;
    int fd;                /* master end; -1 once dead */
    mproc__reader in;      /* frames arriving from it */
    mproc__ring_pair rings; /* shared with it (frame_ring.h); base NULL: none */
    uint64_t up_next;      /* where its next reply in the up ring may start */
    reply_home *homes;     /* frames in flight whose replies have a home */
    int nhomes, cap_homes;
    int owed;              /* frames sent to it that a reply will answer */
    /* The rings' mailboxes (frame_mailbox.h): frames pass without a system call while the
     * reader looks for them. Its frames go by mailbox only while it spins for its next one, ours
     * only while the master spins for a lone reply (spin_for_reply). */
    int mail;
    uint64_t down_sent;    /* frames sent to it, by socket or mailbox */
    uint64_t up_taken;     /* frames taken from it, by socket or mailbox */
    uint8_t *held;         /* a socket frame that came after the mailbox's next one */
    size_t held_len;
} fworker;

typedef struct queued {
    struct queued *next;
    mproc__event ev;
} queued;

struct mproc__group {
    int n;
    fworker *w;
    int wake_fd;
    struct pollfd *pfds;
    int next_start;        /* round-robin start so no worker starves */
    queued *head, *tail;   /* events found while sending */
    unsigned long spawned;
    mproc__taken_slot *taken;     /* n slots, MAP_SHARED with the workers */
    size_t ring_size;             /* bytes of each frame ring; 0: none */
    /* One frame in flight at a time (blocking calls in a loop): wait() spins briefly for its
     * reply rather than sleeping, when replies have come that fast (fork_wait). */
    int owed;                     /* frames owed a reply, all workers */
    double sent_at;               /* when the only frame owed was sent */
    int lone;                     /* the worker that owes it */
    /* Where frames may wait that poll() would not show: the worker whose up mailbox the master
     * last looked at while awake (-1: none left there), and how many workers hold a frame back. */
    int spun;
    int nheld;
    double reply_s;               /* how long such a reply took (moving average) */
};

static unsigned long worker_counter; /* PoolWorker-<n> numbering, as Python's */

/* ---- master side: spawning ---------------------------------------------------------------- */

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

static int spawn_worker(mproc__group *g, int i) {
    int sv[2];
    if (mproc__fork_socketpair(sv) < 0) return MPROC_ESYS;
    int ring_fd = new_rings(g, &g->w[i]);
    worker_counter++;
    atomic_store(&g->taken[i].id, MPROC__TAKEN_NONE);
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
static void reap_worker(fworker *w, mproc__event *ev, const char *cause) {
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
        mproc__describe_exit(status, how, sizeof how);
        ev->exitcode = mproc__exitcode(status);
    }
    if (cause) snprintf(ev->why, sizeof ev->why, "%.200s; %s", cause, how);
    else snprintf(ev->why, sizeof ev->why, "%s", how);
    w->pid = 0;
}

/* Kinds of frame a worker answers, and the kinds of its answers. */
static int is_request(uint16_t k) { return k == MPROC__FRAME_TASK || k == MPROC__FRAME_BATCH || k == MPROC__FRAME_INIT; }
static int is_reply(uint16_t k) { return k == MPROC__FRAME_RESULT || k == MPROC__FRAME_BATCH || k == MPROC__FRAME_INIT_RESULT; }

/* Nothing more is owed by worker w (it died or left). */
static void forget_owed(mproc__group *g, fworker *w) {
    g->owed -= w->owed;
    w->owed = 0;
}

/* A reply came from w: the round trip of a lone frame is timed. */
static void note_reply(mproc__group *g, fworker *w) {
    if (w->owed <= 0) return;
    w->owed--;
    if (--g->owed == 0 && g->sent_at > 0) {
        double took = mproc__now() - g->sent_at;
        g->reply_s = g->reply_s > 0 ? 0.75 * g->reply_s + 0.25 * took : took;
        g->sent_at = 0;
    }
}

static void worker_died(mproc__group *g, int i, mproc__event *ev, const char *cause) {
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
    reap_worker(w, ev, cause);
}

/* ---- master side: receiving ---------------------------------------------------------------- */

/* Takes the home noted for frame id's reply, if any: 1 with *h. */
static int take_home(fworker *w, uint64_t id, reply_home *h) {
    for (int k = 0; k < w->nhomes; k++)
        if (w->homes[k].id == id) {
            *h = w->homes[k];
            w->homes[k] = w->homes[--w->nhomes];
            return 1;
        }
    return 0;
}

/* A reply in w's up ring (f, len bytes, checked): copied once, into its home when it has one
 * and every item came back with the expected size (the event then carries only its header and
 * prefix, ev->placed), else into a frame of its own. The ring space is released either way.
 * 0, or MPROC_ENOMEM. */
static int take_ring_reply(fworker *w, const uint8_t *f, size_t len, mproc__event *ev) {
    const size_t lead = MPROC__WIRE_HDR_SIZE + MPROC__WIRE_RESULT_PREFIX;
    reply_home h;
    int homed = mproc__hdr_kind(f) == MPROC__FRAME_RESULT && take_home(w, mproc__hdr_id(f), &h);
    /* Only what the frame itself holds is read: one too short for its prefix goes to the core
     * whole (which rejects it as malformed), never "placed" from bytes beyond it. */
    if (homed && len >= lead) {
        uint64_t count = mproc__get_u32(f + MPROC__WIRE_HDR_SIZE);
        uint64_t item = mproc__get_u32(f + MPROC__WIRE_HDR_SIZE + 4);
        homed = item != 0 && count * item == len - lead && len - lead == h.len;
    } else {
        homed = 0;
    }
    size_t keep = homed ? lead : len;
    uint8_t *own = malloc(keep);
    if (!own) return mproc__error(MPROC_ENOMEM, "no memory for a %zu-byte result", keep);
    memcpy(own, f, keep);
    if (homed) {
        memcpy(h.to, f + lead, h.len);
        mproc__put_u32(own + 16, MPROC__WIRE_RESULT_PREFIX);
    }
    mproc__ring_release_to(&w->rings.up, w->up_next);
    ev->frame = own;
    ev->frame_len = keep;
    ev->placed = homed;
    return 0;
}

/* A reference to a reply in worker i's up ring (from its socket or its mailbox): *ev, or the
 * worker's DIED event when the reference is bad. Returns 1. */
static int ring_ref_event(mproc__group *g, int i, const uint8_t *ref, mproc__event *ev) {
    fworker *w = &g->w[i];
    memset(ev, 0, sizeof *ev);
    ev->kind = MPROC__EV_FRAME;
    ev->worker = i;
    size_t flen = 0;
    const uint8_t *f = w->rings.base ? mproc__ring_resolve(&w->rings.up, ref, &w->up_next, &flen) : NULL;
    if (!f) {
        worker_died(g, i, ev, "sent a reference to no frame of its ring");
        return 1;
    }
    if (is_reply(mproc__hdr_kind(f))) note_reply(g, w);
    if (take_ring_reply(w, f, flen, ev) < 0) worker_died(g, i, ev, mproc_last_error());
    return 1;
}

/* A whole frame from worker i (malloc'd, taken over): *ev. Returns 1. */
static int frame_event(mproc__group *g, int i, uint8_t *frame, size_t len, mproc__event *ev) {
    fworker *w = &g->w[i];
    w->up_taken++;
    if (mproc__hdr_kind(frame) == MPROC__FRAME_RING) {
        ring_ref_event(g, i, frame, ev);
        free(frame);
        return 1;
    }
    memset(ev, 0, sizeof *ev);
    ev->kind = MPROC__EV_FRAME;
    ev->worker = i;
    ev->frame = frame;
    ev->frame_len = len;
    if (is_reply(mproc__hdr_kind(frame))) note_reply(g, w);
    if (w->nhomes && mproc__hdr_kind(frame) == MPROC__FRAME_RESULT) {
        reply_home h; /* came by the socket: the core copies it into place itself */
        take_home(w, mproc__hdr_id(frame), &h);
    }
    return 1;
}

/* Worker i's next frame when its mailbox holds it: 1 with *ev. No system call. */
static int take_mail(mproc__group *g, int i, mproc__event *ev) {
    fworker *w = &g->w[i];
    uint64_t pos;
    uint32_t n;
    if (!w->mail || w->fd < 0 || !mproc__mail_take(w->rings.up.mail, w->up_taken, &pos, &n)) return 0;
    w->up_taken++;
    uint8_t ref[MPROC__WIRE_HDR_SIZE];
    mproc__ring_ref_encode(ref, pos, n);
    return ring_ref_event(g, i, ref, ev);
}

/* Worker i's next frame from its mailbox or the one held back, without reading its socket:
 * 1 with *ev. */
static int take_buffered(mproc__group *g, int i, mproc__event *ev) {
    fworker *w = &g->w[i];
    if (take_mail(g, i, ev)) return 1; /* before a held frame: the mailbox's came first */
    if (!w->held) return 0;
    uint8_t *frame = w->held;
    w->held = NULL;
    g->nheld--;
    return frame_event(g, i, frame, w->held_len, ev);
}

/* Reads what is available from worker i. Returns 1 with *ev set when a frame completed or the
 * worker died, 0 when more bytes are needed. */
static int read_worker(mproc__group *g, int i, mproc__event *ev) {
    fworker *w = &g->w[i];
    for (;;) {
        if (take_buffered(g, i, ev)) return 1;
        uint8_t *frame;
        size_t len;
        int rc = mproc__reader_next(&w->in, w->fd, &frame, &len);
        if (rc == 0) return 0;
        if (rc == 1) {
            if (w->mail && mproc__hdr_kind(frame) == MPROC__FRAME_WAKE) { /* a post while we stopped looking */
                free(frame);
                continue;
            }
            /* Sent after a frame it posted to the mailbox, which we had not looked at since? */
            if (take_mail(g, i, ev)) {
                if (w->fd >= 0) {
                    w->held = frame;
                    w->held_len = len;
                    g->nheld++;
                } else {
                    free(frame); /* the mailbox's frame was bad: the worker is gone */
                }
                return 1;
            }
            return frame_event(g, i, frame, len, ev);
        }
        char cause[200];
        snprintf(cause, sizeof cause, "%s", rc == MPROC_EOF ? "" : mproc_last_error());
        worker_died(g, i, ev, rc == MPROC_EOF ? NULL : cause);
        return 1;
    }
}

static int enqueue(mproc__group *g, const mproc__event *ev) {
    queued *q = malloc(sizeof *q);
    if (!q) return mproc__error(MPROC_ENOMEM, "no memory to queue a worker event");
    q->ev = *ev;
    q->next = NULL;
    if (g->tail) g->tail->next = q;
    else g->head = q;
    g->tail = q;
    return 0;
}

static int dequeue(mproc__group *g, mproc__event *ev) {
    queued *q = g->head;
    if (!q) return 0;
    *ev = q->ev;
    g->head = q->next;
    if (!g->head) g->tail = NULL;
    free(q);
    return 1;
}

/* poll()s every live worker plus the wake fd; ms < 0 waits forever. Returns ready count. */
static int poll_group(mproc__group *g, int ms) {
    for (int i = 0; i < g->n; i++) {
        g->pfds[i].fd = g->w[i].fd; /* -1 is ignored by poll */
        g->pfds[i].events = POLLIN;
        g->pfds[i].revents = 0;
    }
    g->pfds[g->n].fd = g->wake_fd;
    g->pfds[g->n].events = POLLIN;
    g->pfds[g->n].revents = 0;
    int r;
    do r = poll(g->pfds, (nfds_t)g->n + 1, ms);
    while (r < 0 && errno == EINTR);
    return r;
}

/* While a send to one worker would block: sleeps in poll() until that socket is writable again
 * or any worker has something to say, and queues whatever completes, so a worker blocked on
 * writing its results never deadlocks against the master writing its next task. */
typedef struct send_wait {
    mproc__group *g;
    int fd;
    int worker; /* the one being written to */
} send_wait;

static int drain_group(void *arg) {
    send_wait *sw = arg;
    mproc__group *g = sw->g;
    for (int i = 0; i < g->n; i++) {
        g->pfds[i].fd = g->w[i].fd;
        g->pfds[i].events = POLLIN | (g->w[i].fd == sw->fd ? POLLOUT : 0);
        g->pfds[i].revents = 0;
    }
    int r;
    do r = poll(g->pfds, (nfds_t)g->n, 1000);
    while (r < 0 && errno == EINTR);
    if (r <= 0) return 0;
    for (int i = 0; i < g->n; i++) {
        if (!(g->pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) || g->w[i].fd < 0) continue;
        mproc__event ev;
        while (g->w[i].fd >= 0 && read_worker(g, i, &ev))
            if (enqueue(g, &ev) < 0) return MPROC_ENOMEM;
    }
    /* The worker being written to died while we read (its socket is closed, and its number
     * may be another file's by now): the write must stop, not retry on that number. */
    if (g->w[sw->worker].fd != sw->fd) return MPROC_EWORKER;
    return 0;
}

/* ---- the ops ------------------------------------------------------------------------------ */

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
    for (int i = 0; i < n && rc == 0; i++) rc = spawn_worker(g, i);
    if (rc < 0) {
        fork_group_stop(g, 0);
        return rc;
    }
    *out = g;
    return 0;
}

/* Notes where frame id's reply data may go (the send hint), for a reply that comes through the
 * ring. 0, or -1 without memory (the reply then takes the usual path). */
static int note_home(fworker *w, uint64_t id, const mproc__send_hint *hint) {
    if (!hint || !hint->reply_to || !w->rings.base) return 0;
    if (w->nhomes == w->cap_homes) {
        int cap = w->cap_homes ? 2 * w->cap_homes : 8;
        reply_home *h = realloc(w->homes, (size_t)cap * sizeof *h);
        if (!h) return -1;
        w->homes = h;
        w->cap_homes = cap;
    }
    w->homes[w->nhomes++] = (reply_home){id, hint->reply_to, hint->reply_len};
    return 0;
}

static int fork_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                     const mproc__send_hint *hint) {
    if (worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "send: no worker %d", worker);
    fworker *w = &g->w[worker];
    if (w->fd < 0) return MPROC_EWORKER;
    send_wait sw = {g, w->fd, worker};
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
        mproc__sock_write_frame(w->fd, iov, iovcnt, drain_group, &sw);
        return 0;
    }
    if (w->mail) {
        mproc__mail_count(w->rings.down.mail, ++w->down_sent);
    }
    int rc = mproc__sock_write_frame(w->fd, iov, iovcnt, drain_group, &sw);
    if (rc == MPROC_EWORKER) {
        /* Its EOF (and so its DIED event) will be seen by the next wait. */
        return mproc__error(MPROC_EWORKER, "worker %d closed its channel", worker);
    }
    return rc;
}

/* Longest a wait spins for the reply to a lone frame: about what a sleep and a wake-up cost
 * together here, so a slower reply costs little more than sleeping at once would have. */
#define SPIN_MAX_S 50e-6

/* While the only frame owed was sent moments ago and such replies come within SPIN_MAX_S,
 * looks for it without sleeping (a caller of mproc_apply in a loop saves the wake-up: the
 * round trip went from 1.5x to 1.2x a pipe ping-pong). Meanwhile its worker may post the reply
 * to the mailbox instead of its socket: 1 with *ev when it came so. Never past deadline (< 0:
 * none). *ready: poll's count (0: nothing yet). */
static int spin_for_reply(mproc__group *g, double deadline, int *ready, mproc__event *ev) {
    *ready = 0;
    if (g->owed != 1 || g->sent_at <= 0 || g->reply_s >= SPIN_MAX_S) return 0;
    double until = g->sent_at + (g->reply_s > 0 ? 2 * g->reply_s + 5e-6 : SPIN_MAX_S);
    if (until > g->sent_at + SPIN_MAX_S) until = g->sent_at + SPIN_MAX_S;
    if (deadline >= 0 && until > deadline) until = deadline;
    fworker *w = &g->w[g->lone];
    int mail = w->mail && w->fd >= 0, got = 0, r = 0;
    if (mail) {
        mproc__mail_awake(w->rings.up.mail, 1);
        g->spun = g->lone;
    }
    while (r == 0 && mproc__now() < until) {
        if (mail && (got = take_mail(g, g->lone, ev))) break;
        r = poll_group(g, 0);
        if (r == 0) sched_yield(); /* with more processes than cores, the worker may need ours */
    }
    if (mail && w->fd >= 0) {
        mproc__mail_awake(w->rings.up.mail, 0);
        /* Posted before it saw us stop looking: it sends no WAKE, so look once more - at the
         * count of frames it sent (a sequentially consistent load, as frame_mailbox.h wants of
         * a reader going to sleep), then at the slot. More sent but not posted: on the socket. */
        if (!got && mproc__mail_more(w->rings.up.mail, w->up_taken)) got = take_mail(g, g->lone, ev);
    }
    *ready = r;
    return got;
}

static int fork_wait(mproc__group *g, double timeout, mproc__event *ev) {
    if (dequeue(g, ev)) return 0;
    /* Frames already in a read buffer, held back or in a mailbox would not wake poll(). Only
     * the worker we last spun for can have posted to its mailbox unseen (else a WAKE came). */
    if (g->spun >= 0) {
        if (take_buffered(g, g->spun, ev)) return 0;
        g->spun = -1; /* its mailbox is empty, and it posts no more while we do not look */
    }
    for (int i = 0; i < g->n; i++) {
        fworker *w = &g->w[i];
        if (w->fd < 0) continue;
        if (g->nheld && take_buffered(g, i, ev)) return 0;
        if (mproc__reader_pending(&w->in) && read_worker(g, i, ev)) return 0;
    }
    double deadline = mproc__deadline(timeout);
    for (;;) {
        double left = mproc__remaining(deadline);
        int ms = left < 0 ? -1 : (int)(left * 1000.0 + 0.999);
        int r;
        if (spin_for_reply(g, deadline, &r, ev)) return 0;
        if (r == 0) r = poll_group(g, ms);
        if (r < 0) return mproc__error(MPROC_ESYS, "poll: %s", strerror(errno));
        if (r == 0 && left >= 0 && mproc__remaining(deadline) <= 0) {
            memset(ev, 0, sizeof *ev);
            ev->kind = MPROC__EV_TIMEOUT;
            return 0;
        }
        for (int k = 0; k < g->n; k++) {
            int i = (g->next_start + k) % g->n;
            if (!g->pfds[i].revents || g->w[i].fd < 0) continue;
            if (read_worker(g, i, ev)) {
                g->next_start = (i + 1) % g->n;
                return 0;
            }
        }
        if (g->pfds[g->n].revents) {
            uint64_t v;
            while (read(g->wake_fd, &v, sizeof v) < 0 && errno == EINTR) {}
            memset(ev, 0, sizeof *ev);
            ev->kind = MPROC__EV_WAKE;
            return 0;
        }
    }
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

/* Asks a live worker to leave (SHUTDOWN), waits for it briefly, kills it if it lingers. */
static void retire_worker(mproc__group *g, int i, int graceful) {
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

static int fork_restart_worker(mproc__group *g, int worker) {
    if (worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "restart: no worker %d", worker);
    retire_worker(g, worker, 1);
    return spawn_worker(g, worker);
}

static long fork_worker_pid(mproc__group *g, int worker) {
    return (worker >= 0 && worker < g->n) ? (long)g->w[worker].pid : 0;
}

static void fork_group_stop(mproc__group *g, int graceful) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        retire_worker(g, i, graceful); /* unmaps its rings too (close_worker_fd) */
        free(g->w[i].homes);
    }
    mproc__event ev;
    while (dequeue(g, &ev)) free(ev.frame);
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
    .wait = fork_wait,
    .wake = fork_wake,
    .kill_worker = fork_kill_worker,
    .restart_worker = fork_restart_worker,
    .worker_pid = fork_worker_pid,
    .group_stop = fork_group_stop,
    .proc_start = mproc__fork_proc_start,
    .proc_wait = mproc__fork_proc_wait,
    .proc_signal = mproc__fork_proc_signal,
    .proc_free = mproc__fork_proc_free,
    .default_workers = fork_default_workers,
};
