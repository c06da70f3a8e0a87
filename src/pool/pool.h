/* pool_internal.h - the pool's data structures, shared by pool.c (workers and scheduling),
 * pool_async.c (apply/map and their handles) and pool_iter.c (imap).
 *
 * Locking: one library-wide mutex (mproc__core_lock) guards every pool, job and iterator, with
 * one condition variable for all waiters. Backend calls (send/wait) run with it released. One
 * lock keeps lifetimes simple: a handle can outlive its pool and still be read safely.
 */
#ifndef MPROC_POOL_INTERNAL_H
#define MPROC_POOL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common/common.h"
#include "wire/wire.h"

#define MPROC__POOL_MAGIC 0x504f4f4cu  /* "POOL" */
#define MPROC__ASYNC_MAGIC 0x4153594eu /* "ASYN" */
#define MPROC__ITER_MAGIC 0x49544552u  /* "ITER" */
#define MPROC__DEAD_MAGIC 0xdeadbeefu

typedef struct mproc__chunk mproc__chunk;

/* What a chunk's results go to: an async job (apply/map) or an iterator. */
typedef enum { MPROC__JOB_APPLY = 1, MPROC__JOB_MAP = 2 } mproc__job_kind;

struct mproc_async {
    uint32_t magic;
    int refs;                 /* the user's handle + one per pool reference */
    int user_freed;
    mproc__job_kind kind;
    const mproc_task *task;
    mproc_call_opts opts;
    size_t in_size, out_size, n;
    void *out;                /* map: the caller's array */
    int out_pinned;           /* map: a blocking mproc_map, whose out outlives every reply */
    size_t chunks_left;
    int ready;
    int err;                  /* first failure (0 = success) */
    char *errmsg;             /* its message (malloc'd) */
    void *result;             /* apply: result bytes (malloc'd) */
    size_t result_len;
    const uint8_t *in;        /* map: the caller's input */
    size_t chunksize;         /* map: items per chunk */
    size_t next_item;         /* map: first item not yet made into a chunk */
    struct mproc_async *feed_next; /* map: next job in the pool's feeder list */
    struct mproc_async *next_free;
};

struct mproc_iter {
    uint32_t magic;
    struct mproc_pool *pool;  /* NULL once the pool is freed */
    const mproc_task *task;
    int ordered;
    const uint8_t *in;        /* array input, or NULL with gen */
    mproc_gen_fn gen;
    void *userdata;
    size_t in_size, n;        /* n = SIZE_MAX for generated input until it ends */
    size_t chunksize, window;
    double timeout;
    size_t next_item;         /* next input item to submit */
    size_t want_item;         /* ordered: the input index to deliver next */
    int input_done, input_err;
    int abandoned;            /* freed by the user while chunks were still out */
    size_t chunks_out;        /* submitted, not yet fully consumed */
    mproc__chunk *done;       /* completed chunks not yet consumed (ordered by seq) */
    mproc__chunk *cur;        /* chunk being consumed */
    uint32_t cur_i;           /* next item of cur */
    size_t cur_cursor;
    struct mproc_iter *next_live, *prev_live;
};

struct mproc__chunk {
    mproc__chunk *next;
    mproc_async *job;         /* or */
    mproc_iter *iter;
    uint64_t id;
    size_t first;             /* index of the first item in the job's input */
    uint32_t count;
    const uint8_t *in;        /* first input byte (caller's memory or owned) */
    size_t in_len;            /* apply: the argument's length; map: count*in_size */
    uint8_t *owned;           /* copied input this chunk frees */
    int isolated;             /* re-run alone after a crash: its failure is final */
    int batched;              /* sent inside a BATCH frame with other chunks */
    int solo;                 /* its batch's worker died: never batched again */
    int slot_end;             /* the last chunk of its frame: completing it frees the slot */
    uint32_t frame_items;     /* slot_end: items in the whole frame */
    double sent;              /* slot_end: when its frame was sent */
    int ghost;                /* stands in for a chunk already failed by its time limit on a
                               * worker that could not be killed: its late result is dropped */
    int attempts;
    int unread_deaths;        /* workers that died with it sent but unread (pool_faults.c) */
    double started;           /* when it became the worker's running chunk */
    int ran_on;               /* the worker whose results it carries, and that worker's pid */
    long ran_pid;             /* (for the messages of failed items) */
    uint8_t *frame;           /* iterator chunks: the result frame once it arrived */
    mproc__results res;
    int fail_err;             /* iterator chunks that failed whole: the code and message */
    char *fail_msg;
};

typedef struct mproc__wstate {
    mproc__chunk *head, *tail; /* in flight, in send order: head is running */
    int inflight;              /* frames in flight (a BATCH is one) */
    double last_done;          /* when its last frame's results arrived */
    int ready;                 /* may take tasks (initializer done) */
    int alive;
    int tasks_done;            /* since (re)start, for maxtasksperchild */
    int recycling;             /* being replaced after maxtasksperchild tasks */
    int killed_for_time;       /* killed because killed_chunk ran past its limit; DIED follows */
    uint64_t killed_chunk;
} mproc__wstate;

typedef enum { MPROC__POOL_RUN, MPROC__POOL_CLOSED, MPROC__POOL_TERMINATED } mproc__pool_state;

