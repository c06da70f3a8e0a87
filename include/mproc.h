/* mproc.h - the whole public API of mproc: Python's multiprocessing (Process, Pool, apply, map,
 * imap) for C, on local fork workers or across MPI ranks with the same source.
 *
 * Conventions (read these once):
 *  - Every function that can fail returns an int: 0 (or a documented non-negative value) on
 *    success, a negative MPROC_E* code on failure. mproc_strerror()/mproc_err_name() name a code;
 *    mproc_last_error() gives a sentence with the detail of the most recent failure in the
 *    calling thread ("task 'square' failed on worker 1 (pid 4242): bad input 7").
 *  - Bad arguments, one rule everywhere: a NULL, freed or corrupt handle (mproc_pool, mproc_async,
 *    mproc_iter, mproc_process: objects mproc made) is MPROC_EBADHANDLE; a NULL or unregistered
 *    task descriptor is MPROC_ENOTASK; a size that disagrees with the task's declared sizes (an
 *    argument or item of another size, zero included; an out buffer smaller than its result)
 *    is MPROC_ESIZE; any other bad argument (a NULL out-pointer or buffer, a zero item size for
 *    a task of any size, a negative count) is MPROC_EINVAL. Nothing is queued and nothing
 *    changes when a call fails this way.
 *  - Ownership: an object made by mproc_X_create() is freed by mproc_X_free(). Buffers the
 *    library hands out are either borrowed (valid until the stated call, never freed by you) or
 *    owned (freed by you with mproc_free()); each function says which. Out-parameters are
 *    cleared (NULL/0) on failure.
 *  - Input and output arrays passed to an async call must stay valid until it is ready.
 *  - Timeouts are seconds as double; a negative timeout waits forever, 0 polls.
 *  - This header never includes <mpi.h>.
 */
#ifndef MPROC_H
#define MPROC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPROC_VERSION_MAJOR 0
#define MPROC_VERSION_MINOR 1
#define MPROC_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------------
 * Errors: one table, negative codes.
 * ------------------------------------------------------------------------------------------- */
#define MPROC_ERRNO_MAP(X)                                                                       \
    X(EINVAL, -1, "invalid argument")                                                            \
    X(ENOMEM, -2, "out of memory")                                                               \
    X(ETIMEDOUT, -3, "timed out")                                                                \
    X(ETASK, -4, "task failed")                                                                  \
    X(EWORKER, -5, "worker died while running the task")                                         \
    X(ECLOSED, -6, "pool is closed or terminated")                                               \
    X(ESTATE, -7, "operation not valid in this state")                                           \
    X(ENOTASK, -8, "task is not registered")                                                     \
    X(ESIZE, -9, "buffer size does not match the task's data size")                              \
    X(EBADHANDLE, -10, "handle is NULL, freed or corrupt")                                       \
    X(ENOTINIT, -11, "mproc_init has not been called")                                           \
    X(ENOTBUILT, -12, "backend not built into this library")                                     \
    X(EREGISTRY, -13, "task tables differ between ranks")                                        \
    X(EPROTO, -14, "malformed frame from a peer")                                                \
    X(ESYS, -15, "system call failed")                                                           \
    X(EINITFAIL, -16, "pool initializer failed")                                                 \
    X(EBUSY, -17, "resource busy")                                                               \
    X(EOF, -18, "end of iteration")                                                              \
    X(ETOOBIG, -19, "payload too large")                                                         \
    X(ECANCELLED, -20, "task was cancelled")                                                     \
    X(EJOURNAL, -21, "journal belongs to another call")                                          \
    X(EFULL, -22, "queue is full")                                                               \
    X(EEMPTY, -23, "queue is empty")                                                             \
    X(EOWNERDEAD, -24, "acquired a lock whose last holder died")                                 \
    X(EBROKEN, -25, "barrier is broken")                                                         \
    X(EREMOTE, -26, "shared object lives on another node")

typedef enum mproc_errno {
#define MPROC__ERR_ENUM(name, code, msg) MPROC_##name = (code),
    MPROC_ERRNO_MAP(MPROC__ERR_ENUM)
#undef MPROC__ERR_ENUM
} mproc_errno;

/* Static strings for a code; unknown codes give "unknown error" / "UNKNOWN". */
const char *mproc_strerror(int err);
const char *mproc_err_name(int err);
/* Detail of the latest failure returned to the calling thread. Borrowed, never NULL; valid until
 * the next mproc call in this thread. */
const char *mproc_last_error(void);
/* Frees any buffer that mproc documents as "owned by you". */
void mproc_free(void *p);

