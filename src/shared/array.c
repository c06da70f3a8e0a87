/* array.c - Value and Array: elements in a block of the arena, zeroed, with an optional Lock of
 * their own (a separate Lock object whose handle the block keeps), as Python's
 * multiprocessing.Array(typecode, n, lock=True).
 */
#include "shared/shared.h"

typedef struct shared_array {
    uint64_t elem_size, count;
    mproc_lock lock;
    int has_lock;
    char pad[64 - 16 - sizeof(mproc_lock) - sizeof(int)]; /* elements on a cache line of their own */
} shared_array;

int mproc_array_create(mproc_array *out, size_t elem_size, size_t count, int with_lock) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_array_create: out is NULL");
    if (elem_size == 0 || count == 0) return mproc__error(MPROC_EINVAL, "mproc_array_create: %zu elements of %zu bytes: want at least one byte", count, elem_size);
    if (count > ((size_t)1 << 40) / elem_size)
        return mproc__error(MPROC_EINVAL, "mproc_array_create: %zu elements of %zu bytes is too large", count, elem_size);
    int rc;
    mproc_lock lock = {{0}};
    if (with_lock && (rc = mproc_lock_create(&lock)) < 0) return rc;
    shared_array *a;
    if ((rc = mproc__sh_alloc(MPROC__SH_ARRAY, sizeof *a + elem_size * count, &out->ref, (void **)&a)) < 0) {
        if (with_lock) mproc_lock_free(&lock);
        return rc;
    }
    a->elem_size = elem_size;
    a->count = count;
    a->lock = lock;
    a->has_lock = with_lock != 0;
    return 0;
}

int mproc_value_create(mproc_array *out, size_t size) { return mproc_array_create(out, size, 1, 1); }

void *mproc_array_data(const mproc_array *arr) {
    int rc;
    shared_array *a = mproc__sh_get(arr ? &arr->ref : NULL, MPROC__SH_ARRAY, "mproc_array_data", &rc);
    return a ? (void *)(a + 1) : NULL;
}

long mproc_array_count(const mproc_array *arr) {
    int rc;
    shared_array *a = mproc__sh_get(arr ? &arr->ref : NULL, MPROC__SH_ARRAY, "mproc_array_count", &rc);
    return a ? (long)a->count : rc;
}

int mproc_array_lock(const mproc_array *arr, mproc_lock *out) {
    int rc;
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_array_lock: out is NULL");
    shared_array *a = mproc__sh_get(arr ? &arr->ref : NULL, MPROC__SH_ARRAY, "mproc_array_lock", &rc);
    if (!a) return rc;
    if (!a->has_lock) return mproc__error(MPROC_ESTATE, "mproc_array_lock: the array was made without a lock");
    *out = a->lock;
    return 0;
}

int mproc_array_free(mproc_array *arr) {
    int rc;
    shared_array *a = mproc__sh_get(arr ? &arr->ref : NULL, MPROC__SH_ARRAY, "mproc_array_free", &rc);
    if (!a) return rc;
    mproc_lock lock = a->lock;
    int has_lock = a->has_lock;
    if ((rc = mproc__sh_free(&arr->ref, MPROC__SH_ARRAY, "mproc_array_free")) < 0) return rc;
    return has_lock ? mproc_lock_free(&lock) : 0;
}
