/* backend_mpi.c - the MPI backend's master side (rank 0) and its table of operations.
 *
 * Rank 0 is the master; every other rank is a worker that never returns from init (mpi_rank.c).
 * A pool group is the worker ranks 1..n (worker index i = rank i+1); only one group lives at a
 * time, and stopping it leaves the ranks serving so a later pool reuses them; they get SHUTDOWN
 * in finalize. A Process runs as a forked child of a worker rank, which reports its pid and its
 * exit over PROC_* frames (mpi_process.c; the state both files share is in mpi_master.h).
 *
 * Nobody owns the receive side: whichever thread waits (the pool's result thread in wait(), a
 * user thread in proc_wait(), a sender whose peer is slow) polls MPI and routes every frame to
 * its owner: the group's event queue or the child record. Polling never spins for long: Open
 * MPI's blocking receive would burn a core, so we MPI_Improbe with a short spin, then sleep with
 * a backoff that grows to 1 ms, cut short by the process's doorbell (mpi_wait.c), which
 * rings when a rank on this node sends us a frame, on wake(), and when a frame is routed.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "common/common.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/master_state.h"
#include "wire/wire.h"

/* ---------------------------------------------------------------------------------------------
 * Master state: the live group, the Processes, per-rank bookkeeping. All under the lock.
 * ------------------------------------------------------------------------------------------- */

typedef struct evnode {
    struct evnode *next;
    int worker;
    uint8_t *frame;
    size_t len;
    int placed; /* its data went to its TASK's reply_to */
} evnode;

struct mproc__group {
    int n;
    atomic_int woken;
    evnode *head, *tail; /* frames for this group, routed by whichever thread received them */
};

mproc__mpi_master mproc__mpi_m;

/* ---------------------------------------------------------------------------------------------
 * Placements: replies received straight into the caller's output (mproc__send_hint.reply_to).
 * ------------------------------------------------------------------------------------------- */

static mproc__placement *find_placement(int rank, uint64_t id) {
    for (int i = 0; i < M.nplace; i++)
        if (M.place[i].rank == rank && M.place[i].id == id) return &M.place[i];
    return NULL;
}

/* Lock held. Remembers where the reply to TASK id from rank may put its data; 0 or -1. */
static int add_placement(int rank, uint64_t id, void *to, size_t len) {
    if (M.nplace == M.capplace) {
        int cap = M.capplace ? 2 * M.capplace : 16;
        mproc__placement *v = realloc(M.place, (size_t)cap * sizeof *v);
        if (!v) return -1;
        M.place = v;
        M.capplace = cap;
    }
    M.place[M.nplace++] = (mproc__placement){rank, id, to, len, 0};
    return 0;
}

/* Lock held. Forgets a placement; returns whether it was used. */
static int drop_placement(mproc__placement *pl) {
    int used = pl->used;
    *pl = M.place[--M.nplace];
    return used;
}

/* The transport's question (mproc__mpi_place): a split RESULT's lead arrived from src. Its data
 * goes to the TASK's home when the sizes agree exactly, else into a frame of its own. */
static uint8_t *place_result(int src, const uint8_t *first, size_t first_len, size_t want) {
    mproc__placement *pl = find_placement(src, mproc__get_u64(first + 8));
    if (!pl || pl->used || want - first_len != pl->len) return NULL;
    pl->used = 1;
    return pl->to;
}

static void route_result(int src, uint8_t *f, size_t len) {
    /* A rank answers its frames in order, having taken each whole before answering it: every
     * retained send up to this reply's frame is done (or about to be: its FIN may lag), and
     * must be before the core sees the reply and may free that frame's input. */
    mproc__mpi_complete_sends(src, ++M.replied[src]);
    /* The first drop[src] replies are the stopped group's. */
    if (M.drop[src] > 0) {
        M.drop[src]--;
        free(f);
        return;
    }
    mproc__group *g = M.group;
    if (!g || src - 1 >= g->n) {
        free(f);
        return;
    }
    if (M.outstanding[src] > 0) M.outstanding[src]--;
    mproc__placement *pl = find_placement(src, mproc__get_u64(f + 8));
    int placed = pl ? drop_placement(pl) : 0;
    evnode *e = malloc(sizeof *e);
    if (!e) mproc__mpi_fatal("master: out of memory queueing a result from rank %d", src);
    *e = (evnode){NULL, src - 1, f, len, placed};
    if (g->tail)
        g->tail->next = e;
    else
        g->head = e;
    g->tail = e;
}

