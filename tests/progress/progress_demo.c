/* progress_demo [N] - a map of N tasks of 10 ms (default 300: about 1.5 s on two workers) that
 * draws the progress bar when MPROC_PROGRESS=1 says so, for progress_tty.sh to watch in a
 * terminal and progress_file.sh to time into a file. Prints "sum=<n>" when done.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
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
    long n = argc > 1 ? atol(argv[1]) : 300;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "progress_demo: N must be 1..100000\n");
        return 2;
    }
    long *in = calloc((size_t)n, sizeof *in), *out = calloc((size_t)n, sizeof *out);
    if (!in || !out) return 2;
    for (long i = 0; i < n; i++) in[i] = i;
    MPROC_CHECK(mproc_map(pool, &nap10_task, in, sizeof *in, out, sizeof *out, (size_t)n,
                          &(mproc_call_opts){.chunksize = 1}));
    long sum = 0;
    for (long i = 0; i < n; i++) sum += out[i];
    printf("sum=%ld\n", sum);
    mproc_pool_free(pool);
    free(in);
    free(out);
    return 0;
}
