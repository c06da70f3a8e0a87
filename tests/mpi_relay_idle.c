/* mpi_relay_idle - a worker rank that relays to its executor polls for a reply only while one
 * is due within microseconds (docs/mpi.md, "Executors"): after thousands of quick tasks have
 * taught it that its executor answers fast, a long task must not keep it polling, nor an idle
 * pool. Run as `mpirun -np 2` (one worker rank, one executor): the rank's CPU time (all its
 * threads, from /proc) over 1 s while its executor sleeps in a 1 s task, and over 1 s with the
 * pool idle, must stay far below a core; so must the master's while it waits. A rank that
 * yield-polled for the whole task would take most of a core here (it is the only runnable
 * process on its core).
 *
 * The rank is found from the task: an executor's parent is the rank's fork server, whose
 * parent is the rank (checked: the same program as ours, with more than one thread; were the
 * executors forked by the rank itself, the grandparent would be Open MPI's daemon and the test
 * fails rather than measure it). The master reads the rank's /proc, so the two must share a
 * node (and a pid namespace): the test runs on one machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"
#include "rank_pid_task.h"

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

/* Sleeps 1 s and returns what the rank (pid) spent meanwhile, in clock ticks. */
static long rank_ticks_over_a_second(long pid) {
    long before = mproc_test_cpu_ticks(pid);
    struct timespec t = {1, 0};
    nanosleep(&t, NULL);
    long after = mproc_test_cpu_ticks(pid);
    return before < 0 || after < 0 ? -1 : after - before;
}
MPROC_TASK_VALUE(rank_ticks_over_a_second, long, long);


/* Quick tasks, one frame each: the rank learns that its executor answers within microseconds. */
static void quick_calls(mproc_pool *pool) {
    for (long i = 0; i < 3000; i++) {
        long y = 0;
        MPROC_TEST_REQUIRE(MPROC_APPLY(pool, square, &i, &y) == 0 && y == i * i, "apply: %s", mproc_last_error());
    }
}

int main(int argc, char **argv) {
    MPROC_TEST_REQUIRE(mproc_init(&argc, &argv) == 0, "init: %s", mproc_last_error());
    if (mproc_backend() != MPROC_BACKEND_MPI) {
        printf("mpi_relay_idle: not under MPI with a worker rank, nothing to check\n");
        mproc_finalize();
        return 77;
    }
    mproc_pool *pool;
    MPROC_TEST_REQUIRE(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}) == 0, "pool: %s", mproc_last_error());
    long zero = 0, rank = 0;
    MPROC_TEST_REQUIRE(MPROC_APPLY(pool, my_rank_pid, &zero, &rank) == 0 && rank > 1, "rank pid: %s", mproc_last_error());
    MPROC_TEST_REQUIRE(mproc_test_is_worker_rank(rank), "pid %ld (the executor's grandparent) is not a worker rank", rank);
    long hz = sysconf(_SC_CLK_TCK), limit = hz / 4; /* a quarter of a core */

    quick_calls(pool);
    long master_before = mproc_test_cpu_ticks((long)getpid()), during = -1;
    MPROC_TEST_REQUIRE(MPROC_APPLY(pool, rank_ticks_over_a_second, &rank, &during) == 0 && during >= 0, "long task: %s",
          mproc_last_error());
    long master_spent = mproc_test_cpu_ticks((long)getpid()) - master_before;

    quick_calls(pool);
    long idle_before = mproc_test_cpu_ticks(rank);
    struct timespec t = {1, 0};
    nanosleep(&t, NULL);
    long idle = mproc_test_cpu_ticks(rank) - idle_before;

    printf("mpi_relay_idle: over 1 s, in clock ticks of 1/%ld s: the rank while its executor ran a long task "
           "%ld, the master meanwhile %ld, the rank with the pool idle %ld (limit %ld each)\n",
           hz, during, master_spent, idle, limit);
    MPROC_TEST_REQUIRE(during <= limit, "the rank spent %ld ticks of %ld while its executor slept in a 1 s task", during, hz);
    MPROC_TEST_REQUIRE(master_spent <= limit, "the master spent %ld ticks of %ld waiting for a 1 s task", master_spent, hz);
    MPROC_TEST_REQUIRE(idle <= limit, "the rank spent %ld ticks of %ld with the pool idle", idle, hz);
    mproc_pool_free(pool);
    mproc_finalize();
    printf("mpi_relay_idle: ok\n");
    return 0;
}