/* The master's sink: every frame from a worker rank goes to its owner, then waiters look. */
void mproc__mpi_route(int src, uint8_t *f, size_t len) {
    uint16_t kind = mproc__get_u16(f + 6);
    switch (kind) {
    case MPROC__FRAME_RESULT:
    case MPROC__FRAME_INIT_RESULT:
    case MPROC__FRAME_BATCH:
        route_result(src, f, len);
        break;
    case MPROC__FRAME_PROC_STARTED:
    case MPROC__FRAME_PROC_EXIT:
        mproc__mpi_route_child(src, kind, f, len);
        break;
    default:
        mproc__mpi_fatal("rank %d sent the master an unexpected frame of kind %u", src,
                         (unsigned)kind);
    }
    mproc__mpi_ring_sleepers(); /* the owner may be another thread, asleep */
}

/* Lock held. Polls and sleeps until done(arg) or the deadline: 1 if done. cap_ns bounds the
 * sleeps: how late a frame without a doorbell (from another node) may be noticed. */
int mproc__mpi_wait_until(int (*done)(const void *), const void *arg, double deadline, long cap_ns) {
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, cap_ns);
    for (;;) {
        if (done(arg)) return 1;
        if (mproc__mpi_drain(mproc__mpi_route) > 0) continue;
        if (deadline >= 0 && mproc__remaining(deadline) <= 0) return 0;
        mproc__mpi_backoff_wait(&bo, deadline);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Start-up: MPI, the communicator, the ranks' start messages and the task-table check.
 * ------------------------------------------------------------------------------------------- */

/* Seconds the master waits for every rank to reach mproc_init (MPROC_MPI_START_TIMEOUT). */
static double start_timeout(void) {
    const char *s = getenv("MPROC_MPI_START_TIMEOUT");
    if (!s || !*s) return 120.0;
    double t = strtod(s, NULL);
    return t > 0 ? t : -1.0;
}

/* MPI_Comm_idup polled with backoff: a rank that is slow to reach mproc_init must not make the
 * others spin in a blocking collective. */
static void dup_world(double deadline) {
    MPI_Request req;
    MPI_Comm comm;
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_IDLE_CAP_NS);
    mproc__mpi_ok(MPI_Comm_idup(MPI_COMM_WORLD, &comm, &req), "MPI_Comm_idup");
    pthread_mutex_lock(&mproc__mpi.lock);
    for (;;) {
        int flag = 0;
        mproc__mpi_ok(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (flag) break;
        if (deadline >= 0 && mproc__remaining(deadline) <= 0)
            mproc__mpi_fatal("not every rank called mproc_init within %.0f s: every rank runs the "
                             "same program (set MPROC_MPI_START_TIMEOUT=seconds, 0 = forever)",
                             start_timeout());
        mproc__mpi_backoff_wait(&bo, deadline);
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    /* Our errors come back as codes, so a failure is reported by mproc, not by a bare abort. */
    mproc__mpi_ok(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    mproc__mpi.comm = comm;
}

/* One start message (pid, or HELLO with the task table) from a rank; returns 1 when new. */
static int take_hello(int src, const uint8_t *f, size_t len, unsigned char *seen) {
    uint16_t kind = mproc__get_u16(f + 6);
    const uint8_t *p = f + MPROC__WIRE_HDR_SIZE;
    size_t n = len - MPROC__WIRE_HDR_SIZE;
    if (kind == MPROC__FRAME_PROC_STARTED && mproc__get_u64(f + 8) == 0 && !(seen[src] & 1) &&
        n >= MPROC__MPI_STARTED_MIN) {
        M.pid[src] = (long)mproc__get_u32(p + 4);
        seen[src] |= 1;
        return 1;
    }
    if (kind != MPROC__FRAME_HELLO || (seen[src] & 2) || n < 12 ||
        mproc__get_u32(f + 20) != (uint32_t)(src - 1))
        mproc__mpi_fatal("rank %d sent a frame of kind %u instead of its HELLO: is every rank "
                         "running the same version of mproc?", src, (unsigned)kind);
    uint64_t fp = mproc__get_u64(p), mine = mproc__registry_fingerprint();
    uint32_t cnt = mproc__get_u32(p + 8);
    size_t mycnt = mproc__registry_count();
    if (fp != mine || cnt != mycnt)
        mproc__mpi_fatal("rank %d has a different task table (fingerprint 0x%016llx with %u "
                         "tasks; rank 0 has 0x%016llx with %zu tasks): build every rank from the "
                         "same program",
                         src, (unsigned long long)fp, (unsigned)cnt, (unsigned long long)mine,
                         mycnt);
    seen[src] |= 2;
    return 1;
}

/* Names the ranks that never sent their start messages, then aborts. */
_Noreturn static void missing_ranks(const unsigned char *seen) {
    char list[256] = "";
    size_t at = 0;
    for (int r = 1; r < mproc__mpi.size && at + 16 < sizeof list; r++)
        if (seen[r] != 3) at += (size_t)snprintf(list + at, sizeof list - at, " %d", r);
    mproc__mpi_fatal("rank(s)%s did not finish mproc_init within %.0f s (set "
                     "MPROC_MPI_START_TIMEOUT=seconds, 0 = forever)", list, start_timeout());
}

/* Collects every worker rank's pid and HELLO; a task table that differs ends the job. */
static void collect_hellos(double deadline) {
    int size = mproc__mpi.size, left = 2 * (size - 1);
    unsigned char *seen = calloc((size_t)size, 1);
    if (!seen) mproc__mpi_fatal("master: out of memory at start");
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_IDLE_CAP_NS);
    pthread_mutex_lock(&mproc__mpi.lock);
    while (left > 0) {
        int src = -1;
        uint8_t *f = NULL;
        size_t len = 0;
        int rc = mproc__mpi_try_recv(MPI_ANY_SOURCE, &src, &f, &len);
        if (rc < 0) mproc__mpi_fatal("master: %s", mproc_last_error());
        if (rc == 0) {
            if (deadline >= 0 && mproc__remaining(deadline) <= 0) missing_ranks(seen);
            mproc__mpi_backoff_wait(&bo, deadline);
            continue;
        }
        left -= take_hello(src, f, len, seen);
        free(f);
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    free(seen);
}

static void master_start(double deadline) {
    size_t n = (size_t)mproc__mpi.size;
    M.pid = calloc(n, sizeof *M.pid);
    M.outstanding = calloc(n, sizeof *M.outstanding);
    M.drop = calloc(n, sizeof *M.drop);
    M.nchild = calloc(n, sizeof *M.nchild);
    M.sent = calloc(n, sizeof *M.sent);
    M.replied = calloc(n, sizeof *M.replied);
    if (!M.pid || !M.outstanding || !M.drop || !M.nchild || !M.sent || !M.replied)
        mproc__mpi_fatal("master: out of memory at start");
    M.pid[0] = (long)getpid();
    collect_hellos(deadline);
    mproc__mpi_place = place_result;
}

/* Runs at the start of the program's own MPI_Finalize (an MPI_COMM_SELF attribute's delete
 * callback, which MPI calls while still fully working), when the program initialized MPI. If
 * the program never called mproc_finalize, this is the last moment to stop the ranks. Then the
 * final barrier: the worker ranks wait in it until now, cheaply polled, rather than inside
 * MPI_Finalize, which would cost each ~10% of a core while the master goes on after
 * mproc_finalize. */
static int at_program_finalize(MPI_Comm comm, int keyval, void *attr, void *extra) {
    (void)comm, (void)attr, (void)extra;
    if (mproc__mpi.ready) mproc_finalize();
    pthread_mutex_lock(&mproc__mpi.lock);
    if (mproc__mpi.size > 0) {
        mproc__mpi_quiesce(mproc__mpi_discard);
        MPI_Comm_free(&mproc__mpi.comm);
        mproc__mpi.size = 0;
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    MPI_Comm_free_keyval(&keyval);
    return MPI_SUCCESS;
}

/* The program owns MPI: be told when it finalizes it (see at_program_finalize). */
static void watch_program_finalize(void) {
    int keyval;
    mproc__mpi_ok(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_program_finalize, &keyval,
                                         NULL), "MPI_Comm_create_keyval");
    mproc__mpi_ok(MPI_Comm_set_attr(MPI_COMM_SELF, keyval, NULL), "MPI_Comm_set_attr");
}

static void free_master_state(void) {
    mproc__mpi_children_free();
    free(M.pid);
    free(M.outstanding);
    free(M.drop);
    free(M.nchild);
    free(M.sent);
    free(M.replied);
    free(M.place);
    memset(&M, 0, sizeof M);
    mproc__mpi_place = NULL;
}

static int mpi_finalize(void) {
    if (!mproc__mpi.ready || mproc__mpi.rank != 0) return 0;
    /* SHUTDOWN's arg tells the ranks whether to wait for the program's MPI_Finalize too. */
    uint32_t program_owns_mpi = !mproc__mpi.we_initialized;
    pthread_mutex_lock(&mproc__mpi.lock);
    for (int r = 1; r < mproc__mpi.size; r++)
        mproc__mpi_send_hdr(r, MPROC__FRAME_SHUTDOWN, 0, program_owns_mpi, mproc__mpi_discard);
    /* Ranks may still be answering a terminated pool; keep taking (and dropping) their frames
     * until all have left their serve loops, so none is stuck in a send at MPI_Finalize. */
    mproc__mpi_quiesce(mproc__mpi_discard);
    mproc__mpi_bells_free();
    free_master_state();
    mproc__mpi.ready = 0;
    if (program_owns_mpi) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        return 0; /* a program's own MPI is the program's to finalize: at_program_finalize */
    }
    MPI_Comm_free(&mproc__mpi.comm);
    mproc__mpi.size = 0;
    pthread_mutex_unlock(&mproc__mpi.lock);
    MPI_Finalize();
    mproc__mpi.we_initialized = 0;
    return 0;
}

static int mpi_init(int *argc, char ***argv) {
    int inited = 0, finalized = 0, rank = 0, size = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return mproc__error(MPROC_ESTATE, "mpi: MPI is already finalized; call mproc_init first");
    if (!inited) {
        /* We never block inside MPI (we poll and sleep), so Open MPI's habit of calling
         * sched_yield() in every empty poll when oversubscribed only hands our core away for
         * a whole time slice: a master would answer its workers milliseconds late. */
        setenv("OMPI_MCA_mpi_yield_when_idle", "0", 0);
        /* SERIALIZED is all we need: one lock covers every MPI call mproc makes, so MULTIPLE
         * would only add Open MPI's own locking to each call. */
        int provided = 0;
        int rc = argc && argv ? MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided)
                              : MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) return mproc__error(MPROC_ESYS, "mpi: MPI_Init_thread failed");
        mproc__mpi.we_initialized = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size == 1) {
        /* No worker ranks: the core falls back to fork. A process that initialized MPI must
         * finalize it, or mpirun calls the run a failure. */
        if (mproc__mpi.we_initialized) MPI_Finalize();
        mproc__mpi.we_initialized = 0;
        return 1;
    }
    mproc__mpi.rank = rank;
    double deadline = rank == 0 ? mproc__deadline(start_timeout()) : -1.0;
    dup_world(deadline);
    mproc__mpi.size = size;
    mproc__mpi_bells_init();
    if (rank != 0) mproc__mpi_rank_main();
    master_start(deadline);
    if (!mproc__mpi.we_initialized) watch_program_finalize();
    mproc__mpi.ready = 1;
    return 0;
}

