/* pipe.c - Pipe: two ends joined by two of queue.c's byte queues in one block (queue e carries
 * what end e receives). A handle is one end (its side in the handle's aux); closing an end
 * closes both queues for the other side and the block is freed when both ends are closed.
 */
#include <stdlib.h>
#include <string.h>

#include "shared/shared.h"

#define DEFAULT_CAPACITY (1u << 20)

typedef struct shared_pipe {
    _Atomic uint32_t open_ends; /* bit e: end e not closed */
    uint32_t duplex;
    uint64_t queue_at[2];       /* from this struct to queue e */
} shared_pipe;

static mproc__sh_queue *queue_in(shared_pipe *p, int e) { return (mproc__sh_queue *)((char *)p + p->queue_at[e]); }

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

int mproc_pipe(mproc_conn *a, mproc_conn *b, int duplex, size_t capacity) {
    if (!a || !b) return mproc__error(MPROC_EINVAL, "mproc_pipe: an end is NULL");
    if (a == b) return mproc__error(MPROC_EINVAL, "mproc_pipe: both ends point to one handle");
    if (!capacity) capacity = DEFAULT_CAPACITY;
    if (capacity < 64 || capacity > ((size_t)1 << 40))
        return mproc__error(MPROC_EINVAL, "mproc_pipe: capacity %zu bytes, want 64..2^40 (0 for 1 MiB)", capacity);
    size_t qbytes = round64(mproc__sh_queue_bytes(capacity)), head = round64(sizeof(shared_pipe));
    shared_pipe *p;
    int rc = mproc__sh_alloc(MPROC__SH_PIPE, head + 2 * qbytes, &a->ref, (void **)&p, "mproc_pipe");
    if (rc < 0) return rc;
    for (int e = 0; e < 2 && rc == 0; e++) {
        p->queue_at[e] = head + (uint64_t)e * qbytes;
        mproc__sh_queue *q = queue_in(p, e);
        rc = mproc__sh_queue_init(q, 0, capacity, mproc__sh_queue_bytes(0)); /* its ring right after it */
    }
    if (rc < 0) {
        mproc__sh_free(&a->ref, MPROC__SH_PIPE, "mproc_pipe");
        return rc;
    }
    p->duplex = duplex != 0;
    atomic_store(&p->open_ends, 3u);
    b->ref = a->ref;
    a->ref.aux = 0;
    b->ref.aux = 1;
    return 0;
}

static shared_pipe *end_of(const mproc_conn *c, const char *fn, int *rc, int *e) {
    shared_pipe *p = mproc__sh_get(c ? &c->ref : NULL, MPROC__SH_PIPE, fn, rc);
    if (!p) return NULL;
    *e = c->ref.aux & 1;
    if (!(atomic_load(&p->open_ends) & (1u << *e))) {
        *rc = mproc__error(MPROC_ECLOSED, "%s: this end of the pipe was closed", fn);
        return NULL;
    }
    return p;
}

int mproc_conn_send(const mproc_conn *c, const void *data, size_t len, double timeout) {
    int rc, e;
    double dl;
    shared_pipe *p = end_of(c, "mproc_conn_send", &rc, &e);
    if (!p && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_conn_send")) < 0) return rc;
    if (!p) {
        if (!data && len) return mproc__error(MPROC_EINVAL, "mproc_conn_send: data is NULL but len is %zu", len);
        mproc__sh_call call = {.op = MPROC__OP_CONN_SEND, .ref = &c->ref, .timeout = timeout, .in = data, .in_len = len,
                               .fn = "mproc_conn_send"};
        return mproc__sh_remote(&call);
    }
    if (!p->duplex && e == 0) return mproc__error(MPROC_ESTATE, "mproc_conn_send: this end only receives (a one-way pipe)");
    if (!data && len) return mproc__error(MPROC_EINVAL, "mproc_conn_send: data is NULL but len is %zu", len);
    mproc__sh_queue *q = queue_in(p, 1 - e);
    rc = mproc__sh_queue_put(q, data, len, dl);
    switch (rc) {
    case MPROC_EBADHANDLE:
        return mproc__sh_freed_while_waiting("mproc_conn_send");
    case MPROC_ETOOBIG:
        return mproc__error(rc, "mproc_conn_send: a message of %zu bytes can never fit the pipe's %llu bytes (a message "
                                "takes its length rounded up to 8, plus 8)", len, (unsigned long long)q->capacity);
    case MPROC_EFULL:
        return mproc__error(MPROC_ETIMEDOUT, "mproc_conn_send: no room within %g s", timeout);
    case MPROC_ECLOSED:
        return mproc__error(rc, "mproc_conn_send: the pipe is closed");
    }
    return rc;
}

static int conn_recv(const mproc_conn *c, void *buf, size_t cap, int exact, void **owned, size_t *len, double timeout, const char *fn) {
    int rc, e;
    double dl;
    shared_pipe *p = end_of(c, fn, &rc, &e);
    if (!p && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, fn)) < 0) return rc;
    if (!p) { /* a = the room (-1: any length, into a buffer of its own) */
        mproc__sh_call call = {.op = MPROC__OP_CONN_RECV, .ref = &c->ref, .timeout = timeout, .a = buf ? (int64_t)cap : -1,
                               .b = exact, .out = buf, .out_cap = buf ? cap : 0, .owned = owned, .fn = fn};
        rc = mproc__sh_remote(&call);
        *len = rc == 0 ? call.out_len : (size_t)call.value;
        if (rc == 0 && !buf && !*owned && !(*owned = malloc(1))) return mproc__error(MPROC_ENOMEM, "%s: no memory", fn);
        return rc;
    }
    if (!p->duplex && e == 1) return mproc__error(MPROC_ESTATE, "%s: this end only sends (a one-way pipe)", fn);
    rc = mproc__sh_queue_get(queue_in(p, e), buf, cap, exact, owned, len, dl);
    switch (rc) {
    case MPROC_EBADHANDLE:
        return mproc__sh_freed_while_waiting(fn);
    case MPROC_EEMPTY:
        return mproc__error(MPROC_ETIMEDOUT, "%s: nothing came within %g s", fn, timeout);
    case MPROC_ECLOSED: { /* either end's close closes both queues: say which */
        /* Looked up again: once both ends are closed the pipe may be freed (and its block
         * reused), and then ours was closed too. */
        int gone = 0;
        const shared_pipe *now = mproc__sh_get(&c->ref, MPROC__SH_PIPE, fn, &gone);
        if (!now || !(atomic_load(&now->open_ends) & (1u << e)))
            return mproc__error(MPROC_ECLOSED, "%s: this end of the pipe was closed", fn);
        return mproc__error(MPROC_EOF, "%s: the other end was closed and everything it sent was taken", fn);
    }
    case MPROC_ESIZE:
        return mproc__error(rc, "%s: the next message is %zu bytes, %s %zu (it stays)", fn, *len,
                            exact ? "want exactly" : "the buffer holds", cap);
    case MPROC_ENOMEM:
        return mproc__error(rc, "%s: no memory for a message of %zu bytes (it stays)", fn, *len);
    }
    return rc;
}

