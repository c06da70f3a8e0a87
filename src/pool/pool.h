/* pool.h - the Pool's data structures and the calls between the files of src/pool/.
 *
 * The files, bottom to top (each calls only the ones above it in this list, never below):
 *   backend_calls.c the pool's only door to the backend (thin wrappers, lock dropped around each)
 *   queue.c         the core lock, chunks, the pool's queue, settling a chunk through its owner
 *   batch.c progress.c waitset.c journal.c
 *                   batching small chunks into one frame; a call's progress and its bar;
 *                   sets of handles waited on; a map's journal file
 *   domains.c       fault domains: workers lost together (one MPI rank's executors)
 *   faults.c        what a worker's death or a missed time limit does to its chunks
 *   scheduler.c cancel.c
 *                   the result thread: feeds workers, takes results, acts on faults;
 *                   stopping what is left of a cancelled (or failing fast) call
 *   job.c           the job behind an async handle: outcomes, journal, fail_fast, completion
 *   async.c iter.c  the owners of chunks: apply/map calls and their chunks, imap iterators
 *   handle.c        the calls on an async handle (wait/get/cancel/progress/free)
 *   lifecycle.c     create/close/terminate/join/free and the list of live pools
 * (in_callback.h: the inline checks every level uses to refuse a call in a callback.)
 * A chunk reaches its owner only through the owner's ops table (mproc__owner_ops), so the
 * scheduler never names a job or an iterator.
 *
 * Locking: one library-wide mutex (mproc__core_lock) guards every pool, job and iterator, with
 * one condition variable for all waiters. Backend calls (send/wait) run with it released. One
 * lock keeps lifetimes simple: a handle can outlive its pool and still be read safely.
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common/common.h"
#include "pool/in_callback.h" /* which calls a callback may make */
#include "wire/wire.h"

#define MPROC__POOL_MAGIC 0x504f4f4cu  /* "POOL" */
#define MPROC__ASYNC_MAGIC 0x4153594eu /* "ASYN" */
#define MPROC__ITER_MAGIC 0x49544552u  /* "ITER" */
#define MPROC__DEAD_MAGIC 0xdeadbeefu

/* The most frames a pool keeps in flight per worker (mproc_pool_opts.inflight). */
#define MPROC__INFLIGHT_MAX 64

typedef struct mproc__chunk mproc__chunk;
typedef struct mproc__owner mproc__owner;
typedef struct mproc__journal mproc__journal; /* journal.c */

/* Who is told of a call's progress, and when (progress.c); only calls that report have one. */
typedef struct mproc__progress_report {
    double last_report;         /* when the callback was last called */
    double last_draw;           /* when the bar was last drawn (0: never) */
    double period;              /* seconds between callback calls */
    mproc_progress_cb cb;
    void *userdata;
    int bar;                    /* 0 none, 1 redrawn on a terminal, 2 a line now and then */
    const char *what;           /* the task's name, for the bar */
} mproc__progress_report;

/* A call's progress (progress.c): kept small, as every async handle carries one. */
typedef struct mproc__progress {
    size_t done, failed, total; /* total 0: not known yet */
    size_t resumed;             /* of done, items taken from a journal (not in the rate) */
    double started;             /* mproc__now() when the call was made */
    int ended;                  /* the final report was made */
    int frozen;                 /* counts no more until its end (an iterator being freed) */
    mproc__progress_report *rep; /* NULL: nobody to tell */
} mproc__progress;

/* What an owner does when one of its chunks settles (lock held in every op). */
typedef struct mproc__owner_ops {
    /* c's result frame arrived (r decoded from it, or placed: see the backend's send hint). The
     * owner takes frame (keeps or frees it) and c. May drop the lock to run callbacks. */
    void (*deliver)(mproc_pool *p, mproc__chunk *c, uint8_t *frame, const mproc__results *r);
    /* c failed as a whole with err and msg; the owner takes c. */
    void (*fail)(mproc_pool *p, mproc__chunk *c, int err, const char *msg);
    /* Owners that make their chunks lazily (a map): the next one, *exhausted set after the last.
     * NULL op for owners that enqueue their chunks themselves. */
    mproc__chunk *(*make_chunk)(mproc_pool *p, mproc__owner *o, int *exhausted);
    /* Fails every item not yet made into a chunk; returns how many chunks they stood for. */
    size_t (*fail_unmade)(mproc_pool *p, mproc__owner *o, int err, const char *msg);
} mproc__owner_ops;

