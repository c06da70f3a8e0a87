/* internal.h - small shared helpers of the library's own files: error reporting, the task
 * registry, clocks. Nothing here is public.
 */
#ifndef MPROC_INTERNAL_H
#define MPROC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mproc.h"

#if defined(__GNUC__) || defined(__clang__)
#define MPROC__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MPROC__PRINTF(a, b)
#endif

/* Records a detail sentence for mproc_last_error() in this thread and returns code, so a
 * failure reads `return mproc__error(MPROC_EINVAL, "mproc_map: n items but in is NULL");`. */
int mproc__error(int code, const char *fmt, ...) MPROC__PRINTF(2, 3);
/* Keeps the detail already recorded (set by a deeper call) and returns code. */
int mproc__error_keep(int code);

/* Registry (registry.c). Freezing sorts the table by name and assigns ids; done by mproc_init,
 * idempotent. */
int mproc__registry_freeze(void);
size_t mproc__registry_count(void);
const mproc_task *mproc__registry_get(uint32_t id);
/* FNV-1a 64 over the sorted names and sizes: equal on every rank built from the same tasks. */
uint64_t mproc__registry_fingerprint(void);
/* Checks a task descriptor passed by a user: registered and frozen. 0 or an error. */
int mproc__task_check(const mproc_task *t, const char *fn);

/* Library state (init.c). */
int mproc__require_init(const char *fn);

/* Monotonic clock in seconds. */
double mproc__now(void);
/* Deadline for a timeout (< 0: infinite -> returns -1). */
double mproc__deadline(double timeout);
/* Seconds left until deadline (-1 for infinite, 0 if passed). */
double mproc__remaining(double deadline);

#endif /* MPROC_INTERNAL_H */
