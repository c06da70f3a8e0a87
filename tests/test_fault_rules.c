/* test_fault_rules - the fine print of the README's fault table and pool life cycle, on both
 * backends (under MPI the workers are executors of the worker ranks): the exact EWORKER sentence
 * for a segfault, an abort and an _exit in a task; retries counted; a time limit that is per item
 * in a chunk of several; maxtasksperchild counting a chunk as one task; arguments copied at the
 * call; each pool's fresh workers (no initializer state carried over); close letting queued work
 * finish; free failing pending work with ECLOSED while its handle stays readable; and the CPU
 * count following the affinity mask. test_faults covers the faults themselves.
 */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0) {
    }
}

/* item 3 ends its worker: by SIGSEGV (how 1), abort() (2) or _exit(7) (3); item = 10 * how + i. */
static long die_at_3(long x) {
    long how = x / 10, i = x % 10;
    if (i == 3) {
        if (how == 1) raise(SIGSEGV);
        if (how == 2) abort();
        if (how == 3) _exit(7);
    }
    return i * i;
}
MPROC_TASK_VALUE(die_at_3, long, long);

/* Closes every descriptor from 3 up, the worker's channel to the master among them (a task
 * "cleaning up" before it runs a tool), then returns x. */
static long close_all_fds(long x) {
    for (int fd = 3; fd < 1024; fd++) close(fd);
    return x;
}
MPROC_TASK_VALUE(close_all_fds, long, long);

/* Appends a byte to the file named by the master's pid, then kills its worker. */
static long count_and_die(long master) {
    char path[96];
    snprintf(path, sizeof path, "/tmp/mproc-rules-%ld", master);
    int fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, "x", 1);
        (void)w;
        close(fd);
    }
    raise(SIGKILL);
    return 0;
}
MPROC_TASK_VALUE(count_and_die, long, long);

/* Sleeps its argument in milliseconds and returns it. */
static long nap(long ms) {
    sleep_s((double)ms / 1000.0);
    return ms;
}
MPROC_TASK_VALUE(nap, long, long);

static long worker_pid(long unused) {
    (void)unused;
    return mproc_current_pid();
}
MPROC_TASK_VALUE(worker_pid, long, long);

typedef struct pair {
    long a, b;
} pair;
static pair echo(pair p) { return p; }
MPROC_TASK_VALUE(echo, pair, pair);

/* What the initializer leaves in its worker; a later pool's workers must not see it. */
static long init_mark;
static int set_mark(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx;
    init_mark = len == sizeof(long) ? *(const long *)in : -1;
    return 0;
}
MPROC_TASK(set_mark);

typedef struct seen {
    long pid, mark;
} seen;
static seen pid_and_mark(long unused) {
    (void)unused;
    return (seen){mproc_current_pid(), init_mark};
}
MPROC_TASK_VALUE(pid_and_mark, long, seen);

/* "worker W (pid P) died while running task 'T': <why>" (under MPI followed by " on rank R
 * (host H)"): checks every part, W a worker of the pool and P not ours. */
static void assert_died_sentence(const char *msg, int pool_size, const char *task, const char *why) {
    int w = -1, at = 0;
    long pid = 0;
    char name[64] = "";
    assert_int_equal(sscanf(msg, "worker %d (pid %ld) died while running task '%63[^']': %n", &w, &pid, name, &at), 3);
    assert_true(w >= 0 && w < pool_size);
    assert_true(pid > 0 && pid != (long)getpid());
    assert_string_equal(name, task);
    assert_true(at > 0);
    assert_int_equal(strncmp(msg + at, why, strlen(why)), 0);
    if (mproc_backend() == MPROC_BACKEND_MPI) {
        assert_non_null(strstr(msg + at, " on rank "));
        assert_non_null(strstr(msg + at, " (host "));
    }
}

