/* init.c - library lifecycle: choose the backend (fork or MPI) once, start it, and take it
 * down at finalize, freeing whatever pools and processes the program left open.
 *
 * The choice is made before MPI_Init, from MPROC_BACKEND or the launcher's environment, so a
 * program run without mpirun never touches MPI. The backend table below is the one place a new
 * backend is added.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "common/common.h"
#include "lifecycle.h"

static const mproc__backend_ops *active;
static mproc_backend_kind active_kind;
static int finalized;
static pid_t init_pid; /* the process that called mproc_init: the only one that finalizes */

static const mproc__backend_ops *fork_ops(void) { return &mproc__backend_fork; }

static const struct {
    mproc_backend_kind kind;
    const mproc__backend_ops *(*ops)(void);
} backends[] = {
    {MPROC_BACKEND_FORK, fork_ops},
    {MPROC_BACKEND_MPI, mproc__backend_mpi_load},
};

const mproc__backend_ops *mproc__backend(void) { return active; }
mproc_backend_kind mproc_backend(void) { return active ? active_kind : (mproc_backend_kind)0; }
const char *mproc_backend_name(void) { return active ? active->name : "none"; }

int mproc__require_init(const char *fn) {
    if (active) return 0;
    if (finalized) return mproc__error(MPROC_ESTATE, "%s: mproc_finalize() was already called", fn);
    return mproc__error(MPROC_ENOTINIT, "%s: call mproc_init(&argc, &argv) first", fn);
}

int mproc_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int mproc_max_workers(void) { return active ? active->max_workers() : 0; }

/* Ranks the launcher says it started: >1 means MPI, 1 means a single rank, 0 unknown/none. */
static long launcher_size(int *launched) {
    static const char *size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                      "SLURM_STEP_NUM_TASKS", "MPI_LOCALNRANKS"};
    *launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMI_RANK") ||
                getenv("PMIX_RANK");
    if (!*launched) return 0;
    for (size_t i = 0; i < sizeof size_vars / sizeof *size_vars; i++) {
        const char *v = getenv(size_vars[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    return 0;
}

static int choose(mproc_backend_kind *kind) {
    const char *want = getenv("MPROC_BACKEND");
    int launched;
    long size = launcher_size(&launched);
    if (want && *want) {
        if (strcmp(want, "fork") == 0) *kind = MPROC_BACKEND_FORK;
        else if (strcmp(want, "mpi") == 0) *kind = MPROC_BACKEND_MPI;
        else
            return mproc__error(MPROC_EINVAL, "MPROC_BACKEND=%s: expected 'fork' or 'mpi'", want);
        /* Every rank of the launch would run the whole program with a fork pool of its own:
         * N copies of the job, each believing it is the only one. Never silently. */
        if (*kind == MPROC_BACKEND_FORK && launched && size > 1 && !getenv("MPROC_FORK_EACH_RANK"))
            return mproc__error(MPROC_ESTATE,
                                "MPROC_BACKEND=fork, but an MPI launcher started %ld ranks of this program: each "
                                "would run the whole job on its own fork workers. Unset MPROC_BACKEND to use the "
                                "ranks as workers, run the program without mpirun for fork workers, or set "
                                "MPROC_FORK_EACH_RANK=1 if every rank really should run its own copy",
                                size);
        return 0;
    }
    *kind = (launched && size != 1) ? MPROC_BACKEND_MPI : MPROC_BACKEND_FORK;
    return 0;
}

static const mproc__backend_ops *ops_for(mproc_backend_kind kind) {
    for (size_t i = 0; i < sizeof backends / sizeof *backends; i++)
        if (backends[i].kind == kind) return backends[i].ops();
    return NULL;
}

/* An MPI launch without a usable MPI backend (built without MPI, or its module cannot be
 * loaded; the reason is in mproc_last_error()): rank 0 goes on with fork workers, the other
 * ranks leave quietly, so the job still runs once rather than N times. */
static int without_mpi_build(int *argc, char ***argv) {
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMI_RANK");
    if (!rank) rank = getenv("PMIX_RANK");
    if (rank && strtol(rank, NULL, 10) != 0) _exit(0);
    fprintf(stderr, "mproc: %s; running on local fork workers\n", mproc_last_error());
    active_kind = MPROC_BACKEND_FORK;
    active = &mproc__backend_fork;
    return active->init(argc, argv);
}

static void finalize_at_exit(void) { mproc_finalize(); }

int mproc_init(int *argc, char ***argv) {
    if (active) return mproc__error(MPROC_ESTATE, "mproc_init: already initialised");
    if (finalized) return mproc__error(MPROC_ESTATE, "mproc_init: cannot initialise again after finalize");
    int rc = mproc__registry_freeze();
    if (rc < 0) return rc;
    mproc_backend_kind kind = MPROC_BACKEND_FORK;
    if ((rc = choose(&kind)) < 0) return rc;
    const mproc__backend_ops *ops = ops_for(kind);
    if (!ops || ops->version != MPROC__BACKEND_VERSION)
        return mproc__error(MPROC_ENOTBUILT, "mproc_init: backend %d is not available", (int)kind);
    rc = ops->init(argc, argv);
    if (rc == MPROC_ENOTBUILT && kind == MPROC_BACKEND_MPI && !getenv("MPROC_BACKEND"))
        rc = without_mpi_build(argc, argv);
    else if (rc == 1) { /* one MPI rank only: run on local fork workers */
        kind = MPROC_BACKEND_FORK;
        ops = &mproc__backend_fork;
        rc = ops->init(argc, argv);
    }
    if (rc < 0) return rc;
    if (!active) {
        active = ops;
        active_kind = kind;
    }
    init_pid = getpid();
    atexit(finalize_at_exit);
    return 0;
}

int mproc_finalize(void) {
    if (!active) return 0;
    /* A worker or Process child that calls exit() runs the master's atexit hook too; its
     * copies of the master's pools are not its own (their threads did not survive the fork),
     * and shutting them down would wait forever. The child just leaves. */
    if (getpid() != init_pid) return 0;
    mproc__pools_shutdown();
    mproc__processes_shutdown();
    const mproc__backend_ops *ops = active;
    active = NULL;
    finalized = 1;
    return ops->finalize();
}
