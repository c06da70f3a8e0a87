/* test_journal - a map's journal, on both backends: a finished journal answers the same call
 * without running anything; a journal cut short (its tail torn off mid-record, or garbage
 * after it) resumes with only the lost items run again; failed and crashed items are recorded
 * and fail again from the journal with their message; another call's journal (other input,
 * task, sizes, count) or a file that is not a journal is refused and left untouched; items
 * cancelled are not recorded; a write error (the file size limit) said with MPROC_ESYS, also
 * when items failed; bad options; one run per journal at a time (a second call of this
 * program, or a call while another program holds the journal, is MPROC_EBUSY and touches nothing).
 * Runs are counted in a file each task appends to.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

static char runs_path[128];

/* x*x + 1; appends a byte to the runs file per run; 13 fails; -7 crashes its worker. */
static int counted(mproc_ctx *ctx, const long *x, long *out) {
    int fd = open(getenv("JOURNAL_TEST_RUNS"), O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, "r", 1);
        (void)w;
        close(fd);
    }
    if (*x == 13) return mproc_fail(ctx, "thirteen is unlucky");
    if (*x == -7) raise(SIGSEGV);
    *out = *x * *x + 1;
    return 0;
}
MPROC_TASK_TYPED(counted, long, long);

static long other(long x) { return x; }
MPROC_TASK_VALUE(other, long, long);

/* Any length in, the same bytes out: one task for calls of different item sizes. */
static int echo_bytes(mproc_ctx *ctx, const void *in, size_t len) { return mproc_return(ctx, in, len); }
MPROC_TASK(echo_bytes);

static long runs(void) {
    struct stat st;
    return stat(runs_path, &st) == 0 ? (long)st.st_size : 0;
}

static void reset_runs(void) { unlink(runs_path); }

/* runs() once it stops growing (for 0.3 s, at most 10 s): under MPI a freed pool's executors
 * are killed by their ranks after mproc_pool_free returns, and a task they had taken may still
 * start meanwhile. */
static long settled_runs(void) {
    long last = runs();
    for (int quiet = 0, i = 0; quiet < 6 && i < 200; i++) {
        usleep(50000);
        long now = runs();
        quiet = now == last ? quiet + 1 : 0;
        last = now;
    }
    return last;
}

static char *journal_path(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/mproc-journal-test-%ld-%s", (long)getpid(), tag);
    unlink(buf);
    return buf;
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

enum { N = 400 };
static long in[N], out[N];
static int st[N];

static mproc_pool *pool_of(int n) {
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &(mproc_pool_opts){.processes = n}), 0);
    return p;
}

static int run_map(mproc_pool *p, const char *journal, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = -1, st[i] = 99;
    return mproc_map(p, &counted_task, in, sizeof *in, out, sizeof *out, n,
                     &(mproc_call_opts){.chunksize = 7, .item_status = st, .journal = journal});
}

static void fill_input(void) {
    for (long i = 0; i < N; i++) in[i] = i + 100; /* no failing items */
}

static void check_results(size_t n) {
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(st[i], 0);
        assert_int_equal(out[i], in[i] * in[i] + 1);
    }
}

static void test_finished_journal_runs_nothing(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "done");
    fill_input();
    reset_runs();
    assert_int_equal(run_map(p, j, N), 0);
    check_results(N);
    assert_true(runs() >= N);
    reset_runs();
    assert_int_equal(run_map(p, j, N), 0); /* every item from the journal */
    check_results(N);
    assert_int_equal(runs(), 0);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Results of the torn-tail input: item N/2 fails (its record splits the runs of results). */
static void check_torn_results(int rc) {
    assert_int_equal(rc, MPROC_ETASK);
    for (size_t i = 0; i < N; i++) {
        if (i == N / 2) {
            assert_int_equal(st[i], MPROC_ETASK);
            continue;
        }
        assert_int_equal(st[i], 0);
        assert_int_equal(out[i], in[i] * in[i] + 1);
    }
}

