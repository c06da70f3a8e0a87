/* transport.c - the MPI backend's transport, used by the master and the worker ranks alike:
 * frames as MPI messages.
 *
 * A small frame is packed into one MPI_BYTE message whose send is left in flight (the sender
 * goes on; the copy is freed when MPI is done). A big one goes as its 24-byte header and then
 * its payload in pieces sent straight from the caller's iovecs (no copy); that send is either
 * retained (left in flight on the caller's promise to keep its buffer) or waited for,
 * receiving meanwhile: two ranks that send each other big frames at once would otherwise both
 * wait for a receive that never comes. Nothing here blocks while idle: Open MPI's blocking
 * calls spin a core, so waits poll and back off (wait.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "backends/mpi/sends_in_flight.h"
#include "backends/mpi/transport.h"
#include "wire/wire.h"

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
        if (rc < 0) {
            if (mproc__mpi.rank == 0) mproc__mpi_fatal("master: %s", mproc_last_error());
            mproc__mpi_fatal("worker rank %d: %s", mproc__mpi.rank, mproc_last_error());
        }
        sink(src, f, len);
        got++;
    }
}

/* Waits for n send requests, receiving meanwhile (see mproc__mpi_send_frame). Lock held.
 * For `spin` seconds it polls without sleeping: a large message over shared memory moves in
 * fragments that each need this side's progress, so a sleeping sender stretches an 8 MiB
 * transfer from milliseconds to tens of them. Past that (a receiver busy in a task) it backs
 * off as usual, so a master never spins on a busy worker for long. */
static void wait_sends(int dest, MPI_Request *req, int n, mproc__mpi_sink sink, double spin) {
    int idx[8];
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_SEND_CAP_NS);
    double spin_until = spin > 0 ? mproc__now() + spin : 0;
    for (;;) {
        int done = 0;
        /* Testsome over at most 8 at a time: the indices array stays on the stack. */
        int base = 0;
        while (base < n && req[base] == MPI_REQUEST_NULL) base++;
        if (base == n) return;
        if (mproc__mpi_is_gone(dest)) { /* never coming: the buffers are the caller's again */
            for (int i = base; i < n; i++)
                if (req[i] != MPI_REQUEST_NULL) MPI_Request_free(&req[i]);
            return;
        }
        if (mproc__mpi.watchdog) mproc__mpi.watchdog();
        int cnt = n - base < 8 ? n - base : 8;
        mproc__mpi_ok(MPI_Testsome(cnt, req + base, &done, idx, MPI_STATUSES_IGNORE),
                      "MPI_Testsome");
        int moved = done > 0 && done != MPI_UNDEFINED;
        if (mproc__mpi_drain(sink) > 0) moved = 1;
        if (moved) {
            mproc__mpi_backoff_init(&bo, MPROC__MPI_SEND_CAP_NS); /* the transfer is moving */
            continue;
        }
        if (spin_until > 0 && mproc__now() < spin_until) {
            pthread_mutex_unlock(&mproc__mpi.lock); /* let other threads in between polls */
            pthread_mutex_lock(&mproc__mpi.lock);
            continue;
        }
        mproc__mpi_backoff_wait(&bo, -1.0);
    }
}

/* Where the payload pieces of a big frame start: the header and any small buffers before the
 * largest one travel in the first message, so the pieces come from one contiguous buffer. */
static size_t lead_bytes(const struct iovec *iov, int iovcnt) {
    size_t off = 0, best = 0, best_off = MPROC__WIRE_HDR_SIZE;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > best) {
            best = iov[i].iov_len;
            best_off = off;
        }
        off += iov[i].iov_len;
    }
    if (best_off < MPROC__WIRE_HDR_SIZE || best_off > 4096) best_off = MPROC__WIRE_HDR_SIZE;
    return best_off;
}

/* The one iovec holding [off, off+len) whole, or NULL (then a datatype gathers it). */
static const uint8_t *contiguous(const struct iovec *iov, int iovcnt, size_t off, size_t len) {
    for (int i = 0; i < iovcnt; i++) {
        if (off < iov[i].iov_len)
            return off + len <= iov[i].iov_len ? (const uint8_t *)iov[i].iov_base + off : NULL;
        off -= iov[i].iov_len;
    }
    return NULL;
}

/* Posts a big frame: header and leading bytes first (copied into *first, which the caller frees
 * when the sends are done), then the rest in pieces straight from the caller's buffers: plain
 * bytes when a piece lies in one buffer (which keeps Open MPI's fast large-message path), a
 * derived datatype otherwise. Returns the number of requests in *req (malloc'd), or an error. */
