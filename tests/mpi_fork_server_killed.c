/* mpi_fork_server_killed - a worker rank's fork server (the process its executors and Processes
 * are forked from, docs/mpi.md) killed mid-job: the executor dies with it, so the task it ran
 * fails (MPROC_EWORKER), and then the rank forks its executors and Processes itself. A new-user
 * trial found the rank's worker lost for the rest of the job instead, in silence (pool_size still
 * counting it, later maps split 30/30/0). mpi_tests.cmake runs it under mpirun -np 3 (2 worker
 * ranks, an executor each) and wants the rank's warning. Checks: the failed task's message says
 * why; every later map and a second pool use every worker and are right; Processes start and
 * end on that rank. With `process` (-np 2): a Process running when its server is killed ends
 * -9, as a killed process does, and the next one runs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

#define FAIL(...) (fprintf(stderr, "mpi_fork_server_killed: " __VA_ARGS__), fputc('\n', stderr), exit(1))

/* In an executor, the parent is the fork server. */
static long kill_my_server(long x) {
    kill(getppid(), SIGKILL);
    struct timespec t = {5, 0}; /* the executor dies with its server (PR_SET_PDEATHSIG) */
    nanosleep(&t, NULL);
    return x;
}
MPROC_TASK_VALUE(kill_my_server, long, long);

typedef struct who {
    int index;
    long sq;
} who;
static who index_and_square(long x) {
    struct timespec t = {0, 5000000L}; /* long enough that every worker gets items */
    nanosleep(&t, NULL);
    return (who){mproc_current_index(), x * x};
}
MPROC_TASK_VALUE(index_and_square, long, who);

static int exit_seven(mproc_ctx *ctx, const void *in, size_t len) { _exit(7); }
MPROC_TASK(exit_seven);

/* A Process forked by the server: its parent is the server. */
static int kill_my_server_then_wait(mproc_ctx *ctx, const void *in, size_t len) {
    kill(getppid(), SIGKILL);
    sleep(10); /* killed with its server (PR_SET_PDEATHSIG) */
    _exit(3);
}
MPROC_TASK(kill_my_server_then_wait);

/* `process` mode (-np 2): a running Process dies with its rank's server; it ends -9 (killed),
 * not 255 (which reads as its own _exit status), and the next Process runs. */
static void process_mode(void) {
    for (int i = 0; i < 2; i++) {
        mproc_process *pr;
        int code = 0;
        MPROC_CHECK(mproc_process_create(&pr, i == 0 ? &kill_my_server_then_wait_task : &exit_seven_task, NULL, 0, NULL));
        MPROC_CHECK(mproc_process_start(pr));
        MPROC_CHECK(mproc_process_join(pr, 30));
        MPROC_CHECK(mproc_process_exitcode(pr, &code));
        if (code != (i == 0 ? -9 : 7)) FAIL("Process %d ended %d, want %d", i, code, i == 0 ? -9 : 7);
        MPROC_CHECK(mproc_process_free(pr));
    }
}

static void map_on_every_worker(mproc_pool *p, const char *when) {
    enum { N = 60 };
    long in[N];
    who out[N];
    for (int i = 0; i < N; i++) in[i] = i;
    MPROC_CHECK(mproc_map(p, &index_and_square_task, in, sizeof *in, out, sizeof *out, N, &(mproc_call_opts){.chunksize = 1}));
    int seen[64] = {0}, n = mproc_pool_size(p);
    for (int i = 0; i < N; i++) {
        if (out[i].sq != (long)i * i) FAIL("%s: item %d is %ld", when, i, out[i].sq);
        if (out[i].index >= 0 && out[i].index < 64) seen[out[i].index] = 1;
    }
    for (int w = 0; w < n; w++)
        if (!seen[w]) FAIL("%s: worker %d of %d ran nothing", when, w, n);
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    if (mproc_backend() != MPROC_BACKEND_MPI) FAIL("run it under mpirun");
    if (argc > 1 && strcmp(argv[1], "process") == 0) {
        process_mode();
        printf("mpi_fork_server_killed: ok\n");
        return mproc_finalize() < 0;
    }
    mproc_pool *p;
    MPROC_CHECK(mproc_pool_create(&p, &(mproc_pool_opts){.processes = 2}));
    map_on_every_worker(p, "before");
    long x = 3, r = 0;
    /* A worker's server killed under it. */
    mproc_async *a;
    MPROC_CHECK(mproc_apply_async(p, &kill_my_server_task, &x, sizeof x, NULL, &a));
    int rc = mproc_async_get_into(a, 30, &r, sizeof r);
    if (rc != MPROC_EWORKER) FAIL("the task whose server was killed: %s (%s), want MPROC_EWORKER", mproc_err_name(rc), mproc_last_error());
    if (!strstr(mproc_last_error(), "with its fork server, which was killed"))
        FAIL("the task whose server was killed says: %s", mproc_last_error());
    mproc_async_free(a);
    for (int round = 0; round < 3; round++) map_on_every_worker(p, "after");
    MPROC_CHECK(mproc_pool_free(p));
    MPROC_CHECK(mproc_pool_create(&p, NULL));
    map_on_every_worker(p, "a second pool");
    MPROC_CHECK(mproc_pool_free(p));
    for (int i = 0; i < 4; i++) { /* Processes land on both ranks, the one without a server too */
        mproc_process *pr;
        int code = 0;
        MPROC_CHECK(mproc_process_create(&pr, &exit_seven_task, NULL, 0, NULL));
        MPROC_CHECK(mproc_process_start(pr));
        MPROC_CHECK(mproc_process_join(pr, 30));
        MPROC_CHECK(mproc_process_exitcode(pr, &code));
        if (code != 7) FAIL("Process %d ended %d, want 7", i, code);
        MPROC_CHECK(mproc_process_free(pr));
    }
    printf("mpi_fork_server_killed: ok\n");
    return mproc_finalize() < 0;
}