/* The part of a job or iterator that its chunks see; the first member of both. */
struct mproc__owner {
    const mproc__owner_ops *ops;
    const mproc_task *task;
    size_t in_size;            /* bytes per input item; 0: one argument of any length (apply) */
    size_t out_size;           /* bytes per result item; 0: any */
    double timeout;            /* the call's per-task time limit; 0: the pool's */
    size_t live_chunks;        /* chunks made and not yet done with (a split adds its pieces) */
    int input_outlives_reply;  /* its chunks read input that stays valid until the owner is done */
    int cancel_err;            /* cancelled (cancel.c): what its unfinished items end with */
    uint8_t *reply_base;       /* a blocking map's output, where results may land directly */
    mproc__owner *feed_next;   /* in the pool's list of owners with chunks still to make */
    struct mproc_pool *pool;   /* the pool its chunks are in, while it has any */
    char *cancel_msg;          /* and the message (malloc'd; freed with the owner) */
    mproc__progress *prog;     /* items finished so far, and who is told (progress.c); NULL
                                * for apply (one item: ready or not) */
};

/* The few call options a job keeps: a handle is kept small (a program may hold 100,000 of
 * them, and every byte of each is touched). */
typedef struct mproc__job_opts {
    mproc_result_cb callback;
    mproc_error_cb error_callback;
    void *userdata;
    int *item_status;
    int fail_fast;
} mproc__job_opts;

/* A handle's place in a waitset (waitset.c), allocated when it joins one. */
typedef struct mproc__set_link {
    struct mproc_waitset *set;
    struct mproc_async *prev, *next;  /* the set's members */
    struct mproc_async *ready_next;   /* the set's ready queue */
    int in_ready_queue;
} mproc__set_link;

struct mproc_async {
    mproc__owner owner;       /* first: a chunk's owner is this handle */
    uint32_t magic;
    int refs;                 /* the user's handle + one per pool reference */
    int user_freed;
    int is_map;               /* map/map_async, else apply */
    const char *fn;           /* the call that made it ("mproc_map"...), named by journal errors */
    mproc__job_opts opts;     /* what the job needs of the call's options after submission */
    size_t n;
    void *out;                /* map: the caller's array */
    int ready;
    int err;                  /* the failure of the lowest failed item (0 = success) */
    size_t err_index;         /* that item's index */
    char *errmsg;             /* its message (malloc'd) */
    void *result;             /* apply: result bytes (malloc'd) */
    size_t result_len;
    const uint8_t *in;        /* map: the caller's input */
    size_t chunksize;         /* map: items per chunk */
    size_t next_item;         /* map: first item not yet made into a chunk */
    struct mproc_async *next_free;
    mproc__set_link *link;    /* its waitset, or NULL */
    const mproc_item *items;  /* map_items: the caller's items (in is NULL) */
    mproc_buf *bufs;          /* map_items: the caller's results, or NULL */
    mproc__journal *journal;  /* map: where finished items are recorded, or NULL */
    uint8_t *replayed;        /* map with a journal: a bit per item found in it (not run again) */
};

/* A set of handles handed back as they become ready (waitset.c; async.c queues a member when
 * it completes). */
#define MPROC__WAITSET_MAGIC 0x57414954u /* "WAIT" */
struct mproc_waitset {
    uint32_t magic;
    mproc_async *members;                 /* every handle in the set */
    mproc_async *ready_head, *ready_tail; /* the ready ones, in the order they became ready */
    size_t size;
    struct mproc_waitset *next_dead;      /* freed sets, kept for reuse */
};
/* Queues a member that became ready (lock held). */
void mproc__waitset_ready(mproc_async *a);
/* Takes a handle out of its set, if any (lock held). */
void mproc__waitset_leave(mproc_async *a);

struct mproc_iter {
    mproc__owner owner;       /* first: a chunk's owner is this iterator */
    uint32_t magic;
    struct mproc_pool *pool;  /* NULL once the pool is freed */
    int ordered;
    const uint8_t *in;        /* array input, or NULL with gen or items */
    const mproc_item *items;  /* imap_items: the caller's items */
    mproc_gen_fn gen;
    void *userdata;
    size_t n;                 /* n = SIZE_MAX for generated input until it ends */
    size_t chunksize, window;
    size_t next_item;         /* next input item to submit */
    size_t want_item;         /* ordered: the input index to deliver next */
    int input_done, input_err;
    int abandoned;            /* freed by the user while chunks were still out */
    int freeing;              /* inside mproc_iter_free (its callbacks may call back in) */
    mproc__chunk *done;       /* completed chunks not yet consumed (ordered by seq) */
    mproc__chunk *cur;        /* chunk being consumed */
    uint32_t cur_i;           /* next item of cur */
    size_t cur_cursor;
    struct mproc_iter *next_live, *prev_live;
    /* A journal (iter_journal.c): items found in it are not submitted; their outcomes are
     * delivered from it (replay, sorted by index, from replay_cur on). */
    mproc__journal *journal;
    uint8_t *replayed;             /* a bit per item found in the journal */
    struct mproc__replayed_item *replay;
    size_t replay_n, replay_cur;
};

