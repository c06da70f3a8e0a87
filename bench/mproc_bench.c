/* mproc_bench - the mproc side of the benchmark: one workload per run, the same workloads and
 * the same one-line output as the peers in bench/peers/, so bench/run.sh can interleave them.
 * The peer name says the backend: mproc_fork (build/bench/mproc_bench) or mproc_mpi
 * (./mpirun.sh -np 3 build/bench/mproc_bench: a master and 2 worker ranks). Always 2 workers.
 *
 *   mproc_bench apply [N=200000]       N apply_async of x*x, all collected      -> tasks/s
 *   mproc_bench map   [N=10000000] [REPS=1]  map x*x over N longs, chunksize 10,000, REPS
 *                                      times on one pool (total items / total time) -> items/s
 *   mproc_bench spawn [N=1000]         start+join of N Processes, empty target   -> us/proc
 *   mproc_bench bytes [NBLOBS=16]      map over 8 MiB blobs, task returns length -> MB/s
 *   mproc_bench gran T CHUNK [NTASKS]  T-us busy tasks, chunksize 1 or auto      -> parallel s
 *   mproc_bench imapmem [N=10000000]   imap over N generated longs               -> peak RSS MiB
 *   mproc_bench rtt [N=20000]          N blocking applies, one at a time         -> us/call
 *   mproc_bench jmap N CHUNK POLICY    map x*x over N longs in chunks of CHUNK with a journal
 *                                      (POLICY interval|always|never; none: no
 *                                      journal; writeall: out written to a file
 *                                      after the map, the floor)               -> items/s
 *   mproc_bench scale [N=20000]        a pool of every worker (MPI: every rank): N apply_async
 *                                      and a map of 100 N items, chunks of 100  -> master CPU
 *                                      us per task (all its threads), with its peak RSS
 */
#define _GNU_SOURCE
#include <math.h>
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 2
#define BLOB (8u << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

/* The same calibrated busy loop as the peers. */
static volatile long spin_sink; /* keeps the busy loop from being optimised away */
__attribute__((noinline)) static long spin(long n) {
    long s = 0;
    for (long i = 0; i < n; i++) s += i ^ spin_sink;
    spin_sink = s;
    return n;
}
MPROC_TASK_VALUE(spin, long, long);

static int blob_len(mproc_ctx *ctx, const void *in, size_t len) {
    long n = (long)len;
    return mproc_return(ctx, &n, sizeof n);
}
MPROC_TASK(blob_len);

static int empty(mproc_ctx *ctx, const void *in, size_t len) { return 0; }
MPROC_TASK(empty);

static double calibrate(void) { /* iterations per microsecond, best of 5 */
    long n = 1000000;
    double dt;
    for (;;) {
        double t = now();
        spin(n);
        dt = now() - t;
        if (dt > 0.05) break;
        n *= 2;
    }
    for (int i = 0; i < 5; i++) {
        double t = now();
        spin(n);
        double d = now() - t;
        if (d < dt) dt = d;
    }
    return (double)n / (dt * 1e6);
}

/* Under MPI with MPROC_MPI_EXECUTORS=0 the tasks run inside the ranks: a peer of its own. */
static const char *peer(void) {
    if (mproc_backend() != MPROC_BACKEND_MPI) return "mproc_fork";
    const char *x = getenv("MPROC_MPI_EXECUTORS");
    return x && strcmp(x, "0") == 0 ? "mproc_mpi_inrank" : "mproc_mpi";
}

static void result(const char *w, const char *param, double value, const char *unit, double serial,
                   int ok, size_t n, const char *extra) {
    char ser[32] = "-";
    if (serial >= 0) snprintf(ser, sizeof ser, "%.6f", serial);
    printf("RESULT peer=%s workload=%s param=%s value=%.6g unit=%s serial=%s check=%s n=%zu%s\n", peer(), w,
           param, value, unit, ser, ok ? "ok" : "BAD", n, extra ? extra : "");
}

