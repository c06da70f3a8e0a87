/* test_shared - the communication and sync objects (mproc_shared.h) between the master, pool
 * tasks and Processes: a counter under a Lock, producer/consumer through a Queue, an Event that
 * stops workers, a Barrier of every worker, a Process killed holding a Lock or in the middle of
 * puts, Pipes, JoinableQueue, Condition, SharedMemory, timeouts and bad input. The same source
 * runs on fork and under mpirun (tasks and Processes on worker ranks, in their executors).
 */
#include <math.h>
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

/* ---- tasks and process targets ------------------------------------------------------------- */

struct bump_arg {
    mproc_array counter;
    int times;
};
/* Adds 1 to the counter `times` times, each under the counter's lock. */
static int bump(mproc_ctx *ctx, const struct bump_arg *a, long *out) {
    mproc_lock lock;
    if (mproc_array_lock(&a->counter, &lock) < 0) return mproc_fail(ctx, "lock: %s", mproc_last_error());
    for (int i = 0; i < a->times; i++) { /* read and write: the same on any node */
        int rc = mproc_lock_acquire(&lock, -1);
        if (rc < 0) return mproc_fail(ctx, "acquire: %s", mproc_last_error());
        long v;
        if (mproc_array_read(&a->counter, 0, &v, sizeof v) < 0) return mproc_fail(ctx, "read: %s", mproc_last_error());
        if (i % 16 == 0) sched_yield(); /* without the lock, increments would be lost here */
        v++;
        if (mproc_array_write(&a->counter, 0, &v, sizeof v) < 0) return mproc_fail(ctx, "write: %s", mproc_last_error());
        mproc_lock_release(&lock);
    }
    *out = getpid();
    return 0;
}
MPROC_TASK_TYPED(bump, struct bump_arg, long);

struct produce_arg {
    mproc_queue q;
    int n;
    int close_after;
};
static int produce(mproc_ctx *ctx, const void *in, size_t len) {
    const struct produce_arg *a = in;
    for (int i = 0; i < a->n; i++)
        if (MPROC_QUEUE_PUT(&a->q, &i, -1) < 0) return mproc_fail(ctx, "put %d: %s", i, mproc_last_error());
    if (a->close_after) mproc_queue_close(&a->q);
    return 0;
}
MPROC_TASK(produce);

struct spin_arg {
    mproc_event stop;
    mproc_event started;
};
/* Works until the event is set; returns how many rounds it made. */
static int spin_until(mproc_ctx *ctx, const struct spin_arg *a, long *out) {
    long rounds = 0;
    mproc_event_set(&a->started);
    while (mproc_event_wait(&a->stop, 0.01) == MPROC_ETIMEDOUT) rounds++;
    *out = rounds;
    return 0;
}
MPROC_TASK_TYPED(spin_until, struct spin_arg, long);

static int meet(mproc_ctx *ctx, const mproc_barrier *b, long *out) {
    int rc = mproc_barrier_wait(b, 30);
    if (rc < 0) return mproc_fail(ctx, "barrier: %s", mproc_last_error());
    *out = rc;
    return 0;
}
MPROC_TASK_TYPED(meet, mproc_barrier, long);

struct hold_arg {
    mproc_lock lock;
    mproc_event held;
};
static int hold_lock(mproc_ctx *ctx, const void *in, size_t len) {
    const struct hold_arg *a = in;
    if (mproc_lock_acquire(&a->lock, -1) < 0) return mproc_fail(ctx, "%s", mproc_last_error());
    mproc_event_set(&a->held);
    sleep(30);
    return 0;
}
MPROC_TASK(hold_lock);

#define BLOB 4000
struct blob_arg {
    mproc_queue q;
    mproc_event started;
};
/* Puts blobs filled with their sequence number until killed. */
static int put_blobs(mproc_ctx *ctx, const void *in, size_t len) {
    const struct blob_arg *a = in;
    static uint32_t blob[BLOB / 4];
    for (uint32_t seq = 0;; seq++) {
        for (size_t i = 0; i < BLOB / 4; i++) blob[i] = seq;
        if (mproc_queue_put(&a->q, blob, sizeof blob, -1) < 0) return mproc_fail(ctx, "%s", mproc_last_error());
        if (seq == 50) mproc_event_set(&a->started);
    }
}
MPROC_TASK(put_blobs);

struct echo_arg {
    mproc_conn end;
};
/* Answers every message with its bytes reversed until the other end closes; 0 on EOF. */
static int echo_reversed(mproc_ctx *ctx, const void *in, size_t len) {
    const struct echo_arg *a = in;
    long first; /* typed first: a long back, one more */
    if (MPROC_CONN_RECV(&a->end, &first, 30) < 0) return mproc_fail(ctx, "typed recv: %s", mproc_last_error());
    first++;
    if (MPROC_CONN_SEND(&a->end, &first, 30) < 0) return mproc_fail(ctx, "typed send: %s", mproc_last_error());
    for (;;) {
        mproc_buf m;
        int rc = mproc_conn_recv(&a->end, &m, 30);
        if (rc == MPROC_EOF) return 0;
        if (rc < 0) return mproc_fail(ctx, "recv: %s", mproc_last_error());
        char *b = m.data;
        for (size_t i = 0; i < m.len / 2; i++) {
            char t = b[i];
            b[i] = b[m.len - 1 - i];
            b[m.len - 1 - i] = t;
        }
        rc = mproc_conn_send(&a->end, b, m.len, 30);
        mproc_free(m.data);
        if (rc < 0) return mproc_fail(ctx, "send: %s", mproc_last_error());
    }
}
MPROC_TASK(echo_reversed);

struct consume_arg {
    mproc_queue q;
    mproc_array sum;
};
/* Takes items until the queue closes, adding each to sum and marking it done. */
static int consume(mproc_ctx *ctx, const void *in, size_t len) {
    const struct consume_arg *a = in;
    for (;;) {
        long v;
        int rc = MPROC_QUEUE_GET(&a->q, &v, 30);
        if (rc == MPROC_ECLOSED) return 0;
        if (rc < 0) return mproc_fail(ctx, "get: %s", mproc_last_error());
        if (mproc_array_add_i64(&a->sum, 0, v, NULL) < 0) return mproc_fail(ctx, "add: %s", mproc_last_error());
        mproc_queue_task_done(&a->q);
    }
}
MPROC_TASK(consume);

struct cond_arg {
    mproc_condition cond;
    mproc_array value;
};
/* Sets the value to 1..5 under the condition, notifying each time. */
static int cond_producer(mproc_ctx *ctx, const void *in, size_t len) {
    const struct cond_arg *a = in;
    for (long i = 1; i <= 5; i++) {
        usleep(20000);
        mproc_condition_acquire(&a->cond, -1);
        mproc_array_write(&a->value, 0, &i, sizeof i);
        mproc_condition_notify_all(&a->cond);
        mproc_condition_release(&a->cond);
    }
    return 0;
}
MPROC_TASK(cond_producer);