/* An item's outcome read from an iterator's journal (bytes: its result, or a failure's
 * message; borrowed from the journal until it is closed). */
typedef struct mproc__replayed_item {
    size_t index;
    int status;
    const uint8_t *bytes;
    size_t len;
} mproc__replayed_item;

struct mproc__chunk {
    mproc__chunk *next;
    mproc__owner *owner;      /* the job or iterator its results go to */
    uint64_t id;
    size_t first;             /* index of the first item in the owner's input */
    uint32_t count;
    const uint8_t *in;        /* first input byte (caller's memory or owned) */
    size_t in_len;            /* apply: the argument's length; map: count*in_size */
    uint8_t *owned;           /* copied input this chunk frees */
    int packed_lens;          /* in starts with the length table of count variable-length items
                               * (mproc__items_pack); else one item of in_len bytes or fixed ones */
    int isolated;             /* re-run alone after a crash: its failure is final */
    int blamed;               /* it failed by its own doing (crashed, ran out of time): a map's
                               * journal records that outcome */
    int batched;              /* sent inside a BATCH frame with other chunks */
    int solo;                 /* its batch's worker died: never batched again */
    int slot_end;             /* the last chunk of its frame: completing it frees the slot */
    uint32_t frame_items;     /* slot_end: items in the whole frame */
    double sent;              /* slot_end: when its frame was sent */
    double given;             /* when it was last sent to a worker */
    int ghost;                /* stands in for a chunk already failed by its time limit on a
                               * worker that could not be killed: its late result is dropped */
    int attempts;
    int unread_deaths;        /* workers that died with it sent but unread (faults.c) */
    int innocent_reruns;      /* times re-run because its worker's rank was lost (faults.c) */
    int suspect;              /* was with a worker whose rank was lost: runs with nothing else
                               * in flight in its fault domain (domains.c), so a second loss
                               * names it (faults.c) */
    double started;           /* when it became the worker's running chunk */
    int withdraw_from;        /* on the pool's withdrawn list: the worker it was sent to */
    uint64_t lent;            /* its send left the transport a reference: the token (mproc__send_hint.kept) */
    int ran_on;               /* the worker whose results it carries, and that worker's pid */
    long ran_pid;             /* (for the messages of failed items) */
    uint8_t *frame;           /* iterator chunks: the result frame once it arrived */
    mproc__results res;
    int fail_err;             /* iterator chunks that failed whole: the code and message */
    char *fail_msg;
};

typedef struct mproc__wstate {
    mproc__chunk *head, *tail; /* in flight, in send order: head is running */
    int frames_out;            /* frames in flight (a BATCH is one), at most the pool's inflight */
    double last_done;          /* when its last frame's results arrived */
    int ready;                 /* may take tasks (initializer done) */
    int alive;
    int tasks_done;            /* since (re)start, for maxtasksperchild */
    int recycling;             /* being replaced after maxtasksperchild tasks */
    int killed_for_time;       /* killed because killed_chunk ran past its limit; DIED follows */
    uint64_t killed_chunk;
    int restart_due;           /* a driving caller left its replacement to the result thread */
    int killed_for_cancel;     /* killed because its running frame's call was cancelled */
} mproc__wstate;

/* Who runs the scheduler loop (scheduler.c, "who drives"). */
enum { MPROC__DRIVER_NONE = 0, MPROC__DRIVER_THREAD = 1, MPROC__DRIVER_CALLER = 2 };

typedef enum { MPROC__POOL_RUN, MPROC__POOL_CLOSED, MPROC__POOL_TERMINATED } mproc__pool_state;

