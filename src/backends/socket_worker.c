/* socket_worker.c - a pool worker process serving frames over a stream socket (socket_worker.h):
 * the worker side of the fork backend, and the MPI backend's executors.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/frame_ring.h"
#include "backends/socket_worker.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"
#include "worker/worker.h"

int mproc__sock_write_frame(int fd, const struct iovec *iov_in, int iovcnt,
                            int (*drain)(void *arg), void *arg) {
    struct iovec iov[16];
    if (iovcnt > 16 || iovcnt < 1) return mproc__error(MPROC_EINVAL, "send: 1..16 iovecs");
    memcpy(iov, iov_in, (size_t)iovcnt * sizeof *iov);
    struct iovec *cur = iov;
    while (iovcnt > 0) {
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = cur;
        m.msg_iovlen = (size_t)iovcnt;
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (drain) {
                    int rc = drain(arg);
                    if (rc < 0) return rc;
                    continue;
                }
                /* No one to drain for (a SHUTDOWN): wait a bounded time for room. */
                struct pollfd p = {fd, POLLOUT, 0};
                if (poll(&p, 1, 1000) <= 0) return MPROC_ETIMEDOUT;
                continue;
            }
            return MPROC_EWORKER;
        }
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= cur->iov_len) {
            left -= cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            cur->iov_base = (uint8_t *)cur->iov_base + left;
            cur->iov_len -= left;
        }
    }
    return 0;
}

/* The worker's end of its channel: the socket, and the frame rings when it shares them. */
typedef struct child_chan {
    int fd;
    mproc__taken_slot *taken;
    mproc__ring_pair rings;   /* base NULL: none */
    uint8_t *ring_frame;      /* the frame recv handed out from the down ring, if any */
    uint64_t ring_end;        /* where it ends (what releasing it frees) */
    double replied_at;        /* when the last reply went, while no frame came since (else 0) */
    double idle_mean;         /* mean time from a reply to the next frame (capped) */
    int mail;                 /* the rings' mailboxes are on (frame_mailbox.h) */
    uint64_t down_taken;      /* frames taken from the master, by socket or mailbox */
    uint8_t *held;            /* a socket frame that came after the mailbox's: the next one */
    size_t held_len;
    uint64_t placed_pos;      /* where child_place's last room is in the up ring */
    uint64_t up_sent; /* frames sent up, by socket or mailbox */
} child_chan;

/* A reference frame: the frame it names, in the down ring. */
static int take_ring_frame(child_chan *ch, const uint8_t *ref, uint8_t **frame, size_t *len) {
    uint64_t pos = mproc__hdr_id(ref);
    size_t n = mproc__hdr_arg(ref);
    uint8_t *f = mproc__ring_at(&ch->rings.down, pos, n);
    if (!f || n < MPROC__WIRE_HDR_SIZE)
        return mproc__error(MPROC_EPROTO, "a ring reference (%zu bytes at %llu) outside the ring", n,
                            (unsigned long long)pos);
    ch->ring_frame = f;
    ch->ring_end = mproc__ring_end(pos, n);
    *frame = f;
    *len = n;
    return 0;
}

/* Longest a worker looks for its next frame without sleeping after it answered: about what a
 * sleep and a wake-up cost together here. */
#define NEXT_SPIN_MAX_S 50e-6
/* The same for a worker or executor whose frames come by mailbox (frame_mailbox.h), where a look
 * is a read of shared memory and a sleep costs more: the rank's frame then goes by socket, and each
 * side pays a system call and a context switch. A map's chunks reach an executor every
 * 50-200 us on 2 cores: with 50 us the executor slept before three chunks in four, which cost
 * the map about a tenth of its speed (bench/README.md, stop 14). Still only while the gaps stay
 * that short, and yielding the core between looks. */
#define MAIL_SPIN_MAX_S 250e-6
/* Idle gaps longer than this count as this long: a pause of seconds must not keep the worker
 * from spinning again once calls come back-to-back. */
#define IDLE_GAP_CAP_S 1e-3

/* Blocking calls one at a time (mproc_apply in a loop) send the next frame microseconds after
 * the reply: while the gaps between a reply and the next frame stay that short, the worker
 * polls for the next frame for up to twice the mean gap before it sleeps, so neither side pays
 * a wake-up per call. A worker whose frames come slower (or are queued) never spins. */
