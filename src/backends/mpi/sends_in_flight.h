/* sends_in_flight.h - the table of MPI sends left in flight (sends_in_flight.c): what each one's
 * buffer is and who gets it back when MPI is done with it. transport.c posts the sends and
 * remembers them here; every call here is made with the MPI lock held.
 */
#ifndef MPROC_MPI_SENDS_IN_FLIGHT_H
#define MPROC_MPI_SENDS_IN_FLIGHT_H

#include <mpi.h>
#include <stdint.h>

/* Called, MPI lock held, from whichever thread finds a lent frame's send done (mproc__mpi_send_lent). */
typedef void (*mproc__mpi_release)(void *owner, uint64_t token);

/* Who gets a frame back when MPI is done with it: free() when release is NULL, else the
 * lender's call. */
typedef struct mproc__mpi_lender {
    mproc__mpi_release release;
    void *owner;
    uint64_t token;
} mproc__mpi_lender;

/* buf back to its lender (l NULL or without release: freed). */
void mproc__mpi_give_back(uint8_t *buf, const mproc__mpi_lender *l);
/* Room for `more` sends; 0, or -1 without memory (the caller then waits for its sends). */
int mproc__mpi_sends_reserve(int more);
/* Remembers a posted send, room reserved: buf (NULL: the caller's memory) goes back through l
 * (NULL: freed) when it is done; seq > 0 marks a retained send (mproc__mpi_complete_sends). */
void mproc__mpi_sends_keep_lent(MPI_Request req, uint8_t *buf, const mproc__mpi_lender *l, int rank, uint64_t seq);
void mproc__mpi_sends_keep(MPI_Request req, uint8_t *buf, int rank, uint64_t seq);
/* Gives back what completed sends held; returns how many are still in flight. */
int mproc__mpi_sends_reap(void);
/* Lock held. 1 while a retained send to rank (< 0: any) numbered <= upto is in flight. */
int mproc__mpi_retained_in_flight(int rank, uint64_t upto);
/* Returns when every retained send to rank (< 0: any) numbered <= upto is done, sleeping
 * between looks (lock released) while the receiver has not taken it yet. */
void mproc__mpi_complete_sends(int rank, uint64_t upto);
/* Forgets every send in flight to rank (lost: it will never take them). */
void mproc__mpi_abandon_sends(int rank);
/* Frees the table itself, once nothing is in flight (mproc__mpi_flush_sends). */
void mproc__mpi_sends_forget(void);

#endif /* MPROC_MPI_SENDS_IN_FLIGHT_H */
