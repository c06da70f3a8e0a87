/* soak - memory soak of one master process: 1,000,000 apply_async tasks (10,000 outstanding at
 * a time, each got and freed in order) and then a 10,000,000-item imap from a generator, with
 * the master's resident set sampled as it goes. Flat numbers mean nothing accumulates per task.
 *
 *   build/bench/soak [apply_tasks] [imap_items]        (also under ./mpirun.sh -np 3)
 */
#define _GNU_SOURCE
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long square(long x) { return x * x; }
MPROC_TASK_VALUE(square, long, long);

static long rss_kib(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static long peak_kib(void) {
    char line[256];
    long v = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static int gen(void *ud, size_t i, void *item) {
    if (i >= *(size_t *)ud) return 0;
    *(long *)item = (long)i;
    return 1;
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    size_t n_apply = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t n_imap = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000000;
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    enum { WINDOW = 10000 };
    static mproc_async *ring[WINDOW];
    static long args[WINDOW];
    long first_rss = 0, check = 0;
    for (size_t i = 0; i < n_apply + WINDOW; i++) {
        size_t slot = i % WINDOW;
        if (i >= WINDOW) {
            long out;
            MPROC_CHECK(MPROC_GET(ring[slot], &out));
            check += out == args[slot] * args[slot] ? 0 : 1;
            mproc_async_free(ring[slot]);
        }
        if (i < n_apply) {
            args[slot] = (long)i;
            MPROC_CHECK(MPROC_APPLY_ASYNC(pool, square, &args[slot], &ring[slot]));
        }
        if (i && i % (n_apply / 10 ? n_apply / 10 : 1) == 0 && i <= n_apply) {
            long r = rss_kib();
            if (!first_rss) first_rss = r;
            printf("apply_async %8zu tasks: master rss %ld KiB\n", i, r);
        }
    }
    long apply_end = rss_kib();
    printf("apply_async done: %zu tasks, %ld wrong, rss %ld KiB (growth after 10%%: %+ld KiB)\n",
           n_apply, check, apply_end, apply_end - first_rss);
    mproc_iter *it;
    MPROC_CHECK(mproc_imap_gen(pool, &square_task, gen, &n_imap, sizeof(long), 1,
                               &(mproc_call_opts){.chunksize = 10000}, &it));
    const void *data;
    size_t len, idx, got = 0;
    long imap_first = 0, wrong = 0;
    int rc;
    while ((rc = mproc_iter_next(it, -1, &data, &len, &idx)) == 0) {
        wrong += *(const long *)data != (long)idx * (long)idx;
        if (++got % (n_imap / 10 ? n_imap / 10 : 1) == 0) {
            long r = rss_kib();
            if (!imap_first) imap_first = r;
            printf("imap %10zu items: master rss %ld KiB\n", got, r);
        }
    }
    if (rc != MPROC_EOF) MPROC_CHECK(rc);
    mproc_iter_free(it);
    long imap_end = rss_kib();
    printf("imap done: %zu items, %ld wrong, rss %ld KiB (growth after 10%%: %+ld KiB)\n", got, wrong,
           imap_end, imap_end - imap_first);
    printf("SOAK backend=%s apply_growth_kib=%ld imap_growth_kib=%ld peak_rss_kib=%ld\n", mproc_backend_name(),
           apply_end - first_rss, imap_end - imap_first, peak_kib());
    mproc_pool_free(pool);
    return mproc_finalize() < 0 || check || wrong;
}
