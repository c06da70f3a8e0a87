/* test_process - Process, end to end: start/join, exit codes as Python reports them, timeouts,
 * terminate and kill, names, and bad use. The same source runs under fork and under mpirun.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

static int square(mproc_ctx *ctx, const void *arg, size_t len) {
    long n = *(const long *)arg;
    printf("The square of %ld is %ld\n", n, n * n);
    return 0;
}
MPROC_TASK(square);

static int nap(mproc_ctx *ctx, const void *arg, size_t len) {
    sleep(30);
    return 0;
}
MPROC_TASK(nap);

static int failing(mproc_ctx *ctx, const void *arg, size_t len) { return mproc_fail(ctx, "on purpose"); }
MPROC_TASK(failing);

static int leave(mproc_ctx *ctx, const void *arg, size_t len) { _exit(*(const int *)arg); }
MPROC_TASK(leave);

/* exit(), not _exit(): runs the atexit hooks the child inherited from the master. */
static int leave_with_atexit(mproc_ctx *ctx, const void *arg, size_t len) { exit(*(const int *)arg); }
MPROC_TASK(leave_with_atexit);

static int crash(mproc_ctx *ctx, const void *arg, size_t len) {
    raise(SIGSEGV);
    return 0;
}
MPROC_TASK(crash);

static int wait_for_term(mproc_ctx *ctx, const void *arg, size_t len) {
    sleep(30);
    return 0;
}
MPROC_TASK(wait_for_term);

