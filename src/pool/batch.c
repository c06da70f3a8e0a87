/* batch.c - adaptive batching: many small tasks travel in one frame each way.
 *
 * A hand-written master/worker pays one message, and so a few system calls, per task; for a
 * task that computes x*x that cost is everything. When chunks are queued faster than workers
 * take them and the pool has measured its tasks to be short, dispatch packs up to 64 of them
 * (about 1 ms of measured work, at most 64 KiB of input) into one BATCH frame, and the worker
 * answers with one BATCH of results. A batch also takes at most its share of the work left
 * (guided scheduling), so the last frames are small and the workers finish together. Long
 * tasks are never batched (the estimate is per item, a moving average over completed frames),
 * so load balance for real work is as before; chunks with a time limit and pools with
 * maxtasksperchild are never batched either. If a worker dies in a batch, nobody knows which
 * item killed it: every chunk of the batch is queued again to run alone (faults.c), so only
 * the culprit fails.
 */
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

/* Work per batch: enough that a frame's round trip (tens of us) is small beside it; how the
 * value was chosen is in bench/README.md. */
#define BATCH_TARGET_S 1e-3
#define BATCH_MAX 64u
#define BATCH_ITEM_MAX (16u << 10) /* only small inputs are copied into a batch */

int mproc__batchable(const mproc_pool *p, const mproc__chunk *c) {
    return !c->isolated && !c->solo && !c->ghost && c->in_len <= BATCH_ITEM_MAX && p->opts.maxtasksperchild <= 0 &&
           mproc__chunk_timeout(p, c) <= 0;
}

uint32_t mproc__batch_size(const mproc_pool *p) {
    if (p->svc <= 0) return 1; /* nothing measured yet: send alone until we know */
    double b = BATCH_TARGET_S / p->svc;
    double share = (double)p->outstanding / (2.0 * p->n * p->inflight);
    if (b > share) b = share;
    if (b < 1) return 1;
    return b > BATCH_MAX ? BATCH_MAX : (uint32_t)b;
}

size_t mproc__iter_window(const mproc_pool *p, size_t chunk_items, size_t chunk_bytes) {
    size_t base = (size_t)p->n * (size_t)p->inflight * 2;
    if (base < 4) base = 4;
    if (!chunk_bytes || chunk_bytes > BATCH_ITEM_MAX || p->opts.maxtasksperchild > 0 || p->svc <= 0) return base;
    double b = BATCH_TARGET_S / (p->svc * (double)(chunk_items ? chunk_items : 1));
    if (b < 1) return base;
    return base * (size_t)(b > BATCH_MAX ? BATCH_MAX : b);
}

void mproc__note_service(mproc_pool *p, int w, const mproc__chunk *c) {
    mproc__wstate *ws = &p->ws[w];
    double now = mproc__now();
    /* A frame starts running when it is sent or when the worker's previous frame ended. */
    double start = c->sent > ws->last_done ? c->sent : ws->last_done;
    ws->last_done = now;
    if (!c->frame_items || now <= start) return;
    double per_item = (now - start) / c->frame_items;
    p->svc = p->svc > 0 ? 0.8 * p->svc + 0.2 * per_item : per_item;
}

int mproc__send_batch(mproc_pool *p, int w, mproc__chunk *first, uint32_t frames) {
    size_t total = MPROC__WIRE_HDR_SIZE;
    uint8_t head[MPROC__CHUNK_HEAD_MAX];
    mproc__chunk *c = first;
    for (uint32_t i = 0; i < frames; i++, c = c->next)
        total += mproc__batch_padded(mproc__chunk_head(c, head) + c->in_len);
    uint8_t *buf = calloc(1, total);
    if (!buf) { /* cannot batch now: the worker is killed so its chunks run again alone */
        mproc__pool_kill_worker(p, w);
        return mproc__error(MPROC_ENOMEM, "no memory for a batch of %u tasks", frames);
    }
    size_t off = MPROC__WIRE_HDR_SIZE;
    c = first;
    for (uint32_t i = 0; i < frames; i++, c = c->next) {
        c->lent = 0; /* copied: a batch leaves the transport nothing of it */
        size_t hl = mproc__chunk_head(c, buf + off);
        if (c->in_len) memcpy(buf + off + hl, c->in, c->in_len);
        off += mproc__batch_padded(hl + c->in_len);
    }
    mproc__hdr_encode(buf, MPROC__FRAME_BATCH, first->id, (uint32_t)(total - MPROC__WIRE_HDR_SIZE), frames);
    struct iovec iov = {buf, total};
    int rc = mproc__pool_send(p, w, &iov, 1, NULL); /* buf is freed below */
    free(buf);
    return rc;
}
