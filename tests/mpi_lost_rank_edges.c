/* mpi_lost_rank_edges.c - ranks lost at the edges of a task's life, under `mpirun
 * --enable-recovery` (mpi_lost_rank.sh runs it at -np 5: a master and four worker ranks, all
 * four lost by the end).
 *
 * 1. A pool initializer kills worker 0's rank only: the pool goes on with the other two
 *    workers, each of which ran the initializer (a lost rank is not the initializer's failure
 *    while workers are left; lost ranks are never replaced, so nothing can loop).
 * 2. A task with a 1 s time limit kills its rank at once: its limit passes while the rank is
 *    silent but not yet taken for lost, and the kill sent then cannot reach it. That is no
 *    overrun (the rank died first): the task re-runs once as after any lost rank, kills a
 *    second rank, and fails with MPROC_EWORKER naming that rank, not MPROC_ETIMEDOUT.
 * 3. A new pool, one rank left, whose initializer kills every rank: its apply fails with
 *    MPROC_EINITFAIL naming the initializer and the lost rank, and never hangs.
 * (mpi_lost_ranks: a pool made after ranks were lost runs its initializer on the ones left.)
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"

static int initialized, kill_all;

/* The executor's rank is its parent's parent (executor -> fork server -> rank). */
static int init_or_kill_rank(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx, (void)in, (void)len;
    if (kill_all || mproc_current_index() == 0) {
        mproc_test_kill_my_rank();
    }
    initialized = 1;
    return 0;
}
MPROC_TASK(init_or_kill_rank);

static int init_kills_every_rank(mproc_ctx *ctx, const void *in, size_t len) {
    kill_all = 1;
    return init_or_kill_rank(ctx, in, len);
}
MPROC_TASK(init_kills_every_rank);

static long kill_my_rank(long x) {
    mproc_test_kill_my_rank();
    return x;
}
MPROC_TASK_VALUE(kill_my_rank, long, long);

static long square_if_initialized(long x) {
    return initialized ? x * x : -1;
}
MPROC_TASK_VALUE(square_if_initialized, long, long);

#define CHECK MPROC_TEST_CHECK

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.workers_per_rank = 1,
                                                      .initializer = &init_or_kill_rank_task}) == 0, "pool");
    CHECK(mproc_pool_size(pool) == 4, "pool of %d workers, want 4 (run at -np 5)", mproc_pool_size(pool));
    long in[60], out[60];
    for (int i = 0; i < 60; i++) in[i] = i;
    int rc = mproc_map(pool, &square_if_initialized_task, in, sizeof *in, out, sizeof *out, 60,
                       &(mproc_call_opts){.chunksize = 1});
    CHECK(rc == 0, "map on the workers whose initializer did not kill their rank: %s", mproc_err_name(rc));
    for (int i = 0; i < 60; i++) CHECK(out[i] == (long)i * i, "item %d is %ld", i, out[i]);
    /* The map may end before rank 1 is taken for lost (MPROC_MPI_LOST_TIMEOUT=3 in the script):
     * once it surely is, the pool must still work. */
    sleep(6);
    memset(out, 0, sizeof out);
    rc = mproc_map(pool, &square_if_initialized_task, in, sizeof *in, out, sizeof *out, 60,
                   &(mproc_call_opts){.chunksize = 1});
    CHECK(rc == 0, "map after worker 0's rank was lost: %s", mproc_err_name(rc));
    for (int i = 0; i < 60; i++) CHECK(out[i] == (long)i * i, "item %d is %ld", i, out[i]);
    printf("step 1: the initializer killed one rank, the pool went on with the three others\n");

    long x = 3, y = 0;
    double t0 = mproc_test_now();
    mproc_async *a;
    CHECK(mproc_apply_async(pool, &kill_my_rank_task, &x, sizeof x, &(mproc_call_opts){.timeout = 1}, &a) == 0,
          "apply_async");
    rc = mproc_async_get_into(a, 60, &y, sizeof y);
    double took = mproc_test_now() - t0;
    CHECK(rc == MPROC_EWORKER, "a task under a limit that kills its rank returned %s", mproc_err_name(rc));
    const char *msg = mproc_last_error();
    CHECK(strstr(msg, "was lost") && !strstr(msg, "time limit"), "message: %s", msg);
    CHECK(took < 40, "it took %.1f s", took);
    printf("step 2: a task under a 1 s limit that kills its rank: MPROC_EWORKER after %.1f s, two ranks (%s)\n",
           took, msg);
    mproc_async_free(a);
    mproc_pool_free(pool);

    CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.workers_per_rank = 1,
                                                      .initializer = &init_kills_every_rank_task}) == 0,
          "second pool");
    t0 = mproc_test_now();
    rc = MPROC_APPLY(pool, square_if_initialized, &x, &y);
    took = mproc_test_now() - t0;
    CHECK(rc == MPROC_EINITFAIL, "apply in a pool whose initializer kills every rank returned %s", mproc_err_name(rc));
    msg = mproc_last_error();
    CHECK(strstr(msg, "init_kills_every_rank") && strstr(msg, "was lost"), "message: %s", msg);
    CHECK(took < 60, "it took %.1f s", took);
    printf("step 3: an initializer that kills every rank: MPROC_EINITFAIL after %.1f s (%s)\n", took, msg);
    mproc_pool_free(pool);
    printf("ok: ranks lost in an initializer and under a time limit\n");
    fflush(stdout);
    return mproc_finalize() < 0;
}