static int post_split(int dest, const struct iovec *iov, int iovcnt, size_t total,
                      MPI_Request **reqp, uint8_t **firstp) {
    size_t lead = lead_bytes(iov, iovcnt);
    int n = 1 + (int)((total - lead + MPROC__MPI_PIECE - 1) / MPROC__MPI_PIECE);
    MPI_Request *req = malloc((size_t)n * sizeof *req);
    uint8_t *first = malloc(lead);
    if (!req || !first) {
        free(req);
        free(first);
        return mproc__error(MPROC_ENOMEM, "mpi: out of memory sending %zu bytes", total);
    }
    mproc__mpi_iov_copy(iov, iovcnt, 0, first, lead);
    mproc__mpi_ok(MPI_Isend(first, (int)lead, MPI_BYTE, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req[0]),
                  "MPI_Isend");
    size_t off = lead;
    for (int i = 1; i < n; i++) {
        size_t len = total - off < MPROC__MPI_PIECE ? total - off : MPROC__MPI_PIECE;
        const uint8_t *flat = contiguous(iov, iovcnt, off, len);
        if (flat) {
            mproc__mpi_ok(MPI_Isend(flat, (int)len, MPI_BYTE, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req[i]),
                          "MPI_Isend");
        } else {
            MPI_Datatype t;
            int rc = iov_type(iov, iovcnt, off, len, &t);
            if (rc < 0) mproc__mpi_fatal("%s", mproc_last_error()); /* header already gone */
            mproc__mpi_ok(MPI_Isend(MPI_BOTTOM, 1, t, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req[i]),
                          "MPI_Isend");
            MPI_Type_free(&t); /* legal with the send pending: MPI keeps it until done */
        }
        off += len;
    }
    mproc__mpi_ring(dest);
    *reqp = req;
    *firstp = first;
    return n;
}

/* Sends a big frame and waits until MPI is done with the caller's buffers. */
static int send_split(int dest, const struct iovec *iov, int iovcnt, size_t total, mproc__mpi_sink sink) {
    MPI_Request *req = NULL;
    uint8_t *first = NULL;
    int n = post_split(dest, iov, iovcnt, total, &req, &first);
    if (n < 0) return n;
    wait_sends(dest, req, n, sink, (double)total / 1e9 + 0.002);
    free(req);
    free(first);
    return 0;
}

void mproc__mpi_flush_sends(mproc__mpi_sink sink) {
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_SEND_CAP_NS);
    while (mproc__mpi_sends_reap() > 0)
        if (mproc__mpi_drain(sink) == 0) {
            if (mproc__mpi.watchdog) mproc__mpi.watchdog();
            mproc__mpi_backoff_wait(&bo, -1.0);
        }
    mproc__mpi_sends_forget();
}

