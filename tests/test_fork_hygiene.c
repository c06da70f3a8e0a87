/* test_fork_hygiene - what only the fork backend can promise, checked from the outside:
 * output is not duplicated by fork, workers are reaped (no zombies) and die with their master,
 * a crashing worker fails only its own task and is replaced, and a task past its time limit is
 * killed with ETIMEDOUT.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

static long my_pid(long unused) { return mproc_current_pid(); }
MPROC_TASK_VALUE(my_pid, long, long);

static int say(mproc_ctx *ctx, const void *in, size_t len) {
    printf("task-output %d\n", *(const int *)in);
    return 0;
}
MPROC_TASK(say);

static long crash_every_100th(long x) {
    if (x % 100 == 42) raise(SIGSEGV);
    return x + 1;
}
MPROC_TASK_VALUE(crash_every_100th, long, long);

static long slow_if_negative(long ms) {
    if (ms < 0) sleep(30);
    return ms;
}
MPROC_TASK_VALUE(slow_if_negative, long, long);

static int count_in_file(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void test_stdout_not_duplicated(void **state) {
    char path[] = "/tmp/mproc-stdout-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    pid_t child = fork();
    if (child == 0) {
        dup2(fd, 1);
        setvbuf(stdout, NULL, _IOFBF, 4096); /* a file: fully buffered, as in a batch job */
        printf("marker-before-pool\n");
        mproc_pool *pool;
        int nums[4] = {1, 2, 3, 4};
        if (mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}) < 0) _exit(10);
        if (mproc_map(pool, &say_task, nums, sizeof nums[0], NULL, 0, 4, NULL) < 0) _exit(11);
        mproc_pool_free(pool);
        printf("marker-before-process\n");
        mproc_process *p;
        if (mproc_process_create(&p, &say_task, &nums[0], sizeof nums[0], NULL) < 0) _exit(12);
        mproc_process_start(p);
        mproc_process_join(p, -1);
        mproc_process_free(p);
        fflush(stdout);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count_in_file(path, "marker-before-pool"), 1);
    assert_int_equal(count_in_file(path, "marker-before-process"), 1);
    assert_int_equal(count_in_file(path, "task-output"), 5);
    close(fd);
    unlink(path);
}

static int quiet(mproc_ctx *ctx, const void *in, size_t len) { return 0; }
MPROC_TASK(quiet);

static void *print_markers(void *arg) {
    for (int i = 0; i < *(int *)arg; i++) printf("mark %d\n", i);
    return NULL;
}

/* Another thread's text, buffered between the flush before a fork and the fork itself, is the
 * parent's to write: a child (a Process here; a pool worker alike) must never write it too. */
static void test_output_of_other_threads_not_duplicated_by_forks(void **state) {
    char path[] = "/tmp/mproc-threads-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    enum { MARKS = 300000 };
    pid_t child = fork();
    if (child == 0) {
        dup2(fd, 1);
        setvbuf(stdout, NULL, _IOFBF, 4096);
        int marks = MARKS;
        pthread_t t;
        if (pthread_create(&t, NULL, print_markers, &marks) != 0) _exit(10);
        for (int k = 0; k < 300; k++) {
            mproc_process *p;
            if (mproc_process_create(&p, &quiet_task, NULL, 0, NULL) < 0 || mproc_process_start(p) < 0) _exit(11);
            mproc_process_join(p, -1);
            mproc_process_free(p);
        }
        pthread_join(t, NULL);
        fflush(stdout);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count_in_file(path, "mark "), MARKS);
    close(fd);
    unlink(path);
}

static void test_no_zombies_after_free(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 3}), 0);
    long in[60] = {0}, pids[60];
    assert_int_equal(mproc_map(pool, &my_pid_task, in, sizeof in[0], pids, sizeof pids[0], 60, &(mproc_call_opts){.chunksize = 1}), 0);
    assert_int_equal(mproc_pool_free(pool), 0);
    for (int i = 0; i < 60; i++) {
        assert_true(pids[i] != getpid());
        assert_true(kill((pid_t)pids[i], 0) < 0 && errno == ESRCH); /* reaped, not a zombie */
    }
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left at all */
    assert_int_equal(errno, ECHILD);
}

