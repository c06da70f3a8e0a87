/* wire.c - encoding and validation of the frames that travel between the master and its workers
 * (layouts in wire.h), shared by every backend. Integers are written and read byte by byte in
 * little-endian order, so the host's endianness and the buffer's alignment never matter. A
 * decoder here is the only thing that stands between a peer's bytes and the rest of the
 * library, so it trusts nothing: every count and length is checked against the bytes actually
 * present, sums are accumulated with explicit overflow checks instead of multiplications that
 * could wrap, and anything inconsistent is MPROC_EPROTO with a sentence saying what was wrong.
 * Once a payload has been validated, the _next walkers can hand out items without rechecking the
 * whole frame; they still refuse to step outside the data if misused.
 */
#include "wire/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* ---------------------------------------------------------------------------------------------
 * Little-endian helpers.
 * ------------------------------------------------------------------------------------------- */
void mproc__put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void mproc__put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)((v >> (8 * i)) & 0xFFu);
}

void mproc__put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((v >> (8 * i)) & 0xFFu);
}

uint16_t mproc__get_u16(const uint8_t *p) { return (uint16_t)(p[0] | ((unsigned)p[1] << 8)); }

uint32_t mproc__get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

uint64_t mproc__get_u64(const uint8_t *p) {
    return (uint64_t)mproc__get_u32(p) | ((uint64_t)mproc__get_u32(p + 4) << 32);
}

/* Two's-complement reinterpretation without the implementation-defined unsigned->signed cast. */
static int32_t get_i32(const uint8_t *p) {
    uint32_t v = mproc__get_u32(p);
    if (v <= (uint32_t)INT32_MAX)
        return (int32_t)v;
    return (int32_t)(v - 0x80000000u) - INT32_MAX - 1;
}

/* ---------------------------------------------------------------------------------------------
 * Header.
 * ------------------------------------------------------------------------------------------- */
void mproc__hdr_encode(uint8_t out[MPROC__WIRE_HDR_SIZE], uint16_t kind, uint64_t id,
                       uint32_t length, uint32_t arg) {
    mproc__put_u32(out + 0, MPROC__WIRE_MAGIC);
    mproc__put_u16(out + 4, (uint16_t)MPROC__WIRE_VERSION);
    mproc__put_u16(out + 6, kind);
    mproc__put_u64(out + 8, id);
    mproc__put_u32(out + 16, length);
    mproc__put_u32(out + 20, arg);
}

/* Reports a malformed header after clearing the caller's struct, as the contract promises. */
static int hdr_fail(mproc__frame_hdr *h, const char *what, unsigned long long value) {
    if (h)
        memset(h, 0, sizeof *h);
    return mproc__error(MPROC_EPROTO, "malformed frame header: %s (%llu)", what, value);
}

uint16_t mproc__hdr_kind(const uint8_t *frame) { return mproc__get_u16(frame + 6); }
uint64_t mproc__hdr_id(const uint8_t *frame) { return mproc__get_u64(frame + 8); }
uint32_t mproc__hdr_arg(const uint8_t *frame) { return mproc__get_u32(frame + 20); }

void mproc__hello_encode(uint8_t out[MPROC__WIRE_HELLO_SIZE], uint64_t fingerprint, uint32_t tasks) {
    mproc__put_u64(out, fingerprint);
    mproc__put_u32(out + 8, tasks);
}

int mproc__hello_decode(const uint8_t *payload, size_t len, uint64_t *fingerprint, uint32_t *tasks) {
    if (!payload || len != MPROC__WIRE_HELLO_SIZE)
        return mproc__error(MPROC_EPROTO, "malformed HELLO: %zu payload bytes, want %u", len, MPROC__WIRE_HELLO_SIZE);
    *fingerprint = mproc__get_u64(payload);
    *tasks = mproc__get_u32(payload + 8);
    return 0;
}

