/* mpi_backend - what only the MPI backend promises, run under `mpirun -np 3` (or more): worker
 * ranks are the pool, one pool at a time, ranks outlive pools (and a terminated pool's late
 * results never reach the next one), frames of any size (packed, split into pieces), timeouts
 * honoured, Processes as children of worker ranks, and no busy-waiting while idle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct who {
    long pid;
    int index;
    char name[32];
} who;

static int whoami(mproc_ctx *ctx, const void *in, size_t len) {
    who *w = mproc_result_alloc(ctx, sizeof *w);
    if (!w) return MPROC_ENOMEM;
    memset(w, 0, sizeof *w);
    w->pid = mproc_current_pid();
    w->index = mproc_current_index();
    snprintf(w->name, sizeof w->name, "%s", mproc_current_name());
    usleep(20000); /* long enough that every worker gets one of a small batch */
    return 0;
}
MPROC_TASK(whoami);

static int echo(mproc_ctx *ctx, const void *in, size_t len) { return mproc_return(ctx, in, len); }
MPROC_TASK(echo);

static long slow_square(long x) {
    usleep(50000);
    return x * x;
}
MPROC_TASK_VALUE(slow_square, long, long);

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

/* A big blob's checksum, after a nap of as many ms as its first byte says. */
static uint64_t blob_sum(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
static int slow_blob_sum(mproc_ctx *ctx, const void *in, size_t len) {
    usleep((useconds_t)((const unsigned char *)in)[0] * 1000u);
    uint64_t h = blob_sum(in, len);
    return mproc_return(ctx, &h, sizeof h);
}
MPROC_TASK(slow_blob_sum);

/* x*x, except that items whose value is 13 mod 10007 fail. */
static int square_or_fail(mproc_ctx *ctx, const void *in, size_t len) {
    long x = *(const long *)in;
    if (x % 10007 == 13) return mproc_fail(ctx, "no square for %ld", x);
    long y = x * x;
    return mproc_return(ctx, &y, sizeof y);
}
MPROC_TASK(square_or_fail);

static int nap(mproc_ctx *ctx, const void *in, size_t len) {
    usleep((useconds_t)(*(const double *)in * 1e6));
    return 0;
}
MPROC_TASK(nap);

static int ranks(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    return s ? atoi(s) : 0;
}

/* Executors per worker rank, as MPROC_MPI_EXECUTORS asks (mpi_tests.cmake sets it, or unsets it
 * and runs every rank on this node unbound, so each may use the CPUs the master may): a number;
 * `auto`, one per CPU; unset, the CPUs shared among the ranks on the node, at least 1. */
static int per_rank(void) {
    const char *s = getenv("MPROC_MPI_EXECUTORS");
    if (s && !strcmp(s, "auto")) return mproc_cpu_count();
    if (!s) {
        int per = mproc_cpu_count() / ranks();
        return per > 1 ? per : 1;
    }
    int k = atoi(s);
    return k > 0 ? k : 1;
}

static int workers(void) { return (ranks() - 1) * per_rank(); }

static void test_backend_and_sizes(void **state) {
    (void)state;
    assert_int_equal(mproc_backend(), MPROC_BACKEND_MPI);
    assert_string_equal(mproc_backend_name(), "mpi");
    assert_int_equal(mproc_max_workers(), workers());
    mproc_pool_opts o = {0};
    o.processes = 1000; /* more than exist: gets what exists */
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &o), 0);
    assert_int_equal(mproc_pool_size(p), workers()); /* every executor of every rank */
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Worker k is rank k+1, named Worker-rank-<rank>, and each has its own pid; with E executors
 * per rank, worker k is executor k % E of rank k / E + 1, named Worker-rank-<rank>.<e>. */
static void test_worker_identity(void **state) {
    (void)state;
    mproc_pool_opts o = {0};
    o.processes = workers();
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &o), 0);
    int n = mproc_pool_size(p);
    char dummy[64] = {0};
    who out[64];
    mproc_call_opts co = {0};
    co.chunksize = 1;
    assert_int_equal(mproc_map(p, &whoami_task, dummy, 1, out, sizeof *out, (size_t)(4 * n), &co), 0);
    for (int i = 0; i < 4 * n; i++) {
        char want[64];
        int k = per_rank();
        if (k == 1) snprintf(want, sizeof want, "Worker-rank-%d", out[i].index + 1);
        else snprintf(want, sizeof want, "Worker-rank-%d.%d", out[i].index / k + 1, out[i].index % k);
        assert_true(out[i].index >= 0 && out[i].index < n);
        assert_string_equal(out[i].name, want);
        assert_true(out[i].pid > 0 && out[i].pid != (long)getpid());
    }
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_one_pool_at_a_time(void **state) {
    (void)state;
    mproc_pool *a, *b = NULL;
    assert_int_equal(mproc_pool_create(&a, NULL), 0);
    assert_int_equal(mproc_pool_create(&b, NULL), MPROC_EBUSY);
    assert_null(b);
    assert_non_null(strstr(mproc_last_error(), "one pool"));
    assert_int_equal(mproc_pool_free(a), 0);
    /* The ranks outlive the pool: a new one works at once. */
    assert_int_equal(mproc_pool_create(&b, NULL), 0);
    long x = 12, y = 0;
    assert_int_equal(MPROC_APPLY(b, square, &x, &y), 0);
    assert_int_equal(y, 144);
    assert_int_equal(mproc_pool_free(b), 0);
}

