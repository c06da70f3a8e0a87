/* test_wire.c - unit tests of the frame encoding in src/wire.c: byte order, header validation,
 * TASK/INIT and RESULT payload decoding (valid frames round trip, every kind of malformed frame is
 * MPROC_EPROTO with a sentence), the item walkers, the result buffer and iovec totals. No workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "wire/wire.h"

/* A little payload builder: frames are assembled here byte by byte, the way a peer would. */
typedef struct wbuf {
    uint8_t b[4096];
    size_t n;
} wbuf;

static void w_u32(wbuf *w, uint32_t v) {
    assert_true(w->n + 4 <= sizeof w->b);
    mproc__put_u32(w->b + w->n, v);
    w->n += 4;
}

static void w_bytes(wbuf *w, const void *p, size_t len) {
    assert_true(w->n + len <= sizeof w->b);
    if (len)
        memcpy(w->b + w->n, p, len);
    w->n += len;
}

/* A rejection must be EPROTO and leave a sentence naming the problem. */
static void assert_eproto(int rc, const char *needle) {
    assert_int_equal(rc, MPROC_EPROTO);
    assert_non_null(strstr(mproc_last_error(), "malformed"));
    if (needle)
        assert_non_null(strstr(mproc_last_error(), needle));
}

/* ------------------------------------------------------------------------------------------ */

