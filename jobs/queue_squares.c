/* queue_squares - Processes send their results back through a Queue, as in Python:
 *
 *     def square(numbers, q):
 *         for n in numbers: q.put((n, n * n))
 *     q = Queue()
 *     ps = [Process(target=square, args=(numbers[i::4], q)) for i in range(4)]
 *     for p in ps: p.start()
 *     results = sorted(q.get() for _ in numbers)
 *     for p in ps: p.join()
 *     print(results)
 *
 *   build/jobs/queue_squares            -> [(1, 1), (2, 4), (3, 9), ..., (10, 100)]
 *   ./mpirun.sh -np 4 build/jobs/queue_squares   (the Processes run on the worker ranks)
 *
 * Take the results before joining (a Process blocks while the queue is full, as in Python),
 * and stop waiting once every Process has ended: a Process that failed puts nothing more.
 * Under MPI a Process on another node than the master's puts through the master's broker.
 */
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>

#define NUMBERS 10
#define PROCESSES 4

struct work {
    mproc_queue results;
    int first, step; /* numbers first, first + step, ... up to NUMBERS */
};
struct pair {
    long n, square;
};

static int square(mproc_ctx *ctx, const void *arg, size_t len) {
    const struct work *w = arg;
    for (long n = w->first; n <= NUMBERS; n += w->step) {
        struct pair p = {n, n * n};
        if (MPROC_QUEUE_PUT(&w->results, &p, -1) < 0) {
            fprintf(stderr, "queue_squares: %s\n", mproc_last_error());
            return mproc_fail(ctx, "%s", mproc_last_error());
        }
    }
    return 0;
}
MPROC_TASK(square);

static int by_number(const void *a, const void *b) { return (int)(((const struct pair *)a)->n - ((const struct pair *)b)->n); }

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    struct work w = {.step = PROCESSES};
    MPROC_CHECK(mproc_queue_create(&w.results, NULL));
    mproc_process *ps[PROCESSES];
    for (int i = 0; i < PROCESSES; i++) {
        w.first = i + 1;
        MPROC_CHECK(mproc_process_create(&ps[i], &square_task, &w, sizeof w, NULL));
        MPROC_CHECK(mproc_process_start(ps[i]));
    }
    struct pair results[NUMBERS];
    int got = 0;
    while (got < NUMBERS) {
        int rc = MPROC_QUEUE_GET(&w.results, &results[got], 0.5);
        if (rc == 0) {
            got++;
            continue;
        }
        if (rc != MPROC_EEMPTY) MPROC_CHECK(rc);
        int alive = 0;
        for (int i = 0; i < PROCESSES; i++) alive += mproc_process_is_alive(ps[i]) == 1;
        if (!alive && mproc_queue_qsize(&w.results) == 0) break; /* nobody left to put the rest */
    }
    int failed = 0;
    for (int i = 0; i < PROCESSES; i++) {
        int code = 0;
        MPROC_CHECK(mproc_process_join(ps[i], -1));
        MPROC_CHECK(mproc_process_exitcode(ps[i], &code));
        failed += code != 0;
        mproc_process_free(ps[i]);
    }
    if (got < NUMBERS) {
        fprintf(stderr, "queue_squares: %d of %d results came back; %d process(es) failed\n", got, NUMBERS, failed);
        mproc_finalize();
        return 1;
    }
    qsort(results, NUMBERS, sizeof results[0], by_number);
    printf("[");
    for (int i = 0; i < NUMBERS; i++) printf("%s(%ld, %ld)", i ? ", " : "", results[i].n, results[i].square);
    printf("]\n");
    mproc_queue_free(&w.results);
    return mproc_finalize() < 0;
}
