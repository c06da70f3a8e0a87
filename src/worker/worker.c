/* worker.c - what runs inside a worker: decode a task frame, run the task on each item, encode
 * the result frame; and the serve loop that does this until the master says stop.
 *
 * Backend-independent (a backend supplies the channel). Results of fixed-size tasks are written
 * straight into the outgoing frame, which is in the channel's frame ring when it gives room
 * there (no copy of the results at all); a by-value task's batch function runs a whole chunk in one
 * tight loop. A task that fails, or returns an unexpected size, switches the chunk to the
 * table layout (status + length per item) so every item keeps its own outcome.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "wire/wire.h"
#include "worker/worker.h"

struct mproc_ctx {
    uint8_t *slot;      /* preallocated result slot of slot_len bytes, or NULL */
    size_t slot_len;
    uint8_t *heap;      /* result outside the slot */
    size_t heap_len, heap_cap;
    int in_slot;        /* the result is in slot */
    int has_result;
    char msg[1024];
};

static char identity_name[64] = "MainProcess";
static int identity_index = -1;
static const char *volatile running_name;
static volatile uint64_t running_id;
/* Read by another thread (an in-rank rank's descriptor watch, rank.c): atomic, relaxed. */
static _Atomic(const char *) last_name;
static _Atomic uint64_t last_id;

void mproc__set_identity(const char *name, int index) {
    /* A plain byte loop: runs in every new Process child, where the code pages of snprintf
     * (or even strnlen and memcpy) are not mapped yet and each costs a page fault. */
    size_t n = 0;
    for (; name && name[n] && n < sizeof identity_name - 1; n++) identity_name[n] = name[n];
    identity_name[n] = '\0';
    identity_index = index;
}
long mproc_current_pid(void) { return (long)getpid(); }
const char *mproc_current_name(void) { return identity_name; }
int mproc_current_index(void) { return identity_index; }

const char *mproc__running_task(uint64_t *id) {
    if (id) *id = running_id;
    return running_name;
}

const char *mproc__last_task(uint64_t *id) {
    if (id) *id = atomic_load_explicit(&last_id, memory_order_relaxed);
    return atomic_load_explicit(&last_name, memory_order_relaxed);
}

void *mproc_result_alloc(mproc_ctx *ctx, size_t len) {
    if (!ctx) return NULL;
    ctx->has_result = 1;
    if (ctx->slot && len == ctx->slot_len) {
        ctx->in_slot = 1;
        return ctx->slot;
    }
    ctx->in_slot = 0;
    if (len > ctx->heap_cap) {
        uint8_t *p = realloc(ctx->heap, len);
        if (!p) return NULL;
        ctx->heap = p;
        ctx->heap_cap = len;
    }
    ctx->heap_len = len;
    return ctx->heap ? ctx->heap : (void *)ctx->msg; /* len 0: any non-NULL pointer */
}

int mproc_return(mproc_ctx *ctx, const void *data, size_t len) {
    if (!ctx || (!data && len)) return mproc__error(MPROC_EINVAL, "mproc_return: NULL data");
    void *dst = mproc_result_alloc(ctx, len);
    if (!dst) return mproc_fail(ctx, "out of memory for a %zu-byte result", len);
    if (len) memmove(dst, data, len);
    return 0;
}

int mproc_fail(mproc_ctx *ctx, const char *fmt, ...) {
    if (!ctx) return MPROC_ETASK;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt ? fmt : "task failed", ap);
    va_end(ap);
    return MPROC_ETASK;
}

int mproc__bad_input_size(mproc_ctx *ctx, const char *task, size_t got, size_t want) {
    mproc_fail(ctx, "task '%s' expects %zu-byte input items, got %zu bytes", task, want, got);
    return MPROC_ESIZE;
}

/* Runs one item; returns 0 or an MPROC_E* status (the message is then in ctx->msg). */
static int run_one(const mproc_task *t, mproc_ctx *ctx, const uint8_t *in, size_t len) {
    ctx->in_slot = 0;
    ctx->has_result = 0;
    ctx->heap_len = 0;
    ctx->msg[0] = '\0';
    int rc = t->run(ctx, in, len);
    if (rc > 0) {
        snprintf(ctx->msg, sizeof ctx->msg, "task '%s' returned %d (tasks return 0 or mproc_fail())",
                 t->name, rc);
        rc = MPROC_ETASK;
    } else if (rc < 0 && strcmp(mproc_err_name(rc), "UNKNOWN") == 0) {
        snprintf(ctx->msg, sizeof ctx->msg, "task '%s' returned unknown code %d", t->name, rc);
        rc = MPROC_ETASK;
    }
    if (rc < 0 && ctx->msg[0] == '\0')
        snprintf(ctx->msg, sizeof ctx->msg, "task '%s' failed: %s", t->name, mproc_strerror(rc));
    return rc;
}

