/* frame_ring.c - frames through shared memory between a process and one worker (frame_ring.h).
 *
 * A memfd rather than an anonymous shared mapping: an MPI executor is forked by the fork
 * server, not by the rank that relays for it, so the mapping has to travel as a descriptor.
 * The memfd is made by the caller, through spawn.h, so that no other child inherits it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/frame_ring.h"
#include "common/common.h"
#include "wire/wire.h"

/* The control page, then the down ring's bytes, then the up ring's. */
#define CTL_BYTES 4096u
_Static_assert(2 * sizeof(mproc__ring_ctl) + 2 * sizeof(mproc__mailbox) <= CTL_BYTES, "control page");
#define ALIGN 64u
/* Past this offset a frame goes back to the ring's start when that part is free already. */
#define RECYCLE_AFTER (256u * 1024u)

static void lay_out(mproc__ring_pair *p, void *base, size_t map_len) {
    size_t size = (map_len - CTL_BYTES) / 2;
    p->base = base;
    p->map_len = map_len;
    mproc__mailbox *mail = (mproc__mailbox *)((mproc__ring_ctl *)base + 2);
    mproc__ring_ctl *ctl = base;
    p->down = (mproc__ring){ctl, mail, (uint8_t *)base + CTL_BYTES, size, 0, 0, ctl[0].keep_pages != 0};
    p->up = (mproc__ring){ctl + 1, mail + 1, (uint8_t *)base + CTL_BYTES + size, size, 0, 0, ctl[1].keep_pages != 0};
}

void mproc__ring_keep_pages(mproc__ring *r) {
    r->ctl->keep_pages = 1;
    r->keep_pages = 1;
}

static int map_fd(int fd, size_t map_len, mproc__ring_pair *p) {
    void *m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return mproc__error(MPROC_ESYS, "mapping frame rings: %s", strerror(errno));
    lay_out(p, m, map_len);
    return 0;
}

int mproc__ring_pair_create(int memfd, size_t ring_size, mproc__ring_pair *p) {
    memset(p, 0, sizeof *p);
    if (ring_size < 65536 || ring_size % 4096 || ring_size > ((size_t)1 << 30))
        return mproc__error(MPROC_EINVAL, "frame rings of %zu bytes: want 64 KiB..1 GiB, a multiple of 4096",
                            ring_size);
    size_t map_len = CTL_BYTES + 2 * ring_size;
    if (ftruncate(memfd, (off_t)map_len) < 0)
        return mproc__error(MPROC_ESYS, "sizing frame rings: %s", strerror(errno));
    /* Fresh memfd pages are zero: both rings start empty at position 0. */
    return map_fd(memfd, map_len, p);
}

int mproc__ring_pair_map(int memfd, mproc__ring_pair *p) {
    memset(p, 0, sizeof *p);
    struct stat st;
    if (fstat(memfd, &st) < 0) return mproc__error(MPROC_ESYS, "frame rings: fstat: %s", strerror(errno));
    if (st.st_size < (off_t)(CTL_BYTES + 2 * 65536))
        return mproc__error(MPROC_EINVAL, "frame rings: a %lld-byte memfd is too small", (long long)st.st_size);
    return map_fd(memfd, (size_t)st.st_size, p);
}

void mproc__ring_pair_unmap(mproc__ring_pair *p) {
    if (p->base) munmap(p->base, p->map_len);
    memset(p, 0, sizeof *p);
}

int mproc__ring_size_wanted(const char *env, int workers, size_t *size) {
    const char *v = mproc__env(env);
    if (!v || !*v) {
        size_t s = ((size_t)512 << 20) / (size_t)(workers > 0 ? workers : 1);
        if (s > ((size_t)32 << 20)) s = (size_t)32 << 20;
        if (s < ((size_t)256 << 10)) s = (size_t)256 << 10;
        *size = s & ~(size_t)4095;
        return 0;
    }
    uint64_t b;
    if (mproc__parse_count(v, &b) < 0 || (b != 0 && (b < 65536 || b > (1ull << 30))))
        return mproc__error(MPROC_EINVAL, "%s='%s': want 0 (no rings) or bytes, 65536..1073741824", env, v);
    *size = (size_t)b & ~(size_t)4095;
    return 0;
}

static size_t rounded(size_t len) { return (len + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

uint64_t mproc__ring_end(uint64_t pos, size_t len) { return pos + rounded(len); }

/* Gives back the pages past MPROC__RING_KEEP that big frames made memory: the caller saw that
 * no frame (released or not, referenced or only reserved) lies there, and only the writer puts
 * frames anywhere, so neither side touches them until the writer does again (fresh zero pages
 * then). A failure only keeps the memory. */
static void trim(mproc__ring *r) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)r->data + MPROC__RING_KEEP + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)r->data + r->touched + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)r->data + r->size) & ~(page - 1); /* a page shared with the next ring stays */
    if (to > end) to = end;
    if (to > from) (void)madvise((void *)from, to - from, MADV_REMOVE);
    r->touched = MPROC__RING_KEEP;
}

