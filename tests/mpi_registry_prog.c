/* mpi_registry_prog.c - two programs from one source for the task-table check: built plainly
 * (mpi_registry_a) and with MPROC_EXTRA_TASK (mpi_registry_b, one task more). Launched
 * together (`mpirun -np 1 a : -np 1 b`) their ranks disagree, and the master must say which
 * rank differs and end the job: never a hang, never a crash. The script
 * mpi_registry_mismatch.sh checks that.
 */
#include <stdio.h>

#include "mproc.h"

static long twice(long x) { return 2 * x; }
MPROC_TASK_VALUE(twice, long, long);

static long thrice(long x) { return 3 * x; }
MPROC_TASK_VALUE(thrice, long, long);

#ifdef MPROC_EXTRA_TASK
static long extra(long x) { return x + 1; }
MPROC_TASK_VALUE(extra, long, long);
#endif

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    /* Reached only when every rank agreed (a launch of one program alone). */
    mproc_pool *pool;
    long x = 21, y = 0;
    if (mproc_pool_create(&pool, NULL) < 0 || MPROC_APPLY(pool, twice, &x, &y) < 0) {
        fprintf(stderr, "pool: %s\n", mproc_last_error());
        return 2;
    }
    printf("all ranks agree: twice(21) = %ld\n", y);
    mproc_pool_free(pool);
    mproc_finalize();
    return 0;
}
