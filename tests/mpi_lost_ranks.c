/* mpi_lost_ranks.c - one worker rank after another is lost under `mpirun --enable-recovery`
 * (mpi_lost_ranks.sh runs it at -np 5: a master and four worker ranks), down to none: what
 * docs/mpi.md "A lost rank" promises beyond the first loss (mpi_lost_rank.c).
 *
 * 1. A Process kills its own rank: join returns and its exit code is -9.
 * 2. A map item kills the rank that runs it, every time: its first loss re-runs it elsewhere
 *    (not counted as its failure), the second fails it with MPROC_EWORKER saying its rank was
 *    lost; every other item is right, and one rank is left (the item that killed a rank was
 *    often not yet the chunk the master took for running: it must not cost a third).
 * 3. A new pool with an initializer, made with three of its four ranks lost, runs its
 *    initializer on the last rank and its apply there works (the lost slots are not the
 *    initializer's failure); one that kills that rank fails with MPROC_EWORKER; with no live
 *    worker left every task fails at once (apply, map, a new pool's apply), and the pool still counts its slots.
 * 4. A Process started with no live rank left fails cleanly, never hangs.
 * The kills come from inside the tasks (a task's rank is its parent's parent: executor or
 * Process -> the rank's fork server -> the rank), so the test needs no outside timing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"

static long square_or_kill_rank(long x) {
    if (x < 0) mproc_test_kill_my_rank();
    usleep(1000);
    return x * x;
}
MPROC_TASK_VALUE(square_or_kill_rank, long, long);

/* The pool of step 3 has an initializer: its worker says so in its answers. */
static int initialized;
static int set_initialized(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx, (void)in, (void)len;
    initialized = 1;
    return 0;
}
MPROC_TASK(set_initialized);

static long square_if_initialized(long x) {
    return initialized ? x * x : -1;
}
MPROC_TASK_VALUE(square_if_initialized, long, long);

static int process_kills_its_rank(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx, (void)in, (void)len;
    mproc_test_kill_my_rank();
    return 0;
}
MPROC_TASK(process_kills_its_rank);

static int process_says_hello(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx, (void)in, (void)len;
    return 0;
}
MPROC_TASK(process_says_hello);

#define CHECK MPROC_TEST_CHECK

/* 1: a Process whose rank is lost ends with -9. */
static int process_loses_its_rank(void) {
    mproc_process *p;
    CHECK(mproc_process_create(&p, &process_kills_its_rank_task, NULL, 0, NULL) == 0, "process create");
    CHECK(mproc_process_start(p) == 0, "process start");
    CHECK(mproc_process_join(p, 60) == 0, "join of the Process whose rank was lost");
    int code = 0;
    CHECK(mproc_process_exitcode(p, &code) == 0 && code == -9, "its exit code is %d, want -9", code);
    mproc_process_free(p);
    printf("step 1: the Process whose rank was lost ended with -9\n");
    return 0;
}

/* 2: item 5 kills every rank it runs on: twice lost, then failed; the rest right. */
static int item_lost_twice(mproc_pool *pool) {
    enum { N = 200 };
    static long in[N], out[N];
    static int status[N];
    for (long i = 0; i < N; i++) in[i] = i == 5 ? -1 : i;
    int rc = mproc_map(pool, &square_or_kill_rank_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.chunksize = 1, .item_status = status});
    const char *why = mproc_last_error();
    CHECK(rc == MPROC_EWORKER, "map with an item that kills its rank twice returned %s", mproc_err_name(rc));
    CHECK(strstr(why, "was lost") != NULL, "the map's error does not say the rank was lost: %s", why);
    CHECK(status[5] == MPROC_EWORKER, "item 5: status %d, want MPROC_EWORKER", status[5]);
    for (long i = 0; i < N; i++)
        CHECK(i == 5 || (status[i] == 0 && out[i] == i * i), "item %ld: status %d, %ld", i, status[i], out[i]);
    printf("step 2: item 5 lost two ranks and failed (%s); the other %d items right\n", why, N - 1);
    return 0;
}

