/* transport.h - frames (wire.h) as MPI messages, between the master and the worker ranks
 * (transport.c).
 *
 * A frame travels as one MPI_BYTE message on one tag when it is small (packed into a buffer
 * that stays in flight while the sender goes on); a big one as a 24-byte header message
 * followed by its payload in pieces of at most MPROC__MPI_PIECE bytes, sent straight from the
 * caller's iovecs (no copy), retained or waited for. MPI keeps messages of one sender on one tag
 * in order, so the receiver takes the pieces from the header's sender right after it. Task ids
 * live in the frame header, never in the tag (tags are bounded by MPI_TAG_UB).
 */
#ifndef MPROC_MPI_TRANSPORT_H
#define MPROC_MPI_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/mpi/sends_in_flight.h"
#include "backends/mpi/wait.h"
#include "backends/mpi/world.h"
#include "wire/wire.h"

#define MPROC__MPI_TAG 4242
/* Frames up to this size are packed into one message (a copy is cheaper than a datatype). */
#define MPROC__MPI_PACK_MAX (1024u * 1024u)
/* Open MPI's TCP eager limit and send size that mproc asks for (bytes, as a string): a packed
 * frame and its header go without a rendezvous. */
#define MPROC__MPI_TCP_EAGER "1052672"
/* Payload pieces of a big frame: small enough that each completed piece tells a waiting sender
 * the transfer is moving (its backoff restarts), far below MPI's int count limit. */
#define MPROC__MPI_PIECE (8u * 1024u * 1024u)

/* Receives frames that arrive while a send waits for its peer (see mproc__mpi_send_frame). Takes
 * ownership of frame. Lock held. */
typedef void (*mproc__mpi_sink)(int src, uint8_t *frame, size_t len);

/* Lock held. Sends one frame (the iovecs concatenated, header first) to rank dest; the caller's
 * buffers are free again when it returns. A frame up to MPROC__MPI_PACK_MAX is copied and left
 * in flight (its copy is freed when MPI is done, found by later polls); a bigger one goes from
 * the caller's buffers and is waited for, receiving meanwhile and handing every incoming frame
 * to sink: two ranks sending big frames to each other would otherwise deadlock.
 * 0 or an error (EINVAL/ETOOBIG/ENOMEM). */
int mproc__mpi_send_frame(int dest, const struct iovec *iov, int iovcnt, mproc__mpi_sink sink);
/* Lock held. As send_frame, for a malloc'd frame it takes over (and frees, also on error): one
 * up to MPROC__MPI_PACK_MAX is sent from frame itself, left in flight, never copied. A RESULT of
 * fixed-size items with at least MPROC__MPI_PLACE_MIN bytes of data is split: its lead (header,
 * count, item_size: MPROC__MPI_RESULT_LEAD bytes), then its data, so that the receiver can take
 * the data straight into place (mproc__mpi_place). */
#define MPROC__MPI_RESULT_LEAD (MPROC__WIRE_HDR_SIZE + MPROC__WIRE_RESULT_PREFIX)
#define MPROC__MPI_PLACE_MIN (16u * 1024u)
/* Retained frames from this size on are sent without copying their payload (see below). */
#define MPROC__MPI_RETAIN_MIN (16u * 1024u)
int mproc__mpi_send_owned(int dest, uint8_t *frame, size_t len, mproc__mpi_sink sink);
/* Lock held. As send_owned, for a frame in memory the caller lends: instead of freeing it,
 * release(owner, token) is called (lock held, from whichever thread finds the send done, maybe
 * before this returns) when MPI no longer reads it; also on error (sends_in_flight.h). */
int mproc__mpi_send_lent(int dest, uint8_t *frame, size_t len, mproc__mpi_release release, void *owner,
                         uint64_t token, mproc__mpi_sink sink);
/* Lock held. Sends a frame to dest without waiting for MPI and without copying its payload
 * when it is at least MPROC__MPI_RETAIN_MIN bytes and lies in one iovec after the header: MPI
 * reads it from the caller's buffer after this returns. The caller keeps that buffer alive and
 * unchanged until mproc__mpi_complete_sends(dest, >= seq) has returned. seq (> 0) numbers the
 * caller's frames to dest in sending order. Smaller frames are sent as by send_frame. */
