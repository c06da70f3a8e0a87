/* pool_squares - seed Q5: a pool of 4 workers, apply_async square(n) for n = 1..5, collect the
 * results in order and print them as Python prints a list: [1, 4, 9, 16, 25].
 */
#include <mproc.h>
#include <stdio.h>

static long square(long number) { return number * number; }
MPROC_TASK_VALUE(square, long, long);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 4}));

    long numbers[5], output[5];
    mproc_async *results[5];
    for (int i = 0; i < 5; i++) {
        numbers[i] = i + 1;
        MPROC_CHECK(MPROC_APPLY_ASYNC(pool, square, &numbers[i], &results[i]));
    }
    for (int i = 0; i < 5; i++) {
        MPROC_CHECK(MPROC_GET(results[i], &output[i]));
        mproc_async_free(results[i]);
    }
    printf("[");
    for (int i = 0; i < 5; i++) printf("%s%ld", i ? ", " : "", output[i]);
    printf("]\n");

    mproc_pool_close(pool);
    mproc_pool_join(pool);
    mproc_pool_free(pool);
    return mproc_finalize() < 0;
}