struct waiter_arg {
    mproc_event ev;
    mproc_queue q;
    mproc_event started;
};
/* Waits forever on an event or a queue; exits 0 when the wait ends with EBADHANDLE (freed). */
static int wait_on_event(mproc_ctx *ctx, const void *in, size_t len) {
    const struct waiter_arg *a = in;
    mproc_event_set(&a->started);
    int rc = mproc_event_wait(&a->ev, 30);
    return rc == MPROC_EBADHANDLE ? 0 : mproc_fail(ctx, "event wait returned %d", rc);
}
MPROC_TASK(wait_on_event);
static int wait_on_queue(mproc_ctx *ctx, const void *in, size_t len) {
    const struct waiter_arg *a = in;
    mproc_event_set(&a->started);
    long v;
    int rc = MPROC_QUEUE_GET(&a->q, &v, 30);
    return rc == MPROC_EBADHANDLE ? 0 : mproc_fail(ctx, "queue get returned %d", rc);
}
MPROC_TASK(wait_on_queue);

/* Waits in a get until killed. */
static int get_forever(mproc_ctx *ctx, const void *in, size_t len) {
    const struct waiter_arg *a = in;
    mproc_event_set(&a->started);
    long v;
    MPROC_QUEUE_GET(&a->q, &v, -1);
    return mproc_fail(ctx, "got %ld", v);
}
MPROC_TASK(get_forever);

/* Waits on the condition until the value is 1 (read through mproc_array_read: any node). */
static int cond_waiter(mproc_ctx *ctx, const void *in, size_t len) {
    const struct cond_arg *a = in;
    if (mproc_condition_acquire(&a->cond, 30) < 0) return mproc_fail(ctx, "%s", mproc_last_error());
    long v = 0;
    for (int rounds = 0; rounds < 100; rounds++) {
        mproc_array_read(&a->value, 0, &v, sizeof v);
        if (v == 1) break;
        if (v == 0) mproc_array_write(&a->value, 0, &(long){2}, sizeof(long)); /* "I am waiting" */
        int rc = mproc_condition_wait(&a->cond, 5);
        if (rc < 0 && rc != MPROC_ETIMEDOUT) return mproc_fail(ctx, "wait: %s", mproc_last_error());
    }
    mproc_condition_release(&a->cond);
    return v == 1 ? 0 : mproc_fail(ctx, "never saw the value");
}
MPROC_TASK(cond_waiter);

static int shm_writer(mproc_ctx *ctx, const void *in, size_t len) {
    mproc_shm *s;
    if (mproc_shm_attach(&s, (const char *)in) < 0) return mproc_fail(ctx, "%s", mproc_last_error());
    memset(mproc_shm_data(s), 'x', mproc_shm_size(s));
    mproc_shm_close(s);
    return 0;
}
MPROC_TASK(shm_writer);

/* ---- helpers -------------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static mproc_process *start(const mproc_task *t, const void *arg, size_t len) {
    mproc_process *p;
    assert_int_equal(mproc_process_create(&p, t, arg, len, NULL), 0);
    assert_int_equal(mproc_process_start(p), 0);
    return p;
}

static void join_ok(mproc_process *p) {
    int code = -1;
    assert_int_equal(mproc_process_join(p, 60), 0);
    assert_int_equal(mproc_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    mproc_process_free(p);
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* Made after the pool started: its workers map the arena when they meet the handle. */
static void test_tasks_count_exactly_under_a_lock(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    struct bump_arg a = {.times = 500};
    assert_int_equal(mproc_value_create(&a.counter, sizeof(long)), 0);
    enum { N = 40 };
    struct bump_arg in[N];
    long pids[N];
    for (int i = 0; i < N; i++) in[i] = a;
    assert_int_equal(mproc_map(pool, &bump_task, in, sizeof in[0], pids, sizeof pids[0], N,
                               &(mproc_call_opts){.chunksize = 1}), 0);
    assert_int_equal(*(long *)mproc_array_data(&a.counter), (long)N * a.times);
    for (int i = 0; i < N; i++) assert_int_not_equal(pids[i], getpid()); /* it ran elsewhere */
    assert_int_equal(mproc_array_count(&a.counter), 1);
    assert_int_equal(mproc_array_free(&a.counter), 0);
    mproc_pool_free(pool);
}

static void test_queue_from_a_process_in_order(void **state) {
    struct produce_arg a = {.n = 3000, .close_after = 1};
    /* 256 bytes hold 16 items: the producer blocks on a full queue again and again. */
    assert_int_equal(mproc_queue_create(&a.q, &(mproc_queue_opts){.capacity = 256}), 0);
    mproc_process *p = start(&produce_task, &a, sizeof a);
    for (int i = 0; i < a.n; i++) {
        int v = -1;
        assert_int_equal(MPROC_QUEUE_GET(&a.q, &v, 30), 0);
        assert_int_equal(v, i);
    }
    int v;
    assert_int_equal(MPROC_QUEUE_GET(&a.q, &v, 30), MPROC_ECLOSED);
    join_ok(p);
    assert_int_equal(mproc_queue_qsize(&a.q), 0);
    assert_int_equal(mproc_queue_free(&a.q), 0);
}

static void test_many_producers_every_item_once(void **state) {
    enum { P = 3, N = 500 };
    mproc_queue q;
    assert_int_equal(mproc_queue_create(&q, &(mproc_queue_opts){.maxsize = 7}), 0);
    mproc_process *ps[P];
    for (int k = 0; k < P; k++) {
        struct produce_arg a = {.q = q, .n = N};
        ps[k] = start(&produce_task, &a, sizeof a);
    }
    int seen[N] = {0};
    for (int i = 0; i < P * N; i++) {
        int v = -1;
        assert_int_equal(MPROC_QUEUE_GET(&q, &v, 30), 0);
        assert_true(v >= 0 && v < N);
        seen[v]++;
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], P);
    int v;
    assert_int_equal(MPROC_QUEUE_GET(&q, &v, 0), MPROC_EEMPTY);
    for (int k = 0; k < P; k++) join_ok(ps[k]);
    mproc_queue_free(&q);
}