/* Runs target once as a Process and returns its exit code; the join may not hang. */
static int exitcode_of(const mproc_task *target, int arg) {
    mproc_process *p;
    int code = 12345;
    assert_int_equal(mproc_process_create(&p, target, &arg, sizeof arg, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_join(p, 20), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    mproc_process_free(p);
    return code;
}

static void on_signal(int sig) { (void)sig; }

/* A child leaves by exit() or dies of its own crash the way it would alone, whatever the
 * master's atexit hooks, signal handlers and signal mask are. */
static void test_exit_and_signals_are_the_childs_own(void **state) {
    assert_int_equal(exitcode_of(&leave_with_atexit_task, 3), 3);
    struct sigaction sa, old_segv, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGTERM, &sa, &old_term);
    sigset_t term, old_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old_mask);
    assert_int_equal(exitcode_of(&crash_task, 0), -SIGSEGV);
    mproc_process *p;
    int code = 0;
    assert_int_equal(mproc_process_create(&p, &wait_for_term_task, NULL, 0, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    usleep(100000);
    assert_int_equal(mproc_process_terminate(p), 0);
    assert_int_equal(mproc_process_join(p, 10), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, -SIGTERM);
    mproc_process_free(p);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    /* A failed call clears its out-parameter. */
    code = 99;
    assert_int_equal(mproc_process_exitcode(NULL, &code), MPROC_EBADHANDLE);
    assert_int_equal(code, 0);
}

/* Exits 0 only if the process sees the name it was given and is no pool worker. */
static int check_name(mproc_ctx *ctx, const void *arg, size_t len) {
    if (strcmp(mproc_current_name(), (const char *)arg) != 0) return mproc_fail(ctx, "wrong name %s", mproc_current_name());
    return mproc_current_index() == -1 ? 0 : mproc_fail(ctx, "index %d", mproc_current_index());
}
MPROC_TASK(check_name);

static void test_seed_process_square(void **state) {
    long n = 5;
    mproc_process *p;
    assert_int_equal(mproc_process_create(&p, &square_task, &n, sizeof n, NULL), 0);
    assert_int_equal(mproc_process_pid(p), 0);
    assert_int_equal(mproc_process_is_alive(p), 0);
    assert_int_equal(strncmp(mproc_process_name(p), "Process-", 8), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_true(mproc_process_pid(p) > 0);
    assert_int_equal(mproc_process_join(p, NAN), MPROC_EINVAL); /* a NaN timeout is refused */
    assert_non_null(strstr(mproc_last_error(), "NaN"));
    assert_int_equal(mproc_process_join(p, INFINITY), 0); /* waits for ever, as -1 */
    int code = -100;
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(mproc_process_is_alive(p), 0);
    assert_int_equal(mproc_process_free(p), 0);
}

static void test_join_timeout_terminate_kill(void **state) {
    mproc_process *p, *q;
    assert_int_equal(mproc_process_create(&p, &nap_task, NULL, 0, "sleeper"), 0);
    assert_string_equal(mproc_process_name(p), "sleeper");
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_join(p, 0.05), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_process_is_alive(p), 1);
    int code;
    assert_int_equal(mproc_process_exitcode(p, &code), MPROC_ESTATE);
    assert_int_equal(mproc_process_free(p), MPROC_EBUSY);
    assert_int_equal(mproc_process_terminate(p), 0);
    assert_int_equal(mproc_process_join(p, 10.0), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, -SIGTERM);
    assert_int_equal(mproc_process_terminate(p), 0); /* already ended: nothing to do */
    assert_int_equal(mproc_process_free(p), 0);

    assert_int_equal(mproc_process_create(&q, &nap_task, NULL, 0, NULL), 0);
    assert_int_equal(mproc_process_start(q), 0);
    assert_int_equal(mproc_process_kill(q), 0);
    assert_int_equal(mproc_process_join(q, 10.0), 0);
    assert_int_equal(mproc_process_exitcode(q, &code), 0);
    assert_int_equal(code, -SIGKILL);
    mproc_process_free(q);
}

static void test_exit_codes(void **state) {
    mproc_process *p;
    int code;
    assert_int_equal(mproc_process_create(&p, &failing_task, NULL, 0, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_join(p, -1), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, 1);
    mproc_process_free(p);
    int seven = 7;
    assert_int_equal(mproc_process_create(&p, &leave_task, &seven, sizeof seven, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_join(p, -1), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, 7);
    mproc_process_free(p);
    const char *name = "custom-name";
    assert_int_equal(mproc_process_create(&p, &check_name_task, name, strlen(name) + 1, name), 0);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_join(p, -1), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    mproc_process_free(p);
}

static void test_four_processes(void **state) {
    mproc_process *p[4];
    long n[4] = {1, 2, 3, 4};
    long pids[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mproc_process_create(&p[i], &square_task, &n[i], sizeof n[i], NULL), 0);
        assert_int_equal(mproc_process_start(p[i]), 0);
        pids[i] = mproc_process_pid(p[i]);
    }
    for (int i = 0; i < 4; i++) {
        int code;
        assert_int_equal(mproc_process_join(p[i], -1), 0);
        assert_int_equal(mproc_process_exitcode(p[i], &code), 0);
        assert_int_equal(code, 0);
        assert_int_equal(mproc_process_free(p[i]), 0);
    }
    if (mproc_backend() == MPROC_BACKEND_FORK)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < i; j++) assert_true(pids[i] != pids[j]);
}

static void test_bad_use(void **state) {
    mproc_process *p = (mproc_process *)state;
    long n = 1;
    mproc_task stranger = {"stranger", square, NULL, 0, 0, NULL, -1};
    assert_int_equal(mproc_process_create(NULL, &square_task, &n, sizeof n, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_create(&p, NULL, &n, sizeof n, NULL), MPROC_ENOTASK);
    assert_null(p);
    assert_int_equal(mproc_process_create(&p, &stranger, &n, sizeof n, NULL), MPROC_ENOTASK);
    assert_int_equal(mproc_process_create(&p, &square_task, NULL, 8, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_start(NULL), MPROC_EBADHANDLE);
    assert_int_equal(mproc_process_join(NULL, 0), MPROC_EBADHANDLE);
    assert_int_equal(mproc_process_free(NULL), 0);
    assert_int_equal(mproc_process_create(&p, &square_task, &n, sizeof n, NULL), 0);
    assert_int_equal(mproc_process_join(p, 0), MPROC_ESTATE);     /* never started */
    assert_int_equal(mproc_process_terminate(p), MPROC_ESTATE);
    int code;
    assert_int_equal(mproc_process_exitcode(p, &code), MPROC_ESTATE);
    assert_int_equal(mproc_process_exitcode(p, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_process_start(p), 0);
    assert_int_equal(mproc_process_start(p), MPROC_ESTATE);       /* once only */
    assert_int_equal(mproc_process_join(p, -1), 0);
    assert_int_equal(mproc_process_free(p), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exit_and_signals_are_the_childs_own),
    cmocka_unit_test(test_seed_process_square),
    cmocka_unit_test(test_join_timeout_terminate_kill),
    cmocka_unit_test(test_exit_codes),
    cmocka_unit_test(test_four_processes),
    cmocka_unit_test(test_bad_use),
};

MPROC_TEST_MAIN(tests)