static void test_torn_tail_is_cut_and_resumed(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "torn");
    fill_input();
    in[N / 2] = 13;
    check_torn_results(run_map(p, j, N));
    long full = file_size(j);
    /* Tear the last record, then add garbage after the tear. */
    assert_int_equal(truncate(j, full - 5), 0);
    int fd = open(j, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "garbage!garbage!garbage!", 24), 24);
    close(fd);
    reset_runs();
    check_torn_results(run_map(p, j, N));
    long rerun = runs(), resumed = file_size(j);
    assert_true(rerun > 0 && rerun < N); /* the torn record's items only */
    /* Now whole again (the garbage was cut): nothing more runs, nothing more is written. */
    reset_runs();
    check_torn_results(run_map(p, j, N));
    assert_int_equal(runs(), 0);
    assert_int_equal(file_size(j), resumed);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_failures_come_back_from_the_journal(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "fail");
    for (long i = 0; i < 50; i++) in[i] = i;
    in[30] = -7;
    reset_runs();
    assert_int_equal(run_map(p, j, 50), MPROC_ETASK);
    assert_non_null(strstr(mproc_last_error(), "thirteen is unlucky"));
    assert_int_equal(st[13], MPROC_ETASK);
    assert_int_equal(st[30], MPROC_EWORKER);
    reset_runs();
    assert_int_equal(run_map(p, j, 50), MPROC_ETASK);
    assert_non_null(strstr(mproc_last_error(), "thirteen is unlucky"));
    assert_int_equal(runs(), 0);
    assert_int_equal(st[13], MPROC_ETASK);
    assert_int_equal(st[30], MPROC_EWORKER);
    assert_int_equal(out[13], -1);
    assert_int_equal(out[12], 12 * 12 + 1);
    assert_int_equal(st[12], 0);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* A journal that cannot be written to (here: the file size limit) does not stop the map, which
 * ends with MPROC_ESYS naming the file - also when items failed, whose first failure is named
 * too and whose statuses are as without a journal. */
static void test_a_journal_write_error_is_said(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2); /* its workers are made with the usual limits */
    char j[128];
    journal_path(j, sizeof j, "full");
    for (long i = 0; i < N; i++) in[i] = i; /* 13 fails */
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = (struct rlimit){1024, old.rlim_max};
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = run_map(p, j, N);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, MPROC_ESYS);
    assert_int_equal(strncmp(mproc_last_error(), "mproc_map: journal ", 19), 0); /* the call named */
    assert_non_null(strstr(mproc_last_error(), j));
    assert_non_null(strstr(mproc_last_error(), "thirteen is unlucky"));
    assert_int_equal(st[13], MPROC_ETASK);
    for (long i = 0; i < N; i++)
        if (i != 13) assert_int_equal(out[i], i * i + 1);
    assert_true(file_size(j) <= 1024);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_another_calls_journal_is_refused(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "other");
    fill_input();
    assert_int_equal(run_map(p, j, 100), 0);
    long size = file_size(j);
    /* Other input. */
    in[50]++;
    reset_runs();
    assert_int_equal(run_map(p, j, 100), MPROC_EJOURNAL);
    assert_non_null(strstr(mproc_last_error(), "another call"));
    assert_non_null(strstr(mproc_last_error(), "but other input"));
    assert_int_equal(runs(), 0);
    in[50]--;
    /* Another count, another task: the message says which. */
    assert_int_equal(run_map(p, j, 99), MPROC_EJOURNAL);
    assert_non_null(strstr(mproc_last_error(), "it was made for 100 items, this call has 99"));
    assert_int_equal(mproc_map(p, &other_task, in, sizeof *in, out, sizeof *out, 100, &(mproc_call_opts){.journal = j}),
                     MPROC_EJOURNAL);
    assert_non_null(strstr(mproc_last_error(), "this call runs task 'other'"));
    assert_int_equal(file_size(j), size); /* untouched */
    /* The right call still resumes from it. */
    assert_int_equal(run_map(p, j, 100), 0);
    assert_int_equal(runs(), 0);
    /* Not a journal at all. */
    char notj[128];
    journal_path(notj, sizeof notj, "notj");
    FILE *f = fopen(notj, "w");
    fputs("my precious data\n", f);
    fclose(f);
    assert_int_equal(run_map(p, notj, 100), MPROC_EJOURNAL);
    assert_non_null(strstr(mproc_last_error(), "not an mproc journal"));
    assert_int_equal(file_size(notj), 17);
    /* A journal's magic and a header cut short, or one whose name length runs past the file:
     * refused as damaged, never read past its end. */
    static const unsigned char shorts[][24] = {{'M', 'P', 'R', 'O', 'C', 'J', '1', '\n', 9},
                                               {'M', 'P', 'R', 'O', 'C', 'J', '1', '\n', 0, 0, 0, 0, 250, 0, 'x'}};
    for (int k = 0; k < 2; k++) {
        f = fopen(notj, "w");
        fwrite(shorts[k], 1, sizeof shorts[k], f);
        fclose(f);
        assert_int_equal(run_map(p, notj, 100), MPROC_EJOURNAL);
        assert_non_null(strstr(mproc_last_error(), "its header is cut short, damaged"));
        assert_null(strstr(mproc_last_error(), "another call"));
        assert_int_equal(file_size(notj), (long)sizeof shorts[k]);
    }
    /* An imap's refusal names the call, as a map's does. */
    mproc_iter *it = NULL;
    assert_int_equal(mproc_imap(p, &counted_task, in, sizeof *in, 100, &(mproc_call_opts){.journal = notj}, &it),
                     MPROC_EJOURNAL);
    assert_int_equal(strncmp(mproc_last_error(), "mproc_imap: journal ", 20), 0);
    assert_null(it);
    unlink(notj);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void drain_imap(mproc_iter *it, size_t n, int ordered);

