/* mpi_late_rank - a rank that never reaches mproc_init in time: the rank named by MPROC_TEST_LATE_RANK
 * sleeps 60 s before it; every other rank starts at once and maps a few items. With
 * MPROC_MPI_START_TIMEOUT=2 the job must end within seconds with the sentence (mpi_tests.cmake);
 * without a late rank it runs to the end and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

int main(int argc, char **argv) {
    const char *late = getenv("MPROC_TEST_LATE_RANK"), *me = getenv("OMPI_COMM_WORLD_RANK");
    if (late && me && !strcmp(late, me)) sleep(60);
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    long in[16], out[16];
    for (int i = 0; i < 16; i++) in[i] = i;
    MPROC_CHECK(mproc_map(pool, &square_task, in, sizeof in[0], out, sizeof out[0], 16, NULL));
    for (int i = 0; i < 16; i++)
        if (out[i] != (long)i * i) return 1;
    mproc_pool_free(pool);
    printf("mpi_late_rank: ok\n");
    return mproc_finalize() < 0;
}
