/* mpi_rank_crash.c - a task that segfaults on a worker rank in the middle of a map.
 *
 * Under MPI a dead rank ends the whole job (Open MPI's rule); what mproc promises is that it
 * ends promptly, with a non-zero exit, and that stderr names the rank and the task. The
 * script mpi_rank_crash.sh runs this under mpirun and checks all three; the program itself
 * must never get past the map.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mproc.h"

/* Segfaults on item 37 (a real invalid write, not raise(), so the handler sees a true fault). */
static long crash_on_37(long x) {
    if (x == 37) {
        volatile int *volatile p = NULL;
        *p = 1;
    }
    usleep(1000);
    return x * 2;
}
MPROC_TASK_VALUE(crash_on_37, long, long);

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool = NULL;
    if (mproc_pool_create(&pool, NULL) < 0) {
        fprintf(stderr, "pool: %s\n", mproc_last_error());
        return 2;
    }
    enum { N = 200 };
    static long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_call_opts opts = {0};
    opts.chunksize = 1;
    int rc = mproc_map(pool, &crash_on_37_task, in, sizeof *in, out, sizeof *out, N, &opts);
    /* Only reached if the job was not ended: that is the failure this test looks for. */
    printf("map returned %d (%s) and the job went on\n", rc, mproc_last_error());
    mproc_pool_free(pool);
    mproc_finalize();
    return 0;
}