static void test_event_stops_workers(void **state) {
    struct spin_arg a;
    assert_int_equal(mproc_event_create(&a.stop), 0);
    assert_int_equal(mproc_event_create(&a.started), 0);
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    int n = mproc_pool_size(pool);
    mproc_async **h = calloc((size_t)n, sizeof *h);
    for (int i = 0; i < n; i++) assert_int_equal(mproc_apply_async(pool, &spin_until_task, &a, sizeof a, NULL, &h[i]), 0);
    assert_int_equal(mproc_event_wait(&a.started, 30), 0);
    usleep(100000);
    for (int i = 0; i < n; i++) assert_int_equal(mproc_async_wait(h[i], 0), MPROC_ETIMEDOUT); /* still working */
    assert_int_equal(mproc_event_is_set(&a.stop), 0);
    assert_int_equal(mproc_event_set(&a.stop), 0);
    assert_int_equal(mproc_event_is_set(&a.stop), 1);
    for (int i = 0; i < n; i++) {
        long rounds = -1;
        assert_int_equal(mproc_async_get_into(h[i], 10, &rounds, sizeof rounds), 0);
        assert_true(rounds >= 0);
        mproc_async_free(h[i]);
    }
    free(h);
    mproc_pool_free(pool);
    mproc_event_free(&a.stop);
    mproc_event_free(&a.started);
}

static void test_barrier_of_every_worker(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    int n = mproc_pool_size(pool);
    mproc_barrier b;
    assert_int_equal(mproc_barrier_create(&b, (unsigned)n), 0);
    mproc_barrier *in = calloc((size_t)n, sizeof *in);
    long *idx = calloc((size_t)n, sizeof *idx);
    for (int i = 0; i < n; i++) in[i] = b;
    for (int round = 0; round < 3; round++) { /* the barrier is used again after each round */
        assert_int_equal(mproc_map(pool, &meet_task, in, sizeof in[0], idx, sizeof idx[0], (size_t)n,
                                   &(mproc_call_opts){.chunksize = 1}), 0);
        long seen = 0;
        for (int i = 0; i < n; i++) seen |= 1L << idx[i];
        assert_int_equal(seen, (1L << n) - 1); /* every arrival index once */
    }
    free(in);
    free(idx);
    mproc_barrier_free(&b);
    mproc_pool_free(pool);
}

static void test_barrier_timeout_breaks_it_and_reset_mends(void **state) {
    mproc_barrier b;
    assert_int_equal(mproc_barrier_create(&b, 2), 0);
    double t0 = now_s();
    assert_int_equal(mproc_barrier_wait(&b, 0.05), MPROC_ETIMEDOUT);
    assert_true(now_s() - t0 >= 0.04);
    assert_int_equal(mproc_barrier_wait(&b, 1), MPROC_EBROKEN);
    assert_int_equal(mproc_barrier_reset(&b), 0);
    assert_int_equal(mproc_barrier_waiting(&b), 0);
    mproc_barrier one;
    assert_int_equal(mproc_barrier_create(&one, 1), 0);
    assert_int_equal(mproc_barrier_wait(&one, 0), 0);
    assert_int_equal(mproc_barrier_abort(&one), 0);
    assert_int_equal(mproc_barrier_wait(&one, 0), MPROC_EBROKEN);
    mproc_barrier_free(&one);
    mproc_barrier_free(&b);
}

static void test_process_killed_holding_a_lock(void **state) {
    struct hold_arg a;
    assert_int_equal(mproc_lock_create(&a.lock), 0);
    assert_int_equal(mproc_event_create(&a.held), 0);
    mproc_process *p = start(&hold_lock_task, &a, sizeof a);
    assert_int_equal(mproc_event_wait(&a.held, 30), 0);
    assert_int_equal(mproc_lock_acquire(&a.lock, 0.05), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(mproc_process_join(p, 30), 0);
    mproc_process_free(p);
    assert_int_equal(mproc_lock_acquire(&a.lock, 10), MPROC_EOWNERDEAD); /* acquired all the same */
    assert_int_equal(mproc_lock_release(&a.lock), 0);
    assert_int_equal(mproc_lock_acquire(&a.lock, 0), 0);
    assert_int_equal(mproc_lock_release(&a.lock), 0);
    mproc_lock_free(&a.lock);
    mproc_event_free(&a.held);
}

/* A task that returns holding a lock (its worker still alive) leaves it held; the pool's end
 * ends its worker, and the lock is handed on with EOWNERDEAD. Under MPI the executors outlive
 * the pool: they were retired only when a next pool needed them, so the lock stayed held until
 * then (found by a new-user trial: ETIMEDOUT after pool_free on MPI, EOWNERDEAD on fork). */
static int keep_lock(mproc_ctx *ctx, const mproc_lock *l, long *out) {
    (void)ctx;
    *out = mproc_lock_acquire(l, 5);
    return 0;
}
MPROC_TASK_TYPED(keep_lock, mproc_lock, long);

static void test_a_lock_a_task_kept_is_handed_on_when_the_pool_ends(void **state) {
    const char *in_rank = getenv("MPROC_MPI_EXECUTORS");
    if (mproc_backend() == MPROC_BACKEND_MPI && in_rank && !strcmp(in_rank, "0")) return; /* the rank lives on */
    mproc_lock l;
    assert_int_equal(mproc_lock_create(&l), 0);
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &(mproc_pool_opts){.processes = 1}), 0);
    long got = 1;
    assert_int_equal(mproc_apply(p, &keep_lock_task, &l, sizeof l, &got, sizeof got, NULL), 0);
    assert_int_equal(got, 0); /* the task holds it */
    assert_int_equal(mproc_lock_acquire(&l, 0.05), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_pool_free(p), 0);
    assert_int_equal(mproc_lock_acquire(&l, 10), MPROC_EOWNERDEAD);
    assert_int_equal(mproc_lock_release(&l), 0);
    mproc_lock_free(&l);
}

static void test_producer_killed_mid_put_leaves_no_torn_item(void **state) {
    for (int round = 0; round < 3; round++) {
        struct blob_arg a;
        assert_int_equal(mproc_queue_create(&a.q, &(mproc_queue_opts){.capacity = 1 << 20}), 0);
        assert_int_equal(mproc_event_create(&a.started), 0);
        mproc_process *p = start(&put_blobs_task, &a, sizeof a);
        assert_int_equal(mproc_event_wait(&a.started, 30), 0);
        static uint32_t blob[BLOB / 4];
        long expect = 0;
        /* Take some while it puts, then kill it at some point in its next puts. */
        for (int i = 0; i < 100; i++, expect++) {
            assert_int_equal(mproc_queue_get_exact(&a.q, blob, sizeof blob, 30), 0);
            assert_int_equal(blob[0], expect);
        }
        usleep((useconds_t)(rand() % 3000));
        assert_int_equal(mproc_process_kill(p), 0);
        assert_int_equal(mproc_process_join(p, 30), 0);
        mproc_process_free(p);
        size_t len;
        int rc;
        while ((rc = mproc_queue_get(&a.q, blob, sizeof blob, &len, 0)) == 0) {
            assert_int_equal(len, sizeof blob);
            for (size_t i = 0; i < BLOB / 4; i++) assert_int_equal(blob[i], expect);
            expect++;
        }
        assert_int_equal(rc, MPROC_EEMPTY);
        assert_true(expect > 100);
        mproc_queue_free(&a.q);
        mproc_event_free(&a.started);
    }
}

