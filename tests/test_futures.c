/* test_futures - control of calls in flight, on both backends: cancel (queued, running, a map
 * half done), fail_fast, waiting on many handles (wait_any, wait_all, a waitset over 100,000
 * handles), progress (the counters, the callback's rate and last call, imap's total once a
 * generator ends) and the progress bar written to a file; bad input to each.
 */
#include <pthread.h>
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleeps ms milliseconds and returns ms. */
static long nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return ms;
}
MPROC_TASK_VALUE(nap, long, long);

/* 50 fails, -50 crashes its worker; others take 2 ms. */
static int picky(mproc_ctx *ctx, const long *x, long *out) {
    if (*x == 50) return mproc_fail(ctx, "item %ld is bad", *x);
    if (*x == -50) raise(SIGSEGV);
    nap(2);
    *out = *x * 3;
    return 0;
}
MPROC_TASK_TYPED(picky, long, long);

/* Under MPI with MPROC_MPI_EXECUTORS=0 tasks run inside the ranks: a running task cannot be
 * stopped (it fails at once and runs on; README, "When things go wrong") and a crash ends the
 * job. Where a test checks a stop, it checks that instead. */
static int tasks_in_ranks(void) {
    const char *e = getenv("MPROC_MPI_EXECUTORS");
    return mproc_backend() == MPROC_BACKEND_MPI && e && strcmp(e, "0") == 0;
}

static mproc_pool *make_pool(int n) {
    mproc_pool *p = NULL;
    assert_int_equal(mproc_pool_create(&p, &(mproc_pool_opts){.processes = n}), 0);
    return p;
}

/* ---- cancel ------------------------------------------------------------------------------ */

static int queued_errors;
static pthread_t queued_error_thread;
static void on_queued_error(void *ud, int err, const char *msg) {
    (void)ud;
    (void)msg;
    queued_errors += err == MPROC_ECANCELLED;
    queued_error_thread = pthread_self();
}

static void test_cancel_queued_and_running(void **state) {
    (void)state;
    mproc_pool *p = make_pool(1);
    long slow = 3000, quick = 1;
    mproc_async *running, *queued;
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &running), 0);
    assert_int_equal(mproc_apply_async(p, &nap_task, &quick, sizeof quick,
                                       &(mproc_call_opts){.error_callback = on_queued_error}, &queued),
                     0);
    nap(200); /* the slow one is running */
    double t0 = now_s();
    queued_errors = 0;
    assert_int_equal(mproc_async_cancel(queued), 1);
    /* Nothing of it ran: it ended inside the cancel, its error callback in this thread. */
    assert_int_equal(queued_errors, 1);
    assert_true(pthread_equal(queued_error_thread, pthread_self()));
    assert_int_equal(mproc_async_wait(queued, 1.0), 0);
    assert_int_equal(mproc_async_get(queued, 0, NULL, NULL), MPROC_ECANCELLED);
    assert_non_null(strstr(mproc_last_error(), "cancelled"));
    assert_int_equal(mproc_async_cancel(running), 1);
    assert_int_equal(mproc_async_wait(running, 2.0), 0); /* well before its 3 s */
    assert_true(now_s() - t0 < 2.0);
    assert_int_equal(mproc_async_successful(running), 0);
    assert_int_equal(mproc_async_get(running, 0, NULL, NULL), MPROC_ECANCELLED);
    /* A second cancel has nothing left to do; the pool goes on with a fresh worker. */
    assert_int_equal(mproc_async_cancel(running), 0);
    long r = 0, seven = 7;
    assert_int_equal(MPROC_APPLY(p, nap, &seven, &r), 0);
    assert_int_equal(r, 7);
    mproc_async_free(running);
    mproc_async_free(queued);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Freeing an imap part-read stops its running tasks as a cancel does: the pool is free at once
 * (before: the tasks already sent ran to their end, their results dropped). */
static void test_iter_free_stops_its_running_tasks(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    static const long slow[6] = {3000, 3000, 3000, 3000, 3000, 3000};
    mproc_iter *it;
    assert_int_equal(mproc_imap_unordered(p, &nap_task, slow, sizeof *slow, 6, NULL, &it), 0);
    nap(300); /* two are running, more are sent behind them */
    double t0 = now_s();
    assert_int_equal(mproc_iter_free(it), 0);
    long r = 0, seven = 7;
    assert_int_equal(MPROC_APPLY(p, nap, &seven, &r), 0);
    assert_int_equal(r, 7);
    if (tasks_in_ranks()) /* the two running run on (2.7 s); those sent behind them are skipped */
        assert_true(now_s() - t0 < 3.0 + 1.5);
    else
        assert_true(now_s() - t0 < 2.0); /* well before the 3 s tasks' end */
    assert_int_equal(mproc_pool_free(p), 0);
}

/* The README: cancelling a call whose task runs kills and replaces that worker; another call's
 * task already sent behind it on the same worker runs on the replacement, unharmed. */
static void test_cancel_leaves_the_call_behind_alone(void **state) {
    (void)state;
    mproc_pool *p = make_pool(1);
    long slow = 3000, seven = 7, r = 0;
    mproc_async *running, *behind;
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &running), 0);
    assert_int_equal(mproc_apply_async(p, &nap_task, &seven, sizeof seven, NULL, &behind), 0);
    nap(200);
    double t0 = now_s();
    assert_int_equal(mproc_async_cancel(running), 1);
    if (tasks_in_ranks()) { /* the slow one runs on in the rank: the call behind waits for it */
        assert_int_equal(mproc_async_get(running, 0.5, NULL, NULL), MPROC_ECANCELLED); /* at once */
        assert_int_equal(mproc_async_wait(behind, 2.8 + 3.0), 0);
    } else {
        assert_int_equal(mproc_async_wait(behind, 2.0), 0); /* not after the slow one's 3 s */
        assert_true(now_s() - t0 < 2.0);
    }
    assert_int_equal(MPROC_GET(behind, &r), 0);
    assert_int_equal(r, 7);
    assert_int_equal(mproc_async_get(running, 0, NULL, NULL), MPROC_ECANCELLED);
    mproc_async_free(running);
    mproc_async_free(behind);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* The file a marking task leaves to say it ran: named after x, the master's pid. */