int mproc__mpi_send_retained(int dest, const struct iovec *iov, int iovcnt, uint64_t seq,
                             mproc__mpi_sink sink);
/* mproc__mpi_complete_sends, mproc__mpi_abandon_sends: sends_in_flight.h. */
/* Lock held. Waits until every send left in flight is done, handing incoming frames to sink;
 * mproc__mpi_quiesce does this first. */
void mproc__mpi_flush_sends(mproc__mpi_sink sink);
/* Lock held. Sends a frame that is only a header (SHUTDOWN, PROC_SIGNAL). */
int mproc__mpi_send_hdr(int dest, uint16_t kind, uint64_t id, uint32_t arg, mproc__mpi_sink sink);
/* Set by the master (NULL on worker ranks). Asked, with the lock held, when a split RESULT's lead
 * (first, first_len bytes) arrives from src announcing a frame of want bytes: where its data
 * should go (want - first_len bytes), or NULL for a frame of its own. If it answers, the data
 * goes there and the frame received is only the lead, its header's length set to the prefix. */
typedef uint8_t *(*mproc__mpi_placer)(int src, const uint8_t *first, size_t first_len, size_t want);
extern mproc__mpi_placer mproc__mpi_place;
/* Lock held. Takes the next frame from source (or MPI_ANY_SOURCE) if one is there: 1 with *src,
 * *frame (malloc'd) and *len; 0 if none; MPROC_EPROTO (detail in mproc_last_error()) or
 * MPROC_ENOMEM. Never blocks while no message is there. */
int mproc__mpi_try_recv(int source, int *src, uint8_t **frame, size_t *len);
/* Where a big frame is received instead of a malloc'd buffer (mproc__mpi_try_recv_into): asked,
 * lock held, when the first message of a split frame that is not a placed RESULT (first,
 * first_len bytes: its header and leading bytes) announces want bytes. place answers a buffer
 * of want bytes that the caller owns, or NULL for a malloc'd frame as usual; the transport
 * copies the first bytes to its start and receives the rest after them. If that fails, drop
 * is called and the frame is not handed out. */
typedef struct mproc__mpi_home {
    uint8_t *(*place)(void *ctx, const uint8_t *first, size_t first_len, size_t want);
    void (*drop)(void *ctx);
    void *ctx;
} mproc__mpi_home;
/* As mproc__mpi_try_recv; home (may be NULL) may give a big frame its place: then *frame is
 * there and is not malloc'd. */
int mproc__mpi_try_recv_into(int source, int *src, uint8_t **frame, size_t *len, const mproc__mpi_home *home);

/* Copies bytes [off, off+len) of the iovecs' concatenation into out. */
void mproc__mpi_iov_copy(const struct iovec *iov, int iovcnt, size_t off, uint8_t *out,
                         size_t len);
/* Lock held. Hands every frame that is waiting to sink; returns how many there were. A frame
 * that cannot be received or decoded is fatal (mproc__mpi_fatal). */
int mproc__mpi_drain(mproc__mpi_sink sink);
/* Lock held. Enters a barrier on our communicator and waits for every rank, handing frames that
 * arrive meanwhile to sink: afterwards nothing of mproc's is in flight. */
void mproc__mpi_quiesce(mproc__mpi_sink sink);
/* A sink that drops frames. */
void mproc__mpi_discard(int src, uint8_t *frame, size_t len);

/* PROC_STARTED payload: i32 status (0 or MPROC_E*), u32 pid, then an error message. Also sent
 * once by every worker rank at start with id 0, to tell the master its pid. */
#define MPROC__MPI_STARTED_MIN 8u
/* PROC_START payload: u32 task id, u32 name length, the name, then the argument bytes. */
#define MPROC__MPI_START_PREFIX 8u

#endif /* MPROC_MPI_TRANSPORT_H */
