/* shared_counter - many tasks add to one counter in shared memory under its lock, as in Python:
 *
 *     def add(counter, times):
 *         for _ in range(times):
 *             with counter.get_lock():
 *                 counter.value += 1
 *     counter = Value('l', 0)
 *     with Pool(initializer=keep, initargs=(counter,)) as pool:
 *         pool.map(add_1000, range(100))
 *     print(counter.value)
 *
 *   build/jobs/shared_counter [--tasks N] [--times M]   -> counter: 100000 (100 tasks x 1000)
 *   ./mpirun.sh -np 4 build/jobs/shared_counter           (tasks on the worker ranks)
 *
 * The handle of the Value is copied into every task's argument; each task maps the shared
 * memory the first time it uses it, or - on another node than the master's, under MPI - reaches
 * it through the master's broker (mproc_array_read/_write work on every node; the pointer of
 * mproc_array_data only where the memory is). Exit 0 when the count is exact, 1 when it is not.
 */
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct add_arg {
    mproc_array counter;
    long times;
};

static int add(mproc_ctx *ctx, const struct add_arg *a, long *done) {
    mproc_lock lock;
    int rc = mproc_array_lock(&a->counter, &lock);
    if (rc < 0) return mproc_fail(ctx, "%s", mproc_last_error());
    for (long i = 0; i < a->times; i++) {
        if ((rc = mproc_lock_acquire(&lock, -1)) < 0 && rc != MPROC_EOWNERDEAD) return mproc_fail(ctx, "%s", mproc_last_error());
        long value;
        rc = mproc_array_read(&a->counter, 0, &value, sizeof value); /* with the lock held, as value += 1 */
        value++;
        if (rc == 0) rc = mproc_array_write(&a->counter, 0, &value, sizeof value);
        mproc_lock_release(&lock);
        if (rc < 0) return mproc_fail(ctx, "%s", mproc_last_error());
    }
    *done = a->times;
    return 0;
}
MPROC_TASK_TYPED(add, struct add_arg, long);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    long tasks = 100, times = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tasks")) tasks = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--times")) times = atol(argv[i + 1]);
    }
    if (tasks < 1 || times < 0) {
        fprintf(stderr, "usage: shared_counter [--tasks N>=1] [--times M>=0]\n");
        return 2;
    }
    struct add_arg arg = {.times = times};
    MPROC_CHECK(mproc_value_create(&arg.counter, sizeof(long)));
    struct add_arg *in = malloc((size_t)tasks * sizeof *in);
    long *done = malloc((size_t)tasks * sizeof *done);
    if (!in || !done) return 1;
    for (long i = 0; i < tasks; i++) in[i] = arg;
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    MPROC_CHECK(MPROC_MAP(pool, add, in, done, (size_t)tasks));
    mproc_pool_free(pool);
    long value = *(long *)mproc_array_data(&arg.counter);
    printf("counter: %ld (%ld tasks x %ld)\n", value, tasks, times);
    mproc_array_free(&arg.counter);
    free(in);
    free(done);
    mproc_finalize();
    return value == tasks * times ? 0 : 1;
}