/* Table layout under construction: entries for every item, blobs appended in order. */
typedef struct table_out {
    uint8_t *entries;
    mproc__rbuf blobs;
} table_out;

static int table_put(table_out *tb, uint32_t i, int status, const void *blob, size_t len) {
    if (len > UINT32_MAX) {
        status = MPROC_ETOOBIG;
        blob = "result larger than 4 GiB";
        len = strlen(blob);
    }
    mproc__put_u32(tb->entries + (size_t)i * 8, (uint32_t)status);
    mproc__put_u32(tb->entries + (size_t)i * 8 + 4, (uint32_t)len);
    return mproc__rbuf_append(&tb->blobs, blob, len);
}

static int table_put_ctx(table_out *tb, uint32_t i, int rc, const mproc_ctx *ctx) {
    if (rc < 0) return table_put(tb, i, rc, ctx->msg, strlen(ctx->msg));
    if (ctx->in_slot) return table_put(tb, i, 0, ctx->slot, ctx->slot_len);
    return table_put(tb, i, 0, ctx->heap, ctx->has_result ? ctx->heap_len : 0);
}

/* Assembles header + table-layout payload into one new buffer. */
static int table_finish(table_out *tb, uint16_t kind, uint64_t id, uint32_t count,
                        uint8_t **frame, size_t *frame_len) {
    size_t payload = MPROC__WIRE_RESULT_PREFIX + (size_t)count * 8 + tb->blobs.len;
    if (payload > MPROC__WIRE_MAX_PAYLOAD)
        return mproc__error(MPROC_ETOOBIG, "results of one chunk exceed 2 GiB");
    uint8_t *f = malloc(MPROC__WIRE_HDR_SIZE + payload);
    if (!f) return mproc__error(MPROC_ENOMEM, "no memory for a result frame");
    mproc__hdr_encode(f, kind, id, (uint32_t)payload, 0);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE, count);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 4, 0);
    memcpy(f + MPROC__WIRE_HDR_SIZE + 8, tb->entries, (size_t)count * 8);
    if (tb->blobs.len) memcpy(f + MPROC__WIRE_HDR_SIZE + 8 + (size_t)count * 8, tb->blobs.buf, tb->blobs.len);
    *frame = f;
    *frame_len = MPROC__WIRE_HDR_SIZE + payload;
    return 0;
}

/* Fixed-size results: every item writes into its slot of the outgoing frame. Returns the
 * number of items done before one needed the table layout (== count if all fit). */
static uint32_t run_fixed(const mproc_task *t, const mproc__items *it, mproc_ctx *ctx,
                          uint8_t *out, size_t *cursor, int *rc_out) {
    uint32_t i;
    for (i = 0; i < it->count; i++) {
        size_t save = *cursor, len;
        const uint8_t *in = mproc__items_next(it, i, cursor, &len);
        ctx->slot = out + (size_t)i * t->out_size;
        ctx->slot_len = t->out_size;
        int rc = run_one(t, ctx, in, len);
        if (rc < 0 || !ctx->in_slot) {
            *cursor = save;
            *rc_out = rc;
            return i;
        }
    }
    return i;
}

/* Where a result frame is built: the channel's room (mproc__wchan's place) when it gives one,
 * else the heap. */
typedef struct out_room {
    const mproc__wchan *ch; /* NULL: the heap */
    int placed;             /* the frame is in the channel's room */
} out_room;

static uint8_t *room_get(out_room *r, size_t len) {
    uint8_t *at = r && r->ch && r->ch->place ? r->ch->place(r->ch->impl, len) : NULL;
    if (r) r->placed = at != NULL;
    return at ? at : malloc(len);
}

static void room_drop(out_room *r, uint8_t *frame) {
    if (!(r && r->placed)) free(frame);
    if (r) r->placed = 0;
}

