/* wire.h - the frames that travel between master and workers, on every backend.
 *
 * A frame is a fixed 24-byte header followed by `length` payload bytes. All integers are
 * little-endian on the wire whatever the host, written and read byte by byte (no struct
 * overlays, no alignment assumptions). Decoders never trust a peer: every count and length is
 * checked against the bytes actually present, with overflow-safe arithmetic, and anything
 * inconsistent is MPROC_EPROTO with a sentence in mproc_last_error().
 *
 * Header (24 bytes):
 *   off 0  u32 magic    MPROC__WIRE_MAGIC ("MPRC" as bytes 'M','P','R','C' -> 0x4352504D LE)
 *   off 4  u16 version  MPROC__WIRE_VERSION
 *   off 6  u16 kind     enum mproc__frame_kind
 *   off 8  u64 id       request id chosen by the master; a reply carries the request's id
 *   off 16 u32 length   payload bytes that follow (<= MPROC__WIRE_MAX_PAYLOAD)
 *   off 20 u32 arg      kind-specific small value (see each kind)
 *
 * Payloads:
 *   TASK / INIT (master -> worker; arg = task id, the index in the sorted task table):
 *     u32 count        items in this batch (>= 1, <= MPROC__WIRE_MAX_ITEMS)
 *     u32 item_size    bytes per item; 0 = variable-length items
 *     if item_size == 0: u32 lens[count]
 *     data             count*item_size bytes, or sum(lens) bytes, exactly to the payload's end
 *   RESULT / INIT_RESULT (worker -> master; arg = 0):
 *     u32 count        items (equals the request's count)
 *     u32 item_size    nonzero: every item succeeded and has exactly item_size bytes; the data
 *                      (count*item_size bytes) follows to the payload's end
 *                      zero: a table follows: count x { i32 status, u32 len }, then the blobs
 *                      in order, exactly to the payload's end. status 0: blob is the result;
 *                      status < 0: an MPROC_E* code and the blob is the error message (not
 *                      NUL-terminated on the wire)
 *     or empty (length 0): the TASK was skipped unrun (its call was cancelled; backend.h's
 *     skip), and the master drops the reply
 *   SHUTDOWN (master -> worker): empty; the worker finishes and exits.
 *   HELLO (worker -> master, once at start; arg = worker index or rank):
 *     u64 fingerprint of the task table, u32 task count
 *   BATCH (either way; arg = number of sub-frames): whole TASK frames (master -> worker) or
 *     RESULT frames (worker -> master), each a complete frame with its own header and id,
 *     each followed by zero bytes up to a multiple of 8 so the next one stays aligned. Never
 *     nested. The reply to a BATCH of TASKs is one BATCH of their RESULTs, in the same order.
 *   Kinds PROC_* are for the MPI backend's Process support; their payload is theirs to define
 *   and decode with the helpers below.
 */
#ifndef MPROC_WIRE_H
#define MPROC_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define MPROC__WIRE_MAGIC 0x4352504Du /* bytes "MPRC" read as little-endian u32 */
#define MPROC__WIRE_VERSION 1u
#define MPROC__WIRE_HDR_SIZE 24u
/* 2 GiB, so a length is a u32 with room to spare. Not an MPI int count (INT_MAX is 2 GiB - 1):
 * the MPI transport sends big frames in 8 MiB pieces, so no single count comes near it. */
#define MPROC__WIRE_MAX_PAYLOAD (1u << 31)
#define MPROC__WIRE_MAX_ITEMS (1u << 26)
#define MPROC__WIRE_TASK_PREFIX 8u   /* count + item_size */
#define MPROC__WIRE_RESULT_PREFIX 8u /* count + item_size */
#define MPROC__WIRE_RESULT_ENTRY 8u  /* status + len */

