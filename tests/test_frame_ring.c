/* test_frame_ring.c - unit tests of the frame rings in src/backends/frame_ring.c: frames round
 * trip, a full ring refuses (the caller then uses its socket) and takes frames again once
 * released, frames never straddle the end (the skip is released with the frame after it),
 * references outside the ring are refused, a wild tail written by the other side reads as
 * "full" rather than letting the writer overwrite, a second mapping of the memfd (the worker's)
 * sees the same bytes, room reserved for a frame received in place is filled later and freed
 * with the next frame released, pages that big frames made memory past the kept part go back
 * once small frames have stayed below it a while and no frame lies there (never on a ring made
 * to keep them), and bad sizes are refused with a sentence. No workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/frame_ring.h"
#include "common/common.h"
#include "wire/wire.h"

#define RING (64u * 1024u)

/* A pair on a fresh memfd, as the backends make them (they use spawn.h's tracked memfd). */
static int make_pair(size_t size, mproc__ring_pair *p, int *fd) {
    *fd = memfd_create("test-rings", MFD_CLOEXEC);
    assert_true(*fd >= 0);
    int rc = mproc__ring_pair_create(*fd, size, p);
    if (rc < 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

static int put_bytes(mproc__ring *r, uint8_t fill, size_t len, uint64_t *pos) {
    uint8_t *b = malloc(len);
    assert_non_null(b);
    memset(b, fill, len);
    struct iovec v = {b, len};
    int ok = mproc__ring_put(r, &v, 1, len, pos);
    free(b);
    return ok;
}

static void round_trip_between_two_mappings(void **state) {
    (void)state;
    mproc__ring_pair a, b;
    int fd;
    assert_int_equal(make_pair(RING, &a, &fd), 0);
    assert_int_equal(mproc__ring_pair_map(fd, &b), 0); /* the worker's view */
    close(fd);
    assert_int_equal(a.down.size, RING);
    uint8_t hdr[24] = {1, 2, 3};
    uint8_t body[1000];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)i;
    struct iovec v[2] = {{hdr, sizeof hdr}, {body, sizeof body}};
    uint64_t pos;
    assert_int_equal(mproc__ring_put(&a.down, v, 2, sizeof hdr + sizeof body, &pos), 1);
    uint8_t *f = mproc__ring_at(&b.down, pos, sizeof hdr + sizeof body);
    assert_non_null(f);
    assert_memory_equal(f, hdr, sizeof hdr);
    assert_memory_equal(f + sizeof hdr, body, sizeof body);
    /* The up ring is another region: the same position there holds other bytes. */
    assert_true(mproc__ring_at(&b.up, pos, 8) != f);
    /* A reference frame names it. */
    uint8_t ref[24];
    mproc__ring_ref_encode(ref, pos, sizeof hdr + sizeof body);
    mproc__frame_hdr h;
    assert_int_equal(mproc__hdr_decode(ref, sizeof ref, &h), 0);
    assert_int_equal(h.kind, MPROC__FRAME_RING);
    assert_int_equal(h.id, pos);
    assert_int_equal(h.arg, sizeof hdr + sizeof body);
    assert_int_equal(h.length, 0);
    mproc__ring_pair_unmap(&a);
    mproc__ring_pair_unmap(&b);
}

static void full_ring_refuses_until_released(void **state) {
    (void)state;
    mproc__ring_pair p;
    int fd;
    assert_int_equal(make_pair(RING, &p, &fd), 0);
    close(fd);
    uint64_t pos[8];
    int n = 0;
    while (n < 8 && put_bytes(&p.down, (uint8_t)n, 10000, &pos[n])) n++;
    assert_int_equal(n, 6); /* 6 x 10,048 bytes fit in 64 KiB, a seventh does not */
    uint64_t extra;
    assert_int_equal(put_bytes(&p.down, 9, 10000, &extra), 0);
    /* Frames bigger than half the ring never go in: they would starve everything else. */
    assert_int_equal(put_bytes(&p.up, 9, RING / 2 + 1, &extra), 0);
    /* Releasing the first two makes room again; the new frame wraps to the start. */
    mproc__ring_release_to(&p.down, mproc__ring_end(pos[1], 10000));
    uint64_t again;
    assert_int_equal(put_bytes(&p.down, 7, 10000, &again), 1);
    assert_int_equal(again % RING, 0); /* skipped the tail end: never straddles */
    assert_int_equal(again, RING);
    uint8_t *f = mproc__ring_at(&p.down, again, 10000);
    assert_non_null(f);
    assert_int_equal(f[0], 7);
    assert_int_equal(f[9999], 7);
    /* The untouched frames are still whole. */
    assert_int_equal(mproc__ring_at(&p.down, pos[5], 10000)[9999], 5);
    mproc__ring_pair_unmap(&p);
}

/* A receive straight into the ring (backends/mpi/exec_give.c): room reserved, filled after the
 * call and resolved through its reference; room reserved and never referenced (the frame left
 * the ring) is freed with the next frame released after it; a full ring reserves nothing. */
static void reserved_room_is_filled_later_and_freed_with_the_next(void **state) {
    (void)state;
    mproc__ring_pair a, b;
    int fd;
    assert_int_equal(make_pair(RING, &a, &fd), 0);
    assert_int_equal(mproc__ring_pair_map(fd, &b), 0);
    close(fd);
    size_t len = 24 + 10000;
    uint64_t pos, hole, next;
    uint8_t *at = mproc__ring_reserve(&a.down, len, &pos);
    assert_non_null(at);
    mproc__hdr_encode(at, MPROC__FRAME_TASK, 5, 10000, 0);
    memset(at + 24, 0x5a, 10000);
    uint8_t ref[24], *f;
    mproc__ring_ref_encode(ref, pos, len);
    uint64_t cursor = 0;
    size_t got = 0;
    assert_non_null(f = mproc__ring_resolve(&b.down, ref, &cursor, &got)); /* the worker's view */
    assert_int_equal(got, len);
    assert_int_equal(mproc__hdr_id(f), 5);
    assert_int_equal(f[24 + 9999], 0x5a);
    /* A reservation that is never referenced, then a frame after it. */
    assert_non_null(mproc__ring_reserve(&a.down, len, &hole));
    assert_true(hole > pos);
    assert_int_equal(put_bytes(&a.down, 3, 10000, &next), 1);
    assert_true(next > hole);
    /* Fill the rest; then releasing the last frame frees the hole too. */
    uint64_t p2;
    int n = 0;
    while (mproc__ring_reserve(&a.down, len, &p2)) n++;
    assert_int_equal(n, 3); /* 6 frames of 10,048+ bytes in 64 KiB */
    mproc__ring_release_to(&a.down, mproc__ring_end(next, 10000));
    assert_non_null(mproc__ring_reserve(&a.down, len, &p2));
    assert_non_null(mproc__ring_reserve(&a.down, len, &p2));
    assert_int_equal(p2 % RING, mproc__ring_end(pos, len) % RING); /* where the hole was */
    mproc__ring_pair_unmap(&a);
    mproc__ring_pair_unmap(&b);
}

static void references_outside_the_ring_are_refused(void **state) {
    (void)state;
    mproc__ring_pair p;
    int fd;
    assert_int_equal(make_pair(RING, &p, &fd), 0);
    close(fd);
    assert_null(mproc__ring_at(&p.up, RING - 64, 128));   /* runs past the end */
    assert_null(mproc__ring_at(&p.up, 3, 100));           /* not a frame's start */
    assert_null(mproc__ring_at(&p.up, 0, RING + 1));      /* longer than the ring */
    assert_non_null(mproc__ring_at(&p.up, 5 * (uint64_t)RING + 64, 128)); /* any lap */
    mproc__ring_pair_unmap(&p);
}

static void a_wild_tail_reads_as_full(void **state) {
    (void)state;
    mproc__ring_pair p;
    int fd;
    assert_int_equal(make_pair(RING, &p, &fd), 0);
    close(fd);
    uint64_t pos;
    assert_int_equal(put_bytes(&p.up, 1, 1000, &pos), 1);
    atomic_store(&p.up.ctl->tail, UINT64_C(1) << 40); /* ahead of the head: nonsense */
    assert_int_equal(put_bytes(&p.up, 2, 1000, &pos), 0);
    atomic_store(&p.up.ctl->tail, 0); /* an honest tail again */
    assert_int_equal(put_bytes(&p.up, 2, 1000, &pos), 1);
    mproc__ring_pair_unmap(&p);
}

/* How many of the pages in [at, at+len) are memory now (mincore; at is page-aligned). */
static size_t resident_pages(uint8_t *at, size_t len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, count = 0;
    unsigned char *v = malloc(n);
    assert_non_null(v);
    assert_int_equal(mincore(at, len, v), 0);
    for (size_t i = 0; i < n; i++) count += v[i] & 1;
    free(v);
    return count;
}

/* Puts and releases n small frames; the last one's position. */
static uint64_t small_frames(mproc__ring *w, mproc__ring *rd, int n) {
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(put_bytes(w, 0x22, 1000, &pos), 1);
        mproc__ring_release_to(rd, mproc__ring_end(pos, 1000));
    }
    return pos;
}