struct mproc_pool {
    uint32_t magic;
    const mproc__backend_ops *be;
    mproc__group *g;
    int n;                     /* workers */
    int inflight;              /* frames kept in flight per worker (mproc_pool_opts.inflight,
                                * at most MPROC__INFLIGHT_MAX) */
    mproc_pool_opts opts;
    void *initarg;             /* owned copy */
    mproc__pool_state state;
    int thread_running, joined;
    int start_rc;              /* the backend's answer to group_start */
    int sleeping;              /* the driver is (about to be) in the backend's wait */
    int driver;                /* MPROC__DRIVER_*: who runs the scheduler loop now */
    int parked;                /* the result thread waits on `park`: the pool was idle */
    pthread_cond_t park;
    int restarts_due;          /* workers with restart_due set */
    int last_worker;           /* the worker whose result came last (-1: none yet) */
    const mproc__owner *sending; /* an owner whose caller-held input a send is reading now */
    const mproc__chunk *sending_chunk; /* the chunk a send (lock dropped) is reading now */
    int sending_waited;        /* someone waits for that send to end (mproc__pool_wait_send) */
    mproc__chunk *withdrawn;   /* cancelled chunks the transport may still read from or write
                                * to (their send hints), settled by the driver after it has
                                * withdrawn them (mproc__pool_settle_withdrawn) */
    pthread_t thread;
    mproc__wstate *ws;
    int *ring;                 /* workers that may have a free slot, FIFO (so dispatch never
                                * scans every worker per event); in_ring marks members */
    unsigned char *in_ring;
    int *dom_next;             /* per worker: the next worker of its fault domain (domains.c) */
    int suspects_seen;         /* some chunk was made suspect (a rank was lost): domains matter */
    int ring_head, ring_len;
    int any_limit;             /* some chunk with a time limit was sent: timeouts are checked */
    mproc__chunk *qhead, *qtail;
    mproc__chunk *sq_head, *sq_tail; /* suspects (faults.c): each waits for a rank of its own */
    int suspect_room;          /* -1, or a worker whose rank gets no new work until it drains
                                * for the suspect at sq_head (scheduler.c) */
    mproc__owner *feed_head, *feed_tail; /* owners with chunks not yet made */
    size_t outstanding;        /* chunks queued, in flight, or not yet made by a feeder */
    int settling;              /* cancels using the pool with the lock dropped: free waits */
    double svc;                /* moving average of seconds per item, measured at the master */
    int broken_err;            /* 0, or what every task now fails with: MPROC_EINITFAIL (the
                                * initializer failed) or MPROC_EWORKER (no worker left) */
    int init_unread_deaths;    /* fresh workers that died before reading their INIT frame */
    double started_at;         /* mproc__now() when the result thread started the workers */
    char init_lost[160];       /* "" or why a rank was lost while its worker ran the
                                * initializer: the reason given if no worker is left */
    int init_ever_ready;       /* some worker finished the initializer: losses are not its */
    char broken_msg[256];
    mproc_iter *iters;         /* live iterators */
    struct mproc_pool *next_live, *prev_live;
};

/* ---- scheduler.c: a caller may run the scheduler loop itself (lock held) ---------------- */
/* 1 when the pool is idle and its result thread parked: the caller now drives (it must call
 * mproc__pool_drive next, after submitting its task); 0 otherwise. */
int mproc__pool_try_drive(mproc_pool *p);
/* Runs the scheduler loop until *done (or the result thread is needed, or the pool ends), then
 * hands driving back to the result thread. */
void mproc__pool_drive(mproc_pool *p, const int *done);

/* ---- queue.c (lock held unless said otherwise) ----------------------------------------- */

extern pthread_mutex_t mproc__core_lock; /* defined in backend_calls.c, which drops it */
void mproc__core_wait(double deadline); /* waits on the condition until deadline (< 0: ever) */
void mproc__core_broadcast(void);
/* A condition of one's own on the core lock, with deadlines on the monotonic clock. */
void mproc__cond_init(pthread_cond_t *c);
void mproc__cond_wait(pthread_cond_t *c, double deadline);

/* Validates a pool handle (magic) for fn; 0 or an error. */
int mproc__pool_check(const mproc_pool *p, const char *fn);
/* Items per chunk for n items: the caller's, or Python's len/(4*workers) capped to ~1 MiB. */
size_t mproc__auto_chunksize(const mproc_pool *p, size_t n, size_t item_bytes, size_t asked);
/* A new chunk's id: unique among every pool this process makes, not only its own (a worker rank
 * outlives pools, and what it notes about an id, such as a skip, must not fit the next pool's). */
uint64_t mproc__chunk_new_id(void);
/* Appends a chunk to the queue (it counts as outstanding) and wakes the result thread. */
void mproc__pool_enqueue(mproc_pool *p, mproc__chunk *c);
/* Adds an owner that makes its chunks lazily (its chunks already count as outstanding). */
void mproc__pool_feed_add(mproc_pool *p, mproc__owner *o);
/* Puts a chunk (or a list ending at last) back at the queue's front, in order; suspects go to
 * the front of the suspects' queue. */
void mproc__pool_push_front(mproc_pool *p, mproc__chunk *c);
void mproc__pool_push_front_list(mproc_pool *p, mproc__chunk *first, mproc__chunk *last);
/* The next chunk to send that is not a suspect: the queue first, then the owners' unmade
 * chunks; NULL if none. */