static void marker_path(char path[64], long x) { snprintf(path, 64, "/tmp/mproc-test-ran-%ld", x); }

static long mark(long x) {
    char path[64];
    marker_path(path, x);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
    return x;
}
MPROC_TASK_VALUE(mark, long, long);

/* Leaves the marker at its start, then sleeps 2 s. */
static long mark_and_nap(long x) {
    mark(x);
    nap(2000);
    return x;
}
MPROC_TASK_VALUE(mark_and_nap, long, long);

/* A pool of one worker that starts with a 200 ms nap, so that calls made meanwhile are queued by
 * then and go to it back to back: the second behind the first, however slow this machine is. */
static mproc_pool *pool_starting_late(void) {
    long start_nap = 200;
    mproc_pool *p = NULL;
    assert_int_equal(mproc_pool_create(&p, &(mproc_pool_opts){.processes = 1, .initializer = &nap_task,
                                                              .initarg = &start_nap, .initarg_len = sizeof start_nap}),
                     0);
    return p;
}

/* A cancelled call's task sent to a worker behind another call's running task is skipped: it
 * never starts, and the worker is free as soon as the running task ends (before: it ran to its
 * end, its result dropped; a call after it waited 2 s more). Also where tasks run inside the
 * MPI ranks, which cannot stop a running task but can skip one not yet started. */
static void test_cancel_skips_a_task_queued_behind_another_call(void **state) {
    (void)state;
    mproc_pool *p = pool_starting_late();
    long slow = 1000, me = (long)getpid(), seven = 7, r = 0;
    char path[64];
    marker_path(path, me);
    unlink(path);
    mproc_async *running, *queued;
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &running), 0);
    assert_int_equal(mproc_apply_async(p, &mark_and_nap_task, &me, sizeof me, NULL, &queued), 0);
    nap(500); /* the slow one runs, the other waits behind it on the worker */
    assert_int_equal(mproc_async_cancel(queued), 1);
    assert_int_equal(mproc_async_get(queued, 0.5, NULL, NULL), MPROC_ECANCELLED);
    double t0 = now_s();
    assert_int_equal(MPROC_APPLY(p, nap, &seven, &r), 0); /* after the running one's 0.7 s left */
    double took = now_s() - t0;
    assert_int_equal(r, 7);
    if (access(path, F_OK) == 0) {
        unlink(path);
        fail_msg("the cancelled task ran (the call after it took %.2f s)", took);
    }
    assert_true(took < 0.7 + 1.5); /* not after the cancelled one's 2 s */
    assert_int_equal(MPROC_GET(running, &r), 0);
    assert_int_equal(r, 1000);
    mproc_async_free(running);
    mproc_async_free(queued);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* README: once mproc_pool_join has returned after mproc_pool_terminate, no task of the pool
 * starts. Where the running task cannot be killed (MPI ranks running tasks themselves) it runs
 * on, but the task sent behind it is skipped (before: it started after join had returned). */
static void test_terminate_leaves_nothing_to_start(void **state) {
    (void)state;
    long slow = 800, me = (long)getpid();
    mproc_pool *p = pool_starting_late();
    char path[64];
    marker_path(path, me);
    unlink(path);
    mproc_async *running, *queued;
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &running), 0);
    assert_int_equal(mproc_apply_async(p, &mark_and_nap_task, &me, sizeof me, NULL, &queued), 0);
    nap(400); /* the slow one runs, the other waits behind it on the worker */
    assert_int_equal(mproc_pool_terminate(p), 0);
    assert_int_equal(mproc_pool_join(p), 0);
    assert_int_equal(mproc_async_get(running, 0, NULL, NULL), MPROC_ECLOSED);
    assert_int_equal(mproc_async_get(queued, 0, NULL, NULL), MPROC_ECLOSED);
    nap(tasks_in_ranks() ? 1000 : 300); /* past the running one's end, where it runs on */
    int ran = access(path, F_OK) == 0;
    unlink(path);
    if (ran) fail_msg("a task queued behind the running one started after join returned");
    mproc_async_free(running);
    mproc_async_free(queued);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* The same for a map of quick tasks, which go behind the running task packed into a BATCH
 * frame (the pool measured its tasks to be short): each of them is skipped. */
