/* exec_rings.c - the rank's side of the frame rings it shares with one executor (exec_rings.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/common.h"
#include "backends/mpi/exec_rings.h"
#include "backends/mpi/world.h"
#include "backends/spawn.h"

mproc__exec_rings *mproc__exec_rings_new(size_t ring_size, int *memfd) {
    *memfd = -1;
    if (ring_size == 0) return NULL;
    mproc__exec_rings *r = calloc(1, sizeof *r);
    int fd = r ? mproc__fork_memfd("mproc-exec-rings") : -1;
    if (fd < 0 || mproc__ring_pair_create(fd, ring_size, &r->p) < 0) {
        if (fd >= 0) {
            mproc__fork_untrack_fd(fd);
            close(fd);
        }
        free(r);
        return NULL;
    }
    *memfd = fd;
    /* The rank sends results to the master with MPI straight from the up ring (exec_replies.c):
     * the executor must not give those pages back under a registration MPI may have cached. */
    mproc__ring_keep_pages(&r->p.up);
    madvise(r->p.base, r->p.map_len, MADV_DONTFORK);
    /* Both ends pass frames through the mailboxes too (frame_mailbox.h) unless
     * MPROC_MPI_EXEC_MAILBOX=0 (the socket alone, as before them: for comparisons). */
    const char *mail = mproc__env("MPROC_MPI_EXEC_MAILBOX");
    if (!mail || strcmp(mail, "0") != 0) {
        mproc__mail_enable(r->p.down.mail);
        mproc__mail_enable(r->p.up.mail);
    }
    return r;
}

static void destroy(mproc__exec_rings *r) {
    mproc__ring_pair_unmap(&r->p);
    free(r->ends);
    free(r->done);
    free(r);
}

void mproc__exec_rings_retire(mproc__exec_rings *r) {
    if (!r) return;
    pthread_mutex_lock(&mproc__mpi.lock);
    r->dead = 1;
    if (r->n == 0 && r->pins == 0) destroy(r);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

void mproc__exec_rings_given_back(void *owner, uint64_t token) {
    mproc__exec_rings *r = owner;
    size_t i = (size_t)(token - r->first_seq);
    if (i >= r->n) return; /* cannot happen: every token is given back once */
    r->done[i] = 1;
    size_t k = 0;
    while (k < r->n && r->done[k]) k++;
    if (k > 0) {
        if (!r->dead) mproc__ring_release_to(&r->p.up, r->ends[k - 1]);
        memmove(r->ends, r->ends + k, (r->n - k) * sizeof *r->ends);
        memmove(r->done, r->done + k, r->n - k);
        r->n -= k;
        r->first_seq += k;
    }
    if (r->dead && r->n == 0 && r->pins == 0) destroy(r);
}

void mproc__exec_rings_pin(mproc__exec_rings *r) { r->pins++; }

void mproc__exec_rings_unpin(mproc__exec_rings *r) {
    if (--r->pins == 0 && r->dead && r->n == 0) destroy(r);
}

uint64_t mproc__exec_rings_lend(mproc__exec_rings *r, uint64_t end) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        uint64_t *e = realloc(r->ends, cap * sizeof *e);
        if (e) r->ends = e;
        uint8_t *d = e ? realloc(r->done, cap) : NULL;
        if (!d) mproc__mpi_fatal("worker rank %d: out of memory lending a frame", mproc__mpi.rank);
        r->done = d;
        r->cap = cap;
    }
    r->ends[r->n] = end;
    r->done[r->n] = 0;
    return r->first_seq + r->n++;
}
