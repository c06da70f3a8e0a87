/* frame_mailbox.h - a mailbox of a few frames beside each frame ring (frame_ring.h), so that a
 * frame can pass between a process and its worker with no system call while the reader is awake.
 *
 * Why: an MPI rank relays each task to its executor and each reply back. Over the socket that
 * is a send() and a read() each way and, on a busy node, a wake-up of whoever sleeps in poll():
 * a blocking call one at a time took 15-25 us against 2-3 us with tasks run inside the rank. A
 * hand-written relay through shared memory words takes 3.3-4.8 us on the same machine. A fork
 * pool's master and workers use them the same way (fork/backend.c posts, fork/receive.c takes): its blocking call took
 * 7-8 us against 2-3 us for a pipe ping-pong whose ends look before they sleep.
 *
 * How: the writer puts the frame into its ring as before and, instead of sending the frame's
 * reference on the socket, writes it into the mailbox - only while the reader says it is awake
 * (it looks without sleeping), the frame's slot is free (the reader took the frame that was
 * there) and nothing the writer sent earlier is still queued for the socket. Every frame, by
 * mailbox or socket, has a number n (frames sent before it) and, in the mailbox, the slot
 * n % MPROC__MAIL_SLOTS, which carries its number: the reader, which counts what it took, knows
 * whether the next frame is in its slot or on the socket, so order is kept without a lock.
 * Several slots, not one: a pool keeps each worker 2-3 frames deep, and with one slot every
 * frame after the first of a burst went by socket (a map's chunks took the socket 9 times in
 * 10 on one rank of two). A reader that goes to sleep says so first and looks once more; a
 * writer that posts looks at that word afterwards and, if the reader may sleep, sends a WAKE
 * frame on the socket (wire.h), which the reader skips. Both are sequentially consistent, so
 * one of the two always sees the other: no post is ever left unseen by a sleeper.
 *
 * A frame read from the socket is the next one only if the mailbox does not hold the next
 * number when looked at after the read: between a reader's look at the mailbox and its read,
 * the writer may post frame n (and more) and send a later one by socket. Then the mailbox's
 * frames come first and the socket's is held: every later take looks in the mailbox before it
 * hands out the held frame. (A rank that read the socket whenever it was readable lost one
 * reply in about 100,000 so.)
 *
 * Nothing read from the other side's words is trusted: a number that does not fit only makes
 * the reader look at the socket, and the reference goes through mproc__ring_resolve like one
 * read from the socket.
 */
#ifndef MPROC_FRAME_MAILBOX_H
#define MPROC_FRAME_MAILBOX_H

#include <stdatomic.h>
#include <stdint.h>

#define MPROC__MAIL_SLOTS 16

/* One posted frame's reference; written by the writer only. */
typedef struct mproc__mail_slot {
    _Atomic uint64_t seq; /* the frame's number + 1 (0: nothing posted here yet) */
    uint64_t pos;         /* its place in the ring */
    uint32_t len;         /* its length */
    char pad[32 - 20];
} mproc__mail_slot;

typedef struct mproc__mailbox {
    /* Written by the writer (and `on` once by the maker of the rings, before either side uses
     * them). */
    _Atomic uint32_t on;     /* both ends speak this protocol */
    uint32_t pad0;
    _Atomic uint64_t posted; /* frames sent so far, by socket or mailbox */
    char pad1[64 - 16];
    mproc__mail_slot slot[MPROC__MAIL_SLOTS];
    /* Written by the reader: cache lines of its own. */
    _Atomic uint64_t taken[MPROC__MAIL_SLOTS]; /* the seq of the last frame taken from each slot */
    _Atomic uint32_t awake;  /* the reader looks for frames without sleeping */
    char pad2[64 - 4];
} mproc__mailbox;

/* The maker of the rings: both ends will use the mailbox (before either uses the rings). */
void mproc__mail_enable(mproc__mailbox *m);
int mproc__mail_on(const mproc__mailbox *m);

/* Writer, having sent n frames: 1 when frame n posted now would be seen without a wake-up: on,
 * the reader awake, its slot free. */
int mproc__mail_ready(const mproc__mailbox *m, uint64_t n);
/* Posts frame number n (frames sent before it), at pos of len bytes in the ring. 1 when the
 * reader was still awake afterwards, 0 when it may sleep: then the caller sends it a WAKE on
 * the socket. */
int mproc__mail_post(mproc__mailbox *m, uint64_t n, uint64_t pos, uint32_t len);
/* Writer: `sent` frames have gone so far (one went by socket). */
void mproc__mail_count(mproc__mailbox *m, uint64_t sent);

/* Reader, having taken n frames: 1 with the reference of frame n when it is in the mailbox
 * (its slot is then free again), else 0 (the next frame, if any, is on the socket or held).
 * Look again after reading a frame from the socket, and before handing out a held one (above). */
int mproc__mail_take(mproc__mailbox *m, uint64_t n, uint64_t *pos, uint32_t *len);
/* Reader: 1 when the writer says more than n frames were sent (a hint, never trusted). */
int mproc__mail_more(const mproc__mailbox *m, uint64_t n);
/* Reader: awake (looking without sleeping) or not. Say 0 before sleeping, then look again
 * (mproc__mail_more) before the sleep. */
void mproc__mail_awake(mproc__mailbox *m, int awake);

#endif /* MPROC_FRAME_MAILBOX_H */