static void test_cancel_skips_a_batch_queued_behind_another_call(void **state) {
    (void)state;
    mproc_pool *p = make_pool(1);
    enum { N = 100 };
    long in[N], out[N], slow = 1000, me = (long)getpid(), seven = 7, r = 0;
    for (int i = 0; i < N; i++) in[i] = 0; /* tasks this short get batched */
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, N, &(mproc_call_opts){.chunksize = 1}), 0);
    char path[64];
    marker_path(path, me);
    unlink(path);
    for (int i = 0; i < N; i++) in[i] = me;
    mproc_async *first, *running, *marks;
    /* The map's first frame is sent when the first call ends, behind the slow one (young then:
     * a frame is not queued behind one that has run over 1 ms). Those two have a time limit,
     * so that they are never batched with the map's tasks; the first is short, so that the
     * pool still takes its tasks for short ones and batches the map's. */
    long one = 1;
    mproc_call_opts alone = {.timeout = 30};
    assert_int_equal(mproc_apply_async(p, &nap_task, &one, sizeof one, &alone, &first), 0);
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, &alone, &running), 0);
    assert_int_equal(mproc_map_async(p, &mark_task, in, sizeof *in, out, sizeof *out, N,
                                     &(mproc_call_opts){.chunksize = 1}, &marks),
                     0);
    nap(300);
    assert_int_equal(mproc_async_cancel(marks), 1);
    assert_int_equal(mproc_async_wait(marks, 0.5), 0);
    assert_int_equal(mproc_async_get(marks, 0, NULL, NULL), MPROC_ECANCELLED);
    assert_int_equal(MPROC_APPLY(p, nap, &seven, &r), 0);
    assert_int_equal(r, 7);
    if (access(path, F_OK) == 0) {
        unlink(path);
        fail_msg("a task of the cancelled map ran");
    }
    mproc_async_free(first);
    mproc_async_free(running);
    mproc_async_free(marks);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_cancel_after_ready_is_nothing(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    long x = 5, r = 0;
    mproc_async *a;
    assert_int_equal(mproc_apply_async(p, &nap_task, &x, sizeof x, NULL, &a), 0);
    assert_int_equal(mproc_async_wait(a, 5.0), 0);
    assert_int_equal(mproc_async_cancel(a), 0);
    assert_int_equal(MPROC_GET(a, &r), 0);
    assert_int_equal(r, 5);
    mproc_async_free(a);
    assert_int_equal(mproc_async_cancel(NULL), MPROC_EBADHANDLE);
    assert_int_equal(mproc_pool_free(p), 0);
}

static int cancel_errors_seen;
static void on_error(void *ud, int err, const char *msg) {
    (void)ud;
    (void)msg;
    if (err == MPROC_ECANCELLED) cancel_errors_seen++;
}

static void test_cancel_map_keeps_what_finished(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    enum { N = 300 };
    long in[N], out[N];
    int st[N];
    for (int i = 0; i < N; i++) in[i] = 10, out[i] = -1, st[i] = 99;
    mproc_async *a;
    cancel_errors_seen = 0;
    assert_int_equal(mproc_map_async(p, &nap_task, in, sizeof *in, out, sizeof *out, N,
                                     &(mproc_call_opts){.chunksize = 1, .item_status = st, .error_callback = on_error},
                                     &a),
                     0);
    nap(300);
    assert_int_equal(mproc_async_cancel(a), 1);
    assert_int_equal(mproc_async_wait(a, 2.0), 0);
    assert_int_equal(mproc_async_get(a, 0, NULL, NULL), MPROC_ECANCELLED);
    assert_int_equal(cancel_errors_seen, 1);
    int done = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        if (st[i] == 0) {
            assert_int_equal(out[i], 10);
            done++;
        } else {
            assert_int_equal(st[i], MPROC_ECANCELLED);
            assert_int_equal(out[i], -1);
            cancelled++;
        }
    }
    assert_true(done > 0 && cancelled > 0 && done + cancelled == N);
    mproc_progress pr;
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    assert_int_equal(pr.done, N);
    assert_int_equal(pr.failed, cancelled);
    assert_int_equal(pr.finished, 1);
    mproc_async_free(a);
    /* The pool goes on. */
    long in2[4] = {1, 2, 3, 4}, out2[4] = {0};
    assert_int_equal(MPROC_MAP(p, nap, in2, out2, 4), 0);
    assert_int_equal(out2[3], 4);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* A call that ends inside mproc_async_cancel runs its error callback in the cancelling thread;
 * the pool cannot be freed or joined from there (the cancel still holds it: a review found free
 * there left the cancel writing into the freed pool), but it can be terminated, and a wait on
 * another of its handles waits as anywhere (the pool's loop runs on in its own thread). */
typedef struct free_in_cancel {
    mproc_pool *pool;
    mproc_async *running, *self;
    int calls, free_rc, join_rc, terminate_rc, wait_rc, self_wait_rc, self_any_rc;
    char free_msg[256];
} free_in_cancel;
static void free_from_error_callback(void *ud, int err, const char *msg) {
    (void)msg;
    free_in_cancel *s = ud;
    if (err != MPROC_ECANCELLED || s->calls++) return;
    s->free_rc = mproc_pool_free(s->pool);
    snprintf(s->free_msg, sizeof s->free_msg, "%s", mproc_last_error());
    s->join_rc = mproc_pool_join(s->pool);
    s->wait_rc = mproc_async_wait(s->running, 0.05);
    /* The call being cancelled ends when the cancel goes on, after this callback: refused. */
    size_t idx;
    s->self_wait_rc = mproc_async_wait(s->self, -1);
    s->self_any_rc = mproc_async_wait_any(&s->self, 1, 5.0, &idx);
    s->terminate_rc = mproc_pool_terminate(s->pool);
}

static void test_free_in_a_cancel_callback_is_refused(void **state) {
    (void)state;
    free_in_cancel s = {.pool = make_pool(1), .free_rc = 1, .join_rc = 1, .terminate_rc = 1, .wait_rc = 1,
                        .self_wait_rc = 1, .self_any_rc = 1};
    enum { N = 2000 }; /* more than the pool makes into chunks at once: the cancel drops unmade items */
    static long in[N], out[N];
    long slow = 3000;
    for (int i = 0; i < N; i++) in[i] = 1;
    mproc_async *a;
    assert_int_equal(mproc_apply_async(s.pool, &nap_task, &slow, sizeof slow, NULL, &s.running), 0);
    assert_int_equal(mproc_map_async(s.pool, &nap_task, in, sizeof *in, out, sizeof *out, N,
                                     &(mproc_call_opts){.chunksize = 1, .error_callback = free_from_error_callback,
                                                        .userdata = &s},
                                     &a),
                     0);
    s.self = a;
    nap(200); /* the slow task runs, the map waits behind it */
    double t0 = now_s();
    assert_int_equal(mproc_async_cancel(a), 1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.free_rc, MPROC_ESTATE);
    assert_non_null(strstr(s.free_msg, "mproc_async_cancel"));
    assert_int_equal(s.join_rc, MPROC_ESTATE);
    assert_int_equal(s.wait_rc, MPROC_ETIMEDOUT); /* waited, not refused */
    assert_int_equal(s.self_wait_rc, MPROC_ESTATE);
    assert_int_equal(s.self_any_rc, MPROC_ESTATE);
    assert_int_equal(s.terminate_rc, 0);
    assert_int_equal(mproc_async_get(a, 0, NULL, NULL), MPROC_ECANCELLED);
    /* terminated from the callback: the slow task is stopped, join and free work out here */
    assert_int_equal(mproc_pool_join(s.pool), 0);
    assert_true(now_s() - t0 < 2.5);
    assert_int_equal(mproc_async_wait(s.running, 1.0), 0);
    assert_int_equal(mproc_async_successful(s.running), 0);
    mproc_async_free(s.running);
    mproc_async_free(a);
    assert_int_equal(mproc_pool_free(s.pool), 0);
}

/* ---- fail_fast --------------------------------------------------------------------------- */

static void run_fail_fast(long crash_sign, int want_err) {
    mproc_pool *p = make_pool(2);
    enum { N = 2000 };
    long *in = malloc(N * sizeof *in), *out = calloc(N, sizeof *out);
    int *st = malloc(N * sizeof *st);
    assert_non_null(in);
    for (int i = 0; i < N; i++) in[i] = i, st[i] = 99;
    in[50] = 50 * crash_sign;
    double t0 = now_s();
    int rc = mproc_map(p, &picky_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.chunksize = 1, .item_status = st, .fail_fast = 1});
    double took = now_s() - t0;
    assert_int_equal(rc, want_err);
    int cancelled = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        cancelled += st[i] == MPROC_ECANCELLED;
        ok += st[i] == 0;
        if (st[i] == 0) assert_int_equal(out[i], (long)i * 3);
        if (i == 50) assert_int_equal(st[i], want_err);
    }
    assert_true(cancelled > N / 2); /* most never ran */
    assert_true(ok + cancelled <= N - 1);
    assert_true(took < 2.0); /* 2,000 items of 2 ms on 2 workers would take 2 s */
    /* Without fail_fast every other item runs. */
    rc = mproc_map(p, &picky_task, in, sizeof *in, out, sizeof *out, N,
                   &(mproc_call_opts){.chunksize = 50, .item_status = st});
    assert_int_equal(rc, want_err);
    ok = 0;
    for (int i = 0; i < N; i++) ok += st[i] == 0;
    assert_int_equal(ok, N - 1);
    assert_int_equal(st[50], want_err);
    free(in);
    free(out);
    free(st);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_fail_fast_stops_at_a_failure(void **state) {
    (void)state;
    run_fail_fast(1, MPROC_ETASK);
    assert_non_null(strstr(mproc_last_error(), "item 50 is bad"));
}

