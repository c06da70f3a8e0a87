/* routing.h - the MPI master's receive side and its placements (routing.c). Lock held in all. */
#ifndef MPROC_MPI_ROUTING_H
#define MPROC_MPI_ROUTING_H

#include <stddef.h>
#include <stdint.h>

#include "backends/mpi/master_state.h"

/* The master's sink for every received frame: results to the live group's queue, PROC_* frames
 * to their Process's record; then it wakes sleeping waiters. Takes f. */
void mproc__mpi_route(int src, uint8_t *f, size_t len);
/* Polls, routes and sleeps until done(arg) or the deadline (< 0: none); 1 if done. cap_ns bounds
 * the sleeps: how late a frame without a doorbell (from another node) may be noticed. */
int mproc__mpi_wait_until(int (*done)(const void *), const void *arg, double deadline, long cap_ns);

/* Where the reply to TASK id from rank may put its data (the send hint's reply_to): 0 or -1. */
int mproc__mpi_placement_add(int rank, int worker, uint64_t id, void *to, size_t len);
mproc__placement *mproc__mpi_placement_find(int rank, uint64_t id);
/* Forgets a placement; returns whether it was used. */
int mproc__mpi_placement_drop(mproc__placement *pl);
/* Lock held. Queues an event for the live group (freed, frame and all, when there is no group
 * or it has no such worker). */
void mproc__mpi_group_push(mproc__mpi_event *e);
/* Lock held. Forgets every reply home on rank src (of one worker there; < 0: all). */
void mproc__mpi_drop_placements_of(int src, int worker);
/* The transport's question (mproc__mpi_place): where a split RESULT's data goes, or NULL. */
uint8_t *mproc__mpi_place_result(int src, const uint8_t *first, size_t first_len, size_t want);

#endif /* MPROC_MPI_ROUTING_H */
