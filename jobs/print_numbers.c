/* print_numbers - seed Q6: four workers each print a different number, in any order.
 *
 *   build/jobs/print_numbers               pool.map(print_number, [1, 2, 3, 4]) on 4 workers
 *   build/jobs/print_numbers --processes   four Processes, each printing its pid and number
 */
#include <mproc.h>
#include <stdio.h>
#include <string.h>

static int print_number(mproc_ctx *ctx, const void *number, size_t len) {
    printf("%d\n", *(const int *)number);
    return 0;
}
MPROC_TASK(print_number);

static int print_with_pid(mproc_ctx *ctx, const void *arg, size_t len) {
    printf("Process ID: %ld - Number: %d\n", mproc_current_pid(), *(const int *)arg);
    return 0;
}
MPROC_TASK(print_with_pid);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    int numbers[] = {1, 2, 3, 4};
    if (argc > 1 && strcmp(argv[1], "--processes") == 0) {
        mproc_process *processes[4];
        for (int i = 0; i < 4; i++) {
            MPROC_CHECK(mproc_process_create(&processes[i], &print_with_pid_task, &numbers[i], sizeof numbers[i], NULL));
            MPROC_CHECK(mproc_process_start(processes[i]));
        }
        for (int i = 0; i < 4; i++) {
            MPROC_CHECK(mproc_process_join(processes[i], -1));
            mproc_process_free(processes[i]);
        }
    } else {
        mproc_pool *pool;
        MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 4}));
        /* No results wanted: out NULL, out_size 0. */
        MPROC_CHECK(mproc_map(pool, &print_number_task, numbers, sizeof numbers[0], NULL, 0, 4, NULL));
        mproc_pool_close(pool);
        mproc_pool_join(pool);
        mproc_pool_free(pool);
    }
    return mproc_finalize() < 0;
}