static int execute_items(const mproc_task *t, const mproc__items *it, uint16_t kind,
                         uint64_t id, out_room *room, uint8_t **frame, size_t *frame_len) {
    uint32_t n = it->count, done = 0;
    size_t cursor = 0;
    int rc = 0, stopped_early = 0; /* item `done` ran in run_fixed but needs the table layout */
    mproc_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    uint8_t *fixed = NULL;
    size_t fixed_payload = MPROC__WIRE_RESULT_PREFIX + (size_t)n * t->out_size;
    if (t->out_size && fixed_payload <= MPROC__WIRE_MAX_PAYLOAD) {
        fixed = room_get(room, MPROC__WIRE_HDR_SIZE + fixed_payload);
        if (!fixed) return mproc__error(MPROC_ENOMEM, "no memory for a result frame");
        uint8_t *out = fixed + MPROC__WIRE_HDR_SIZE + MPROC__WIRE_RESULT_PREFIX;
        if (t->batch && it->item_size == t->in_size) {
            t->batch(it->data, out, n);
            done = n;
        } else {
            done = run_fixed(t, it, &ctx, out, &cursor, &rc);
            stopped_early = done < n;
        }
        if (done == n) {
            mproc__hdr_encode(fixed, kind == MPROC__FRAME_INIT ? MPROC__FRAME_INIT_RESULT : MPROC__FRAME_RESULT,
                              id, (uint32_t)fixed_payload, 0);
            mproc__put_u32(fixed + MPROC__WIRE_HDR_SIZE, n);
            mproc__put_u32(fixed + MPROC__WIRE_HDR_SIZE + 4, (uint32_t)t->out_size);
            free(ctx.heap);
            *frame = fixed;
            *frame_len = MPROC__WIRE_HDR_SIZE + fixed_payload;
            return 0;
        }
    }
    /* Table layout from item `done` on; items before it succeeded in their fixed slots. */
    table_out tb = {calloc(n, 8), {NULL, 0, 0}};
    int err = tb.entries ? 0 : MPROC_ENOMEM;
    for (uint32_t i = 0; i < done && !err; i++)
        err = table_put(&tb, i, 0, fixed + MPROC__WIRE_HDR_SIZE + 8 + (size_t)i * t->out_size, t->out_size);
    if (!err && stopped_early) { /* item `done` already ran in run_fixed: record it without rerunning */
        size_t len;
        mproc__items_next(it, done, &cursor, &len);
        err = table_put_ctx(&tb, done, rc, &ctx);
        done++;
    }
    ctx.slot = NULL;
    for (uint32_t i = done; i < n && !err; i++) {
        size_t len;
        const uint8_t *in = mproc__items_next(it, i, &cursor, &len);
        int r = run_one(t, &ctx, in, len);
        err = table_put_ctx(&tb, i, r, &ctx);
    }
    room_drop(room, fixed);
    free(ctx.heap);
    if (!err)
        err = table_finish(&tb, kind == MPROC__FRAME_INIT ? MPROC__FRAME_INIT_RESULT : MPROC__FRAME_RESULT,
                           id, n, frame, frame_len);
    else
        err = mproc__error(MPROC_ENOMEM, "no memory for results");
    free(tb.entries);
    mproc__rbuf_free(&tb.blobs);
    return err;
}

static int execute_in(uint16_t kind, uint64_t id, uint32_t task_id, const uint8_t *payload,
                     size_t payload_len, out_room *room, uint8_t **frame, size_t *frame_len) {
    *frame = NULL;
    *frame_len = 0;
    mproc__items it;
    int rc = mproc__items_decode(payload, payload_len, &it);
    if (rc < 0) return rc;
    const mproc_task *t = mproc__registry_get(task_id);
    if (!t) return mproc__error(MPROC_EPROTO, "frame names task id %u; this worker has %zu tasks",
                                task_id, mproc__registry_count());
    running_id = id;
    running_name = t->name;
    atomic_store_explicit(&last_id, id, memory_order_relaxed);
    atomic_store_explicit(&last_name, t->name, memory_order_relaxed);
    rc = execute_items(t, &it, kind, id, room, frame, frame_len);
    running_name = NULL;
    return rc;
}

int mproc__execute(uint16_t kind, uint64_t id, uint32_t task_id, const uint8_t *payload,
                   size_t payload_len, uint8_t **frame, size_t *frame_len) {
    return execute_in(kind, id, task_id, payload, payload_len, NULL, frame, frame_len);
}