static double spin_deadline(const child_chan *ch, double max_s) {
    if (ch->replied_at <= 0 || ch->idle_mean >= max_s) return 0;
    double until = ch->replied_at + 2 * ch->idle_mean + 5e-6;
    return until > ch->replied_at + max_s ? ch->replied_at + max_s : until;
}

static void spin_for_next(child_chan *ch) {
    double until = spin_deadline(ch, NEXT_SPIN_MAX_S);
    if (until <= 0) return;
    struct pollfd pf = {ch->fd, POLLIN, 0};
    while (mproc__now() < until) {
        if (poll(&pf, 1, 0) != 0) return;
        sched_yield(); /* the master may need this core to send it */
    }
}

/* Idle this long, a worker gives back the memory its biggest frames left: the heap keeps freed
 * blocks for the next big frame (worker.c's keep_big_blocks), and its up ring the pages a big result
 * reached. Frames that follow each other closer than this keep both. */
#define IDLE_TRIM_MS 100

/* Sleeps until the master's socket is readable (poll, not read: see child_recv), giving memory
 * back once it has slept IDLE_TRIM_MS with nothing to do. */
static void sleep_until_readable(child_chan *ch) {
    struct pollfd pf = {ch->fd, POLLIN, 0};
    /* A result the master has not released yet may still lie in the up ring: look again,
     * less and less often (0.1 s, then up to 1 s apart, 8 times), before sleeping for good. */
    int wait_ms = IDLE_TRIM_MS;
    for (int tries = 0; tries < 8; tries++, wait_ms = wait_ms < 500 ? 2 * wait_ms : 1000) {
        double until = mproc__now() + wait_ms / 1000.0; /* a signal does not restart the wait */
        int r;
        do {
            double left_ms = (until - mproc__now()) * 1000.0;
            r = poll(&pf, 1, left_ms > 0 ? (int)(left_ms + 0.999) : 0);
        } while (r < 0 && errno == EINTR && mproc__now() < until);
        if (r > 0) return;
        if (tries == 0) mproc__worker_give_back_heap();
        if (!ch->rings.base || !mproc__ring_trim_idle(&ch->rings.up)) break;
    }
    while (poll(&pf, 1, -1) < 0 && errno == EINTR) {
    }
}

/* A frame came: how long after our last reply (the moving mean spin_for_next uses). */
static void note_frame(child_chan *ch) {
    if (ch->replied_at <= 0) return;
    double gap = mproc__now() - ch->replied_at;
    if (gap > IDLE_GAP_CAP_S) gap = IDLE_GAP_CAP_S;
    ch->idle_mean += (gap - ch->idle_mean) / 4;
    ch->replied_at = 0;
}

/* The next frame when the mailboxes are on (frame_mailbox.h): 1 with a frame read from the
 * socket (malloc'd), 2 with the reference of the one taken from the mailbox (in ref), or an
 * error. While replies are followed quickly by frames the look is a read of shared memory
 * (yielding the core), not a system call; then the worker says it sleeps and sleeps in poll(). */
static int mail_next(child_chan *ch, mproc__reader *in, uint8_t **frame, size_t *len, uint8_t *ref) {
    mproc__mailbox *m = ch->rings.down.mail;
    double spin_until = spin_deadline(ch, MAIL_SPIN_MAX_S);
    int readable = 0;
    for (;;) {
        uint64_t pos;
        uint32_t n;
        if (ch->held) { /* the next frame, unless an earlier one is in the mailbox (frame_mailbox.h) */
            if (mproc__mail_take(m, ch->down_taken, &pos, &n)) {
                ch->down_taken++;
                mproc__ring_ref_encode(ref, pos, n);
                return 2;
            }
            *frame = ch->held;
            *len = ch->held_len;
            ch->held = NULL;
            ch->down_taken++;
            return 1;
        }
        int more = readable || mproc__reader_pending(in) || mproc__mail_more(m, ch->down_taken);
        /* Looked at again after `posted`: a frame posted before it is seen now. */
        if (mproc__mail_take(m, ch->down_taken, &pos, &n)) {
            ch->down_taken++;
            mproc__ring_ref_encode(ref, pos, n);
            return 2;
        }
        if (more) { /* the next frame is on the socket */
            readable = 0;
            int rc = mproc__reader_next(in, ch->fd, frame, len);
            if (rc != 1) return rc < 0 ? rc : MPROC_EOF;
            if (mproc__hdr_kind(*frame) == MPROC__FRAME_WAKE) {
                free(*frame);
                continue;
            }
            /* Posted before this one was sent, after the look above? Then it comes first. */
            if (mproc__mail_take(m, ch->down_taken, &pos, &n)) {
                ch->held = *frame;
                ch->held_len = *len;
                ch->down_taken++;
                mproc__ring_ref_encode(ref, pos, n);
                return 2;
            }
            ch->down_taken++;
            return 1;
        }
        if (spin_until > 0 && mproc__now() < spin_until) {
            sched_yield(); /* the rank may need this core to send it */
            continue;
        }
        mproc__mail_awake(m, 0);
        if (!mproc__mail_more(m, ch->down_taken)) { /* see child_recv on poll() */
            sleep_until_readable(ch);
            readable = 1;
        }
        mproc__mail_awake(m, 1);
    }
}

