/* mproc_shared.h - Python's multiprocessing communication and sync objects for C: Queue, Pipe,
 * Lock, RLock, Semaphore, Event, Condition, Barrier, Value/Array and named SharedMemory.
 * Included by mproc.h; the conventions written at the top of mproc.h hold here too.
 *
 * How an object reaches another process. Every object (but mproc_shm) is a small value - a
 * handle - that you copy into a task's argument or a Process's argument, as Python passes a Lock
 * or a Queue when it starts a process:
 *
 *     struct job { mproc_lock lock; mproc_array counter; long n; };
 *     struct job j = {.n = 1000};
 *     mproc_lock_create(&j.lock);
 *     mproc_value_create(&j.counter, sizeof(long));
 *     ... mproc_apply_async(pool, &bump_task, &j, sizeof j, NULL, &h) ...
 *     static int bump(mproc_ctx *ctx, const struct job *j, long *out) {
 *         mproc_lock_acquire(&j->lock, -1);
 *         ++*(long *)mproc_array_data(&j->counter);
 *         mproc_lock_release(&j->lock);
 *         ...
 *     }
 *
 * The objects live in memory shared by every process of the job on the node where they were
 * made: the process that creates the first object makes a shared-memory arena (a memfd; sized by
 * MPROC_SHARED_BYTES, default 256 MiB of address space, pages used only as touched) and other
 * processes map it the first time they use one of its handles. So the rule is simpler than
 * Python's: an object may be made before or after the pool or Process that uses it, and any
 * process of the job on that node may use it - pool workers, Processes, MPI worker ranks and
 * their executors, on both backends. The arena lives as long as a process maps it; a handle
 * reaches a process that has not mapped it yet only while its creator runs.
 *
 * Under MPI the objects work on every node. On the master's node the ranks and executors map
 * the arena like any other process; on other nodes each call goes to the master, whose broker
 * (a TCP socket the handle names, started by mproc_init) makes it there: the same results and
 * codes, at the cost of a network round trip per call (about one MPI ping-pong), and
 * mproc_array_data is NULL there (use mproc_array_read/_write/_add_i64). A Lock taken from
 * another node is handed on with MPROC_EOWNERDEAD when its holder's process ends. With
 * MPROC_SHARED_BROKER=0, or for objects made by another process than the master, a call from
 * another node is MPROC_EREMOTE. docs/shared.md has the details.
 *
 * Make objects after mproc_init(): under MPI every rank runs the code before it, so each would
 * make an object of its own.
 *
 * An object lives until it is freed (mproc_X_free; a Pipe when both ends are closed). Freeing
 * one that a process waits in wakes that process, whose call returns MPROC_EBADHANDLE ("freed
 * while this call waited on it"); a Lock or RLock that is held (by anyone, the caller included),
 * or an Array or Condition whose own lock is held, is not freed (MPROC_EBUSY, nothing changed). An
 * object made in a pool task lives in that worker's arena unless the worker had mapped another
 * one first: if no other process has used it yet, it dies with the worker (pool freed, worker
 * recycled or crashed). Make objects in the master.
 *
 * Errors. A zeroed, freed or corrupt handle, or a handle of another kind of object, is
 * MPROC_EBADHANDLE. A timeout that expires is MPROC_ETIMEDOUT (Lock, Semaphore, Event,
 * Condition, Barrier, Pipe poll, Queue join); a queue that stays full or empty past the timeout
 * is MPROC_EFULL / MPROC_EEMPTY, as Python raises queue.Full / queue.Empty. Timeouts are
 * seconds as double, < 0 waits forever, 0 does not wait.
 *
 * Death. A process (or thread) that dies or ends holding a Lock or RLock does not deadlock the
 * rest: the next acquire gets the lock and returns MPROC_EOWNERDEAD (what the lock guarded may
 * be half updated). A process killed in the middle of a put, get, send or recv leaves the queue whole
 * (no torn item, nothing lost that was not yet taken). A Semaphore does not know who holds it:
 * a count held by a dead process is lost, as in Python.
 */
#ifndef MPROC_SHARED_H
#define MPROC_SHARED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A handle's contents (48 bytes); opaque: copy it, never edit it. */
typedef struct mproc_shared_ref {
    uint64_t arena;   /* the arena's random tag */
    uint64_t offset;  /* the object's block in the arena */
    uint32_t pid;     /* the arena's creator */
    int32_t fd;       /* its memfd in the creator */
    uint32_t gen;     /* the object's generation, unique in its arena: a freed object's handle no longer matches */
    uint32_t host;    /* a hash of the creator's host name */
    uint32_t kind;    /* which kind of object */
    uint32_t aux;     /* per kind (a Pipe end's side) */
    uint32_t broker_ip;   /* IPv4 address (network order) of the creator's broker, 0 = none */
    uint16_t broker_port; /* its TCP port (network order) */
    uint16_t pad;
} mproc_shared_ref;