/* fail_fast on map_async with chunks of 10: the failing item's chunk comes back whole (its other
 * items finished and kept), the call fails with the item's own error, most items never run. */
static void test_fail_fast_async_with_chunks(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    enum { N = 2000 };
    long *in = malloc(N * sizeof *in), *out = calloc(N, sizeof *out);
    int *st = malloc(N * sizeof *st);
    assert_non_null(in);
    for (int i = 0; i < N; i++) in[i] = i, st[i] = 99;
    /* picky fails item 50 (its value is 50); its chunk is 50..59 */
    mproc_async *a = NULL;
    assert_int_equal(mproc_map_async(p, &picky_task, in, sizeof *in, out, sizeof *out, N,
                                     &(mproc_call_opts){.chunksize = 10, .item_status = st, .fail_fast = 1}, &a),
                     0);
    assert_int_equal(mproc_async_wait(a, 3.0), 0); /* all of it would take 2 s */
    assert_int_equal(mproc_async_get(a, 0, NULL, NULL), MPROC_ETASK);
    assert_non_null(strstr(mproc_last_error(), "item 50 is bad"));
    assert_int_equal(st[50], MPROC_ETASK);
    for (int i = 51; i < 60; i++) {
        assert_int_equal(st[i], 0); /* the rest of its chunk ran */
        assert_int_equal(out[i], (long)i * 3);
    }
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        assert_true(st[i] == 0 || st[i] == MPROC_ECANCELLED || i == 50);
        if (st[i] == 0) assert_int_equal(out[i], (long)i * 3);
        cancelled += st[i] == MPROC_ECANCELLED;
    }
    assert_true(cancelled > N / 2);
    mproc_async_free(a);
    free(in);
    free(out);
    free(st);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* 1 MiB items in and out: big enough that a transport reads the input in place after the send
 * and receives the results straight into the caller's output. Item 0 fails after 20 ms; the
 * others take 50 ms and fill their result with 'R'. */
typedef struct {
    char b[1024 * 1024];
} big_item;
static int fill(mproc_ctx *ctx, const big_item *x, big_item *out) {
    if (x->b[0] == 0) {
        nap(20);
        return mproc_fail(ctx, "item 0 fails");
    }
    nap(50);
    memset(out->b, 'R', sizeof out->b);
    return 0;
}
MPROC_TASK_TYPED(fill, big_item, big_item);