/* Whether another process sees a write lock on path (a process never sees its own). */
static int locked_for_others(const char *path) {
    fflush(NULL);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        int fd = open(path, O_RDWR);
        struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_GETLK, &who) < 0) _exit(2);
        _exit(who.l_type != F_UNLCK ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(c, &status, 0), c);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) < 2);
    return WEXITSTATUS(status);
}

/* Another program holding the journal: a child that locks it and waits for its pipe to close. */
static pid_t hold_elsewhere(const char *path, int *release_fd) {
    int ready[2], hold[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    fflush(NULL);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        close(ready[0]);
        close(hold[1]);
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        char ok = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1) _exit(1);
        char b;
        while (read(hold[0], &b, 1) > 0) {
        }
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    char ok = 0;
    assert_int_equal(read(ready[0], &ok, 1), 1);
    assert_int_equal(ok, 'y');
    close(ready[0]);
    *release_fd = hold[1];
    return c;
}

static void test_a_journal_in_use_is_refused(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128], msg[300];
    journal_path(j, sizeof j, "busy");
    fill_input();
    /* A second call of this program while an imap holds the journal. */
    mproc_call_opts o = {.chunksize = 3, .journal = j};
    mproc_iter *it, *it2 = NULL;
    assert_int_equal(mproc_imap(p, &counted_task, in, sizeof *in, N, &o, &it), 0);
    assert_true(locked_for_others(j));
    long size = file_size(j);
    assert_int_equal(mproc_imap(p, &counted_task, in, sizeof *in, N, &o, &it2), MPROC_EBUSY);
    snprintf(msg, sizeof msg, "%s", mproc_last_error());
    assert_non_null(strstr(msg, "in use by another call of this program"));
    assert_non_null(strstr(msg, j));
    assert_null(it2);
    assert_int_equal(run_map(p, j, N), MPROC_EBUSY);
    /* The refusals did not drop the first call's lock (closing any descriptor of the file would). */
    assert_true(locked_for_others(j));
    drain_imap(it, N, 1);
    assert_int_equal(mproc_iter_free(it), 0);
    assert_false(locked_for_others(j)); /* released when the call ends */
    assert_true(file_size(j) > size);
    unlink(j);
    /* Another program holding it: refused, its pid named, the file untouched; then it is ours. */
    int release_fd;
    pid_t other = hold_elsewhere(j, &release_fd);
    reset_runs();
    assert_int_equal(run_map(p, j, N), MPROC_EBUSY);
    snprintf(msg, sizeof msg, "%s", mproc_last_error());
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)other);
    assert_non_null(strstr(msg, "in use by another program"));
    assert_non_null(strstr(msg, pid));
    assert_int_equal(file_size(j), 0);
    assert_int_equal(runs(), 0);
    close(release_fd);
    int status;
    assert_int_equal(waitpid(other, &status, 0), other);
    assert_int_equal(run_map(p, j, N), 0);
    check_results(N);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_journal_bad_options(void **state) {
    (void)state;
    mproc_pool *p = pool_of(1);
    fill_input();
    assert_int_equal(mproc_map(p, &counted_task, in, sizeof *in, out, sizeof *out, 10,
                               &(mproc_call_opts){.journal = "/tmp/x", .journal_sync = 5}),
                     MPROC_EINVAL);
    assert_int_equal(mproc_map(p, &counted_task, in, sizeof *in, out, sizeof *out, 10,
                               &(mproc_call_opts){.journal = "/nonexistent-dir/j"}),
                     MPROC_ESYS);
    assert_non_null(strstr(mproc_last_error(), "/nonexistent-dir/j"));
    /* An empty path is a mistake, not a file that cannot be opened. */
    assert_int_equal(mproc_map(p, &counted_task, in, sizeof *in, out, sizeof *out, 10,
                               &(mproc_call_opts){.journal = ""}),
                     MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "empty"));
    /* The pool is fine after refusals. */
    assert_int_equal(mproc_map(p, &counted_task, in, sizeof *in, out, sizeof *out, 10, NULL), 0);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Sleeps 20 ms a task. */