static void test_put_get_endianness(void **state) {
    (void)state;
    uint8_t b[17];
    memset(b, 0xEE, sizeof b);
    mproc__put_u16(b + 1, 0x1234);
    assert_int_equal(b[0], 0xEE);
    assert_int_equal(b[1], 0x34);
    assert_int_equal(b[2], 0x12);
    assert_int_equal(b[3], 0xEE);
    assert_int_equal(mproc__get_u16(b + 1), 0x1234);

    static const uint8_t le32[4] = {0x44, 0x33, 0x22, 0x11};
    mproc__put_u32(b + 3, 0x11223344u); /* odd offset: unaligned */
    assert_memory_equal(b + 3, le32, 4);
    assert_int_equal(b[7], 0xEE);
    assert_int_equal(mproc__get_u32(b + 3), 0x11223344u);

    static const uint8_t le64[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    mproc__put_u64(b + 9, 0x0102030405060708ull);
    assert_memory_equal(b + 9, le64, 8);
    assert_int_equal(b[8], 0xEE);
    assert_true(mproc__get_u64(b + 9) == 0x0102030405060708ull);

    static const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_true(mproc__get_u64(ones) == UINT64_MAX);
    assert_int_equal(mproc__get_u32(ones), 0xFFFFFFFFu);
    assert_int_equal(mproc__get_u16(ones), 0xFFFF);
    static const uint8_t hi[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    assert_true(mproc__get_u64(hi) == 0x8000000000000000ull);
    assert_int_equal(mproc__get_u32(hi + 4), 0x80000000u);
}

static void test_hdr_round_trip(void **state) {
    (void)state;
    uint8_t b[MPROC__WIRE_HDR_SIZE];
    mproc__hdr_encode(b, MPROC__FRAME_RESULT, 0x1122334455667788ull, 1234, 0xCAFEu);
    assert_memory_equal(b, "MPRC", 4);
    assert_int_equal(b[4], 1);
    assert_int_equal(b[5], 0);
    assert_int_equal(b[6], MPROC__FRAME_RESULT);
    assert_int_equal(b[8], 0x88);
    assert_int_equal(b[15], 0x11);
    mproc__frame_hdr h;
    assert_int_equal(mproc__hdr_decode(b, sizeof b, &h), 0);
    assert_int_equal(h.magic, MPROC__WIRE_MAGIC);
    assert_int_equal(h.version, MPROC__WIRE_VERSION);
    assert_int_equal(h.kind, MPROC__FRAME_RESULT);
    assert_true(h.id == 0x1122334455667788ull);
    assert_int_equal(h.length, 1234);
    assert_int_equal(h.arg, 0xCAFEu);

    /* Extremes that are still valid: every kind, the largest payload, trailing bytes ignored. */
    uint8_t big[MPROC__WIRE_HDR_SIZE + 5];
    for (uint16_t k = 1; k <= MPROC__FRAME_KIND_MAX; k++) {
        mproc__hdr_encode(big, k, UINT64_MAX, MPROC__WIRE_MAX_PAYLOAD, UINT32_MAX);
        assert_int_equal(mproc__hdr_decode(big, sizeof big, &h), 0);
        assert_int_equal(h.kind, k);
        assert_true(h.id == UINT64_MAX);
        assert_int_equal(h.length, MPROC__WIRE_MAX_PAYLOAD);
        assert_int_equal(h.arg, UINT32_MAX);
    }
}

/* Decodes b expecting a rejection, and checks the out struct was cleared. */
static void hdr_reject(const uint8_t *b, size_t len, const char *needle) {
    mproc__frame_hdr h;
    memset(&h, 0xAA, sizeof h);
    assert_eproto(mproc__hdr_decode(b, len, &h), needle);
    assert_int_equal(h.magic, 0);
    assert_int_equal(h.kind, 0);
    assert_int_equal(h.length, 0);
    assert_true(h.id == 0);
}

static void test_hdr_rejects(void **state) {
    (void)state;
    uint8_t b[MPROC__WIRE_HDR_SIZE];
    mproc__hdr_encode(b, MPROC__FRAME_TASK, 7, 16, 0);
    hdr_reject(b, MPROC__WIRE_HDR_SIZE - 1, "shorter");
    hdr_reject(b, 0, "shorter");
    hdr_reject(NULL, MPROC__WIRE_HDR_SIZE, NULL);

    b[0] = 'm';
    hdr_reject(b, sizeof b, "magic");
    b[0] = 'M';
    b[3] = 'D';
    hdr_reject(b, sizeof b, "magic");

    mproc__hdr_encode(b, MPROC__FRAME_TASK, 7, 16, 0);
    mproc__put_u16(b + 4, 2);
    hdr_reject(b, sizeof b, "version");
    mproc__put_u16(b + 4, 0);
    hdr_reject(b, sizeof b, "version");
    mproc__put_u16(b + 4, 0x0100); /* version 1 in the wrong byte order */
    hdr_reject(b, sizeof b, "version");

    mproc__hdr_encode(b, 0, 7, 16, 0);
    hdr_reject(b, sizeof b, "kind");
    mproc__hdr_encode(b, MPROC__FRAME_KIND_MAX + 1, 7, 16, 0);
    hdr_reject(b, sizeof b, "kind");
    mproc__hdr_encode(b, 0xFFFF, 7, 16, 0);
    hdr_reject(b, sizeof b, "kind");

    mproc__hdr_encode(b, MPROC__FRAME_TASK, 7, MPROC__WIRE_MAX_PAYLOAD + 1u, 0);
    hdr_reject(b, sizeof b, "length");
    mproc__hdr_encode(b, MPROC__FRAME_TASK, 7, UINT32_MAX, 0);
    hdr_reject(b, sizeof b, "length");

    assert_int_equal(mproc__hdr_decode(b, sizeof b, NULL), MPROC_EPROTO);
}

/* ------------------------------------------------------------------------------------------ */

static void test_items_fixed_round_trip(void **state) {
    (void)state;
    wbuf w = {.n = 0};
    uint8_t prefix[MPROC__WIRE_TASK_PREFIX];
    mproc__task_prefix_encode(prefix, 3, 4);
    static const uint8_t want_prefix[8] = {3, 0, 0, 0, 4, 0, 0, 0};
    assert_memory_equal(prefix, want_prefix, 8);
    w_bytes(&w, prefix, sizeof prefix);
    w_bytes(&w, "aaaabbbbcccc", 12);

    mproc__items it;
    assert_int_equal(mproc__items_decode(w.b, w.n, &it), 0);
    assert_int_equal(it.count, 3);
    assert_int_equal(it.item_size, 4);
    assert_null(it.lens);
    assert_ptr_equal(it.data, w.b + 8);
    assert_int_equal(it.data_len, 12);

    size_t cur = 0, len = 99;
    static const char *want[3] = {"aaaa", "bbbb", "cccc"};
    for (uint32_t i = 0; i < 3; i++) {
        const uint8_t *p = mproc__items_next(&it, i, &cur, &len);
        assert_non_null(p);
        assert_int_equal(len, 4);
        assert_memory_equal(p, want[i], 4);
    }
    assert_int_equal(cur, 12);
    /* Past the end: nothing, not an overread. */
    assert_null(mproc__items_next(&it, 3, &cur, &len));
    assert_int_equal(len, 0);
}

static void test_items_variable_round_trip(void **state) {
    (void)state;
    static const uint32_t lens[5] = {3, 0, 5, 0, 1};
    static const char *want[5] = {"abc", "", "hello", "", "z"};
    wbuf w = {.n = 0};
    w_u32(&w, 5);
    w_u32(&w, 0);
    for (int i = 0; i < 5; i++)
        w_u32(&w, lens[i]);
    w_u32(&w, 0); /* pads the 20-byte table to 24 so the data is 8-byte aligned */
    for (int i = 0; i < 5; i++)
        w_bytes(&w, want[i], lens[i]);

    mproc__items it;
    assert_int_equal(mproc__items_decode(w.b, w.n, &it), 0);
    assert_int_equal(it.count, 5);
    assert_int_equal(it.item_size, 0);
    assert_ptr_equal(it.lens, w.b + 8);
    assert_ptr_equal(it.data, w.b + 8 + 24);
    assert_int_equal(mproc__wire_lens_size(5), 24);
    assert_int_equal(mproc__wire_lens_size(2), 8);
    assert_int_equal(mproc__wire_lens_size(1), 8);
    assert_int_equal(it.data_len, 9);

    size_t cur = 0, len;
    for (uint32_t i = 0; i < 5; i++) {
        const uint8_t *p = mproc__items_next(&it, i, &cur, &len);
        assert_non_null(p);
        assert_int_equal(len, lens[i]);
        if (len)
            assert_memory_equal(p, want[i], len);
    }
    assert_int_equal(cur, 9);

    /* All items empty: a payload that ends right after the lens table. */
    w.n = 0;
    w_u32(&w, 2);
    w_u32(&w, 0);
    w_u32(&w, 0);
    w_u32(&w, 0);
    assert_int_equal(mproc__items_decode(w.b, w.n, &it), 0);
    assert_int_equal(it.data_len, 0);
    cur = 0;
    assert_non_null(mproc__items_next(&it, 0, &cur, &len));
    assert_int_equal(len, 0);
    assert_non_null(mproc__items_next(&it, 1, &cur, &len));
    assert_int_equal(len, 0);
}

static void items_reject(const wbuf *w, const char *needle) {
    mproc__items it;
    memset(&it, 0xAA, sizeof it);
    assert_eproto(mproc__items_decode(w->b, w->n, &it), needle);
    assert_int_equal(it.count, 0);
    assert_null(it.data);
    assert_null(it.lens);
}

static void test_items_rejects_prefix(void **state) {
    (void)state;
    wbuf w = {.n = 0};
    w_u32(&w, 1);
    w.n = 7; /* shorter than the prefix */
    items_reject(&w, "prefix");
    w.n = 0;
    items_reject(&w, "prefix");

    w.n = 0;
    w_u32(&w, 0); /* count 0 */
    w_u32(&w, 4);
    items_reject(&w, "count");

    w.n = 0;
    w_u32(&w, MPROC__WIRE_MAX_ITEMS + 1u);
    w_u32(&w, 1);
    items_reject(&w, "count");
    w.n = 0;
    w_u32(&w, UINT32_MAX);
    w_u32(&w, 0);
    items_reject(&w, "count");

    mproc__items it;
    assert_eproto(mproc__items_decode(NULL, 16, &it), NULL);
    /* A length over the payload limit is refused before any byte is read. */
    assert_eproto(mproc__items_decode(w.b, (size_t)MPROC__WIRE_MAX_PAYLOAD + 1u, &it), "limit");
    assert_int_equal(mproc__items_decode(w.b, w.n, NULL), MPROC_EPROTO);
}

static void test_items_rejects_fixed(void **state) {
    (void)state;
    wbuf w = {.n = 0};
    w_u32(&w, 3);
    w_u32(&w, 4);
    w_bytes(&w, "aaaabbbbccc", 11); /* one byte short */
    items_reject(&w, "data bytes");
    w_bytes(&w, "cX", 2); /* one byte too many */
    items_reject(&w, "data bytes");
    w.n--;
    mproc__items it;
    assert_int_equal(mproc__items_decode(w.b, w.n, &it), 0);

    /* count*item_size would wrap 32 bits (and is far past the data): no wrap-around accept. */
    w.n = 0;
    w_u32(&w, MPROC__WIRE_MAX_ITEMS);
    w_u32(&w, 0xFFFFFFFFu);
    w_bytes(&w, "abcd", 4);
    items_reject(&w, "data bytes");
    /* 2^26 * 64 == 2^32: wraps to 0 in 32 bits; with no data it must still be refused. */
    w.n = 0;
    w_u32(&w, MPROC__WIRE_MAX_ITEMS);
    w_u32(&w, 64);
    items_reject(&w, "data bytes");
}

static void test_items_rejects_variable(void **state) {
    (void)state;
    wbuf w = {.n = 0};
    /* Truncated lens table: 3 lengths announced, 2 present. */
    w_u32(&w, 3);
    w_u32(&w, 0);
    w_u32(&w, 0);
    w_u32(&w, 0);
    items_reject(&w, "lengths need");

    /* Lengths sum to less than the data present (trailing garbage). */
    w.n = 0;
    w_u32(&w, 2);
    w_u32(&w, 0);
    w_u32(&w, 1);
    w_u32(&w, 2);
    w_bytes(&w, "abcd", 4);
    items_reject(&w, "sum");
    /* ... and to more than the data present. */
    w.n -= 2;
    items_reject(&w, "runs past");
    w_bytes(&w, "c", 1);
    mproc__items it;
    assert_int_equal(mproc__items_decode(w.b, w.n, &it), 0);

    /* Non-zero padding after an odd number of lengths. */
    w.n = 0;
    w_u32(&w, 1);
    w_u32(&w, 0);
    w_u32(&w, 1);
    w_u32(&w, 7);
    w_bytes(&w, "a", 1);
    items_reject(&w, "padding");

    /* A 0xFFFFFFFF length. */
    w.n = 0;
    w_u32(&w, 2);
    w_u32(&w, 0);
    w_u32(&w, 1);
    w_u32(&w, 0xFFFFFFFFu);
    w_bytes(&w, "x", 1);
    items_reject(&w, "runs past");
    /* Lengths whose 32-bit sum wraps to exactly the data present (0x80000000*2 + 4 == 4). */
    w.n = 0;
    w_u32(&w, 3);
    w_u32(&w, 0);
    w_u32(&w, 0x80000000u);
    w_u32(&w, 0x80000000u);
    w_u32(&w, 4);
    w_u32(&w, 0); /* padding */
    w_bytes(&w, "abcd", 4);
    items_reject(&w, "runs past");
    /* Many lengths that individually fit but together overflow any 32-bit counter. */
    w.n = 0;
    w_u32(&w, 4);
    w_u32(&w, 0);
    for (int i = 0; i < 4; i++)
        w_u32(&w, 0x40000000u);
    items_reject(&w, "runs past");
}

/* ------------------------------------------------------------------------------------------ */

static void test_results_fixed_round_trip(void **state) {
    (void)state;
    wbuf w = {.n = 0};
    w_u32(&w, 2);
    w_u32(&w, 8);
    uint8_t v[8];
    mproc__put_u64(v, 49);
    w_bytes(&w, v, 8);
    mproc__put_u64(v, 64);
    w_bytes(&w, v, 8);

    mproc__results r;
    assert_int_equal(mproc__results_decode(w.b, w.n, &r), 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.item_size, 8);
    assert_null(r.table);
    assert_int_equal(r.data_len, 16);
    size_t cur = 0, len;
    int st = 1;
    const uint8_t *p = mproc__results_next(&r, 0, &cur, &st, &len);
    assert_non_null(p);
    assert_int_equal(st, 0);
    assert_int_equal(len, 8);
    assert_true(mproc__get_u64(p) == 49);
    p = mproc__results_next(&r, 1, &cur, &st, &len);
    assert_non_null(p);
    assert_true(mproc__get_u64(p) == 64);
    assert_null(mproc__results_next(&r, 2, &cur, &st, &len));

    w.n--; /* one byte short */
    memset(&r, 0xAA, sizeof r);
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "data bytes");
    assert_null(r.data);
    assert_int_equal(r.count, 0);
}

static void test_results_table_round_trip(void **state) {
    (void)state;
    static const int32_t sts[4] = {0, MPROC_ETASK, 0, MPROC_ETOOBIG};
    static const char *blobs[4] = {"ok!", "bad input 7", "", "too big"};
    wbuf w = {.n = 0};
    w_u32(&w, 4);
    w_u32(&w, 0);
    for (int i = 0; i < 4; i++) {
        w_u32(&w, (uint32_t)sts[i]);
        w_u32(&w, (uint32_t)strlen(blobs[i]));
    }
    for (int i = 0; i < 4; i++)
        w_bytes(&w, blobs[i], strlen(blobs[i]));

    mproc__results r;
    assert_int_equal(mproc__results_decode(w.b, w.n, &r), 0);
    assert_int_equal(r.count, 4);
    assert_int_equal(r.item_size, 0);
    assert_ptr_equal(r.table, w.b + 8);
    assert_ptr_equal(r.data, w.b + 8 + 32);
    size_t cur = 0, len;
    int st;
    for (uint32_t i = 0; i < 4; i++) {
        const uint8_t *p = mproc__results_next(&r, i, &cur, &st, &len);
        assert_non_null(p);
        assert_int_equal(st, sts[i]);
        assert_int_equal(len, strlen(blobs[i]));
        if (len)
            assert_memory_equal(p, blobs[i], len);
    }
    assert_int_equal(cur, r.data_len);
}

/* One-entry table payload with the given status and blob. */
static void one_result(wbuf *w, uint32_t status, const char *blob) {
    w->n = 0;
    w_u32(w, 1);
    w_u32(w, 0);
    w_u32(w, status);
    w_u32(w, (uint32_t)strlen(blob));
    w_bytes(w, blob, strlen(blob));
}

static void test_results_status_codes(void **state) {
    (void)state;
    wbuf w;
    mproc__results r;
    /* Every code of the public table is accepted and comes back as is. */
#define CODE_OF(name, code, msg) code,
    static const int table[] = {MPROC_ERRNO_MAP(CODE_OF)};
#undef CODE_OF
    int lowest = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i] < lowest) lowest = table[i];
    for (int code = -1; code >= lowest; code--) {
        assert_string_not_equal(mproc_err_name(code), "UNKNOWN");
        one_result(&w, (uint32_t)code, "msg");
        assert_int_equal(mproc__results_decode(w.b, w.n, &r), 0);
        size_t cur = 0, len;
        int st;
        assert_non_null(mproc__results_next(&r, 0, &cur, &st, &len));
        assert_int_equal(st, code);
        assert_int_equal(len, 3);
    }
    const uint32_t bad[] = {1, 2, 0x7FFFFFFFu, (uint32_t)(lowest - 1), (uint32_t)-100,
                            0x80000000u /* INT32_MIN */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        one_result(&w, bad[i], "msg");
        assert_eproto(mproc__results_decode(w.b, w.n, &r), "status");
    }
    /* A bad status in a later entry is found too. */
    w.n = 0;
    w_u32(&w, 2);
    w_u32(&w, 0);
    w_u32(&w, 0);
    w_u32(&w, 0);
    w_u32(&w, 5);
    w_u32(&w, 0);
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "item 1");
}

