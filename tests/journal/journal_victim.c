/* journal_victim - a map of 3,000 items of 4 ms with a journal, for journal_kill.sh to kill
 * and resume; and a checker of the journal it leaves.
 *   journal_victim run JOURNAL PIDFILE   map, then print "sum=<s>" (the master writes its pid
 *                                        to PIDFILE first, for the killer)
 *   journal_victim check JOURNAL         every item recorded exactly once, with the right
 *                                        result; prints "records=<n>" (exit 1 otherwise)
 * The checker reads the record layout that src/pool/journal.c writes: a header (8-byte magic,
 * u32 length of the rest), then records of 24 bytes of head, a body padded to 8 bytes (longs
 * need no padding) and an 8-byte check:
 * JREC {u32 tag, u32 len, u64 index, i32 status, u32 pad} + len bytes, or
 * JRUN {u32 tag, u32 count, u64 first, u32 item size, u32 pad} + count results.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

enum { N = 3000 };

static long f(long x) {
    struct timespec ts = {0, 4 * 1000000L};
    nanosleep(&ts, NULL);
    return 3 * x + 1;
}
MPROC_TASK_VALUE(f, long, long);

static int check(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return 1;
    }
    static unsigned char seen[N];
    unsigned char h[12];
    uint32_t hl;
    if (fread(h, 1, 12, fp) != 12 || memcmp(h, "MPROCJ1\n", 8) != 0) {
        fprintf(stderr, "check: %s: no journal header\n", path);
        return 1;
    }
    memcpy(&hl, h + 8, 4);
    fseek(fp, (long)(12 + hl), SEEK_SET);
    long records = 0;
    unsigned char r[24];
    while (fread(r, 1, 24, fp) == 24) {
        uint32_t tag, a, c;
        uint64_t b;
        memcpy(&tag, r, 4);
        memcpy(&a, r + 4, 4);
        memcpy(&b, r + 8, 8);
        memcpy(&c, r + 16, 4);
        /* JREC: one item (a = length, c = status); JRUN: a items from b on, c bytes each. */
        uint32_t count = tag == 0x4e55524au ? a : 1;
        if ((tag != 0x4345524au && tag != 0x4e55524au) || (tag == 0x4345524au && (a != sizeof(long) || c != 0)) ||
            (tag == 0x4e55524au && c != sizeof(long)) || b + count > N) {
            fprintf(stderr, "check: bad record %ld (index %llu)\n", records, (unsigned long long)b);
            return 1;
        }
        for (uint32_t i = 0; i < count; i++) {
            long value = 0;
            uint64_t index = b + i;
            if (fread(&value, 1, sizeof value, fp) != sizeof value) {
                fprintf(stderr, "check: record %ld is cut short\n", records);
                return 1;
            }
            if (seen[index]++) {
                fprintf(stderr, "check: item %llu recorded twice\n", (unsigned long long)index);
                return 1;
            }
            if (value != 3 * (long)index + 1) {
                fprintf(stderr, "check: item %llu has %ld\n", (unsigned long long)index, value);
                return 1;
            }
            records++;
        }
        fseek(fp, 8, SEEK_CUR);
    }
    fclose(fp);
    printf("records=%ld\n", records); /* items recorded */
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "check") == 0) return check(argv[2]);
    if (argc != 4 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "usage: journal_victim run JOURNAL PIDFILE | check JOURNAL\n");
        return 2;
    }
    MPROC_CHECK(mproc_init(&argc, &argv));
    FILE *pf = fopen(argv[3], "w");
    if (pf) {
        fprintf(pf, "%ld\n", (long)getpid());
        fclose(pf);
    }
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}));
    static long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;
    MPROC_CHECK(mproc_map(pool, &f_task, in, sizeof *in, out, sizeof *out, N,
                          &(mproc_call_opts){.chunksize = 5, .journal = argv[2]}));
    long sum = 0;
    for (long i = 0; i < N; i++) {
        if (out[i] != 3 * i + 1) {
            fprintf(stderr, "item %ld: %ld\n", i, out[i]);
            return 1;
        }
        sum += out[i];
    }
    printf("sum=%ld\n", sum);
    mproc_pool_free(pool);
    return 0;
}
