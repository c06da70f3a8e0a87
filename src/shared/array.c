/* array.c - Value and Array: elements in a block of the arena, zeroed, with an optional Lock of
 * their own (a separate Lock object whose handle the block keeps), as Python's
 * multiprocessing.Array(typecode, n, lock=True).
 */
#include "shared/shared.h"

typedef struct shared_array {
    uint64_t elem_size, count;
    mproc_lock lock;
    int has_lock;
    char pad[128 - 16 - sizeof(mproc_lock) - sizeof(int)]; /* elements on cache lines of their own */
} shared_array;

static int array_create(mproc_array *out, size_t elem_size, size_t count, int with_lock, const char *fn) {
    if (!out) return mproc__error(MPROC_EINVAL, "%s: out is NULL", fn);
    if (elem_size == 0 || count == 0)
        return mproc__error(MPROC_EINVAL, "%s: %zu elements of %zu bytes: want at least one byte", fn, count, elem_size);
    if (count > ((size_t)1 << 40) / elem_size)
        return mproc__error(MPROC_EINVAL, "%s: %zu elements of %zu bytes is too large", fn, count, elem_size);
    int rc;
    mproc_lock lock = {{0}};
    if (with_lock && (rc = mproc_lock_create(&lock)) < 0) return rc;
    shared_array *a;
    if ((rc = mproc__sh_alloc(MPROC__SH_ARRAY, sizeof *a + elem_size * count, &out->ref, (void **)&a, fn)) < 0) {
        if (with_lock) mproc_lock_free(&lock);
        return rc;
    }
    a->elem_size = elem_size;
    a->count = count;
    a->lock = lock;
    a->has_lock = with_lock != 0;
    return 0;
}

int mproc_array_create(mproc_array *out, size_t elem_size, size_t count, int with_lock) {
    return array_create(out, elem_size, count, with_lock, "mproc_array_create");
}

int mproc_value_create(mproc_array *out, size_t size) {
    return array_create(out, size, 1, 1, "mproc_value_create");
}

static shared_array *array_of(const mproc_array *arr, const char *fn, int *rc) {
    return mproc__sh_get(arr ? &arr->ref : NULL, MPROC__SH_ARRAY, fn, rc);
}

void *mproc_array_data(const mproc_array *arr) {
    int rc;
    shared_array *a = array_of(arr, "mproc_array_data", &rc);
    if (!a && rc == MPROC__SH_REMOTE)
        mproc__error(MPROC_EREMOTE, "mproc_array_data: the array is on another node: use mproc_array_read, "
                                    "mproc_array_write or mproc_array_add_i64 here");
    return a ? (void *)(a + 1) : NULL;
}

long mproc_array_count(const mproc_array *arr) {
    int rc;
    shared_array *a = array_of(arr, "mproc_array_count", &rc);
    if (!a && rc == MPROC__SH_REMOTE) {
        mproc__sh_call c = {.op = MPROC__OP_ARRAY_COUNT, .ref = &arr->ref, .fn = "mproc_array_count"};
        rc = mproc__sh_remote(&c);
        return rc < 0 ? rc : (long)c.value;
    }
    return a ? (long)a->count : rc;
}

/* offset and len in bytes, inside the elements. */
static int in_range(const shared_array *a, size_t offset, size_t len, const char *fn) {
    uint64_t bytes = a->elem_size * a->count;
    if (offset > bytes || len > bytes - offset)
        return mproc__error(MPROC_EINVAL, "%s: bytes %zu..%zu are outside the array's %llu bytes", fn, offset, offset + len,
                            (unsigned long long)bytes);
    return 0;
}

