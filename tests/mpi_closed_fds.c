/* mpi_closed_fds.c - a task that closes every descriptor from 3 up (a "clean up before running
 * a tool" gone wrong) on worker ranks.
 *
 * With executors (the default) only the executor's channel goes: its call fails with
 * MPROC_EWORKER saying the worker lost its channel, and the pool goes on (this program prints
 * "mpi_closed_fds: ok"). With tasks inside the ranks (MPROC_MPI_EXECUTORS=0) MPI's own
 * connections go with them, and the job hung (a new-user trial); now the rank ends within
 * 100 ms saying so and naming the last task it ran, and the job ends non-zero (mpi_tests.cmake
 * runs that under mpi_expect_fail.sh), while this program goes on calling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static long close_all_fds(long x) {
    for (int fd = 3; fd < 1024; fd++) close(fd);
    return x;
}
MPROC_TASK_VALUE(close_all_fds, long, long);

static long twice(long x) { return 2 * x; }
MPROC_TASK_VALUE(twice, long, long);

#define FAIL(...) (fprintf(stderr, "mpi_closed_fds: " __VA_ARGS__), fputc('\n', stderr), exit(1))

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) FAIL("%s", mproc_last_error());
    mproc_pool *pool = NULL;
    if (mproc_pool_create(&pool, NULL) < 0) FAIL("pool: %s", mproc_last_error());
    int failed = 0, calls = 0;
    for (long i = 0; i < 16 && failed < 2; i++, calls++) { /* a result may slip out first */
        long y = -1;
        int rc = MPROC_APPLY(pool, close_all_fds, &i, &y);
        if (rc == 0 && y != i) FAIL("call %ld returned %ld", i, y);
        if (rc == 0) continue;
        failed++;
        if (rc != MPROC_EWORKER || !strstr(mproc_last_error(), "lost its channel (a task closed file descriptors"))
            FAIL("call %ld: %s: %s", i, mproc_strerror(rc), mproc_last_error());
    }
    const char *e = getenv("MPROC_MPI_EXECUTORS");
    if (e && strcmp(e, "0") == 0) { /* the rank ends the job within 100 ms; until then, calls */
        for (long i = 0; i < 2000; i++) {
            long y = -1;
            MPROC_APPLY(pool, twice, &i, &y);
            usleep(10000);
        }
        FAIL("the job went on for 20 s with the ranks' descriptors closed");
    }
    if (failed == 0) FAIL("no call failed: the channel was closed every time");
    enum { N = 100 };
    long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;
    if (mproc_map(pool, &twice_task, in, sizeof *in, out, sizeof *out, N, NULL) < 0)
        FAIL("map after: %s", mproc_last_error());
    for (long i = 0; i < N; i++)
        if (out[i] != 2 * i) FAIL("out[%ld] = %ld", i, out[i]);
    mproc_pool_free(pool);
    mproc_finalize();
    printf("mpi_closed_fds: ok (%d of %d calls failed, the pool went on)\n", failed, calls);
    return 0;
}