static void test_pipe_both_ways_and_eof(void **state) {
    mproc_conn mine, theirs;
    assert_int_equal(mproc_pipe(&mine, &theirs, 1, 4096), 0);
    struct echo_arg a = {theirs};
    mproc_process *p = start(&echo_reversed_task, &a, sizeof a);
    long typed = 41;
    assert_int_equal(MPROC_CONN_SEND(&mine, &typed, 10), 0);
    assert_int_equal(MPROC_CONN_RECV(&mine, &typed, 30), 0);
    assert_int_equal(typed, 42);
    const char *words[] = {"stressed", "", "a", "drawer"};
    const char *back[] = {"desserts", "", "a", "reward"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mproc_conn_send(&mine, words[i], strlen(words[i]), 10), 0);
        assert_int_equal(mproc_conn_poll(&mine, 30), 1);
        char buf[16];
        size_t n;
        assert_int_equal(mproc_conn_recv_into(&mine, buf, sizeof buf, &n, 30), 0);
        assert_int_equal(n, strlen(back[i]));
        assert_memory_equal(buf, back[i], n);
    }
    assert_int_equal(mproc_conn_poll(&mine, 0.02), 0);
    assert_int_equal(mproc_conn_close(&mine), 0); /* its recv sees EOF and it ends with 0 */
    join_ok(p);
    assert_int_equal(mproc_conn_send(&mine, "x", 1, 0), MPROC_EBADHANDLE);
    assert_int_equal(mproc_conn_close(&theirs), 0); /* both closed: freed */
}

static void test_one_way_pipe(void **state) {
    mproc_conn r, w;
    assert_int_equal(mproc_pipe(&r, &w, 0, 0), 0);
    assert_int_equal(mproc_conn_send(&r, "x", 1, 0), MPROC_ESTATE);
    mproc_buf m;
    assert_int_equal(mproc_conn_recv(&w, &m, 0), MPROC_ESTATE);
    assert_int_equal(mproc_conn_send(&w, "hello", 5, 0), 0);
    assert_int_equal(mproc_conn_recv(&r, &m, 0), 0);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "hello", 5);
    mproc_free(m.data);
    assert_int_equal(mproc_conn_recv(&r, &m, 0.01), MPROC_ETIMEDOUT);
    struct point { double x, y; } pt = {1.5, -2}, got;
    assert_int_equal(MPROC_CONN_SEND(&w, &pt, 0), 0); /* typed: the size from the variable */
    long wrong;
    assert_int_equal(MPROC_CONN_RECV(&r, &wrong, 0), MPROC_ESIZE); /* 16 bytes, not a long: stays */
    assert_int_equal(MPROC_CONN_RECV(&r, &got, 0), 0);
    assert_true(got.x == 1.5 && got.y == -2);
    mproc_conn w_copy = w;
    assert_int_equal(mproc_conn_close(&w), 0);
    assert_int_equal(mproc_conn_close(&w), 0);      /* twice, the same variable (cleared) */
    assert_int_equal(mproc_conn_close(&w_copy), 0); /* and through a copy */
    assert_int_equal(mproc_conn_recv(&r, &m, 1), MPROC_EOF);
    assert_int_equal(mproc_conn_close(&r), 0);
    assert_int_equal(mproc_conn_close(&r), 0);
    assert_int_equal(mproc_conn_close(NULL), MPROC_EBADHANDLE); /* as every call given a NULL handle */
}

static void test_joinable_queue_join_waits_for_task_done(void **state) {
    struct consume_arg a;
    assert_int_equal(mproc_queue_create(&a.q, NULL), 0);
    assert_int_equal(mproc_array_create(&a.sum, sizeof(long), 1, 0), 0);
    mproc_process *c[2] = {start(&consume_task, &a, sizeof a), start(&consume_task, &a, sizeof a)};
    long expect = 0;
    for (long i = 1; i <= 1000; i++, expect += i - 1) assert_int_equal(MPROC_QUEUE_PUT(&a.q, &i, 10), 0);
    assert_int_equal(mproc_queue_join(&a.q, 30), 0);
    assert_int_equal(*(long *)mproc_array_data(&a.sum), expect);
    assert_int_equal(mproc_queue_task_done(&a.q), MPROC_ESTATE);
    assert_int_equal(mproc_queue_close(&a.q), 0);
    join_ok(c[0]);
    join_ok(c[1]);
    mproc_lock none;
    assert_int_equal(mproc_array_lock(&a.sum, &none), MPROC_ESTATE);
    mproc_array_free(&a.sum);
    mproc_queue_free(&a.q);
}

static void test_condition_wait_for_a_value(void **state) {
    struct cond_arg a;
    assert_int_equal(mproc_condition_create(&a.cond, NULL), 0);
    assert_int_equal(mproc_array_create(&a.value, sizeof(long), 1, 0), 0);
    long *v = mproc_array_data(&a.value);
    assert_int_equal(mproc_condition_acquire(&a.cond, -1), 0);
    mproc_process *p = start(&cond_producer_task, &a, sizeof a);
    double t0 = now_s();
    while (*v < 5 && now_s() - t0 < 30) assert_true(mproc_condition_wait(&a.cond, 1) >= MPROC_ETIMEDOUT);
    assert_int_equal(*v, 5);
    assert_int_equal(mproc_condition_release(&a.cond), 0);
    join_ok(p);
    assert_int_equal(mproc_condition_release(&a.cond), MPROC_ESTATE);
    assert_int_equal(mproc_condition_wait(&a.cond, 0), MPROC_ESTATE); /* without the lock */
    mproc_condition_free(&a.cond);
    mproc_array_free(&a.value);
}

static void test_condition_waiter_in_a_process(void **state) {
    struct cond_arg a;
    assert_int_equal(mproc_condition_create(&a.cond, NULL), 0);
    assert_int_equal(mproc_array_create(&a.value, sizeof(long), 1, 0), 0);
    long *v = mproc_array_data(&a.value);
    mproc_process *p = start(&cond_waiter_task, &a, sizeof a);
    double t0 = now_s();
    for (;;) { /* until it waits (it writes 2 with the lock held, then waits) */
        assert_int_equal(mproc_condition_acquire(&a.cond, 10), 0);
        if (*v == 2) break;
        assert_int_equal(mproc_condition_release(&a.cond), 0);
        assert_true(now_s() - t0 < 30);
        usleep(10000);
    }
    *v = 1; /* it sleeps in wait now (it gave the lock up to let us in) */
    assert_int_equal(mproc_condition_notify_all(&a.cond), 0);
    assert_int_equal(mproc_condition_release(&a.cond), 0);
    join_ok(p);
    assert_true(now_s() - t0 < 4); /* woken by the notify, not by its 5 s timeout */
    mproc_condition_free(&a.cond);
    mproc_array_free(&a.value);
}

