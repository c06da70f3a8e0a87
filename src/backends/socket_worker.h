/* socket_worker.h - a pool worker process that serves frames over a stream socket: the fork
 * backend's workers and the MPI backend's executors (the processes a worker rank runs its tasks
 * in) are the same code. The master side (or the rank that relays for it) writes frames into the
 * other end and reads the replies with the frame reader (wire/stream_reader.h).
 */
#ifndef MPROC_SOCKET_WORKER_H
#define MPROC_SOCKET_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* One per worker in memory shared with it: the id of the last frame it took off its channel,
 * written by the worker before it runs the frame, read by its supervisor when the worker dies to
 * tell a frame that was running from one still unread in the socket (backend.h, taken_id). Two
 * cache lines each, so workers do not share lines. */
#define MPROC__SKIP_SLOTS 14
typedef struct mproc__taken_slot {
    _Atomic uint64_t id;
    /* Set by the worker as it leaves because its channel is gone from under it (a task closed
     * descriptors it did not open), so that its supervisor says so instead of blaming an exit()
     * in the task; no exit status could tell the two apart. */
    _Atomic uint32_t channel_lost;
    /* Frames of cancelled calls queued behind another call's running frame (backend.h's skip):
     * their ids, written by the supervisor (the last MPROC__SKIP_SLOTS, round robin: skip_next
     * is the writer's own; a cancel writes the nearest frames last), looked at by the worker
     * before it runs a frame. With the default inflight (2, 3) a worker has at most 2 queued. */
    uint32_t skip_next;
    _Atomic uint64_t skip[MPROC__SKIP_SLOTS];
} mproc__taken_slot;
_Static_assert(sizeof(mproc__taken_slot) == 128, "a taken slot is two cache lines");

/* A slot for a worker about to start: nothing taken (backend.h's MPROC__TAKEN_NONE), its
 * channel not lost. Its skips stay: one written while the worker was being replaced is for a
 * frame its successor gets (ids are never reused, so an older one matches nothing). A slot's
 * memory starts zeroed: no skips (ids start at 1). */
static inline void mproc__taken_slot_reset(mproc__taken_slot *s) {
    atomic_store(&s->id, UINT64_MAX);
    atomic_store(&s->channel_lost, 0);
}

/* The supervisor (one thread at a time): the worker is to answer frame id with an empty RESULT
 * instead of running it, if it has not taken it yet. */
static inline void mproc__taken_slot_skip(mproc__taken_slot *s, uint64_t id) {
    atomic_store_explicit(&s->skip[s->skip_next++ % MPROC__SKIP_SLOTS], id, memory_order_release);
}

/* The worker: whether frame id is to be skipped. */
static inline int mproc__taken_slot_skips(mproc__taken_slot *s, uint64_t id) {
    for (int i = 0; i < MPROC__SKIP_SLOTS; i++)
        if (atomic_load_explicit(&s->skip[i], memory_order_acquire) == id) return 1;
    return 0;
}

/* Writes a whole frame (the iovecs concatenated, 1..16 of them) on a blocking or non-blocking
 * socket; MSG_NOSIGNAL, so a dead peer is an error, not SIGPIPE. When the socket is full,
 * calls drain(arg) (may be NULL) to keep reading meanwhile; without drain, waits up to 1 s for
 * room. 0, MPROC_EWORKER (the peer is gone), MPROC_ETIMEDOUT or MPROC_EINVAL. */
int mproc__sock_write_frame(int fd, const struct iovec *iov, int iovcnt, int (*drain)(void *arg),
                            void *arg);

/* The body of a worker process, called right after its fork: dies with `parent` (and leaves at
 * once if that is gone already), takes the name and index (mproc_current_*), serves frames on fd
 * until SHUTDOWN or EOF, then _exit()s (0, or 70 when serving failed). ring_fd >= 0: a memfd of
 * frame rings shared with the other end (frame_ring.h; mapped, then closed): frames may come as
 * references into its down ring, and replies of MPROC__RING_MIN_FRAME bytes or more go through
 * its up ring while they fit. */
_Noreturn void mproc__socket_worker_main(int fd, mproc__taken_slot *taken, const char *name,
                                         int index, pid_t parent, int ring_fd);

#endif /* MPROC_SOCKET_WORKER_H */
