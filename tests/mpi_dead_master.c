/* mpi_dead_master.c - the master (rank 0) is SIGKILLed under `mpirun --enable-recovery`, where
 * Open MPI no longer ends the job for it: the worker ranks on its node must see it gone and end
 * themselves, their executors and fork servers with them (docs/mpi.md, "A lost rank").
 * mpi_dead_master.sh checks that mpirun ends in time, that each worker rank said so, and that
 * no process this program printed is left.
 *
 * The master prints the pid of every executor and of its rank (an executor's parent's parent:
 * executor -> fork server -> rank), then kills itself.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"

/* An executor's pid, its fork server's and its rank's. */
static int family(mproc_ctx *ctx, const void *in, size_t len) {
    (void)in, (void)len;
    long me = (long)getpid(), server = mproc_test_parent_of(me), pids[3] = {me, server, mproc_test_parent_of(server)};
    usleep(200000); /* so that each worker takes one */
    return mproc_return(ctx, pids, sizeof pids);
}
MPROC_TASK(family);

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool;
    if (mproc_pool_create(&pool, NULL) != 0) {
        fprintf(stderr, "FAIL: pool: %s\n", mproc_last_error());
        return 1;
    }
    int n = mproc_pool_size(pool);
    mproc_async *a[64];
    for (int i = 0; i < n && i < 64; i++)
        if (mproc_apply_async(pool, &family_task, NULL, 0, NULL, &a[i]) != 0) return 1;
    for (int i = 0; i < n && i < 64; i++) {
        long pids[3];
        if (mproc_async_get_into(a[i], 30, pids, sizeof pids) != 0) {
            fprintf(stderr, "FAIL: family %d: %s\n", i, mproc_last_error());
            return 1;
        }
        printf("pids %ld %ld %ld\n", pids[0], pids[1], pids[2]);
    }
    printf("master %ld dies\n", (long)getpid());
    fflush(stdout);
    raise(SIGKILL);
    return 1;
}
