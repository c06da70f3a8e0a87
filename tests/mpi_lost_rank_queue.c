/* mpi_lost_rank_queue.c - work queued behind a lost rank's re-run chunks still goes out.
 * mpi_lost_rank.sh runs it at -np 4 with two executors per rank and one frame per executor
 * (six workers on three ranks). A re-run chunk of a lost rank (a suspect) waits for a whole rank
 * with nothing in flight (pool/domains.c); while it waits, one rank is kept for it and the others
 * must go on taking the chunks queued behind it.
 *
 * The map makes that the only way out: item 0 kills its rank; on each other rank the first item
 * to run holds one executor (a gate) until item RELEASE has run, and the items after the gates
 * wait on the other executors until the master has said the rank is lost (its warning in the
 * job's stderr, MPROC_TEST_STDERR). So when the suspects are queued every live rank has a gate in
 * flight: no rank can drain until RELEASE runs, and RELEASE is queued behind the suspects. A
 * scheduler that holds everything behind a suspect until some rank drains would wait for the
 * gates' GATE_LIMIT_S, and the gates would then fail their items.
 */
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "test_support.h"

enum { N = 40, RELEASE = 12 };
#define GATE_LIMIT_S 40.0

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *marker(void) {
    const char *m = getenv("MPROC_LOST_RANK_MARKER");
    return m ? m : "/tmp/mproc-lost-rank-queue";
}

static void path_of(char *buf, size_t cap, const char *what, long rank) {
    snprintf(buf, cap, "%s.%s.%ld", marker(), what, rank);
}

/* 1 once the job's stderr says a rank is lost (the master's watchdog took it for lost). */
static int loss_seen(void) {
    const char *err = getenv("MPROC_TEST_STDERR");
    FILE *f = err ? fopen(err, "r") : NULL;
    if (!f) return 0;
    char line[512];
    int seen = 0;
    while (!seen && fgets(line, sizeof line, f)) seen = strstr(line, "is lost") != NULL;
    fclose(f);
    return seen;
}

static long queue_item(long x) {
    char path[256];
    if (x == 0) {
        path_of(path, sizeof path, "killed", 0);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (fd >= 0) { /* the first run only: a re-run must finish */
            close(fd);
            mproc_test_kill_my_rank();
        }
        return 0;
    }
    if (x == RELEASE) {
        path_of(path, sizeof path, "released", 0);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        if (fd >= 0) close(fd);
        return x * x;
    }
    path_of(path, sizeof path, "gate", mproc_test_my_rank());
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd >= 0) { /* this rank's gate: hold its executor until RELEASE has run */
        close(fd);
        path_of(path, sizeof path, "released", 0);
        for (double t0 = mproc_test_now(); access(path, F_OK) != 0;) {
            if (mproc_test_now() - t0 > GATE_LIMIT_S) return -1; /* RELEASE never went out */
            nap(10);
        }
        return x * x;
    }
    /* Hold the rank's other executor until the loss is known, so the suspects are queued
     * while every live rank still has its gate in flight. */
    for (double t0 = mproc_test_now(); !loss_seen() && mproc_test_now() - t0 < 60;) nap(20);
    nap(100);
    return x * x;
}
MPROC_TASK_VALUE(queue_item, long, long);

#define CHECK MPROC_TEST_CHECK

static void remove_markers(void) {
    char pattern[256];
    snprintf(pattern, sizeof pattern, "%s.*", marker());
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) return;
    for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
    globfree(&g);
}

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    mproc_pool *pool;
    CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.inflight = 1}) == 0, "pool");
    CHECK(mproc_pool_size(pool) == 6, "pool of %d workers, want 6 (-np 4, MPROC_MPI_EXECUTORS=2)",
          mproc_pool_size(pool));
    CHECK(getenv("MPROC_TEST_STDERR"), "MPROC_TEST_STDERR is not set (run by mpi_lost_rank.sh)");
    static long in[N], out[N];
    static int status[N];
    for (long i = 0; i < N; i++) in[i] = i;
    double t0 = mproc_test_now();
    int rc = mproc_map(pool, &queue_item_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.chunksize = 1, .item_status = status});
    double took = mproc_test_now() - t0;
    CHECK(rc == 0, "map returned %s", mproc_err_name(rc));
    for (long i = 0; i < N; i++) {
        CHECK(status[i] == 0, "item %ld: status %d", i, status[i]);
        CHECK(out[i] == i * i, "item %ld is %ld: %s", i, out[i],
              out[i] == -1 ? "a gate waited in vain: the item that opens it was held behind a lost rank's re-run"
                           : "wrong");
    }
    mproc_pool_free(pool);
    remove_markers();
    printf("ok: the work behind a lost rank's re-runs went out while they waited (map took %.1f s)\n", took);
    fflush(stdout);
    return mproc_finalize() < 0;
}
