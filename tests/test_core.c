/* test_core - unit tests of the core that need no worker: the error table, the registry and
 * its fingerprint, and mproc__execute() turning task frames into result frames in-process
 * (fixed, batch, table layouts, failures, wrong sizes), plus calls made before mproc_init and
 * the strict reading of the MPROC_ variables' numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "pool/pool.h"
#include "mproc.h"
#include "wire/wire.h"
#include "worker/worker.h"

static long twice(long x) { return 2 * x; }
MPROC_TASK_VALUE(twice, long, long);

static int checked(mproc_ctx *ctx, const int *in, int *out) {
    if (*in < 0) return mproc_fail(ctx, "negative input %d", *in);
    if (*in == 99) return mproc_return(ctx, "odd", 3); /* wrong size on purpose */
    *out = *in + 1;
    return 0;
}
MPROC_TASK_TYPED(checked, int, int);

static int echo(mproc_ctx *ctx, const void *in, size_t len) { return mproc_return(ctx, in, len); }
MPROC_TASK(echo);

static int bad_code(mproc_ctx *ctx, const void *in, size_t len) { return 42; }
MPROC_TASK(bad_code);

static void test_error_table(void **state) {
    assert_string_equal(mproc_err_name(MPROC_ETIMEDOUT), "MPROC_ETIMEDOUT");
    assert_string_equal(mproc_strerror(MPROC_ETIMEDOUT), "timed out");
    assert_string_equal(mproc_err_name(0), "OK");
    assert_string_equal(mproc_err_name(-999), "UNKNOWN");
    assert_string_equal(mproc_strerror(12345), "unknown error");
    assert_true(MPROC_EINVAL < 0 && MPROC_ETOOBIG < 0);
}

static void test_before_init(void **state) {
    mproc_pool *pool = (mproc_pool *)1;
    assert_int_equal(mproc_pool_create(&pool, NULL), MPROC_ENOTINIT);
    assert_null(pool);
    assert_non_null(strstr(mproc_last_error(), "mproc_init"));
    assert_int_equal(mproc_backend(), 0);
    assert_string_equal(mproc_backend_name(), "none");
    assert_true(mproc_cpu_count() >= 1);
}

/* A chunk of items has room for its largest item in a frame: at least one item (an item of 1 GiB,
 * the most allowed, made a chunk of 0 items: a division by zero in map, nothing in imap), and no
 * more than fit whatever the mean says. */
static void test_chunk_cap(void **state) {
    (void)state;
    const size_t gib = (size_t)1 << 30;
    assert_int_equal(mproc__chunk_cap(100, gib), 1);
    assert_int_equal(mproc__chunk_cap(100, gib / 4), 4);
    assert_int_equal(mproc__chunk_cap(3, 8), 3);
    assert_int_equal(mproc__chunk_cap(0, 8), 0); /* 0 (automatic) is the caller's to settle */
    assert_true(mproc__chunk_cap(SIZE_MAX, 1) <= MPROC__WIRE_MAX_ITEMS);
    /* One 1 GiB item among small ones: the mean is small, the largest is what caps. */
    static char small[16];
    mproc_item items[4] = {{small, 16}, {small, 16}, {small, 0}, {NULL, 0}};
    items[3].len = gib; /* never read */
    size_t largest = 0;
    size_t mean = mproc__items_mean(items, 4, &largest);
    assert_true(mean < gib / 2);
    assert_true(largest == gib);
    assert_int_equal(mproc__chunk_cap(mean, largest), 1);
}

/* The MPROC_ variables' numbers are read whole and strictly: what strtoull/strtod would bend
 * into something else (a space, a sign, hex, nan, inf, a unit) is refused. */
