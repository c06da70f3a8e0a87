/* mpi_lost_rank_hybrid.c - a map item that kills every rank it runs on, in the hybrid layout
 * (mpi_lost_rank.sh runs it at -np 4 with two executors per rank: six pool workers on three
 * worker ranks, under --enable-recovery). When a rank is lost, every chunk its executors held
 * re-runs with nothing else in flight on its whole rank (its fault domain, pool/domains.c), so
 * the second loss costs only the item that killed both ranks: it fails with MPROC_EWORKER, every
 * other item is right, and exactly two ranks are lost (mpi_lost_rank.sh counts the warnings).
 * With "alone" per executor, another re-run chunk could share the culprit's rank and be lost a
 * second time with it, and fail too.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"

enum { N = 120, CULPRIT = 10 };

static long square_or_kill_rank(long x) {
    if (x == CULPRIT) {
        mproc_test_kill_my_rank();
    }
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    return x * x;
}
MPROC_TASK_VALUE(square_or_kill_rank, long, long);

#define CHECK MPROC_TEST_CHECK

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, NULL) == 0, "pool");
    CHECK(mproc_pool_size(pool) == 6, "pool of %d workers, want 6 (-np 4, MPROC_MPI_EXECUTORS=2)",
          mproc_pool_size(pool));
    static long in[N], out[N];
    static int status[N];
    for (long i = 0; i < N; i++) in[i] = i;
    int rc = mproc_map(pool, &square_or_kill_rank_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.chunksize = 1, .item_status = status});
    CHECK(rc == MPROC_EWORKER, "map returned %s", mproc_err_name(rc));
    CHECK(status[CULPRIT] == MPROC_EWORKER, "item %d: status %d, want MPROC_EWORKER", CULPRIT, status[CULPRIT]);
    int failed = 0;
    for (long i = 0; i < N; i++) {
        if (i == CULPRIT) continue;
        if (status[i] != 0) fprintf(stderr, "item %ld failed too: %d\n", i, status[i]), failed++;
        else CHECK(out[i] == i * i, "item %ld is %ld", i, out[i]);
    }
    CHECK(failed == 0, "%d items besides the culprit failed: a re-run shared the culprit's rank", failed);
    long x = 7, y = 0;
    rc = MPROC_APPLY(pool, square_or_kill_rank, &x, &y);
    CHECK(rc == 0 && y == 49, "apply on the rank left: %s, %ld", mproc_err_name(rc), y);
    mproc_pool_free(pool);
    printf("ok: the item that killed two ranks failed alone; the other %d items right\n", N - 1);
    fflush(stdout);
    return mproc_finalize() < 0;
}