int mproc_conn_recv(const mproc_conn *c, mproc_buf *out, double timeout) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_conn_recv: out is NULL");
    void *data = NULL;
    size_t n = 0;
    int rc = conn_recv(c, NULL, 0, 0, &data, &n, timeout, "mproc_conn_recv");
    out->data = rc == 0 ? data : NULL;
    out->len = rc == 0 ? n : 0;
    return rc;
}

int mproc_conn_recv_into(const mproc_conn *c, void *buf, size_t cap, size_t *len, double timeout) {
    if (!buf && cap) return mproc__error(MPROC_EINVAL, "mproc_conn_recv_into: buf is NULL but cap is %zu", cap);
    char dummy;
    size_t n = 0;
    int rc = conn_recv(c, buf ? buf : &dummy, cap, 0, NULL, &n, timeout, "mproc_conn_recv_into");
    if (len) *len = rc == 0 || rc == MPROC_ESIZE ? n : 0;
    return rc;
}

int mproc_conn_recv_exact(const mproc_conn *c, void *buf, size_t size, double timeout) {
    if (!buf) return mproc__error(MPROC_EINVAL, "mproc_conn_recv_exact: buf is NULL");
    size_t n = 0;
    return conn_recv(c, buf, size, 1, NULL, &n, timeout, "mproc_conn_recv_exact");
}

int mproc_conn_poll(const mproc_conn *c, double timeout) {
    int rc, e;
    double dl;
    shared_pipe *p = end_of(c, "mproc_conn_poll", &rc, &e);
    if (!p && rc != MPROC__SH_REMOTE) return rc;
    if ((rc = mproc__sh_deadline(timeout, &dl, "mproc_conn_poll")) < 0) return rc;
    if (!p) return mproc__sh_forward(MPROC__OP_CONN_POLL, &c->ref, timeout, 0, "mproc_conn_poll");
    if (!p->duplex && e == 1) return mproc__error(MPROC_ESTATE, "mproc_conn_poll: this end only sends (a one-way pipe)");
    rc = mproc__sh_queue_poll(queue_in(p, e), dl);
    return rc == MPROC_EBADHANDLE ? mproc__sh_freed_while_waiting("mproc_conn_poll") : rc;
}

int mproc_conn_close(mproc_conn *c) {
    static const mproc_shared_ref cleared; /* what an earlier close left in *c */
    if (c && !memcmp(&c->ref, &cleared, sizeof cleared)) return 0; /* closing twice is fine */
    int rc = 0, e;
    shared_pipe *p = end_of(c, "mproc_conn_close", &rc, &e);
    if (rc == MPROC_ECLOSED) { /* closing twice is fine */
        memset(&c->ref, 0, sizeof c->ref);
        return 0;
    }
    /* Freed: a pipe is freed only when both its ends are closed, so this end was closed
     * already (through a copy of this handle): closing twice is fine. */
    if (!p && c && rc == MPROC_EBADHANDLE && mproc__sh_was_freed(&c->ref, MPROC__SH_PIPE)) {
        memset(&c->ref, 0, sizeof c->ref);
        return 0;
    }
    if (!p && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_CONN_CLOSE, &c->ref, "mproc_conn_close");
    if (!p) return rc;
    uint32_t before = atomic_fetch_and(&p->open_ends, ~(1u << e));
    if (!(before & (1u << e))) { /* another process closed it just now */
        memset(&c->ref, 0, sizeof c->ref);
        return 0;
    }
    mproc__sh_queue_close(queue_in(p, 0));
    mproc__sh_queue_close(queue_in(p, 1));
    if (before == (1u << e)) { /* the last end: free it, unless someone still waits inside */
        int busy = mproc__sh_queue_kill(queue_in(p, 0)) | mproc__sh_queue_kill(queue_in(p, 1));
        return mproc__sh_free_ex(&c->ref, MPROC__SH_PIPE, "mproc_conn_close", !busy);
    }
    memset(&c->ref, 0, sizeof c->ref);
    return 0;
}
