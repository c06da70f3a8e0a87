/* mpi_master.h - the MPI master's shared state, between backend_mpi.c (start-up, groups,
 * routing) and mpi_process.c (Processes on worker ranks). Everything here is guarded by
 * mproc__mpi.lock.
 */
#ifndef MPROC_MPI_MASTER_H
#define MPROC_MPI_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

enum { CH_STARTING, CH_RUNNING, CH_EXITED, CH_FAILED };

struct mproc__child {
    mproc__child *next;
    uint64_t id;   /* ours, in the PROC_* frames' header */
    int rank;      /* the worker rank whose child it is */
    int state;
    long pid;
    int exitcode;
    int status;    /* CH_FAILED: why the rank could not start it */
    char why[200];
};

/* A TASK whose reply's data has a home (mproc__send_hint.reply_to), until that reply arrives. */
typedef struct mproc__placement {
    int rank;
    uint64_t id;   /* the TASK's (and its reply's) id */
    uint8_t *to;
    size_t len;
    int used;      /* the reply's data went there */
} mproc__placement;

typedef struct mproc__mpi_master {
    mproc__group *group;   /* the live group, or NULL */
    long *pid;             /* per rank: its pid, from its start message */
    uint32_t *outstanding; /* per rank: TASK/INIT/BATCH frames of the live group not yet answered */
    uint32_t *drop;        /* per rank: replies still due to a stopped group, to discard */
    uint32_t *nchild;      /* per rank: Processes running there */
    uint64_t *sent;        /* per rank: TASK/INIT/BATCH frames ever sent there (numbers them) */
    uint64_t *replied;     /* per rank: replies ever received from there (one per such frame) */
    mproc__placement *place; /* the live group's TASKs with a home for their reply's data */
    int nplace, capplace;
    mproc__child *children;
    uint64_t child_seq;
    int rr;                /* where the next least-loaded search starts */
} mproc__mpi_master;

extern mproc__mpi_master mproc__mpi_m;
#define M mproc__mpi_m

/* backend_mpi.c: the master's sink for every received frame, and the poll-and-sleep loop that
 * runs it until done(arg) or the deadline (1 if done). */
void mproc__mpi_route(int src, uint8_t *f, size_t len);
int mproc__mpi_wait_until(int (*done)(const void *), const void *arg, double deadline, long cap_ns);

/* mpi_process.c */
void mproc__mpi_route_child(int src, uint16_t kind, uint8_t *f, size_t len);
void mproc__mpi_children_free(void);
int mproc__mpi_proc_start(const mproc_task *target, const void *arg, size_t len, const char *name,
                          mproc__child **out, long *pid);
int mproc__mpi_proc_wait(mproc__child *c, double timeout, int *exitcode);
int mproc__mpi_proc_signal(mproc__child *c, int signo);
void mproc__mpi_proc_free(mproc__child *c);

#endif /* MPROC_MPI_MASTER_H */
