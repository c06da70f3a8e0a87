/* test_pool - the Pool, end to end. The same source runs under the fork backend and under
 * mpirun (-np 2, 4, and 3 over TCP only): nothing here assumes a backend or a worker count
 * beyond what mproc_pool_size() reports.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

static int checked_square(mproc_ctx *ctx, const long *x, long *out) {
    if (*x % 1000 == 13) return mproc_fail(ctx, "unlucky %ld", *x);
    *out = *x * *x;
    return 0;
}
MPROC_TASK_TYPED(checked_square, long, long);

/* Failed runs of counted_square, in memory shared with the pool's workers when they are forked
 * after it is made (the fork backend; MPI executors never see it, so it stays 0 there). */
static long *failed_runs;

static int counted_square(mproc_ctx *ctx, const long *x, long *out) {
    if (*x % 1000 == 13) {
        if (failed_runs) __atomic_add_fetch(failed_runs, 1, __ATOMIC_RELAXED);
        return mproc_fail(ctx, "unlucky %ld", *x);
    }
    *out = *x * *x;
    return 0;
}
MPROC_TASK_TYPED(counted_square, long, long);

static int sleep_ms(mproc_ctx *ctx, const long *ms, long *out) {
    struct timespec ts = {*ms / 1000, (*ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *out = *ms;
    return 0;
}
MPROC_TASK_TYPED(sleep_ms, long, long);

static int echo(mproc_ctx *ctx, const void *in, size_t len) { return mproc_return(ctx, in, len); }
MPROC_TASK(echo);

/* A line of this process's /proc/self/status in kB ("RssAnon:", "RssShmem:"), or -1. */
static long status_kb(long pid, const char *field) {
    long kb = -1;
    char line[256], path[64];
    if (pid) snprintf(path, sizeof path, "/proc/%ld/status", pid);
    else snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0 && sscanf(line + strlen(field), "%ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}
static long own_status_kb(const char *field) { return status_kb(0, field); }

/* The parent of process pid (0 if unknown). */
static long parent_of(long pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    long ppid = 0;
    if (f && fscanf(f, "%*d (%*[^)]) %*c %ld", &ppid) != 1) ppid = 0;
    if (f) fclose(f);
    return ppid;
}

/* The worker's own private memory (RssAnon, kB), and its pid (the same worker each time). */
/* Under MPI with executors, also its rank's: an executor's parent is its rank's fork server,
 * whose parent is the rank (docs/mpi.md); elsewhere grand_* is some unrelated process's. */
typedef struct worker_mem {
    long pid, rss_anon_kb;
    long grand_pid, grand_rss_anon_kb, grand_rss_shmem_kb;
} worker_mem;
static int worker_memory(mproc_ctx *ctx, const int *unused, worker_mem *m) {
    (void)ctx, (void)unused;
    m->pid = mproc_current_pid();
    m->rss_anon_kb = own_status_kb("RssAnon:");
    m->grand_pid = parent_of(getppid());
    m->grand_rss_anon_kb = m->grand_pid > 1 ? status_kb(m->grand_pid, "RssAnon:") : -1;
    m->grand_rss_shmem_kb = m->grand_pid > 1 ? status_kb(m->grand_pid, "RssShmem:") : -1;
    return 0;
}
MPROC_TASK_TYPED(worker_memory, int, worker_mem);

typedef struct who {
    long pid;
    int index;
    char name[32];
} who;
static int whoami(mproc_ctx *ctx, const int *unused, who *w) {
    w->pid = mproc_current_pid();
    w->index = mproc_current_index();
    snprintf(w->name, sizeof w->name, "%s", mproc_current_name());
    return 0;
}
MPROC_TASK_TYPED(whoami, int, who);

static long init_value;
static int set_value(mproc_ctx *ctx, const void *in, size_t len) {
    if (len != sizeof(long)) return mproc_fail(ctx, "initializer wants a long");
    memcpy(&init_value, in, sizeof init_value);
    if (init_value < 0) return mproc_fail(ctx, "initializer refuses %ld", init_value);
    return 0;
}
MPROC_TASK(set_value);
static long get_value(long unused) { return init_value; }
MPROC_TASK_VALUE(get_value, long, long);

static mproc_pool *new_pool(int n) {
    mproc_pool *pool = NULL;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = n}), 0);
    assert_non_null(pool);
    return pool;
}

static void test_seed_apply_async(void **state) {
    mproc_pool *pool = new_pool(4);
    long numbers[5], out[5];
    mproc_async *r[5];
    for (int i = 0; i < 5; i++) {
        numbers[i] = i + 1;
        assert_int_equal(MPROC_APPLY_ASYNC(pool, square, &numbers[i], &r[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(MPROC_GET(r[i], &out[i]), 0);
        assert_int_equal(mproc_async_successful(r[i]), 1);
        assert_int_equal(mproc_async_free(r[i]), 0);
    }
    long want[5] = {1, 4, 9, 16, 25};
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(mproc_pool_close(pool), 0);
    assert_int_equal(mproc_pool_join(pool), 0);
    assert_int_equal(mproc_pool_free(pool), 0);
}

/* Blocking calls one at a time (the frames then pass through the rings' mailboxes: the worker
 * and the caller look for them without sleeping) alternating with bursts of calls in flight
 * together, small and big (some by mailbox, some by socket, some by ring), and a map: every
 * result right and in its place, whichever way each frame went. */
static void test_calls_in_a_loop_mixed_with_bursts(void **state) {
    (void)state;
    mproc_pool *pool = new_pool(2);
    enum { ROUNDS = 15, LOOP = 150, BURST = 40 };
    static char blob[BURST][3000];
    long in[200], out[200];
    for (int r = 0; r < ROUNDS; r++) {
        for (long i = 0; i < LOOP; i++) {
            long x = r * 1000 + i, y = -1;
            assert_int_equal(MPROC_APPLY(pool, square, &x, &y), 0);
            assert_int_equal(y, x * x);
        }
        mproc_async *a[BURST];
        for (int k = 0; k < BURST; k++) {
            size_t len = (size_t)(k % 4 == 0 ? 2000 + k : 8 + k); /* over and under a ring frame */
            memset(blob[k], 'a' + (r + k) % 26, len);
            assert_int_equal(mproc_apply_async(pool, &echo_task, blob[k], len, NULL, &a[k]), 0);
        }
        for (int k = BURST - 1; k >= 0; k--) { /* collected out of order */
            size_t got = 0, len = (size_t)(k % 4 == 0 ? 2000 + k : 8 + k);
            const void *d = NULL;
            assert_int_equal(mproc_async_get(a[k], 30.0, &d, &got), 0);
            assert_int_equal(got, len);
            assert_memory_equal(d, blob[k], len);
            assert_int_equal(mproc_async_free(a[k]), 0);
        }
        for (int i = 0; i < 200; i++) in[i] = r - i, out[i] = 0;
        assert_int_equal(mproc_map(pool, &square_task, in, sizeof *in, out, sizeof *out, 200,
                                   &(mproc_call_opts){.chunksize = 1 + r % 7}), 0);
        for (int i = 0; i < 200; i++) assert_int_equal(out[i], in[i] * in[i]);
    }
    assert_int_equal(mproc_pool_free(pool), 0);
}

static void map_check(mproc_pool *pool, size_t n, size_t chunksize) {
    long *in = calloc(n ? n : 1, sizeof *in), *out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        in[i] = (long)i - 7;
        out[i] = -1;
    }
    int rc = mproc_map(pool, &square_task, in, sizeof *in, out, sizeof *out, n,
                       &(mproc_call_opts){.chunksize = chunksize});
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < n; i++) assert_int_equal(out[i], in[i] * in[i]);
    free(in);
    free(out);
}

static void test_map_sizes_and_chunks(void **state) {
    mproc_pool *pool = new_pool(0);
    int workers = mproc_pool_size(pool);
    assert_true(workers >= 1);
    map_check(pool, 0, 0);
    map_check(pool, 1, 0);
    map_check(pool, (size_t)(workers > 1 ? workers - 1 : 1), 0);
    map_check(pool, 10000, 1);
    map_check(pool, 1000, 5000); /* chunksize larger than n */
    map_check(pool, 1000000, 0);
    map_check(pool, 100000, 333);
    mproc_pool_free(pool);
}

/* Chunks too big to batch (32 KiB of input) have their results built straight into the frame
 * ring a worker shares with its master (or executor with its rank), where a chunk with a failing
 * item leaves the room it took unused and sends its table of outcomes after it: every result and
 * every failure still reaches its item, in this map and in the clean one after it. */
static void test_big_chunks_with_failures_keep_every_result(void **state) {
    (void)state;
    failed_runs = mmap(NULL, sizeof *failed_runs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(failed_runs != MAP_FAILED);
    *failed_runs = 0;
    mproc_pool *pool = new_pool(0);
    enum { N = 60000, CHUNK = 4096 };
    long *in = malloc(sizeof(long) * N), *out = calloc(N, sizeof(long));
    int *status = calloc(N, sizeof(int));
    for (long i = 0; i < N; i++) in[i] = i;
    for (int round = 0; round < 2; round++) {
        if (round == 1) /* nothing fails now: the ring must still be in order */
            for (long i = 0; i < N; i++) in[i] = (i % 1000 == 13) ? i + 1 : i;
        memset(out, 0, sizeof(long) * N);
        int rc = mproc_map(pool, &counted_square_task, in, sizeof(long), out, sizeof(long), N,
                           &(mproc_call_opts){.chunksize = CHUNK, .item_status = status});
        assert_int_equal(rc, round == 0 ? MPROC_ETASK : 0);
        /* Each failing item ran once: no chunk was run again because its worker was killed
         * (for a frame it sent out of order, say). Checked where the count is shared (fork). */
        if (round == 0 && *failed_runs) assert_int_equal(*failed_runs, N / 1000);
        for (long i = 0; i < N; i++) {
            if (in[i] % 1000 == 13) {
                assert_int_equal(status[i], MPROC_ETASK);
            } else {
                assert_int_equal(status[i], 0);
                assert_int_equal(out[i], in[i] * in[i]);
            }
        }
    }
    free(in);
    free(out);
    free(status);
    assert_int_equal(mproc_pool_free(pool), 0);
    munmap(failed_runs, sizeof *failed_runs);
    failed_runs = NULL;
}

static void test_map_errors_reach_caller_and_pool_goes_on(void **state) {
    mproc_pool *pool = new_pool(0);
    enum { N = 5000 };
    long *in = malloc(sizeof(long) * N), *out = calloc(N, sizeof(long));
    int *status = calloc(N, sizeof(int));
    for (long i = 0; i < N; i++) in[i] = i;
    int rc = mproc_map(pool, &checked_square_task, in, sizeof(long), out, sizeof(long), N,
                       &(mproc_call_opts){.chunksize = 64, .item_status = status});
    assert_int_equal(rc, MPROC_ETASK);
    assert_non_null(strstr(mproc_last_error(), "unlucky"));
    int failed = 0;
    for (long i = 0; i < N; i++) {
        if (i % 1000 == 13) {
            assert_int_equal(status[i], MPROC_ETASK);
            failed++;
        } else {
            assert_int_equal(status[i], 0);
            assert_int_equal(out[i], i * i);
        }
    }
    assert_int_equal(failed, 5);
    long x = 13, y = 0;
    mproc_async *a;
    assert_int_equal(mproc_apply_async(pool, &checked_square_task, &x, sizeof x, NULL, &a), 0);
    assert_int_equal(mproc_async_get_into(a, -1, &y, sizeof y), MPROC_ETASK);
    assert_non_null(strstr(mproc_async_error(a), "task 'checked_square' failed on worker "));
    assert_non_null(strstr(mproc_async_error(a), ": unlucky 13"));
    assert_int_equal(mproc_async_successful(a), 0);
    mproc_async_free(a);
    x = 12;
    assert_int_equal(MPROC_APPLY(pool, checked_square, &x, &y), 0); /* still working */
    assert_int_equal(y, 144);
    free(in);
    free(out);
    free(status);
    mproc_pool_free(pool);
}

static void test_imap_ordered(void **state) {
    mproc_pool *pool = new_pool(0);
    enum { N = 20000 };
    long *in = malloc(sizeof(long) * N);
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_iter *it;
    assert_int_equal(mproc_imap(pool, &square_task, in, sizeof(long), N, &(mproc_call_opts){.chunksize = 7}, &it), 0);
    const void *data;
    size_t len, idx;
    for (long i = 0; i < N; i++) {
        assert_int_equal(mproc_iter_next(it, -1, &data, &len, &idx), 0);
        assert_int_equal(len, sizeof(long));
        assert_int_equal(idx, i);
        long v;
        memcpy(&v, data, sizeof v);
        assert_int_equal(v, i * i);
    }
    assert_int_equal(mproc_iter_next(it, -1, &data, &len, &idx), MPROC_EOF);
    assert_int_equal(mproc_iter_free(it), 0);
    free(in);
    mproc_pool_free(pool);
}

static void test_imap_unordered_each_once_with_errors(void **state) {
    mproc_pool *pool = new_pool(0);
    enum { N = 3000 };
    long *in = malloc(sizeof(long) * N);
    char *seen = calloc(N, 1);
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_iter *it;
    assert_int_equal(mproc_imap_unordered(pool, &checked_square_task, in, sizeof(long), N, &(mproc_call_opts){.chunksize = 1}, &it), 0);
    const void *data;
    size_t len, idx;
    int rc, errors = 0;
    while ((rc = mproc_iter_next(it, 30.0, &data, &len, &idx)) != MPROC_EOF) {
        assert_true(idx < N);
        assert_int_equal(seen[idx], 0);
        seen[idx] = 1;
        if (rc == MPROC_ETASK) {
            errors++;
            assert_int_equal(idx % 1000, 13);
            assert_non_null(strstr(mproc_last_error(), "unlucky"));
            continue;
        }
        assert_int_equal(rc, 0);
        long v;
        memcpy(&v, data, sizeof v);
        assert_int_equal(v, (long)idx * (long)idx);
    }
    assert_int_equal(errors, 3);
    for (long i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    mproc_iter_free(it);
    free(in);
    free(seen);
    mproc_pool_free(pool);
}

typedef struct gen_state {
    size_t limit, generated;
} gen_state;
static int gen_longs(void *ud, size_t i, void *item) {
    gen_state *g = ud;
    if (i >= g->limit) return 0;
    long v = (long)i;
    memcpy(item, &v, sizeof v);
    g->generated = i + 1;
    return 1;
}

static void test_imap_window_is_bounded(void **state) {
    mproc_pool *pool; /* 2 frames per worker, whatever the backend's default: the bound uses it */
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.inflight = 2}), 0);
    gen_state g = {400000, 0};
    size_t chunk = 100;
    /* 2 chunks per frame in flight, times up to 64 for chunks of short tasks (so that every
     * frame can carry a whole batch), and a few chunks being read or delivered. */
    size_t bound = (size_t)mproc_pool_size(pool) * 2 * 2 * 64 * chunk + 2 * chunk + 4 * chunk;
    mproc_iter *it;
    assert_int_equal(mproc_imap_gen(pool, &square_task, gen_longs, &g, sizeof(long), 1, &(mproc_call_opts){.chunksize = chunk}, &it), 0);
    const void *data;
    size_t len, idx, consumed = 0, worst = 0;
    int rc;
    while ((rc = mproc_iter_next(it, -1, &data, &len, &idx)) == 0) {
        assert_int_equal(idx, consumed);
        consumed++;
        if (g.generated - consumed > worst) worst = g.generated - consumed;
    }
    assert_int_equal(rc, MPROC_EOF);
    assert_int_equal(consumed, g.limit);
    assert_true(worst <= bound); /* input is read only as results are consumed */
    mproc_iter_free(it);
    mproc_pool_free(pool);
}

static void test_get_timeout_then_success(void **state) {
    mproc_pool *pool = new_pool(1);
    long ms = 400, out = 0;
    mproc_async *a;
    assert_int_equal(mproc_apply_async(pool, &sleep_ms_task, &ms, sizeof ms, NULL, &a), 0);
    assert_int_equal(mproc_async_get_into(a, 0.02, &out, sizeof out), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_async_ready(a), 0);
    assert_int_equal(mproc_async_successful(a), MPROC_ESTATE);
    assert_int_equal(mproc_async_wait(a, 0.0), MPROC_ETIMEDOUT);
    assert_int_equal(mproc_async_get_into(a, -1, &out, sizeof out), 0);
    assert_int_equal(out, 400);
    assert_int_equal(mproc_async_ready(a), 1);
    mproc_async_free(a);
    mproc_pool_free(pool);
}

static int ok_calls, err_calls, last_err;
static long cb_value;
static void on_result(void *ud, const void *data, size_t len) {
    ok_calls++;
    if (len == sizeof(long)) memcpy(&cb_value, data, sizeof cb_value);
}
static void on_error(void *ud, int err, const char *msg) {
    err_calls++;
    last_err = err;
}

/* A callback runs on the pool's own loop: terminate there stops the pool once the callback
 * returns; join, free, a blocking apply or a wait for another of its handles, and finalize
 * would wait for that loop, so for themselves, and are refused (a new-user trial found
 * terminate, join and free hanging there). */
typedef struct stop_in_cb {
    mproc_pool *pool;
    int terminate_rc, join_rc, free_rc, apply_rc, wait_rc, finalize_rc;
    int any_rc, all_rc, set_rc, iter_rc, any_now_rc;
    char join_msg[256];
} stop_in_cb;
static void stop_from_callback(void *ud, const void *data, size_t len) {
    (void)data;
    (void)len;
    stop_in_cb *s = ud;
    s->join_rc = mproc_pool_join(s->pool);
    snprintf(s->join_msg, sizeof s->join_msg, "%s", mproc_last_error());
    s->free_rc = mproc_pool_free(s->pool);
    long x = 5, y;
    s->apply_rc = mproc_apply(s->pool, &square_task, &x, sizeof x, &y, sizeof y, NULL);
    mproc_async *later;
    if (mproc_apply_async(s->pool, &square_task, &x, sizeof x, NULL, &later) == 0) {
        s->wait_rc = mproc_async_wait(later, 5.0); /* its result cannot come while we are here */
        size_t idx;
        s->any_now_rc = mproc_async_wait_any(&later, 1, 0, &idx); /* a look, not a wait */
        s->any_rc = mproc_async_wait_any(&later, 1, 5.0, &idx);
        s->all_rc = mproc_async_wait_all(&later, 1, 5.0);
        mproc_waitset *ws;
        if (mproc_waitset_create(&ws) == 0) {
            mproc_async *got;
            mproc_waitset_add(ws, later);
            s->set_rc = mproc_waitset_next(ws, 5.0, &got);
            mproc_waitset_free(ws);
        }
        mproc_async_free(later);
    }
    mproc_iter *it;
    if (mproc_imap(s->pool, &square_task, &x, sizeof x, 1, NULL, &it) == 0) {
        const void *got;
        size_t n, idx;
        s->iter_rc = mproc_iter_next(it, 5.0, &got, &n, &idx);
        mproc_iter_free(it);
    }
    s->finalize_rc = mproc_finalize();
    s->terminate_rc = mproc_pool_terminate(s->pool);
}

static void test_terminate_from_a_callback(void **state) {
    stop_in_cb s = {.join_rc = 1, .free_rc = 1, .terminate_rc = 1, .apply_rc = 1, .wait_rc = 1, .finalize_rc = 1,
                    .any_rc = 1, .all_rc = 1, .set_rc = 1, .iter_rc = 1, .any_now_rc = 1};
    s.pool = new_pool(0);
    long x = 7, y = 0, more = 3;
    mproc_call_opts o = {.callback = stop_from_callback, .userdata = &s};
    mproc_async *a, *queued;
    assert_int_equal(mproc_apply_async(s.pool, &square_task, &x, sizeof x, &o, &a), 0);
    assert_int_equal(mproc_async_wait(a, 30.0), 0); /* the callback returned: no hang */
    assert_int_equal(mproc_async_get_into(a, 0, &y, sizeof y), 0);
    assert_int_equal(y, 49);
    mproc_async_free(a);
    assert_int_equal(s.join_rc, MPROC_ESTATE);
    assert_non_null(strstr(s.join_msg, "callback"));
    assert_int_equal(s.free_rc, MPROC_ESTATE);
    assert_int_equal(s.apply_rc, MPROC_ESTATE); /* waits on the pool: refused, nothing queued */
    assert_int_equal(s.wait_rc, MPROC_ESTATE);
    assert_int_equal(s.any_now_rc, MPROC_ETIMEDOUT);
    assert_int_equal(s.any_rc, MPROC_ESTATE); /* each would wait out its 5 s */
    assert_int_equal(s.all_rc, MPROC_ESTATE);
    assert_int_equal(s.set_rc, MPROC_ESTATE);
    assert_int_equal(s.iter_rc, MPROC_ESTATE);
    assert_int_equal(s.finalize_rc, MPROC_ESTATE);
    assert_int_equal(s.terminate_rc, 0);
    /* The pool is terminated: new work is refused, and join returns outside the callback. */
    assert_int_equal(mproc_apply_async(s.pool, &square_task, &more, sizeof more, NULL, &queued), MPROC_ECLOSED);
    assert_int_equal(mproc_pool_join(s.pool), 0);
    assert_int_equal(mproc_pool_free(s.pool), 0);
}

static void test_callbacks(void **state) {
    mproc_pool *pool = new_pool(0);
    mproc_call_opts o = {.callback = on_result, .error_callback = on_error};
    long x = 9, bad = 13;
    mproc_async *a, *b;
    assert_int_equal(mproc_apply_async(pool, &checked_square_task, &x, sizeof x, &o, &a), 0);
    assert_int_equal(mproc_apply_async(pool, &checked_square_task, &bad, sizeof bad, &o, &b), 0);
    assert_int_equal(mproc_async_wait(a, -1), 0);
    assert_int_equal(mproc_async_wait(b, -1), 0);
    assert_int_equal(ok_calls, 1); /* callbacks run before the handle turns ready */
    assert_int_equal(cb_value, 81);
    assert_int_equal(err_calls, 1);
    assert_int_equal(last_err, MPROC_ETASK);
    mproc_async_free(a);
    mproc_async_free(b);
    long in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    mproc_async *m;
    assert_int_equal(mproc_map_async(pool, &square_task, in, sizeof in[0], out, sizeof out[0], 100, &o, &m), 0);
    const void *data;
    size_t len;
    assert_int_equal(mproc_async_get(m, -1, &data, &len), 0);
    assert_ptr_equal(data, out);
    assert_int_equal(len, sizeof out);
    assert_int_equal(ok_calls, 2);
    assert_int_equal(out[99], 99 * 99);
    mproc_async_free(m);
    mproc_pool_free(pool);
}

/* Echoes a fresh pattern of n bytes (seeded so that stale bytes from an earlier call show). */
static void echo_checked(mproc_pool *pool, char *big, char *back, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) big[i] = (char)(i * 31 + seed);
    memset(back, 0, n);
    size_t got = 0;
    assert_int_equal(mproc_apply(pool, &echo_task, big, n, back, n, &got), 0);
    assert_int_equal(got, n);
    assert_memory_equal(big, back, n);
}

