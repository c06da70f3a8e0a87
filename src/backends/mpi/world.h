/* world.h - the MPI backend's ground floor: our communicator (a dup of MPI_COMM_WORLD, so user
 * traffic never meets ours), this rank and the size, the one lock every MPI call and all backend
 * state is under, and the fatal-error exit. Only the files of backends/mpi/ include <mpi.h>;
 * the public header never does.
 *
 * Locking: every MPI call, and all backend state, is under mproc__mpi.lock; a thread that waits
 * for something sleeps with that lock released (on its process's doorbell, see wait.h), so
 * another thread can poll meanwhile.
 */
#ifndef MPROC_MPI_WORLD_H
#define MPROC_MPI_WORLD_H

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>

typedef struct mproc__mpi_world {
    MPI_Comm comm;      /* our dup of MPI_COMM_WORLD: user traffic never meets ours */
    int rank;
    int size;
    int we_initialized; /* mproc called MPI_Init_thread, so mproc calls MPI_Finalize */
    int ready;          /* init finished on this rank */
    pthread_mutex_t lock;
    /* Per rank, set by the master when a rank is lost (watchdog.c): nothing waits on it again
     * (sends to it are abandoned, never waited for). NULL on worker ranks. */
    unsigned char *gone;
    int any_gone;
    /* Called (lock held) from every wait loop of the backend, so that a peer's silence is
     * noticed even while a send waits for it; NULL where no one watches. */
    void (*watchdog)(void);
} mproc__mpi_world;

extern mproc__mpi_world mproc__mpi;

/* 1 when rank is known to be lost. */
static inline int mproc__mpi_is_gone(int rank) { return mproc__mpi.gone && mproc__mpi.gone[rank]; }

/* Prints "mproc: <message>" to stderr and ends the whole job with MPI_Abort: for failures that
 * no caller could recover from (a peer speaking garbage, MPI itself failing). */
_Noreturn void mproc__mpi_fatal(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* This process's pid namespace (the inode of /proc/self/ns/pid; 0 if unknown): a pid means the
 * same process only to a process in the same namespace. */
uint64_t mproc__mpi_pid_namespace(void);
/* Fatal unless rc is MPI_SUCCESS; what names the call. */
void mproc__mpi_ok(int rc, const char *what);

#endif /* MPROC_MPI_WORLD_H */