/* An 8 MiB frame makes pages past MPROC__RING_KEEP memory; they go back once
 * MPROC__RING_TRIM_AFTER frames in a row stayed below it and none lies there, never while a
 * frame still lies there (its bytes stay), and never on a ring made to keep its pages. */
static void pages_past_the_kept_part_go_back_once_free(void **state) {
    (void)state;
    const size_t big = (size_t)8 << 20, size = (size_t)32 << 20, keep = MPROC__RING_KEEP;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    mproc__ring_pair a, b;
    int fd;
    assert_int_equal(make_pair(size, &a, &fd), 0);
    assert_int_equal(mproc__ring_pair_map(fd, &b), 0); /* the reader's view */
    close(fd);
    /* The whole pages past the kept part up to the ring's end (pages over 4 KiB: the rings
     * start 4 KiB into one, and the one the up ring starts in is shared with the down ring's
     * end); those the 8 MiB frame reached; the whole pages of the kept part. */
    uint8_t *past = (uint8_t *)(((uintptr_t)b.down.data + keep + page - 1) & ~(page - 1));
    uint8_t *ring_end = (uint8_t *)(((uintptr_t)b.down.data + size) & ~(page - 1));
    size_t past_len = (size_t)(ring_end - past), big_past = (size_t)(b.down.data + big - past) / page * page;
    uint8_t *kept = (uint8_t *)(((uintptr_t)b.down.data + page - 1) & ~(page - 1));
    size_t keep_pages = (size_t)(b.down.data + keep - kept) / page;
    uint64_t p1, p2, p3;
    assert_int_equal(put_bytes(&a.down, 0xab, big, &p1), 1);
    assert_int_equal(p1, 0);
    assert_int_equal(resident_pages(past, big_past), big_past / page);
    /* A small frame after it, the big one still in use: it goes after the big one. */
    assert_int_equal(put_bytes(&a.down, 0x11, 1000, &p2), 1);
    assert_true(p2 >= big);
    mproc__ring_release_to(&b.down, mproc__ring_end(p1, big));
    /* Many small frames at the start while the one at p2 still lies past the kept part:
     * nothing is given back and its bytes are intact. */
    for (int i = 0; i < (int)MPROC__RING_TRIM_AFTER + 1; i++) {
        assert_int_equal(put_bytes(&a.down, 0x22, 1000, &p3), 1);
        assert_true(p3 % size < keep);
    }
    uint8_t *second = mproc__ring_at(&b.down, p2, 1000);
    assert_non_null(second);
    for (size_t i = 0; i < 1000; i++) assert_int_equal(second[i], 0x11);
    assert_int_equal(resident_pages(past, big_past), big_past / page);
    /* All released: the next frames find nothing past the kept part, which goes back only
     * once MPROC__RING_TRIM_AFTER of them have stayed below it. */
    mproc__ring_release_to(&b.down, mproc__ring_end(p3, 1000));
    assert_int_equal(put_bytes(&a.down, 0x55, big, &p1), 1); /* reached past it again: counts anew */
    mproc__ring_release_to(&b.down, mproc__ring_end(p1, big));
    small_frames(&a.down, &b.down, (int)MPROC__RING_TRIM_AFTER - 1);
    assert_int_equal(resident_pages(past, big_past), big_past / page);
    small_frames(&a.down, &b.down, 1);
    assert_int_equal(resident_pages(past, past_len), 0);
    assert_int_equal(resident_pages(kept, keep_pages * page), keep_pages); /* the kept part stays */
    /* Given-back pages read as zeros and take the next big frame like fresh ones. */
    assert_int_equal(past[page], 0);
    uint64_t p5;
    assert_int_equal(put_bytes(&a.down, 0x44, big, &p5), 1);
    uint8_t *again = mproc__ring_at(&b.down, p5, big);
    assert_non_null(again);
    assert_int_equal(again[0], 0x44);
    assert_int_equal(again[big - 1], 0x44);
    mproc__ring_pair_unmap(&a);
    mproc__ring_pair_unmap(&b);

    /* A ring made to keep its pages (an MPI executor's up ring) never gives them back, and the
     * other side's mapping, made after, knows it. */
    assert_int_equal(make_pair(size, &a, &fd), 0);
    mproc__ring_keep_pages(&a.up);
    assert_int_equal(mproc__ring_pair_map(fd, &b), 0);
    close(fd);
    assert_int_equal(put_bytes(&b.up, 0x66, big, &p1), 1); /* the worker writes up */
    mproc__ring_release_to(&a.up, mproc__ring_end(p1, big));
    small_frames(&b.up, &a.up, 2 * (int)MPROC__RING_TRIM_AFTER);
    past = (uint8_t *)(((uintptr_t)a.up.data + keep + page - 1) & ~(page - 1));
    big_past = (size_t)(a.up.data + big - past) / page * page;
    assert_int_equal(resident_pages(past, big_past), big_past / page);
    mproc__ring_pair_unmap(&a);
    mproc__ring_pair_unmap(&b);
}

static void bad_sizes_are_refused(void **state) {
    (void)state;
    mproc__ring_pair p;
    int fd;
    assert_int_equal(make_pair(1000, &p, &fd), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "64 KiB"));
    assert_int_equal(fd, -1);
    assert_int_equal(make_pair(RING + 100, &p, &fd), MPROC_EINVAL);
    /* A memfd too small for two rings is not mapped. */
    int small = memfd_create("small", 0);
    assert_true(small >= 0);
    assert_int_equal(ftruncate(small, 4096), 0);
    assert_int_equal(mproc__ring_pair_map(small, &p), MPROC_EINVAL);
    close(small);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_between_two_mappings),
        cmocka_unit_test(full_ring_refuses_until_released),
        cmocka_unit_test(reserved_room_is_filled_later_and_freed_with_the_next),
        cmocka_unit_test(references_outside_the_ring_are_refused),
        cmocka_unit_test(a_wild_tail_reads_as_full),
        cmocka_unit_test(pages_past_the_kept_part_go_back_once_free),
        cmocka_unit_test(bad_sizes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
