/* registry.c - the task table: name -> function, the same on every rank.
 *
 * Tasks register themselves from constructors (MPROC_TASK* macros) before main runs. mproc_init
 * freezes the table: sorts it by name so every rank numbers tasks identically whatever the link
 * order, assigns each its id (the number that travels in frames, never a pointer), and computes
 * a fingerprint that the MPI backend compares across ranks.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static mproc_task *pending;     /* registered, not yet frozen (constructor order) */
static mproc_task **table;      /* frozen, sorted by name */
static size_t table_len;
static int frozen;

void mproc__task_register(mproc_task *t) {
    if (!t || !t->name || !t->run) return;
    for (mproc_task *p = pending; p; p = p->next)
        if (p == t) return;
    t->next = pending;
    t->id = -1;
    pending = t;
}

static int by_name(const void *a, const void *b) {
    const mproc_task *x = *(mproc_task *const *)a, *y = *(mproc_task *const *)b;
    return strcmp(x->name, y->name);
}

int mproc__registry_freeze(void) {
    if (frozen) return 0;
    size_t n = 0;
    for (mproc_task *p = pending; p; p = p->next) n++;
    mproc_task **t = calloc(n ? n : 1, sizeof *t);
    if (!t) return mproc__error(MPROC_ENOMEM, "mproc_init: no memory for the task table");
    size_t i = 0;
    for (mproc_task *p = pending; p; p = p->next) t[i++] = p;
    qsort(t, n, sizeof *t, by_name);
    for (i = 0; i + 1 < n; i++) {
        if (strcmp(t[i]->name, t[i + 1]->name) == 0) {
            int rc = mproc__error(MPROC_EREGISTRY, "two tasks are registered as '%s'", t[i]->name);
            free(t);
            return rc;
        }
    }
    for (i = 0; i < n; i++) t[i]->id = (int32_t)i;
    table = t;
    table_len = n;
    frozen = 1;
    return 0;
}

size_t mproc__registry_count(void) { return table_len; }

const mproc_task *mproc__registry_get(uint32_t id) {
    return (frozen && id < table_len) ? table[id] : NULL;
}

const mproc_task *mproc_task_find(const char *name) {
    if (!name) {
        mproc__error(MPROC_EINVAL, "mproc_task_find: name is NULL");
        return NULL;
    }
    if (!frozen) {
        mproc__error(MPROC_ENOTINIT, "mproc_task_find: call mproc_init(&argc, &argv) first");
        return NULL;
    }
    size_t lo = 0, hi = table_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, table[mid]->name);
        if (c == 0) return table[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    mproc__error(MPROC_ENOTASK, "mproc_task_find: no task named '%.200s' is registered (register it at file "
                 "scope with MPROC_TASK)", name);
    return NULL;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t mproc__registry_fingerprint(void) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < table_len; i++) {
        const mproc_task *t = table[i];
        uint64_t sizes[2] = {(uint64_t)t->in_size, (uint64_t)t->out_size};
        h = fnv1a(h, t->name, strlen(t->name) + 1);
        h = fnv1a(h, sizes, sizeof sizes);
    }
    return h;
}

int mproc__task_check(const mproc_task *t, const char *fn) {
    if (!t) return mproc__error(MPROC_ENOTASK, "%s: task is NULL (pass &<fn>_task or mproc_task_find(\"name\"))", fn);
    if (!frozen) return mproc__error(MPROC_ENOTINIT, "%s: call mproc_init() first", fn);
    if (t->id < 0 || (size_t)t->id >= table_len || table[t->id] != t)
        return mproc__error(MPROC_ENOTASK,
                            "%s: task '%s' is not registered (register it at file scope with "
                            "MPROC_TASK before mproc_init)",
                            fn, t->name ? t->name : "?");
    return 0;
}