/* A terminated pool's running tasks are killed with their executors (with tasks in the ranks,
 * MPROC_MPI_EXECUTORS=0, they run on); a result already on its way must be dropped, not taken
 * for the next pool's (same ids may come again). */
static void test_terminate_then_new_pool(void **state) {
    (void)state;
    enum { N = 64 };
    static long in[N], out[N], out2[N];
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_pool *p;
    mproc_async *a;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    mproc_call_opts co = {0};
    co.chunksize = 1;
    assert_int_equal(mproc_map_async(p, &slow_square_task, in, sizeof *in, out, sizeof *out, N,
                                     &co, &a),
                     0);
    usleep(30000);
    assert_int_equal(mproc_pool_terminate(p), 0);
    assert_int_equal(mproc_async_wait(a, 10), 0);
    assert_int_equal(mproc_async_successful(a), 0);
    assert_int_equal(mproc_async_free(a), 0);
    assert_int_equal(mproc_pool_free(p), 0);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(mproc_pool_create(&p, NULL), 0);
        memset(out2, 0, sizeof out2);
        assert_int_equal(mproc_map(p, &square_task, in, sizeof *in, out2, sizeof *out2, N, &co), 0);
        for (long i = 0; i < N; i++) assert_int_equal(out2[i], i * i);
        assert_int_equal(mproc_pool_free(p), 0);
    }
}

/* Frames on both sides of every size boundary of the transport: packed (<= 1 MiB), split
 * into a header and one piece, and into several 8 MiB pieces. */
static void test_payload_sizes(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 65536 - 60, 65536 - 24, 65536, 65537, (1 << 20) - 64, (1 << 20) - 24,
                                   (1 << 20) - 23, 1 << 20,
                                   (8u << 20) - 1, (8u << 20) + 1, (20u << 20) + 3};
    size_t big = (20u << 20) + 3;
    unsigned char *in = malloc(big), *out = malloc(big);
    assert_non_null(in);
    assert_non_null(out);
    for (size_t i = 0; i < big; i++) in[i] = (unsigned char)(i * 2654435761u >> 13);
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t got = 1;
        memset(out, 0, sizes[k] + 1);
        assert_int_equal(mproc_apply(p, &echo_task, in, sizes[k], out, big, &got), 0);
        assert_int_equal(got, sizes[k]);
        assert_memory_equal(in, out, sizes[k]);
    }
    assert_int_equal(mproc_pool_free(p), 0);
    free(in);
    free(out);
}

/* Map inputs of 16 KiB or more go to the ranks straight from the caller's array, read by MPI
 * after the send returned (retained sends): every blob must arrive whole, and a pool that is
 * terminated while such a send waits for a busy rank must not return before the rank has taken
 * it: the caller unmaps the array right after (mmap'd here, so that a rank reading it after
 * that fails with EFAULT and ends the job, whatever malloc's thresholds). Two sizes: one sent
 * whole, one in several 8 MiB pieces. */