mproc__chunk *mproc__pool_next_chunk(mproc_pool *p);
/* The next suspect (a lost rank's re-run) to send; NULL if none. */
mproc__chunk *mproc__pool_next_suspect(mproc_pool *p);
/* Takes owner o's queued chunks out of the queues: a list of its suspects, then its others,
 * each in queue order. */
mproc__chunk *mproc__pool_unqueue_owner(mproc_pool *p, const mproc__owner *o);
/* Settles a chunk for good as failed: it goes to its owner. */
void mproc__pool_settle_fail(mproc_pool *p, mproc__chunk *c, int err, const char *msg);
/* Settles a chunk of a cancelled owner with the owner's cancel code and message. */
void mproc__pool_settle_cancelled(mproc_pool *p, mproc__chunk *c);
/* Settles what it can of the withdrawn list: each chunk once the transport holds nothing of it
 * (withdraw; after the group stopped, every one). 1 when chunks are left for a later look.
 * Only the driver calls it, never while its own send or wait is under way. */
int mproc__pool_settle_withdrawn(mproc_pool *p);
/* Takes owner o out of the list of owners with chunks to make (o cancelled). */
void mproc__pool_feed_remove(mproc_pool *p, mproc__owner *o);
/* Fails everything queued and every item not yet made into a chunk. */
void mproc__pool_fail_queue(mproc_pool *p, int err, const char *msg);
/* Waits until no send reads owner o's input (mproc_iter_free before its caller frees it). */
void mproc__pool_wait_send(mproc_pool *p, const mproc__owner *o);
/* Worker w may be able to take a frame now (it started, got ready, freed a slot): dispatch
 * looks at it next, after the workers already waiting. Idempotent. */
void mproc__pool_worker_may_take(mproc_pool *p, int w);
/* The next worker to look at, or -1. */
int mproc__pool_next_worker(mproc_pool *p);
/* Frees a chunk and its owned input (not its frame). */
void mproc__chunk_free(mproc__chunk *c);
const char *mproc__chunk_task_name(const mproc__chunk *c);
/* Time limit of a chunk in seconds (its items' share), 0 = none. */
double mproc__chunk_timeout(const mproc_pool *p, const mproc__chunk *c);
/* The sentence for an item of c that failed in its worker with message msg (len bytes, not
 * NUL-terminated): "task 'f' failed on worker 1 (pid 4242): msg". Returns its length. */
size_t mproc__item_failure(char *buf, size_t cap, const mproc__chunk *c, const uint8_t *msg, size_t len);
/* Checks a call's options for what kind of call it is (MPROC__CALL_*): an option that does not
 * apply (fail_fast on imap, journal on apply...) or a bad timeout is MPROC_EINVAL, not ignored. */
enum { MPROC__CALL_APPLY = 1, MPROC__CALL_MAP = 2, MPROC__CALL_IMAP = 3 };
int mproc__call_opts_check(const mproc_call_opts *o, int kind, const char *fn);
/* Checks variable-length items for fn: NULL data with a length (EINVAL), a length the task
 * disagrees with (ESIZE), over 1 GiB (ETOOBIG); the message names the item. 0 or the error. */
int mproc__items_check(const mproc_task *task, const mproc_item *items, size_t n, const char *fn);
/* The items' mean length (at least 1), for the chunk size; *largest: the longest (at least 1). */
size_t mproc__items_mean(const mproc_item *items, size_t n, size_t *largest);
/* chunksize capped so that a chunk of items of up to `largest` bytes each fits a frame (at
 * least 1 item) and its item count the wire's limit. */
size_t mproc__chunk_cap(size_t chunksize, size_t largest);
/* Packs count variable-length items into one buffer, as a TASK payload carries them after its
 * prefix: their length table, then their bytes. 0 with *buf (malloc'd) and *len, or -1 if out
 * of memory. */
int mproc__items_pack(const mproc_item *items, size_t count, uint8_t **buf, size_t *len);
/* Item i of a packed buffer of count items (pointer and length). */
const uint8_t *mproc__items_unpack(const uint8_t *buf, uint32_t count, uint32_t i, size_t *len);
/* Encodes a chunk's TASK frame head (header, prefix, length table) into head; returns its
 * length. The chunk's input follows it on the wire. */
#define MPROC__CHUNK_HEAD_MAX (MPROC__WIRE_HDR_SIZE + MPROC__WIRE_TASK_PREFIX + 8)
size_t mproc__chunk_head(const mproc__chunk *c, uint8_t head[MPROC__CHUNK_HEAD_MAX]);

/* ---- backend_calls.c: lock held on entry and exit, released during the backend's call --- */

