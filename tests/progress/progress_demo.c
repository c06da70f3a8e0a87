/* progress_demo - a map of 300 tasks of 10 ms (about 1.5 s on two workers) that draws the
 * progress bar when MPROC_PROGRESS=1 says so, for progress_tty.sh to watch in a terminal.
 * Prints "sum=<n>" when done.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "mproc.h"

static long nap10(long x) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
    return x;
}
MPROC_TASK_VALUE(nap10, long, long);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}));
    enum { N = 300 };
    static long in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = i;
    MPROC_CHECK(mproc_map(pool, &nap10_task, in, sizeof *in, out, sizeof *out, N, &(mproc_call_opts){.chunksize = 1}));
    long sum = 0;
    for (int i = 0; i < N; i++) sum += out[i];
    printf("sum=%ld\n", sum);
    mproc_pool_free(pool);
    return 0;
}