static size_t arg(int argc, char **argv, int i, size_t dflt) {
    return argc > i ? strtoul(argv[i], NULL, 10) : dflt;
}

static mproc_pool *pool_of_two(void) {
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = WORKERS}));
    return pool;
}

static void bench_apply(size_t n) {
    mproc_pool *pool = pool_of_two();
    mproc_async **h = malloc(n * sizeof *h);
    long *x = malloc(n * sizeof *x), sum = 0, want = 0;
    for (size_t i = 0; i < n; i++) x[i] = (long)(i % 1000);
    double t = now();
    for (size_t i = 0; i < n; i++) MPROC_CHECK(MPROC_APPLY_ASYNC(pool, square, &x[i], &h[i]));
    for (size_t i = 0; i < n; i++) {
        long v;
        MPROC_CHECK(MPROC_GET(h[i], &v));
        sum += v;
        mproc_async_free(h[i]);
    }
    double dt = now() - t;
    for (size_t i = 0; i < n; i++) want += x[i] * x[i];
    result("apply", "-", (double)n / dt, "tasks/s", -1, sum == want, n, NULL);
    mproc_pool_free(pool);
    free(h);
    free(x);
}

/* One blocking apply at a time: the round trip a loop of mproc_apply calls pays. */
static void bench_rtt(size_t n) {
    mproc_pool *pool = pool_of_two();
    long sum = 0, want = 0, x, y;
    for (size_t i = 0; i < 100; i++) { /* warm: connections made, estimates settled */
        x = (long)i;
        MPROC_CHECK(MPROC_APPLY(pool, square, &x, &y));
    }
    double t = now();
    for (size_t i = 0; i < n; i++) {
        x = (long)(i % 1000);
        MPROC_CHECK(MPROC_APPLY(pool, square, &x, &y));
        sum += y;
        want += x * x;
    }
    double dt = now() - t;
    result("rtt", "-", dt / (double)n * 1e6, "us/call", -1, sum == want, n, NULL);
    mproc_pool_free(pool);
}

static void bench_map(size_t n, size_t reps) {
    mproc_pool *pool = pool_of_two();
    long *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) in[i] = (long)i;
    double dt = 0;
    int ok = 1;
    for (size_t r = 0; r < reps; r++) {
        memset(out, 0xff, n * sizeof *out); /* fault the pages in, poison: as the C floors do */
        double t = now();
        MPROC_CHECK(mproc_map(pool, &square_task, in, sizeof *in, out, sizeof *out, n, &(mproc_call_opts){.chunksize = 10000}));
        dt += now() - t;
        for (size_t i = 0; i < n; i++) ok &= out[i] == (long)i * (long)i;
    }
    result("map", "-", (double)(n * reps) / dt, "items/s", -1, ok, n * reps, NULL);
    mproc_pool_free(pool);
    free(in);
    free(out);
}

/* The journal's cost: map x*x over n longs in chunks of `chunk`, with a journal in a fresh
 * file under the policy named (none: no journal). */
static void bench_jmap(size_t n, size_t chunk, const char *policy) {
    mproc_pool *pool = pool_of_two();
    long *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) in[i] = (long)i;
    memset(out, 0xff, n * sizeof *out);
    char path[64];
    snprintf(path, sizeof path, "/tmp/mproc-bench-journal-%ld", (long)getpid());
    unlink(path);
    /* writeall: no journal; the results written to a file after the map - the least any
     * program that keeps its results does, and the floor the journal is measured against. */
    int writeall = !strcmp(policy, "writeall");
    mproc_call_opts o = {.chunksize = chunk, .journal = strcmp(policy, "none") && !writeall ? path : NULL};
    o.journal_sync = !strcmp(policy, "always") ? MPROC_JOURNAL_ALWAYS : !strcmp(policy, "never") ? MPROC_JOURNAL_NEVER
                                                                                                   : MPROC_JOURNAL_INTERVAL;
    double t = now();
    MPROC_CHECK(mproc_map(pool, &square_task, in, sizeof *in, out, sizeof *out, n, &o));
    if (writeall) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(out, sizeof *out, n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "mproc_bench: cannot write %s\n", path);
            exit(1);
        }
    }
    double dt = now() - t;
    unlink(path);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= out[i] == (long)i * (long)i;
    char param[64];
    snprintf(param, sizeof param, "chunk%zu-%s", chunk, policy);
    result("jmap", param, (double)n / dt, "items/s", -1, ok, n, NULL);
    mproc_pool_free(pool);
    free(in);
    free(out);
}