static void test_shared_memory_by_name(void **state) {
    if (getenv("MPROC_TEST_CLUSTER")) skip(); /* a named block is on one node: the Process may run elsewhere */
    mproc_shm *s;
    assert_int_equal(mproc_shm_create(&s, NULL, 10000), 0);
    char name[256];
    snprintf(name, sizeof name, "%s", mproc_shm_name(s));
    mproc_shm *again;
    assert_int_equal(mproc_shm_create(&again, name, 10), MPROC_EBUSY);
    mproc_process *p = start(&shm_writer_task, name, strlen(name) + 1);
    join_ok(p);
    const char *d = mproc_shm_data(s);
    assert_int_equal(mproc_shm_size(s), 10000);
    assert_int_equal(d[0], 'x');
    assert_int_equal(d[9999], 'x');
    assert_int_equal(mproc_shm_unlink(name), 0);
    assert_int_equal(mproc_shm_attach(&again, name), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), name));
    assert_int_equal(d[5000], 'x'); /* our view stays after the unlink */
    assert_int_equal(mproc_shm_close(s), 0);
    assert_int_equal(mproc_shm_create(&s, "bad/name", 10), MPROC_EINVAL);
    assert_int_equal(mproc_shm_create(&s, "ok", 0), MPROC_EINVAL);
}

static mproc_lock shared_lock;
static void *hold_for_a_while(void *arg) {
    mproc_lock_acquire(&shared_lock, -1);
    mproc_event_set(arg);
    usleep(300000);
    mproc_lock_release(&shared_lock);
    return NULL;
}

