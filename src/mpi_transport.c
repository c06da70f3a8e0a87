/* mpi_transport.c - the MPI backend's transport, used by the master (backend_mpi.c) and the
 * worker ranks (mpi_rank.c) alike: frames as MPI messages, the idle backoff, fatal errors.
 *
 * A small frame is packed into one MPI_BYTE message; a big one goes as its 24-byte header and
 * then its payload in pieces sent straight from the caller's iovecs (an hindexed datatype, no
 * copy). Every send is nonblocking and its wait keeps receiving: two ranks that send each other
 * big frames at once would otherwise both wait for a receive that never comes. Nothing here
 * blocks while idle: Open MPI's blocking calls spin a core, so waits poll and back off.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mpi_internal.h"
#include "wire.h"

mproc__mpi_world mproc__mpi = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---------------------------------------------------------------------------------------------
 * Fatal errors and backoff.
 * ------------------------------------------------------------------------------------------- */

_Noreturn void mproc__mpi_fatal(const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mproc: %s\n", msg);
    fflush(NULL);
    /* The whole job goes: a lost frame would otherwise leave some rank waiting forever. */
    MPI_Abort(mproc__mpi.size > 0 ? mproc__mpi.comm : MPI_COMM_WORLD, 1);
    _exit(1);
}

void mproc__mpi_ok(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    mproc__mpi_fatal("rank %d: %s failed: %s", mproc__mpi.rank, what, text);
}

static long xcap = -1, xspin = -1, xstart = -1;
void mproc__mpi_backoff_init(mproc__backoff *b, long cap_ns) {
    if (xcap < 0) {
        const char *s = getenv("XCAP"); xcap = s ? atol(s) * 1000 : 0;
        s = getenv("XSPIN"); xspin = s ? atol(s) : 16;
        s = getenv("XSTART"); xstart = s ? atol(s) * 1000: 2000;
    }
    b->polls = 0;
    b->ns = 0;
    b->cap_ns = xcap > 0 && cap_ns == MPROC__MPI_IDLE_CAP_NS ? xcap : cap_ns;
}

void mproc__mpi_backoff_wait(mproc__backoff *b, double deadline) {
    /* A reply often follows within microseconds (an eager message already in flight): poll a
     * few times before paying for a sleep. The lock is dropped so other threads get a turn. */
    if (b->polls < (unsigned)xspin) {
        b->polls++;
        pthread_mutex_unlock(&mproc__mpi.lock);
        pthread_mutex_lock(&mproc__mpi.lock);
        return;
    }
    b->ns = b->ns ? b->ns * 2 : xstart;
    if (b->ns > b->cap_ns) b->ns = b->cap_ns;
    long ns = b->ns;
    if (deadline >= 0) {
        double left = mproc__remaining(deadline);
        if (left <= 0) return;
        if (left * 1e9 < (double)ns) ns = (long)(left * 1e9) + 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ns;
    while (ts.tv_nsec >= 1000000000L) {
        ts.tv_nsec -= 1000000000L;
        ts.tv_sec++;
    }
    pthread_cond_timedwait(&mproc__mpi.cv, &mproc__mpi.lock, &ts);
}

/* ---------------------------------------------------------------------------------------------
 * Transport: frames as MPI messages.
 * ------------------------------------------------------------------------------------------- */

void mproc__mpi_iov_copy(const struct iovec *iov, int iovcnt, size_t off, uint8_t *out, size_t len) {
    for (int i = 0; i < iovcnt && len > 0; i++) {
        size_t n = iov[i].iov_len;
        if (off >= n) {
            off -= n;
            continue;
        }
        size_t take = n - off < len ? n - off : len;
        memcpy(out, (const uint8_t *)iov[i].iov_base + off, take);
        out += take;
        len -= take;
        off = 0;
    }
}

/* An hindexed datatype over bytes [off, off+len) of the iovecs, at absolute addresses (send it
 * from MPI_BOTTOM): MPI gathers straight from the caller's buffers. len <= MPROC__MPI_PIECE. */
static int iov_type(const struct iovec *iov, int iovcnt, size_t off, size_t len,
                    MPI_Datatype *type) {
    int *lens = malloc((size_t)iovcnt * sizeof *lens);
    MPI_Aint *disp = malloc((size_t)iovcnt * sizeof *disp);
    int nb = 0;
    if (!lens || !disp) {
        free(lens);
        free(disp);
        return mproc__error(MPROC_ENOMEM, "mpi: out of memory describing a %zu-byte frame", len);
    }
    for (int i = 0; i < iovcnt && len > 0; i++) {
        size_t n = iov[i].iov_len;
        if (off >= n) {
            off -= n;
            continue;
        }
        size_t take = n - off < len ? n - off : len;
        mproc__mpi_ok(MPI_Get_address((const uint8_t *)iov[i].iov_base + off, &disp[nb]),
                      "MPI_Get_address");
        lens[nb++] = (int)take;
        len -= take;
        off = 0;
    }
    mproc__mpi_ok(MPI_Type_create_hindexed(nb, lens, disp, MPI_BYTE, type),
                  "MPI_Type_create_hindexed");
    mproc__mpi_ok(MPI_Type_commit(type), "MPI_Type_commit");
    free(lens);
    free(disp);
    return 0;
}

int mproc__mpi_drain(mproc__mpi_sink sink) {
    int got = 0;
    for (;;) {
        int src = -1;
        uint8_t *f = NULL;
        size_t len = 0;
        int rc = mproc__mpi_try_recv(MPI_ANY_SOURCE, &src, &f, &len);
        if (rc == 0) return got;
        if (rc < 0) mproc__mpi_fatal("rank %d: %s", mproc__mpi.rank, mproc_last_error());
        sink(src, f, len);
        got++;
    }
}

/* Waits for n send requests, receiving meanwhile (see mproc__mpi_send_frame). Lock held. */
static void wait_sends(MPI_Request *req, int n, mproc__mpi_sink sink) {
    int idx[8];
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_SEND_CAP_NS);
    for (;;) {
        int done = 0;
        /* Testsome over at most 8 at a time: the indices array stays on the stack. */
        int base = 0;
        while (base < n && req[base] == MPI_REQUEST_NULL) base++;
        if (base == n) return;
        int cnt = n - base < 8 ? n - base : 8;
        mproc__mpi_ok(MPI_Testsome(cnt, req + base, &done, idx, MPI_STATUSES_IGNORE),
                      "MPI_Testsome");
        int moved = done > 0 && done != MPI_UNDEFINED;
        if (mproc__mpi_drain(sink) > 0) moved = 1;
        if (moved) {
            mproc__mpi_backoff_init(&bo, MPROC__MPI_SEND_CAP_NS); /* the transfer is moving */
            continue;
        }
        mproc__mpi_backoff_wait(&bo, -1.0);
    }
}

