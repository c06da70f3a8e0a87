/* cluster_wakeups - across nodes a sleeping process wakes on its own frames: a master alone on
 * its node and a worker rank off the master's node sleep in an epoll set with their TCP sockets
 * (backends/mpi/wait.c), so the net watcher thread ("mproc-netwatch") no longer wakes for every
 * frame to ring them. 2000 blocking applies (each a frame out and one back, with both ends
 * asleep in between): the master's and each rank's watcher may wake only for its own rescans
 * (a few dozen), where before it woke at least once per frame. The simulated hosts share this
 * machine's process table, so the master reads the ranks' /proc itself. Prints what it counted;
 * exits 1 on a failed check, 77 when the layout is not one rank per host. */
#include <dirent.h>
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test_support.h"

#define APPLIES 2000
#define MOST_WAKEUPS 200 /* rescans: every 0.1 s for the first 5 s, then every 1 s */

/* The pid of the rank this item runs on, after 20 ms (so that every worker takes some). */
static long my_rank_pid(long unused) {
    (void)unused;
    usleep(20000);
    return mproc_test_my_rank();
}
MPROC_TASK_VALUE(my_rank_pid, long, long);

static long plus_one(long x) { return x + 1; }
MPROC_TASK_VALUE(plus_one, long, long);

/* The voluntary context switches of pid's thread named mproc-netwatch, or -1 if it has none. */
static long watcher_wakeups(long pid) {
    char path[384], line[256];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%s/comm", pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int named = fgets(line, sizeof line, f) && strncmp(line, "mproc-netwatch", 14) == 0;
        fclose(f);
        if (!named) continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%s/status", pid, e->d_name);
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &found) == 1) break;
        fclose(f);
    }
    closedir(d);
    return found;
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    int n = mproc_pool_size(pool);
    /* The pids of the worker ranks (each may run several executors). */
    enum { ITEMS = 256 };
    long zeros[ITEMS] = {0}, got[ITEMS], pids[65];
    MPROC_TEST_REQUIRE(n <= 32, "pool of %d: this test wants a small cluster", n);
    MPROC_TEST_REQUIRE(mproc_map(pool, &my_rank_pid_task, zeros, sizeof *zeros, got, sizeof *got, 8 * (size_t)n,
                                 &(mproc_call_opts){.chunksize = 1}) == 0,
                       "map: %s", mproc_last_error());
    int seen = 0;
    for (int i = 0; i < 8 * n; i++) {
        int known = 0;
        for (int k = 0; k < seen; k++) known |= pids[k] == got[i];
        if (!known && seen < 64) pids[seen++] = got[i];
    }
    for (int k = 0; k < seen; k++)
        MPROC_TEST_REQUIRE(mproc_test_is_worker_rank(pids[k]), "pid %ld is not a worker rank", pids[k]);
    long before[65], after[65];
    pids[seen] = getpid();
    for (int k = 0; k <= seen; k++) before[k] = watcher_wakeups(pids[k]);
    for (int k = 0; k <= seen; k++)
        if (before[k] < 0) {
            printf("SKIP: process %ld has no net watcher (not one rank per host?)\n", pids[k]);
            return 77;
        }
    for (long i = 0; i < APPLIES; i++) {
        long r = 0;
        MPROC_TEST_REQUIRE(MPROC_APPLY(pool, plus_one, &i, &r) == 0 && r == i + 1, "apply %ld: %s", i, mproc_last_error());
    }
    int bad = 0;
    for (int k = 0; k <= seen; k++) {
        after[k] = watcher_wakeups(pids[k]);
        long woke = after[k] - before[k];
        printf("%s %ld: net watcher woke %ld times over %d applies\n", k == seen ? "master" : "rank", pids[k], woke,
               APPLIES);
        bad |= woke > MOST_WAKEUPS;
    }
    mproc_pool_free(pool);
    mproc_finalize();
    return bad;
}
