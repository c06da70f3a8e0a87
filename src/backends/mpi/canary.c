/* canary.c - the watch a worker rank that runs tasks itself (MPROC_MPI_EXECUTORS=0) keeps on
 * its own descriptors: a task that closes descriptors it did not open ends the rank with a
 * sentence naming the task, instead of leaving the job hung (canary.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/mpi/canary.h"
#include "backends/mpi/world.h"
#include "backends/spawn.h"
#include "worker/worker.h"

/* Tasks inside the rank (MPROC_MPI_EXECUTORS=0) share its process: one that closes descriptors
 * it did not open takes MPI's connections with them, and the job hung (a new-user trial: the
 * master waiting for ever, ranks left running; over TCP the rank itself stuck inside Open MPI's
 * error report). A descriptor of our own (a memfd: an inode no one else has) is looked at every
 * 100 ms by a thread of its own, wherever the main thread is stuck (an fstat per result would
 * cost 0.4 us, 10% of a call); gone or replaced, the rank ends naming the task it ran last (the
 * culprit or one after it), and Open MPI ends the job as for a task's exit(). */
static int canary_fd = -1;
static struct stat canary_st;

static void *canary_watch(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        nanosleep(&tick, NULL);
        struct stat st;
        int rc = fstat(canary_fd, &st);
        if (rc < 0 ? errno != EBADF : st.st_dev == canary_st.st_dev && st.st_ino == canary_st.st_ino) continue;
        uint64_t id = 0;
        const char *task = mproc__last_task(&id);
        /* write(2), not stdio: the main thread may hold stderr's lock, stuck in a write. */
        char msg[512];
        int n = snprintf(msg, sizeof msg,
                         "mproc: worker rank %d (pid %ld): a task closed file descriptors it did not open, MPI's "
                         "among them (the last task this rank ran: '%s', request %llu): the job cannot go on (run "
                         "tasks in executors, the default, to contain this)\n",
                         mproc__mpi.rank, (long)getpid(), task ? task : "?", (unsigned long long)id);
        if (n > 0 && write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0) {
        }
        _exit(1); /* no atexit hooks: exit_watch would blame the task's exit() */
    }
    return NULL;
}

/* The memfd is tracked, so that no child the rank forks keeps it. */
void mproc__mpi_canary_start(void) {
    canary_fd = mproc__fork_memfd("mproc-canary");
    if (canary_fd < 0 || fstat(canary_fd, &canary_st) < 0) return;
    pthread_t t;
    if (pthread_create(&t, NULL, canary_watch, NULL) == 0) pthread_detach(t);
}