static void test_env_numbers(void **state) {
    (void)state;
    uint64_t n = 7;
    const char *counts[] = {"0", "65536", "18446744073709551615"};
    const uint64_t want[] = {0, 65536, UINT64_MAX};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mproc__parse_count(counts[i], &n), 0);
        assert_true(n == want[i]);
    }
    const char *bad_counts[] = {"", " 1", "+1", "-1", "0x10", "1 ", "1e3", "1.0", "18446744073709551616", NULL};
    for (size_t i = 0; bad_counts[i]; i++) {
        n = 7;
        assert_int_equal(mproc__parse_count(bad_counts[i], &n), -1);
        assert_true(n == 7); /* left as it was */
    }
    assert_int_equal(mproc__parse_count(NULL, &n), -1);
    double s = -1;
    const char *secs[] = {"0", "0.5", ".5", "10", "1e3", "2.5E-1", "3.", NULL};
    const double want_s[] = {0, 0.5, 0.5, 10, 1000, 0.25, 3};
    for (size_t i = 0; secs[i]; i++) {
        assert_int_equal(mproc__parse_seconds(secs[i], &s), 0);
        assert_true(s == want_s[i]);
    }
    const char *bad_secs[] = {"", " 1", "-1", "+1", "nan", "inf", "0x1p3", "1e", "1e+", "1.2.3", ".", "1e400", "1e-400", "5s", "1 ", "0,5", NULL};
    for (size_t i = 0; bad_secs[i]; i++) {
        s = -1;
        assert_int_equal(mproc__parse_seconds(bad_secs[i], &s), -1);
        assert_true(s == -1);
    }
}

static void test_registry(void **state) {
    assert_int_equal(mproc__registry_freeze(), 0);
    assert_int_equal(mproc__registry_freeze(), 0); /* idempotent */
    assert_int_equal(mproc__registry_count(), 4);
    assert_ptr_equal(mproc_task_find("twice"), &twice_task);
    assert_null(mproc_task_find("nope"));
    assert_null(mproc_task_find(NULL));
    /* sorted by name: bad_code, checked, echo, twice */
    assert_int_equal(bad_code_task.id, 0);
    assert_int_equal(twice_task.id, 3);
    assert_int_equal(twice_task.in_size, sizeof(long));
    uint64_t f = mproc__registry_fingerprint();
    assert_true(f == mproc__registry_fingerprint() && f != 0);
    mproc_task stranger = {"stranger", echo, NULL, 0, 0, NULL, -1};
    assert_int_equal(mproc__task_check(&stranger, "t"), MPROC_ENOTASK);
    assert_int_equal(mproc__task_check(NULL, "t"), MPROC_ENOTASK);
    assert_int_equal(mproc__task_check(&echo_task, "t"), 0);
}

/* Builds a TASK payload of n fixed-size items. */
static uint8_t *fixed_payload(const void *items, uint32_t n, uint32_t size, size_t *len) {
    *len = MPROC__WIRE_TASK_PREFIX + (size_t)n * size;
    uint8_t *p = malloc(*len);
    mproc__task_prefix_encode(p, n, size);
    memcpy(p + MPROC__WIRE_TASK_PREFIX, items, (size_t)n * size);
    return p;
}

static void run(const mproc_task *t, const void *items, uint32_t n, uint32_t size, uint8_t **frame,
                mproc__results *r) {
    size_t plen, flen;
    uint8_t *payload = fixed_payload(items, n, size, &plen);
    assert_int_equal(mproc__execute(MPROC__FRAME_TASK, 77, (uint32_t)t->id, payload, plen, frame, &flen), 0);
    free(payload);
    mproc__frame_hdr h;
    assert_int_equal(mproc__hdr_decode(*frame, flen, &h), 0);
    assert_int_equal(h.kind, MPROC__FRAME_RESULT);
    assert_int_equal(h.id, 77);
    assert_int_equal(mproc__results_decode(*frame + MPROC__WIRE_HDR_SIZE, h.length, r), 0);
    assert_int_equal(r->count, n);
}

static void test_execute_batch(void **state) {
    long in[5] = {1, 2, 3, 4, 5};
    uint8_t *frame;
    mproc__results r;
    run(&twice_task, in, 5, sizeof(long), &frame, &r);
    assert_int_equal(r.item_size, sizeof(long)); /* packed: all ok */
    for (int i = 0; i < 5; i++) {
        long v;
        memcpy(&v, r.data + i * sizeof(long), sizeof v);
        assert_int_equal(v, 2 * in[i]);
    }
    free(frame);
}