static void bench_spawn(size_t n) {
    int ok = 1;
    double t = now();
    for (size_t i = 0; i < n; i++) {
        mproc_process *p;
        int code = -1;
        MPROC_CHECK(mproc_process_create(&p, &empty_task, NULL, 0, NULL));
        MPROC_CHECK(mproc_process_start(p));
        MPROC_CHECK(mproc_process_join(p, -1));
        MPROC_CHECK(mproc_process_exitcode(p, &code));
        ok &= code == 0;
        mproc_process_free(p);
    }
    double dt = now() - t;
    result("spawn", "-", dt / (double)n * 1e6, "us/proc", -1, ok, n, NULL);
}

static void bench_bytes(size_t nb) {
    mproc_pool *pool = pool_of_two();
    char *blobs = malloc(nb * (size_t)BLOB);
    long *out = calloc(nb, sizeof *out);
    memset(blobs, 7, nb * (size_t)BLOB);
    double t = now();
    MPROC_CHECK(mproc_map(pool, &blob_len_task, blobs, BLOB, out, sizeof *out, nb, &(mproc_call_opts){.chunksize = 1}));
    double dt = now() - t;
    int ok = 1;
    for (size_t i = 0; i < nb; i++) ok &= out[i] == (long)BLOB;
    result("bytes", "8MiB", (double)nb * BLOB / 1e6 / dt, "MB/s", -1, ok, nb, NULL);
    mproc_pool_free(pool);
    free(blobs);
    free(out);
}

static void bench_gran(long T, const char *cs, size_t n_arg) {
    double ipu = calibrate();
    long iters = lround((double)T * ipu);
    if (iters < 1) iters = 1;
    size_t n = n_arg ? n_arg : (size_t)lround(0.5e6 / (double)T);
    size_t chunk = strcmp(cs, "auto") == 0 ? 0 : strtoul(cs, NULL, 10);
    long *in = malloc(n * sizeof *in), *out = calloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++) in[i] = iters;
    /* The serial reference is timed before and after the parallel run and averaged: this
     * machine's speed drifts, and the two bracket the parallel run in time. */
    double t = now();
    for (size_t i = 0; i < n; i++) out[i] = spin(in[i]);
    double ser_before = now() - t;
    memset(out, 0, n * sizeof *out);
    mproc_pool *pool = pool_of_two();
    t = now();
    MPROC_CHECK(mproc_map(pool, &spin_task, in, sizeof *in, out, sizeof *out, n, &(mproc_call_opts){.chunksize = chunk}));
    double par = now() - t;
    mproc_pool_free(pool);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= out[i] == iters;
    t = now();
    for (size_t i = 0; i < n; i++) out[i] = spin(in[i]);
    double ser_after = now() - t, ser = (ser_before + ser_after) / 2;
    char param[64], extra[160];
    snprintf(param, sizeof param, "T%ld_c%s", T, cs);
    snprintf(extra, sizeof extra, " iters=%ld ser_before=%.6f ser_after=%.6f eff=%.3f", iters, ser_before,
             ser_after, ser / (WORKERS * par));
    result("gran", param, par, "s", ser, ok, n, extra);
}

static int gen(void *ud, size_t i, void *item) {
    if (i >= *(size_t *)ud) return 0;
    *(long *)item = (long)i;
    return 1;
}

