/* stream_reader.c - whole frames out of a byte stream (see stream_reader.h).
 *
 * Small frames are copied out of the staging buffer (one read serves several frames); a frame
 * whose remaining payload is at least a buffer's worth is read directly into its own memory,
 * so large payloads are not copied twice. A header is checked (magic, version, kind, length
 * limit) before its payload is allocated, so a hostile length never turns into a huge malloc.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/stream_reader.h"
#include "common/common.h"
#include "wire/wire.h"

#define READER_BUF (64u * 1024u)

int mproc__reader_pending(const mproc__reader *r) { return r->len > r->off; }

void mproc__reader_reset(mproc__reader *r) {
    free(r->buf);
    free(r->frame);
    memset(r, 0, sizeof *r);
}

/* Moves buffered bytes into the frame in progress, or starts one from a buffered header.
 * Returns 1 when a frame is complete, 0 when more bytes are needed, or an error. */
static int take_buffered(mproc__reader *r) {
    size_t avail = r->len - r->off;
    if (!r->frame) {
        if (avail < MPROC__WIRE_HDR_SIZE) return 0;
        mproc__frame_hdr h;
        if (mproc__hdr_decode(r->buf + r->off, avail, &h) < 0) {
            char why[200];
            snprintf(why, sizeof why, "%s", mproc_last_error());
            return mproc__error(MPROC_EPROTO, "sent a malformed frame (%s)", why);
        }
        r->frame_len = MPROC__WIRE_HDR_SIZE + (size_t)h.length;
        r->frame = malloc(r->frame_len);
        if (!r->frame)
            return mproc__error(MPROC_ENOMEM, "no memory for a %zu-byte frame", r->frame_len);
        r->got = 0;
    }
    size_t n = r->frame_len - r->got;
    if (n > avail) n = avail;
    memcpy(r->frame + r->got, r->buf + r->off, n);
    r->got += n;
    r->off += n;
    if (r->off == r->len) r->off = r->len = 0;
    return r->got == r->frame_len;
}

/* One read(): into the frame when its rest is big, else into the staging buffer. */
static int fill(mproc__reader *r, int fd) {
    uint8_t *dst;
    size_t want;
    if (r->frame && r->frame_len - r->got >= READER_BUF) {
        dst = r->frame + r->got;
        want = r->frame_len - r->got;
    } else {
        if (!r->buf && !(r->buf = malloc(READER_BUF)))
            return mproc__error(MPROC_ENOMEM, "no memory for a read buffer");
        if (r->off > 0) {
            memmove(r->buf, r->buf + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        dst = r->buf + r->len;
        want = READER_BUF - r->len;
    }
    ssize_t got;
    do got = read(fd, dst, want);
    while (got < 0 && errno == EINTR);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (got <= 0) {
        if (r->frame || r->len > r->off)
            return mproc__error(MPROC_EPROTO, "closed its channel mid-frame");
        return MPROC_EOF;
    }
    if (dst == r->buf + r->len) r->len += (size_t)got;
    else r->got += (size_t)got;
    return 1;
}

int mproc__reader_next(mproc__reader *r, int fd, uint8_t **frame, size_t *len) {
    for (;;) {
        int rc = take_buffered(r);
        if (rc == 0 && r->frame && r->got == r->frame_len) rc = 1;
        if (rc == 1) {
            *frame = r->frame;
            *len = r->frame_len;
            r->frame = NULL;
            r->frame_len = r->got = 0;
            return 1;
        }
        if (rc < 0) return rc;
        if ((rc = fill(r, fd)) <= 0) return rc;
    }
}