/* A blocking map's chunks queued on a worker behind another call's running task are cancelled
 * by fail_fast without killing that task; once the map has returned, their late results must
 * not land in its output, which the caller owns again (found by a review: they did, 0x52 in
 * an output zeroed after the return, or a heap-use-after-free once it was freed). */
static void test_fail_fast_leaves_the_callers_memory_alone(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    long slow = 1000;
    mproc_async *other;
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &other), 0);
    nap(100); /* it runs on one worker; the map's chunks queue behind it there */
    enum { N = 4 };
    big_item *in = calloc(N, sizeof *in), *out = calloc(N, sizeof *out);
    assert_non_null(in);
    assert_non_null(out);
    for (int i = 0; i < N; i++) in[i].b[0] = (char)i;
    assert_int_equal(mproc_map(p, &fill_task, in, sizeof *in, out, sizeof *out, N,
                               &(mproc_call_opts){.chunksize = 1, .fail_fast = 1}),
                     MPROC_ETASK);
    memset(out, 0, N * sizeof *out); /* ours again */
    assert_int_equal(mproc_async_wait(other, 10.0), 0);
    nap(600); /* the queued chunks ran meanwhile, and an idle pool looked (4 times a second) */
    /* A call on each worker: the pool then reads every reply sent before its answer (an idle
     * pool looks at its workers only 4 times a second). */
    long r[2] = {0, 0}, seven[2] = {7, 7};
    assert_int_equal(MPROC_MAP(p, nap, seven, r, 2), 0); /* the pool goes on */
    assert_int_equal(r[0] + r[1], 14);
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < sizeof out[i].b; k += 4096) assert_int_equal(out[i].b[k], 0);
    mproc_async_free(other);
    free(in);
    free(out);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Item 1 fails, the others take 100 ms. */
static int second_fails(mproc_ctx *ctx, const long *x, long *out) {
    if (*x == 1) return mproc_fail(ctx, "item 1 fails");
    nap(100);
    *out = *x;
    return 0;
}
MPROC_TASK_TYPED(second_fails, long, long);

/* Nothing is queued behind a task that has run for a while: a fail_fast map while another
 * call's 3 s task runs on one of two workers stops as soon as its failing item runs on the
 * other (its items were queued behind the long task and the stop came when it ended, 2.3 s). */
static void test_nothing_waits_behind_a_long_task(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    long slow = 3000;
    mproc_async *other;
    assert_int_equal(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &other), 0);
    nap(200);
    enum { N = 6 };
    long in[N], out[N];
    int st[N];
    for (int i = 0; i < N; i++) in[i] = i;
    double t0 = now_s();
    assert_int_equal(mproc_map(p, &second_fails_task, in, sizeof *in, out, sizeof *out, N,
                               &(mproc_call_opts){.chunksize = 1, .fail_fast = 1, .item_status = st}),
                     MPROC_ETASK);
    assert_true(now_s() - t0 < 2.0);
    assert_int_equal(st[1], MPROC_ETASK);
    int cancelled = 0;
    for (int i = 2; i < N; i++) cancelled += st[i] == MPROC_ECANCELLED;
    assert_true(cancelled >= 1); /* stopped before the end */
    assert_int_equal(mproc_async_cancel(other), 1);
    mproc_async_free(other);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_fail_fast_stops_at_a_crash(void **state) {
    (void)state;
    if (tasks_in_ranks()) skip(); /* a crash ends the job there: tests/mpi_rank_crash.sh */
    run_fail_fast(-1, MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "died while running task 'picky'"));
}

/* ---- waiting on many --------------------------------------------------------------------- */