/* A chunk of 8 items whose item 3 ends its worker: only item 3 fails, with the sentence. */
static void check_death(long how, const char *why) {
    enum { N = 8 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    long in[N], out[N];
    int status[N];
    for (int i = 0; i < N; i++) {
        in[i] = 10 * how + i;
        out[i] = -1;
    }
    int rc = mproc_map(pool, &die_at_3_task, in, sizeof in[0], out, sizeof out[0], N,
                       &(mproc_call_opts){.chunksize = N, .item_status = status});
    assert_int_equal(rc, MPROC_EWORKER);
    assert_died_sentence(mproc_last_error(), mproc_pool_size(pool), "die_at_3", why);
    for (int i = 0; i < N; i++) {
        if (i == 3) {
            assert_int_equal(status[i], MPROC_EWORKER);
            assert_int_equal(out[i], -1);
        } else {
            assert_int_equal(status[i], 0);
            assert_int_equal(out[i], (long)i * i);
        }
    }
    /* A replacement worker took over: the pool goes on. */
    long x = 4, y = 0;
    assert_int_equal(MPROC_APPLY(pool, die_at_3, &x, &y), 0);
    assert_int_equal(y, 16);
    mproc_pool_free(pool);
}

static void test_segfault_sentence(void **state) { check_death(1, "killed by signal 11 (Segmentation fault)"); }
static void test_abort_sentence(void **state) { check_death(2, "killed by signal 6 (Aborted)"); }
static void test_exit_sentence(void **state) { check_death(3, "exited with status 7"); }

/* A worker whose channel a task closed ends with a sentence that says so, not "a task must
 * return, not call exit()" (it returned; its worker then failed to write its reply to a closed
 * descriptor and exited 0, which was blamed on the task). Its result may still reach the master
 * first (through the ring), so a call may also succeed; the pool goes on either way. */
static void test_a_task_closing_the_channel_is_named(void **state) {
    (void)state;
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    int failed = 0;
    for (long i = 0; i < 6; i++) {
        long y = -1;
        int rc = MPROC_APPLY(pool, close_all_fds, &i, &y);
        if (rc == 0) {
            assert_int_equal(y, i);
            continue;
        }
        failed++;
        assert_int_equal(rc, MPROC_EWORKER);
        assert_died_sentence(mproc_last_error(), mproc_pool_size(pool), "close_all_fds",
                             "lost its channel (a task closed file descriptors it did not open?)");
        assert_null(strstr(mproc_last_error(), "exit()"));
    }
    assert_true(failed > 0); /* about 9 in 10 calls fail here: the worker dies before its reply is read */
    long x = 4, y = 0;
    assert_int_equal(MPROC_APPLY(pool, die_at_3, &x, &y), 0);
    assert_int_equal(y, 16);
    mproc_pool_free(pool);
}

/* max_retries = N: a task that always kills its worker runs 1 + N times, then fails. */
static void test_retries_run_the_task_n_more_times(void **state) {
    char path[96];
    snprintf(path, sizeof path, "/tmp/mproc-rules-%ld", (long)getpid());
    unlink(path);
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .max_retries = 2}), 0);
    long master = getpid(), out = 0;
    assert_int_equal(MPROC_APPLY(pool, count_and_die, &master, &out), MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "killed by signal 9 (Killed)"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);
    unlink(path);
    mproc_pool_free(pool);
}

/* A 0.3 s limit per item, chunks of 4 items (1.2 s each): item 1 takes 0.5 s and its chunk
 * ends within 1.2 s, so it succeeds; item 5 takes 2 s, its chunk runs out, is re-run item by
 * item, and only item 5 fails, on its own 0.3 s, with the sentence. */
static void test_time_limit_is_per_item(void **state) {
    enum { N = 8 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1, .task_timeout = 0.3}), 0);
    long in[N] = {0, 500, 0, 0, 0, 2000, 0, 0}, out[N];
    int status[N];
    for (int i = 0; i < N; i++) out[i] = -1;
    int rc = mproc_map(pool, &nap_task, in, sizeof in[0], out, sizeof out[0], N,
                       &(mproc_call_opts){.chunksize = 4, .item_status = status});
    assert_int_equal(rc, MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "task 'nap' ran past its 0.3 s time limit"));
    for (int i = 0; i < N; i++) {
        assert_int_equal(status[i], i == 5 ? MPROC_ETIMEDOUT : 0);
        assert_int_equal(out[i], i == 5 ? -1 : in[i]);
    }
    mproc_pool_free(pool);
}

/* maxtasksperchild = 1 with chunks of 2: one worker per chunk, both items of a chunk on it. */
static void test_maxtasksperchild_counts_a_chunk_once(void **state) {
    enum { N = 8 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1, .maxtasksperchild = 1}), 0);
    long zeros[N] = {0}, pids[N] = {0};
    assert_int_equal(mproc_map(pool, &worker_pid_task, zeros, sizeof zeros[0], pids, sizeof pids[0], N,
                               &(mproc_call_opts){.chunksize = 2}),
                     0);
    for (int i = 0; i < N; i += 2) {
        assert_true(pids[i] > 0);
        assert_int_equal(pids[i], pids[i + 1]);
        for (int j = 0; j < i; j++) assert_true(pids[i] != pids[j]);
    }
    mproc_pool_free(pool);
}

/* apply_async copies its argument: changing it after the call, while the task waits behind
 * another, changes nothing. */
static void test_arguments_are_copied(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    long ms = 300;
    mproc_async *busy, *a;
    assert_int_equal(MPROC_APPLY_ASYNC(pool, nap, &ms, &busy), 0);
    pair p = {1, 2};
    assert_int_equal(MPROC_APPLY_ASYNC(pool, echo, &p, &a), 0);
    p.a = 100;
    p.b = 200;
    pair got = {0, 0};
    assert_int_equal(mproc_async_get_into(a, 10.0, &got, sizeof got), 0);
    assert_int_equal(got.a, 1);
    assert_int_equal(got.b, 2);
    mproc_async_free(a);
    mproc_async_free(busy);
    mproc_pool_free(pool);
}

