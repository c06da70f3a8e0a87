/* mpi_uneven_executors K1 K2 ... - worker ranks that run different numbers of executors (each
 * rank reads its own MPROC_MPI_EXECUTORS, as on nodes of different sizes; mpi_tests.cmake
 * launches one rank per count, Ki for rank i, 0 = tasks in the rank): the pool has every
 * executor, and mproc_current_index() and mproc_current_name() in a task agree with the
 * master's numbering, rank by rank, executor by executor (docs/mpi.md): distinct, 0..size-1. */
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
    struct timespec t = {0, 20000000L}; /* long enough that every worker gets items */
    nanosleep(&t, NULL);
    who w = {mproc_current_pid(), mproc_current_index(), ""};
    snprintf(w.name, sizeof w.name, "%s", mproc_current_name());
    return mproc_return(ctx, &w, sizeof w);
}
MPROC_TASK(whoami);

#define FAIL(...) (fprintf(stderr, "mpi_uneven_executors: " __VA_ARGS__), fputc('\n', stderr), exit(1))

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    int ranks = argc - 1, total = 0, first[64], per[64];
    for (int r = 0; r < ranks && r < 64; r++) {
        per[r] = atoi(argv[r + 1]);
        first[r] = total;
        total += per[r] > 0 ? per[r] : 1;
    }
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    if (mproc_pool_size(pool) != total) FAIL("pool of %d, want %d", mproc_pool_size(pool), total);
    enum { N = 96 };
    static char in[N];
    static who out[N];
    MPROC_CHECK(mproc_map(pool, &whoami_task, in, 1, out, sizeof *out, N, &(mproc_call_opts){.chunksize = 1}));
    int seen[256] = {0};
    for (int i = 0; i < N; i++) {
        int x = out[i].index;
        if (x < 0 || x >= total) FAIL("index %d out of 0..%d", x, total - 1);
        for (int j = 0; j < i; j++)
            if ((out[j].index == x) != (out[j].pid == out[i].pid))
                FAIL("index %d with pid %ld, index %d with pid %ld", x, out[i].pid, out[j].index, out[j].pid);
        int r = 0;
        while (r + 1 < ranks && first[r + 1] <= x) r++;
        char want[40];
        if (per[r] > 1) snprintf(want, sizeof want, "Worker-rank-%d.%d", r + 1, x - first[r]);
        else snprintf(want, sizeof want, "Worker-rank-%d", r + 1);
        if (strcmp(out[i].name, want)) FAIL("worker %d is named %s, want %s", x, out[i].name, want);
        seen[x] = 1;
    }
    int workers_seen = 0;
    for (int x = 0; x < total; x++) workers_seen += seen[x];
    mproc_pool_free(pool);
    printf("mpi_uneven_executors: ok, %d workers, %d of them seen\n", total, workers_seen);
    return mproc_finalize() < 0;
}
