/* consumer.c - a program outside the mproc tree, built against an installed mproc. */
#include <mproc.h>
#include <stdio.h>

static long cube(long x) { return x * x * x; }
MPROC_TASK_VALUE(cube, long, long);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}));
    long in[3] = {1, 2, 3}, out[3];
    MPROC_CHECK(MPROC_MAP(pool, cube, in, out, 3));
    printf("%ld %ld %ld\n", out[0], out[1], out[2]);
    mproc_pool_free(pool);
    return mproc_finalize() < 0;
}
