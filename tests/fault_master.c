/* fault_master - a master for test_faults: prints its two workers' pids, then runs a long map
 * until a signal from the test ends it. */
#include <mproc.h>
#include <stdio.h>
#include <time.h>

static long pid_of_worker(long unused) { return mproc_current_pid(); }
MPROC_TASK_VALUE(pid_of_worker, long, long);

static long nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return ms;
}
MPROC_TASK_VALUE(nap, long, long);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}));
    long in[2] = {0, 0}, pids[2] = {0, 0};
    /* Two slow tasks, one per worker, so both pids show up. */
    long slow[2] = {100, 100};
    MPROC_CHECK(mproc_map(pool, &nap_task, slow, sizeof slow[0], in, sizeof in[0], 2, &(mproc_call_opts){.chunksize = 1}));
    MPROC_CHECK(mproc_map(pool, &pid_of_worker_task, in, sizeof in[0], pids, sizeof pids[0], 2, &(mproc_call_opts){.chunksize = 1}));
    printf("workers %ld %ld\n", pids[0], pids[1]);
    fflush(stdout);
    long ms[1000], out[1000];
    for (int i = 0; i < 1000; i++) ms[i] = 50;
    MPROC_CHECK(mproc_map(pool, &nap_task, ms, sizeof ms[0], out, sizeof out[0], 1000, &(mproc_call_opts){.chunksize = 1}));
    mproc_pool_free(pool);
    return mproc_finalize() < 0;
}