/* Sends a malloc'd frame and frees it (the channel may take it over instead of copying it). */
static int send_and_free(const mproc__wchan *ch, uint8_t *frame, size_t len) {
    if (ch->send_owned) return ch->send_owned(ch->impl, frame, len);
    struct iovec iov = {frame, len};
    int rc = ch->send(ch->impl, &iov, 1);
    free(frame);
    return rc;
}

static int send_hello(const mproc__wchan *ch, int index) {
    uint8_t f[MPROC__WIRE_HDR_SIZE + MPROC__WIRE_HELLO_SIZE];
    mproc__hdr_encode(f, MPROC__FRAME_HELLO, 0, MPROC__WIRE_HELLO_SIZE, (uint32_t)index);
    mproc__hello_encode(f + MPROC__WIRE_HDR_SIZE, mproc__registry_fingerprint(), (uint32_t)mproc__registry_count());
    struct iovec iov = {f, sizeof f};
    return ch->send(ch->impl, &iov, 1);
}

/* A TASK or BATCH of cancelled calls that the worker had not started (backend.h's skip): each
 * TASK is answered with an empty RESULT (payload length 0), which the master drops, instead of
 * run. */
static int skipped(const mproc__wchan *ch, const mproc__frame_hdr *h) {
    return (h->kind == MPROC__FRAME_TASK || h->kind == MPROC__FRAME_BATCH) && ch->skipped && ch->skipped(ch->impl, h->id);
}

static int empty_result(uint64_t id, uint8_t **frame, size_t *len) {
    *frame = malloc(MPROC__WIRE_HDR_SIZE);
    if (!*frame) return mproc__error(MPROC_ENOMEM, "no memory for a reply");
    mproc__hdr_encode(*frame, MPROC__FRAME_RESULT, id, 0, 0);
    *len = MPROC__WIRE_HDR_SIZE;
    return 0;
}

/* Runs every TASK of a BATCH and answers with one BATCH of their RESULTs, so many small tasks
 * cost one message each way. */
static int serve_batch(const mproc__wchan *ch, const mproc__frame_hdr *bh, const uint8_t *payload) {
    mproc__rbuf out = {NULL, 0, 0};
    if (!mproc__rbuf_reserve(&out, MPROC__WIRE_HDR_SIZE)) return mproc__error(MPROC_ENOMEM, "no memory for a batch");
    out.len = MPROC__WIRE_HDR_SIZE;
    size_t cursor = 0;
    uint32_t n = 0;
    int skip = skipped(ch, bh);
    mproc__frame_hdr h;
    const uint8_t *sub;
    size_t sub_len;
    int rc;
    while ((rc = mproc__batch_next(payload, bh->length, &cursor, &h, &sub, &sub_len)) == 1) {
        if (h.kind != MPROC__FRAME_TASK) {
            rc = mproc__error(MPROC_EPROTO, "a batch holds a frame of kind %u", h.kind);
            break;
        }
        uint8_t *res;
        size_t res_len;
        rc = skip ? empty_result(h.id, &res, &res_len)
                             : mproc__execute(h.kind, h.id, h.arg, sub + MPROC__WIRE_HDR_SIZE, h.length, &res, &res_len);
        if (rc < 0) break;
        size_t pad = mproc__batch_padded(res_len) - res_len;
        static const uint8_t zeros[8];
        rc = mproc__rbuf_append(&out, res, res_len);
        if (rc == 0 && pad) rc = mproc__rbuf_append(&out, zeros, pad);
        free(res);
        if (rc < 0) break;
        n++;
    }
    if (rc == 0 && out.len - MPROC__WIRE_HDR_SIZE > MPROC__WIRE_MAX_PAYLOAD)
        rc = mproc__error(MPROC_ETOOBIG, "batch results exceed 2 GiB");
    if (rc == 0) {
        mproc__hdr_encode(out.buf, MPROC__FRAME_BATCH, bh->id, (uint32_t)(out.len - MPROC__WIRE_HDR_SIZE), n);
        fflush(stdout);
        rc = send_and_free(ch, out.buf, out.len);
        out.buf = NULL; /* the channel's now */
    }
    mproc__rbuf_free(&out);
    return rc < 0 ? rc : 1;
}

