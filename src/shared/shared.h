/* shared.h - what the files of src/shared/ (the communication and sync objects of
 * mproc_shared.h) share: the arena their objects live in (arena.c), the wait and lock
 * primitives that work across processes and survive a dead holder (primitives.c), and the
 * queue internals that Pipe is built from (queue.c). Nothing here is public.
 */
#ifndef MPROC_SHARED_INTERNAL_H
#define MPROC_SHARED_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "common/common.h"

/* The kinds of object; a handle names its kind and so does the block it points to. */
enum mproc__sh_kind {
    MPROC__SH_LOCK = 0x5a10,
    MPROC__SH_RLOCK,
    MPROC__SH_SEMAPHORE,
    MPROC__SH_EVENT,
    MPROC__SH_CONDITION,
    MPROC__SH_BARRIER,
    MPROC__SH_QUEUE,
    MPROC__SH_PIPE,
    MPROC__SH_ARRAY,
};

/* Calls between these files stay inside libmproc (no PLT hop on a lock's every acquire). */
#pragma GCC visibility push(hidden)

/* ---- primitives.c: locks and waits in shared memory ----------------------------------------- */

/* A process-shared robust mutex (type PTHREAD_MUTEX_ERRORCHECK or PTHREAD_MUTEX_RECURSIVE). */
int mproc__sh_mutex_init(pthread_mutex_t *m, int type);
/* Takes m by the deadline (mproc__deadline; -1 forever, a passed one tries once): 0; 1 when its
 * holder had died (m is made consistent and held); MPROC_ETIMEDOUT; MPROC_ESTATE when the
 * calling thread holds it already (error-checking type). */
int mproc__sh_mutex_lock(pthread_mutex_t *m, double deadline);
/* 0, or MPROC_ESTATE when the calling thread does not hold m. */
int mproc__sh_mutex_unlock(pthread_mutex_t *m);
/* Takes an object's internal mutex, held only for a few stores. 1 when its holder had died:
 * every object commits a change with one store, so the object is whole, but a counter kept
 * beside that store may need counting again (the queue does). */
int mproc__sh_enter(pthread_mutex_t *m);
void mproc__sh_leave(pthread_mutex_t *m);

/* A wait word: sleep while *word == seen, until the deadline: 0 (woken, or the word moved) or
 * MPROC_ETIMEDOUT. A futex on shared memory, so a dead waiter takes no wake-up with it. */
int mproc__sh_wait(_Atomic uint32_t *word, uint32_t seen, double deadline);
/* Moves the word on and wakes up to n sleepers (n < 0: all). */
void mproc__sh_wake(_Atomic uint32_t *word, int n);
/* EINVAL for a NaN timeout (the one bad value a double can hold), else 0 with the deadline. */
int mproc__sh_deadline(double timeout, double *deadline, const char *fn);

/* ---- arena.c: where the objects live ---------------------------------------------------------- */

/* Not an error a caller ever sees: mproc__sh_get()'s answer for a handle made on another node
 * that serves a broker, which the public call then forwards (mproc__sh_remote). */
#define MPROC__SH_REMOTE (-1000)
/* 1 for a handle made on another node whose creator serves a broker. */
int mproc__sh_is_remote(const mproc_shared_ref *r);
/* The address broker.c listens on: put in every handle made from now on. */
void mproc__sh_set_broker(uint32_t ip, uint16_t port);

/* A new zeroed object of `size` bytes and kind in this process's arena (made on first use):
 * 0 with *obj and the handle, or ENOMEM / ESYS. */
int mproc__sh_alloc(uint32_t kind, size_t size, mproc_shared_ref *ref, void **obj, const char *fn);
/* The object a handle names, mapped in this process: NULL with *err (EBADHANDLE, EREMOTE, ESYS)
 * and the sentence for mproc_last_error() naming fn. */
void *mproc__sh_resolve(const mproc_shared_ref *ref, uint32_t kind, const char *fn, int *err);
/* 1 when ref names an object of kind in an arena this process maps that has since been freed
 * (its block free, or another object's now: a newer generation there), else 0. */
int mproc__sh_was_freed(const mproc_shared_ref *ref, uint32_t kind);
/* Frees the object (its handles stop matching) and clears *ref. 0 or an error. */
int mproc__sh_free(mproc_shared_ref *ref, uint32_t kind, const char *fn);
/* As mproc__sh_free; reuse 0 keeps the block out of use for good, for an object freed while
 * a process may still wait inside it (woken, it finds the object dead and leaves). */
int mproc__sh_free_ex(mproc_shared_ref *ref, uint32_t kind, const char *fn, int reuse);
/* 1 when the calling thread holds the Lock (locks.c), else 0. */
int mproc__sh_lock_held_by_me(const mproc_lock *lock);
/* mproc_lock_free as part of fn (an Array's or Condition's own lock): EBUSY when it is held. */
int mproc__sh_lock_free_as(mproc_lock *lock, const char *fn);
/* The error a call returns when the object it waited in was freed meanwhile. */
int mproc__sh_freed_while_waiting(const char *fn);
/* This process's first arena (where its own objects go), for the inline look-up below: tag 0
 * until it is mapped, stored last. */