/* Sends a big frame: the header alone, then the payload in pieces straight from the iovecs. */
static int send_split(int dest, const uint8_t hdr[MPROC__WIRE_HDR_SIZE], const struct iovec *iov,
                      int iovcnt, size_t total, mproc__mpi_sink sink) {
    size_t payload = total - MPROC__WIRE_HDR_SIZE;
    int n = 1 + (int)((payload + MPROC__MPI_PIECE - 1) / MPROC__MPI_PIECE);
    MPI_Request *req = malloc((size_t)n * sizeof *req);
    if (!req) return mproc__error(MPROC_ENOMEM, "mpi: out of memory sending %zu bytes", total);
    mproc__mpi_ok(MPI_Isend(hdr, (int)MPROC__WIRE_HDR_SIZE, MPI_BYTE, dest, MPROC__MPI_TAG,
                            mproc__mpi.comm, &req[0]),
                  "MPI_Isend");
    size_t off = MPROC__WIRE_HDR_SIZE;
    for (int i = 1; i < n; i++) {
        size_t len = total - off < MPROC__MPI_PIECE ? total - off : MPROC__MPI_PIECE;
        MPI_Datatype t;
        int rc = iov_type(iov, iovcnt, off, len, &t);
        if (rc < 0) mproc__mpi_fatal("%s", mproc_last_error()); /* header already gone */
        mproc__mpi_ok(MPI_Isend(MPI_BOTTOM, 1, t, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req[i]),
                      "MPI_Isend");
        MPI_Type_free(&t); /* legal with the send pending: MPI keeps it until done */
        off += len;
    }
    wait_sends(req, n, sink);
    free(req);
    return 0;
}

int mproc__mpi_send_frame(int dest, const struct iovec *iov, int iovcnt, mproc__mpi_sink sink) {
    size_t total = mproc__iov_total(iov, iovcnt);
    if (total < MPROC__WIRE_HDR_SIZE)
        return mproc__error(MPROC_EINVAL, "mpi send: a frame of %zu bytes has no header", total);
    if (total - MPROC__WIRE_HDR_SIZE > MPROC__WIRE_MAX_PAYLOAD)
        return mproc__error(MPROC_ETOOBIG, "mpi send: a %zu-byte frame is over the 2 GiB limit",
                            total);
    if (total > MPROC__MPI_PACK_MAX) {
        uint8_t hdr[MPROC__WIRE_HDR_SIZE];
        mproc__mpi_iov_copy(iov, iovcnt, 0, hdr, sizeof hdr);
        return send_split(dest, hdr, iov, iovcnt, total, sink);
    }
    uint8_t *buf = malloc(total);
    if (!buf) return mproc__error(MPROC_ENOMEM, "mpi send: out of memory (%zu bytes)", total);
    mproc__mpi_iov_copy(iov, iovcnt, 0, buf, total);
    MPI_Request req;
    mproc__mpi_ok(MPI_Isend(buf, (int)total, MPI_BYTE, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req),
                  "MPI_Isend");
    wait_sends(&req, 1, sink);
    free(buf);
    return 0;
}