/* 3: a new pool with an initializer on the one rank left; that rank lost under an apply; then
 * every task fails at once. */
static int none_left(int n0) {
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.workers_per_rank = 1,
                                                      .initializer = &set_initialized_task}) == 0,
          "a pool with an initializer after three ranks were lost");
    long x = 7, y = 0;
    int rc = MPROC_APPLY(pool, square_if_initialized, &x, &y); /* step 2 cost two ranks, not three */
    CHECK(rc == 0 && y == 49, "apply on the one rank left returned %s, %ld", mproc_err_name(rc), y);
    x = -1;
    rc = MPROC_APPLY(pool, square_or_kill_rank, &x, &y);
    CHECK(rc == MPROC_EWORKER, "apply that kills the last rank returned %s", mproc_err_name(rc));
    x = 3;
    double t0 = mproc_test_now();
    rc = MPROC_APPLY(pool, square_or_kill_rank, &x, &y);
    double took = mproc_test_now() - t0;
    CHECK(rc == MPROC_EWORKER, "apply with no live worker returned %s", mproc_err_name(rc));
    CHECK(took < 2.0, "apply with no live worker took %.2f s, want at once", took);
    long in[4] = {1, 2, 3, 4}, out[4];
    rc = mproc_map(pool, &square_or_kill_rank_task, in, sizeof *in, out, sizeof *out, 4, NULL);
    CHECK(rc == MPROC_EWORKER, "map with no live worker returned %s", mproc_err_name(rc));
    CHECK(mproc_pool_size(pool) == n0, "pool size %d after the losses, want %d (closed slots count)",
          mproc_pool_size(pool), n0);
    mproc_pool_free(pool); /* under MPI one pool runs at a time */
    mproc_pool *again;
    CHECK(mproc_pool_create(&again, NULL) == 0, "a pool after every rank is lost");
    t0 = mproc_test_now();
    rc = MPROC_APPLY(again, square_or_kill_rank, &x, &y);
    took = mproc_test_now() - t0;
    CHECK(rc == MPROC_EWORKER && took < 2.0, "a new pool's apply with no live worker: %s after %.2f s",
          mproc_err_name(rc), took);
    mproc_pool_free(again);
    printf("step 3: with every rank lost, tasks fail at once with MPROC_EWORKER (%.3f s)\n", took);
    return 0;
}

/* 4: a Process with nowhere to run fails (at start or with a non-zero exit code), never hangs. */
static int process_with_no_rank(void) {
    mproc_process *p;
    CHECK(mproc_process_create(&p, &process_says_hello_task, NULL, 0, NULL) == 0, "process create");
    double t0 = mproc_test_now();
    int rc = mproc_process_start(p);
    const char *how;
    if (rc == 0) {
        CHECK(mproc_process_join(p, 30) == 0, "join of a Process with no live rank");
        int code = 0;
        CHECK(mproc_process_exitcode(p, &code) == 0 && code != 0, "a Process with no live rank exited %d", code);
        how = "ended non-zero";
    } else {
        how = mproc_err_name(rc);
    }
    double took = mproc_test_now() - t0;
    CHECK(took < 5.0, "a Process with no live rank took %.1f s", took);
    mproc_process_free(p);
    printf("step 4: a Process with no live rank: %s\n", how);
    return 0;
}

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.workers_per_rank = 1}) == 0, "pool");
    int n0 = mproc_pool_size(pool);
    CHECK(n0 == 4, "pool of %d workers, want 4 (run at -np 5)", n0);
    if (process_loses_its_rank() || item_lost_twice(pool)) {
        fflush(NULL);
        return 1;
    }
    mproc_pool_free(pool); /* under MPI one pool runs at a time */
    if (none_left(n0) || process_with_no_rank()) {
        fflush(NULL);
        return 1;
    }
    printf("ok: four ranks lost one after another, down to none\n");
    fflush(stdout);
    return mproc_finalize() < 0;
}
