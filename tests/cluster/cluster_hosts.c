/* cluster_hosts - where mproc's workers really run: maps a task that returns its worker's
 * hostname over enough slow items that every worker takes some, and prints
 * "master H" and "workers H1 H2 ..." (the distinct hostnames, sorted). */
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct host_name {
    char s[64];
} host_name;

static int where(mproc_ctx *ctx, const int *ms, host_name *out) {
    struct timespec ts = {0, (long)*ms * 1000000L};
    nanosleep(&ts, NULL); /* long enough that no worker takes them all */
    memset(out, 0, sizeof *out);
    gethostname(out->s, sizeof out->s - 1);
    return 0;
}
MPROC_TASK_TYPED(where, int, host_name);

static int by_name(const void *a, const void *b) { return strcmp(((const host_name *)a)->s, ((const host_name *)b)->s); }

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    int n = 8 * mproc_pool_size(pool);
    int *ms = malloc(sizeof *ms * (size_t)n);
    host_name *out = calloc((size_t)n, sizeof *out);
    for (int i = 0; i < n; i++) ms[i] = 20;
    MPROC_CHECK(mproc_map(pool, &where_task, ms, sizeof *ms, out, sizeof *out, (size_t)n, &(mproc_call_opts){.chunksize = 1}));
    qsort(out, (size_t)n, sizeof *out, by_name);
    char me[64] = {0};
    gethostname(me, sizeof me - 1);
    printf("master %s\nworkers", me);
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(out[i].s, out[i - 1].s) != 0) printf(" %s", out[i].s);
    printf("\n");
    free(ms);
    free(out);
    mproc_pool_free(pool);
    return mproc_finalize() < 0;
}
