/* mpi_bad_frame.c - a worker rank sends the master garbage instead of a frame (through the
 * backend's own transport, from inside a task, as a corrupted or hostile peer would). The
 * master must name the rank and the fault and end the job with MPI_Abort: never crash on the
 * bytes, never wait for a reply that will not come. Checked by mpi_expect_fail.sh.
 */
#include <stdio.h>
#include <string.h>

#include "backends/mpi/transport.h"
#include "mproc.h"

static int send_garbage(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx, (void)in, (void)len;
    unsigned char junk[40];
    memset(junk, 0xA5, sizeof junk); /* no magic, no version: nothing a decoder may trust */
    struct iovec iov = {junk, sizeof junk};
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_frame(0, &iov, 1, mproc__mpi_discard);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return 0;
}
MPROC_TASK(send_garbage);

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool;
    char out[8];
    if (mproc_pool_create(&pool, NULL) < 0) return 2;
    int rc = mproc_apply(pool, &send_garbage_task, "x", 1, out, sizeof out, NULL);
    printf("apply returned %d and the job went on\n", rc); /* the failure this test looks for */
    mproc_pool_free(pool);
    mproc_finalize();
    return 0;
}
