/* wordcount - count the lines, words and bytes of every file under a directory (as wc does), the
 * files spread over a pool with imap_unordered over their paths (variable-length items), with a
 * progress bar and a journal so that a killed run resumes where it stopped.
 *
 *   build/jobs/wordcount DIR [--journal FILE] [--progress] [--list]
 *   ./mpirun.sh -np 4 build/jobs/wordcount DIR --journal wc.journal --progress
 *   sbatch jobs/wordcount.sbatch DIR
 * Prints "total: <lines> lines, <words> words, <bytes> bytes in <n> files" (--list: a line per
 * file first, sorted by path). A file that cannot be read is reported and skipped; the exit
 * status is then 1. Run again with the same --journal after a kill: files already counted are
 * not read again. Under MPI every rank must see DIR at the same path (a shared file system).
 */
#define _XOPEN_SOURCE 700
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <mproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct counts {
    long lines, words, bytes;
} counts;

/* The task: a path (not NUL-terminated) in, its counts out. */
static int count_file(mproc_ctx *ctx, const void *path, size_t len) {
    char p[4096];
    if (len >= sizeof p) return mproc_fail(ctx, "path of %zu bytes is too long", len);
    memcpy(p, path, len);
    p[len] = '\0';
    FILE *f = fopen(p, "rb");
    if (!f) return mproc_fail(ctx, "%s: %s", p, strerror(errno));
    counts c = {0, 0, 0};
    int in_word = 0, ch;
    while ((ch = getc(f)) != EOF) {
        c.bytes++;
        if (ch == '\n') c.lines++;
        if (isspace(ch)) in_word = 0;
        else if (!in_word) in_word = 1, c.words++;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return mproc_fail(ctx, "%s: read error", p);
    return mproc_return(ctx, &c, sizeof c);
}
MPROC_TASK(count_file);

/* ---- the files under DIR, sorted (so a journal's input is the same on every run) --------- */

static char **paths;
static size_t npaths, cap;

/* Regular files (links followed), and links that lead nowhere: those fail to open and are
 * reported, as wc reports them. FIFOs and devices are left out (reading one may never end). */
static int add_path(const char *p, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    if (!(type == FTW_F && S_ISREG(st->st_mode)) && type != FTW_SLN) return 0;
    if (npaths == cap) {
        cap = cap ? 2 * cap : 1024;
        char **n = realloc(paths, cap * sizeof *n);
        if (!n) return -1;
        paths = n;
    }
    if (!(paths[npaths] = strdup(p))) return -1;
    npaths++;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void usage(void) {
    fprintf(stderr, "usage: wordcount DIR [--journal FILE] [--progress] [--list]\n");
    exit(2);
}

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    const char *dir = NULL, *journal = NULL;
    int progress = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--journal") && i + 1 < argc) journal = argv[++i];
        else if (!strcmp(argv[i], "--progress")) progress = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else usage();
    }
    if (!dir) usage();
    if (nftw(dir, add_path, 64, 0) != 0) {
        fprintf(stderr, "wordcount: cannot walk %s: %s\n", dir, strerror(errno));
        return 2;
    }
    qsort(paths, npaths, sizeof *paths, by_name);
    mproc_item *items = malloc((npaths ? npaths : 1) * sizeof *items);
    counts *per = calloc(npaths ? npaths : 1, sizeof *per);
    char *ok = calloc(npaths ? npaths : 1, 1);
    if (!items || !per || !ok) return 2;
    for (size_t i = 0; i < npaths; i++) items[i] = (mproc_item){paths[i], strlen(paths[i])};

    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    mproc_iter *it;
    mproc_call_opts opts = {.chunksize = 1, .journal = journal, .progress_bar = progress ? 1 : 0};
    MPROC_CHECK(mproc_imap_items(pool, &count_file_task, items, npaths, 0, &opts, &it));
    counts total = {0, 0, 0};
    int status = 0, rc;
    const void *data;
    size_t len, index;
    while ((rc = mproc_iter_next(it, -1, &data, &len, &index)) != MPROC_EOF) {
        if (rc < 0) { /* this file failed: say why, go on */
            fprintf(stderr, "wordcount: %s\n", mproc_last_error());
            status = 1;
            continue;
        }
        memcpy(&per[index], data, sizeof per[index]);
        ok[index] = 1;
        total.lines += per[index].lines;
        total.words += per[index].words;
        total.bytes += per[index].bytes;
    }
    mproc_iter_free(it);
    mproc_pool_free(pool);
    for (size_t i = 0; list && i < npaths; i++)
        if (ok[i]) printf("%8ld %8ld %8ld %s\n", per[i].lines, per[i].words, per[i].bytes, paths[i]);
    printf("total: %ld lines, %ld words, %ld bytes in %zu files\n", total.lines, total.words, total.bytes, npaths);
    for (size_t i = 0; i < npaths; i++) free(paths[i]);
    free(paths);
    free(items);
    free(per);
    free(ok);
    return status;
}
