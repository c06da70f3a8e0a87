/* primes - the main job: count the primes below a limit (default 10^7) by splitting [2, limit)
 * into ranges mapped over a pool, then time the same map on a one-worker pool and print the
 * speed-up.
 *
 *   build/jobs/primes [--limit N] [--ranges K] [--fail]
 *   ./mpirun.sh -np 4 build/jobs/primes
 * --fail adds an invalid range: the task's error is printed and the job exits with status 3.
 */
#define _POSIX_C_SOURCE 200809L
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct range {
    long lo, hi;
} range;

static int is_prime(long n) {
    if (n < 2) return 0;
    if (n % 2 == 0 || n % 3 == 0) return n < 4;
    for (long d = 5; d * d <= n; d += 6)
        if (n % d == 0 || n % (d + 2) == 0) return 0;
    return 1;
}

static int count_primes(mproc_ctx *ctx, const range *r, long *count) {
    if (r->lo < 0 || r->hi < r->lo) return mproc_fail(ctx, "invalid range [%ld, %ld)", r->lo, r->hi);
    *count = 0;
    for (long n = r->lo; n < r->hi; n++) *count += is_prime(n);
    return 0;
}
MPROC_TASK_TYPED(count_primes, range, long);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Maps count_primes over the ranges on a pool of `workers` (0 = one per CPU, or every worker
 * rank under MPI); returns the total and sets *used to the pool's real size. */
static long run(int workers, const range *ranges, long *counts, int k, double *seconds, int *used) {
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = workers}));
    *used = mproc_pool_size(pool);
    double t0 = now();
    int rc = mproc_map(pool, &count_primes_task, ranges, sizeof *ranges, counts, sizeof *counts, k,
                       &(mproc_call_opts){.chunksize = 1});
    *seconds = now() - t0;
    mproc_pool_free(pool);
    if (rc < 0) {
        fprintf(stderr, "primes: %s: %s\n", mproc_err_name(rc), mproc_last_error());
        exit(3);
    }
    long total = 0;
    for (int i = 0; i < k; i++) total += counts[i];
    return total;
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    long limit = 10000000;
    int k = 64, fail = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ranges") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fail")) fail = 1;
        else {
            fprintf(stderr, "usage: %s [--limit N] [--ranges K] [--fail]\n", argv[0]);
            return 2;
        }
    }
    if (limit < 2 || k < 1) {
        fprintf(stderr, "primes: need --limit >= 2 and --ranges >= 1\n");
        return 2;
    }
    range *ranges = malloc(sizeof *ranges * k);
    long *counts = malloc(sizeof *counts * k);
    for (int i = 0; i < k; i++) {
        ranges[i].lo = limit * i / k;
        ranges[i].hi = limit * (i + 1) / k;
    }
    if (fail) ranges[k / 2] = (range){10, 5};
    double t_all, t_one;
    int workers, one;
    long total = run(0, ranges, counts, k, &t_all, &workers);
    run(1, ranges, counts, k, &t_one, &one);
    printf("primes below %ld: %ld\n", limit, total);
    printf("backend %s, %d workers: %.3f s; one worker: %.3f s; speed-up %.2fx\n", mproc_backend_name(),
           workers, t_all, t_one, t_one / t_all);
    free(ranges);
    free(counts);
    return mproc_finalize() < 0;
}