int mproc__pool_send(mproc_pool *p, int w, const struct iovec *iov, int iovcnt, mproc__send_hint *hint);
int mproc__pool_wait_event(mproc_pool *p, double timeout, mproc__event *ev);
int mproc__pool_restart_worker(mproc_pool *p, int w);
/* These do not block, so they keep the lock. */
int mproc__pool_kill_worker(mproc_pool *p, int w);
/* The backend's skip (backend.h) for frame id on worker w, all of whose chunks are ghosts of
 * cancelled calls: its worker may answer it empty instead of running it. */
void mproc__pool_skip(mproc_pool *p, int w, uint64_t frame_id);
/* Whether the backend would still hold a cancelled chunk's send hints (it has a withdraw op). */
int mproc__pool_can_withdraw(const mproc_pool *p);
/* The backend's withdraw (backend.h) for chunk c sent to worker w: 1 when the transport holds
 * nothing of it any more, 0 to ask again later. */
int mproc__pool_withdraw(mproc_pool *p, int w, const mproc__chunk *c);
long mproc__pool_worker_pid(mproc_pool *p, int w);
/* The lowest worker lost together with w (backend op fault_domain; w itself where none). */
int mproc__pool_fault_domain(mproc_pool *p, int w);
/* Wakes the result thread if it sleeps in the backend's wait (new work, or a stop). */
void mproc__pool_kick(mproc_pool *p);
/* Wakes it even if it is about to sleep: a stop must never wait for the next event. */
void mproc__pool_wake(mproc_pool *p);
/* Sizing a new pool (no lock needed). */
int mproc__pool_max_workers(mproc_pool *p);
int mproc__pool_default_workers(mproc_pool *p);
int mproc__pool_default_inflight(mproc_pool *p);
/* Lock not held: the result thread starts and stops its group. */
int mproc__pool_group_start(mproc_pool *p, mproc__group **out);
void mproc__pool_group_stop(mproc_pool *p, mproc__group *g, int graceful);

/* ---- batch.c --------------------------------------------------------------------------- */

int mproc__batchable(const mproc_pool *p, const mproc__chunk *c);
/* Chunks worth putting in one frame now: ~1 ms of measured work, at most a share of what is
 * left, 1..64. */
uint32_t mproc__batch_size(const mproc_pool *p);
/* How many chunks of chunk_items items (chunk_bytes of input; 0: not known) an imap keeps
 * submitted: two frames' worth per frame in flight; for chunks small enough to batch, once the
 * pool has measured its tasks short, enough for every frame in flight to be a whole batch (an
 * imap of chunksize 1 was otherwise a ping-pong of single tasks: 70-80k items/s against
 * millions for a map). A constant either way: at most BATCH_MAX times the first, each chunk at
 * most 16 KiB of input, so memory still does not grow with the input. */
size_t mproc__iter_window(const mproc_pool *p, size_t chunk_items, size_t chunk_bytes);
/* Sends chunks first..(frames in all) as one BATCH frame; releases the lock while sending. */
int mproc__send_batch(mproc_pool *p, int w, mproc__chunk *first, uint32_t frames);
/* A frame's last chunk completed on worker w: updates the service-time estimate. */
void mproc__note_service(mproc_pool *p, int w, const mproc__chunk *c);

/* ---- progress.c (lock held) ------------------------------------------------------------- */

/* Sets up a call's progress (*g, freed with mproc__progress_free) from its options (opts may be
 * NULL) and MPROC_PROGRESS. 0, MPROC_EINVAL (a bad option or MPROC_PROGRESS value, named) or
 * MPROC_ENOMEM. total 0: not known yet. Every function here takes a NULL g as "not counted". */
int mproc__progress_start(mproc__progress **g, const mproc_call_opts *opts, size_t total, const char *what,
                          const char *fn);
void mproc__progress_free(mproc__progress *g);
/* done more items finished, failed of them failed. Reports when due: the bar is drawn and the
 * callback called (lock dropped around it). */
void mproc__progress_note(mproc__progress *g, size_t done, size_t failed);
/* done items (failed of them failed) were taken from a journal: counted, not in the rate. */
void mproc__progress_resumed(mproc__progress *g, size_t done, size_t failed);
/* The call is over: the last report (the bar ends its line). */
void mproc__progress_end(mproc__progress *g);
/* The call was stopped before its end (an imap freed early): its items not finished count as
 * finished and failed (cancelled), as a cancelled map's do, then the last report. */
void mproc__progress_end_stopped(mproc__progress *g);
/* Stops counting (notes are ignored) until mproc__progress_end_stopped reports the end. */
void mproc__progress_freeze(mproc__progress *g);
/* The public view. */
void mproc__progress_get(const mproc__progress *g, mproc_progress *out);
/* Nobody is to be told any more (the handle was freed); a bar still ends its line. */
void mproc__progress_mute(mproc__progress *g);