typedef struct mproc__sh_view {
    _Atomic uint64_t tag;
    char *base;
    uint64_t size;
} mproc__sh_view;
extern mproc__sh_view mproc__sh_first;

/* mproc__sh_resolve for the common case in a few inlined instructions (a lock's every acquire
 * resolves its handle): a handle into the first arena whose block matches. Anything else -
 * another arena, a stale or bad handle - takes mproc__sh_resolve, which says what is wrong. The
 * block header is 64 bytes before the object; its first words are the kind and generation. */
static inline void *mproc__sh_get(const mproc_shared_ref *r, uint32_t kind, const char *fn, int *err) {
    if (r && r->kind == kind && r->arena == atomic_load_explicit(&mproc__sh_first.tag, memory_order_acquire) &&
        r->offset % 64 == 0 && r->offset >= 64 && r->offset <= mproc__sh_first.size - 64) {
        const uint32_t *b = (const uint32_t *)(mproc__sh_first.base + r->offset);
        if (b[0] == kind && b[1] == r->gen) return (char *)b + 64;
    }
    return mproc__sh_resolve(r, kind, fn, err);
}


/* ---- remote.c / broker.c: objects used from another node ------------------------------------- */

/* What a call on a handle made on another node becomes: a request to the broker thread of the
 * handle's creator (its address is in the handle), which makes the same call there. Both ends
 * run the same build (the same byte order and sizes, as MPI's ranks of one job do). */
enum mproc__sh_op {
    MPROC__OP_LOCK_ACQUIRE = 1, MPROC__OP_LOCK_RELEASE, MPROC__OP_LOCK_FREE,
    MPROC__OP_RLOCK_ACQUIRE, MPROC__OP_RLOCK_RELEASE, MPROC__OP_RLOCK_FREE,
    MPROC__OP_SEM_ACQUIRE, MPROC__OP_SEM_RELEASE, MPROC__OP_SEM_VALUE, MPROC__OP_SEM_FREE,
    MPROC__OP_EVENT_SET, MPROC__OP_EVENT_CLEAR, MPROC__OP_EVENT_IS_SET, MPROC__OP_EVENT_WAIT, MPROC__OP_EVENT_FREE,
    MPROC__OP_COND_ACQUIRE, MPROC__OP_COND_RELEASE, MPROC__OP_COND_WAIT, MPROC__OP_COND_NOTIFY,
    MPROC__OP_COND_NOTIFY_ALL, MPROC__OP_COND_FREE,
    MPROC__OP_BARRIER_WAIT, MPROC__OP_BARRIER_ABORT, MPROC__OP_BARRIER_RESET, MPROC__OP_BARRIER_WAITING,
    MPROC__OP_BARRIER_PARTIES, MPROC__OP_BARRIER_BROKEN, MPROC__OP_BARRIER_FREE,
    MPROC__OP_QUEUE_PUT, MPROC__OP_QUEUE_GET, MPROC__OP_QUEUE_QSIZE, MPROC__OP_QUEUE_CLOSE,
    MPROC__OP_QUEUE_TASK_DONE, MPROC__OP_QUEUE_JOIN, MPROC__OP_QUEUE_FREE,
    MPROC__OP_CONN_SEND, MPROC__OP_CONN_RECV, MPROC__OP_CONN_POLL, MPROC__OP_CONN_CLOSE,
    MPROC__OP_ARRAY_READ, MPROC__OP_ARRAY_WRITE, MPROC__OP_ARRAY_ADD, MPROC__OP_ARRAY_COUNT,
    MPROC__OP_ARRAY_LOCK, MPROC__OP_ARRAY_FREE,
    MPROC__OP_END
};

#define MPROC__SH_REQ_MAGIC 0x6d707271u /* "mprq" */
#define MPROC__SH_REP_MAGIC 0x6d707270u /* "mprp" */
#define MPROC__SH_MAX_PAYLOAD ((uint64_t)1 << 40)

typedef struct mproc__sh_req {
    uint32_t magic, op;
    uint64_t len;          /* payload bytes after this header */
    mproc_shared_ref ref;
    double timeout;
    int64_t a, b;          /* per op: a get's buffer size and exactness, an index, a count... */
} mproc__sh_req;

typedef struct mproc__sh_rep {
    uint32_t magic;
    int32_t rc;
    uint64_t len;          /* payload bytes after this header */
    int64_t value;         /* per op: a length, a count, a flag */
    mproc_shared_ref ref;  /* an Array's lock */
    char msg[232];         /* mproc_last_error() of the call there, when rc < 0 */
} mproc__sh_rep;

