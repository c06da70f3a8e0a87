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
 * tell a frame that was running from one still unread in the socket (backend.h, taken_id). A
 * cache line each, so workers do not share lines. */
typedef struct mproc__taken_slot {
    _Atomic uint64_t id;
    /* Set by the worker as it leaves because its channel is gone from under it (a task closed
     * descriptors it did not open), so that its supervisor says so instead of blaming an exit()
     * in the task; no exit status could tell the two apart. */
    _Atomic uint32_t channel_lost;
    char pad[64 - sizeof(uint64_t) - sizeof(uint32_t)];
} mproc__taken_slot;

/* A slot for a worker about to start: nothing taken (backend.h's MPROC__TAKEN_NONE), its
 * channel not lost. */
static inline void mproc__taken_slot_reset(mproc__taken_slot *s) {
    atomic_store(&s->id, UINT64_MAX);
    atomic_store(&s->channel_lost, 0);
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