static void test_workers_die_with_master(void **state) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t master = fork();
    if (master == 0) {
        close(fds[0]);
        mproc_pool *pool;
        long in[2] = {0, 0}, pids[2];
        if (mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}) < 0) _exit(10);
        if (mproc_map(pool, &my_pid_task, in, sizeof in[0], pids, sizeof pids[0], 2, &(mproc_call_opts){.chunksize = 1}) < 0) _exit(11);
        if (write(fds[1], pids, sizeof pids) != sizeof pids) _exit(12);
        pause();
        _exit(0);
    }
    close(fds[1]);
    long pids[2];
    assert_int_equal(read(fds[0], pids, sizeof pids), sizeof pids);
    close(fds[0]);
    kill(master, SIGKILL);
    waitpid(master, NULL, 0);
    int all_gone = 0;
    for (int i = 0; i < 100 && !all_gone; i++) {
        all_gone = mproc_test_gone(pids[0]) && mproc_test_gone(pids[1]);
        if (!all_gone) usleep(10000);
    }
    assert_true(all_gone); /* within a second */
}

static void test_crashing_workers_fail_only_their_tasks(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    long x = 42, y = 0;
    assert_int_equal(MPROC_APPLY(pool, crash_every_100th, &x, &y), MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "signal 11"));
    assert_non_null(strstr(mproc_last_error(), "crash_every_100th"));
    enum { N = 10000 };
    long *in = malloc(sizeof(long) * N), *out = calloc(N, sizeof(long));
    int *status = calloc(N, sizeof(int));
    for (long i = 0; i < N; i++) in[i] = i;
    int rc = mproc_map(pool, &crash_every_100th_task, in, sizeof(long), out, sizeof(long), N,
                       &(mproc_call_opts){.item_status = status});
    assert_int_equal(rc, MPROC_EWORKER);
    int errors = 0, good = 0;
    for (long i = 0; i < N; i++) {
        if (i % 100 == 42) errors += status[i] == MPROC_EWORKER;
        else good += status[i] == 0 && out[i] == i + 1;
    }
    assert_int_equal(errors, 100);
    assert_int_equal(good, 9900);
    x = 1;
    assert_int_equal(MPROC_APPLY(pool, crash_every_100th, &x, &y), 0); /* reusable */
    assert_int_equal(y, 2);
    free(in);
    free(out);
    free(status);
    mproc_pool_free(pool);
}

static void test_crash_inside_a_batch_fails_only_its_task(void **state) {
    /* Thousands of tiny apply_async tasks are sent in BATCH frames; a worker that dies in one
     * must cost only the task that crashed it. */
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    enum { N = 6000 };
    long *x = malloc(sizeof(long) * N);
    mproc_async **h = malloc(sizeof *h * N);
    for (long i = 0; i < N; i++) {
        x[i] = i;
        assert_int_equal(MPROC_APPLY_ASYNC(pool, crash_every_100th, &x[i], &h[i]), 0);
    }
    int errors = 0, good = 0;
    for (long i = 0; i < N; i++) {
        long y = 0;
        int rc = MPROC_GET(h[i], &y);
        if (i % 100 == 42) errors += rc == MPROC_EWORKER;
        else good += rc == 0 && y == i + 1;
        mproc_async_free(h[i]);
    }
    assert_int_equal(errors, N / 100);
    assert_int_equal(good, N - N / 100);
    free(x);
    free(h);
    mproc_pool_free(pool);
}

static void test_task_timeout(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .task_timeout = 0.3}), 0);
    long in[6] = {1, -1, 2, 3, -1, 4}, out[6] = {0};
    int status[6];
    int rc = mproc_map(pool, &slow_if_negative_task, in, sizeof in[0], out, sizeof out[0], 6,
                       &(mproc_call_opts){.chunksize = 1, .item_status = status});
    assert_int_equal(rc, MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "time limit"));
    for (int i = 0; i < 6; i++) {
        if (in[i] < 0) assert_int_equal(status[i], MPROC_ETIMEDOUT);
        else assert_int_equal(out[i], in[i]);
    }
    mproc_pool_free(pool);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stdout_not_duplicated),
    cmocka_unit_test(test_output_of_other_threads_not_duplicated_by_forks),
    cmocka_unit_test(test_no_zombies_after_free),
    cmocka_unit_test(test_workers_die_with_master),
    cmocka_unit_test(test_crashing_workers_fail_only_their_tasks),
    cmocka_unit_test(test_crash_inside_a_batch_fails_only_its_task),
    cmocka_unit_test(test_task_timeout),
};

MPROC_TEST_MAIN(tests)