struct mproc_pool {
    uint32_t magic;
    const mproc__backend_ops *be;
    mproc__group *g;
    int n, depth;
    mproc_pool_opts opts;
    void *initarg;             /* owned copy */
    mproc__pool_state state;
    int thread_running, joined;
    int start_rc;              /* the backend's answer to group_start */
    int sleeping;              /* the result thread is (about to be) in the backend's wait */
    const mproc_iter *sending; /* an iterator whose array input a send is reading right now */
    int sending_waited;        /* mproc_iter_free waits for that send to end */
    pthread_t thread;
    mproc__wstate *ws;
    mproc__chunk *qhead, *qtail;
    mproc_async *feed_head, *feed_tail; /* map jobs with items not yet chunked */
    size_t outstanding;        /* chunks queued, in flight, or not yet made by a feeder */
    uint64_t next_id;
    double svc;                /* moving average of seconds per item, measured at the master */
    int broken_err;            /* 0, or what every task now fails with: MPROC_EINITFAIL (the
                                * initializer failed) or MPROC_EWORKER (no worker left) */
    int init_unread_deaths;    /* fresh workers that died before reading their INIT frame */
    char broken_msg[256];
    mproc_iter *iters;         /* live iterators */
    struct mproc_pool *next_live, *prev_live;
};

/* The library-wide lock and condition (pool.c). */
extern pthread_mutex_t mproc__core_lock;
void mproc__core_wait(double deadline); /* waits on the condition until deadline (< 0: ever) */
void mproc__core_broadcast(void);

/* pool.c: validates a pool handle (magic) for fn; 0 or an error. */
int mproc__pool_check(const mproc_pool *p, const char *fn);
/* Appends chunks to the queue and wakes the result thread; lock held. */
void mproc__pool_enqueue(mproc_pool *p, mproc__chunk *c);
/* Wakes the result thread if it sleeps in the backend's wait (new work); lock held. */
void mproc__pool_kick(mproc_pool *p);
/* Items per chunk for n items: the caller's, or Python's len/(4*workers) capped to ~1 MiB. */
size_t mproc__auto_chunksize(const mproc_pool *p, size_t n, size_t item_bytes, size_t asked);

/* pool.c: the result thread's body (arg: the pool), started by mproc_pool_create. */
void *mproc__pool_result_thread(void *arg);

/* pool.c, for pool_faults.c (lock held in all of them). */
void mproc__pool_push_front(mproc_pool *p, mproc__chunk *c);
void mproc__pool_settle_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg);
void mproc__pool_fail_queue(mproc_pool *p, int err, const char *msg);
void mproc__pool_worker_started(mproc_pool *p, int w);
const char *mproc__chunk_task_name(const mproc__chunk *c);
/* The sentence for an item of c that failed in its worker with message msg (len bytes, not
 * NUL-terminated): "task 'f' failed on worker 1 (pid 4242): msg". Returns its length. */
size_t mproc__item_failure(char *buf, size_t cap, const mproc__chunk *c, const uint8_t *msg, size_t len);
/* Time limit of a chunk in seconds (its items' share), 0 = none. */
double mproc__chunk_timeout(const mproc_pool *p, const mproc__chunk *c);

/* Encodes a chunk's TASK frame head (header, prefix, length table) into head; returns its
 * length. The chunk's input follows it on the wire. */
#define MPROC__CHUNK_HEAD_MAX (MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX + 8)
size_t mproc__chunk_head(const mproc__chunk *c, uint8_t head[MPROC__CHUNK_HEAD_MAX]);

/* pool_batch.c: adaptive batching of small chunks (lock held). */
int mproc__batchable(const mproc_pool *p, const mproc__chunk *c);
/* Chunks worth putting in one frame now: ~1 ms of measured work, at most a share of what is
 * left, 1..64. */
uint32_t mproc__batch_size(const mproc_pool *p);
/* Sends chunks first..(frames in all) as one BATCH frame; releases the lock while sending. */
int mproc__send_batch(mproc_pool *p, int w, mproc__chunk *first, uint32_t frames);
/* A frame's last chunk completed on worker w: updates the service-time estimate. */
void mproc__note_service(mproc_pool *p, int w, const mproc__chunk *c);

/* pool_faults.c: a worker's DIED event; and the time-limit check, which returns seconds to
 * the next deadline (< 0: none). Lock held. */
void mproc__pool_on_died(mproc_pool *p, const mproc__event *ev);
/* No worker alive: the pool is broken (MPROC_EWORKER) and its work fails at once. */
void mproc__pool_check_alive(mproc_pool *p);
double mproc__pool_check_timeouts(mproc_pool *p);

/* pool_async.c: a chunk finished with a result frame (lock held; may drop it for callbacks). */
void mproc__job_deliver(mproc_pool *p, mproc__chunk *c, const mproc__results *r);
/* A chunk failed as a whole: err with message msg. */
void mproc__job_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg);
void mproc__async_unref(mproc_async *a); /* lock held */
/* Makes the next chunk of the first map job that has items left, or NULL. */
mproc__chunk *mproc__feed_chunk(mproc_pool *p);
/* Fails every item not yet made into a chunk, of every map job of the pool. */
void mproc__feed_fail_all(mproc_pool *p, int err, const char *msg);

/* pool_iter.c */
void mproc__iter_deliver(mproc__chunk *c, uint8_t *frame, const mproc__results *r);
void mproc__iter_fail(mproc__chunk *c, int err, const char *msg);
void mproc__iter_detach_all(mproc_pool *p);

/* Frees a chunk and its owned input (not its frame). */
void mproc__chunk_free(mproc__chunk *c);

#endif /* MPROC_POOL_INTERNAL_H */