/* Handles one received frame; returns 1 to go on, 0 on SHUTDOWN, or an error. */
static int serve_frame(const mproc__wchan *ch, const uint8_t *frame, size_t len) {
    mproc__frame_hdr h;
    int rc = mproc__hdr_decode(frame, len, &h);
    if (rc < 0) return rc;
    if ((size_t)h.length != len - MPROC__WIRE_HDR_SIZE)
        return mproc__error(MPROC_EPROTO, "frame says %u payload bytes but carries %zu", h.length,
                            len - MPROC__WIRE_HDR_SIZE);
    switch (h.kind) {
    case MPROC__FRAME_TASK:
    case MPROC__FRAME_INIT: {
        uint8_t *out;
        size_t out_len;
        if (skipped(ch, &h)) {
            uint8_t empty[MPROC__WIRE_HDR_SIZE];
            mproc__hdr_encode(empty, MPROC__FRAME_RESULT, h.id, 0, 0);
            struct iovec iov = {empty, sizeof empty};
            rc = ch->send(ch->impl, &iov, 1);
            return rc < 0 ? rc : 1;
        }
        out_room room = {ch->send_placed ? ch : NULL, 0};
        rc = execute_in(h.kind, h.id, h.arg, frame + MPROC__WIRE_HDR_SIZE, h.length, &room, &out, &out_len);
        if (rc < 0) return rc;
        fflush(stdout); /* what a task printed appears now, not when the worker exits */
        rc = room.placed ? ch->send_placed(ch->impl, out, out_len) : send_and_free(ch, out, out_len);
        return rc < 0 ? rc : 1;
    }
    case MPROC__FRAME_BATCH:
        return serve_batch(ch, &h, frame + MPROC__WIRE_HDR_SIZE);
    case MPROC__FRAME_SHUTDOWN:
        return 0;
    default:
        if (ch->on_frame) {
            rc = ch->on_frame(ch->impl, h.kind, h.id, frame, len);
            return rc < 0 ? rc : 1;
        }
        return mproc__error(MPROC_EPROTO, "worker got an unexpected frame of kind %u", h.kind);
    }
}

#define KEEP_TRIM_THRESHOLD (512 << 20)

void mproc__worker_keep_big_blocks(void) {
    /* Frames of megabytes arrive again and again: keep such blocks in the heap instead of
     * mapping (and page-faulting) fresh memory for each one. Workers are mproc's processes. */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD);
}

void mproc__worker_give_back_heap(void) {
    malloc_trim(0);
    /* glibc's malloc_trim gives back the free pages inside every arena but shrinks only the
     * main arena's top. A thread's arena shrinks its top only when a free() of 64 KiB or more
     * lands in it while that top is past M_TRIM_THRESHOLD (glibc's heap_trim), which
     * keep_big_blocks holds at 512 MiB: so a 40 MiB block freed into it stayed for good. A fork
     * worker runs on the arena of the master's thread that forked it, a rank's supervisor on
     * its own. One such free here, with the threshold at 0 for it, shrinks this thread's (the
     * threshold is back to keep_big_blocks' own at once: only its callers call this). */
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER; /* the threshold is global */
    pthread_mutex_lock(&one_at_a_time);
    mallopt(M_TRIM_THRESHOLD, 0);
    volatile char *p = malloc(64 << 10); /* a chunk just past 64 KiB, below any mmap threshold */
    if (p) {
        p[0] = 0;
        free((void *)p);
    }
    mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD);
    pthread_mutex_unlock(&one_at_a_time);
}

int mproc__worker_serve(const mproc__wchan *ch, int index) {
    mproc__worker_keep_big_blocks();
    int rc = send_hello(ch, index);
    while (rc >= 0) {
        uint8_t *frame = NULL;
        size_t len = 0;
        rc = ch->recv(ch->impl, &frame, &len);
        if (rc < 0) break;
        rc = serve_frame(ch, frame, len);
        if (ch->release) ch->release(ch->impl, frame);
        else free(frame);
        if (rc == 0) return 0;
    }
    return rc;
}

int mproc__process_main(const mproc_task *target, const void *arg, size_t len, const char *name) {
    mproc_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    running_name = target->name;
    int rc = run_one(target, &ctx, arg, len);
    running_name = NULL;
    free(ctx.heap);
    if (rc == 0) return 0;
    fflush(stdout);
    fprintf(stderr, "Process %s: %s\n", name, ctx.msg);
    fflush(stderr);
    return 1;
}
