/* gen_corpus.c - writes the fuzzer's seed corpus: one valid frame (24-byte header + payload) of
 * each kind and payload form, so fuzz_wire starts from inputs that already get past the header
 * and reach every branch of the payload decoders. The generated files are committed in
 * tests/fuzz/corpus/; regenerate them after a wire format change with
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/fuzz/gen_corpus.c src/wire.c src/errors.c \
 *      -o /tmp/gen_corpus && /tmp/gen_corpus tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "wire/wire.h"

typedef struct frame {
    uint8_t b[512];
    size_t n;
} frame;

static void put32(frame *f, uint32_t v) {
    mproc__put_u32(f->b + f->n, v);
    f->n += 4;
}

static void put64(frame *f, uint64_t v) {
    mproc__put_u64(f->b + f->n, v);
    f->n += 8;
}

static void put_bytes(frame *f, const void *p, size_t len) {
    memcpy(f->b + f->n, p, len);
    f->n += len;
}

static void begin(frame *f) { f->n = MPROC__WIRE_HDR_SIZE; }

/* Fills in the header now that the payload length is known, and writes dir/name. */
static int finish(const char *dir, const char *name, frame *f, uint16_t kind, uint64_t id,
                  uint32_t arg) {
    mproc__hdr_encode(f->b, kind, id, (uint32_t)(f->n - MPROC__WIRE_HDR_SIZE), arg);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(f->b, 1, f->n, fp) != f->n || fclose(fp) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/* Variable-length items: the count, item_size 0, the lengths padded with zeros to a multiple
 * of 8 bytes, then the bytes. */
static void var_items(frame *f, int n, const char *const *items) {
    put32(f, (uint32_t)n);
    put32(f, 0);
    for (int i = 0; i < n; i++)
        put32(f, (uint32_t)strlen(items[i]));
    if (n % 2)
        put32(f, 0);
    for (int i = 0; i < n; i++)
        put_bytes(f, items[i], strlen(items[i]));
}

/* Result table: count, item_size 0, {status, len} entries, then the blobs. */
static void table(frame *f, int n, const int *status, const char *const *blobs) {
    put32(f, (uint32_t)n);
    put32(f, 0);
    for (int i = 0; i < n; i++) {
        put32(f, (uint32_t)status[i]);
        put32(f, (uint32_t)strlen(blobs[i]));
    }
    for (int i = 0; i < n; i++)
        put_bytes(f, blobs[i], strlen(blobs[i]));
}

static int task_frames(const char *dir) {
    frame f;
    int bad = 0;
    begin(&f); /* map of 4 longs */
    put32(&f, 4);
    put32(&f, 8);
    for (uint64_t i = 1; i <= 4; i++)
        put64(&f, i * 1000);
    bad |= finish(dir, "task_fixed", &f, MPROC__FRAME_TASK, 1, 3);
    begin(&f);
    put32(&f, 1);
    put32(&f, 1);
    put_bytes(&f, "x", 1);
    bad |= finish(dir, "task_fixed_one_byte", &f, MPROC__FRAME_TASK, 2, 0);
    static const char *const words[] = {"alpha", "", "gamma delta", "", "e"};
    begin(&f);
    var_items(&f, 5, words);
    bad |= finish(dir, "task_variable", &f, MPROC__FRAME_TASK, 3, 1);
    static const char *const empties[] = {"", "", ""};
    begin(&f);
    var_items(&f, 3, empties);
    bad |= finish(dir, "task_variable_all_empty", &f, MPROC__FRAME_TASK, 4, 2);
    static const char *const init_arg[] = {"config=42"};
    begin(&f);
    var_items(&f, 1, init_arg);
    bad |= finish(dir, "init_variable", &f, MPROC__FRAME_INIT, 5, 0);
    begin(&f);
    put32(&f, 1);
    put32(&f, 4);
    put32(&f, 7);
    bad |= finish(dir, "init_fixed", &f, MPROC__FRAME_INIT, 6, 4);
    return bad;
}

static int result_frames(const char *dir) {
    frame f;
    int bad = 0;
    begin(&f);
    put32(&f, 4);
    put32(&f, 8);
    for (uint64_t i = 1; i <= 4; i++)
        put64(&f, i * i);
    bad |= finish(dir, "result_fixed", &f, MPROC__FRAME_RESULT, 1, 0);
    static const int st[] = {0, MPROC_ETASK, 0, MPROC_ETOOBIG};
    static const char *const blobs[] = {"ok", "bad input 7", "", "too big"};
    begin(&f);
    table(&f, 4, st, blobs);
    bad |= finish(dir, "result_table_mixed", &f, MPROC__FRAME_RESULT, 3, 0);
    static const int all_err[] = {MPROC_EINVAL, MPROC_ETIMEDOUT, MPROC_EWORKER};
    static const char *const msgs[] = {"invalid", "task timed out", "worker 1 died: SIGSEGV"};
    begin(&f);
    table(&f, 3, all_err, msgs);
    bad |= finish(dir, "result_table_errors", &f, MPROC__FRAME_RESULT, 7, 0);
    static const int ok1[] = {0};
    static const char *const one[] = {"initialized"};
    begin(&f);
    table(&f, 1, ok1, one);
    bad |= finish(dir, "init_result_table", &f, MPROC__FRAME_INIT_RESULT, 5, 0);
    return bad;
}

static int control_frames(const char *dir) {
    frame f;
    int bad = 0;
    begin(&f);
    bad |= finish(dir, "shutdown", &f, MPROC__FRAME_SHUTDOWN, 99, 0);
    begin(&f);
    put64(&f, 0xcbf29ce484222325ull);
    put32(&f, 12);
    bad |= finish(dir, "hello", &f, MPROC__FRAME_HELLO, 0, 1);
    begin(&f);
    put_bytes(&f, "square\0\x07\0\0\0", 11);
    bad |= finish(dir, "proc_start", &f, MPROC__FRAME_PROC_START, 10, 0);
    begin(&f);
    put32(&f, 4242);
    bad |= finish(dir, "proc_started", &f, MPROC__FRAME_PROC_STARTED, 10, 0);
    begin(&f);
    put32(&f, 0);
    bad |= finish(dir, "proc_exit", &f, MPROC__FRAME_PROC_EXIT, 10, 0);
    begin(&f);
    bad |= finish(dir, "proc_signal", &f, MPROC__FRAME_PROC_SIGNAL, 10, 15);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    int bad = task_frames(argv[1]) | result_frames(argv[1]) | control_frames(argv[1]);
    return bad ? 1 : 0;
}