/* Inputs and results of 3 MiB and 12 MiB go through the frame rings (32 MiB each by default),
 * 20 MiB ones over the socket (more than half a ring); then 100 small calls (after 64 the rings
 * give back the pages the big frames reached) and a big one again, into fresh pages. */
static void test_bytes_results_of_any_size(void **state) {
    mproc_pool *pool = new_pool(0);
    size_t sizes[] = {3u << 20, 12u << 20, 20u << 20, 1024, 12u << 20}, most = 20u << 20;
    char *big = malloc(most), *back = malloc(most);
    assert_non_null(big);
    assert_non_null(back);
    for (unsigned k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        if (sizes[k] == 1024)
            for (unsigned j = 0; j < 100; j++) echo_checked(pool, big, back, 1024, 7 * j);
        else
            echo_checked(pool, big, back, sizes[k], k);
    }
    size_t got = 0;
    assert_int_equal(mproc_apply(pool, &echo_task, NULL, 0, NULL, 0, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(mproc_apply(pool, &echo_task, big, 10, back, 5, &got), MPROC_ESIZE);
    free(big);
    free(back);
    mproc_pool_free(pool);
}

/* A worker that handled a 40 MiB input and result gives that memory back after 100 ms with
 * nothing to do (README, "Frame rings"); without the idle trim it kept 80 MiB more. So do a fork
 * pool's rings, past their first 4 MiB, after a 12 MiB echo, and an MPI rank: its heap, whether
 * it relays to an executor (kept 20 MiB more) or runs the tasks itself (80 MiB). How much they
 * keep while frames keep coming is not checked: from here the worker's idle time cannot be told
 * (a 40 MiB reply takes tens of ms to check and relay). Valgrind's allocator has nothing to
 * trim: there it only runs. */
static void test_an_idle_worker_gives_back_big_frames_memory(void **state) {
    (void)state;
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    size_t n = 40u << 20;
    char *big = malloc(n), *back = malloc(n);
    assert_non_null(big);
    assert_non_null(back);
    int unused = 0;
    worker_mem before, idle;
    /* The baseline after an idle spell of its own: a worker (or rank) holds what the pool's
     * start and earlier tests left until it has been idle once. */
    assert_int_equal(MPROC_APPLY(pool, worker_memory, &unused, &before), 0);
    usleep(300000);
    assert_int_equal(MPROC_APPLY(pool, worker_memory, &unused, &before), 0);
    long shm_before = own_status_kb("RssShmem:");
    echo_checked(pool, big, back, n, 3);
    echo_checked(pool, big, back, 12u << 20, 5); /* through the rings, both ways */
    /* A parked pool looks every 0.25 s (two looks without a send); a loaded host is slower. */
    long shm_idle = own_status_kb("RssShmem:");
    for (int i = 0; i < 60 && shm_idle - shm_before > 9 * 1024; i++) {
        usleep(50000);
        shm_idle = own_status_kb("RssShmem:");
    }
    usleep(400000); /* the worker's own trim: 100 ms after its last frame; a rank's, 100-200 ms */
    assert_int_equal(MPROC_APPLY(pool, worker_memory, &unused, &idle), 0);
    /* Fork: the master wrote the 12 MiB input into the down ring and read the result from the
     * up ring; past each ring's first 4 MiB those pages go back when idle (master and worker). */
    if (mproc_backend() == MPROC_BACKEND_FORK) assert_true(shm_idle - shm_before <= 9 * 1024);
    const char *in_rank = getenv("MPROC_MPI_EXECUTORS"), *preload = getenv("LD_PRELOAD");
    int relayed = mproc_backend() == MPROC_BACKEND_MPI && !(in_rank && strcmp(in_rank, "0") == 0);
    int measured = !(preload && strstr(preload, "vgpreload"));
    if (getenv("MPROC_TEST_VERBOSE"))
        printf("worker %ld: RssAnon %ld -> %ld kB; its grandparent %ld: %ld -> %ld kB, RssShmem %ld -> %ld kB\n",
               idle.pid, before.rss_anon_kb, idle.rss_anon_kb, idle.grand_pid, before.grand_rss_anon_kb,
               idle.grand_rss_anon_kb, before.grand_rss_shmem_kb, idle.grand_rss_shmem_kb);
    if (measured) {
        assert_true(before.pid == idle.pid);
        /* Given back when idle: without the trim it kept 80 MiB more, and with malloc_trim alone
         * one 40 MiB block in some runs (a fork worker's heap is the arena of the master's
         * thread that forked it, whose top malloc_trim leaves: worker.c). */
        assert_true(idle.rss_anon_kb - before.rss_anon_kb <= 8 * 1024);
    }
    if (measured && relayed) { /* the rank: its heap back to where it was (kept 20 MiB more) */
        assert_true(idle.grand_pid == before.grand_pid && idle.grand_pid > 1);
        assert_true(before.grand_rss_anon_kb > 0 && idle.grand_rss_shmem_kb >= 0);
        assert_true(idle.grand_rss_anon_kb - before.grand_rss_anon_kb <= 8 * 1024);
        /* and its executor's two rings back to their kept 4 MiB each (the result ring kept the
         * 12 MiB result's pages: 16 MiB) */
        assert_true(idle.grand_rss_shmem_kb - before.grand_rss_shmem_kb <= 9 * 1024);
    }
    echo_checked(pool, big, back, n, 4); /* and a big frame after it still round-trips */
    free(big);
    free(back);
    mproc_pool_free(pool);
}

static void test_initializer(void **state) {
    long v = 4242;
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.initializer = &set_value_task, .initarg = &v, .initarg_len = sizeof v}), 0);
    long x = 0, y = 0;
    assert_int_equal(MPROC_APPLY(pool, get_value, &x, &y), 0);
    assert_int_equal(y, 4242);
    mproc_pool_free(pool);
    v = -1; /* refused: every task fails with EINITFAIL, nothing hangs or loops */
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.initializer = &set_value_task, .initarg = &v, .initarg_len = sizeof v}), 0);
    assert_int_equal(MPROC_APPLY(pool, get_value, &x, &y), MPROC_EINITFAIL);
    assert_non_null(strstr(mproc_last_error(), "initializer refuses -1"));
    mproc_pool_free(pool);
}