static void test_execute_failures_switch_to_table(void **state) {
    int in[4] = {1, -5, 99, 7};
    uint8_t *frame;
    mproc__results r;
    run(&checked_task, in, 4, sizeof(int), &frame, &r);
    assert_int_equal(r.item_size, 0);
    size_t cur = 0, len;
    int st, v;
    const uint8_t *b = mproc__results_next(&r, 0, &cur, &st, &len);
    memcpy(&v, b, sizeof v);
    assert_int_equal(st, 0);
    assert_int_equal(v, 2);
    b = mproc__results_next(&r, 1, &cur, &st, &len);
    assert_int_equal(st, MPROC_ETASK);
    assert_memory_equal(b, "negative input -5", len);
    b = mproc__results_next(&r, 2, &cur, &st, &len);
    assert_int_equal(st, 0); /* the worker reports the size; the master's map rejects it */
    assert_int_equal(len, 3);
    b = mproc__results_next(&r, 3, &cur, &st, &len);
    memcpy(&v, b, sizeof v);
    assert_int_equal(v, 8);
    free(frame);
}

static void test_execute_wrong_input_size_and_codes(void **state) {
    char in[3] = {1, 2, 3};
    uint8_t *frame;
    mproc__results r;
    run(&twice_task, in, 1, 3, &frame, &r);
    size_t cur = 0, len;
    int st;
    const uint8_t *b = mproc__results_next(&r, 0, &cur, &st, &len);
    assert_int_equal(st, MPROC_ESIZE);
    assert_non_null(memmem(b, len, "expects 8-byte", 14));
    free(frame);
    run(&bad_code_task, in, 1, 3, &frame, &r);
    cur = 0;
    b = mproc__results_next(&r, 0, &cur, &st, &len);
    assert_int_equal(st, MPROC_ETASK);
    assert_non_null(memmem(b, len, "returned 42", 11));
    free(frame);
}

static void test_execute_rejects_bad_frames(void **state) {
    uint8_t *frame = (uint8_t *)1;
    size_t flen = 1;
    uint8_t junk[8] = {0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0};
    assert_int_equal(mproc__execute(MPROC__FRAME_TASK, 1, 0, junk, sizeof junk, &frame, &flen), MPROC_EPROTO);
    assert_null(frame);
    size_t plen;
    long x = 1;
    uint8_t *payload = fixed_payload(&x, 1, sizeof x, &plen);
    assert_int_equal(mproc__execute(MPROC__FRAME_TASK, 1, 9999, payload, plen, &frame, &flen), MPROC_EPROTO);
    assert_non_null(strstr(mproc_last_error(), "9999"));
    free(payload);
}

static void test_ctx_results(void **state) {
    char big[100000];
    memset(big, 'x', sizeof big);
    uint8_t *frame;
    mproc__results r;
    size_t plen, flen;
    uint8_t *payload = calloc(1, MPROC__WIRE_TASK_PREFIX + 8 + sizeof big);
    mproc__task_prefix_encode(payload, 1, 0);
    mproc__put_u32(payload + 8, sizeof big);
    memcpy(payload + 16, big, sizeof big);
    plen = 16 + sizeof big;
    assert_int_equal(mproc__execute(MPROC__FRAME_TASK, 5, (uint32_t)echo_task.id, payload, plen, &frame, &flen), 0);
    assert_int_equal(mproc__results_decode(frame + MPROC__WIRE_HDR_SIZE, flen - MPROC__WIRE_HDR_SIZE, &r), 0);
    size_t cur = 0, len;
    int st;
    const uint8_t *b = mproc__results_next(&r, 0, &cur, &st, &len);
    assert_int_equal(st, 0);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(b, big, sizeof big);
    free(frame);
    free(payload);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_before_init),
        cmocka_unit_test(test_env_numbers),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_execute_batch),
        cmocka_unit_test(test_execute_failures_switch_to_table),
        cmocka_unit_test(test_execute_wrong_input_size_and_codes),
        cmocka_unit_test(test_execute_rejects_bad_frames),
        cmocka_unit_test(test_ctx_results),
        cmocka_unit_test(test_chunk_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