static void test_wait_any_and_all(void **state) {
    (void)state;
    mproc_pool *p = make_pool(3);
    long ms[3] = {900, 50, 450};
    mproc_async *h[3];
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_apply_async(p, &nap_task, &ms[i], sizeof ms[i], NULL, &h[i]), 0);
    size_t idx = 99;
    assert_int_equal(mproc_async_wait_any(h, 3, 0, &idx), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_async_wait_any(h, 3, 5.0, &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(mproc_async_wait_all(h, 3, 0.05), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_async_wait_all(h, 3, 5.0), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(mproc_async_ready(h[i]), 1);
    mproc_async *bad[2] = {h[0], NULL};
    assert_int_equal(mproc_async_wait_any(bad, 2, 0, &idx), MPROC_EBADHANDLE);
    assert_int_equal(idx, 1);
    assert_int_equal(mproc_async_wait_any(h, 0, 0, &idx), MPROC_EINVAL);
    assert_int_equal(mproc_async_wait_any(h, 3, 0, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_async_wait_all(bad, 2, 0), MPROC_EBADHANDLE);
    for (int i = 0; i < 3; i++) mproc_async_free(h[i]);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_waitset_in_completion_order(void **state) {
    (void)state;
    mproc_pool *p = make_pool(3);
    /* One task per worker, so the order they end in is known (-np 3 has two workers). */
    int n = mproc_pool_size(p) >= 3 ? 3 : 2;
    long ms[3] = {600, 100, 350};
    mproc_waitset *ws, *other;
    assert_int_equal(mproc_waitset_create(&ws), 0);
    assert_int_equal(mproc_waitset_create(&other), 0);
    mproc_async *h[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n; i++) {
        assert_int_equal(mproc_apply_async(p, &nap_task, &ms[i], sizeof ms[i], NULL, &h[i]), 0);
        assert_int_equal(mproc_waitset_add(ws, h[i]), 0);
    }
    assert_int_equal(mproc_waitset_add(other, h[0]), MPROC_EBUSY);
    assert_int_equal(mproc_waitset_size(ws), (size_t)n);
    mproc_async *got;
    assert_int_equal(mproc_waitset_next(ws, 0, &got), MPROC_ETIMEDOUT);
    long want3[3] = {100, 350, 600}, want2[2] = {100, 600};
    const long *want = n == 3 ? want3 : want2;
    for (int k = 0; k < n; k++) {
        assert_int_equal(mproc_waitset_next(ws, 5.0, &got), 0);
        long r = 0;
        assert_int_equal(MPROC_GET(got, &r), 0);
        assert_int_equal(r, want[k]);
    }
    assert_int_equal(mproc_waitset_next(ws, 5.0, &got), MPROC_EOF);
    /* Out of the set, a handle may join another; a freed handle leaves its set. */
    assert_int_equal(mproc_waitset_add(other, h[0]), 0);
    mproc_async_free(h[0]);
    assert_int_equal(mproc_waitset_size(other), 0);
    assert_int_equal(mproc_waitset_add(NULL, h[1]), MPROC_EBADHANDLE);
    assert_int_equal(mproc_waitset_add(ws, NULL), MPROC_EBADHANDLE);
    assert_int_equal(mproc_waitset_next(NULL, 0, &got), MPROC_EBADHANDLE);
    assert_int_equal(mproc_waitset_next(ws, 0, NULL), MPROC_EINVAL);
    mproc_async_free(h[1]);
    mproc_async_free(h[2]); /* NULL with two workers: a no-op */
    assert_int_equal(mproc_waitset_free(ws), 0);
    assert_int_equal(mproc_waitset_free(other), 0);
    assert_int_equal(mproc_pool_free(p), 0);
}

static long twice(long x) { return 2 * x; }
MPROC_TASK_VALUE(twice, long, long);

/* as_completed over 100,000 handles: each comes back exactly once. */
static void test_waitset_many_handles(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    enum { N = 100000 };
    mproc_async **h = malloc(N * sizeof *h);
    unsigned char *seen = calloc(N, 1);
    assert_non_null(h);
    mproc_waitset *ws;
    assert_int_equal(mproc_waitset_create(&ws), 0);
    for (long i = 0; i < N; i++) {
        assert_int_equal(mproc_apply_async(p, &twice_task, &i, sizeof i, NULL, &h[i]), 0);
        assert_int_equal(mproc_waitset_add(ws, h[i]), 0);
    }
    mproc_async *got;
    size_t n = 0;
    while (mproc_waitset_next(ws, 30.0, &got) == 0) {
        long r = -1;
        assert_int_equal(MPROC_GET(got, &r), 0);
        assert_true(r % 2 == 0 && r / 2 < N);
        assert_int_equal(seen[r / 2], 0);
        seen[r / 2] = 1;
        n++;
        mproc_async_free(got);
    }
    assert_int_equal(n, N);
    assert_int_equal(mproc_waitset_free(ws), 0);
    free(h);
    free(seen);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct seen_progress {
    int calls, finished_calls, went_back;
    size_t last_done, last_failed, total;
    double first, last;
} seen_progress;

static void on_progress(void *ud, const mproc_progress *pr) {
    seen_progress *s = ud;
    double t = now_s();
    if (s->calls++ == 0) s->first = t;
    s->last = t;
    if (pr->done < s->last_done) s->went_back = 1;
    s->last_done = pr->done;
    s->last_failed = pr->failed;
    s->total = pr->total;
    s->finished_calls += pr->finished;
}

static void test_progress_counts_and_callback(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    enum { N = 120 };
    long in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = 10;
    seen_progress s = {0};
    mproc_async *a;
    assert_int_equal(mproc_map_async(p, &nap_task, in, sizeof *in, out, sizeof *out, N,
                                     &(mproc_call_opts){.chunksize = 1, .progress = on_progress, .progress_hz = 4,
                                                        .userdata = &s},
                                     &a),
                     0);
    nap(250);
    mproc_progress pr;
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    assert_int_equal(pr.total, N);
    assert_true(pr.done > 0 && pr.done < N);
    assert_true(pr.rate > 0 && pr.elapsed > 0.2 && pr.eta > 0);
    assert_int_equal(pr.finished, 0);
    double t0 = now_s();
    assert_int_equal(mproc_async_wait(a, 10.0), 0);
    double run = now_s() - t0 + 0.25;
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    assert_int_equal(pr.done, N);
    assert_int_equal(pr.failed, 0);
    assert_int_equal(pr.finished, 1);
    /* At most 4 a second, plus the last; that one says finished, once, with every item. */
    assert_true(s.calls >= 2);
    assert_true(s.calls <= (int)(run * 4) + 3);
    assert_int_equal(s.finished_calls, 1);
    assert_int_equal(s.last_done, N);
    assert_int_equal(s.total, N);
    assert_int_equal(s.went_back, 0);
    mproc_async_free(a);
    assert_int_equal(mproc_async_progress(NULL, &pr), MPROC_EBADHANDLE);
    assert_int_equal(mproc_pool_free(p), 0);
}

static int gen_50(void *ud, size_t i, void *item) {
    (void)ud;
    if (i >= 50) return 0;
    *(long *)item = 1;
    return 1;
}

static void test_iter_progress_learns_its_total(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    mproc_iter *it;
    assert_int_equal(mproc_imap_gen(p, &nap_task, gen_50, NULL, sizeof(long), 0, &(mproc_call_opts){.chunksize = 1}, &it),
                     0);
    mproc_progress pr;
    int got = 0;
    const void *d;
    while (mproc_iter_next(it, 10.0, &d, NULL, NULL) == 0) got++;
    assert_int_equal(got, 50);
    assert_int_equal(mproc_iter_progress(it, &pr), 0);
    assert_int_equal(pr.done, 50);
    assert_int_equal(pr.total, 50);
    assert_int_equal(pr.finished, 1);
    assert_int_equal(mproc_iter_free(it), 0);
    assert_int_equal(mproc_iter_progress(NULL, &pr), MPROC_EBADHANDLE);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* An imap freed before its end is done too: its callback hears so once, finished, before
 * mproc_iter_free returns (it never did: a new-user trial). */
static void test_iter_freed_early_reports_finished(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    enum { N = 40 };
    long in[N];
    for (int i = 0; i < N; i++) in[i] = 50;
    seen_progress s = {0};
    mproc_iter *it;
    assert_int_equal(mproc_imap(p, &nap_task, in, sizeof *in, N,
                                &(mproc_call_opts){.chunksize = 1, .progress = on_progress, .userdata = &s}, &it),
                     0);
    const void *d;
    assert_int_equal(mproc_iter_next(it, 10.0, &d, NULL, NULL), 0);
    assert_int_equal(mproc_iter_free(it), 0);
    assert_int_equal(s.finished_calls, 1);
    /* As a cancelled map's: every item counted, those never finished as failed (cancelled). */
    assert_int_equal(s.last_done, N);
    assert_true(s.last_failed >= 1 && s.last_failed < N);
    assert_int_equal(s.total, N);
    int calls = s.calls;
    nap(200); /* nothing after it */
    assert_int_equal(s.calls, calls);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* mproc_iter_free runs the iterator's last progress callback in the freeing thread, once its
 * tasks are stopped: there, as in a cancel, the pool cannot be freed or joined, the iterator
 * being freed is gone, and the pool runs other calls (a new-user trial: free went through,
 * iter_next(-1) there hung, a second free there wrote into freed memory, an apply waited
 * behind the iterator's tasks). */
typedef struct calls_in_last_progress {
    mproc_pool *pool;
    mproc_iter *it;
    int calls, pool_free_rc, iter_free_rc, next_rc, apply_rc;
} calls_in_last_progress;
static void call_back_in(void *ud, const mproc_progress *pr) {
    calls_in_last_progress *s = ud;
    if (!pr->finished || s->calls++) return;
    s->pool_free_rc = mproc_pool_free(s->pool);
    s->iter_free_rc = mproc_iter_free(s->it);
    const void *d;
    s->next_rc = mproc_iter_next(s->it, -1, &d, NULL, NULL);
    long x = 1, y = 0;
    s->apply_rc = mproc_apply(s->pool, &nap_task, &x, sizeof x, &y, sizeof y, NULL);
    if (s->apply_rc == 0 && y != 1) s->apply_rc = -1000;
}

static void test_calls_in_the_progress_callback_of_iter_free(void **state) {
    (void)state;
    calls_in_last_progress s = {.pool = make_pool(1), .pool_free_rc = 1, .iter_free_rc = 1, .next_rc = 1, .apply_rc = 1};
    long in[2] = {3000, 3000};
    assert_int_equal(mproc_imap(s.pool, &nap_task, in, sizeof *in, 2,
                                &(mproc_call_opts){.chunksize = 1, .progress = call_back_in, .userdata = &s}, &s.it),
                     0);
    nap(100);
    double t0 = now_s();
    assert_int_equal(mproc_iter_free(s.it), 0);
    /* Nothing in the callback waited (in the ranks the running task runs on, and the apply
     * there waits for it). */
    if (!tasks_in_ranks()) assert_true(now_s() - t0 < 2.0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.pool_free_rc, MPROC_ESTATE);
    assert_int_equal(s.iter_free_rc, MPROC_EBADHANDLE);
    assert_int_equal(s.next_rc, MPROC_EBADHANDLE);
    assert_int_equal(s.apply_rc, 0);
    long one = 1, r = 0;
    assert_int_equal(MPROC_APPLY(s.pool, nap, &one, &r), 0); /* the pool goes on */
    assert_int_equal(r, 1);
    assert_int_equal(mproc_pool_free(s.pool), 0);
}

static void test_progress_bad_options(void **state) {
    (void)state;
    mproc_pool *p = make_pool(1);
    long in[2] = {1, 2}, out[2];
    mproc_async *a = (mproc_async *)1;
    assert_int_equal(mproc_map_async(p, &nap_task, in, sizeof *in, out, sizeof *out, 2,
                                     &(mproc_call_opts){.progress_hz = -1}, &a),
                     MPROC_EINVAL);
    assert_null(a);
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 2, &(mproc_call_opts){.progress_bar = 7}),
                     MPROC_EINVAL);
    setenv("MPROC_PROGRESS", "maybe", 1);
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 2, NULL), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "MPROC_PROGRESS"));
    mproc_iter *it;
    assert_int_equal(mproc_imap(p, &nap_task, in, sizeof *in, 2, NULL, &it), MPROC_EINVAL);
    /* The call's own option wins over the variable. */
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 2, &(mproc_call_opts){.progress_bar = -1}),
                     0);
    setenv("MPROC_PROGRESS", "", 1); /* empty: unset, no bar */
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 2, NULL), 0);
    unsetenv("MPROC_PROGRESS");
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 2, NULL), 0);
    assert_int_equal(out[1], 2);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Runs a map with stderr sent to a file; returns what was written there (malloc'd). */
static char *map_with_bar_into_file(mproc_pool *p, long ms, int n) {
    char path[] = "/tmp/mproc-bar-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    long *in = malloc((size_t)n * sizeof *in), *out = malloc((size_t)n * sizeof *out);
    for (int i = 0; i < n; i++) in[i] = ms;
    int rc = mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, (size_t)n,
                       &(mproc_call_opts){.chunksize = 1, .progress_bar = 1});
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, 0);
    free(in);
    free(out);
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = calloc((size_t)len + 1, 1);
    assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
    close(fd);
    return buf;
}