static void test_results_rejects(void **state) {
    (void)state;
    wbuf w;
    mproc__results r;
    one_result(&w, 0, "hello");
    assert_int_equal(mproc__results_decode(w.b, w.n, &r), 0);
    w.n--; /* truncated blob */
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "runs past");
    w.n += 2; /* one trailing byte */
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "sum");
    w.n = 12; /* truncated table entry */
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "table entries");
    w.n = 4;
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "prefix");

    one_result(&w, 0, "");
    mproc__put_u32(w.b + 12, 0xFFFFFFFFu); /* huge blob length */
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "runs past");

    w.n = 0;
    w_u32(&w, 0); /* count 0 */
    w_u32(&w, 0);
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "count");
    w.n = 0;
    w_u32(&w, MPROC__WIRE_MAX_ITEMS + 1u);
    w_u32(&w, 0);
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "count");
    /* The largest count, whose table alone needs 512 MiB, against an empty rest. */
    w.n = 0;
    w_u32(&w, MPROC__WIRE_MAX_ITEMS);
    w_u32(&w, 0);
    assert_eproto(mproc__results_decode(w.b, w.n, &r), "table entries");
    assert_int_equal(mproc__results_decode(NULL, 8, &r), MPROC_EPROTO);
    assert_int_equal(mproc__results_decode(w.b, w.n, NULL), MPROC_EPROTO);
}