/* ---- journal.c (lock held) --------------------------------------------------------------- */

/* A record found in a journal: item index finished with status and bytes (its result, or a
 * failure's message). */
typedef void (*mproc__journal_item_fn)(void *ud, size_t index, int status, const uint8_t *bytes, size_t len);
/* The fingerprint of a map's input: n items of in_size bytes, or n variable-length items. */
uint64_t mproc__journal_fingerprint(const void *in, size_t in_size, size_t n);
uint64_t mproc__journal_fingerprint_items(const mproc_item *items, size_t n);
/* Opens or creates the journal of a map of n items of in_size bytes (0: any) whose input has
 * fingerprint fp, with out_size-byte results (0: any), and replays its records through fn
 * (keep_data: the bytes it is shown stay valid until the journal is closed); 0, MPROC_EJOURNAL
 * (another call's journal, or not a journal), MPROC_EINVAL or MPROC_ESYS. */
int mproc__journal_open(mproc__journal **out, const char *path, int sync, const char *task, size_t in_size,
                        size_t out_size, size_t n, uint64_t fp, mproc__journal_item_fn fn, void *ud, int keep_data);
/* Records an item (batched). */
void mproc__journal_add(mproc__journal *j, size_t index, int status, const void *bytes, size_t len);
/* Records count successful items from first on, item_size bytes of results each, as one record. */
void mproc__journal_add_run(mproc__journal *j, size_t first, size_t count, size_t item_size, const void *results);
/* Writes what collected when due (final: now); returns 0 or the first write error (sticky). */
int mproc__journal_flush(mproc__journal *j, int final);
/* The first write error's sentence, or NULL. */
const char *mproc__journal_error(const mproc__journal *j);
/* Flushes, syncs as the policy says and closes; returns 0 or the first write error. The lock is
 * dropped meanwhile (the writer thread finishes with it). */
int mproc__journal_close(mproc__journal *j);

/* ---- domains.c (lock held) ------------------------------------------------------------- */

/* Builds dom_next from the backend's fault domains, once the group has started. */
void mproc__domains_map(mproc_pool *p);
/* 1 when some worker of w's domain has a frame in flight. */
int mproc__domain_busy(const mproc_pool *p, int w);
/* 1 when workers d and w share a fault domain. */
int mproc__domain_has(const mproc_pool *p, int d, int w);
/* 1 when a suspect chunk runs in w's domain: nothing else may start there. */
int mproc__domain_runs_suspect(const mproc_pool *p, int w);
/* Puts w's domain-mates back in the dispatch ring (a suspect there ended or was lost), once a
 * rank has been lost; a no-op before. */
void mproc__domain_may_take(mproc_pool *p, int w);

/* ---- faults.c -------------------------------------------------------------------------- */

/* A worker's DIED event: settles, splits or requeues its chunks. Returns 1 when the scheduler
 * should start a replacement, 0 when not (the pool is broken or terminated). */
int mproc__faults_on_died(mproc_pool *p, const mproc__event *ev);
/* No worker alive: the pool is broken (MPROC_EWORKER) and its work fails at once. */
void mproc__faults_check_alive(mproc_pool *p);
/* Kills workers whose running chunk is past its time limit; returns seconds to the next
 * deadline (< 0: none). */
double mproc__faults_check_timeouts(mproc_pool *p);
/* A ghost takes c's place in worker ws's in-flight list (after prev; NULL: c is the head), so
 * that c's late result is recognised and dropped while c is settled now. Returns c, taken out,
 * or NULL when out of memory (nothing changed). */
mproc__chunk *mproc__faults_ghost_in_place(mproc__wstate *ws, mproc__chunk *prev, mproc__chunk *c);
/* Worker w cannot be killed (MPI inside the ranks) but its running chunk must end now (its time
 * is up, its call was cancelled): it fails with err and msg, its ghost drops the late result,
 * and the worker goes on with the chunks behind it when it is done. */
void mproc__faults_expire_in_place(mproc_pool *p, int w, int err, const char *msg);

/* ---- cancel.c -------------------------------------------------------------------------- */

/* Cancels what is left of owner o (lock held): queued and unmade chunks settle at once with
 * err and msg, workers running its chunks are killed (their deaths settle those chunks). 1 if
 * anything was left to cancel, 0 if not. */
int mproc__owner_cancel(mproc_pool *p, mproc__owner *o, int err, const char *msg);

/* ---- scheduler.c ----------------------------------------------------------------------- */

/* The result thread's body (arg: the pool), started by mproc_pool_create. */
void *mproc__pool_result_thread(void *arg);

/* ---- job.c: the job behind an async handle (lock held unless said otherwise) ------------ */