static long slow_sq(long x) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    return x * x;
}
MPROC_TASK_VALUE(slow_sq, long, long);

/* A result larger than a journal record (64 MiB) is not recorded: the item runs again on resume.
 * (It was recorded as an empty success: a resumed map returned 0 with out never written.) */
enum { HUGE_RESULT = (65 << 20) };
static int huge_fill(mproc_ctx *ctx, const void *arg, size_t len) {
    (void)len;
    uint8_t *b = malloc(HUGE_RESULT);
    if (!b) return mproc_fail(ctx, "no memory");
    memset(b, 0x5A + *(const int *)arg, HUGE_RESULT);
    int rc = mproc_return(ctx, b, HUGE_RESULT);
    free(b);
    return rc;
}
MPROC_TASK(huge_fill);

static void test_a_result_too_big_to_record_runs_again(void **state) {
    (void)state;
    char j[256];
    journal_path(j, sizeof j, "huge");
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &(mproc_pool_opts){.processes = 1}), 0);
    int args[2] = {0, 1}, sts[2];
    uint8_t *res = malloc(2 * (size_t)HUGE_RESULT);
    assert_non_null(res);
    for (int run = 0; run < 2; run++) {
        memset(res, 0, 2 * (size_t)HUGE_RESULT);
        sts[0] = sts[1] = 99;
        assert_int_equal(mproc_map(p, &huge_fill_task, args, sizeof *args, res, HUGE_RESULT, 2,
                                   &(mproc_call_opts){.journal = j, .item_status = sts, .chunksize = 1}),
                         0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(sts[i], 0);
            assert_int_equal(res[(size_t)i * HUGE_RESULT], 0x5A + i);
            assert_int_equal(res[(size_t)(i + 1) * HUGE_RESULT - 1], 0x5A + i);
        }
    }
    free(res);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_cancelled_items_are_not_recorded(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "cancel");
    fill_input();
    mproc_async *a;
    assert_int_equal(mproc_map_async(p, &slow_sq_task, in, sizeof *in, out, sizeof *out, 200,
                                     &(mproc_call_opts){.chunksize = 1, .journal = j, .journal_sync = MPROC_JOURNAL_ALWAYS},
                                     &a),
                     0);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(mproc_async_cancel(a), 1);
    assert_int_equal(mproc_async_get(a, 5.0, NULL, NULL), MPROC_ECANCELLED);
    mproc_progress pr;
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    size_t ran = pr.done - pr.failed;
    assert_true(ran > 0 && ran < 200);
    mproc_async_free(a);
    /* The same call again: only the cancelled items run, and every result is right. */
    for (int i = 0; i < 200; i++) out[i] = -1;
    assert_int_equal(mproc_map_async(p, &slow_sq_task, in, sizeof *in, out, sizeof *out, 200,
                                     &(mproc_call_opts){.chunksize = 1, .journal = j}, &a),
                     0);
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    assert_int_equal(pr.done, ran); /* counted from the journal at once */
    assert_int_equal(mproc_async_get(a, 30.0, NULL, NULL), 0);
    for (int i = 0; i < 200; i++) assert_int_equal(out[i], in[i] * in[i]);
    mproc_async_free(a);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Reads an imap to its end; checks every item once (in order if ordered) with its result. */