/* The walkers are for validated payloads walked in order, but a misuse must still not overread. */
static void test_walkers_refuse_misuse(void **state) {
    (void)state;
    wbuf w = {.n = 0};
    w_u32(&w, 2);
    w_u32(&w, 4);
    w_bytes(&w, "aaaabbbb", 8);
    mproc__items it;
    assert_int_equal(mproc__items_decode(w.b, w.n, &it), 0);
    size_t cur = 0, len = 99;
    assert_null(mproc__items_next(&it, 2, &cur, &len)); /* index past count */
    assert_int_equal(len, 0);
    assert_int_equal(cur, 0);
    cur = 5; /* cursor leaves less than one item */
    assert_null(mproc__items_next(&it, 1, &cur, &len));
    cur = 9; /* cursor past the data */
    assert_null(mproc__items_next(&it, 0, &cur, &len));
    assert_int_equal(cur, 9);
    mproc__items empty = {0};
    cur = 0;
    assert_null(mproc__items_next(&empty, 0, &cur, &len));

    mproc__results r;
    assert_int_equal(mproc__results_decode(w.b, w.n, &r), 0);
    int st = 7;
    cur = 0;
    assert_null(mproc__results_next(&r, 2, &cur, &st, &len));
    assert_int_equal(st, 0);
    assert_int_equal(len, 0);
    cur = 5;
    assert_null(mproc__results_next(&r, 1, &cur, &st, &len));
    assert_int_equal(cur, 5);
    cur = 9;
    assert_null(mproc__results_next(&r, 0, &cur, &st, &len));
    mproc__results none = {0};
    cur = 0;
    assert_null(mproc__results_next(&none, 0, &cur, &st, &len));
}

