/* mpi_terminate_stopped_rank - the wait of a terminated MPI pool for its killed executors is
 * bounded, and says so when it runs out (docs/mpi.md, "Executors"; README's table of faults).
 * Run as `mpirun -np 2` with MPROC_MPI_LOST_TIMEOUT past the wait (the rank must not be
 * declared lost first): the worker rank runs a 30 s task; the test stops the rank (SIGSTOP), so
 * it cannot kill its executor nor say so, then terminates and joins the pool. Join must return
 * after the wait's 15 s, not before (that would mean it did not wait) and not much later, with
 * the master's warning on stderr (ctest's PASS_REGULAR_EXPRESSION checks it). The rank is then
 * continued and must serve a new pool.
 *
 * The rank is the executor's grandparent (its parent is the rank's fork server), checked to run
 * this program with threads; the master signals it, so the two share a node: one machine.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"
#include "rank_pid_task.h"

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

static long sleepy(long s) {
    sleep((unsigned)s);
    return s;
}
MPROC_TASK_VALUE(sleepy, long, long);

int main(int argc, char **argv) {
    MPROC_TEST_REQUIRE(mproc_init(&argc, &argv) == 0, "init: %s", mproc_last_error());
    MPROC_TEST_REQUIRE(mproc_backend() == MPROC_BACKEND_MPI, "run it under mpirun with a worker rank");
    mproc_pool *pool;
    MPROC_TEST_REQUIRE(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}) == 0, "pool: %s", mproc_last_error());
    long zero = 0, rank = 0;
    MPROC_TEST_REQUIRE(MPROC_APPLY(pool, my_rank_pid, &zero, &rank) == 0 && rank > 1, "rank pid: %s", mproc_last_error());
    MPROC_TEST_REQUIRE(mproc_test_is_worker_rank(rank), "pid %ld (the executor's grandparent) is not a worker rank", rank);

    long thirty = 30;
    mproc_async *a;
    MPROC_TEST_REQUIRE(mproc_apply_async(pool, &sleepy_task, &thirty, sizeof thirty, NULL, &a) == 0, "apply_async: %s",
          mproc_last_error());
    usleep(300000); /* it runs */
    MPROC_TEST_REQUIRE(kill((pid_t)rank, SIGSTOP) == 0, "SIGSTOP the rank");
    double t0 = mproc_test_now();
    int trc = mproc_pool_terminate(pool), jrc = mproc_pool_join(pool);
    double waited = mproc_test_now() - t0;
    kill((pid_t)rank, SIGCONT);
    MPROC_TEST_REQUIRE(trc == 0 && jrc == 0, "terminate %d, join %d: %s", trc, jrc, mproc_last_error());
    printf("mpi_terminate_stopped_rank: terminate and join returned after %.1f s with the rank stopped\n", waited);
    MPROC_TEST_REQUIRE(waited >= 14.5 && waited < 25.0, "want the wait's 15 s, got %.1f s", waited);
    MPROC_TEST_REQUIRE(mproc_async_get(a, 10.0, NULL, NULL) == MPROC_ECLOSED, "the terminated call: %s", mproc_last_error());
    mproc_async_free(a);
    MPROC_TEST_REQUIRE(mproc_pool_free(pool) == 0, "free: %s", mproc_last_error());

    MPROC_TEST_REQUIRE(mproc_pool_create(&pool, NULL) == 0, "second pool: %s", mproc_last_error());
    long x = 12, y = 0;
    MPROC_TEST_REQUIRE(MPROC_APPLY(pool, square, &x, &y) == 0 && y == 144, "the continued rank: %s", mproc_last_error());
    mproc_pool_free(pool);
    mproc_finalize();
    printf("mpi_terminate_stopped_rank: ok\n");
    return 0;
}