static void check_inputs_outlive_their_sends(size_t blob) {
    enum { N = 8 };
    size_t total = (size_t)N * blob;
    unsigned char *in = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t out[N];
    assert_true(in != MAP_FAILED);
    for (size_t i = 0; i < total; i++) in[i] = (unsigned char)(i * 2654435761u >> 11);
    for (int k = 0; k < N; k++) in[(size_t)k * blob] = 0; /* no nap */
    mproc_pool *p;
    mproc_async *a;
    mproc_call_opts co = {0};
    co.chunksize = 1;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    assert_int_equal(mproc_map(p, &slow_blob_sum_task, in, blob, out, sizeof *out, N, &co), 0);
    for (int k = 0; k < N; k++) assert_true(out[k] == blob_sum(in + (size_t)k * blob, blob));
    /* Each rank naps 200 ms in its first blob while its second waits in flight. */
    for (int k = 0; k < N; k++) in[(size_t)k * blob] = 200;
    assert_int_equal(mproc_map_async(p, &slow_blob_sum_task, in, blob, out, sizeof *out, N, &co, &a), 0);
    usleep(50000);
    double t0 = now();
    assert_int_equal(mproc_pool_terminate(p), 0);
    assert_true(now() - t0 < 5.0);
    assert_int_equal(mproc_async_wait(a, 10), 0);
    assert_int_equal(mproc_async_free(a), 0);
    assert_int_equal(mproc_pool_free(p), 0);
    assert_int_equal(munmap(in, total), 0);
    /* The ranks finish the terminated pool's blobs; a new pool works once they have. */
    unsigned char *in2 = malloc(2 * blob);
    assert_non_null(in2);
    memset(in2, 0, 2 * blob);
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    assert_int_equal(mproc_map(p, &slow_blob_sum_task, in2, blob, out, sizeof *out, 2, &co), 0);
    assert_true(out[0] == blob_sum(in2, blob) && out[1] == out[0]);
    assert_int_equal(mproc_pool_free(p), 0);
    free(in2);
}

static void test_big_inputs_outlive_their_sends(void **state) {
    (void)state;
    check_inputs_outlive_their_sends(64u << 10); /* one message after its lead */
    check_inputs_outlive_their_sends(9u << 20);  /* two pieces: 8 MiB and 1 MiB */
}

/* A blocking map's results are received straight into its output array (chunks of 5,000 longs:
 * 40 KB of data each); a map_async's are not (its handle may be freed early), and a chunk with a
 * failed item comes back as a table. All three must fill the output the same way, also when a
 * chunk's results span several 8 MiB pieces. */
static void test_results_received_in_place(void **state) {
    (void)state;
    enum { N = 60000 };
    long *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    int *st = malloc(N * sizeof *st);
    assert_true(in && out && st);
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_pool *p;
    mproc_call_opts co = {0};
    co.chunksize = 5000;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    for (int round = 0; round < 3; round++) {
        memset(out, 0xA5, N * sizeof *out);
        if (round == 0) {
            assert_int_equal(mproc_map(p, &square_task, in, sizeof *in, out, sizeof *out, N, &co), 0);
        } else if (round == 1) {
            mproc_async *a;
            assert_int_equal(mproc_map_async(p, &square_task, in, sizeof *in, out, sizeof *out, N, &co, &a), 0);
            assert_int_equal(mproc_async_wait(a, -1), 0);
            assert_int_equal(mproc_async_successful(a), 1);
            assert_int_equal(mproc_async_free(a), 0);
        } else {
            co.item_status = st;
            assert_int_equal(mproc_map(p, &square_or_fail_task, in, sizeof *in, out, sizeof *out, N, &co), MPROC_ETASK);
            co.item_status = NULL;
        }
        for (long i = 0; i < N; i++) {
            if (round == 2 && i % 10007 == 13) {
                assert_int_equal(st[i], MPROC_ETASK);
                continue;
            }
            if (round == 2) assert_int_equal(st[i], 0);
            assert_true(out[i] == i * i);
        }
    }
    /* Chunks of 1.1M longs: 8.8 MB of results each, more than one 8 MiB piece. */
    enum { BIG = 2200000 };
    long *bin = malloc(BIG * sizeof *bin), *bout = malloc(BIG * sizeof *bout);
    assert_true(bin && bout);
    for (long i = 0; i < BIG; i++) bin[i] = i - BIG / 2;
    co.chunksize = BIG / 2;
    for (int pinned = 1; pinned >= 0; pinned--) {
        memset(bout, 0xA5, BIG * sizeof *bout);
        if (pinned) {
            assert_int_equal(mproc_map(p, &square_task, bin, sizeof *bin, bout, sizeof *bout, BIG, &co), 0);
        } else {
            mproc_async *a;
            assert_int_equal(mproc_map_async(p, &square_task, bin, sizeof *bin, bout, sizeof *bout, BIG, &co, &a), 0);
            assert_int_equal(mproc_async_wait(a, -1), 0);
            assert_int_equal(mproc_async_free(a), 0);
        }
        for (long i = 0; i < BIG; i++) assert_true(bout[i] == bin[i] * bin[i]);
    }
    free(bin);
    free(bout);
    assert_int_equal(mproc_pool_free(p), 0);
    free(in);
    free(out);
    free(st);
}