/* ---------------------------------------------------------------------------------------------
 * Library set-up.
 * ------------------------------------------------------------------------------------------- */
typedef enum mproc_backend_kind {
    MPROC_BACKEND_FORK = 1, /* worker processes made with fork() on this machine */
    MPROC_BACKEND_MPI = 2   /* rank 0 is the master, every other rank a worker */
} mproc_backend_kind;

/* Chooses the backend (MPROC_BACKEND=fork|mpi, else MPI when an MPI launcher started more than
 * one rank, else fork) and starts it. Under MPI, worker ranks never return from this call: they
 * serve tasks until the master calls mproc_finalize(), then exit(0). So the code after
 * mproc_init() is the master's in every mode. argc/argv may be NULL. Calling it twice is an
 * MPROC_ESTATE error. MPROC_BACKEND=fork in a program that an MPI launcher started on more than
 * one rank is MPROC_ESTATE too (each rank would run the whole job on fork workers of its own),
 * unless MPROC_FORK_EACH_RANK=1 says that is meant. A bad value of an MPROC_ variable it reads
 * (MPROC_BACKEND, MPROC_FORK_EACH_RANK, MPROC_SHARED_BROKER, and under MPI every MPROC_MPI_
 * setting, on every rank, whether that rank uses it or not) is MPROC_EINVAL, the message
 * ("mproc_init: MPROC_MPI_LOST_TIMEOUT='abc': want seconds (0: never)") naming it; every failure's
 * message starts with "mproc_init: ". mproc_finalize() is also registered with atexit(). */
int mproc_init(int *argc, char ***argv);
/* Frees every pool still open (terminating its workers), waits for every Process started and
 * not yet joined (as Python waits for its non-daemon children; it does not free them), stops
 * worker ranks, and finalizes MPI if mproc initialized it. Safe to call more than once. */
int mproc_finalize(void);
/* The backend in use, or 0 before mproc_init. */
mproc_backend_kind mproc_backend(void);
/* Short name of the backend in use ("fork", "mpi"), or "none". */
const char *mproc_backend_name(void);
/* CPUs this process may run on (its affinity mask), at least 1. */
int mproc_cpu_count(void);
/* How many workers a pool can have at most: under MPI every executor of every worker rank (one
 * per rank unless MPROC_MPI_EXECUTORS says otherwise; a lost rank's still count; a pool with
 * workers_per_rank set can have fewer); under fork 4096. A pool asked for more gets this many
 * (mproc_pool_size says how many it has). */
int mproc_max_workers(void);

/* ---------------------------------------------------------------------------------------------
 * Tasks: registered by name; arguments and results are bytes, copied.
 *
 * A task is a C function registered once, at file scope, with one of three macros. Each defines
 * a global descriptor named <fn>_task (so two tasks of the same name fail at link time) which
 * you pass to the pool and process calls, or by name with mproc_task_find().
 *
 *   static int echo(mproc_ctx *ctx, const void *in, size_t len) {      bytes in, bytes out
 *       return mproc_return(ctx, in, len);
 *   }
 *   MPROC_TASK(echo);
 *
 *   static int parse(mproc_ctx *ctx, const struct req *in, struct resp *out) {...}
 *   MPROC_TASK_TYPED(parse, struct req, struct resp);                    typed, may fail
 *
 *   static long square(long x) { return x * x; }
 *   MPROC_TASK_VALUE(square, long, long);                                by value, cannot fail
 *
 * A task returns 0, or the result of mproc_fail() which carries a message to the caller.
 * ------------------------------------------------------------------------------------------- */
typedef struct mproc_ctx mproc_ctx;

typedef int (*mproc_task_fn)(mproc_ctx *ctx, const void *in, size_t len);
/* Applies a by-value task to n packed items at once (the fast path of map). */
typedef void (*mproc_batch_fn)(const void *in, void *out, size_t n);

typedef struct mproc_task {
    const char *name;       /* unique name; the key every rank agrees on */
    mproc_task_fn run;      /* runs one item */
    mproc_batch_fn batch;   /* optional: runs many fixed-size items; NULL for most tasks */
    size_t in_size;         /* bytes per input item; 0 = any length */
    size_t out_size;        /* bytes per result; 0 = any length */
    struct mproc_task *next; /* registry chain; internal */
    int32_t id;             /* index in the sorted task table; internal, set by mproc_init */
} mproc_task;

/* Registers a task; called by the macros from a constructor. Internal but must be public. */
void mproc__task_register(mproc_task *t);

