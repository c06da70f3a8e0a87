/* init_watch.c - MPI_Init bounded by MPROC_MPI_START_TIMEOUT: a thread that ends the rank with a
 * sentence when MPI_Init has not returned in time (init_watch.h says why).
 *
 * The thread is made after the fork server (fork_server.c) has been forked, so no fork happens
 * while it runs. It sleeps on a condition variable on the monotonic clock and ends the process
 * with _exit: MPI is not usable yet, so there is no MPI_Abort to call; mpirun sees a rank that
 * ended without MPI_Finalize and ends the job.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/mpi/init_watch.h"
#include "common/common.h"

/* Extra seconds a worker rank gives the master to speak first. */
#define WORKER_GRACE_S 5.0

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, done;
    double secs;
} watch = {.mu = PTHREAD_MUTEX_INITIALIZER};

int mproc__mpi_start_timeout(double *secs) {
    const char *s = mproc__env("MPROC_MPI_START_TIMEOUT");
    *secs = 120.0;
    if (!s || !*s) return 0;
    double t;
    if (mproc__parse_seconds(s, &t) < 0 || t > 1e9)
        return mproc__error(MPROC_EINVAL, "MPROC_MPI_START_TIMEOUT='%s': want seconds up to 1e9 (0: wait forever)", s);
    *secs = t > 0 ? t : -1.0;
    return 0;
}

/* The launcher's word on this process: its rank and the job's size ("?" when it says nothing). */
static const char *launcher_var(const char *const *names) {
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) return v;
    }
    return "?";
}

static void *watch_main(void *unused) {
    (void)unused;
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", NULL};
    const char *rank = launcher_var(rank_vars), *size = launcher_var(size_vars);
    double wait = watch.secs + (strcmp(rank, "0") != 0 ? WORKER_GRACE_S : 0.0);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)wait;
    until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&watch.mu);
    int rc = 0;
    while (!watch.done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&watch.cv, &watch.mu, &until);
    int done = watch.done;
    pthread_mutex_unlock(&watch.mu);
    if (done) return NULL;
    fprintf(stderr,
            "mproc: rank %s: MPI_Init did not finish within %g s: some of the job's %s ranks never called "
            "mproc_init%s (every rank must run the same program and reach mproc_init; set "
            "MPROC_MPI_START_TIMEOUT=seconds, 0 = forever); ending this rank\n",
            rank, watch.secs, size,
            /* Below a few seconds the start itself may be what took longer (a trial's 1e-6 s). */
            watch.secs < 5 ? ", or MPI takes longer than that to start here" : "");
    fflush(stderr);
    _exit(1);
}

void mproc__mpi_init_watch_start(double secs) {
    if (secs < 0 || watch.running) return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&watch.cv, &ca);
    pthread_condattr_destroy(&ca);
    watch.secs = secs;
    watch.done = 0;
    /* Without the thread MPI_Init is merely unbounded, as it was: say so, go on. */
    if (pthread_create(&watch.thread, NULL, watch_main, NULL) != 0) {
        fprintf(stderr, "mproc: cannot start the watch on MPI_Init: %s; it may wait for ever\n", strerror(errno));
        pthread_cond_destroy(&watch.cv);
        return;
    }
    watch.running = 1;
}

void mproc__mpi_init_watch_stop(void) {
    if (!watch.running) return;
    pthread_mutex_lock(&watch.mu);
    watch.done = 1;
    pthread_cond_signal(&watch.cv);
    pthread_mutex_unlock(&watch.mu);
    pthread_join(watch.thread, NULL);
    pthread_cond_destroy(&watch.cv);
    watch.running = 0;
}