static int child_recv(void *impl, uint8_t **frame, size_t *len) {
    static mproc__reader in; /* one channel per worker process */
    child_chan *ch = impl;
    uint8_t mref[MPROC__WIRE_HDR_SIZE];
    int rc;
    if (ch->mail) {
        rc = mail_next(ch, &in, frame, len, mref);
        if (rc < 0) return rc;
        if (rc == 2) {
            *frame = mref;
            *len = sizeof mref;
        }
    } else {
        if (!mproc__reader_pending(&in)) {
            spin_for_next(ch);
            /* Sleep in poll(), not in read(): a reader blocked in read() on an AF_UNIX socket is
             * woken each time the master takes in a reply this worker sent (the kernel's "room to
             * write again" wake-up goes to every sleeper on the socket; poll() sleepers filter it
             * out) - a wasted context switch per task, measured at a sixth of a round trip. */
            sleep_until_readable(ch);
        }
        rc = mproc__reader_next(&in, ch->fd, frame, len);
        if (rc != 1) return rc < 0 ? rc : MPROC_EOF;
    }
    note_frame(ch);
    if (mproc__hdr_kind(*frame) == MPROC__FRAME_RING && ch->rings.base) {
        uint8_t *ref = *frame;
        rc = take_ring_frame(ch, ref, frame, len);
        if (ref != mref) free(ref);
        if (rc < 0) return rc;
    } else if (*frame == mref) {
        return mproc__error(MPROC_EPROTO, "a mailbox frame that is no ring reference");
    }
    /* The reader checked the header already: only its id is needed here. */
    atomic_store_explicit(&ch->taken->id, mproc__hdr_id(*frame), memory_order_release);
    return 0;
}

static void child_release(void *impl, uint8_t *frame) {
    child_chan *ch = impl;
    if (frame && frame == ch->ring_frame) {
        mproc__ring_release_to(&ch->rings.down, ch->ring_end);
        ch->ring_frame = NULL;
        return;
    }
    free(frame);
}

/* Sends the reference of a frame at pos in the up ring: in the mailbox when the master would
 * see it there (with a WAKE if it may have gone to sleep meanwhile), else on the socket. */
static int send_ring_ref(child_chan *ch, uint64_t pos, size_t total) {
    int rc;
    uint8_t hdr[MPROC__WIRE_HDR_SIZE];
    struct iovec v = {hdr, sizeof hdr};
    if (ch->mail && mproc__mail_ready(ch->rings.up.mail, ch->up_sent)) {
        rc = 0;
        if (!mproc__mail_post(ch->rings.up.mail, ch->up_sent++, pos, (uint32_t)total)) {
            mproc__hdr_encode(hdr, MPROC__FRAME_WAKE, 0, 0, 0);
            rc = mproc__sock_write_frame(ch->fd, &v, 1, NULL, NULL);
        }
    } else {
        if (ch->mail) mproc__mail_count(ch->rings.up.mail, ++ch->up_sent);
        mproc__ring_ref_encode(hdr, pos, total);
        rc = mproc__sock_write_frame(ch->fd, &v, 1, NULL, NULL);
    }
    ch->replied_at = mproc__now();
    return rc < 0 ? MPROC_EOF : 0;
}