int mproc__hdr_decode(const uint8_t *buf, size_t len, mproc__frame_hdr *h) {
    if (!h)
        return mproc__error(MPROC_EPROTO, "malformed frame header: no output struct");
    if (!buf)
        return hdr_fail(h, "no header bytes", 0);
    if (len < MPROC__WIRE_HDR_SIZE)
        return hdr_fail(h, "shorter than 24 bytes", (unsigned long long)len);
    mproc__frame_hdr d;
    d.magic = mproc__get_u32(buf + 0);
    d.version = mproc__get_u16(buf + 4);
    d.kind = mproc__hdr_kind(buf);
    d.id = mproc__hdr_id(buf);
    d.length = mproc__get_u32(buf + 16);
    d.arg = mproc__hdr_arg(buf);
    if (d.magic != MPROC__WIRE_MAGIC)
        return hdr_fail(h, "bad magic, not an mproc frame", d.magic);
    if (d.version != MPROC__WIRE_VERSION)
        return hdr_fail(h, "unsupported wire version", d.version);
    if (d.kind < 1 || d.kind > MPROC__FRAME_KIND_MAX)
        return hdr_fail(h, "unknown frame kind", d.kind);
    if (d.length > MPROC__WIRE_MAX_PAYLOAD)
        return hdr_fail(h, "payload length over the 2 GiB limit", d.length);
    *h = d;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Shared payload checks.
 * ------------------------------------------------------------------------------------------- */

/* Reads and checks the 8-byte prefix common to TASK and RESULT payloads. On success *rest is the
 * number of bytes after the prefix. */
static int prefix_decode(const char *what, const uint8_t *payload, size_t len, uint32_t *count,
                         uint32_t *item_size, size_t *rest) {
    if (!payload)
        return mproc__error(MPROC_EPROTO, "malformed %s payload: no bytes", what);
    if (len > MPROC__WIRE_MAX_PAYLOAD)
        return mproc__error(MPROC_EPROTO, "malformed %s payload: %zu bytes is over the limit",
                            what, len);
    if (len < 8)
        return mproc__error(MPROC_EPROTO,
                            "malformed %s payload: %zu bytes, shorter than its 8-byte prefix",
                            what, len);
    *count = mproc__get_u32(payload);
    *item_size = mproc__get_u32(payload + 4);
    if (*count < 1 || *count > MPROC__WIRE_MAX_ITEMS)
        return mproc__error(MPROC_EPROTO,
                            "malformed %s payload: item count %u is outside 1..%u", what,
                            (unsigned)*count, (unsigned)MPROC__WIRE_MAX_ITEMS);
    *rest = len - 8;
    return 0;
}

/* Packed form: exactly count*item_size bytes must remain, checked by division so nothing wraps. */
static int packed_check(const char *what, uint32_t count, uint32_t item_size, size_t rest) {
    if (rest % item_size != 0 || rest / item_size != count)
        return mproc__error(MPROC_EPROTO,
                            "malformed %s payload: %u items of %u bytes but %zu data bytes",
                            what, (unsigned)count, (unsigned)item_size, rest);
    return 0;
}

/* True for the codes in the public error table (the only statuses a peer may report). */
static int known_error_code(int32_t status) {
    switch (status) {
#define MPROC__WIRE_CASE(name, code, msg) case (code):
        MPROC_ERRNO_MAP(MPROC__WIRE_CASE)
#undef MPROC__WIRE_CASE
        return 1;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * TASK / INIT payloads.
 * ------------------------------------------------------------------------------------------- */

size_t mproc__wire_lens_size(uint32_t count) { return ((size_t)count * 4 + 7) & ~(size_t)7; }

/* Variable form: a table of count u32 lengths padded with zeros to a multiple of 8 bytes (so
 * the first item is 8-byte aligned in the frame), then data whose size equals their sum. */
static int items_var_check(const uint8_t *lens, uint32_t count, size_t rest, size_t *data_len) {
    size_t table = mproc__wire_lens_size(count);
    if (rest < table)
        return mproc__error(MPROC_EPROTO,
                            "malformed task payload: %u item lengths need %zu bytes, %zu present",
                            (unsigned)count, table, rest);
    for (size_t k = (size_t)count * 4; k < table; k++)
        if (lens[k] != 0)
            return mproc__error(MPROC_EPROTO, "malformed task payload: non-zero length-table padding");
    size_t avail = rest - table; /* count <= 2^26: no wrap */
    size_t sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t l = mproc__get_u32(lens + (size_t)i * 4);
        if (l > avail - sum)
            return mproc__error(MPROC_EPROTO,
                                "malformed task payload: item %u length %u runs past the %zu "
                                "data bytes present",
                                (unsigned)i, (unsigned)l, avail);
        sum += l;
    }
    if (sum != avail)
        return mproc__error(MPROC_EPROTO,
                            "malformed task payload: item lengths sum to %zu but %zu data bytes "
                            "follow",
                            sum, avail);
    *data_len = avail;
    return 0;
}

int mproc__items_decode(const uint8_t *payload, size_t len, mproc__items *out) {
    if (!out)
        return mproc__error(MPROC_EPROTO, "malformed task payload: no output struct");
    memset(out, 0, sizeof *out);
    uint32_t count = 0, item_size = 0; /* set by prefix_decode; zeroed so -O3 sees it too */
    size_t rest = 0, data_len = 0;
    int rc = prefix_decode("task", payload, len, &count, &item_size, &rest);
    if (rc)
        return rc;
    const uint8_t *p = payload + 8;
    if (item_size != 0) {
        if ((rc = packed_check("task", count, item_size, rest)) != 0)
            return rc;
        out->data = p;
        out->data_len = rest;
    } else {
        if ((rc = items_var_check(p, count, rest, &data_len)) != 0)
            return rc;
        out->lens = p;
        out->data = p + mproc__wire_lens_size(count);
        out->data_len = data_len;
    }
    out->count = count;
    out->item_size = item_size;
    return 0;
}

const uint8_t *mproc__items_next(const mproc__items *it, uint32_t i, size_t *cursor,
                                 size_t *item_len) {
    *item_len = 0;
    if (!it || !it->data || i >= it->count || *cursor > it->data_len)
        return NULL;
    size_t l = it->item_size ? it->item_size : mproc__get_u32(it->lens + (size_t)i * 4);
    if (l > it->data_len - *cursor)
        return NULL;
    const uint8_t *p = it->data + *cursor;
    *cursor += l;
    *item_len = l;
    return p;
}

void mproc__task_prefix_encode(uint8_t out[MPROC__WIRE_TASK_PREFIX], uint32_t count,
                               uint32_t item_size) {
    mproc__put_u32(out, count);
    mproc__put_u32(out + 4, item_size);
}

/* ---------------------------------------------------------------------------------------------
 * RESULT / INIT_RESULT payloads.
 * ------------------------------------------------------------------------------------------- */

/* Table form: count {i32 status, u32 len} entries, then the blobs exactly to the end. */
static int results_table_check(const uint8_t *table, uint32_t count, size_t rest,
                               size_t *data_len) {
    if (rest / MPROC__WIRE_RESULT_ENTRY < count)
        return mproc__error(MPROC_EPROTO,
                            "malformed result payload: %u table entries need %zu bytes, %zu "
                            "present",
                            (unsigned)count, (size_t)count * MPROC__WIRE_RESULT_ENTRY, rest);
    size_t avail = rest - (size_t)count * MPROC__WIRE_RESULT_ENTRY; /* count <= 2^26 */
    size_t sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = table + (size_t)i * MPROC__WIRE_RESULT_ENTRY;
        int32_t status = get_i32(e);
        uint32_t l = mproc__get_u32(e + 4);
        if (status != 0 && !known_error_code(status))
            return mproc__error(MPROC_EPROTO,
                                "malformed result payload: item %u has status %ld, which is "
                                "neither 0 nor an MPROC_E* code",
                                (unsigned)i, (long)status);
        if (l > avail - sum)
            return mproc__error(MPROC_EPROTO,
                                "malformed result payload: item %u blob of %u bytes runs past "
                                "the %zu data bytes present",
                                (unsigned)i, (unsigned)l, avail);
        sum += l;
    }
    if (sum != avail)
        return mproc__error(MPROC_EPROTO,
                            "malformed result payload: blob lengths sum to %zu but %zu data "
                            "bytes follow",
                            sum, avail);
    *data_len = avail;
    return 0;
}

int mproc__results_decode(const uint8_t *payload, size_t len, mproc__results *out) {
    if (!out)
        return mproc__error(MPROC_EPROTO, "malformed result payload: no output struct");
    memset(out, 0, sizeof *out);
    uint32_t count = 0, item_size = 0; /* set by prefix_decode; zeroed so -O3 sees it too */
    size_t rest = 0, data_len = 0;
    int rc = prefix_decode("result", payload, len, &count, &item_size, &rest);
    if (rc)
        return rc;
    const uint8_t *p = payload + 8;
    if (item_size != 0) {
        if ((rc = packed_check("result", count, item_size, rest)) != 0)
            return rc;
        out->data = p;
        out->data_len = rest;
    } else {
        if ((rc = results_table_check(p, count, rest, &data_len)) != 0)
            return rc;
        out->table = p;
        out->data = p + (size_t)count * MPROC__WIRE_RESULT_ENTRY;
        out->data_len = data_len;
    }
    out->count = count;
    out->item_size = item_size;
    return 0;
}

const uint8_t *mproc__results_next(const mproc__results *r, uint32_t i, size_t *cursor,
                                   int *status, size_t *blob_len) {
    *status = 0;
    *blob_len = 0;
    if (!r || !r->data || i >= r->count || *cursor > r->data_len)
        return NULL;
    size_t l = r->item_size;
    int st = 0;
    if (l == 0) {
        const uint8_t *e = r->table + (size_t)i * MPROC__WIRE_RESULT_ENTRY;
        st = (int)get_i32(e);
        l = mproc__get_u32(e + 4);
    }
    if (l > r->data_len - *cursor)
        return NULL;
    const uint8_t *p = r->data + *cursor;
    *cursor += l;
    *status = st;
    *blob_len = l;
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * Result buffer and iovec helpers.
 * ------------------------------------------------------------------------------------------- */
uint8_t *mproc__rbuf_reserve(mproc__rbuf *b, size_t extra) {
    if (!b)
        return NULL;
    if (extra > SIZE_MAX - b->len) {
        mproc__error(MPROC_ENOMEM, "result buffer: %zu more bytes would overflow size_t", extra);
        return NULL;
    }
    size_t need = b->len + extra;
    if (b->buf && need <= b->cap)
        return b->buf + b->len;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb) {
        mproc__error(MPROC_ENOMEM, "result buffer: cannot grow to %zu bytes", cap);
        return NULL;
    }
    b->buf = nb;
    b->cap = cap;
    return b->buf + b->len;
}

int mproc__rbuf_append(mproc__rbuf *b, const void *data, size_t len) {
    if (!b || (!data && len > 0))
        return mproc__error(MPROC_EINVAL, "result buffer: NULL buffer or data");
    uint8_t *p = mproc__rbuf_reserve(b, len);
    if (!p)
        return mproc__error_keep(MPROC_ENOMEM);
    if (len > 0)
        memcpy(p, data, len);
    b->len += len;
    return 0;
}

void mproc__rbuf_free(mproc__rbuf *b) {
    if (!b)
        return;
    free(b->buf);
    b->buf = NULL;
    b->len = 0;
    b->cap = 0;
}

size_t mproc__iov_total(const struct iovec *iov, int iovcnt) {
    size_t total = 0;
    if (!iov)
        return 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SIZE_MAX - total)
            return SIZE_MAX;
        total += iov[i].iov_len;
    }
    return total;
}