/* A new job for apply (is_map 0) or map, with the call's options; its chunks use ops. */
mproc_async *mproc__job_new(int is_map, const mproc_task *t, const mproc_call_opts *o, const mproc__owner_ops *ops);
/* Validates a handle (magic, not freed) for fn; 0 or MPROC_EBADHANDLE. */
int mproc__async_check(const mproc_async *a, const char *fn);
/* Drops a reference (the user's, or the job's); the last one recycles the handle. */
void mproc__async_unref(mproc_async *a);
/* Keeps the failure of the lowest item index (a cancelled item's only while none failed of its
 * own): the call's error, whatever order results arrive in. */
void mproc__job_record_error(mproc_async *a, size_t index, int err, const char *msg, size_t len);
/* An item that failed in its worker: recorded (and journaled) as a sentence naming it. */
void mproc__job_item_error(mproc_async *a, const mproc__chunk *c, size_t index, int st, const uint8_t *msg,
                           size_t len);
/* count items from first on failed with err and msg (statuses set, the error recorded). */
void mproc__job_fail_items(mproc_async *a, size_t first, size_t count, int err, const char *msg);
/* map_items: item i's result, copied into a buffer the caller owns: 0, or MPROC_ENOMEM with the
 * item's error recorded (the caller then fails the item: its status, its count). */
int mproc__job_store(mproc_async *a, size_t i, const void *bytes, size_t len);
/* map: item i's status, into the caller's item_status if given. */
void mproc__job_set_status(mproc_async *a, size_t i, int st);
/* A chunk of items items (failed of them failed) settled: journal flushed when due, a failing
 * fail_fast call stopped, progress counted, and the job completed after its last chunk. */
void mproc__job_settled(mproc_pool *p, mproc_async *a, size_t items, size_t failed);
/* All chunks settled: journal closed, callbacks run (lock dropped), ready, waiters woken. */
void mproc__job_complete(mproc_async *a);
/* map with a journal: whether item i came from it; an item's outcome recorded in it. */
int mproc__job_replayed(const mproc_async *a, size_t i);
void mproc__job_journal_item(mproc_async *a, size_t i, int st, const void *bytes, size_t len);
/* Chunks that items from..n-1 make: runs of items not replayed, chunksize at most each. */
size_t mproc__job_chunks_from(const mproc_async *a, size_t from);
/* Opens the call's journal (o->journal, if any) and takes what it holds: *done items, *failed
 * of them failed. Lock not held (the job is not yet seen by anyone). 0 or an error. */
int mproc__job_journal_start(mproc_async *a, const mproc_call_opts *o, size_t *done, size_t *failed);
/* The user lets go of a handle (mproc_async_free); 0 or MPROC_EBADHANDLE. Lock not held. */
int mproc__async_release(mproc_async *a, const char *fn);
/* Waits until ready (0) or timeout (MPROC_ETIMEDOUT); fn names the call. Lock not held. */
int mproc__async_wait(mproc_async *a, double timeout, const char *fn);
/* Waits, then the result (borrowed) or the call's error. Lock not held. */
int mproc__async_get(mproc_async *a, double timeout, const void **data, size_t *len, const char *fn);

/* ---- iter_journal.c: an iterator's journal (lock held unless said otherwise) ------------- */

/* Opens o->journal for iterator it (array or items input; not generated input: MPROC_EINVAL),
 * and reads what it holds into it->replay: *done items, *failed of them failed. Lock not held
 * (nobody sees the iterator yet). 0, or an error. */
int mproc__iter_journal_open(mproc_iter *it, const mproc_call_opts *o, size_t *done, size_t *failed);
/* Whether item i came from the journal (it is never submitted). */
int mproc__iter_replayed(const mproc_iter *it, size_t i);
/* A chunk's results arrived / it failed by its own doing: its outcomes are recorded. */
void mproc__iter_journal_results(mproc_iter *it, const mproc__chunk *c, const mproc__results *r);
void mproc__iter_journal_failed(mproc_iter *it, const mproc__chunk *c, int err, const char *msg);
/* Writes what is pending (final: everything, now). */
void mproc__iter_journal_flush(mproc_iter *it, int final);
/* Lets go of what was replayed and takes the journal out of the iterator (NULL: none), for
 * mproc__iter_journal_end, which closes it: the lock is dropped while its writer finishes. */
mproc__journal *mproc__iter_journal_take(mproc_iter *it);
void mproc__iter_journal_end(mproc__journal *j);

/* ---- iter.c ---------------------------------------------------------------------------- */

/* The pool is being freed: its iterators let go of it. */
void mproc__iter_detach_all(mproc_pool *p);

#endif /* MPROC_POOL_H */