typedef struct mproc_lock { mproc_shared_ref ref; } mproc_lock;
typedef struct mproc_rlock { mproc_shared_ref ref; } mproc_rlock;
typedef struct mproc_semaphore { mproc_shared_ref ref; } mproc_semaphore;
typedef struct mproc_event { mproc_shared_ref ref; } mproc_event;
typedef struct mproc_condition { mproc_shared_ref ref; } mproc_condition;
typedef struct mproc_barrier { mproc_shared_ref ref; } mproc_barrier;
typedef struct mproc_queue { mproc_shared_ref ref; } mproc_queue;
typedef struct mproc_conn { mproc_shared_ref ref; } mproc_conn;
typedef struct mproc_array { mproc_shared_ref ref; } mproc_array;

/* ---------------------------------------------------------------------------------------------
 * Locks. Lock is a non-recursive lock owned by the thread that acquired it (acquiring it again
 * in that thread is MPROC_ESTATE, not a deadlock; releasing a lock the caller does not hold is
 * MPROC_ESTATE - unlike Python's Lock, which any process may release, so a dead holder's lock
 * can be handed on). RLock may be acquired again by its owner and is released as many times.
 * acquire: 0, MPROC_ETIMEDOUT, or MPROC_EOWNERDEAD (acquired; its last owner died holding it).
 * ------------------------------------------------------------------------------------------- */
int mproc_lock_create(mproc_lock *out);
int mproc_lock_acquire(const mproc_lock *lock, double timeout);
int mproc_lock_release(const mproc_lock *lock);
int mproc_lock_free(mproc_lock *lock);

int mproc_rlock_create(mproc_rlock *out);
int mproc_rlock_acquire(const mproc_rlock *lock, double timeout);
int mproc_rlock_release(const mproc_rlock *lock);
int mproc_rlock_free(mproc_rlock *lock);

/* Semaphore with a start value; bound > 0 makes a BoundedSemaphore (a release that would raise
 * the value above bound is MPROC_ESTATE and changes nothing), 0 = unbounded. acquire: 0 or
 * MPROC_ETIMEDOUT. */
int mproc_semaphore_create(mproc_semaphore *out, unsigned value, unsigned bound);
int mproc_semaphore_acquire(const mproc_semaphore *sem, double timeout);
int mproc_semaphore_release(const mproc_semaphore *sem);
/* The value now (>= 0), or an error. */
int mproc_semaphore_value(const mproc_semaphore *sem);
int mproc_semaphore_free(mproc_semaphore *sem);

/* ---------------------------------------------------------------------------------------------
 * Event, Condition, Barrier.
 * ------------------------------------------------------------------------------------------- */
int mproc_event_create(mproc_event *out);
int mproc_event_set(const mproc_event *ev);
int mproc_event_clear(const mproc_event *ev);
/* 1 when set, 0 when not, or an error. */
int mproc_event_is_set(const mproc_event *ev);
/* 0 once the event is set, MPROC_ETIMEDOUT if it was not set in time. */
int mproc_event_wait(const mproc_event *ev, double timeout);
int mproc_event_free(mproc_event *ev);

/* A Condition around a Lock: lock NULL makes one of its own. wait() must be called with the
 * lock held: it releases it, waits for a notify (or the timeout), and takes it again before it
 * returns 0 or MPROC_ETIMEDOUT (MPROC_EOWNERDEAD when taking it back found its holder dead).
 * Wake-ups may be spurious: wait in a loop that tests your predicate. Call notify with the lock
 * held. mproc_condition_free does not free a lock you passed. */
int mproc_condition_create(mproc_condition *out, const mproc_lock *lock);
int mproc_condition_acquire(const mproc_condition *cond, double timeout);
int mproc_condition_release(const mproc_condition *cond);
int mproc_condition_wait(const mproc_condition *cond, double timeout);
/* Python's wait_for: waits (lock held) until predicate(arg) returns non-zero: 0, or
 * MPROC_ETIMEDOUT if it is still false at the timeout (the lock held in both cases). */
int mproc_condition_wait_for(const mproc_condition *cond, int (*predicate)(void *arg), void *arg, double timeout);
/* Wakes up to n waiters (n >= 1); notify_all wakes them all. Without the lock held:
 * MPROC_ESTATE (Python's RuntimeError). */
int mproc_condition_notify(const mproc_condition *cond, int n);
int mproc_condition_notify_all(const mproc_condition *cond);
int mproc_condition_free(mproc_condition *cond);

