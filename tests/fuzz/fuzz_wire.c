/* fuzz_wire.c - libFuzzer target for the frame decoders in src/wire.c. The input is treated as a
 * whole frame as it would arrive from a hostile peer: the first 24 bytes go to the header decoder,
 * and the rest, as a payload, to both the TASK/INIT and the RESULT decoders (whatever the header
 * says, so payload bugs are reachable without a valid header). Every item the walkers hand out
 * is read byte by byte, so AddressSanitizer sees any pointer or length that strays outside the
 * input, and the properties the decoders promise (lengths sum to the data, statuses are known
 * codes, a valid header re-encodes to the same bytes) are checked with abort().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

/* Reads every byte so an overread is reported where it happens. */
static void touch(const uint8_t *p, size_t len) {
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc ^= p[i];
    sink = acc;
}

static void check(int ok) {
    if (!ok)
        abort();
}

static void fuzz_header(const uint8_t *data, size_t size) {
    mproc__frame_hdr h;
    if (mproc__hdr_decode(data, size, &h) != 0) {
        check(h.magic == 0 && h.kind == 0 && h.length == 0 && h.id == 0);
        return;
    }
    check(h.kind >= 1 && h.kind <= MPROC__FRAME_KIND_MAX);
    check(h.length <= MPROC__WIRE_MAX_PAYLOAD);
    uint8_t again[MPROC__WIRE_HDR_SIZE];
    mproc__hdr_encode(again, h.kind, h.id, h.length, h.arg);
    check(memcmp(again, data, MPROC__WIRE_HDR_SIZE) == 0);
}

static void fuzz_items(const uint8_t *p, size_t len) {
    mproc__items it;
    if (mproc__items_decode(p, len, &it) != 0) {
        check(it.count == 0 && it.data == NULL && it.lens == NULL);
        return;
    }
    check(it.count >= 1 && it.count <= MPROC__WIRE_MAX_ITEMS);
    check(it.data >= p && it.data_len <= len && (size_t)(it.data - p) + it.data_len == len);
    if (it.lens)
        touch(it.lens, (size_t)it.count * 4);
    size_t cursor = 0;
    for (uint32_t i = 0; i < it.count; i++) {
        size_t n = 0;
        const uint8_t *item = mproc__items_next(&it, i, &cursor, &n);
        check(item != NULL);
        touch(item, n);
    }
    check(cursor == it.data_len);
    size_t n;
    check(mproc__items_next(&it, it.count, &cursor, &n) == NULL);
}

static void fuzz_results(const uint8_t *p, size_t len) {
    mproc__results r;
    if (mproc__results_decode(p, len, &r) != 0) {
        check(r.count == 0 && r.data == NULL && r.table == NULL);
        return;
    }
    check(r.count >= 1 && r.count <= MPROC__WIRE_MAX_ITEMS);
    check(r.data >= p && (size_t)(r.data - p) + r.data_len == len);
    size_t cursor = 0;
    for (uint32_t i = 0; i < r.count; i++) {
        size_t n = 0;
        int status = 1;
        const uint8_t *blob = mproc__results_next(&r, i, &cursor, &status, &n);
        check(blob != NULL);
        check(status == 0 || (status < 0 && strcmp(mproc_err_name(status), "UNKNOWN") != 0));
        touch(blob, n);
    }
    check(cursor == r.data_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_header(data, size);
    if (size < MPROC__WIRE_HDR_SIZE)
        return 0;
    /* A copy of exactly the payload's size, so the redzone sits right after its last byte. */
    size_t len = size - MPROC__WIRE_HDR_SIZE;
    uint8_t *payload = malloc(len ? len : 1);
    if (!payload)
        return 0;
    if (len)
        memcpy(payload, data + MPROC__WIRE_HDR_SIZE, len);
    fuzz_items(payload, len);
    fuzz_results(payload, len);
    free(payload);
    return 0;
}