static int child_send(void *impl, const struct iovec *iov, int iovcnt) {
    child_chan *ch = impl;
    size_t total = mproc__iov_total(iov, iovcnt);
    uint64_t pos;
    /* Into the up ring: a big frame (no copy through the kernel), or any frame whose reference
     * the mailbox would take now (no system call at all). */
    int ring = ch->rings.base && total >= MPROC__WIRE_HDR_SIZE && total <= UINT32_MAX &&
               (total >= MPROC__RING_MIN_FRAME || (ch->mail && mproc__mail_ready(ch->rings.up.mail, ch->up_sent)));
    if (ring && mproc__ring_put(&ch->rings.up, iov, iovcnt, total, &pos)) return send_ring_ref(ch, pos, total);
    if (ch->mail) mproc__mail_count(ch->rings.up.mail, ++ch->up_sent);
    int rc = mproc__sock_write_frame(ch->fd, iov, iovcnt, NULL, NULL);
    ch->replied_at = mproc__now();
    return rc < 0 ? MPROC_EOF : 0;
}

/* Room in the up ring for a result frame the worker builds in place (worker.h's place): the
 * result is then never copied in this process. */
static uint8_t *child_place(void *impl, size_t len) {
    child_chan *ch = impl;
    if (!ch->rings.base || len < MPROC__RING_MIN_FRAME || len > UINT32_MAX) return NULL;
    return mproc__ring_reserve(&ch->rings.up, len, &ch->placed_pos);
}

static int child_send_placed(void *impl, uint8_t *frame, size_t len) {
    child_chan *ch = impl;
    (void)frame; /* the room child_place gave last: nothing was put in the ring since */
    return send_ring_ref(ch, ch->placed_pos, len);
}

static int child_skipped(void *impl, uint64_t id) {
    child_chan *ch = impl;
    return mproc__taken_slot_skips(ch->taken, id);
}

/* This worker's end of its channel, for the fork handler below. */
static int channel_fd = -1;

/* A process a task forks (without exec: the socket is close-on-exec) must not hold this worker's
 * socket open: the master learns of the worker's death (a crash, or its kill at a time limit)
 * from the socket's end, which a surviving child would hold back for as long as it lives. */
static void close_channel_in_child(void) {
    if (channel_fd >= 0) close(channel_fd);
    channel_fd = -1;
}

_Noreturn void mproc__socket_worker_main(int fd, mproc__taken_slot *taken, const char *name,
                                         int index, pid_t parent, int ring_fd) {
    /* Die with the parent even mid-task; Ctrl-C is the master's to handle. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    signal(SIGINT, SIG_IGN);
    /* A crash must end the worker with its real signal (so the master can name it), not in a
     * handler the master installed for itself (a test runner's, say). */
    mproc__fork_child_signals();
    mproc__set_identity(name, index);
    channel_fd = fd;
    if (pthread_atfork(NULL, NULL, close_channel_in_child) != 0) _exit(70);
    child_chan chan = {.fd = fd, .taken = taken, .idle_mean = IDLE_GAP_CAP_S};
    if (ring_fd >= 0) {
        if (mproc__ring_pair_map(ring_fd, &chan.rings) < 0) _exit(70);
        close(ring_fd);
        chan.mail = mproc__mail_on(chan.rings.down.mail);
        if (chan.mail) mproc__mail_awake(chan.rings.down.mail, 1);
    }
    mproc__wchan ch = {&chan, child_recv, child_send, NULL, NULL, child_release, child_place, child_send_placed,
                       child_skipped};
    struct stat mine, now;
    if (fstat(fd, &mine) < 0) _exit(70);
    int rc = mproc__worker_serve(&ch, index);
    fflush(NULL);
    /* Gone from under us (closed, or its number reused), rather than closed by the master: any
     * error, MPROC_EOF included (a failed write reads as the peer gone). */
    if (rc < 0 && (fstat(fd, &now) < 0 || now.st_dev != mine.st_dev || now.st_ino != mine.st_ino)) {
        atomic_store(&taken->channel_lost, 1);
        _exit(70);
    }
    _exit(rc == 0 || rc == MPROC_EOF ? 0 : 70);
}