/* A Barrier of `parties` (>= 1). wait returns this party's arrival index (0..parties-1, one of
 * them 0, as Python's wait() returns), MPROC_ETIMEDOUT for a party whose timeout expired (the
 * barrier is then broken), or MPROC_EBROKEN when the barrier was broken (a timeout, abort, or
 * a reset while this party waited). reset makes a broken barrier usable again. */
int mproc_barrier_create(mproc_barrier *out, unsigned parties);
int mproc_barrier_wait(const mproc_barrier *bar, double timeout);
int mproc_barrier_abort(const mproc_barrier *bar);
int mproc_barrier_reset(const mproc_barrier *bar);
/* Parties waiting now (>= 0), or an error. */
int mproc_barrier_waiting(const mproc_barrier *bar);
/* Python's parties and broken: the party count; 1 when broken, 0 when not; or an error. */
int mproc_barrier_parties(const mproc_barrier *bar);
int mproc_barrier_broken(const mproc_barrier *bar);
int mproc_barrier_free(mproc_barrier *bar);

/* ---------------------------------------------------------------------------------------------
 * Queue (Queue, SimpleQueue and JoinableQueue in one): items are bytes, copied in and out, in
 * FIFO order. Bounded by `capacity` bytes of storage (each item takes its length rounded up to
 * 8, plus 8) and, if maxsize > 0, by maxsize items. put blocks while full, get while empty.
 * ------------------------------------------------------------------------------------------- */
typedef struct mproc_queue_opts {
    size_t maxsize;  /* items; 0 = as many as fit */
    size_t capacity; /* bytes of storage; 0 = 1 MiB */
} mproc_queue_opts;

/* opts may be NULL for the defaults. */
int mproc_queue_create(mproc_queue *out, const mproc_queue_opts *opts);
/* 0, MPROC_EFULL (still full after the timeout), MPROC_ECLOSED (the queue was closed),
 * MPROC_ETOOBIG (the item can never fit: more than the capacity). len 0 is a valid item. */
int mproc_queue_put(const mproc_queue *q, const void *data, size_t len, double timeout);
/* Takes the first item into buf (cap bytes) and its length into *len (len may be NULL when the
 * length is not wanted): 0, MPROC_EEMPTY (still empty after the timeout), MPROC_ECLOSED (closed
 * and every item taken), or MPROC_ESIZE (the item is longer than cap: *len says how long, the
 * item stays first in the queue). */
int mproc_queue_get(const mproc_queue *q, void *buf, size_t cap, size_t *len, double timeout);
/* As mproc_queue_get into a buffer you own (free out->data with mproc_free; data is never NULL
 * on success, even for an empty item). */
int mproc_queue_get_buf(const mproc_queue *q, mproc_buf *out, double timeout);
/* Items in the queue now (>= 0), or an error. */
long mproc_queue_qsize(const mproc_queue *q);
/* No more puts (they get MPROC_ECLOSED); gets take what is left, then get MPROC_ECLOSED.
 * Wakes every process waiting on the queue. Closing twice is fine. */
int mproc_queue_close(const mproc_queue *q);
/* JoinableQueue: every put counts an unfinished item, task_done finishes one (MPROC_ESTATE when
 * called more often than items were put), join waits until none is unfinished (0 or
 * MPROC_ETIMEDOUT). */
int mproc_queue_task_done(const mproc_queue *q);
int mproc_queue_join(const mproc_queue *q, double timeout);
int mproc_queue_free(mproc_queue *q);

/* Typed shorthands: the size comes from the variable. GET is MPROC_ESIZE for an item of any
 * other length (the item stays in the queue). */
#define MPROC_QUEUE_PUT(q, valuep, timeout) mproc_queue_put((q), (valuep), sizeof *(valuep), (timeout))
#define MPROC_QUEUE_GET(q, valuep, timeout) mproc_queue_get_exact((q), (valuep), sizeof *(valuep), (timeout))
int mproc_queue_get_exact(const mproc_queue *q, void *buf, size_t size, double timeout);

/* ---------------------------------------------------------------------------------------------
 * Pipe: two connected ends. duplex != 0: each end sends to the other. duplex == 0: a receives
 * only, b sends only (Python's Pipe(duplex=False) returns (reader, writer)). Each direction
 * holds `capacity` bytes (0 = 1 MiB); send blocks while the other end has not taken enough.
 * ------------------------------------------------------------------------------------------- */
int mproc_pipe(mproc_conn *a, mproc_conn *b, int duplex, size_t capacity);
/* 0, MPROC_ETIMEDOUT (no room in time), MPROC_ECLOSED (either end was closed), MPROC_ETOOBIG,
 * MPROC_ESTATE (a receive-only end). On an end that was closed, every call but close is
 * MPROC_ECLOSED. */
