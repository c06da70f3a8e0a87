/* mpi_lost_rank.c - a worker rank's own process is SIGKILLed in the middle of a map while
 * mpirun keeps the job (--enable-recovery): the map must finish with every result right on the
 * other ranks, later pools and Processes must work without the lost rank, and the job must end
 * 0 (mpi_lost_rank.sh checks the warning naming the rank and its host).
 *
 * The kill comes from inside the map, from the task of item 100 (the first time it runs, a
 * marker file tells; its path comes in MPROC_LOST_RANK_MARKER): it walks up from its executor through the fork server to the rank and
 * kills that, so the test needs no outside timing.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"

/* A path every rank sees the same on every host (mpi_lost_rank.sh passes it with -x). */
static const char *marker_path(void) {
    const char *m = getenv("MPROC_LOST_RANK_MARKER");
    return m && *m ? m : "/tmp/mproc-lost-rank-marker";
}

static long square_or_kill_rank(long x) {
    if (x == 100) {
        int fd = open(marker_path(), O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (fd >= 0) { /* the first run only: its re-run elsewhere must succeed */
            close(fd);
            mproc_test_kill_my_rank();
        }
    }
    usleep(2000);
    return x * x;
}
MPROC_TASK_VALUE(square_or_kill_rank, long, long);

static int child_says_hello(mproc_ctx *ctx, const void *in, size_t len) {
    (void)ctx, (void)in, (void)len;
    return 0;
}
MPROC_TASK(child_says_hello);

#define CHECK MPROC_TEST_CHECK

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    unlink(marker_path());
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, NULL) == 0, "pool");
    int n0 = mproc_pool_size(pool);
    enum { N = 600 };
    static long in[N], out[N];
    static int status[N];
    for (long i = 0; i < N; i++) in[i] = i;
    int rc = mproc_map(pool, &square_or_kill_rank_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.chunksize = 1, .item_status = status});
    CHECK(rc == 0, "map returned %s", mproc_err_name(rc));
    for (long i = 0; i < N; i++) CHECK(status[i] == 0 && out[i] == i * i, "item %ld: status %d, %ld", i, status[i], out[i]);
    long x = 12, y = 0;
    CHECK(MPROC_APPLY(pool, square_or_kill_rank, &x, &y) == 0 && y == 144, "apply after the loss");
    mproc_pool_free(pool);
    /* A new pool: the lost rank's slot is closed at once, the others work. */
    CHECK(mproc_pool_create(&pool, NULL) == 0, "second pool");
    rc = mproc_map(pool, &square_or_kill_rank_task, in, sizeof *in, out, sizeof *out, 50, &(mproc_call_opts){.chunksize = 1});
    CHECK(rc == 0 && out[49] == 49 * 49, "second pool's map: %s", mproc_err_name(rc));
    mproc_pool_free(pool);
    /* Processes go to live ranks. */
    for (int i = 0; i < 4; i++) {
        mproc_process *p;
        CHECK(mproc_process_create(&p, &child_says_hello_task, NULL, 0, NULL) == 0, "process create");
        CHECK(mproc_process_start(p) == 0, "process start");
        CHECK(mproc_process_join(p, 30) == 0, "process join");
        int code = -1;
        CHECK(mproc_process_exitcode(p, &code) == 0 && code == 0, "process exit code %d", code);
        mproc_process_free(p);
    }
    unlink(marker_path());
    printf("ok: map of %d items right after losing a rank (pool of %d)\n", N, n0);
    fflush(stdout);
    return mproc_finalize() < 0;
}