typedef enum mproc__frame_kind {
    MPROC__FRAME_TASK = 1,
    MPROC__FRAME_RESULT = 2,
    MPROC__FRAME_INIT = 3,
    MPROC__FRAME_INIT_RESULT = 4,
    MPROC__FRAME_SHUTDOWN = 5,
    MPROC__FRAME_HELLO = 6,
    MPROC__FRAME_PROC_START = 7,
    MPROC__FRAME_PROC_STARTED = 8,
    MPROC__FRAME_PROC_EXIT = 9,
    MPROC__FRAME_PROC_SIGNAL = 10,
    MPROC__FRAME_BATCH = 11,
    /* Between the MPI master and a worker rank that runs its tasks in an executor process
     * (backends/mpi/executor.h says what each carries). */
    MPROC__FRAME_EXEC_DIED = 12,
    MPROC__FRAME_EXEC_STARTED = 13,
    MPROC__FRAME_EXEC_KILL = 14,
    MPROC__FRAME_EXEC_RESTART = 15,
    MPROC__FRAME_EXEC_DROPPED = 16,
    /* The MPI master asks a silent worker rank whether it is there (watchdog.c); it answers. */
    MPROC__FRAME_PING = 17,
    MPROC__FRAME_PONG = 18,
    /* The MPI master tells each worker rank its pid (arg) and its pid namespace (id: the
     * namespace's inode), so a rank on its node, in its namespace, can tell when it is gone. */
    MPROC__FRAME_MASTER_INFO = 19,
    /* Between a process and a worker it shares frame rings with (backends/frame_ring.h): the
     * frame is in the ring at position id, arg bytes long. Never sent over MPI. */
    MPROC__FRAME_RING = 20,
    /* Between the same two: nothing to do but look in the mailbox (backends/frame_mailbox.h),
     * sent when its reader may have gone to sleep as a frame was posted there. Not counted as
     * a frame; never sent over MPI. */
    MPROC__FRAME_WAKE = 21,
    /* The MPI master tells a worker rank that runs its tasks itself its worker number in the
     * pool now starting (arg; mproc_current_index). Executors learn theirs from EXEC_RESTART. */
    MPROC__FRAME_WORKER_INDEX = 22,
    /* The MPI master tells a worker rank that the TASK or BATCH frame id (executor index in its
     * top byte, as sent) holds only cancelled calls' chunks: if not started yet, each of its
     * tasks is answered with an empty RESULT (backend.h's skip). Header only. */
    MPROC__FRAME_SKIP = 23,
    MPROC__FRAME_KIND_MAX = 23
} mproc__frame_kind;

typedef struct mproc__frame_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;
    uint64_t id;
    uint32_t length;
    uint32_t arg;
} mproc__frame_hdr;

/* Little-endian helpers for any unaligned pointer. */
void mproc__put_u16(uint8_t *p, uint16_t v);
void mproc__put_u32(uint8_t *p, uint32_t v);
void mproc__put_u64(uint8_t *p, uint64_t v);
uint16_t mproc__get_u16(const uint8_t *p);
uint32_t mproc__get_u32(const uint8_t *p);
uint64_t mproc__get_u64(const uint8_t *p);

/* Fills magic and version and writes the 24 header bytes. */
void mproc__hdr_encode(uint8_t out[MPROC__WIRE_HDR_SIZE], uint16_t kind, uint64_t id,
                       uint32_t length, uint32_t arg);
/* Decodes and validates a header from len bytes (len < 24 is EPROTO): magic, version, kind in
 * 1..KIND_MAX, length <= MPROC__WIRE_MAX_PAYLOAD. 0 or MPROC_EPROTO; *h cleared on failure. */
int mproc__hdr_decode(const uint8_t *buf, size_t len, mproc__frame_hdr *h);
/* One field of a header already known to be whole (at least MPROC__WIRE_HDR_SIZE bytes, from
 * a peer whose frames were checked on arrival): no validation, for the hot paths. */
uint16_t mproc__hdr_kind(const uint8_t *frame);
uint64_t mproc__hdr_id(const uint8_t *frame);
uint32_t mproc__hdr_arg(const uint8_t *frame);