int mproc__mpi_send_hdr(int dest, uint16_t kind, uint64_t id, uint32_t arg, mproc__mpi_sink sink) {
    uint8_t hdr[MPROC__WIRE_HDR_SIZE];
    mproc__hdr_encode(hdr, kind, id, 0, arg);
    struct iovec iov = {hdr, sizeof hdr};
    return mproc__mpi_send_frame(dest, &iov, 1, sink);
}

/* Receives the payload pieces of a split frame from src into buf (header already there). */
static int recv_pieces(int src, uint8_t *buf, size_t payload) {
    size_t off = MPROC__WIRE_HDR_SIZE, end = MPROC__WIRE_HDR_SIZE + payload;
    while (off < end) {
        size_t want = end - off < MPROC__MPI_PIECE ? end - off : MPROC__MPI_PIECE;
        MPI_Message msg;
        MPI_Status st;
        int count = -1;
        /* Blocking is fine here: the sender posted every piece together with the header. */
        mproc__mpi_ok(MPI_Mprobe(src, MPROC__MPI_TAG, mproc__mpi.comm, &msg, &st), "MPI_Mprobe");
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (count < 0 || (size_t)count != want)
            return mproc__error(MPROC_EPROTO,
                                "frame from rank %d: a payload piece of %d bytes, expected %zu",
                                src, count, want);
        mproc__mpi_ok(MPI_Mrecv(buf + off, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv");
        off += want;
    }
    return 0;
}

/* Checks a received first message against its header; grows it for a split frame. */
static int finish_frame(int src, uint8_t **buf, size_t *len) {
    mproc__frame_hdr h;
    if (mproc__hdr_decode(*buf, *len, &h) < 0)
        return mproc__error(MPROC_EPROTO, "bad frame header from rank %d (%zu bytes): %s", src,
                            *len, mproc_last_error());
    size_t want = MPROC__WIRE_HDR_SIZE + (size_t)h.length;
    if (*len == want) return 0;
    if (*len != MPROC__WIRE_HDR_SIZE || h.length == 0)
        return mproc__error(MPROC_EPROTO, "frame from rank %d is %zu bytes, its header says %zu",
                            src, *len, want);
    uint8_t *big = realloc(*buf, want);
    if (!big) return mproc__error(MPROC_ENOMEM, "mpi: out of memory for a %zu-byte frame", want);
    *buf = big;
    *len = want;
    return recv_pieces(src, big, h.length);
}

int mproc__mpi_try_recv(int source, int *src, uint8_t **frame, size_t *len) {
    int flag = 0, count = -1;
    MPI_Message msg;
    MPI_Status st;
    *frame = NULL;
    *len = 0;
    /* Improbe + Mrecv: the message is ours once matched, whatever other threads do. */
    mproc__mpi_ok(MPI_Improbe(source, MPROC__MPI_TAG, mproc__mpi.comm, &flag, &msg, &st),
                  "MPI_Improbe");
    if (!flag) return 0;
    *src = st.MPI_SOURCE;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (count < 0) return mproc__error(MPROC_EPROTO, "a message of unknown size from rank %d", *src);
    uint8_t *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf) return mproc__error(MPROC_ENOMEM, "mpi: out of memory for %d bytes", count);
    mproc__mpi_ok(MPI_Mrecv(buf, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv");
    size_t n = (size_t)count;
    int rc = finish_frame(*src, &buf, &n);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *frame = buf;
    *len = n;
    return 1;
}

/* Waits, receiving and handing incoming frames to sink, until every rank has entered the
 * barrier that ends mproc's traffic: then nothing of ours is left in flight. Lock held. */
void mproc__mpi_quiesce(mproc__mpi_sink sink) {
    MPI_Request req;
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_IDLE_CAP_NS);
    mproc__mpi_ok(MPI_Ibarrier(mproc__mpi.comm, &req), "MPI_Ibarrier");
    for (;;) {
        int flag = 0;
        mproc__mpi_ok(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (flag) return;
        if (mproc__mpi_drain(sink) == 0) mproc__mpi_backoff_wait(&bo, -1.0);
    }
}

void mproc__mpi_discard(int src, uint8_t *frame, size_t len) {
    (void)src;
    (void)len;
    free(frame);
}