static void drain_imap(mproc_iter *it, size_t n, int ordered) {
    unsigned char seen[N] = {0};
    const void *d;
    size_t len, idx, k = 0;
    int rc;
    while ((rc = mproc_iter_next(it, 30.0, &d, &len, &idx)) == 0 || rc == MPROC_ETASK) {
        if (ordered) assert_int_equal(idx, k);
        assert_true(idx < n && !seen[idx]);
        seen[idx] = 1;
        if (rc == 0) {
            assert_int_equal(len, sizeof(long));
            assert_int_equal(*(const long *)d, in[idx] * in[idx] + 1);
        } else {
            assert_int_equal(in[idx], 13);
            assert_non_null(strstr(mproc_last_error(), "thirteen is unlucky"));
        }
        k++;
    }
    assert_int_equal(rc, MPROC_EOF);
    assert_int_equal(k, n);
}

static void test_imap_resumes_from_its_journal(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "imap");
    fill_input();
    in[77] = 13;
    mproc_call_opts o = {.chunksize = 3, .journal = j};
    /* Half read, then dropped: what was recorded is kept. */
    mproc_iter *it;
    reset_runs();
    assert_int_equal(mproc_imap_unordered(p, &counted_task, in, sizeof *in, N, &o, &it), 0);
    const void *d;
    for (int k = 0; k < N / 2; k++) assert_true(mproc_iter_next(it, 30.0, &d, NULL, NULL) <= 0);
    assert_int_equal(mproc_iter_free(it), 0);
    /* Chunks still in flight run on unrecorded: a fresh pool, so none of them runs later. */
    assert_int_equal(mproc_pool_free(p), 0);
    p = pool_of(2);
    long first = settled_runs();
    assert_true(first >= N / 2 && first < N);
    /* Resumed, in order: only what was not recorded runs; every item once, in order. */
    reset_runs();
    assert_int_equal(mproc_imap(p, &counted_task, in, sizeof *in, N, &o, &it), 0);
    drain_imap(it, N, 1);
    assert_int_equal(mproc_iter_free(it), 0);
    long second = runs();
    assert_true(second > 0 && second <= N - N / 2 && first + second <= N + 2 * 3 * 3 * 2); /* + what ran unrecorded: workers x chunksize x inflight (3 under MPI), twice */
    /* Finished: nothing runs; unordered gives every item once. */
    reset_runs();
    assert_int_equal(mproc_imap_unordered(p, &counted_task, in, sizeof *in, N, &o, &it), 0);
    drain_imap(it, N, 0);
    assert_int_equal(mproc_iter_free(it), 0);
    assert_int_equal(runs(), 0);
    /* Generated input cannot be resumed: refused. */
    assert_int_equal(mproc_imap_gen(p, &counted_task, NULL, NULL, sizeof(long), 1, &o, &it), MPROC_EINVAL);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Sleeps 400 ms. */
static long slow400(long x) {
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    return x;
}
MPROC_TASK_VALUE(slow400, long, long);

/* Slow tasks: each record reaches the file within a fraction of a second of its item ending,
 * not when the next item ends (a kill in between would lose it). */