int mproc_conn_send(const mproc_conn *c, const void *data, size_t len, double timeout);
/* The next message, as for mproc_queue_get_buf: 0, MPROC_ETIMEDOUT, MPROC_EOF (the other end
 * was closed and everything it sent was taken), MPROC_ESTATE (a send-only end). */
int mproc_conn_recv(const mproc_conn *c, mproc_buf *out, double timeout);
/* Into buf: as mproc_queue_get (MPROC_ESIZE when longer than cap: the message stays). */
int mproc_conn_recv_into(const mproc_conn *c, void *buf, size_t cap, size_t *len, double timeout);
/* Into buf, only a message of exactly size bytes (MPROC_ESIZE otherwise: it stays). */
int mproc_conn_recv_exact(const mproc_conn *c, void *buf, size_t size, double timeout);
/* Typed shorthands, as for a Queue: the size comes from the variable. */
#define MPROC_CONN_SEND(c, valuep, timeout) mproc_conn_send((c), (valuep), sizeof *(valuep), (timeout))
#define MPROC_CONN_RECV(c, valuep, timeout) mproc_conn_recv_exact((c), (valuep), sizeof *(valuep), (timeout))
/* 1 when a message (or the end of the stream) can be received now, 0 if none came in time. */
int mproc_conn_poll(const mproc_conn *c, double timeout);
/* Closes this end, for every process: the other end's recv gets MPROC_EOF after what was sent,
 * its send MPROC_ECLOSED. The pipe's memory is freed when both ends are closed (a handle of it
 * is then MPROC_EBADHANDLE). Close clears *c; closing an end twice (that variable again, or
 * a copy of it) is fine, as is closing a zeroed mproc_conn. */
int mproc_conn_close(mproc_conn *c);

/* ---------------------------------------------------------------------------------------------
 * Value and Array: count elements of elem_size bytes, zeroed, in shared memory. with_lock != 0
 * gives the array a Lock of its own (mproc_array_lock). mproc_value_create is an Array of one
 * element with a lock, as Python's Value('l', 0).
 * ------------------------------------------------------------------------------------------- */
int mproc_array_create(mproc_array *out, size_t elem_size, size_t count, int with_lock);
int mproc_value_create(mproc_array *out, size_t size);
/* The elements in this process's mapping, or NULL (bad handle; mproc_last_error says why). On
 * another node than the array's (MPI) there is no mapping: NULL with MPROC_EREMOTE's sentence;
 * use the three calls below, which work everywhere. */
void *mproc_array_data(const mproc_array *a);
/* Copies len bytes at byte offset into the elements out to buf / in from buf (MPROC_EINVAL
 * outside them). Not under the array's lock: take it yourself if others write meanwhile. */
int mproc_array_read(const mproc_array *a, size_t offset, void *buf, size_t len);
int mproc_array_write(const mproc_array *a, size_t offset, const void *buf, size_t len);
/* Adds delta to 8-byte element index atomically (no lock needed); *after (may be NULL) gets the
 * new value. MPROC_ESIZE for elements of another size. */
int mproc_array_add_i64(const mproc_array *a, size_t index, int64_t delta, int64_t *after);
/* Element count (>= 0) or an error. */
long mproc_array_count(const mproc_array *a);
/* The array's lock (MPROC_ESTATE if it was made without one). */
int mproc_array_lock(const mproc_array *a, mproc_lock *out);
/* Frees the array and its lock. */
int mproc_array_free(mproc_array *a);

/* ---------------------------------------------------------------------------------------------
 * SharedMemory: a named block any process on the node can attach (Python's
 * shared_memory.SharedMemory). name: up to 200 characters of [A-Za-z0-9._-], or NULL on create
 * for a fresh "mproc-<pid>-<n>". The handle is this process's own (pass the name to others).
 * ------------------------------------------------------------------------------------------- */
typedef struct mproc_shm mproc_shm;

/* MPROC_EBUSY when a block of that name exists. The block is zeroed. */
int mproc_shm_create(mproc_shm **out, const char *name, size_t size);
/* MPROC_EINVAL naming the block when there is none of that name. */
int mproc_shm_attach(mproc_shm **out, const char *name);
void *mproc_shm_data(const mproc_shm *shm);
size_t mproc_shm_size(const mproc_shm *shm);
const char *mproc_shm_name(const mproc_shm *shm);
/* Unmaps this process's view and frees the handle; the block stays until unlinked. */
int mproc_shm_close(mproc_shm *shm);
/* Removes the name (processes that attached keep their views). */
int mproc_shm_unlink(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* MPROC_SHARED_H */
