/* sends_in_flight.c - the MPI sends that are left in flight (transport.c posts them), until MPI
 * is done with them.
 *
 * A small frame is copied into a buffer of its own, so its sender need not wait for MPI: the
 * buffer waits here and is freed when its send completes, found by the next poll. Waiting would
 * cost dearly: Open MPI completes a shared-memory send only when the receiver has taken the
 * message (eager fragments come back to the sender; a rendezvous ends with the receiver's FIN),
 * so a master would sit out every task its worker is still busy with. A retained send
 * (mproc__mpi_send_retained) is a big frame whose payload MPI reads straight from the caller's
 * buffers after the call has returned; the caller keeps them alive until
 * mproc__mpi_complete_sends says MPI is done. MPI keeps the messages of one sender to one
 * receiver in order, in flight or not. One table for all of them, so one MPI_Testsome looks at
 * every send.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/mpi/sends_in_flight.h"
#include "backends/mpi/wait.h"
#include "backends/mpi/world.h"
#include "common/common.h"

void mproc__mpi_give_back(uint8_t *buf, const mproc__mpi_lender *l) {
    if (l && l->release) l->release(l->owner, l->token);
    else free(buf);
}

typedef struct pending_send {
    uint8_t *buf;  /* ours, given back when the send is done (NULL: the caller's memory) */
    mproc__mpi_lender lend;
    int rank;      /* destination */
    uint64_t seq;  /* retained sends: the caller's sequence number; 0 otherwise */
} pending_send;

static struct {
    MPI_Request *req; /* apart from v[], so one MPI_Testsome looks at them all */
    int *idx;         /* MPI_Testsome's output */
    pending_send *v;
    int n, cap;
    int retained; /* how many of them are retained (seq > 0): most replies need no look */
} pending;

int mproc__mpi_sends_reserve(int more) {
    if (pending.cap - pending.n >= more) return 0;
    int cap = pending.cap ? pending.cap : 16;
    while (cap - pending.n < more) cap *= 2;
    MPI_Request *r = realloc(pending.req, (size_t)cap * sizeof *r);
    if (!r) return -1;
    pending.req = r;
    int *idx = realloc(pending.idx, (size_t)cap * sizeof *idx);
    if (!idx) return -1;
    pending.idx = idx;
    pending_send *v = realloc(pending.v, (size_t)cap * sizeof *v);
    if (!v) return -1;
    pending.v = v;
    pending.cap = cap;
    return 0;
}

int mproc__mpi_sends_reap(void) {
    if (pending.n == 0) return 0;
    int done = 0;
    mproc__mpi_ok(MPI_Testsome(pending.n, pending.req, &done, pending.idx, MPI_STATUSES_IGNORE), "MPI_Testsome");
    if (done == MPI_UNDEFINED || done == 0) return pending.n;
    int k = 0;
    for (int i = 0; i < pending.n; i++) {
        if (pending.req[i] == MPI_REQUEST_NULL) {
            if (pending.v[i].buf) mproc__mpi_give_back(pending.v[i].buf, &pending.v[i].lend);
            if (pending.v[i].seq) pending.retained--;
            continue;
        }
        pending.req[k] = pending.req[i]; /* survivors keep their posting order */
        pending.v[k++] = pending.v[i];
    }
    pending.n = k;
    return k;
}

void mproc__mpi_sends_keep_lent(MPI_Request req, uint8_t *buf, const mproc__mpi_lender *l, int rank, uint64_t seq) {
    pending.req[pending.n] = req;
    pending.v[pending.n++] = (pending_send){buf, l ? *l : (mproc__mpi_lender){NULL, NULL, 0}, rank, seq};
    if (seq) pending.retained++;
}

void mproc__mpi_sends_keep(MPI_Request req, uint8_t *buf, int rank, uint64_t seq) {
    mproc__mpi_sends_keep_lent(req, buf, NULL, rank, seq);
}

int mproc__mpi_retained_in_flight(int rank, uint64_t upto) {
    if (pending.retained == 0) return 0; /* every reply asks: no scan of every pending send */
    mproc__mpi_sends_reap();
    for (int i = 0; i < pending.n; i++)
        if (pending.v[i].seq && pending.v[i].seq <= upto && (rank < 0 || pending.v[i].rank == rank)) return 1;
    return 0;
}

void mproc__mpi_abandon_sends(int rank) {
    int k = 0;
    for (int i = 0; i < pending.n; i++) {
        if (pending.v[i].rank == rank) {
            /* Freed by MPI whenever it is done with it; its buffer is leaked, not freed, in
             * case MPI still reads it. */
            if (pending.req[i] != MPI_REQUEST_NULL) MPI_Request_free(&pending.req[i]);
            if (pending.v[i].seq) pending.retained--;
            continue;
        }
        pending.req[k] = pending.req[i];
        pending.v[k++] = pending.v[i];
    }
    pending.n = k;
}

/* Polls spent on a retained send before sleeping between looks. */
#define COMPLETE_SPIN_S 200e-6

void mproc__mpi_complete_sends(int rank, uint64_t upto) {
    if (!mproc__mpi_retained_in_flight(rank, upto)) return;
    /* Usually over within microseconds: the receiver took the frame and its FIN is on its way.
     * Otherwise the receiver is busy, and we sleep between looks (the lock released). */
    double spin_until = mproc__now() + COMPLETE_SPIN_S;
    while (mproc__now() < spin_until)
        if (!mproc__mpi_retained_in_flight(rank, upto)) return;
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_SEND_CAP_NS);
    while (mproc__mpi_retained_in_flight(rank, upto)) {
        if (mproc__mpi.watchdog) mproc__mpi.watchdog(); /* a lost rank's sends are abandoned */
        mproc__mpi_backoff_wait(&bo, -1.0);
    }
}

void mproc__mpi_sends_forget(void) {
    free(pending.req);
    free(pending.idx);
    free(pending.v);
    memset(&pending, 0, sizeof pending);
}
