/* exec_rings.h - the rank's side of the frame rings it shares with one executor (exec_rings.c).
 *
 * An executor generation gets a pair of rings (backends/frame_ring.h): the rank receives the
 * master's big frames into the down ring (or copies them there), and sends the executor's big replies to the master
 * straight from the up ring (mproc__mpi_send_lent). MPI may finish those sends out of order; the
 * up ring must be released in order, so the frames lent are kept here in the order the executor
 * wrote them, each marked when MPI gives it back. The rings outlive their executor until MPI is
 * done with the last frame lent from them, and until a frame being received into the down ring
 * (executor.c's home) is handed on.
 */
#ifndef MPROC_MPI_EXEC_RINGS_H
#define MPROC_MPI_EXEC_RINGS_H

#include <stddef.h>
#include <stdint.h>

#include "backends/frame_ring.h"

typedef struct mproc__exec_rings {
    mproc__ring_pair p;
    uint64_t last_end;   /* supervisor: where the last reply read from the up ring ended */
    /* The MPI lock's: */
    uint64_t *ends;      /* lent frames in order: where each ends */
    uint8_t *done;       /* and whether MPI is done with it */
    size_t n, cap;
    uint64_t first_seq;  /* the token of ends[0] */
    int pins;            /* frames received into the down ring and not yet handed on */
    int dead;            /* its executor is gone: unmapped when nothing is lent or pinned */
} mproc__exec_rings;

/* New rings of ring_size bytes each for an executor about to be spawned, with the memfd to hand
 * it in *memfd (tracked: other children close it; the caller untracks and closes it once the
 * executor has it); NULL (and *memfd -1) when ring_size is 0 or they cannot be made: the socket
 * then carries everything. Mapped MADV_DONTFORK: nothing else the rank forks sees them. */
mproc__exec_rings *mproc__exec_rings_new(size_t ring_size, int *memfd);
/* Its executor is gone (MPI lock not held; may be NULL): freed now, or when MPI gives back the
 * last frame lent from it. */
void mproc__exec_rings_retire(mproc__exec_rings *r);
/* MPI lock held. Notes a frame lent to MPI from the up ring, ending at end: its token. */
uint64_t mproc__exec_rings_lend(mproc__exec_rings *r, uint64_t end);
/* An mproc__mpi_release (MPI lock held): MPI is done with the frame of this token; the up ring
 * is released up to the end of the oldest frames MPI is done with. */
void mproc__exec_rings_given_back(void *owner, uint64_t token);
/* MPI lock held. A frame is being received into r's down ring (mproc__exec_home): r stays
 * mapped, even if its executor is gone meanwhile, until the matching unpin. */
void mproc__exec_rings_pin(mproc__exec_rings *r);
void mproc__exec_rings_unpin(mproc__exec_rings *r);

#endif /* MPROC_MPI_EXEC_RINGS_H */
