/* mpi_efficiency - 1 ms tasks, one per chunk (the hardest case for the master), on every
 * worker rank: the parallel efficiency must stay high. Run as `mpirun -np 3` on two cores, it
 * checks that nobody busy-waits: a master or idle rank that spun would take a core from a
 * worker, and a master that noticed results late would leave workers idle.
 *
 * efficiency = (items x 1 ms) / (wall time x workers). Other load on the machine lowers it too,
 * so each round first measures the best this machine gives right now: as many plain forked
 * processes as workers, each running its share of the same 1 ms tasks back to back, with no
 * coordination at all. The score is mproc's efficiency over that baseline's, best of five
 * rounds; the bar is MPROC_MIN_EFFICIENCY (default 0.8: a master that spun would take a
 * third of the two cores and score about 0.67).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1 ms of work, by the clock. */
static long one_ms(long x) {
    double end = now() + 1e-3;
    while (now() < end) {
    }
    return x;
}
MPROC_TASK_VALUE(one_ms, long, long);

/* The same n tasks on w forked processes without any coordination: the machine's best. */
static double baseline(size_t n, int w) {
    double t0 = now();
    for (int k = 0; k < w; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (size_t i = (size_t)k; i < n; i += (size_t)w) one_ms((long)i);
            _exit(0);
        }
        if (pid < 0) return 1.0; /* cannot tell: compare against the ideal */
    }
    while (wait(NULL) > 0) {
    }
    double eff = (double)n * 1e-3 / ((now() - t0) * w);
    return eff > 1.0 ? 1.0 : eff;
}

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 1;
    }
    const char *s = getenv("MPROC_MIN_EFFICIENCY");
    double bar = s ? atof(s) : 0.8, best = 0;
    size_t n = 2000;
    long *in = calloc(n, sizeof *in), *out = calloc(n, sizeof *out);
    mproc_pool_opts o = {0};
    o.processes = mproc_max_workers() < 64 ? mproc_max_workers() : 64;
    mproc_pool *pool;
    if (!in || !out || mproc_pool_create(&pool, &o) < 0) {
        fprintf(stderr, "pool: %s\n", mproc_last_error());
        return 1;
    }
    int w = mproc_pool_size(pool);
    mproc_call_opts co = {0};
    co.chunksize = 1;
    for (int round = 0; round < 5; round++) {
        double base = baseline(n, w);
        double t0 = now();
        if (mproc_map(pool, &one_ms_task, in, sizeof *in, out, sizeof *out, n, &co) < 0) {
            fprintf(stderr, "map: %s\n", mproc_last_error());
            return 1;
        }
        double wall = now() - t0, eff = (double)n * 1e-3 / (wall * w), score = eff / base;
        printf("%s: %zu x 1 ms tasks, chunksize 1, %d workers: %.3f s, efficiency %.3f; "
               "uncoordinated processes here now: %.3f; score %.3f\n",
               mproc_backend_name(), n, w, wall, eff, base, score);
        if (score > best) best = score;
    }
    mproc_pool_free(pool);
    mproc_finalize();
    free(in);
    free(out);
    printf("best score %.3f (bar %.2f)\n", best, bar);
    return best >= bar ? 0 : 1;
}