static void test_timeouts_honoured(void **state) {
    (void)state;
    mproc_pool *p;
    mproc_async *a;
    double secs = 0.5;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    assert_int_equal(mproc_apply_async(p, &nap_task, &secs, sizeof secs, NULL, &a), 0);
    double t0 = now();
    assert_int_equal(mproc_async_wait(a, 0.1), MPROC_ETIMEDOUT);
    double waited = now() - t0;
    assert_true(waited >= 0.095 && waited < 0.35);
    t0 = now();
    assert_int_equal(mproc_async_wait(a, 0), MPROC_ETIMEDOUT);
    assert_true(now() - t0 < 0.05);
    assert_int_equal(mproc_async_wait(a, -1), 0);
    assert_int_equal(mproc_async_free(a), 0);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* CPU seconds a process on this node has used (ranks of this test share the node). */
static double cpu_of(long pid) {
    char buf[1024];
    const char *p = mproc_test_stat(pid, buf, sizeof buf);
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* An open pool with nothing to do, and a Process asleep on a rank: nobody spins. */
static void test_idle_does_not_spin(void **state) {
    (void)state;
    mproc_pool_opts o = {0};
    o.processes = ranks() - 1;
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &o), 0);
    int n = mproc_pool_size(p);
    char dummy[64] = {0};
    who w[64];
    mproc_call_opts co = {0};
    co.chunksize = 1;
    assert_int_equal(mproc_map(p, &whoami_task, dummy, 1, w, sizeof *w, (size_t)(4 * n), &co), 0);
    double secs = 3.0;
    mproc_process *proc;
    assert_int_equal(mproc_process_create(&proc, &nap_task, &secs, sizeof secs, "napper"), 0);
    assert_int_equal(mproc_process_start(proc), 0);
    double before[64], master0 = cpu_of((long)getpid());
    for (int i = 0; i < 4 * n; i++) before[i] = cpu_of(w[i].pid);
    sleep(2);
    for (int i = 0; i < 4 * n; i++) {
        double used = cpu_of(w[i].pid) - before[i];
        if (getenv("MPROC_TEST_VERBOSE")) printf("rank pid %ld: %.3f s CPU in 2 s idle\n", w[i].pid, used);
        assert_true(used < 0.2);
    }
    double used = cpu_of((long)getpid()) - master0;
    if (getenv("MPROC_TEST_VERBOSE")) printf("master: %.3f s CPU in 2 s idle\n", used);
    assert_true(used < 0.2);
    assert_int_equal(mproc_process_join(proc, -1), 0);
    assert_int_equal(mproc_process_free(proc), 0);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* A Process runs on a worker rank while a pool keeps the ranks busy, and its end is seen
 * promptly. */
static void test_process_beside_pool(void **state) {
    (void)state;
    mproc_pool *p;
    mproc_async *a;
    enum { N = 40 };
    static long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    mproc_call_opts co = {0};
    co.chunksize = 1;
    assert_int_equal(mproc_map_async(p, &slow_square_task, in, sizeof *in, out, sizeof *out, N,
                                     &co, &a),
                     0);
    double secs = 0.2;
    mproc_process *proc;
    assert_int_equal(mproc_process_create(&proc, &nap_task, &secs, sizeof secs, NULL), 0);
    assert_int_equal(mproc_process_start(proc), 0);
    assert_true(mproc_process_pid(proc) > 0);
    assert_int_equal(mproc_process_join(proc, 30), 0);
    int code = -1;
    assert_int_equal(mproc_process_exitcode(proc, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(mproc_process_free(proc), 0);
    assert_int_equal(mproc_async_wait(a, -1), 0);
    assert_int_equal(mproc_async_successful(a), 1);
    for (long i = 0; i < N; i++) assert_int_equal(out[i], i * i);
    assert_int_equal(mproc_async_free(a), 0);
    assert_int_equal(mproc_pool_free(p), 0);
}

int main(int argc, char **argv) {
    int rc = mproc_init(&argc, &argv);
    if (rc < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 1;
    }
    if (ranks() < 3) {
        fprintf(stderr, "mpi_backend: run me under mpirun -np 3 or more\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_and_sizes),
        cmocka_unit_test(test_worker_identity),
        cmocka_unit_test(test_one_pool_at_a_time),
        cmocka_unit_test(test_terminate_then_new_pool),
        cmocka_unit_test(test_payload_sizes),
        cmocka_unit_test(test_big_inputs_outlive_their_sends),
        cmocka_unit_test(test_results_received_in_place),
        cmocka_unit_test(test_timeouts_honoured),
        cmocka_unit_test(test_idle_does_not_spin),
        cmocka_unit_test(test_process_beside_pool),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    mproc_finalize();
    return rc;
}