/* HELLO payload: the worker's task table, so the master can refuse a worker built otherwise. */
#define MPROC__WIRE_HELLO_SIZE 12u
void mproc__hello_encode(uint8_t out[MPROC__WIRE_HELLO_SIZE], uint64_t fingerprint, uint32_t tasks);
/* 0 with the fields, or MPROC_EPROTO when the payload is not len == MPROC__WIRE_HELLO_SIZE. */
int mproc__hello_decode(const uint8_t *payload, size_t len, uint64_t *fingerprint, uint32_t *tasks);

/* A decoded batch of items (TASK/INIT payloads), pointing into the payload (borrowed). */
typedef struct mproc__items {
    uint32_t count;
    uint32_t item_size;   /* 0 = variable */
    const uint8_t *lens;  /* variable: count little-endian u32 lengths; else NULL */
    const uint8_t *data;  /* first item */
    size_t data_len;
} mproc__items;

/* Validates a TASK/INIT payload. 0 or MPROC_EPROTO. */
int mproc__items_decode(const uint8_t *payload, size_t len, mproc__items *out);
/* Walks the items in order: *cursor starts at 0 and is advanced by the call; returns the item
 * (pointer and length) for index i. Call with i = 0, 1, ... count-1 in order. Valid only after
 * mproc__items_decode succeeded. */
const uint8_t *mproc__items_next(const mproc__items *it, uint32_t i, size_t *cursor,
                                 size_t *item_len);

/* Bytes of the padded length table for count variable-length items. */
size_t mproc__wire_lens_size(uint32_t count);

/* Writes the TASK/INIT payload prefix (8 bytes) for count items. */
void mproc__task_prefix_encode(uint8_t out[MPROC__WIRE_TASK_PREFIX], uint32_t count,
                               uint32_t item_size);

/* A decoded RESULT/INIT_RESULT payload (borrowed pointers into the payload). */
typedef struct mproc__results {
    uint32_t count;
    uint32_t item_size;   /* nonzero: all ok, packed */
    const uint8_t *table; /* item_size == 0: count entries of {i32 status, u32 len}; else NULL */
    const uint8_t *data;
    size_t data_len;
} mproc__results;

/* Validates a RESULT/INIT_RESULT payload; every status must be 0 or a known negative MPROC_E*
 * code. 0 or MPROC_EPROTO. */
int mproc__results_decode(const uint8_t *payload, size_t len, mproc__results *out);
/* Item i in order (same cursor protocol as mproc__items_next): returns the blob and sets
 * *status (0 or MPROC_E*) and *blob_len. */
const uint8_t *mproc__results_next(const mproc__results *r, uint32_t i, size_t *cursor,
                                   int *status, size_t *blob_len);

/* Builds result payloads in the worker: a growable buffer that starts with room for the frame
 * header, so the finished frame goes out in one write. */
typedef struct mproc__rbuf {
    uint8_t *buf;
    size_t len;
    size_t cap;
} mproc__rbuf;

/* Ensures room for extra more bytes; returns a pointer to buf+len (not advanced), NULL on ENOMEM. */
uint8_t *mproc__rbuf_reserve(mproc__rbuf *b, size_t extra);
int mproc__rbuf_append(mproc__rbuf *b, const void *data, size_t len);
void mproc__rbuf_free(mproc__rbuf *b);

/* Walks the sub-frames of a BATCH payload of len bytes; *cursor starts at 0. Returns 1 with
 * the sub-frame (header included, borrowed), its length and decoded header; 0 at the end; or
 * MPROC_EPROTO for a bad sub-header, a nested BATCH, a length past the end or non-zero
 * padding. */
int mproc__batch_next(const uint8_t *payload, size_t len, size_t *cursor, mproc__frame_hdr *h,
                      const uint8_t **sub, size_t *sub_len);
/* A sub-frame of n bytes plus its padding. */
size_t mproc__batch_padded(size_t n);

/* Total bytes described by an iovec array, saturating at SIZE_MAX. */
size_t mproc__iov_total(const struct iovec *iov, int iovcnt);

#endif /* MPROC_WIRE_H */