/* One forwarded call, as the public function would make it. */
typedef struct mproc__sh_call {
    uint32_t op;
    const mproc_shared_ref *ref;
    double timeout;
    int64_t a, b;
    const void *in;        /* payload sent (a put's item, an array write) */
    size_t in_len;
    void *out;             /* where a returned payload goes (out_cap bytes), or NULL: into *owned */
    size_t out_cap;
    void **owned;
    size_t out_len;        /* set: the returned payload's length (or the reported value) */
    int64_t value;         /* set */
    mproc_shared_ref out_ref; /* set (ARRAY_LOCK) */
    const char *fn;
} mproc__sh_call;

/* Makes the call at the handle's broker: its return code, with its sentence in
 * mproc_last_error(); MPROC_EREMOTE when the broker cannot be reached. */
int mproc__sh_remote(mproc__sh_call *c);

/* The stream I/O both ends of a connection use (remote.c), 0 or -1 (closed, failed, late):
 * sends every byte of iov (no SIGPIPE: a closed peer is an error; iov is consumed); reads n
 * bytes by the deadline (< 0: none); reads and drops n bytes. A signal is not a failure. */
int mproc__sh_send_all(int fd, struct iovec *iov, int n);
int mproc__sh_read_all(int fd, void *buf, size_t n, double deadline);
int mproc__sh_discard(int fd, uint64_t n, double deadline);

/* A forwarded call with no bytes either way. */
static inline int mproc__sh_forward(uint32_t op, const mproc_shared_ref *r, double timeout, int64_t a, const char *fn) {
    mproc__sh_call c = {.op = op, .ref = r, .timeout = timeout, .a = a, .fn = fn};
    return mproc__sh_remote(&c);
}

/* A forwarded free: the caller's handle is cleared when it worked, as a local free does. */
static inline int mproc__sh_forward_free(uint32_t op, mproc_shared_ref *r, const char *fn) {
    int rc = mproc__sh_forward(op, r, 0, 0, fn);
    if (rc == 0) memset(r, 0, sizeof *r);
    return rc;
}

/* mproc_condition_wait for the broker (events.c): the wait made in slices of `slice` s,
 * asking still_there(arg) between them; when the caller is gone it returns MPROC__SH_GONE
 * without taking the lock back (the serving thread ends holding nothing). The word a notify
 * moves is read once, so no notify is lost between slices. */
#define MPROC__SH_GONE (-1001)
int mproc__sh_condition_wait_watched(const mproc_condition *cond, double timeout, double slice,
                                     int (*still_there)(void *), void *arg);

/* broker.c: starts serving this process's objects to other nodes (the MPI master calls it). */
int mproc__sh_broker_start(void);
/* MPROC_SHARED_BROKER_ADDR read: MPROC_EINVAL, named, unless unset or an IPv4 address other
 * nodes may reach (mproc_init checks it on every backend, as the other MPROC_ switches). */
int mproc__sh_broker_addr_setting(void);

/* ---- queue.c: the byte queue that Queue and both directions of a Pipe are ------------------- */

typedef struct mproc__sh_queue {
    pthread_mutex_t mu;
    _Atomic uint32_t not_empty; /* wait word: an item came or the queue closed */
    _Atomic uint32_t not_full;  /* wait word: room was made or the queue closed */
    _Atomic uint32_t joined;    /* wait word: unfinished went to 0 */
    uint32_t getters, putters;  /* sleeping (a dead sleeper only costs a spare wake-up) */
    int closed;
    int dead;                   /* freed: whoever wakes inside leaves with EBADHANDLE */
    uint32_t joiners;
    uint64_t head, tail;        /* byte positions, only ever growing; used = tail - head */
    uint64_t items, maxsize, capacity, unfinished;
    uint64_t ring_offset;       /* from this struct to its ring of capacity bytes */
} mproc__sh_queue;

/* Bytes a queue of this capacity takes (struct + ring; capacity rounded up to 8): its ring
 * starts mproc__sh_queue_bytes(0) bytes after the struct. */
size_t mproc__sh_queue_bytes(size_t capacity);
int mproc__sh_queue_init(mproc__sh_queue *q, size_t maxsize, size_t capacity, uint64_t ring_offset);
int mproc__sh_queue_put(mproc__sh_queue *q, const void *data, size_t len, double deadline);
/* Takes the first item: into buf (cap bytes; exact: only an item of exactly cap bytes) or,
 * when buf is NULL, into a new buffer *owned. 0; MPROC_EEMPTY; MPROC_ECLOSED; MPROC_ENOMEM;
 * MPROC_ESIZE (*len = its length, the item stays). */
int mproc__sh_queue_get(mproc__sh_queue *q, void *buf, size_t cap, int exact, void **owned, size_t *len, double deadline);
/* Waits until an item is there or the queue is closed: 1, or 0 at the deadline. */
int mproc__sh_queue_poll(mproc__sh_queue *q, double deadline);
void mproc__sh_queue_close(mproc__sh_queue *q);
/* Marks the queue freed and wakes whoever waits in it (put/get/poll then return
 * MPROC_EBADHANDLE): 1 when someone was waiting (the block must not be reused), else 0. */
int mproc__sh_queue_kill(mproc__sh_queue *q);

#pragma GCC visibility pop

#endif /* MPROC_SHARED_INTERNAL_H */