static void test_maxtasksperchild_and_identity(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.maxtasksperchild = 2}), 0);
    int n = mproc_pool_size(pool);
    enum { N = 40 };
    int in[N] = {0};
    who out[N];
    assert_int_equal(mproc_map(pool, &whoami_task, in, sizeof in[0], out, sizeof out[0], N, &(mproc_call_opts){.chunksize = 1}), 0);
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        assert_true(out[i].index >= 0 && out[i].index < n);
        assert_true(out[i].name[0] != '\0');
        assert_true(out[i].pid != mproc_current_pid());
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= out[j].pid == out[i].pid;
        distinct += !seen;
    }
    /* Each worker served at most 2 tasks; under MPI only where ranks run executors. */
    const char *in_rank = getenv("MPROC_MPI_EXECUTORS");
    if (mproc_backend() == MPROC_BACKEND_FORK || !(in_rank && strcmp(in_rank, "0") == 0))
        assert_true(distinct >= N / 2);
    if (mproc_backend() == MPROC_BACKEND_FORK) assert_int_equal(strncmp(out[0].name, "PoolWorker-", 11), 0);
    assert_int_equal(mproc_current_index(), -1);
    assert_string_equal(mproc_current_name(), "MainProcess");
    mproc_pool_free(pool);
}

/* Adds one to counter[0] (shared memory), then sleeps ms. */
typedef struct count_arg {
    mproc_array counter;
    long ms;
} count_arg;
static int count_and_sleep(mproc_ctx *ctx, const count_arg *a, long *out) {
    (void)ctx;
    mproc_array_add_i64(&a->counter, 0, 1, NULL);
    usleep((useconds_t)a->ms * 1000);
    *out = 0;
    return 0;
}
MPROC_TASK_TYPED(count_and_sleep, count_arg, long);

