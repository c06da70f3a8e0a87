/* mpi_cancel_in_rank - cancel where worker ranks run tasks themselves (MPROC_MPI_EXECUTORS=0;
 * mpi_tests.cmake runs it under mpirun -np 3). The README: a running task cannot be stopped
 * there: the call fails at once (MPROC_ECANCELLED) and the task's result is dropped when it
 * comes. So: the cancelled call settles within 0.5 s; a call queued behind it on the same rank
 * waits for the task to end (the rank was not freed) and then gets its own result, never the
 * dropped one; a cancelled map_async settles at once and the next map is right; a fail_fast
 * map with 64 KiB inputs queued behind another call's running task on the same rank ends only
 * when that task does (MPI reads those inputs from the caller's array until the rank takes them:
 * docs/mpi.md), and nothing lands in its output afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mproc.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return ms;
}
MPROC_TASK_VALUE(nap, long, long);

#define FAIL(...) (fprintf(stderr, "mpi_cancel_in_rank: " __VA_ARGS__), fputc('\n', stderr), exit(1))

static void cancel_apply(void) {
    mproc_pool *p;
    MPROC_CHECK(mproc_pool_create(&p, &(mproc_pool_opts){.processes = 1}));
    long slow = 1500, seven = 7, r = 0;
    mproc_async *running, *behind;
    MPROC_CHECK(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &running));
    MPROC_CHECK(mproc_apply_async(p, &nap_task, &seven, sizeof seven, NULL, &behind));
    nap(200);
    double t0 = now_s();
    if (mproc_async_cancel(running) != 1) FAIL("cancel of a running task: want 1");
    if (mproc_async_wait(running, 0.5) != 0) FAIL("the cancelled call did not settle within 0.5 s");
    if (mproc_async_get(running, 0, NULL, NULL) != MPROC_ECANCELLED) FAIL("cancelled call: %s", mproc_last_error());
    if (mproc_async_wait(behind, 5.0) != 0) FAIL("the call behind it never finished");
    double took = now_s() - t0;
    int rc = MPROC_GET(behind, &r);
    if (rc != 0 || r != 7) FAIL("the call behind got rc %d, result %ld (want 7; 1500 is the dropped one's)", rc, r);
    if (took < 1.0) FAIL("the call behind finished after %.2f s: the task could not have been stopped", took);
    mproc_async_free(running);
    mproc_async_free(behind);
    MPROC_CHECK(mproc_pool_free(p));
    printf("mpi_cancel_in_rank: apply cancelled at once, the call behind got 7 after %.2f s\n", took);
}

static void cancel_map(void) {
    mproc_pool *p;
    MPROC_CHECK(mproc_pool_create(&p, NULL));
    enum { N = 20 };
    long in[N], out[N];
    int st[N];
    for (int i = 0; i < N; i++) in[i] = 100, out[i] = -1;
    mproc_async *a;
    MPROC_CHECK(mproc_map_async(p, &nap_task, in, sizeof *in, out, sizeof *out, N,
                                &(mproc_call_opts){.chunksize = 1, .item_status = st}, &a));
    nap(250);
    double t0 = now_s();
    if (mproc_async_cancel(a) != 1) FAIL("cancel of a running map: want 1");
    if (mproc_async_wait(a, 0.5) != 0) FAIL("the cancelled map did not settle within 0.5 s");
    if (now_s() - t0 > 0.5) FAIL("the cancelled map took %.2f s", now_s() - t0);
    if (mproc_async_get(a, 0, NULL, NULL) != MPROC_ECANCELLED) FAIL("cancelled map: %s", mproc_last_error());
    int done = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        if (st[i] == 0 && out[i] == 100) done++;
        else if (st[i] == MPROC_ECANCELLED && out[i] == -1) cancelled++;
        else FAIL("item %d: status %d, out %ld", i, st[i], out[i]);
    }
    if (!done || !cancelled) FAIL("%d done, %d cancelled: want some of each", done, cancelled);
    mproc_async_free(a);
    long in2[6] = {1, 2, 3, 4, 5, 6}, out2[6] = {0};
    MPROC_CHECK(MPROC_MAP(p, nap, in2, out2, 6));
    for (int i = 0; i < 6; i++)
        if (out2[i] != i + 1) FAIL("the next map's item %d is %ld, want %d", i, out2[i], i + 1);
    MPROC_CHECK(mproc_pool_free(p));
    printf("mpi_cancel_in_rank: map cancelled at once (%d done, %d cancelled), the next map right\n", done, cancelled);
}

typedef struct {
    char b[64 * 1024];
} big_item;
/* Item 0 fails at once; the others fill their result with 'R'. */
static int fill(mproc_ctx *ctx, const big_item *x, big_item *out) {
    if (x->b[0] == 0) return mproc_fail(ctx, "item 0 fails");
    memset(out->b, 'R', sizeof out->b);
    return 0;
}
MPROC_TASK_TYPED(fill, big_item, big_item);

static void fail_fast_big_inputs(void) {
    mproc_pool *p;
    MPROC_CHECK(mproc_pool_create(&p, &(mproc_pool_opts){.processes = 2}));
    long slow = 1000;
    mproc_async *other;
    MPROC_CHECK(mproc_apply_async(p, &nap_task, &slow, sizeof slow, NULL, &other));
    /* No pause: the slow task is still young when the map comes, so the map's chunks go to
     * both ranks, some queued behind it (nothing is queued behind a frame over 1 ms old). */
    enum { N = 6 };
    big_item *in = calloc(N, sizeof *in), *out = calloc(N, sizeof *out);
    if (!in || !out) FAIL("out of memory");
    for (int i = 0; i < N; i++) in[i].b[0] = (char)i;
    double t0 = now_s();
    int rc = mproc_map(p, &fill_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.chunksize = 1, .fail_fast = 1});
    double took = now_s() - t0;
    if (rc != MPROC_ETASK) FAIL("fail_fast map: rc %d (%s), want MPROC_ETASK", rc, mproc_last_error());
    memset(out, 0, N * sizeof *out); /* ours again */
    memset(in, 0x55, N * sizeof *in);
    if (mproc_async_wait(other, 5.0) != 0) FAIL("the slow call never finished");
    nap(600);
    long r[2] = {0, 0}, seven[2] = {7, 7};
    MPROC_CHECK(MPROC_MAP(p, nap, seven, r, 2));
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < sizeof out[i].b; k += 4096)
            if (out[i].b[k]) FAIL("item %d's output written after the map returned", i);
    mproc_async_free(other);
    free(in);
    free(out);
    MPROC_CHECK(mproc_pool_free(p));
    printf("mpi_cancel_in_rank: fail_fast map with big inputs returned after %.2f s, output untouched since\n", took);
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    if (mproc_backend() != MPROC_BACKEND_MPI) FAIL("run me under mpirun -np 3 with MPROC_MPI_EXECUTORS=0");
    cancel_apply();
    cancel_map();
    fail_fast_big_inputs();
    printf("mpi_cancel_in_rank: ok\n");
    return mproc_finalize() < 0;
}
