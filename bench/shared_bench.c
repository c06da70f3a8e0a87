/* shared_bench.c - the mproc side of bench/shared.sh: what the shared objects cost between the
 * master and a Process (a forked child, or under mpirun a child of worker rank 1):
 *   queue N   a Process puts N longs into a Queue, the master gets them (items/s)
 *   qrtt N    N round trips: master -> Queue -> Process -> Queue -> master (us per trip)
 *   lock N    N uncontended acquire+release of a Lock in the master (ns per pair)
 *   lockc N   the master and a Process each make N acquire+increment+release of one Lock
 *             (ns per pair, both together; the count is checked)
 * Output lines as bench/peers/ print them: RESULT peer=... workload=... value=... unit=...
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct arg {
    mproc_queue to, from;
    mproc_lock lock;
    mproc_array counter;
    mproc_event go;
    long n;
};

static int producer(mproc_ctx *ctx, const void *in, size_t len) {
    const struct arg *a = in;
    for (long i = 0; i < a->n; i++) MPROC_CHECK(MPROC_QUEUE_PUT(&a->to, &i, -1));
    return 0;
}
MPROC_TASK(producer);

static int echo(mproc_ctx *ctx, const void *in, size_t len) {
    const struct arg *a = in;
    for (long i = 0; i < a->n; i++) {
        long v;
        MPROC_CHECK(MPROC_QUEUE_GET(&a->to, &v, -1));
        MPROC_CHECK(MPROC_QUEUE_PUT(&a->from, &v, -1));
    }
    return 0;
}
MPROC_TASK(echo);

/* The increment through the memory where it is mapped; from another node (no mapping) by
 * read and write, each a call to the master's broker. */
static void count_up(const struct arg *a) {
    long *c = mproc_array_data(&a->counter);
    for (long i = 0; i < a->n; i++) {
        mproc_lock_acquire(&a->lock, -1);
        if (c) {
            ++*c;
        } else {
            long v;
            mproc_array_read(&a->counter, 0, &v, sizeof v);
            v++;
            mproc_array_write(&a->counter, 0, &v, sizeof v);
        }
        mproc_lock_release(&a->lock);
    }
}

static int counter(mproc_ctx *ctx, const void *in, size_t len) {
    const struct arg *a = in;
    MPROC_CHECK(mproc_event_wait(&a->go, -1));
    count_up(a);
    return 0;
}
MPROC_TASK(counter);

static const char *peer(void) { return mproc_backend() == MPROC_BACKEND_MPI ? "mproc_mpi" : "mproc_fork"; }

static void result(const char *w, double v, const char *unit, int ok, long n) {
    printf("RESULT peer=%s workload=%s value=%.6g unit=%s check=%s n=%ld\n", peer(), w, v, unit, ok ? "ok" : "BAD", n);
}

static mproc_process *run(const mproc_task *t, struct arg *a) {
    mproc_process *p;
    MPROC_CHECK(mproc_process_create(&p, t, a, sizeof *a, NULL));
    MPROC_CHECK(mproc_process_start(p));
    return p;
}

static int finish(mproc_process *p) {
    int code = -1;
    MPROC_CHECK(mproc_process_join(p, -1));
    MPROC_CHECK(mproc_process_exitcode(p, &code));
    mproc_process_free(p);
    return code == 0;
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    const char *w = argc > 1 ? argv[1] : "queue";
    struct arg a = {.n = argc > 2 ? atol(argv[2]) : 1000000};
    MPROC_CHECK(mproc_queue_create(&a.to, NULL));
    MPROC_CHECK(mproc_queue_create(&a.from, NULL));
    MPROC_CHECK(mproc_lock_create(&a.lock));
    MPROC_CHECK(mproc_array_create(&a.counter, sizeof(long), 1, 0));
    MPROC_CHECK(mproc_event_create(&a.go));
    if (!strcmp(w, "queue")) {
        mproc_process *p = run(&producer_task, &a);
        long v, ok = 1;
        MPROC_CHECK(MPROC_QUEUE_GET(&a.to, &v, -1)); /* the clock starts at the first item */
        double t0 = now();
        for (long i = 1; i < a.n; i++) {
            MPROC_CHECK(MPROC_QUEUE_GET(&a.to, &v, -1));
            ok &= v == i;
        }
        double t = now() - t0;
        ok &= finish(p);
        result(w, (double)(a.n - 1) / t, "items/s", (int)ok, a.n);
    } else if (!strcmp(w, "qrtt")) {
        mproc_process *p = run(&echo_task, &a);
        long v = -1, ok = 1;
        MPROC_CHECK(MPROC_QUEUE_PUT(&a.to, &(long){0}, -1)); /* first trip untimed: the Process starts */
        MPROC_CHECK(MPROC_QUEUE_GET(&a.from, &v, -1));
        double t0 = now();
        for (long i = 1; i < a.n; i++) {
            MPROC_CHECK(MPROC_QUEUE_PUT(&a.to, &i, -1));
            MPROC_CHECK(MPROC_QUEUE_GET(&a.from, &v, -1));
            ok &= v == i;
        }
        double t = now() - t0;
        ok &= finish(p);
        result(w, t / (double)(a.n - 1) * 1e6, "us", (int)ok, a.n);
    } else if (!strcmp(w, "lock")) {
        double t0 = now();
        for (long i = 0; i < a.n; i++) {
            mproc_lock_acquire(&a.lock, -1);
            mproc_lock_release(&a.lock);
        }
        result(w, (now() - t0) / (double)a.n * 1e9, "ns", 1, a.n);
    } else if (!strcmp(w, "lockc")) {
        mproc_process *p = run(&counter_task, &a);
        usleep(200000); /* the Process is waiting on the event by now (or soon) */
        double t0 = now();
        MPROC_CHECK(mproc_event_set(&a.go));
        count_up(&a);
        int ok = finish(p);
        double t = now() - t0;
        ok &= *(long *)mproc_array_data(&a.counter) == 2 * a.n;
        result(w, t / (double)(2 * a.n) * 1e9, "ns", ok, a.n);
    } else {
        fprintf(stderr, "usage: shared_bench queue|qrtt|lock|lockc [N]\n");
        return 2;
    }
    mproc_finalize();
    return 0;
}
