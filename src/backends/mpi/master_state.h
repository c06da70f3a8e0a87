/* master_state.h - the MPI master's state (rank 0), shared by its files: master.c (start-up),
 * routing.c (what arrives), groups.c (pools) and processes.c (Processes on worker ranks).
 * Everything here is guarded by mproc__mpi.lock. Per-rank arrays are indexed by rank.
 */
#ifndef MPROC_MPI_MASTER_H
#define MPROC_MPI_MASTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* A Process on a worker rank, as the master sees it. */
typedef enum mproc__child_state {
    MPROC__CHILD_STARTING,
    MPROC__CHILD_RUNNING,
    MPROC__CHILD_EXITED,
    MPROC__CHILD_FAILED
} mproc__child_state;

struct mproc__child {
    mproc__child *next;
    uint64_t id;   /* ours, in the PROC_* frames' header */
    int rank;      /* the worker rank whose child it is */
    mproc__child_state state;
    long pid;
    int exitcode;
    int status;    /* MPROC__CHILD_FAILED: why the rank could not start it */
    char why[200];
};

/* A TASK whose reply's data has a home (mproc__send_hint.reply_to), until that reply arrives. */
typedef struct mproc__placement {
    int rank;
    int worker;    /* the worker it went to (its index in wk) */
    uint64_t id;   /* the TASK's (and its reply's) id */
    uint8_t *to;
    size_t len;
    int used;      /* the reply's data went there */
} mproc__placement;

/* A frame routed to the live group, waiting for its wait() to take it. */
typedef struct mproc__mpi_event {
    struct mproc__mpi_event *next;
    int worker;    /* its index in wk (the group's wait() says the pool worker) */
    uint8_t *frame;
    size_t len;
    int placed; /* its data went to its TASK's reply_to */
    int died;   /* 1: frame is an EXEC_DIED (the worker's executor is gone); 2: its rank was lost
                 * (no frame; watchdog.c) */
} mproc__mpi_event;

/* A worker rank, as the master sees it. */
typedef struct mproc__exec_view {
    int on;        /* the rank runs tasks in executors (else inside itself) */
    int nexec;     /* its pool workers: its executors, or 1 (itself) */
    int first;     /* the index in wk of its first one */
    double heard;  /* when it last sent anything (watchdog.c) */
    double pinged; /* when it was asked whether it is there, unanswered (0: not asked) */
    double lost_at; /* when the watchdog took it for lost (0: it is not) */
    char host[64]; /* its host name, from its start message */
} mproc__exec_view;

/* One worker (a pool's, when the pool includes it): an executor of a rank (executor.h), or a
 * rank that runs tasks itself. */
typedef struct mproc__worker_view {
    int rank;
    int e;         /* its index among the rank's executors */
    long pid;      /* the executor's (or the rank's), from the start message or EXEC_STARTED */
    uint32_t gen;  /* the generation frames go to now: one more per EXEC_RESTART sent */
    int used;      /* a task frame went there since its last restart */
    int broken;    /* its rank could not start one: the worker cannot be replaced */
    int starting;  /* asked for (EXEC_RESTART) and not yet reported started or dead */
    int ident;     /* the worker index its tasks see (mproc_current_index): its place in the pool
                    * that last started it, its place here until then */
} mproc__worker_view;

/* A pool's workers: all of wk in order, or, with workers_per_rank, each rank's first few. */
struct mproc__group {
    int n;
    int *slot;     /* pool worker -> its index in wk */
    int *pool_of;  /* index in wk -> pool worker, or -1: not in this pool */
    atomic_int woken;
    mproc__mpi_event *head, *tail; /* frames for this group, routed by whichever thread received them */
};


typedef struct mproc__mpi_master_state {
    mproc__group *group;   /* the live group, or NULL */
    long *pid;             /* per rank: its pid, from its start message */
    uint32_t *outstanding; /* per rank: TASK/INIT/BATCH frames of the live group not yet answered */
    uint64_t outstanding_total; /* their sum: "is a reply due?" without a scan of every rank */
    uint32_t *drop;        /* per rank: replies still due to a stopped group, to discard */
    uint32_t *nchild;      /* per rank: Processes running there */
    uint64_t *sent;        /* per rank: TASK/INIT/BATCH frames ever sent there (numbers them) */
    uint64_t *replied;     /* per rank: replies ever received from there (one per such frame) */
    mproc__exec_view *exec; /* per rank */
    mproc__worker_view *wk; /* every worker, nworkers of them (ranks in order; a group's slot maps its own) */
    long **start_pids;      /* at start only: per rank, its workers' pids from its start message */
    int nworkers;
    mproc__placement *place; /* the live group's TASKs with a home for their reply's data */
    int nplace, capplace;
    mproc__child *children;
    uint64_t child_seq;
    int rr;                /* where the next least-loaded search starts */
} mproc__mpi_master_state;

extern mproc__mpi_master_state mproc__master;

#endif /* MPROC_MPI_MASTER_H */