/* Each pool starts fresh workers: what one pool's initializer set is not in the next pool's. */
static void test_each_pool_has_fresh_workers(void **state) {
    enum { N = 4 };
    long mark = 42, zeros[N] = {0};
    seen first[N], second[N];
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .initializer = &set_mark_task,
                                                                   .initarg = &mark, .initarg_len = sizeof mark}),
                     0);
    assert_int_equal(mproc_map(pool, &pid_and_mark_task, zeros, sizeof zeros[0], first, sizeof first[0], N,
                               &(mproc_call_opts){.chunksize = 1}),
                     0);
    mproc_pool_free(pool);
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    assert_int_equal(mproc_map(pool, &pid_and_mark_task, zeros, sizeof zeros[0], second, sizeof second[0], N,
                               &(mproc_call_opts){.chunksize = 1}),
                     0);
    mproc_pool_free(pool);
    for (int i = 0; i < N; i++) {
        assert_int_equal(first[i].mark, 42);
        assert_int_equal(second[i].mark, 0);
        for (int j = 0; j < N; j++) assert_true(second[i].pid != first[j].pid);
    }
}

/* close: no new work, but what was queued runs to the end and join returns after it. */
static void test_close_lets_queued_work_finish(void **state) {
    enum { K = 4 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    mproc_async *a[K];
    long ms = 100;
    for (int i = 0; i < K; i++) assert_int_equal(MPROC_APPLY_ASYNC(pool, nap, &ms, &a[i]), 0);
    assert_int_equal(mproc_pool_close(pool), 0);
    mproc_async *late;
    assert_int_equal(MPROC_APPLY_ASYNC(pool, nap, &ms, &late), MPROC_ECLOSED);
    assert_int_equal(mproc_pool_join(pool), 0);
    for (int i = 0; i < K; i++) {
        assert_int_equal(mproc_async_ready(a[i]), 1);
        long got = 0;
        assert_int_equal(mproc_async_get_into(a[i], 0, &got, sizeof got), 0);
        assert_int_equal(got, 100);
        mproc_async_free(a[i]);
    }
    mproc_pool_free(pool);
}

/* free with work pending: the work fails with ECLOSED, and the handle is still there to read
 * and free. */
static void test_free_fails_pending_work(void **state) {
    enum { N = 6 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    long in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = 500;
    mproc_async *m;
    assert_int_equal(mproc_map_async(pool, &nap_task, in, sizeof in[0], out, sizeof out[0], N,
                                     &(mproc_call_opts){.chunksize = 1}, &m),
                     0);
    assert_int_equal(mproc_pool_free(pool), 0);
    assert_int_equal(mproc_async_ready(m), 1);
    assert_int_equal(mproc_async_get(m, 0, NULL, NULL), MPROC_ECLOSED);
    assert_int_equal(mproc_async_successful(m), 0);
    assert_non_null(mproc_async_error(m));
    assert_int_equal(mproc_async_free(m), 0);
}

/* mproc_cpu_count follows the affinity mask; on fork, processes = 0 is that many workers. */
static void test_cpu_count_follows_affinity(void **state) {
    cpu_set_t was, one;
    assert_int_equal(sched_getaffinity(0, sizeof was, &was), 0);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &was)) first = c;
    assert_true(first >= 0);
    assert_int_equal(mproc_cpu_count(), CPU_COUNT(&was));
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    int n = mproc_cpu_count();
    int size = -1;
    if (mproc_backend() == MPROC_BACKEND_FORK) {
        mproc_pool *pool;
        assert_int_equal(mproc_pool_create(&pool, NULL), 0);
        size = mproc_pool_size(pool);
        mproc_pool_free(pool);
    }
    assert_int_equal(sched_setaffinity(0, sizeof was, &was), 0);
    assert_int_equal(n, 1);
    if (size >= 0) assert_int_equal(size, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_segfault_sentence),
    cmocka_unit_test(test_abort_sentence),
    cmocka_unit_test(test_exit_sentence),
    cmocka_unit_test(test_a_task_closing_the_channel_is_named),
    cmocka_unit_test(test_retries_run_the_task_n_more_times),
    cmocka_unit_test(test_time_limit_is_per_item),
    cmocka_unit_test(test_maxtasksperchild_counts_a_chunk_once),
    cmocka_unit_test(test_arguments_are_copied),
    cmocka_unit_test(test_each_pool_has_fresh_workers),
    cmocka_unit_test(test_close_lets_queued_work_finish),
    cmocka_unit_test(test_free_fails_pending_work),
    cmocka_unit_test(test_cpu_count_follows_affinity),
};

MPROC_TEST_MAIN(tests)
