/* test_items - map and imap over variable-length items, on both backends: strings of many
 * lengths (empty, 100 KiB) come back transformed in buffers the caller owns; a failing item
 * and a crashing one fail alone inside their chunk; map_items_async and its get; imap_items in
 * order and unordered; 20,000 small items (batched); a journal over items; bad input.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "test_support.h"

/* The item reversed; "fail" fails, "crash" kills its worker. */
static int reverse(mproc_ctx *ctx, const void *in, size_t len) {
    if (len == 4 && memcmp(in, "fail", 4) == 0) return mproc_fail(ctx, "asked to fail");
    if (len == 5 && memcmp(in, "crash", 5) == 0) raise(SIGSEGV);
    char *out = mproc_result_alloc(ctx, len);
    if (!out && len) return MPROC_ENOMEM;
    for (size_t i = 0; i < len; i++) out[i] = ((const char *)in)[len - 1 - i];
    return 0;
}
MPROC_TASK(reverse);

static long twice(long x) { return 2 * x; }
MPROC_TASK_VALUE(twice, long, long);

static mproc_pool *pool_of(int n) {
    mproc_pool *p;
    assert_int_equal(mproc_pool_create(&p, &(mproc_pool_opts){.processes = n}), 0);
    return p;
}

/* Item i: a string of length i * 37 % 300 of letters from i (item 7: 100 KiB; item 3: empty). */
static char *make_item(size_t i, size_t *len) {
    size_t l = i == 7 ? 100 * 1024 : i == 3 ? 0 : i * 37 % 300 + 1;
    char *s = malloc(l + 1);
    for (size_t k = 0; k < l; k++) s[k] = (char)('a' + (i + k * 7) % 26);
    *len = l;
    return s;
}

static void check_reversed(const mproc_item *in, const mproc_buf *out, size_t i) {
    assert_non_null(out[i].data);
    assert_int_equal(out[i].len, in[i].len);
    for (size_t k = 0; k < in[i].len; k++)
        assert_int_equal(((const char *)out[i].data)[k], ((const char *)in[i].data)[in[i].len - 1 - k]);
}

enum { N = 200 };

static void make_items(mproc_item *in) {
    for (size_t i = 0; i < N; i++) {
        size_t l;
        in[i].data = make_item(i, &l);
        in[i].len = l;
    }
}

static void free_items(mproc_item *in, mproc_buf *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free((void *)in[i].data);
        if (out) mproc_free(out[i].data);
    }
}

