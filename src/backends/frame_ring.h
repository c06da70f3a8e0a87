/* frame_ring.h - frames through memory shared by two processes (frame_ring.c): a pair of
 * one-way rings, one toward a worker process and one back, in one memfd mapping.
 *
 * Why: a frame relayed through a socket is copied into the kernel and out again on each hop. A
 * rank that relays a map's chunks to its executor (backends/mpi/exec_give.c) paid four such
 * copies per chunk; through a ring the writer copies the frame once into shared memory and
 * sends only a 24-byte reference frame (MPROC__FRAME_RING: id = its position, arg = its length)
 * on the socket, which still carries everything else, in order. The reader uses the frame in
 * place and releases it when done.
 *
 * Each ring has one writer and one releaser. Positions count bytes ever reserved (they never
 * wrap; the ring's offset is position % size). A frame never straddles the end: the writer
 * skips to the start, and a release of a frame also releases the skip before it, so releases
 * must come in the order of the frames (the releaser keeps them in order if its uses end out
 * of order). A frame that does not fit goes through the socket instead: a writer never waits
 * for room. Nothing read from the shared control words or the references is trusted beyond
 * the mapping's bounds: a process can only spoil frames of its own.
 */
#ifndef MPROC_FRAME_RING_H
#define MPROC_FRAME_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/frame_mailbox.h"

/* The control words of one ring, in the shared mapping: a cache line each. */
typedef struct mproc__ring_ctl {
    _Atomic uint64_t head; /* written by the writer: end of the last frame published */
    uint32_t keep_pages;   /* set by the maker before the other side maps it: never trim */
    char pad0[64 - sizeof(uint64_t) - sizeof(uint32_t)];
    _Atomic uint64_t tail; /* written by the releaser: everything before it is free again */
    char pad1[64 - sizeof(uint64_t)];
} mproc__ring_ctl;
_Static_assert(sizeof(mproc__ring_ctl) == 128 && offsetof(mproc__ring_ctl, tail) == 64, "a cache line each");

typedef struct mproc__ring {
    mproc__ring_ctl *ctl;
    mproc__mailbox *mail; /* its mailbox (frame_mailbox.h), in the same control page */
    uint8_t *data;
    size_t size;
    /* The writer's, for the trim (mproc__ring_reserve): how far into data its frames have
     * reached since the last trim, how many frames in a row stayed within MPROC__RING_KEEP,
     * and whether this ring is never trimmed (mproc__ring_keep_pages). */
    size_t touched;
    uint32_t small_run;
    int keep_pages;
} mproc__ring;

/* Both rings of one worker: down (to the worker) and up (from it), in one mapping. */
typedef struct mproc__ring_pair {
    void *base;
    size_t map_len;
    mproc__ring down, up;
} mproc__ring_pair;

/* What a ring keeps in memory for good: a stream of chunks cycles through its first few
 * hundred KiB; pages past this are given back once the frames that reached them are released
 * and MPROC__RING_TRIM_AFTER frames in a row have stayed below it (so that big and small
 * frames taking turns do not give pages back and fault them in again each time). */
#define MPROC__RING_KEEP ((size_t)4 << 20)
#define MPROC__RING_TRIM_AFTER 64u

/* Smallest frame worth a ring: below it the socket's copy costs no more than ours. */
#define MPROC__RING_MIN_FRAME 512u

/* Sizes the empty memfd for two rings of ring_size bytes each (a multiple of 4096, 64 KiB to
 * 1 GiB) and maps them into *p. The caller makes the memfd (backends/spawn.h: one that no
 * other child inherits). 0, or an error. */
int mproc__ring_pair_create(int memfd, size_t ring_size, mproc__ring_pair *p);
/* The maker, before the other side maps the pair: r's writer never gives its pages back. For a
 * ring whose reader hands its frames to MPI in place (an executor's up ring): an MPI that caches
 * memory registrations learns of a trim only from its own process, not from the writer's. */
void mproc__ring_keep_pages(mproc__ring *r);
/* Maps a pair made by mproc__ring_pair_create from its memfd (the worker's side). 0 or an error. */
int mproc__ring_pair_map(int memfd, mproc__ring_pair *p);
void mproc__ring_pair_unmap(mproc__ring_pair *p);

/* The size of each ring for one of `workers` workers: from the environment variable env
 * (bytes, 0 = no rings), else 512 MiB shared among the workers, 256 KiB..32 MiB each, so that
 * frames up to half a ring (16 MiB with up to 16 workers: 8 MiB blobs) skip the socket's two
 * copies. That is address space more than memory: a page is memory only once a frame reached
 * it, and a writer gives back what lies past the first MPROC__RING_KEEP bytes once frames have
 * stayed below it for a while (the trim in mproc__ring_reserve). 0, or MPROC_EINVAL. */
int mproc__ring_size_wanted(const char *env, int workers, size_t *size);

/* Writer: copies the frame (iovecs, total bytes) into r: 1 with its *pos, or 0 when it does not
 * fit now (send it another way). */
int mproc__ring_put(mproc__ring *r, const struct iovec *iov, int iovcnt, size_t total, uint64_t *pos);
/* Writer: room for a frame of total bytes that the caller fills itself before it sends the
 * frame's reference (a receive straight into the ring): where it goes, with its *pos, or NULL
 * when it does not fit now. The reader only ever looks where a reference points, so the frame
 * may be written after this returns; room reserved and never referenced is freed with the
 * next frame released after it. */
uint8_t *mproc__ring_reserve(mproc__ring *r, size_t total, uint64_t *pos);
/* Writer, idle (nothing to send for a while): gives back at once what lies past
 * MPROC__RING_KEEP if no frame lies there (the wait for MPROC__RING_TRIM_AFTER frames is for a
 * writer still sending). 1 when pages there remain to give back (a frame the reader has not
 * released yet lies there: try again later), else 0. */
int mproc__ring_trim_idle(mproc__ring *r);
/* Reader of a ring whose writer keeps its pages (mproc__ring_keep_pages), at a moment the
 * caller knows the writer is writing nothing (it writes only in answer to what the caller hands
 * it, and owes nothing): once every frame is released, gives back what lies past
 * MPROC__RING_KEEP from this process, where an MPI that cached the pages learns of it. 1 while a
 * frame is not released yet (try again later), else 0. */
int mproc__ring_trim_quiet(mproc__ring *r);
/* Reader: the frame at pos of len bytes, or NULL when that is not inside the ring. */
uint8_t *mproc__ring_at(const mproc__ring *r, uint64_t pos, size_t len);
/* Where the frame at pos of len bytes ends (what releasing it up to its end means). */
uint64_t mproc__ring_end(uint64_t pos, size_t len);
/* Releaser: every frame before end is free again (frames are released in their order). */
void mproc__ring_release_to(mproc__ring *r, uint64_t end);

/* Reader of an untrusted writer: the frame a reference frame (ref, a whole RING header) names,
 * checked - the next in order (at or after *next, less than a lap on), inside the ring, a frame
 * header that decodes and whose length matches - with *len, and *next moved to its end (what
 * releasing it means); or NULL. */
uint8_t *mproc__ring_resolve(const mproc__ring *r, const uint8_t *ref, uint64_t *next, size_t *len);

/* The reference frame for a frame at pos of len bytes (a 24-byte header, kind RING). */
void mproc__ring_ref_encode(uint8_t out[24], uint64_t pos, size_t len);

#endif /* MPROC_FRAME_RING_H */