/* The README: each worker is kept `inflight` frames deep, 2 by default, 3 under MPI with
 * executors, but nothing is queued behind a frame that has run for over 1 ms. Seen from
 * outside: one worker busy with a 0.5 s task and 6 quick ones behind it; cancelled 0.2 s later,
 * those still queued never run, and those already sent to the worker run anyway (their results
 * dropped): at most inflight - 1 of them, none when the quick ones came after the busy frame
 * had run 1 ms (under valgrind or a loaded host: seen once in 3 valgrind runs). A time limit
 * keeps them unbatched. */
static void test_workers_are_kept_inflight_deep(void **state) {
    (void)state;
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1, .task_timeout = 60}), 0);
    mproc_array counter;
    assert_int_equal(mproc_array_create(&counter, sizeof(int64_t), 1, 0), 0);
    count_arg busy = {counter, 500}, quick = {counter, 0};
    mproc_async *a, *b[6];
    assert_int_equal(mproc_apply_async(pool, &count_and_sleep_task, &busy, sizeof busy, NULL, &a), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(mproc_apply_async(pool, &count_and_sleep_task, &quick, sizeof quick, NULL, &b[i]), 0);
    usleep(200000);
    for (int i = 0; i < 6; i++) assert_int_equal(mproc_async_cancel(b[i]), 1);
    assert_int_equal(mproc_async_get(a, 30.0, NULL, NULL), 0);
    int64_t runs = 0, was = -1;
    for (int i = 0; i < 100 && runs != was; i++) { /* until the sent ones have run */
        was = runs;
        usleep(100000);
        assert_int_equal(mproc_array_read(&counter, 0, &runs, sizeof runs), 0);
    }
    const char *in_rank = getenv("MPROC_MPI_EXECUTORS");
    int executors = mproc_backend() == MPROC_BACKEND_MPI && !(in_rank && strcmp(in_rank, "0") == 0);
    assert_true(runs >= 1 && runs <= (executors ? 3 : 2));
    mproc_async_free(a);
    for (int i = 0; i < 6; i++) mproc_async_free(b[i]);
    assert_int_equal(mproc_array_free(&counter), 0);
    mproc_pool_free(pool);
}