static void test_map_items_round_trip(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    mproc_item in[N];
    mproc_buf out[N];
    int st[N];
    make_items(in);
    assert_int_equal(mproc_map_items(p, &reverse_task, in, N, out, &(mproc_call_opts){.chunksize = 9, .item_status = st}), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(st[i], 0);
        check_reversed(in, out, i);
    }
    assert_int_equal(out[3].len, 0); /* empty result: still a buffer of its own */
    free_items(in, out, N);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_failing_and_crashing_items_fail_alone(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    mproc_item in[N];
    mproc_buf out[N];
    int st[N];
    make_items(in);
    free((void *)in[40].data);
    free((void *)in[41].data);
    in[40] = (mproc_item){strdup("fail"), 4};
    in[41] = (mproc_item){strdup("crash"), 5};
    int rc = mproc_map_items(p, &reverse_task, in, N, out, &(mproc_call_opts){.chunksize = 10, .item_status = st});
    assert_int_equal(rc, MPROC_ETASK);
    assert_non_null(strstr(mproc_last_error(), "asked to fail"));
    assert_int_equal(st[40], MPROC_ETASK);
    assert_int_equal(st[41], MPROC_EWORKER);
    assert_null(out[40].data);
    assert_null(out[41].data);
    assert_int_equal(out[41].len, 0);
    for (size_t i = 0; i < N; i++)
        if (i != 40 && i != 41) {
            assert_int_equal(st[i], 0);
            check_reversed(in, out, i);
        }
    free_items(in, out, N);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_map_items_async_and_get(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    mproc_item in[N];
    mproc_buf out[N];
    make_items(in);
    mproc_async *a;
    assert_int_equal(mproc_map_items_async(p, &reverse_task, in, N, out, NULL, &a), 0);
    const void *data;
    size_t len;
    assert_int_equal(mproc_async_get(a, 30.0, &data, &len), 0);
    assert_ptr_equal(data, out);
    assert_int_equal(len, N * sizeof(mproc_buf));
    for (size_t i = 0; i < N; i++) check_reversed(in, out, i);
    mproc_async_free(a);
    free_items(in, out, N);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void run_imap_items(int ordered) {
    mproc_pool *p = pool_of(2);
    mproc_item in[N];
    make_items(in);
    mproc_iter *it;
    assert_int_equal(mproc_imap_items(p, &reverse_task, in, N, ordered, &(mproc_call_opts){.chunksize = 4}, &it), 0);
    unsigned char seen[N] = {0};
    const void *d;
    size_t len, idx, k = 0;
    int rc;
    while ((rc = mproc_iter_next(it, 30.0, &d, &len, &idx)) == 0) {
        if (ordered) assert_int_equal(idx, k);
        assert_true(idx < N && !seen[idx]);
        seen[idx] = 1;
        mproc_buf b = {(void *)d, len};
        mproc_buf one[N];
        one[idx] = b;
        check_reversed(in, one, idx);
        k++;
    }
    assert_int_equal(rc, MPROC_EOF);
    assert_int_equal(k, N);
    assert_int_equal(mproc_iter_free(it), 0);
    free_items(in, NULL, N);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_imap_items_ordered(void **state) {
    (void)state;
    run_imap_items(1);
}

static void test_imap_items_unordered(void **state) {
    (void)state;
    run_imap_items(0);
}

/* Many small items: batched on the way, every one right. */
static void test_many_small_items(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    enum { M = 20000 };
    mproc_item *in = malloc(M * sizeof *in);
    mproc_buf *out = malloc(M * sizeof *out);
    char (*text)[16] = malloc(M * sizeof *text);
    for (size_t i = 0; i < M; i++) {
        int l = snprintf(text[i], sizeof text[i], "%zu", i);
        in[i] = (mproc_item){text[i], (size_t)l};
    }
    assert_int_equal(mproc_map_items(p, &reverse_task, in, M, out, &(mproc_call_opts){.chunksize = 1}), 0);
    for (size_t i = 0; i < M; i++) {
        char want[16];
        size_t l = in[i].len;
        for (size_t k = 0; k < l; k++) want[k] = text[i][l - 1 - k];
        assert_int_equal(out[i].len, l);
        assert_memory_equal(out[i].data, want, l);
        mproc_free(out[i].data);
    }
    free(in);
    free(out);
    free(text);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_journal_over_items(void **state) {
    (void)state;
    mproc_pool *p = pool_of(2);
    mproc_item in[N];
    mproc_buf out[N];
    make_items(in);
    char j[96];
    snprintf(j, sizeof j, "/tmp/mproc-items-journal-%ld", (long)getpid());
    unlink(j);
    assert_int_equal(mproc_map_items(p, &reverse_task, in, N, out, &(mproc_call_opts){.journal = j}), 0);
    for (size_t i = 0; i < N; i++) mproc_free(out[i].data);
    /* Again: every result from the journal, in buffers of its own. */
    mproc_async *a;
    assert_int_equal(mproc_map_items_async(p, &reverse_task, in, N, out, &(mproc_call_opts){.journal = j}, &a), 0);
    mproc_progress pr;
    assert_int_equal(mproc_async_progress(a, &pr), 0);
    assert_int_equal(pr.done, N); /* at once */
    assert_int_equal(mproc_async_get(a, 10.0, NULL, NULL), 0);
    for (size_t i = 0; i < N; i++) check_reversed(in, out, i);
    mproc_async_free(a);
    for (size_t i = 0; i < N; i++) mproc_free(out[i].data);
    /* One byte of one item changed: another call. */
    ((char *)in[5].data)[0] ^= 1;
    assert_int_equal(mproc_map_items(p, &reverse_task, in, N, out, &(mproc_call_opts){.journal = j}), MPROC_EJOURNAL);
    unlink(j);
    free_items(in, NULL, N);
    assert_int_equal(mproc_pool_free(p), 0);
}

static void test_items_bad_input(void **state) {
    (void)state;
    mproc_pool *p = pool_of(1);
    mproc_item in[3] = {{"ab", 2}, {NULL, 5}, {"c", 1}};
    mproc_buf out[3];
    assert_int_equal(mproc_map_items(p, &reverse_task, in, 3, out, NULL), MPROC_EINVAL);
    assert_non_null(strstr(mproc_last_error(), "item 1"));
    assert_int_equal(mproc_map_items(p, &reverse_task, NULL, 3, out, NULL), MPROC_EINVAL);
    long x = 4;
    mproc_item typed[2] = {{&x, sizeof x}, {"abc", 3}};
    assert_int_equal(mproc_map_items(p, &twice_task, typed, 2, out, NULL), MPROC_ESIZE);
    assert_non_null(strstr(mproc_last_error(), "item 1"));
    mproc_iter *it;
    assert_int_equal(mproc_imap_items(p, &reverse_task, in, 3, 1, NULL, &it), MPROC_EINVAL);
    assert_int_equal(mproc_map_items(p, NULL, in, 3, out, NULL), MPROC_ENOTASK);
    /* No items: done at once; a typed task over items of its size works. */
    assert_int_equal(mproc_map_items(p, &reverse_task, NULL, 0, NULL, NULL), 0);
    typed[1] = (mproc_item){&x, sizeof x};
    assert_int_equal(mproc_map_items(p, &twice_task, typed, 2, out, NULL), 0);
    assert_int_equal(out[1].len, sizeof(long));
    assert_int_equal(*(long *)out[1].data, 8);
    mproc_free(out[0].data);
    mproc_free(out[1].data);
    /* Results dropped when out is NULL. */
    in[1] = (mproc_item){"xyz", 3};
    assert_int_equal(mproc_map_items(p, &reverse_task, in, 3, NULL, NULL), 0);
    assert_int_equal(mproc_pool_free(p), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_map_items_round_trip),
    cmocka_unit_test(test_failing_and_crashing_items_fail_alone),
    cmocka_unit_test(test_map_items_async_and_get),
    cmocka_unit_test(test_imap_items_ordered),
    cmocka_unit_test(test_imap_items_unordered),
    cmocka_unit_test(test_many_small_items),
    cmocka_unit_test(test_journal_over_items),
    cmocka_unit_test(test_items_bad_input),
};

MPROC_TEST_MAIN(tests)
