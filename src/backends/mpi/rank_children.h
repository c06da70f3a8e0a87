/* rank_children.h - a worker rank's Processes (rank_children.c): starting them, their start
 * gate, signals, and reporting their ends to the master. rank.c's loop calls these; they never
 * call back into it (frames that arrive while they send go to the sink it passes). */
#ifndef MPROC_MPI_RANK_CHILDREN_H
#define MPROC_MPI_RANK_CHILDREN_H

#include <stddef.h>
#include <stdint.h>

#include "backends/mpi/transport.h"

/* PROC_START with payload p (n bytes): forks the Process and answers PROC_STARTED (takes the
 * lock to send). With at_once set it runs its target at once; else it waits at its gate
 * (spawn.h) for the master's word, a PROC_SIGNAL 0. Negative only for a malformed frame. */
int mproc__mpi_rank_start_child(uint64_t id, const uint8_t *p, size_t n, int at_once,
                                mproc__mpi_sink sink);
/* PROC_SIGNAL: signo to the Process with the master's id `id`; 0 opens its gate. */
void mproc__mpi_rank_signal_child(uint64_t id, int signo);
/* Lock held. Reaps children that ended and reports each with PROC_EXIT; returns how many. */
int mproc__mpi_rank_report_exits(mproc__mpi_sink sink);
/* At shutdown: kills and reaps any Process left. */
void mproc__mpi_rank_end_children(void);

#endif /* MPROC_MPI_RANK_CHILDREN_H */