static void test_timeouts(void **state) {
    mproc_event ev;
    assert_int_equal(mproc_event_create(&ev), 0);
    assert_int_equal(mproc_lock_create(&shared_lock), 0);
    pthread_t t;
    pthread_create(&t, NULL, hold_for_a_while, &ev);
    assert_int_equal(mproc_event_wait(&ev, 10), 0);
    double t0 = now_s();
    assert_int_equal(mproc_lock_acquire(&shared_lock, 0.05), MPROC_ETIMEDOUT);
    assert_true(now_s() - t0 >= 0.04);
    assert_int_equal(mproc_lock_acquire(&shared_lock, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_lock_release(&shared_lock), MPROC_ESTATE); /* held by the other thread */
    assert_int_equal(mproc_lock_acquire(&shared_lock, 10), 0);         /* it lets go in time */
    pthread_join(t, NULL);
    assert_int_equal(mproc_lock_release(&shared_lock), 0);
    mproc_lock_free(&shared_lock);

    mproc_event_clear(&ev);
    t0 = now_s();
    assert_int_equal(mproc_event_wait(&ev, 0.05), MPROC_ETIMEDOUT);
    assert_true(now_s() - t0 >= 0.04);
    mproc_semaphore s;
    assert_int_equal(mproc_semaphore_create(&s, 0, 0), 0);
    assert_int_equal(mproc_semaphore_acquire(&s, 0.02), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_semaphore_release(&s), 0);
    assert_int_equal(mproc_semaphore_value(&s), 1);
    assert_int_equal(mproc_semaphore_acquire(&s, 0), 0);
    mproc_semaphore_free(&s);
    mproc_queue q;
    assert_int_equal(mproc_queue_create(&q, &(mproc_queue_opts){.maxsize = 1}), 0);
    int v = 1;
    assert_int_equal(MPROC_QUEUE_GET(&q, &v, 0.02), MPROC_EEMPTY);
    assert_int_equal(MPROC_QUEUE_PUT(&q, &v, 0), 0);
    assert_int_equal(MPROC_QUEUE_PUT(&q, &v, 0.02), MPROC_EFULL);
    assert_int_equal(mproc_queue_join(&q, 0.02), MPROC_ETIMEDOUT);
    mproc_queue_free(&q);
    mproc_condition c;
    assert_int_equal(mproc_condition_create(&c, NULL), 0);
    assert_int_equal(mproc_condition_acquire(&c, 0), 0);
    assert_int_equal(mproc_condition_wait(&c, 0.02), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_condition_release(&c), 0); /* held again after the timeout */
    mproc_condition_free(&c);
    mproc_event_free(&ev);
}

static void test_locks_semaphores_in_one_process(void **state) {
    mproc_lock l;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_acquire(&l, 0), 0);
    assert_int_equal(mproc_lock_acquire(&l, 0), MPROC_ESTATE); /* not a silent deadlock */
    assert_int_equal(mproc_lock_release(&l), 0);
    assert_int_equal(mproc_lock_release(&l), MPROC_ESTATE);
    mproc_lock_free(&l);
    mproc_rlock r;
    assert_int_equal(mproc_rlock_create(&r), 0);
    assert_int_equal(mproc_rlock_acquire(&r, 0), 0);
    assert_int_equal(mproc_rlock_acquire(&r, 0), 0);
    assert_int_equal(mproc_rlock_release(&r), 0);
    assert_int_equal(mproc_rlock_release(&r), 0);
    assert_int_equal(mproc_rlock_release(&r), MPROC_ESTATE);
    mproc_rlock_free(&r);
    mproc_semaphore b;
    assert_int_equal(mproc_semaphore_create(&b, 2, 2), 0);
    assert_int_equal(mproc_semaphore_release(&b), MPROC_ESTATE); /* bounded: above 2 */
    assert_int_equal(mproc_semaphore_acquire(&b, 0), 0);
    assert_int_equal(mproc_semaphore_acquire(&b, 0), 0);
    assert_int_equal(mproc_semaphore_acquire(&b, 0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_semaphore_value(&b), 0);
    mproc_semaphore_free(&b);
    assert_int_equal(mproc_semaphore_create(&b, 3, 2), MPROC_EINVAL);
}

static void test_queue_items_of_any_length(void **state) {
    mproc_queue q;
    assert_int_equal(mproc_queue_create(&q, &(mproc_queue_opts){.capacity = 200}), 0);
    char big[300];
    assert_int_equal(mproc_queue_put(&q, big, sizeof big, 0), MPROC_ETOOBIG);
    assert_int_equal(mproc_queue_put(&q, NULL, 0, 0), 0); /* an empty item */
    assert_int_equal(mproc_queue_put(&q, "hello", 5, 0), 0);
    assert_int_equal(mproc_queue_qsize(&q), 2);
    mproc_buf m;
    assert_int_equal(mproc_queue_get_buf(&q, &m, 0), 0);
    assert_non_null(m.data);
    assert_int_equal(m.len, 0);
    mproc_free(m.data);
    char small[2];
    size_t n;
    assert_int_equal(mproc_queue_get(&q, small, sizeof small, &n, 0), MPROC_ESIZE);
    assert_int_equal(n, 5);
    long wrong;
    assert_int_equal(MPROC_QUEUE_GET(&q, &wrong, 0), MPROC_ESIZE); /* 5 bytes, not a long: stays */
    assert_int_equal(mproc_queue_get_buf(&q, &m, 0), 0);
    assert_memory_equal(m.data, "hello", 5);
    mproc_free(m.data);
    /* wrap around the ring many times with items of many lengths */
    for (int i = 0; i < 2000; i++) {
        char item[64];
        size_t len = (size_t)(i * 7) % sizeof item;
        memset(item, 'a' + i % 26, len);
        assert_int_equal(mproc_queue_put(&q, item, len, 0), 0);
        char got[64];
        assert_int_equal(mproc_queue_get(&q, got, sizeof got, &n, 0), 0);
        assert_int_equal(n, len);
        assert_memory_equal(got, item, len);
    }
    assert_int_equal(mproc_queue_close(&q), 0);
    assert_int_equal(mproc_queue_put(&q, "x", 1, 0), MPROC_ECLOSED);
    assert_int_equal(mproc_queue_get(&q, small, sizeof small, &n, 0), MPROC_ECLOSED);
    assert_int_equal(mproc_queue_close(&q), 0);
    mproc_queue_free(&q);
}

/* Freeing an object someone waits in wakes them with EBADHANDLE, never leaves them asleep. */
static void test_free_wakes_waiters(void **state) {
    struct waiter_arg a;
    assert_int_equal(mproc_event_create(&a.ev), 0);
    assert_int_equal(mproc_queue_create(&a.q, NULL), 0);
    assert_int_equal(mproc_event_create(&a.started), 0);
    mproc_process *pe = start(&wait_on_event_task, &a, sizeof a);
    mproc_process *pq = start(&wait_on_queue_task, &a, sizeof a);
    assert_int_equal(mproc_event_wait(&a.started, 30), 0);
    usleep(200000); /* both are asleep in their waits by now */
    mproc_event ev = a.ev;
    mproc_queue q = a.q;
    assert_int_equal(mproc_event_free(&ev), 0);
    assert_int_equal(mproc_queue_free(&q), 0);
    join_ok(pe); /* in time, and with EBADHANDLE */
    join_ok(pq);
    mproc_event_free(&a.started);
    /* a held Lock is not freed; a free one is */
    mproc_lock l;
    assert_int_equal(mproc_lock_create(&l), 0);
    assert_int_equal(mproc_lock_acquire(&l, 0), 0);
    assert_int_equal(mproc_lock_free(&l), MPROC_EBUSY);
    assert_int_equal(mproc_lock_release(&l), 0);
    assert_int_equal(mproc_lock_free(&l), 0);
    /* an RLock held by the caller, once or twice, is not freed either */
    mproc_rlock rl, rl2;
    assert_int_equal(mproc_rlock_create(&rl), 0);
    rl2 = rl;
    assert_int_equal(mproc_rlock_acquire(&rl, 0), 0);
    assert_int_equal(mproc_rlock_acquire(&rl, 0), 0);
    assert_int_equal(mproc_rlock_free(&rl), MPROC_EBUSY);
    assert_int_equal(mproc_rlock_release(&rl2), 0);
    assert_int_equal(mproc_rlock_free(&rl), MPROC_EBUSY);
    assert_int_equal(mproc_rlock_release(&rl2), 0);
    assert_int_equal(mproc_rlock_release(&rl2), MPROC_ESTATE);
    assert_int_equal(mproc_rlock_free(&rl), 0);
    /* an Array or Condition whose own lock is held refuses, names itself, and is still whole */
    mproc_array arr, arr2;
    mproc_lock al;
    assert_int_equal(mproc_value_create(&arr, sizeof(long)), 0);
    arr2 = arr;
    assert_int_equal(mproc_array_lock(&arr, &al), 0);
    assert_int_equal(mproc_lock_acquire(&al, 0), 0);
    assert_int_equal(mproc_array_free(&arr), MPROC_EBUSY);
    assert_non_null(strstr(mproc_last_error(), "mproc_array_free"));
    assert_non_null(mproc_array_data(&arr2));
    assert_int_equal(mproc_lock_release(&al), 0);
    assert_int_equal(mproc_array_free(&arr2), 0);
    assert_int_equal(mproc_lock_acquire(&al, 0), MPROC_EBADHANDLE); /* freed with it */
    mproc_condition c, c2;
    assert_int_equal(mproc_condition_create(&c, NULL), 0);
    c2 = c;
    assert_int_equal(mproc_condition_acquire(&c, 0), 0);
    assert_int_equal(mproc_condition_free(&c), MPROC_EBUSY);
    assert_non_null(strstr(mproc_last_error(), "mproc_condition_free"));
    assert_int_equal(mproc_condition_notify(&c2, 1), 0); /* still whole */
    assert_int_equal(mproc_condition_release(&c2), 0);
    assert_int_equal(mproc_condition_free(&c2), 0);
    /* A condition made with the user's lock, that lock freed under it: waiting says so. */
    mproc_lock ul;
    assert_int_equal(mproc_lock_create(&ul), 0);
    assert_int_equal(mproc_condition_create(&c, &ul), 0);
    assert_int_equal(mproc_lock_free(&ul), 0);
    assert_int_equal(mproc_condition_wait(&c, 0.1), MPROC_EBADHANDLE);
    assert_non_null(strstr(mproc_last_error(), "mproc_condition_wait: the condition's lock was freed"));
    assert_int_equal(mproc_condition_free(&c), 0);
}

/* A getter killed while it waits takes nothing put after its death (under MPI on another node:
 * the broker's thread notices the closed connection within a slice, 0.1 s). */
static void test_killed_getter_takes_nothing(void **state) {
    struct waiter_arg a;
    assert_int_equal(mproc_queue_create(&a.q, NULL), 0);
    assert_int_equal(mproc_event_create(&a.started), 0);
    mproc_process *p = start(&get_forever_task, &a, sizeof a);
    assert_int_equal(mproc_event_wait(&a.started, 30), 0);
    usleep(100000);
    assert_int_equal(mproc_process_kill(p), 0);
    assert_int_equal(mproc_process_join(p, 30), 0);
    mproc_process_free(p);
    usleep(300000);
    long v = 42, got = 0;
    assert_int_equal(MPROC_QUEUE_PUT(&a.q, &v, 0), 0);
    assert_int_equal(MPROC_QUEUE_GET(&a.q, &got, 5), 0);
    assert_int_equal(got, 42);
    mproc_queue_free(&a.q);
    mproc_event_free(&a.started);
}

/* Takes one item within 10 s: exits 0 with it, fails without. */
static int get_one(mproc_ctx *ctx, const void *in, size_t len) {
    const struct waiter_arg *a = in;
    mproc_event_set(&a->started);
    long v = 0;
    int rc = MPROC_QUEUE_GET(&a->q, &v, 10);
    return rc == 0 && v == 7 ? 0 : mproc_fail(ctx, "get: %d, %ld", rc, v);
}
MPROC_TASK(get_one);

/* A getter killed while it sleeps takes no wake-up with it: the next sleeper gets the item. */
static void test_killed_sleeper_takes_no_wakeup(void **state) {
    struct waiter_arg a;
    assert_int_equal(mproc_queue_create(&a.q, NULL), 0);
    assert_int_equal(mproc_event_create(&a.started), 0);
    mproc_process *dead = start(&get_forever_task, &a, sizeof a);
    assert_int_equal(mproc_event_wait(&a.started, 30), 0);
    usleep(100000);
    assert_int_equal(mproc_process_kill(dead), 0);
    assert_int_equal(mproc_process_join(dead, 30), 0);
    mproc_process_free(dead);
    usleep(300000);
    assert_int_equal(mproc_event_clear(&a.started), 0);
    mproc_process *live = start(&get_one_task, &a, sizeof a);
    assert_int_equal(mproc_event_wait(&a.started, 30), 0);
    usleep(100000); /* asleep in its get */
    long v = 7;
    assert_int_equal(MPROC_QUEUE_PUT(&a.q, &v, 0), 0);
    join_ok(live);
    mproc_queue_free(&a.q);
    mproc_event_free(&a.started);
}

static int is_three(void *arg) { return *(long *)arg == 3; }

static void test_condition_notify_rules_and_wait_for(void **state) {
    mproc_condition c;
    assert_int_equal(mproc_condition_create(&c, NULL), 0);
    assert_int_equal(mproc_condition_notify(&c, 1), MPROC_ESTATE); /* without the lock */
    assert_int_equal(mproc_condition_notify_all(&c), MPROC_ESTATE);
    assert_int_equal(mproc_condition_acquire(&c, -1), 0);
    assert_int_equal(mproc_condition_notify(&c, 1), 0);
    long v = 3;
    assert_int_equal(mproc_condition_wait_for(&c, is_three, &v, 0), 0);
    v = 2;
    assert_int_equal(mproc_condition_wait_for(&c, is_three, &v, 0.03), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_condition_wait_for(&c, NULL, &v, 0), MPROC_EINVAL);
    assert_int_equal(mproc_condition_release(&c), 0); /* still held after the timeout */
    mproc_condition_free(&c);
    mproc_barrier b;
    assert_int_equal(mproc_barrier_create(&b, 3), 0);
    assert_int_equal(mproc_barrier_parties(&b), 3);
    assert_int_equal(mproc_barrier_broken(&b), 0);
    assert_int_equal(mproc_barrier_abort(&b), 0);
    assert_int_equal(mproc_barrier_broken(&b), 1);
    mproc_barrier_free(&b);
}

/* A recv waiting on an end that is closed meanwhile (by another thread or process holding a copy)
 * says so: ECLOSED, not EOF "the other end was closed" (a new-user trial: the writer was open). */
static mproc_conn waiting_end;
static int waiting_rc;
static void *recv_waiter(void *arg) {
    (void)arg;
    mproc_buf m;
    waiting_rc = mproc_conn_recv(&waiting_end, &m, 10);
    return NULL;
}

static void test_a_recv_on_an_end_closed_meanwhile_says_so(void **state) {
    mproc_conn a, b;
    assert_int_equal(mproc_pipe(&a, &b, 0, 0), 0);
    waiting_end = a;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, recv_waiter, NULL), 0);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(mproc_conn_close(&a), 0);
    pthread_join(t, NULL);
    assert_int_equal(waiting_rc, MPROC_ECLOSED);
    assert_int_equal(mproc_conn_send(&b, "x", 1, 0), MPROC_ECLOSED);
    assert_int_equal(mproc_conn_close(&b), 0);
}