/* ------------------------------------------------------------------------------------------ */

static void test_rbuf_growth(void **state) {
    (void)state;
    mproc__rbuf b = {0};
    uint8_t *p = mproc__rbuf_reserve(&b, MPROC__WIRE_HDR_SIZE);
    assert_non_null(p);
    assert_ptr_equal(p, b.buf);
    assert_int_equal(b.len, 0); /* reserve does not advance */
    assert_true(b.cap >= MPROC__WIRE_HDR_SIZE);
    b.len = MPROC__WIRE_HDR_SIZE;

    /* Appends that force several reallocations keep every byte. */
    for (uint32_t i = 0; i < 10000; i++) {
        uint8_t v[4];
        mproc__put_u32(v, i);
        assert_int_equal(mproc__rbuf_append(&b, v, 4), 0);
        assert_true(b.len <= b.cap);
    }
    assert_int_equal(b.len, MPROC__WIRE_HDR_SIZE + 40000);
    for (uint32_t i = 0; i < 10000; i++)
        assert_int_equal(mproc__get_u32(b.buf + MPROC__WIRE_HDR_SIZE + 4 * i), i);

    p = mproc__rbuf_reserve(&b, 1u << 20);
    assert_ptr_equal(p, b.buf + b.len);
    assert_true(b.cap - b.len >= (1u << 20));
    assert_int_equal(mproc__rbuf_append(&b, NULL, 0), 0);
    assert_int_equal(mproc__rbuf_append(&b, "", 0), 0);
    assert_int_equal(b.len, MPROC__WIRE_HDR_SIZE + 40000);

    /* An impossible size fails cleanly and leaves the buffer as it was. */
    size_t len = b.len, cap = b.cap;
    assert_null(mproc__rbuf_reserve(&b, SIZE_MAX));
    assert_int_equal(mproc__rbuf_append(&b, "x", SIZE_MAX - 1), MPROC_ENOMEM);
    assert_int_equal(b.len, len);
    assert_int_equal(b.cap, cap);

    mproc__rbuf_free(&b);
    assert_null(b.buf);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    mproc__rbuf_free(&b); /* twice is harmless */
}