/* Lock held. Posts buf (ours) as one message, left in flight; gives it back when done. */
static int post_owned(int dest, uint8_t *buf, size_t total, const mproc__mpi_lender *l, mproc__mpi_sink sink) {
    MPI_Request req;
    int flag = 0;
    mproc__mpi_ok(MPI_Isend(buf, (int)total, MPI_BYTE, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req),
                  "MPI_Isend");
    mproc__mpi_ring(dest); /* posted: the receiver can find it now */
    /* Most small sends are done at once (copied into the receiver's shared memory). */
    mproc__mpi_ok(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    if (flag) {
        mproc__mpi_give_back(buf, l);
    } else if (mproc__mpi_sends_reserve(1) == 0) {
        mproc__mpi_sends_keep_lent(req, buf, l, dest, 0);
    } else { /* no room to remember it: wait for it */
        wait_sends(dest, &req, 1, sink, 0);
        mproc__mpi_give_back(buf, l);
    }
    return 0;
}

/* Lock held. Posts a frame packed into one message, left in flight. */
static int send_packed(int dest, const struct iovec *iov, int iovcnt, size_t total,
                       mproc__mpi_sink sink) {
    uint8_t *buf = malloc(total);
    if (!buf) return mproc__error(MPROC_ENOMEM, "mpi send: out of memory (%zu bytes)", total);
    mproc__mpi_iov_copy(iov, iovcnt, 0, buf, total);
    return post_owned(dest, buf, total, NULL, sink);
}

static int check_frame(size_t total) {
    if (total < MPROC__WIRE_HDR_SIZE)
        return mproc__error(MPROC_EINVAL, "mpi send: a frame of %zu bytes has no header", total);
    if (total - MPROC__WIRE_HDR_SIZE > MPROC__WIRE_MAX_PAYLOAD)
        return mproc__error(MPROC_ETOOBIG, "mpi send: a %zu-byte frame is over the 2 GiB limit",
                            total);
    return 0;
}

int mproc__mpi_send_retained(int dest, const struct iovec *iov, int iovcnt, uint64_t seq,
                             mproc__mpi_sink sink) {
    size_t total = mproc__iov_total(iov, iovcnt);
    int rc = check_frame(total);
    if (rc < 0) return rc;
    /* Small frames are copied: a second message for a few KiB costs more than the copy. */
    if (seq == 0 || total < MPROC__MPI_RETAIN_MIN) return send_packed(dest, iov, iovcnt, total, sink);
    /* Only a payload in one buffer is left to MPI (the header and what precedes it are copied):
     * other iovecs may be the caller's stack. */
    size_t lead = lead_bytes(iov, iovcnt);
    if (!contiguous(iov, iovcnt, lead, total - lead))
        return mproc__mpi_send_frame(dest, iov, iovcnt, sink);
    MPI_Request *req = NULL;
    uint8_t *first = NULL;
    int n = post_split(dest, iov, iovcnt, total, &req, &first);
    if (n < 0) return n;
    if (mproc__mpi_sends_reserve(n) == 0) {
        for (int i = 0; i < n; i++) mproc__mpi_sends_keep(req[i], i == 0 ? first : NULL, dest, seq);
    } else { /* no memory to remember them: wait for them here */
        wait_sends(dest, req, n, sink, (double)total / 1e9 + 0.002);
        free(first);
    }
    free(req);
    return 0;
}

int mproc__mpi_send_frame(int dest, const struct iovec *iov, int iovcnt, mproc__mpi_sink sink) {
    size_t total = mproc__iov_total(iov, iovcnt);
    int rc = check_frame(total);
    if (rc < 0) return rc;
    if (total > MPROC__MPI_PACK_MAX) return send_split(dest, iov, iovcnt, total, sink);
    return send_packed(dest, iov, iovcnt, total, sink);
}

/* A split RESULT (see mproc__mpi_send_owned): header and count/item_size first, then exactly
 * count*item_size bytes of data. */
static int split_result(const uint8_t *first, size_t first_len, size_t want) {
    if (first_len != MPROC__MPI_RESULT_LEAD || mproc__hdr_kind(first) != MPROC__FRAME_RESULT)
        return 0;
    uint64_t count = mproc__get_u32(first + MPROC__WIRE_HDR_SIZE);
    uint64_t item = mproc__get_u32(first + MPROC__WIRE_HDR_SIZE + 4);
    return item != 0 && count * item == want - first_len;
}

/* Lock held. Sends a RESULT of fixed-size items as its lead (header, count, item_size) and then
 * its data from frame itself, so that the master can receive the data straight into place. One
 * data piece is left in flight; more are waited for. Takes frame over. */
static int send_result_split(int dest, uint8_t *frame, size_t len, const mproc__mpi_lender *l, mproc__mpi_sink sink) {
    size_t lead = MPROC__MPI_RESULT_LEAD, data = len - lead;
    int n = 1 + (int)((data + MPROC__MPI_PIECE - 1) / MPROC__MPI_PIECE);
    uint8_t *first = malloc(lead);
    MPI_Request *req = malloc((size_t)n * sizeof *req);
    if (!first || !req) {
        free(first);
        free(req);
        mproc__mpi_give_back(frame, l);
        return mproc__error(MPROC_ENOMEM, "mpi: out of memory sending %zu bytes", len);
    }
    memcpy(first, frame, lead);
    mproc__mpi_ok(MPI_Isend(first, (int)lead, MPI_BYTE, dest, MPROC__MPI_TAG, mproc__mpi.comm, &req[0]),
                  "MPI_Isend");
    for (size_t i = 1, off = lead; i < (size_t)n; i++) {
        size_t piece = len - off < MPROC__MPI_PIECE ? len - off : MPROC__MPI_PIECE;
        mproc__mpi_ok(MPI_Isend(frame + off, (int)piece, MPI_BYTE, dest, MPROC__MPI_TAG,
                                mproc__mpi.comm, &req[i]), "MPI_Isend");
        off += piece;
    }
    mproc__mpi_ring(dest);
    if (n == 2 && mproc__mpi_sends_reserve(2) == 0) {
        mproc__mpi_sends_keep(req[0], first, dest, 0);
        /* Given back by its base address when the data send is done. */
        mproc__mpi_sends_keep_lent(req[1], frame, l, dest, 0);
    } else {
        wait_sends(dest, req, n, sink, (double)len / 1e9 + 0.002);
        free(first);
        mproc__mpi_give_back(frame, l);
    }
    free(req);
    return 0;
}

static int send_given(int dest, uint8_t *frame, size_t len, const mproc__mpi_lender *l, mproc__mpi_sink sink) {
    int rc = check_frame(len);
    if (rc == 0 && len >= MPROC__MPI_RESULT_LEAD + MPROC__MPI_PLACE_MIN &&
        split_result(frame, MPROC__MPI_RESULT_LEAD, len))
        return send_result_split(dest, frame, len, l, sink);
    if (rc < 0 || len > MPROC__MPI_PACK_MAX) {
        struct iovec iov = {frame, len};
        if (rc == 0) rc = send_split(dest, &iov, 1, len, sink);
        mproc__mpi_give_back(frame, l);
        return rc;
    }
    return post_owned(dest, frame, len, l, sink);
}

int mproc__mpi_send_owned(int dest, uint8_t *frame, size_t len, mproc__mpi_sink sink) {
    return send_given(dest, frame, len, NULL, sink);
}

int mproc__mpi_send_lent(int dest, uint8_t *frame, size_t len, mproc__mpi_release release, void *owner,
                         uint64_t token, mproc__mpi_sink sink) {
    mproc__mpi_lender l = {release, owner, token};
    return send_given(dest, frame, len, &l, sink);
}

int mproc__mpi_send_hdr(int dest, uint16_t kind, uint64_t id, uint32_t arg, mproc__mpi_sink sink) {
    uint8_t hdr[MPROC__WIRE_HDR_SIZE];
    mproc__hdr_encode(hdr, kind, id, 0, arg);
    struct iovec iov = {hdr, sizeof hdr};
    return mproc__mpi_send_frame(dest, &iov, 1, sink);
}

mproc__mpi_placer mproc__mpi_place;

/* Receives the remaining pieces of a split frame from src: len bytes to `to`. */
static int recv_pieces(int src, uint8_t *to, size_t len) {
    for (size_t off = 0; off < len;) {
        size_t want = len - off < MPROC__MPI_PIECE ? len - off : MPROC__MPI_PIECE;
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
        mproc__mpi_ok(MPI_Mrecv(to + off, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv");
        off += want;
    }
    return 0;
}

/* Checks a received first message against its header; grows it for a split frame (or moves it
 * where `to` says, *homed then set), or receives a split RESULT's data where mproc__mpi_place
 * says (the frame keeps only its lead). */
static int finish_frame(int src, uint8_t **buf, size_t *len, const mproc__mpi_home *to, int *homed) {
    mproc__frame_hdr h;
    if (mproc__hdr_decode(*buf, *len, &h) < 0) {
        char why[256]; /* a copy: the detail is written over the buffer it is read from */
        snprintf(why, sizeof why, "%s", mproc_last_error());
        return mproc__error(MPROC_EPROTO, "bad frame header from rank %d (%zu bytes): %s", src,
                            *len, why);
    }
    size_t want = MPROC__WIRE_HDR_SIZE + (size_t)h.length, first = *len;
    if (first == want) return 0;
    /* A split frame: its first message is the header and a few leading bytes. */
    int result = first < want && split_result(*buf, first, want);
    if (first > want || (want < MPROC__MPI_RETAIN_MIN && !result))
        return mproc__error(MPROC_EPROTO, "frame from rank %d is %zu bytes, its header says %zu",
                            src, first, want);
    uint8_t *home = result && mproc__mpi_place ? mproc__mpi_place(src, *buf, first, want) : NULL;
    if (home) {
        mproc__put_u32(*buf + 16, MPROC__WIRE_RESULT_PREFIX); /* what is left: the prefix */
        return recv_pieces(src, home, want - first);
    }
    uint8_t *own = !result && to ? to->place(to->ctx, *buf, first, want) : NULL;
    if (own) { /* the caller's buffer: the first bytes move there */
        memcpy(own, *buf, first);
        free(*buf);
        *buf = own;
        *len = want;
        *homed = 1;
        return recv_pieces(src, own + first, want - first);
    }
    uint8_t *big = realloc(*buf, want);
    if (!big) return mproc__error(MPROC_ENOMEM, "mpi: out of memory for a %zu-byte frame", want);
    *buf = big;
    *len = want;
    return recv_pieces(src, big + first, want - first);
}

int mproc__mpi_try_recv(int source, int *src, uint8_t **frame, size_t *len) {
    return mproc__mpi_try_recv_into(source, src, frame, len, NULL);
}

int mproc__mpi_try_recv_into(int source, int *src, uint8_t **frame, size_t *len, const mproc__mpi_home *home) {
    int flag = 0, count = -1, homed = 0;
    MPI_Message msg;
    MPI_Status st;
    *frame = NULL;
    *len = 0;
    mproc__mpi_sends_reap();
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
    int rc = finish_frame(*src, &buf, &n, home, &homed);
    if (rc < 0) {
        if (homed) home->drop(home->ctx);
        else free(buf);
        return rc;
    }
    *frame = buf;
    *len = n;
    mproc__mpi_note_arrival();
    return 1;
}

/* Waits, receiving and handing incoming frames to sink, until every rank has entered the
 * barrier that ends mproc's traffic: then nothing of ours is left in flight. Lock held. */
void mproc__mpi_quiesce(mproc__mpi_sink sink) {
    MPI_Request req;
    mproc__backoff bo;
    /* Our sends first: a message still in flight when the barrier ends might never be taken. */
    mproc__mpi_flush_sends(sink);
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