static void test_pipe_misuse(void **state) {
    mproc_conn a, b;
    assert_int_equal(mproc_pipe(&a, &a, 1, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pipe(&a, &b, 1, 0), 0);
    mproc_conn a_copy = a, a_copy2 = a; /* as another process holds its own copy of the end */
    assert_int_equal(mproc_conn_close(&a), 0);
    assert_int_equal(mproc_conn_close(&a_copy2), 0); /* twice is fine */
    assert_int_equal(mproc_conn_send(&a_copy, "x", 1, 0), MPROC_ECLOSED);
    mproc_buf m;
    assert_int_equal(mproc_conn_recv(&a_copy, &m, 0), MPROC_ECLOSED);
    assert_int_equal(mproc_conn_send(&b, "x", 1, 0), MPROC_ECLOSED); /* the peer is closed */
    assert_int_equal(mproc_conn_close(&b), 0);
    assert_int_equal(mproc_conn_send(&a_copy, "x", 1, 0), MPROC_EBADHANDLE); /* freed with both ends */
    /* Closing once more through a copy after both ends were closed (so the pipe was freed) is
     * still closing twice: fine (it was EBADHANDLE "the object was freed": a new-user trial). */
    assert_int_equal(mproc_conn_close(&a_copy), 0);
    mproc_conn c, d;
    assert_int_equal(mproc_pipe(&c, &d, 1, 0), 0);
    mproc_conn d_in_child = d; /* the Process's copy, closed there */
    assert_int_equal(mproc_conn_close(&d_in_child), 0);
    assert_int_equal(mproc_conn_close(&c), 0);
    assert_int_equal(mproc_conn_close(&d), 0);
    mproc_conn zero = {{0}};
    assert_int_equal(mproc_conn_close(&zero), 0); /* a cleared handle: as after a close */
}

/* A handle whose offset was corrupted onto another live object of its kind is refused (both
 * objects had generation 1 and it was taken as the other: a new-user trial). */
static void test_a_handle_moved_onto_another_object_is_refused(void **state) {
    mproc_queue q1, q2;
    assert_int_equal(mproc_queue_create(&q1, NULL), 0);
    assert_int_equal(mproc_queue_create(&q2, NULL), 0);
    assert_int_equal(mproc_queue_put(&q2, "x", 1, 0), 0);
    mproc_queue moved = q1;
    moved.ref.offset = q2.ref.offset;
    assert_int_equal(mproc_queue_qsize(&moved), MPROC_EBADHANDLE);
    assert_int_equal(mproc_queue_put(&moved, "y", 1, 0), MPROC_EBADHANDLE);
    assert_int_equal(mproc_queue_qsize(&q2), 1); /* untouched */
    assert_int_equal(mproc_queue_free(&moved), MPROC_EBADHANDLE);
    assert_int_equal(mproc_queue_free(&q1), 0);
    assert_int_equal(mproc_queue_free(&q2), 0);
}

static void test_bad_input(void **state) {
    mproc_lock zero = {{0}}, l;
    assert_int_equal(mproc_lock_acquire(NULL, 0), MPROC_EBADHANDLE);
    assert_int_equal(mproc_lock_acquire(&zero, 0), MPROC_EBADHANDLE);
    assert_int_equal(mproc_lock_create(NULL), MPROC_EINVAL);
    assert_int_equal(mproc_lock_create(&l), 0);
    mproc_lock stale = l;
    assert_int_equal(mproc_lock_acquire(&l, NAN), MPROC_EINVAL);
    assert_int_equal(mproc_lock_free(&l), 0);
    assert_int_equal(mproc_lock_acquire(&stale, 0), MPROC_EBADHANDLE); /* freed */
    assert_non_null(strstr(mproc_last_error(), "freed"));
    assert_int_equal(mproc_lock_free(&stale), MPROC_EBADHANDLE);
    mproc_lock reused; /* the block is reused: the old handle still does not match */
    assert_int_equal(mproc_lock_create(&reused), 0);
    assert_int_equal(mproc_lock_acquire(&stale, 0), MPROC_EBADHANDLE);
    mproc_event ev;
    assert_int_equal(mproc_event_create(&ev), 0);
    assert_int_equal(mproc_lock_acquire((const mproc_lock *)&ev, 0), MPROC_EBADHANDLE); /* another kind */
    mproc_lock corrupt = reused;
    corrupt.ref.offset += 8;
    assert_int_equal(mproc_lock_acquire(&corrupt, 0), MPROC_EBADHANDLE);
    corrupt = reused;
    corrupt.ref.host ^= 1; /* as a handle made on another node that serves no broker looks */
    corrupt.ref.arena ^= 2;
    corrupt.ref.broker_port = 0;
    assert_int_equal(mproc_lock_acquire(&corrupt, 0), MPROC_EREMOTE);
    corrupt = reused;
    corrupt.ref.arena ^= 1; /* an arena nobody has */
    assert_int_equal(mproc_lock_acquire(&corrupt, 0), MPROC_EBADHANDLE);
    corrupt.ref.pid = 1; /* some other process's file: never opened as an arena */
    corrupt.ref.fd = 0;
    assert_int_equal(mproc_lock_acquire(&corrupt, 0), MPROC_EBADHANDLE);
    mproc_lock_free(&reused);
    mproc_event_free(&ev);
    mproc_array a;
    assert_int_equal(mproc_array_create(&a, 0, 10, 0), MPROC_EINVAL);
    assert_int_equal(mproc_array_create(&a, 8, 0, 0), MPROC_EINVAL);
    assert_int_equal(mproc_array_create(&a, (size_t)1 << 30, (size_t)1 << 30, 0), MPROC_EINVAL);
    assert_null(mproc_array_data(NULL));
    mproc_barrier b;
    assert_int_equal(mproc_barrier_create(&b, 0), MPROC_EINVAL);
    mproc_condition c;
    assert_int_equal(mproc_condition_create(&c, &zero), MPROC_EBADHANDLE);
    assert_int_equal(mproc_condition_create(&c, NULL), 0);
    assert_int_equal(mproc_condition_notify(&c, 0), MPROC_EINVAL);
    mproc_condition_free(&c);
    mproc_queue q;
    assert_int_equal(mproc_queue_create(&q, &(mproc_queue_opts){.capacity = 8}), MPROC_EINVAL);
    assert_int_equal(mproc_queue_create(&q, NULL), 0);
    assert_int_equal(mproc_queue_put(&q, NULL, 4, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_get(&q, NULL, 4, NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_get_buf(&q, NULL, 0), MPROC_EINVAL);
    assert_int_equal(mproc_queue_qsize(&q), 0);
    mproc_queue_free(&q);
    assert_int_equal(mproc_queue_qsize(&q), MPROC_EBADHANDLE); /* free cleared it */
    mproc_conn x, y;
    assert_int_equal(mproc_pipe(&x, NULL, 1, 0), MPROC_EINVAL);
    assert_int_equal(mproc_pipe(&x, &y, 1, 10), MPROC_EINVAL);
    assert_int_equal(mproc_shm_close(NULL), 0);
    assert_int_equal(mproc_shm_attach(NULL, "x"), MPROC_EINVAL);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_count_exactly_under_a_lock),
        cmocka_unit_test(test_queue_from_a_process_in_order),
        cmocka_unit_test(test_many_producers_every_item_once),
        cmocka_unit_test(test_event_stops_workers),
        cmocka_unit_test(test_barrier_of_every_worker),
        cmocka_unit_test(test_barrier_timeout_breaks_it_and_reset_mends),
        cmocka_unit_test(test_process_killed_holding_a_lock),
        cmocka_unit_test(test_a_lock_a_task_kept_is_handed_on_when_the_pool_ends),
        cmocka_unit_test(test_producer_killed_mid_put_leaves_no_torn_item),
        cmocka_unit_test(test_pipe_both_ways_and_eof),
        cmocka_unit_test(test_one_way_pipe),
        cmocka_unit_test(test_joinable_queue_join_waits_for_task_done),
        cmocka_unit_test(test_condition_wait_for_a_value),
        cmocka_unit_test(test_condition_waiter_in_a_process),
        cmocka_unit_test(test_shared_memory_by_name),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_locks_semaphores_in_one_process),
        cmocka_unit_test(test_queue_items_of_any_length),
        cmocka_unit_test(test_free_wakes_waiters),
        cmocka_unit_test(test_killed_getter_takes_nothing),
        cmocka_unit_test(test_killed_sleeper_takes_no_wakeup),
        cmocka_unit_test(test_condition_notify_rules_and_wait_for),
        cmocka_unit_test(test_pipe_misuse),
        cmocka_unit_test(test_a_recv_on_an_end_closed_meanwhile_says_so),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_a_handle_moved_onto_another_object_is_refused),
    };
    int rc = mproc_init(&argc, &argv);
    if (rc < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 1;
    }
    srand((unsigned)getpid());
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    mproc_finalize();
    return rc;
}