static void test_iov_total(void **state) {
    (void)state;
    char a[3], c[7];
    struct iovec iov[3] = {{a, sizeof a}, {NULL, 0}, {c, sizeof c}};
    assert_int_equal(mproc__iov_total(iov, 3), 10);
    assert_int_equal(mproc__iov_total(iov, 1), 3);
    assert_int_equal(mproc__iov_total(iov, 0), 0);
    assert_int_equal(mproc__iov_total(NULL, 3), 0);
    struct iovec huge[2] = {{a, SIZE_MAX - 2}, {c, 7}};
    assert_true(mproc__iov_total(huge, 2) == SIZE_MAX);
    assert_true(mproc__iov_total(huge, 1) == SIZE_MAX - 2);
}

static void test_batch_walk_and_rejects(void **state) {
    (void)state;
    uint8_t b[256] = {0};
    /* Two sub-frames: a SHUTDOWN (24 bytes) and a RESULT with a 3-byte payload, padded. */
    mproc__hdr_encode(b, MPROC__FRAME_SHUTDOWN, 1, 0, 0);
    mproc__hdr_encode(b + 24, MPROC__FRAME_RESULT, 2, 3, 0);
    memcpy(b + 48, "abc", 3);
    size_t len = 24 + mproc__batch_padded(27);
    assert_int_equal(len, 56);
    size_t cur = 0, sub_len;
    const uint8_t *sub;
    mproc__frame_hdr h;
    assert_int_equal(mproc__batch_next(b, len, &cur, &h, &sub, &sub_len), 1);
    assert_int_equal(h.id, 1);
    assert_int_equal(sub_len, 24);
    assert_int_equal(mproc__batch_next(b, len, &cur, &h, &sub, &sub_len), 1);
    assert_int_equal(h.id, 2);
    assert_int_equal(sub_len, 27);
    assert_ptr_equal(sub, b + 24);
    assert_int_equal(mproc__batch_next(b, len, &cur, &h, &sub, &sub_len), 0);
    /* Missing padding, non-zero padding, a length past the end, a nested batch. */
    cur = 24;
    assert_eproto(mproc__batch_next(b, 51, &cur, &h, &sub, &sub_len), "padding");
    b[53] = 1;
    cur = 24;
    assert_eproto(mproc__batch_next(b, len, &cur, &h, &sub, &sub_len), "padding");
    b[53] = 0;
    cur = 24;
    assert_eproto(mproc__batch_next(b, 40, &cur, &h, &sub, &sub_len), NULL); /* 27 bytes in 16 */
    mproc__hdr_encode(b, MPROC__FRAME_BATCH, 1, 0, 0);
    cur = 0;
    assert_eproto(mproc__batch_next(b, len, &cur, &h, &sub, &sub_len), "inside");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_walk_and_rejects),
        cmocka_unit_test(test_put_get_endianness),
        cmocka_unit_test(test_hdr_round_trip),
        cmocka_unit_test(test_hdr_rejects),
        cmocka_unit_test(test_items_fixed_round_trip),
        cmocka_unit_test(test_items_variable_round_trip),
        cmocka_unit_test(test_items_rejects_prefix),
        cmocka_unit_test(test_items_rejects_fixed),
        cmocka_unit_test(test_items_rejects_variable),
        cmocka_unit_test(test_results_fixed_round_trip),
        cmocka_unit_test(test_results_table_round_trip),
        cmocka_unit_test(test_results_status_codes),
        cmocka_unit_test(test_results_rejects),
        cmocka_unit_test(test_walkers_refuse_misuse),
        cmocka_unit_test(test_rbuf_growth),
        cmocka_unit_test(test_iov_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