/* No frame (released or not) lies past MPROC__RING_KEEP: the frames in use all sit below it,
 * or none is. */
static int none_past_keep(const mproc__ring *r, uint64_t head, uint64_t tail) {
    uint64_t used = head - tail;
    return used == 0 || (tail <= head && (size_t)(tail % r->size) + used <= MPROC__RING_KEEP);
}

int mproc__ring_trim_idle(mproc__ring *r) {
    if (!r->data || r->keep_pages || r->touched <= MPROC__RING_KEEP) return 0;
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_relaxed); /* ours */
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    if (!none_past_keep(r, head, tail)) return 1;
    trim(r);
    return 0;
}

int mproc__ring_trim_quiet(mproc__ring *r) {
    if (!r->data || r->size <= MPROC__RING_KEEP) return 0;
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    if (head != tail) return 1;
    r->touched = r->size; /* which pages the writer reached is the writer's to know: all of them */
    trim(r);
    return 0;
}

uint8_t *mproc__ring_reserve(mproc__ring *r, size_t total, uint64_t *pos) {
    size_t need = rounded(total);
    if (!r->data || need > r->size / 2) return NULL;
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_relaxed); /* ours */
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    size_t off = (size_t)(head % r->size);
    uint64_t start = off + need > r->size ? head + (r->size - off) : head; /* never straddle */
    uint64_t used = head - tail; /* a wild tail (the other side's bug) reads as "full" */
    if (tail > head || used > r->size) return NULL;
    /* Back to the ring's start as soon as the frame fits there: a stream of chunks then cycles
     * through the first few hundred KiB, which stay in cache, rather than through all of it
     * (measured: a fork map 1.3x faster with the same ring size). */
    uint64_t lap = head + (r->size - off);
    if (off >= RECYCLE_AFTER && start != lap && lap + need - tail <= r->size) start = lap;
    if (start + need - tail > r->size) return NULL;
    /* Pages past MPROC__RING_KEEP that big frames made memory go back once frames have stayed
     * below it for a while, no frame lies there (the frames in use all sit below it, or none
     * is) and this one does not go there. */
    size_t end_off = (size_t)(start % r->size) + need;
    if (end_off > MPROC__RING_KEEP) r->small_run = 0;
    else if (r->small_run < MPROC__RING_TRIM_AFTER) r->small_run++;
    if (r->touched > MPROC__RING_KEEP && r->small_run >= MPROC__RING_TRIM_AFTER && !r->keep_pages &&
        none_past_keep(r, head, tail))
        trim(r);
    if (end_off > r->touched) r->touched = end_off;
    atomic_store_explicit(&r->ctl->head, start + need, memory_order_release);
    *pos = start;
    return r->data + (size_t)(start % r->size);
}

int mproc__ring_put(mproc__ring *r, const struct iovec *iov, int iovcnt, size_t total, uint64_t *pos) {
    uint8_t *dst = mproc__ring_reserve(r, total, pos);
    if (!dst) return 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    return 1;
}

uint8_t *mproc__ring_at(const mproc__ring *r, uint64_t pos, size_t len) {
    if (!r->data || len > r->size || pos % ALIGN) return NULL;
    size_t off = (size_t)(pos % r->size);
    if (off + len > r->size) return NULL;
    return r->data + off;
}

uint8_t *mproc__ring_resolve(const mproc__ring *r, const uint8_t *ref, uint64_t *next, size_t *len) {
    uint64_t pos = mproc__hdr_id(ref);
    size_t n = mproc__hdr_arg(ref);
    if (pos < *next || pos - *next >= r->size) return NULL;
    uint8_t *f = mproc__ring_at(r, pos, n);
    mproc__frame_hdr h;
    if (!f || mproc__hdr_decode(f, n, &h) < 0 || (size_t)h.length != n - MPROC__WIRE_HDR_SIZE) return NULL;
    *next = mproc__ring_end(pos, n);
    *len = n;
    return f;
}

void mproc__ring_release_to(mproc__ring *r, uint64_t end) {
    atomic_store_explicit(&r->ctl->tail, end, memory_order_release);
}

void mproc__ring_ref_encode(uint8_t out[24], uint64_t pos, size_t len) {
    mproc__hdr_encode(out, MPROC__FRAME_RING, pos, 0, (uint32_t)len);
}