int mproc_array_read(const mproc_array *arr, size_t offset, void *buf, size_t len) {
    int rc;
    if (!buf && len) return mproc__error(MPROC_EINVAL, "mproc_array_read: buf is NULL");
    shared_array *a = array_of(arr, "mproc_array_read", &rc);
    if (!a && rc == MPROC__SH_REMOTE) {
        mproc__sh_call c = {.op = MPROC__OP_ARRAY_READ, .ref = &arr->ref, .a = (int64_t)offset, .b = (int64_t)len,
                            .out = buf, .out_cap = len, .fn = "mproc_array_read"};
        return mproc__sh_remote(&c);
    }
    if (!a) return rc;
    if ((rc = in_range(a, offset, len, "mproc_array_read")) < 0) return rc;
    if (len) memcpy(buf, (const char *)(a + 1) + offset, len);
    return 0;
}

int mproc_array_write(const mproc_array *arr, size_t offset, const void *buf, size_t len) {
    int rc;
    if (!buf && len) return mproc__error(MPROC_EINVAL, "mproc_array_write: buf is NULL");
    shared_array *a = array_of(arr, "mproc_array_write", &rc);
    if (!a && rc == MPROC__SH_REMOTE) {
        mproc__sh_call c = {.op = MPROC__OP_ARRAY_WRITE, .ref = &arr->ref, .a = (int64_t)offset, .in = buf, .in_len = len,
                            .fn = "mproc_array_write"};
        return mproc__sh_remote(&c);
    }
    if (!a) return rc;
    if ((rc = in_range(a, offset, len, "mproc_array_write")) < 0) return rc;
    if (len) memcpy((char *)(a + 1) + offset, buf, len);
    return 0;
}

int mproc_array_add_i64(const mproc_array *arr, size_t index, int64_t delta, int64_t *after) {
    int rc;
    shared_array *a = array_of(arr, "mproc_array_add_i64", &rc);
    if (!a && rc == MPROC__SH_REMOTE) {
        mproc__sh_call c = {.op = MPROC__OP_ARRAY_ADD, .ref = &arr->ref, .a = (int64_t)index, .b = delta, .fn = "mproc_array_add_i64"};
        rc = mproc__sh_remote(&c);
        if (rc == 0 && after) *after = c.value;
        return rc;
    }
    if (!a) return rc;
    if (a->elem_size != 8) return mproc__error(MPROC_ESIZE, "mproc_array_add_i64: the elements are %llu bytes, not 8", (unsigned long long)a->elem_size);
    if (index >= a->count) return mproc__error(MPROC_EINVAL, "mproc_array_add_i64: index %zu, the array has %llu", index, (unsigned long long)a->count);
    int64_t v = __atomic_add_fetch((int64_t *)(void *)(a + 1) + index, delta, __ATOMIC_SEQ_CST);
    if (after) *after = v;
    return 0;
}

int mproc_array_lock(const mproc_array *arr, mproc_lock *out) {
    int rc;
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_array_lock: out is NULL");
    shared_array *a = array_of(arr, "mproc_array_lock", &rc);
    if (!a && rc == MPROC__SH_REMOTE) {
        mproc__sh_call c = {.op = MPROC__OP_ARRAY_LOCK, .ref = &arr->ref, .fn = "mproc_array_lock"};
        rc = mproc__sh_remote(&c);
        if (rc == 0) out->ref = c.out_ref;
        return rc;
    }
    if (!a) return rc;
    if (!a->has_lock) return mproc__error(MPROC_ESTATE, "mproc_array_lock: the array was made without a lock");
    *out = a->lock;
    return 0;
}

int mproc_array_free(mproc_array *arr) {
    int rc;
    shared_array *a = array_of(arr, "mproc_array_free", &rc);
    if (!a && rc == MPROC__SH_REMOTE) return mproc__sh_forward_free(MPROC__OP_ARRAY_FREE, &arr->ref, "mproc_array_free");
    if (!a) return rc;
    /* Its lock first: a held one refuses (EBUSY) and nothing is freed. */
    mproc_lock lock = a->lock;
    if (a->has_lock && (rc = mproc__sh_lock_free_as(&lock, "mproc_array_free")) < 0) return rc;
    return mproc__sh_free(&arr->ref, MPROC__SH_ARRAY, "mproc_array_free");
}