static long peak_rss_kib(void) {
    char line[256];
    long v = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* What the master spends per task as the rank count grows: its own CPU time (every thread of
 * it) over N tasks and a map of 100 N items, and its peak RSS. */
static void bench_scale(size_t n) {
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    int workers = mproc_pool_size(pool);
    size_t m = 100 * n;
    mproc_async **h = malloc(n * sizeof *h);
    long *x = malloc(m * sizeof *x), *y = malloc(m * sizeof *y), sum = 0, want = 0;
    for (size_t i = 0; i < m; i++) x[i] = (long)(i % 1000);
    double c0 = cpu_seconds(), t = now();
    for (size_t i = 0; i < n; i++) MPROC_CHECK(MPROC_APPLY_ASYNC(pool, square, &x[i], &h[i]));
    for (size_t i = 0; i < n; i++) {
        long v;
        MPROC_CHECK(MPROC_GET(h[i], &v));
        sum += v;
        want += x[i] * x[i];
        mproc_async_free(h[i]);
    }
    MPROC_CHECK(mproc_map(pool, &square_task, x, sizeof *x, y, sizeof *y, m, &(mproc_call_opts){.chunksize = 100}));
    double cpu = cpu_seconds() - c0, wall = now() - t;
    int ok = sum == want;
    for (size_t i = 0; i < m; i++) ok &= y[i] == x[i] * x[i];
    char extra[96];
    snprintf(extra, sizeof extra, " workers=%d rss_mib=%.1f wall=%.3f chunks=%zu", workers, (double)peak_rss_kib() / 1024.0, wall, n + m / 100);
    result("scale", "-", cpu / (double)(n + m / 100) * 1e6, "us_cpu/task", -1, ok, n, extra);
    mproc_pool_free(pool);
    free(h);
    free(x);
    free(y);
}

static void bench_imapmem(size_t n) {
    mproc_pool *pool = pool_of_two();
    mproc_iter *it;
    MPROC_CHECK(mproc_imap_gen(pool, &square_task, gen, &n, sizeof(long), 1, &(mproc_call_opts){.chunksize = 10000}, &it));
    const void *d;
    size_t len, idx, got = 0;
    int ok = 1, rc;
    double t = now();
    while ((rc = mproc_iter_next(it, -1, &d, &len, &idx)) == 0) {
        ok &= *(const long *)d == (long)idx * (long)idx;
        got++;
    }
    double dt = now() - t;
    mproc_iter_free(it);
    mproc_pool_free(pool);
    char extra[64];
    snprintf(extra, sizeof extra, " items_per_s=%.0f", (double)got / dt);
    result("imapmem", "-", (double)peak_rss_kib() / 1024.0, "MiB", -1, ok && got == n && rc == MPROC_EOF, n, extra);
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    const char *w = argc > 1 ? argv[1] : "";
    if (!strcmp(w, "apply")) bench_apply(arg(argc, argv, 2, 200000));
    else if (!strcmp(w, "map")) bench_map(arg(argc, argv, 2, 10000000), arg(argc, argv, 3, 1));
    else if (!strcmp(w, "rtt")) bench_rtt(arg(argc, argv, 2, 20000));
    else if (!strcmp(w, "scale")) bench_scale(arg(argc, argv, 2, 20000));
    else if (!strcmp(w, "spawn")) bench_spawn(arg(argc, argv, 2, 1000));
    else if (!strcmp(w, "bytes")) bench_bytes(arg(argc, argv, 2, 16));
    else if (!strcmp(w, "gran") && argc > 3) bench_gran(atol(argv[2]), argv[3], arg(argc, argv, 4, 0));
    else if (!strcmp(w, "imapmem")) bench_imapmem(arg(argc, argv, 2, 10000000));
    else if (!strcmp(w, "jmap") && argc > 4) bench_jmap(arg(argc, argv, 2, 0), arg(argc, argv, 3, 1), argv[4]);
    else {
        fprintf(stderr, "usage: %s apply|map|rtt|scale|spawn|bytes|gran T CHUNK|imapmem [N]\n", argv[0]);
        return 2;
    }
    return mproc_finalize() < 0;
}