static void test_terminate_fails_pending_work(void **state) {
    mproc_pool *pool = new_pool(1);
    long ms[8] = {300, 300, 300, 300, 300, 300, 300, 300}, out[8];
    mproc_async *m;
    assert_int_equal(mproc_map_async(pool, &sleep_ms_task, ms, sizeof ms[0], out, sizeof out[0], 8, &(mproc_call_opts){.chunksize = 1}, &m), 0);
    assert_int_equal(mproc_pool_terminate(pool), 0);
    assert_int_equal(mproc_async_get(m, 10.0, NULL, NULL), MPROC_ECLOSED);
    assert_int_equal(mproc_pool_join(pool), 0);
    mproc_async_free(m);
    mproc_pool_free(pool);
}

static void test_task_time_limit(void **state) {
    /* The worker (under MPI the rank's executor) is killed and replaced; with tasks in the
     * ranks (MPROC_MPI_EXECUTORS=0) the task fails now and its rank finishes it in the
     * background. Either way the caller sees ETIMEDOUT and the rest completes. */
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.task_timeout = 0.3}), 0);
    long in[4] = {1, 1500, 2, 3}, out[4] = {0};
    int status[4];
    int rc = mproc_map(pool, &sleep_ms_task, in, sizeof in[0], out, sizeof out[0], 4,
                       &(mproc_call_opts){.chunksize = 1, .item_status = status});
    assert_int_equal(rc, MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "time limit"));
    assert_int_equal(status[1], MPROC_ETIMEDOUT);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[2], 2);
    assert_int_equal(out[3], 3);
    long x = 5, y = 0;
    assert_int_equal(MPROC_APPLY(pool, sleep_ms, &x, &y), 0);
    assert_int_equal(y, 5);
    mproc_pool_free(pool);
}

