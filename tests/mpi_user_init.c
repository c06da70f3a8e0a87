/* mpi_user_init.c - a program that owns MPI: it calls MPI_Init itself, then mproc_init, and
 * MPI_Finalize at the end. mproc must use that MPI (worker ranks serve as usual) and must not
 * finalize it: after mproc_finalize the master can still talk MPI, and finalizes it itself.
 * The job must exit 0 (worker ranks finalize before they exit, or mpirun reports failure).
 * With the argument "no-mproc-finalize" the program forgets mproc_finalize: its MPI_Finalize
 * must then stop the worker ranks itself, not hang.
 */
#include <string.h>
#include <mpi.h>
#include <stdio.h>

#include "mproc.h"

static long cube(long x) { return x * x * x; }
MPROC_TASK_VALUE(cube, long, long);

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "mpi_user_init: " __VA_ARGS__);                                     \
            fprintf(stderr, " (%s)\n", mproc_last_error());                                     \
            return 1;                                                                           \
        }                                                                                       \
    } while (0)

int main(int argc, char **argv) {
    int provided = 0, flag = 0, size = 0;
    /* Plain MPI_Init (THREAD_SINGLE in Open MPI): the least a program might do. */
    (void)provided;
    CHECK(MPI_Init(&argc, &argv) == MPI_SUCCESS, "MPI_Init failed");
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(mproc_init(&argc, &argv) == 0, "mproc_init failed");
    /* Only the master gets here. */
    CHECK(mproc_backend() == MPROC_BACKEND_MPI || size == 1, "backend is %s", mproc_backend_name());
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, NULL) == 0, "pool");
    enum { N = 1000 };
    static long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;
    CHECK(MPROC_MAP(pool, cube, in, out, N) == 0, "map");
    for (long i = 0; i < N; i++) CHECK(out[i] == i * i * i, "wrong result at %ld", i);
    mproc_pool_free(pool);
    int forget = argc > 1 && strcmp(argv[argc - 1], "no-mproc-finalize") == 0;
    if (!forget) CHECK(mproc_finalize() == 0, "mproc_finalize");
    MPI_Finalized(&flag);
    CHECK(!flag, "mproc finalized an MPI it did not initialize");
    MPI_Initialized(&flag);
    CHECK(flag, "MPI is no longer initialized");
    long mine = 7, sum = 0;
    CHECK(MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_SELF) == MPI_SUCCESS && sum == 7,
          "MPI unusable after mproc_finalize");
    CHECK(MPI_Finalize() == MPI_SUCCESS, "MPI_Finalize");
    printf("mpi_user_init: ok on %d ranks%s\n", size, forget ? " without mproc_finalize" : "");
    return 0;
}
