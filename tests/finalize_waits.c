/* finalize_waits - mproc_finalize waits for Processes still running (README: "as Python waits
 * for its non-daemon children") and frees a pool still open: a Process that writes a file after
 * 0.5 s has written it when mproc_finalize returns, and finalize took that long. Fork and MPI
 * (the Process then runs on a worker rank of this machine). Prints "finalize_waits: ok". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sleeps 0.5 s, then creates the file named by its argument. */
static int late_mark(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx;
    (void)len;
    struct timespec t = {0, 500000000L};
    nanosleep(&t, NULL);
    int fd = open((const char *)in, O_CREAT | O_WRONLY, 0600);
    if (fd >= 0) close(fd);
    return 0;
}
MPROC_TASK(late_mark);

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    char path[96];
    snprintf(path, sizeof path, "/tmp/mproc-finalize-waits-%ld", (long)getpid());
    unlink(path);
    mproc_pool *pool; /* left open: finalize frees it */
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}));
    long x = 7, y = 0;
    MPROC_CHECK(MPROC_APPLY(pool, square, &x, &y));
    mproc_process *p;
    MPROC_CHECK(mproc_process_create(&p, &late_mark_task, path, sizeof path, NULL));
    MPROC_CHECK(mproc_process_start(p));
    double t0 = now();
    MPROC_CHECK(mproc_finalize());
    double took = now() - t0;
    int marked = access(path, F_OK) == 0;
    unlink(path);
    int ec = -1;
    if (mproc_process_exitcode(p, &ec) < 0 || ec != 0 || mproc_process_free(p) < 0) { /* still yours to free */
        fprintf(stderr, "finalize_waits: after finalize: exit code %d, %s\n", ec, mproc_last_error());
        return 1;
    }
    if (!marked || took < 0.3 || y != 49) {
        fprintf(stderr, "finalize_waits: finalize returned after %.2f s, the Process's file %s\n", took,
                marked ? "is there" : "is missing");
        return 1;
    }
    printf("finalize_waits: ok (%.2f s)\n", took);
    return 0;
}