/* A bad MPROC_FORK_RING (frame rings' size, fork backend) is a clear error at pool creation. */
static void test_bad_ring_size_is_refused(void **state) {
    if (mproc_backend() != MPROC_BACKEND_FORK) return; /* MPI reads MPROC_MPI_EXEC_RING on each rank */
    const char *old = getenv("MPROC_FORK_RING");
    char keep[64] = "";
    if (old) snprintf(keep, sizeof keep, "%s", old);
    const char *bad[] = {"abc", "100", "-5", "99999999999999", " 65536", "+65536", "65536 ", "0x10000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("MPROC_FORK_RING", bad[i], 1);
        mproc_pool *p = NULL;
        assert_int_equal(mproc_pool_create(&p, NULL), MPROC_EINVAL);
        assert_null(p);
        assert_non_null(strstr(mproc_last_error(), "MPROC_FORK_RING"));
        char quoted[64]; /* the value as given, quoted: a space in it is seen */
        snprintf(quoted, sizeof quoted, "MPROC_FORK_RING='%s'", bad[i]);
        assert_non_null(strstr(mproc_last_error(), quoted));
    }
    setenv("MPROC_FORK_RING", "", 1); /* empty: unset, the default rings (README) */
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    long v = 6, w = 0;
    assert_int_equal(MPROC_APPLY(p, square, &v, &w), 0);
    assert_int_equal(w, 36);
    mproc_pool_free(p);
    setenv("MPROC_FORK_RING", "0", 1); /* no rings: the socket alone */
    assert_int_equal(mproc_pool_create(&p, NULL), 0);
    long x = 7, y = 0;
    assert_int_equal(MPROC_APPLY(p, square, &x, &y), 0);
    assert_int_equal(y, 49);
    mproc_pool_free(p);
    if (old) setenv("MPROC_FORK_RING", keep, 1);
    else unsetenv("MPROC_FORK_RING");
}

/* Timeouts of every wait on a pool: INFINITY and 1e300 wait for ever as -1 does (they once
 * made every timed wait fail at once, so the wait spun for ever after its result came); NaN is
 * MPROC_EINVAL, also on a handle that is ready already. */
static void test_endless_and_nan_timeouts(void **state) {
    (void)state;
    mproc_pool *pool = new_pool(2);
    long x = 30, y = 0;
    const double endless[] = {INFINITY, 1e300};
    for (int k = 0; k < 2; k++) {
        double t = endless[k];
        mproc_async *a, *b;
        assert_int_equal(mproc_apply_async(pool, &sleep_ms_task, &x, sizeof x, NULL, &a), 0);
        assert_int_equal(mproc_async_wait(a, t), 0);
        assert_int_equal(mproc_async_get_into(a, t, &y, sizeof y), 0);
        assert_int_equal(mproc_async_wait(a, NAN), MPROC_EINVAL); /* ready, still refused */
        assert_non_null(strstr(mproc_last_error(), "NaN"));
        assert_int_equal(mproc_apply_async(pool, &sleep_ms_task, &x, sizeof x, NULL, &b), 0);
        size_t idx = 9;
        mproc_async *hs[2] = {a, b};
        assert_int_equal(mproc_async_wait_any(&hs[1], 1, t, &idx), 0);
        assert_int_equal(idx, 0);
        assert_int_equal(mproc_async_wait_all(hs, 2, t), 0);
        assert_int_equal(mproc_async_wait_any(hs, 2, NAN, &idx), MPROC_EINVAL);
        assert_int_equal(mproc_async_wait_all(hs, 2, NAN), MPROC_EINVAL);
        mproc_async_free(a);
        mproc_async_free(b);
        mproc_waitset *ws;
        assert_int_equal(mproc_waitset_create(&ws), 0);
        assert_int_equal(mproc_apply_async(pool, &sleep_ms_task, &x, sizeof x, NULL, &a), 0);
        assert_int_equal(mproc_waitset_add(ws, a), 0);
        assert_int_equal(mproc_waitset_next(ws, NAN, &b), MPROC_EINVAL);
        assert_int_equal(mproc_waitset_next(ws, t, &b), 0);
        assert_ptr_equal(b, a);
        mproc_async_free(a);
        mproc_waitset_free(ws);
        long in[3] = {10, 20, 30};
        mproc_iter *it;
        assert_int_equal(mproc_imap(pool, &sleep_ms_task, in, sizeof in[0], 3, NULL, &it), 0);
        const void *d;
        size_t len, i;
        assert_int_equal(mproc_iter_next(it, NAN, &d, &len, &i), MPROC_EINVAL);
        for (int n = 0; n < 3; n++) assert_int_equal(mproc_iter_next(it, t, &d, &len, &i), 0);
        assert_int_equal(mproc_iter_next(it, t, &d, &len, &i), MPROC_EOF);
        mproc_iter_free(it);
    }
    assert_int_equal(mproc_pool_free(pool), 0);
}