/* ---------------------------------------------------------------------------------------------
 * BATCH payloads: whole frames back to back, each padded to 8 bytes.
 * ------------------------------------------------------------------------------------------- */

size_t mproc__batch_padded(size_t n) { return (n + 7) & ~(size_t)7; }

int mproc__batch_next(const uint8_t *payload, size_t len, size_t *cursor, mproc__frame_hdr *h,
                      const uint8_t **sub, size_t *sub_len) {
    *sub = NULL;
    *sub_len = 0;
    if (!payload || *cursor > len)
        return mproc__error(MPROC_EPROTO, "malformed batch: cursor past the end");
    if (*cursor == len) return 0;
    const uint8_t *p = payload + *cursor;
    size_t rest = len - *cursor;
    int rc = mproc__hdr_decode(p, rest, h);
    if (rc < 0) return rc;
    if (h->kind == MPROC__FRAME_BATCH)
        return mproc__error(MPROC_EPROTO, "malformed batch: a batch inside a batch");
    size_t n = MPROC__WIRE_HDR_SIZE + (size_t)h->length;
    if (n > rest)
        return mproc__error(MPROC_EPROTO, "malformed batch: a %zu-byte sub-frame in %zu bytes", n, rest);
    size_t padded = mproc__batch_padded(n);
    if (padded > rest)
        return mproc__error(MPROC_EPROTO, "malformed batch: sub-frame padding missing");
    for (size_t k = n; k < padded; k++)
        if (p[k] != 0) return mproc__error(MPROC_EPROTO, "malformed batch: non-zero padding");
    *sub = p;
    *sub_len = n;
    *cursor += padded;
    return 1;
}