static void test_records_of_slow_tasks_are_written_soon(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "slow");
    fill_input();
    mproc_async *a;
    assert_int_equal(mproc_map_async(p, &slow400_task, in, sizeof *in, out, sizeof *out, 6,
                                     &(mproc_call_opts){.chunksize = 1, .journal = j}, &a),
                     0);
    long header = -1;
    for (int k = 0; k < 20 && header <= 0; k++) { /* the header is written at the start */
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        header = file_size(j);
    }
    struct timespec ts = {0, 650 * 1000000L}; /* two items end at ~0.4 s; the next two at ~0.8 */
    nanosleep(&ts, NULL);
    long mid = file_size(j);
    assert_true(mid > header); /* the first two are in the file already */
    assert_int_equal(mproc_async_get(a, 10.0, NULL, NULL), 0);
    mproc_async_free(a);
    /* Again: all six from the journal, at once; they took no time now, so they make no rate. */
    assert_int_equal(mproc_map_async(p, &slow400_task, in, sizeof *in, out, sizeof *out, 6,
                                     &(mproc_call_opts){.chunksize = 1, .journal = j}, &a),
                     0);
    mproc_progress pr;
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    assert_int_equal(pr.done, 6);
    assert_int_equal(pr.finished, 1);
    assert_true(pr.rate == 0);
    mproc_async_free(a);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* The same task and bytes cut into items of another size, or results of another size, are
 * another call: EJOURNAL, the file left as it is; the first call still resumes from it. */
static void test_other_item_sizes_are_refused(void **state) {
    (void)state;
    enum { M = 100 };
    static long in8[M], out8[M], out16[2 * M];
    for (long i = 0; i < M; i++) in8[i] = i * 7;
    mproc_pool *p = pool_of(2);
    char j[128];
    journal_path(j, sizeof j, "sizes");
    mproc_call_opts co = {.journal = j};
    assert_int_equal(mproc_map(p, &echo_bytes_task, in8, sizeof *in8, out8, sizeof *out8, M, &co), 0);
    long size = file_size(j);
    assert_int_equal(mproc_map(p, &echo_bytes_task, in8, sizeof *in8, out16, 2 * sizeof *out16, M, &co),
                     MPROC_EJOURNAL);
    assert_non_null(strstr(mproc_last_error(), "its items are 8 bytes in and 8 out, this call's 8 and 16"));
    assert_int_equal(mproc_map(p, &echo_bytes_task, in8, sizeof *in8 / 2, out8, sizeof *out8 / 2, 2 * M, &co),
                     MPROC_EJOURNAL);
    assert_non_null(strstr(mproc_last_error(), "another call"));
    assert_int_equal(file_size(j), size);
    memset(out8, 0, sizeof out8);
    assert_int_equal(mproc_map(p, &echo_bytes_task, in8, sizeof *in8, out8, sizeof *out8, M, &co), 0);
    for (long i = 0; i < M; i++) assert_int_equal(out8[i], i * 7);
    unlink(j);
    assert_int_equal(mproc_pool_free(p), 0);
}

int main(int argc, char **argv) {
    /* One runs file for the master and its workers: fork workers inherit the master's
     * environment; MPI ranks, started alike by one launcher, share their parent. */
    long id = getenv("OMPI_COMM_WORLD_SIZE") ? (long)getppid() : (long)getpid();
    snprintf(runs_path, sizeof runs_path, "/tmp/mproc-journal-runs-%ld", id);
    if (!getenv("JOURNAL_TEST_RUNS")) setenv("JOURNAL_TEST_RUNS", runs_path, 1);
    snprintf(runs_path, sizeof runs_path, "%s", getenv("JOURNAL_TEST_RUNS"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finished_journal_runs_nothing),
        cmocka_unit_test(test_torn_tail_is_cut_and_resumed),
        cmocka_unit_test(test_failures_come_back_from_the_journal),
        cmocka_unit_test(test_a_journal_write_error_is_said),
        cmocka_unit_test(test_another_calls_journal_is_refused),
        cmocka_unit_test(test_other_item_sizes_are_refused),
        cmocka_unit_test(test_a_journal_in_use_is_refused),
        cmocka_unit_test(test_journal_bad_options),
        cmocka_unit_test(test_cancelled_items_are_not_recorded),
        cmocka_unit_test(test_a_result_too_big_to_record_runs_again),
        cmocka_unit_test(test_imap_resumes_from_its_journal),
        cmocka_unit_test(test_records_of_slow_tasks_are_written_soon),
    };
    int rc = mproc_init(&argc, &argv);
    if (rc < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    mproc_finalize();
    unlink(runs_path);
    return rc;
}