static void test_bad_input(void **state) {
    mproc_pool *pool = new_pool(0);
    long x = 3, y;
    mproc_async *a = NULL;
    mproc_task stranger = {"stranger", echo, NULL, 0, 0, NULL, -1};
    assert_int_equal(mproc_pool_create(NULL, NULL), MPROC_EINVAL);
    mproc_pool *p2 = (mproc_pool *)&x;
    assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.processes = -1}), MPROC_EINVAL);
    assert_null(p2);
    assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.maxtasksperchild = -3}), MPROC_EINVAL);
    assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.task_timeout = -1}), MPROC_EINVAL);
    assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.task_timeout = NAN}), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "task_timeout is nan"));
    assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.inflight = 65}), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "0..64, got 65"));
    assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.workers_per_rank = -1}), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "workers_per_rank must be >= 0"));
    assert_null(p2);
    if (mproc_backend() == MPROC_BACKEND_FORK) { /* no ranks: workers_per_rank is ignored */
        assert_int_equal(mproc_pool_create(&p2, &(mproc_pool_opts){.processes = 3, .workers_per_rank = 1}), 0);
        assert_int_equal(mproc_pool_size(p2), 3);
        assert_int_equal(mproc_pool_free(p2), 0);
        p2 = NULL;
    }
    assert_int_equal(mproc_apply(NULL, &square_task, &x, sizeof x, &y, sizeof y, NULL), MPROC_EBADHANDLE);
    assert_int_equal(mproc_apply(pool, NULL, &x, sizeof x, &y, sizeof y, NULL), MPROC_ENOTASK);
    assert_int_equal(mproc_apply(pool, &stranger, &x, sizeof x, &y, sizeof y, NULL), MPROC_ENOTASK);
    assert_non_null(strstr(mproc_last_error(), "stranger"));
    assert_int_equal(mproc_apply(pool, &square_task, NULL, 8, &y, sizeof y, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_apply(pool, &square_task, &x, 4, &y, sizeof y, NULL), MPROC_ESIZE);
    assert_int_equal(mproc_apply_async(pool, &square_task, &x, sizeof x, NULL, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_map(pool, &square_task, NULL, 8, &y, 8, 1, NULL), MPROC_EINVAL);
    assert_int_equal(mproc_map(pool, &square_task, &x, 8, &y, 4, 1, NULL), MPROC_ESIZE);
    assert_int_equal(mproc_map(pool, &square_task, &x, 0, &y, 8, 1, NULL), MPROC_ESIZE); /* as apply's */
    assert_int_equal(mproc_map(pool, &echo_task, &x, 0, &y, 8, 1, NULL), MPROC_EINVAL); /* any size, but one */
    /* imap's sizes as map's (in_size 0 for a typed task was EINVAL there) */
    mproc_iter *sized = NULL;
    assert_int_equal(mproc_imap(pool, &square_task, &x, 0, 1, NULL, &sized), MPROC_ESIZE);
    assert_int_equal(mproc_imap(pool, &echo_task, &x, 0, 1, NULL, &sized), MPROC_EINVAL);
    assert_null(sized);
    /* A result over 1 GiB cannot travel: refused up front (a division by zero sizing its chunks
     * killed the program before), nothing written. */
    y = 5;
    assert_int_equal(mproc_map(pool, &echo_task, &x, 8, &y, ((size_t)1 << 30) + 1, 1, NULL), MPROC_ETOOBIG);
    assert_non_null(strstr(mproc_last_error(), "results of 1073741825 bytes are over 1 GiB"));
    assert_int_equal(y, 5);
    /* An out array with out_size 0 would drop every result: only out NULL asks for that. */
    y = 5;
    assert_int_equal(mproc_map(pool, &square_task, &x, 8, &y, 0, 1, NULL), MPROC_ESIZE);
    assert_non_null(strstr(mproc_last_error(), "out_size is 0"));
    assert_int_equal(mproc_map_async(pool, &square_task, &x, 8, &y, 0, 1, NULL, &a), MPROC_ESIZE);
    assert_int_equal(y, 5);
    assert_int_equal(mproc_map(pool, &square_task, &x, 8, NULL, 0, 1, NULL), 0);
    if (mproc_backend() == MPROC_BACKEND_FORK) assert_int_equal(mproc_max_workers(), 4096); /* as the header says */
    /* Options that do nothing on a call are refused, not ignored. */
    assert_int_equal(mproc_apply_async(pool, &square_task, &x, sizeof x, &(mproc_call_opts){.chunksize = 5}, &a),
                     MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "chunksize"));
    assert_int_equal(mproc_apply_async(pool, &square_task, &x, sizeof x, &(mproc_call_opts){.progress_hz = 2}, &a),
                     MPROC_EINVAL);
    assert_int_equal(mproc_map(pool, &square_task, &x, 8, &y, 8, 1, &(mproc_call_opts){.journal_sync = 5}), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "no journal"));
    short small;
    assert_int_equal(mproc_apply(pool, &square_task, &x, sizeof x, &small, sizeof small, NULL), MPROC_ESIZE);
    assert_non_null(strstr(mproc_last_error(), "out_cap"));
    assert_int_equal(mproc_iter_next(NULL, 0, NULL, NULL, NULL), MPROC_EBADHANDLE);
    assert_int_equal(mproc_async_wait(NULL, 0), MPROC_EBADHANDLE);
    assert_int_equal(mproc_async_free(NULL), 0);
    assert_int_equal(mproc_pool_join(pool), MPROC_ESTATE); /* join before close */
    assert_int_equal(mproc_apply_async(pool, &square_task, &x, sizeof x, NULL, &a), 0);
    assert_int_equal(mproc_async_free(a), 0);
    assert_int_equal(mproc_async_free(a), MPROC_EBADHANDLE); /* double free detected */
    assert_int_equal(mproc_pool_close(pool), 0);
    assert_int_equal(mproc_apply(pool, &square_task, &x, sizeof x, &y, sizeof y, NULL), MPROC_ECLOSED);
    assert_int_equal(mproc_map(pool, &square_task, &x, 8, &y, 8, 1, NULL), MPROC_ECLOSED);
    mproc_iter *it = NULL;
    assert_int_equal(mproc_imap(pool, &square_task, &x, 8, 1, NULL, &it), MPROC_ECLOSED);
    assert_null(it);
    assert_int_equal(mproc_pool_join(pool), 0);
    assert_int_equal(mproc_pool_free(pool), 0);
    assert_int_equal(mproc_pool_free(NULL), 0);
}

/* "task 'f' failed on worker N (pid P): <the task's message>", with P a real pid, and nothing
 * from inside the library (mproc_map_async, mproc_async_wait) named for a call the user made. */
static void assert_failure_sentence(const char *msg, const char *task_msg) {
    char want[96];
    snprintf(want, sizeof want, "task 'checked_square' failed on worker ");
    assert_non_null(strstr(msg, want));
    const char *pid = strstr(msg, "(pid ");
    assert_non_null(pid);
    assert_true(strtol(pid + 5, NULL, 10) > 0);
    assert_non_null(strstr(msg, task_msg));
    assert_null(strstr(msg, "mproc_map_async"));
    assert_null(strstr(msg, "mproc_apply_async"));
}

