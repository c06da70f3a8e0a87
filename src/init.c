/* init.c - library lifecycle, the top of the library: choose the backend (fork or MPI) once,
 * start it, and take it down at finalize, freeing whatever pools and processes the program left
 * open.
 *
 * The choice is made before MPI_Init, from MPROC_BACKEND or the launcher's environment, so a
 * program run without mpirun never touches MPI. The backends are listed in backends/table.c;
 * the state this sets (runtime.c) is what the layers below read.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/shared.h"
#include "backend.h"
#include "common/common.h"
#include "lifecycle.h"

mproc_backend_kind mproc_backend(void) { return mproc__runtime_kind(); }
const char *mproc_backend_name(void) { return mproc__backend() ? mproc__backend()->name : "none"; }


int mproc_max_workers(void) { return mproc__backend() ? mproc__backend()->max_workers() : 0; }

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

/* A switch among the MPROC_ variables: unset, "0" or "1" (else EINVAL, named). */
static int switch_env(const char *name, int *on) {
    const char *v = mproc__env(name);
    *on = -1;
    if (!v) return 0;
    if (!strcmp(v, "0") || !strcmp(v, "1")) {
        *on = v[0] == '1';
        return 0;
    }
    return mproc__error(MPROC_EINVAL, "%s='%s': want 0 or 1", name, v);
}

/* The backend to start: MPROC_BACKEND's, else MPI when an MPI launcher started more than one
 * rank, else fork. */
static int choose(const mproc__backend_entry **out) {
    const char *want = mproc__env("MPROC_BACKEND");
    int launched;
    long size = launcher_size(&launched);
    /* Read whatever the backend, so that a bad value is refused even where it does not matter. */
    int each_rank, rc = switch_env("MPROC_FORK_EACH_RANK", &each_rank);
    if (rc < 0) return rc;
    if (want && *want) {
        if (!(*out = mproc__backend_find(want)))
            return mproc__error(MPROC_EINVAL, "mproc_init: MPROC_BACKEND='%s': expected one of %s", want, mproc__backend_names());
        /* Every rank of the launch would run the whole program with a fork pool of its own:
         * N copies of the job, each believing it is the only one. Never silently. */
        if ((*out)->kind == MPROC_BACKEND_FORK && launched && size > 1 && each_rank != 1)
            return mproc__error(MPROC_ESTATE,
                                "MPROC_BACKEND=fork, but an MPI launcher started %ld ranks of this program: each "
                                "would run the whole job on its own fork workers. Unset MPROC_BACKEND to use the "
                                "ranks as workers, run the program without mpirun for fork workers, or set "
                                "MPROC_FORK_EACH_RANK=1 if every rank really should run its own copy",
                                size);
        return 0;
    }
    *out = mproc__backend_find(launched && size != 1 ? "mpi" : "fork");
    return 0;
}

/* An MPI launch without a usable MPI backend (built without MPI, or its module cannot be
 * loaded; the reason is in mproc_last_error()): rank 0 goes on with fork workers, the other
 * ranks leave quietly, so the job still runs once rather than N times. */
static int without_mpi_build(int *argc, char ***argv, const mproc__backend_entry **chosen) {
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMI_RANK");
    if (!rank) rank = getenv("PMIX_RANK");
    if (rank && strtol(rank, NULL, 10) != 0) _exit(0);
    fprintf(stderr, "mproc: %s; running on local fork workers\n", mproc_last_error());
    *chosen = mproc__backend_find("fork");
    return (*chosen)->ops()->init(argc, argv);
}

static void finalize_at_exit(void) { mproc_finalize(); }

static int init(int *argc, char ***argv) {
    if (mproc__backend()) return mproc__error(MPROC_ESTATE, "mproc_init: already initialised");
    if (mproc__runtime_finalized())
        return mproc__error(MPROC_ESTATE, "mproc_init: cannot initialise again after finalize");
    int broker_on;
    int rc = switch_env("MPROC_SHARED_BROKER", &broker_on);
    if (rc == 0) rc = mproc__sh_broker_addr_setting();
    if (rc < 0) return rc;
    if ((rc = mproc__registry_freeze()) < 0) return rc;
    const mproc__backend_entry *chosen = NULL;
    if ((rc = choose(&chosen)) < 0) return rc;
    const mproc__backend_ops *ops = chosen->ops();
    if (ops->version != MPROC__BACKEND_VERSION)
        return mproc__error(MPROC_ENOTBUILT, "mproc_init: the %s backend speaks interface version %d, this "
                            "library %d: rebuild them together", chosen->name, ops->version, MPROC__BACKEND_VERSION);
    rc = ops->init(argc, argv);
    if (rc == MPROC_ENOTBUILT && chosen->kind == MPROC_BACKEND_MPI && !mproc__env("MPROC_BACKEND")) {
        rc = without_mpi_build(argc, argv, &chosen);
    } else if (rc == 1) { /* one MPI rank only: run on local fork workers */
        if (mproc__env("MPROC_BACKEND")) /* asked for by name: say why it is not MPI */
            fprintf(stderr, "mproc: MPROC_BACKEND=mpi, but this program is the only rank (start it with "
                            "mpirun -np N, N > 1): running on local fork workers\n");
        chosen = mproc__backend_find("fork");
        rc = chosen->ops()->init(argc, argv);
    }
    if (rc < 0) return rc;
    mproc__runtime_start(chosen->ops(), chosen->kind, mproc_finalize);
    atexit(finalize_at_exit);
    /* The master serves its shared objects to the ranks of other nodes. Without it (no IPv4
     * address, or MPROC_SHARED_BROKER=0) they get MPROC_EREMOTE there, saying so. */
    if (chosen->kind == MPROC_BACKEND_MPI && broker_on != 0) mproc__sh_broker_start();
    return 0;
}

/* Every failure names mproc_init first, as the pool calls name themselves, whichever layer
 * found it (a bad MPROC_ variable is read deep in a backend). */
int mproc_init(int *argc, char ***argv) {
    int rc = init(argc, argv);
    static const char me[] = "mproc_init: ";
    if (rc < 0 && strncmp(mproc_last_error(), me, sizeof me - 1) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", mproc_last_error());
        mproc__error(rc, "%s%s", me, why);
    }
    return rc;
}

int mproc_finalize(void) {
    const mproc__backend_ops *ops = mproc__backend();
    if (!ops) return 0;
    /* A worker or Process child that calls exit() runs the master's atexit hook too; its
     * copies of the master's pools are not its own (their threads did not survive the fork),
     * and shutting them down would wait forever. The child just leaves. */
    if (!mproc__runtime_is_init_process()) return 0;
    /* In a callback the pool's loop is below us on this thread: it cannot be waited for, and
     * it would go on with the backend gone. exit() there leaves as a crash would. */
    if (mproc__in_pool_loop())
        return mproc__error(MPROC_ESTATE, "mproc_finalize: called in a pool's callback (on the pool's own loop, "
                                          "or inside a cancel); call it after the callback returns");
    mproc__pools_shutdown();
    mproc__processes_shutdown();
    mproc__runtime_stop();
    return ops->finalize();
}
