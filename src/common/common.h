/* common.h - what every layer of the library may use: error reporting (errors.c), the task
 * registry (registry.c), clocks (clock.c), the run-time state (runtime.c) and strict numbers
 * for the MPROC_ environment variables (numbers.c). Nothing here
 * is public, and nothing here calls any other part of mproc.
 */
#ifndef MPROC_COMMON_H
#define MPROC_COMMON_H

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

/* The numbers of MPROC_ variables (numbers.c), whole strings or nothing: no spaces, no sign, no
 * hexadecimal, nan or inf. A count: decimal digits only. Seconds: a plain decimal, at most one
 * point ('.', whatever the program's locale), an optional exponent, finite and not so small
 * that it rounds to 0 ("1e-400": a tiny timeout must not turn into "never"). 0, or -1 (the
 * caller names the variable in its error). */
int mproc__parse_count(const char *s, uint64_t *out);
int mproc__parse_seconds(const char *s, double *out);
/* An MPROC_ variable's value, or NULL when it is unset or empty: `MPROC_X= prog` (a job script
 * that clears a setting that way) means the default, for every variable alike. */
const char *mproc__env(const char *name);

/* Registry (registry.c). Freezing sorts the table by name and assigns ids; done by mproc_init,
 * idempotent. */
int mproc__registry_freeze(void);
size_t mproc__registry_count(void);
const mproc_task *mproc__registry_get(uint32_t id);
/* FNV-1a 64 over the sorted names and sizes: equal on every rank built from the same tasks. */
uint64_t mproc__registry_fingerprint(void);
/* Checks a task descriptor passed by a user: registered and frozen. 0 or an error. */
int mproc__task_check(const mproc_task *t, const char *fn);

/* Run-time state (runtime.c), set by mproc_init/mproc_finalize (init.c). */
struct mproc__backend_ops;
/* Records the started backend and the call that finalizes the library (for a backend that
 * must finalize it from a hook, mproc__runtime_finalize). */
void mproc__runtime_start(const struct mproc__backend_ops *ops, mproc_backend_kind kind, int (*finalize)(void));
void mproc__runtime_stop(void);
/* The backend mproc_init chose, or NULL before init and after finalize. */
const struct mproc__backend_ops *mproc__backend(void);
mproc_backend_kind mproc__runtime_kind(void);
int mproc__runtime_finalized(void);
/* 1 in the process that called mproc_init, 0 in its forked children (workers, Processes). */
int mproc__runtime_is_init_process(void);
/* The pool whose loop this thread runs now (pool/in_callback.h says who sets it and what it
 * refuses): kept here, at the bottom, because files on every level of the pool read it. */
extern _Thread_local mproc_pool *mproc__loop_pool;
/* The pools whose calls a cancel or mproc_iter_free on this thread is settling, innermost
 * first: their callbacks run here while the cancel still uses the pool (pool/cancel.c). */
typedef struct mproc__settling {
    const mproc_pool *pool;
    const void *owner; /* the call being cancelled: it ends only after its callbacks return */
    struct mproc__settling *outer;
} mproc__settling;
extern _Thread_local mproc__settling *mproc__settling_top;
/* Finalizes the library as mproc_finalize() does: a backend's hook (MPI's at the program's
 * own MPI_Finalize) calls this instead of reaching up to the public call. */
int mproc__runtime_finalize(void);
/* 0 when mproc is started, else ENOTINIT (or ESTATE after finalize) naming fn. */
int mproc__require_init(const char *fn);

/* Monotonic clock in seconds. */
double mproc__now(void);
/* Deadline for a timeout (< 0, INFINITY or more than ~31 years: infinite -> returns -1). */
double mproc__deadline(double timeout);
/* MPROC_EINVAL naming fn when a blocking call's timeout is NaN, else 0: every blocking call
 * checks it first, before it looks whether it must wait at all. */
int mproc__timeout_check(double timeout, const char *fn);
/* Seconds left until deadline (-1 for infinite, 0 if passed). */
double mproc__remaining(double deadline);

/* Marks a handle dead just before its memory is freed. A plain store there is dead to the
 * compiler (nothing reads it before the free) and is dropped; this one stays, so a second free
 * or a use after free finds the mark wherever the allocator leaves those bytes alone (valgrind,
 * other mallocs) and fails with MPROC_EBADHANDLE. */
static inline void mproc__mark_dead(uint32_t *magic, uint32_t dead) { *(volatile uint32_t *)magic = dead; }

#endif /* MPROC_COMMON_H */