static void test_error_messages_name_task_worker_and_call(void **state) {
    mproc_pool *pool = new_pool(0);
    long x = 13, y = 0;
    assert_int_equal(MPROC_APPLY(pool, checked_square, &x, &y), MPROC_ETASK);
    assert_failure_sentence(mproc_last_error(), ": unlucky 13");
    mproc_async *a;
    assert_int_equal(mproc_apply_async(pool, &checked_square_task, &x, sizeof x, NULL, &a), 0);
    assert_int_equal(mproc_async_get_into(a, -1, &y, sizeof y), MPROC_ETASK);
    assert_failure_sentence(mproc_last_error(), ": unlucky 13");
    mproc_async_free(a);
    long in[4] = {1, 2, 1013, 4}, out[4];
    assert_int_equal(mproc_map(pool, &checked_square_task, in, sizeof in[0], out, sizeof out[0], 4, NULL), MPROC_ETASK);
    assert_failure_sentence(mproc_last_error(), ": unlucky 1013");
    mproc_iter *it;
    assert_int_equal(mproc_imap(pool, &checked_square_task, in, sizeof in[0], 4, NULL, &it), 0);
    int rc, failures = 0;
    size_t index;
    while ((rc = mproc_iter_next(it, 30, NULL, NULL, &index)) != MPROC_EOF) {
        if (rc == 0) continue;
        assert_int_equal(rc, MPROC_ETASK);
        assert_int_equal(index, 2);
        assert_failure_sentence(mproc_last_error(), ": unlucky 1013");
        failures++;
    }
    assert_int_equal(failures, 1);
    assert_non_null(strstr(mproc_last_error(), "end of iteration")); /* not the failure above */
    mproc_iter_free(it);
    /* A wait that times out names the call that waited. */
    long slow = 300;
    assert_int_equal(mproc_apply_async(pool, &sleep_ms_task, &slow, sizeof slow, NULL, &a), 0);
    assert_int_equal(mproc_async_get_into(a, 0.01, &y, sizeof y), MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "mproc_async_get_into:"));
    assert_int_equal(mproc_async_get(a, 0.01, NULL, NULL), MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "mproc_async_get:"));
    assert_int_equal(mproc_async_get_into(a, -1, &y, sizeof y), 0);
    mproc_async_free(a);
    /* Validation errors of blocking calls name them, not their async halves. */
    assert_int_equal(mproc_map(pool, &square_task, NULL, 8, &y, 8, 1, NULL), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "mproc_map:"));
    assert_int_equal(mproc_apply(pool, &square_task, &x, 4, &y, sizeof y, NULL), MPROC_ESIZE);
    assert_non_null(strstr(mproc_last_error(), "mproc_apply:"));
    /* map reports the failure of the lowest failed item, whatever order chunks come back in. */
    long many[40], res[40];
    for (int i = 0; i < 40; i++) many[i] = i % 7 == 3 ? i * 1000 + 13 : i; /* items 3, 10, 17, ... fail */
    for (int round = 0; round < 5; round++) {
        assert_int_equal(mproc_map(pool, &checked_square_task, many, sizeof many[0], res, sizeof res[0], 40,
                                   &(mproc_call_opts){.chunksize = 5}), MPROC_ETASK);
        assert_non_null(strstr(mproc_last_error(), ": unlucky 3013"));
    }
    /* An unknown name says so. */
    assert_null(mproc_task_find("no_such_task"));
    assert_non_null(strstr(mproc_last_error(), "no_such_task"));
    assert_non_null(mproc_task_find("square"));
    mproc_pool_free(pool);
}

/* Every item of an iterator is reported exactly once, then EOF, even when the pool is freed
 * before its whole input was submitted: at most `bound` calls, so a loop that never ends
 * fails here instead of hanging. */
static void drain_after_pool_freed(mproc_iter *it, size_t already, size_t n_known, size_t bound) {
    char *seen = calloc(bound, 1);
    memset(seen, 1, already); /* ordered: items 0..already-1 were read before the free */
    size_t calls = 0, delivered = already, closed = 0, index;
    int rc;
    while ((rc = mproc_iter_next(it, 30, NULL, NULL, &index)) != MPROC_EOF) {
        assert_true(++calls <= bound);
        assert_true(rc == 0 || rc == MPROC_ECLOSED);
        assert_true(index < bound);
        assert_int_equal(seen[index], 0); /* never twice */
        seen[index] = 1;
        if (rc == 0) delivered++;
        else closed++;
    }
    assert_int_equal(mproc_iter_next(it, 0, NULL, NULL, NULL), MPROC_EOF); /* and EOF stays */
    if (n_known) assert_int_equal(delivered + closed, n_known);
    for (size_t i = 0; i < delivered + closed; i++) assert_int_equal(seen[i], 1); /* no gaps */
    assert_true(closed > 0);
    mproc_progress pr; /* the progress counts what was reported: every item, the closed failed */
    assert_int_equal(mproc_iter_progress(it, &pr), 0);
    assert_int_equal(pr.done, delivered + closed);
    assert_int_equal(pr.failed, closed);
    assert_int_equal(pr.finished, 1);
    free(seen);
}

static int count_forever(void *userdata, size_t i, void *item) {
    *(long *)item = (long)(i % 5);
    return 1;
}

static void test_iterator_ends_when_its_pool_is_freed(void **state) {
    enum { N = 400 };
    long in[N];
    for (long i = 0; i < N; i++) in[i] = 2;
    mproc_pool *pool = new_pool(0);
    mproc_iter *it;
    assert_int_equal(mproc_imap(pool, &sleep_ms_task, in, sizeof in[0], N, &(mproc_call_opts){.chunksize = 1}, &it), 0);
    size_t index;
    for (int k = 0; k < 3; k++) assert_int_equal(mproc_iter_next(it, 30, NULL, NULL, &index), 0);
    mproc_pool_free(pool);
    drain_after_pool_freed(it, 3, N, N);
    mproc_iter_free(it);
    /* Generated input of unknown length, default options. */
    pool = new_pool(0);
    assert_int_equal(mproc_imap_gen(pool, &sleep_ms_task, count_forever, NULL, sizeof(long), 1, NULL, &it), 0);
    assert_int_equal(mproc_iter_next(it, 30, NULL, NULL, &index), 0);
    mproc_pool_free(pool);
    drain_after_pool_freed(it, 1, 0, 1u << 22);
    mproc_iter_free(it);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_seed_apply_async),
    cmocka_unit_test(test_calls_in_a_loop_mixed_with_bursts),
    cmocka_unit_test(test_map_sizes_and_chunks),
    cmocka_unit_test(test_map_errors_reach_caller_and_pool_goes_on),
    cmocka_unit_test(test_big_chunks_with_failures_keep_every_result),
    cmocka_unit_test(test_endless_and_nan_timeouts),
    cmocka_unit_test(test_imap_ordered),
    cmocka_unit_test(test_imap_unordered_each_once_with_errors),
    cmocka_unit_test(test_imap_window_is_bounded),
    cmocka_unit_test(test_get_timeout_then_success),
    cmocka_unit_test(test_callbacks),
    cmocka_unit_test(test_terminate_from_a_callback),
    cmocka_unit_test(test_bytes_results_of_any_size),
    cmocka_unit_test(test_an_idle_worker_gives_back_big_frames_memory),
    cmocka_unit_test(test_initializer),
    cmocka_unit_test(test_maxtasksperchild_and_identity),
    /* Before terminate: under MPI a terminated pool's queued tasks still finish on their
     * ranks, and a 1 ms task waiting behind them would miss its 0.3 s limit. */
    cmocka_unit_test(test_task_time_limit),
    cmocka_unit_test(test_workers_are_kept_inflight_deep),
    cmocka_unit_test(test_terminate_fails_pending_work),
    cmocka_unit_test(test_bad_input),
    cmocka_unit_test(test_bad_ring_size_is_refused),
    cmocka_unit_test(test_error_messages_name_task_worker_and_call),
    cmocka_unit_test(test_iterator_ends_when_its_pool_is_freed),
};

MPROC_TEST_MAIN(tests)