static void test_progress_bar_into_a_file(void **state) {
    (void)state;
    mproc_pool *p = make_pool(2);
    char *quiet = map_with_bar_into_file(p, 5, 20); /* 50 ms: too short to draw */
    assert_string_equal(quiet, "");
    free(quiet);
    char *log = map_with_bar_into_file(p, 20, 160); /* about 1.6 s */
    /* Plain lines (not a terminal): no carriage returns or escapes; the last one says 100%. */
    assert_null(strchr(log, '\r'));
    assert_null(strchr(log, '\033'));
    assert_non_null(strstr(log, "mproc: nap ["));
    const char *last = strstr(log, "100% 160/160");
    assert_non_null(last);
    assert_non_null(strstr(last, "took"));
    assert_int_equal(log[strlen(log) - 1], '\n');
    free(log);
    assert_int_equal(mproc_pool_free(p), 0);
}

/* Options a call cannot honour are refused, not ignored; freed objects are detected. */
static void test_options_that_do_not_apply(void **state) {
    (void)state;
    mproc_pool *p = make_pool(1);
    long x = 1, in[3] = {1, 2, 3}, out[3];
    int st[3];
    mproc_async *a = NULL;
    mproc_iter *it = NULL;
    assert_int_equal(mproc_apply_async(p, &nap_task, &x, sizeof x, &(mproc_call_opts){.journal = "/tmp/nope"}, &a),
                     MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "journal"));
    assert_int_equal(mproc_apply_async(p, &nap_task, &x, sizeof x, &(mproc_call_opts){.fail_fast = 1}, &a), MPROC_EINVAL);
    assert_int_equal(mproc_apply_async(p, &nap_task, &x, sizeof x, &(mproc_call_opts){.item_status = st}, &a),
                     MPROC_EINVAL);
    assert_int_equal(mproc_imap(p, &nap_task, in, sizeof *in, 3, &(mproc_call_opts){.fail_fast = 1}, &it), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "fail_fast"));
    assert_int_equal(mproc_imap(p, &nap_task, in, sizeof *in, 3, &(mproc_call_opts){.item_status = st}, &it), MPROC_EINVAL);
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 3, &(mproc_call_opts){.timeout = -1}),
                     MPROC_EINVAL);
    assert_int_equal(mproc_map(p, &nap_task, in, sizeof *in, out, sizeof *out, 3, &(mproc_call_opts){.timeout = 0.0 / 0.0}),
                     MPROC_EINVAL);
    assert_null(a);
    assert_null(it);
    /* wait_any's timeout names no handle; an empty waitset says so. */
    assert_int_equal(mproc_apply_async(p, &nap_task, &(long){300}, sizeof(long), NULL, &a), 0);
    size_t idx = 0;
    assert_int_equal(mproc_async_wait_any(&a, 1, 0.01, &idx), MPROC_ETIMEDOUT);
    assert_int_equal(idx, 1);
    assert_int_equal(mproc_async_wait_all(&a, 0, 0), 0);
    mproc_waitset *ws;
    assert_int_equal(mproc_waitset_create(&ws), 0);
    mproc_async *got;
    assert_int_equal(mproc_waitset_next(ws, 0, &got), MPROC_EOF);
    assert_non_null(strstr(mproc_last_error(), "empty"));
    /* A second free of a waitset or a pool is detected, not a double free. */
    assert_int_equal(mproc_waitset_free(ws), 0);
    assert_int_equal(mproc_waitset_free(ws), MPROC_EBADHANDLE);
    assert_int_equal(mproc_waitset_add(ws, a), MPROC_EBADHANDLE);
    assert_int_equal(mproc_async_wait(a, 5.0), 0);
    mproc_async_free(a);
    assert_int_equal(mproc_pool_free(p), 0);
    assert_int_equal(mproc_pool_free(p), MPROC_EBADHANDLE);
    assert_int_equal(mproc_pool_size(p), MPROC_EBADHANDLE);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cancel_queued_and_running),
    cmocka_unit_test(test_cancel_leaves_the_call_behind_alone),
    cmocka_unit_test(test_iter_free_stops_its_running_tasks),
    cmocka_unit_test(test_cancel_skips_a_task_queued_behind_another_call),
    cmocka_unit_test(test_cancel_skips_a_batch_queued_behind_another_call),
    cmocka_unit_test(test_terminate_leaves_nothing_to_start),
    cmocka_unit_test(test_cancel_after_ready_is_nothing),
    cmocka_unit_test(test_cancel_map_keeps_what_finished),
    cmocka_unit_test(test_free_in_a_cancel_callback_is_refused),
    cmocka_unit_test(test_fail_fast_stops_at_a_failure),
    cmocka_unit_test(test_fail_fast_leaves_the_callers_memory_alone),
    cmocka_unit_test(test_nothing_waits_behind_a_long_task),
    cmocka_unit_test(test_fail_fast_stops_at_a_crash),
    cmocka_unit_test(test_fail_fast_async_with_chunks),
    cmocka_unit_test(test_wait_any_and_all),
    cmocka_unit_test(test_waitset_in_completion_order),
    cmocka_unit_test(test_waitset_many_handles),
    cmocka_unit_test(test_progress_counts_and_callback),
    cmocka_unit_test(test_iter_progress_learns_its_total),
    cmocka_unit_test(test_iter_freed_early_reports_finished),
    cmocka_unit_test(test_calls_in_the_progress_callback_of_iter_free),
    cmocka_unit_test(test_progress_bad_options),
    cmocka_unit_test(test_progress_bar_into_a_file),
    cmocka_unit_test(test_options_that_do_not_apply),
};

MPROC_TEST_MAIN(tests)
