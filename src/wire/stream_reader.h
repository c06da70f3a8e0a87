/* stream_reader.h - assembles whole frames from a byte stream (a socket), through a 64 KiB
 * staging buffer so that one read() usually brings a header, its payload and often the next
 * frame. Headers are validated before any payload memory is allocated; large payloads are read
 * straight into the frame. Used by both ends of the fork backend, and by any backend that moves frames over a
 * stream.
 */
#ifndef MPROC_STREAM_READER_H
#define MPROC_STREAM_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct mproc__reader {
    uint8_t *buf;       /* staging buffer (allocated on first use) */
    size_t off, len;    /* unread bytes are buf[off..len) */
    uint8_t *frame;     /* frame being assembled */
    size_t frame_len, got;
} mproc__reader;

/* Completes the next frame from fd. Returns 1 with *frame (malloc'd; the caller frees it with
 * free()) and *len; 0 when a non-blocking fd has no more bytes for now; MPROC_EOF when the peer
 * closed between frames; MPROC_EPROTO (detail in mproc_last_error(): a malformed header, or a
 * close in the middle of a frame) or MPROC_ENOMEM. A blocking fd blocks until one of these. */
int mproc__reader_next(mproc__reader *r, int fd, uint8_t **frame, size_t *len);
/* Nonzero when bytes are already buffered, so poll() on the fd might not report them. */
int mproc__reader_pending(const mproc__reader *r);
/* Drops buffered bytes and any partial frame; the reader can be reused. */
void mproc__reader_reset(mproc__reader *r);

#endif /* MPROC_STREAM_READER_H */
