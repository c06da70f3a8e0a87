/* process_square - seed Q3: run square(5) in a new Process, join it, then say goodbye.
 *
 *   build/jobs/process_square                 -> The square of 5 is 25 / Main process exiting
 *   ./mpirun.sh -np 2 build/jobs/process_square   (the process runs on the worker rank)
 */
#include <mproc.h>
#include <stdio.h>

static int square(mproc_ctx *ctx, const void *arg, size_t len) {
    long number = *(const long *)arg;
    printf("The square of %ld is %ld\n", number, number * number);
    return 0;
}
MPROC_TASK(square);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    long number = 5;
    mproc_process *process;
    MPROC_CHECK(mproc_process_create(&process, &square_task, &number, sizeof number, NULL));
    MPROC_CHECK(mproc_process_start(process));
    MPROC_CHECK(mproc_process_join(process, -1));
    printf("Main process exiting\n");
    mproc_process_free(process);
    return mproc_finalize() < 0;
}