static int mpi_max_workers(void) { return mproc__mpi.size > 1 ? mproc__mpi.size - 1 : 0; }

/* ---------------------------------------------------------------------------------------------
 * Groups: the worker ranks serving one pool.
 * ------------------------------------------------------------------------------------------- */

static int mpi_group_start(int n, mproc__group **out) {
    *out = NULL;
    if (n < 1) return mproc__error(MPROC_EINVAL, "mpi: a pool needs at least one worker");
    if (!mproc__mpi.ready) return mproc__error(MPROC_ESTATE, "mpi: the backend is not started");
    mproc__group *g = calloc(1, sizeof *g);
    if (!g) return mproc__error(MPROC_ENOMEM, "mpi: out of memory for a pool");
    pthread_mutex_lock(&mproc__mpi.lock);
    if (M.group) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        free(g);
        return mproc__error(MPROC_EBUSY, "mpi: another pool is using the worker ranks; under MPI "
                                         "one pool runs at a time (free it first)");
    }
    g->n = n < mproc__mpi.size - 1 ? n : mproc__mpi.size - 1;
    atomic_init(&g->woken, 0);
    M.group = g;
    pthread_mutex_unlock(&mproc__mpi.lock);
    *out = g;
    return 0;
}

static int mpi_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                    const mproc__send_hint *hint) {
    uint8_t hdr[MPROC__WIRE_HDR_SIZE];
    if (!g || worker < 0 || worker >= g->n || !iov || iovcnt < 1)
        return mproc__error(MPROC_EINVAL, "mpi send: no worker %d in this pool", worker);
    if (mproc__iov_total(iov, iovcnt) < sizeof hdr)
        return mproc__error(MPROC_EINVAL, "mpi send: a frame without a header");
    mproc__mpi_iov_copy(iov, iovcnt, 0, hdr, sizeof hdr);
    uint16_t kind = mproc__get_u16(hdr + 6);
    /* Ranks outlive pools (a later pool reuses them); they get SHUTDOWN in finalize only. */
    if (kind == MPROC__FRAME_SHUTDOWN) return 0;
    int counted = kind == MPROC__FRAME_TASK || kind == MPROC__FRAME_INIT || kind == MPROC__FRAME_BATCH;
    int r = worker + 1, rc;
    pthread_mutex_lock(&mproc__mpi.lock);
    if (g != M.group) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        return mproc__error(MPROC_ECLOSED, "mpi send: the pool's workers are stopped");
    }
    /* Counted (and its reply's home noted) before sending: the reply can arrive while this
     * send still waits. */
    uint64_t id = mproc__get_u64(hdr + 8);
    int placing = kind == MPROC__FRAME_TASK && hint && hint->reply_to && !find_placement(r, id) &&
                  add_placement(r, id, hint->reply_to, hint->reply_len) == 0;
    if (counted) {
        M.outstanding[r]++;
        M.sent[r]++;
    }
    if (counted && hint && (hint->flags & MPROC__SEND_RETAIN))
        rc = mproc__mpi_send_retained(r, iov, iovcnt, M.sent[r], mproc__mpi_route);
    else
        rc = mproc__mpi_send_frame(r, iov, iovcnt, mproc__mpi_route);
    if (rc < 0 && counted) {
        M.outstanding[r]--;
        M.sent[r]--;
    }
    if (rc < 0 && placing) {
        mproc__placement *pl = find_placement(r, id);
        if (pl) drop_placement(pl);
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

/* While a group's ranks work, a result from a rank on another node (no doorbell) should be
 * seen within a fraction of a task: poll faster then, and lazily when nothing is due. */
static long busy_cap(const mproc__group *g) {
    if (mproc__mpi_all_local()) return MPROC__MPI_IDLE_CAP_NS;
    for (int r = 1; r <= g->n; r++)
        if (M.outstanding[r]) return MPROC__MPI_BUSY_CAP_NS;
    return MPROC__MPI_IDLE_CAP_NS;
}

static int group_ready(const void *arg) {
    const mproc__group *g = arg;
    return g->head != NULL || atomic_load(&g->woken);
}

static int mpi_wait(mproc__group *g, double timeout, mproc__event *ev) {
    memset(ev, 0, sizeof *ev);
    if (!g) return mproc__error(MPROC_EINVAL, "mpi wait: no group");
    double deadline = mproc__deadline(timeout);
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_wait_until(group_ready, g, deadline, busy_cap(g));
    if (atomic_exchange(&g->woken, 0)) {
        /* A wake first: it means new work or a stop, and queued frames keep. */
        ev->kind = MPROC__EV_WAKE;
    } else if (g->head) {
        evnode *e = g->head;
        g->head = e->next;
        if (!g->head) g->tail = NULL;
        ev->kind = MPROC__EV_FRAME;
        ev->worker = e->worker;
        ev->frame = e->frame;
        ev->frame_len = e->len;
        ev->placed = e->placed;
        free(e);
    } else {
        ev->kind = MPROC__EV_TIMEOUT;
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    return 0;
}

static void mpi_wake(mproc__group *g) {
    if (!g) return;
    atomic_store(&g->woken, 1);
    mproc__mpi_ring_self(); /* lock-free: callers may hold the core's lock */
}

static int mpi_kill_worker(mproc__group *g, int worker) {
    (void)g;
    return mproc__error(MPROC_ENOTBUILT, "mpi: cannot kill or replace an MPI rank (worker %d): "
                                         "a task that must be stopped needs the fork backend",
                        worker);
}

static int mpi_restart_worker(mproc__group *g, int worker) {
    (void)g;
    return mproc__error(MPROC_ENOTBUILT, "mpi: cannot replace an MPI rank (worker %d)", worker);
}

static long mpi_worker_pid(mproc__group *g, int worker) {
    if (!g || worker < 0 || worker >= g->n || !M.pid) return 0;
    return M.pid[worker + 1];
}

static void mpi_group_stop(mproc__group *g, int graceful) {
    (void)graceful; /* ranks are never stopped with a pool; see the file comment */
    if (!g) return;
    pthread_mutex_lock(&mproc__mpi.lock);
    /* The core may free what its retained sends read once this returns: wait until each rank
     * has taken them (a rank busy in a task takes its next frame when that task ends). */
    mproc__mpi_complete_sends(-1, UINT64_MAX);
    /* Replies still due find no home: the core may free it once this returns. */
    M.nplace = 0;
    /* Work still running on a rank cannot be taken back: its replies are dropped on arrival. */
    for (int r = 1; r <= g->n && M.outstanding; r++) {
        M.drop[r] += M.outstanding[r];
        M.outstanding[r] = 0;
    }
    while (g->head) {
        evnode *e = g->head;
        g->head = e->next;
        free(e->frame);
        free(e);
    }
    if (M.group == g) M.group = NULL;
    pthread_mutex_unlock(&mproc__mpi.lock);
    free(g);
}

const mproc__backend_ops mproc__backend_mpi = {
    MPROC__BACKEND_VERSION,
    "mpi",
    mpi_init,
    mpi_finalize,
    mpi_max_workers,
    mpi_group_start,
    mpi_send,
    mpi_wait,
    mpi_wake,
    mpi_kill_worker,
    mpi_restart_worker,
    mpi_worker_pid,
    mpi_group_stop,
    mproc__mpi_proc_start,
    mproc__mpi_proc_wait,
    mproc__mpi_proc_signal,
    mproc__mpi_proc_free,
    mpi_max_workers,
};
