/* mpi_workers_per_rank K1 K2 ... - the pool option workers_per_rank (docs/mpi.md): ranks that run
 * K1, K2 ... executors (each reads its own MPROC_MPI_EXECUTORS; mpi_tests.cmake launches one rank
 * per count, 0 = tasks in the rank). Pools made one after another with workers_per_rank 0, 1, 2
 * (with processes 3), 99, 0 with processes 2 and 1 again (with maxtasksperchild 1: a fresh
 * executor per task) must each have exactly each rank's first workers_per_rank workers (a pool
 * smaller than that spread over the ranks, a round at a time), numbered 0..size-1 rank by rank:
 * a task's mproc_current_index() and mproc_current_name() agree with that list, one pid per
 * index, every worker seen; a negative value is MPROC_EINVAL; the last pool, with the default
 * again, numbers every worker as the first did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mproc.h"

typedef struct who {
    long pid;
    int index;
    char name[40];
} who;

static int whoami(mproc_ctx *ctx, const void *in, size_t len) {
    (void)in;
    (void)len;
    struct timespec t = {0, 10000000L}; /* long enough that every worker gets items */
    nanosleep(&t, NULL);
    who w = {mproc_current_pid(), mproc_current_index(), ""};
    snprintf(w.name, sizeof w.name, "%s", mproc_current_name());
    return mproc_return(ctx, &w, sizeof w);
}
MPROC_TASK(whoami);

#define FAIL(...) (fprintf(stderr, "mpi_workers_per_rank: " __VA_ARGS__), fputc('\n', stderr), exit(1))

static int ranks, per[64];

/* The names the pool's workers must have, in pool order: each rank's share (its first
 * per_rank), and when processes wants fewer, taken a round at a time over the ranks (every
 * rank's first, then every rank's second...); numbered rank by rank. */
static int expected(int per_rank, int processes, char names[][40]) {
    int take[64] = {0}, share[64], total = 0;
    for (int r = 0; r < ranks; r++) {
        int has = per[r] > 0 ? per[r] : 1;
        share[r] = per_rank > 0 && per_rank < has ? per_rank : has;
        total += share[r];
    }
    int want = processes > 0 && processes < total ? processes : total;
    for (int round = 0, got = 0; got < want; round++)
        for (int r = 0; r < ranks && got < want; r++)
            if (round < share[r]) take[r]++, got++;
    int n = 0;
    for (int r = 0; r < ranks; r++)
        for (int e = 0; e < take[r]; e++, n++) {
            if (per[r] > 1) snprintf(names[n], 40, "Worker-rank-%d.%d", r + 1, e);
            else snprintf(names[n], 40, "Worker-rank-%d", r + 1);
        }
    return n;
}

static void check_pool(int per_rank, int processes, int maxtasks) {
    char want[256][40];
    int n = expected(per_rank, processes, want);
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = processes, .workers_per_rank = per_rank,
                                                             .maxtasksperchild = maxtasks}));
    if (mproc_pool_size(pool) != n)
        FAIL("workers_per_rank %d: pool of %d, want %d", per_rank, mproc_pool_size(pool), n);
    enum { N = 64 };
    static char in[N];
    static who out[N];
    MPROC_CHECK(mproc_map(pool, &whoami_task, in, 1, out, sizeof *out, N, &(mproc_call_opts){.chunksize = 1}));
    int seen[256] = {0};
    for (int i = 0; i < N; i++) {
        int x = out[i].index;
        if (x < 0 || x >= n) FAIL("workers_per_rank %d: index %d out of 0..%d", per_rank, x, n - 1);
        if (strcmp(out[i].name, want[x]))
            FAIL("workers_per_rank %d: worker %d is %s, want %s", per_rank, x, out[i].name, want[x]);
        for (int j = 0; j < i && !maxtasks; j++) /* with maxtasks 1 every task has a pid of its own */
            if ((out[j].index == x) != (out[j].pid == out[i].pid))
                FAIL("workers_per_rank %d: index %d with pid %ld, index %d with pid %ld", per_rank, x, out[i].pid,
                     out[j].index, out[j].pid);
        seen[x] = 1;
    }
    for (int x = 0; x < n; x++)
        if (!seen[x]) FAIL("workers_per_rank %d: worker %d (%s) ran nothing", per_rank, x, want[x]);
    MPROC_CHECK(mproc_pool_free(pool));
    printf("mpi_workers_per_rank: workers_per_rank %d processes %d: %d workers, as wanted\n", per_rank, processes, n);
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    ranks = argc - 1;
    if (ranks < 1 || ranks > 64) FAIL("usage: mpi_workers_per_rank K1 K2 ... (one per worker rank)");
    for (int r = 0; r < ranks; r++) per[r] = atoi(argv[r + 1]);
    check_pool(0, 0, 0);
    check_pool(1, 0, 0);
    check_pool(2, 3, 0);
    check_pool(99, 0, 0);
    check_pool(0, 2, 0); /* fewer than the ranks run: one on each rank, not two on the first */
    check_pool(1, 0, 1);
    mproc_pool *pool = NULL;
    int rc = mproc_pool_create(&pool, &(mproc_pool_opts){.workers_per_rank = -1});
    if (rc != MPROC_EINVAL || pool) FAIL("workers_per_rank -1: %d, want MPROC_EINVAL", rc);
    if (!strstr(mproc_last_error(), "workers_per_rank")) FAIL("workers_per_rank -1 says: %s", mproc_last_error());
    check_pool(0, 0, 0);
    printf("mpi_workers_per_rank: ok\n");
    return mproc_finalize() < 0;
}