#if defined(__GNUC__) || defined(__clang__)
#define MPROC__CONSTRUCTOR(fn) static void fn(void) __attribute__((constructor)); static void fn(void)
#else
#error "mproc needs constructor support (GCC or Clang) to register tasks"
#endif

#define MPROC__DEFINE_TASK(fn, runner, batcher, insz, outsz)                                     \
    mproc_task fn##_task = {#fn, runner, batcher, insz, outsz, NULL, -1};                        \
    MPROC__CONSTRUCTOR(mproc__register_##fn) { mproc__task_register(&fn##_task); }                \
    extern mproc_task fn##_task

/* fn: int fn(mproc_ctx *ctx, const void *in, size_t len) */
#define MPROC_TASK(fn) MPROC__DEFINE_TASK(fn, fn, NULL, 0, 0)

/* fn: int fn(mproc_ctx *ctx, const Tin *in, Tout *out). The input length is checked; the
 * result slot is allocated for you. */
#define MPROC_TASK_TYPED(fn, Tin, Tout)                                                            \
    static int mproc__typed_##fn(mproc_ctx *mproc__ctx, const void *mproc__in, size_t mproc__len) { \
        if (mproc__len != sizeof(Tin)) return mproc__bad_input_size(mproc__ctx, #fn, mproc__len, sizeof(Tin)); \
        Tout *mproc__out = (Tout *)mproc_result_alloc(mproc__ctx, sizeof(Tout));                   \
        if (!mproc__out) return MPROC_ENOMEM;                                                      \
        return fn(mproc__ctx, (const Tin *)mproc__in, mproc__out);                                 \
    }                                                                                              \
    MPROC__DEFINE_TASK(fn, mproc__typed_##fn, NULL, sizeof(Tin), sizeof(Tout))

/* fn: Tout fn(Tin). map over packed arrays runs a tight loop with no per-item overhead. */
#define MPROC_TASK_VALUE(fn, Tin, Tout)                                                            \
    static int mproc__value_##fn(mproc_ctx *mproc__ctx, const void *mproc__in, size_t mproc__len) { \
        if (mproc__len != sizeof(Tin)) return mproc__bad_input_size(mproc__ctx, #fn, mproc__len, sizeof(Tin)); \
        Tout *mproc__out = (Tout *)mproc_result_alloc(mproc__ctx, sizeof(Tout));                   \
        if (!mproc__out) return MPROC_ENOMEM;                                                      \
        *mproc__out = fn(*(const Tin *)mproc__in);                                                 \
        return 0;                                                                                  \
    }                                                                                              \
    static void mproc__batch_##fn(const void *mproc__in, void *mproc__out, size_t mproc__n) {      \
        const Tin *mproc__src = (const Tin *)mproc__in;                                            \
        Tout *mproc__dst = (Tout *)mproc__out;                                                     \
        for (size_t mproc__i = 0; mproc__i < mproc__n; mproc__i++) mproc__dst[mproc__i] = fn(mproc__src[mproc__i]); \
    }                                                                                              \
    MPROC__DEFINE_TASK(fn, mproc__value_##fn, mproc__batch_##fn, sizeof(Tin), sizeof(Tout))

/* Declares a task defined in another file: MPROC_TASK_EXTERN(square); then use &square_task. */
#define MPROC_TASK_EXTERN(fn) extern mproc_task fn##_task

/* Looks a task up by name (after mproc_init); NULL if unknown, with the reason in
 * mproc_last_error(). */
const mproc_task *mproc_task_find(const char *name);

/* Inside a task: the result. mproc_return copies len bytes; mproc_result_alloc gives a buffer
 * of len bytes, owned by mproc, to fill in place (NULL if out of memory). Calling either again
 * replaces the result. A task that sets no result returns zero bytes. */
int mproc_return(mproc_ctx *ctx, const void *data, size_t len);
void *mproc_result_alloc(mproc_ctx *ctx, size_t len);
/* Inside a task: records a printf-style message and returns MPROC_ETASK, so a task fails with
 * `return mproc_fail(ctx, "bad input %d", x);`. The message reaches the caller of get/map. */
int mproc_fail(mproc_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Used by the typed macros. */
int mproc__bad_input_size(mproc_ctx *ctx, const char *task, size_t got, size_t want);

/* Who am I: in the master "MainProcess" and index -1; in a pool worker its name and index
 * 0..n-1 (fork: "PoolWorker-<k>"; MPI: "Worker-rank-<rank>", or "Worker-rank-<rank>.<e>" with
 * several executors per rank); in a Process its name and index -1. */
long mproc_current_pid(void);
const char *mproc_current_name(void);
int mproc_current_index(void);

/* ---------------------------------------------------------------------------------------------
 * Process: one target run once in a new process (a forked child, or a child of a worker rank
 * under MPI), like multiprocessing.Process.
 * ------------------------------------------------------------------------------------------- */
typedef struct mproc_process mproc_process;

/* arg is copied. name may be NULL for "Process-<n>". Free with mproc_process_free(). */
int mproc_process_create(mproc_process **out, const mproc_task *target, const void *arg,
                         size_t arg_len, const char *name);
int mproc_process_start(mproc_process *p);
/* Waits for the process to end: 0 when it has ended, MPROC_ETIMEDOUT if still running. */
int mproc_process_join(mproc_process *p, double timeout);
/* 1 while running, 0 before start or after it ended, or an error code. */
int mproc_process_is_alive(mproc_process *p);
int mproc_process_terminate(mproc_process *p); /* SIGTERM */
int mproc_process_kill(mproc_process *p);      /* SIGKILL */
/* After the process ended: 0 on success, 1 if the task failed, the _exit status it used, or
 * minus the signal number that killed it (as Python). MPROC_ESTATE while running or unstarted. */
int mproc_process_exitcode(mproc_process *p, int *exitcode);
/* Process id (on its host), 0 before start. */
long mproc_process_pid(const mproc_process *p);
/* Borrowed; valid until free. */
const char *mproc_process_name(const mproc_process *p);
/* MPROC_EBUSY if it is still running (join or kill it first); NULL is a no-op. */
int mproc_process_free(mproc_process *p);

/* ---------------------------------------------------------------------------------------------
 * Pool: a fixed set of workers that run tasks, like multiprocessing.Pool.
 * ------------------------------------------------------------------------------------------- */
typedef struct mproc_pool mproc_pool;
typedef struct mproc_async mproc_async;
typedef struct mproc_iter mproc_iter;

typedef struct mproc_pool_opts {
    int processes;                 /* workers; 0 = one per CPU (fork) or every worker the worker
                                    * ranks run (MPI: their executors, see workers_per_rank;
                                    * fewer are spread over the ranks, a round at a time);
                                    * at most mproc_max_workers() (more is capped to it) */
    const mproc_task *initializer; /* run once in each worker as it starts; NULL = none */
    const void *initarg;           /* copied */
    size_t initarg_len;
    int maxtasksperchild;          /* tasks before a worker is replaced; 0 = never */
    int inflight;                  /* frames kept queued per worker, 0..64; 0 = default (2; 3 under
                                    * MPI with executors, whose relay is one more stage); none is
                                    * queued behind a frame running for over 1 ms */
    double task_timeout;           /* seconds a task may run before its worker is killed; 0 = no
                                    * limit; negative or NaN: MPROC_EINVAL */
    int max_retries;               /* times a task whose worker died is retried; 0 = never */
    int workers_per_rank;          /* MPI: at most this many workers on each worker rank (its
                                    * first executors; a rank per node with 32 executors and 1
                                    * here runs one task per node); 0 = all it runs
                                    * (MPROC_MPI_EXECUTORS). More than a rank runs is capped to
                                    * what it runs. Ignored under fork; negative: MPROC_EINVAL */
} mproc_pool_opts;

/* Callbacks run in the master, on the thread that runs the pool's loop (its result thread, or
 * a thread blocked in mproc_apply on an otherwise idle pool): keep them short and do not wait
 * on the pool from inside one. mproc_pool_terminate may be called there (the pool stops once
 * the callback returns); mproc_pool_join, mproc_pool_free, mproc_apply, mproc_map(_items),
 * mproc_finalize, and a wait with a timeout not 0 that only the pool's handles not yet ready
 * could end (mproc_async_wait/get/get_into, mproc_async_wait_any when every handle is such,
 * mproc_async_wait_all when one is, mproc_waitset_next when every member is, mproc_iter_next
 * on the pool's iterator) are MPROC_ESTATE there: each would wait for the loop running the
 * callback. A call that ends inside mproc_async_cancel or mproc_iter_free runs its callbacks
 * in that thread instead (the iterator's last progress call once its tasks are stopped):
 * there the loop runs on elsewhere, so waits work, terminate does not wait, and join, free,
 * mproc_finalize and a wait on the call being cancelled are MPROC_ESTATE (the cancel still
 * uses the pool and ends that call after the callback); the iterator being freed is
 * MPROC_EBADHANDLE. data is borrowed for the duration of the call. */
typedef void (*mproc_result_cb)(void *userdata, const void *data, size_t len);
typedef void (*mproc_error_cb)(void *userdata, int err, const char *message);

/* How far a map, map_async or imap has got. Items are counted when their result (or failure)
 * reaches the master. */
typedef struct mproc_progress {
    size_t done;    /* items finished, failed ones included */
    size_t failed;  /* of those, items that failed (cancelled ones included) */
    size_t total;   /* items in all; 0 while not known (imap_gen before its input ended) */
    double elapsed; /* seconds since the call was made */
    double rate;    /* items finished per second since then */
    double eta;     /* seconds left at that rate; -1 when not known */
    int finished;   /* 1 once every item has finished */
} mproc_progress;
typedef void (*mproc_progress_cb)(void *userdata, const mproc_progress *progress);

typedef struct mproc_call_opts {
    mproc_result_cb callback;      /* apply_async: the result; map_async: the whole out array */
    mproc_error_cb error_callback; /* the first failure */
    void *userdata;
    size_t chunksize;              /* map/imap: items per task; 0 = automatic */
    double timeout;                /* per-task time limit for this call; 0 = the pool's */
    int *item_status;              /* map: optional array of n, filled with 0 or an error code */
    /* Long runs (map, map_async, imap; see mproc_progress below). */
    mproc_progress_cb progress;    /* called in the master as items finish, at most progress_hz
                                    * times a second, and once more when the call is done */
    double progress_hz;            /* 0 = 10 */
    int progress_bar;              /* 1: draw a progress bar on stderr; 0: as MPROC_PROGRESS says;
                                    * -1: never */
    int fail_fast;                 /* map, map_async, map_items: the first failed item stops the
                                    * call - items not yet back end with MPROC_ECANCELLED, running
                                    * ones are killed - and the call returns that item's error. It
                                    * acts when the failing item's chunk comes back, and the other
                                    * items of a chunk that was running are lost with it (their
                                    * results come back together): chunksize 1 stops at once and
                                    * loses nothing that finished */
    const char *journal;           /* map, map_async, map_items(_async), imap, imap_unordered,
                                    * imap_items: a file recording every finished item, so that
                                    * the same call made again after a kill resumes (see
                                    * "Journal" below); NULL = none */
    int journal_sync;              /* MPROC_JOURNAL_INTERVAL (0), _ALWAYS or _NEVER */
} mproc_call_opts;
/* An option that does not apply to a call is MPROC_EINVAL naming it, never ignored: fail_fast,
 * item_status, callback and error_callback on imap; journal, fail_fast, item_status, progress,
 * progress_bar, progress_hz and chunksize on apply_async; journal_sync without a journal. A
 * negative or NaN timeout is MPROC_EINVAL. */

/* Journal (mproc_call_opts.journal): every finished item's index, status and result are appended
 * to the file as checksummed records, in batched writes by a thread of their own (each record
 * reaches the file within about 0.1 s of its item's end, and all of them when the call ends). Made
 * again with the same journal after the program was killed (walltime, kill -9, node loss), the
 * call takes the items found there from it - their results land in out, their statuses in
 * item_status, failures fail again with their message - runs only the others, and returns as if it
 * had never stopped. A torn or corrupt tail is cut off. A journal made by another call (task name,
 * item sizes, count or a fingerprint of the input differ, the message says which; a map's and an
 * imap's or map_items' differ in their item sizes) is refused with MPROC_EJOURNAL and left
 * untouched. One run at a time per journal: a call on a journal that another call of this program
 * or another program is using is refused with MPROC_EBUSY (naming the other program's pid) and the
 * file left untouched (a POSIX record lock: on a file system without them, such as some NFS mounts
 * without a lock daemon, two programs are not kept apart). Items that never finished of their own
 * (cancelled, the pool terminated) and results over 64 MiB are not recorded, so they run again. A finished journal stays:
 * the same call then returns at once; delete the file to start over. A journal that cannot be
 * opened, read or given its header is MPROC_ESYS before any item runs; a write error after that
 * (disk full) does not stop the map: it ends with MPROC_ESYS naming the file once every item has
 * run (also when items failed: their statuses are as without a journal and the first failure is
 * named in the message; a cancelled or closed call keeps its code, the journal's failure in its
 * message). Sync policy: what was written survives a kill of the process; surviving a crash of the
 * machine needs fdatasync: at most once a second (INTERVAL: a machine crash loses about the last
 * second of records, which then run again), after every write and when the call ends (ALWAYS), or
 * never (NEVER: the kernel writes the file back in its own time). */
enum { MPROC_JOURNAL_NEVER = -1, MPROC_JOURNAL_INTERVAL = 0, MPROC_JOURNAL_ALWAYS = 1 };

/* opts may be NULL. Under MPI a pool uses the worker ranks: asking for more than exist gives
 * what exists (mproc_pool_size tells). On fork, frames of 512 bytes and more travel through
 * memory shared with each worker, sized by MPROC_FORK_RING (bytes per ring, 65536..1073741824,
 * or 0 for none; under MPI each rank reads MPROC_MPI_EXEC_RING for its executors); a bad value
 * is MPROC_EINVAL here, naming the variable. */
int mproc_pool_create(mproc_pool **out, const mproc_pool_opts *opts);
int mproc_pool_size(const mproc_pool *pool);
/* Stops taking new work; queued work still runs. */
int mproc_pool_close(mproc_pool *pool);
/* Stops at once: workers killed, unfinished work fails with MPROC_ECLOSED. */
int mproc_pool_terminate(mproc_pool *pool);
/* Waits for all work and every worker to end. Only after close or terminate (else ESTATE). */
int mproc_pool_join(mproc_pool *pool);
/* Terminates if still open, joins, and frees. Async handles and iterators of the pool stay
 * valid to read and free. NULL is a no-op. */
int mproc_pool_free(mproc_pool *pool);

/* Blocking apply. Result bytes: copied into out when out_cap >= result length (else ESIZE) and
 * the length stored in *out_len (may be NULL). For a task with a declared out_size, out_cap
 * below it is ESIZE before anything runs; for a task of any size the length is known only once
 * it has run, so a result longer than out_cap is ESIZE after the task ran (out NULL with out_cap
 * 0 suits a task that returns nothing). Use mproc_apply_async + mproc_async_get for results
 * whose size you cannot bound. */
int mproc_apply(mproc_pool *pool, const mproc_task *task, const void *arg, size_t arg_len,
                void *out, size_t out_cap, size_t *out_len);
/* arg is copied; free the handle with mproc_async_free(). */
int mproc_apply_async(mproc_pool *pool, const mproc_task *task, const void *arg, size_t arg_len,
                      const mproc_call_opts *opts, mproc_async **out);

/* Waits up to timeout: 0 when ready, MPROC_ETIMEDOUT if not yet. */
int mproc_async_wait(mproc_async *a, double timeout);
/* 1 when ready, 0 if not, or an error code. */
int mproc_async_ready(mproc_async *a);
/* After ready: 1 if it succeeded, 0 if it failed; MPROC_ESTATE if not ready. */
int mproc_async_successful(mproc_async *a);
/* Waits, then: 0 and the result (borrowed, valid until mproc_async_free; for map_async it is
 * the out array) or the task's error code with the message in mproc_last_error(). */
int mproc_async_get(mproc_async *a, double timeout, const void **data, size_t *len);
/* Waits, then copies the result into out (exactly out_len bytes, else ESIZE). */
int mproc_async_get_into(mproc_async *a, double timeout, void *out, size_t out_len);
/* Message of a failed task (borrowed), or NULL. */
const char *mproc_async_error(mproc_async *a);
/* Frees the handle; if the task is still running its result is discarded when it arrives.
 * NULL is a no-op; a second free of the same handle is detected while the memory is not reused
 * and returns MPROC_EBADHANDLE. */
int mproc_async_free(mproc_async *a);

/* Cancels an apply_async or map_async (Python's Future.cancel, but a running task is stopped
 * too): queued work is dropped, a worker running it is killed and replaced (the pool goes on;
 * tasks of other calls queued behind it on that worker run elsewhere), its tasks already sent
 * behind another call's running task are skipped by their worker (not run), and every
 * item not finished ends with MPROC_ECANCELLED. Returns 1 when something was cancelled (the handle is
 * ready at once or within milliseconds: wait for it as usual), 0 when the handle was already
 * ready (nothing to cancel). A map's items that had finished keep their results; its error is
 * MPROC_ECANCELLED unless an item failed of its own. The error callback, if any, runs in the
 * calling thread when the handle becomes ready here; when it becomes ready later (a worker had
 * to be stopped, or the transport still held a queued task of it: a blocking map's output on
 * fork, a 16 KiB+ input under MPI), in the pool's result thread, as other callbacks. Under MPI with tasks run inside the ranks
 * (MPROC_MPI_EXECUTORS=0) a running task cannot be stopped: it fails at once and its result is
 * dropped when it comes; a task of 16 KiB or more input queued behind it on its rank keeps the
 * call open until it ends (MPI reads that input from your array until the rank takes it). */
int mproc_async_cancel(mproc_async *a);

/* Waits until any of n handles is ready: 0 with *index the lowest index of a ready one,
 * MPROC_ETIMEDOUT (*index = n), MPROC_EBADHANDLE (a NULL or freed handle; *index names it), or
 * MPROC_EINVAL for n = 0 (nothing could become ready). O(n) per call; for the as_completed
 * pattern over many handles use a mproc_waitset. */
int mproc_async_wait_any(mproc_async *const *handles, size_t n, double timeout, size_t *index);
/* Waits until all n handles are ready: 0 (at once for n = 0), MPROC_ETIMEDOUT, or
 * MPROC_EBADHANDLE. */
int mproc_async_wait_all(mproc_async *const *handles, size_t n, double timeout);

/* A set of handles that hands them back in the order they become ready (concurrent.futures'
 * as_completed), at O(1) per handle: 100,000 handles cost 100,000 steps, not 10^10. A handle
 * belongs to at most one set at a time (MPROC_EBUSY otherwise); freeing a handle takes it out
 * of its set. */
typedef struct mproc_waitset mproc_waitset;
int mproc_waitset_create(mproc_waitset **out);
/* Adds a handle (ready or not). */
int mproc_waitset_add(mproc_waitset *ws, mproc_async *a);
/* The next ready handle, taken out of the set: 0 with *a; MPROC_ETIMEDOUT; MPROC_EOF when the
 * set is empty. */
int mproc_waitset_next(mproc_waitset *ws, double timeout, mproc_async **a);
/* Handles in the set, ready or not. */
size_t mproc_waitset_size(const mproc_waitset *ws);
/* Frees the set (not its handles, which leave it). NULL is a no-op. */
int mproc_waitset_free(mproc_waitset *ws);

/* A map_async or apply_async's progress (see mproc_progress). */
int mproc_async_progress(mproc_async *a, mproc_progress *out);

/* map: out[i] = task(in[i]) for n items of in_size bytes, results of out_size bytes each, in
 * input order (out_size 0, out NULL: the results are dropped, each item's status kept; out_size
 * 0 with an out array is MPROC_ESIZE). Items whose task failed leave out[i] untouched; the call
 * returns, after every item has run, the code of the failed item with the lowest index (message in
 * mproc_last_error()), whatever order the results arrived in. */
int mproc_map(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
              void *out, size_t out_size, size_t n, const mproc_call_opts *opts);
/* As map, returning at once; in and out must stay valid until the handle is ready. */
int mproc_map_async(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
                    void *out, size_t out_size, size_t n, const mproc_call_opts *opts,
                    mproc_async **out_handle);

/* Variable-length items (strings, file paths, records): map and imap over an array of
 * {pointer, length} pairs, with the same chunking, batching and fault handling as fixed-size
 * maps (a chunk's items travel together, after a table of their lengths). The task must take
 * any length (MPROC_TASK), or every item must have its declared size (else MPROC_ESIZE naming
 * the item). Each item's bytes must stay valid until the call returns (async: is ready). */
typedef struct mproc_item {
    const void *data;
    size_t len;
} mproc_item;

/* A result of any length that you own: free data with mproc_free(). */
typedef struct mproc_buf {
    void *data;
    size_t len;
} mproc_buf;

/* out[i] = task(in[i]) for n items: a buffer you own for every item that succeeded (data is
 * never NULL then, even for an empty result); {NULL, 0} for an item that failed (its status in
 * opts->item_status, the call's error as for mproc_map). out may be NULL (results dropped).
 * Journals, fail_fast, progress and cancel work as for mproc_map. */
int mproc_map_items(mproc_pool *pool, const mproc_task *task, const mproc_item *in, size_t n, mproc_buf *out,
                    const mproc_call_opts *opts);
/* As mproc_map_items, returning at once; mproc_async_get gives out (n mproc_buf) when ready, and
 * the result callback gets it too. If an item failed, get returns its error with data NULL,
 * but out holds every successful item's buffer all the same (free them). Buffers already
 * stored stay yours if you free the handle early; items finished after that are dropped. */
int mproc_map_items_async(mproc_pool *pool, const mproc_task *task, const mproc_item *in, size_t n,
                          mproc_buf *out, const mproc_call_opts *opts, mproc_async **out_handle);
/* imap over variable-length items: results are borrowed from the iterator as for mproc_imap;
 * ordered != 0 for input order, 0 for completion order (imap_unordered). */
int mproc_imap_items(mproc_pool *pool, const mproc_task *task, const mproc_item *in, size_t n, int ordered,
                     const mproc_call_opts *opts, mproc_iter **out);

/* Input for imap from a generator: writes item i into item (in_size bytes) and returns 1, or
 * returns 0 at the end of the input (or a negative error to stop). Runs in the calling thread. */
typedef int (*mproc_gen_fn)(void *userdata, size_t i, void *item);

/* imap: results stream back through mproc_iter_next() with at most a window of chunks in
 * flight or waiting to be read, so memory stays flat however long the input. Input items are
 * in_size bytes each, read from in as they are submitted (keep in valid until the iterator is
 * freed); mproc_imap_gen() takes generated input instead. Free with mproc_iter_free(). */
int mproc_imap(mproc_pool *pool, const mproc_task *task, const void *in, size_t in_size,
               size_t n, const mproc_call_opts *opts, mproc_iter **out);
int mproc_imap_unordered(mproc_pool *pool, const mproc_task *task, const void *in,
                         size_t in_size, size_t n, const mproc_call_opts *opts, mproc_iter **out);
/* Generated input of unknown length; ordered != 0 for imap, 0 for imap_unordered. */
int mproc_imap_gen(mproc_pool *pool, const mproc_task *task, mproc_gen_fn gen, void *userdata,
                   size_t in_size, int ordered, const mproc_call_opts *opts, mproc_iter **out);
/* Next result: 0 with data and len (borrowed until the next call on it) and the input index in
 * *index (may be NULL); MPROC_EOF when all are delivered; MPROC_ETIMEDOUT; or the item's task
 * error (message in mproc_last_error(); *index set) after which iteration goes on. Every item is
 * reported exactly once before MPROC_EOF: if the pool is closed or freed before the whole input
 * was submitted, each item that never ran comes back as MPROC_ECLOSED with its own index
 * (generated input: its next index once, as nobody knows how long it was), then MPROC_EOF. */
int mproc_iter_next(mproc_iter *it, double timeout, const void **data, size_t *len,
                    size_t *index);
/* An iterator's progress: items finished so far, whether read by mproc_iter_next or not. */
int mproc_iter_progress(mproc_iter *it, mproc_progress *out);
/* Stops early if needed, as mproc_async_cancel: items not yet sent are dropped, and a worker
 * running one of its tasks is killed and replaced (with MPROC_MPI_EXECUTORS=0 the task runs on
 * and its result is dropped). NULL is a no-op. */
int mproc_iter_free(mproc_iter *it);

/* ---------------------------------------------------------------------------------------------
 * Typed shorthands: the task's sizes come from the variables, so user code has no sizeof.
 * ------------------------------------------------------------------------------------------- */
#define MPROC_APPLY(pool, fn, argp, outp)                                                        \
    mproc_apply((pool), &fn##_task, (argp), sizeof *(argp), (outp), sizeof *(outp), NULL)
#define MPROC_APPLY_ASYNC(pool, fn, argp, handlep)                                               \
    mproc_apply_async((pool), &fn##_task, (argp), sizeof *(argp), NULL, (handlep))
#define MPROC_MAP(pool, fn, in, out, n)                                                          \
    mproc_map((pool), &fn##_task, (in), sizeof *(in), (out), sizeof *(out), (n), NULL)
#define MPROC_GET(handle, outp) mproc_async_get_into((handle), -1.0, (outp), sizeof *(outp))

/* For programs that stop at the first error: MPROC_CHECK(mproc_pool_create(&pool, NULL));
 * prints "file:line: call: MPROC_EXXX: <detail>" to stderr and exits with status 1 (mproc
 * finalizes at exit, so workers are stopped and, under MPI, the job ends). */
#define MPROC_CHECK(call)                                                                        \
    do {                                                                                         \
        int mproc__rc_ = (call);                                                                 \
        if (mproc__rc_ < 0) mproc__check_failed(#call, mproc__rc_, __FILE__, __LINE__);          \
    } while (0)
void mproc__check_failed(const char *expr, int err, const char *file, int line);

#ifdef __cplusplus
}
#endif

/* Queue, Pipe, Lock, RLock, Semaphore, Event, Condition, Barrier, Value/Array, SharedMemory. */
#include "mproc_shared.h"

#endif /* MPROC_H */
