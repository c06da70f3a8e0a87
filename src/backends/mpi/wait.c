/* wait.c - how the MPI backend waits without spinning a core: per-process doorbells in MPI
 * shared memory, and the poll-then-sleep backoff every wait in the backend goes through (which
 * yield-polls instead of sleeping only while frames stream in less than 100 us apart).
 *
 * Open MPI's blocking calls spin, and polling alone makes a rank notice a message up to one
 * backoff step late; a doorbell rung by the sender ends the sleep at once, as a fork worker's
 * read() would wake. Used by the transport (transport.c), the master (routing.c, groups.c) and the
 * worker ranks (rank.c); every function here is called with mproc__mpi.lock held, except
 * the rings, which are lock-free (a signal handler rings).
 */
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "common/common.h"
#include "backends/mpi/wait.h"

/* ---------------------------------------------------------------------------------------------
 * Doorbells: event-driven wake-ups between ranks on one node.
 *
 * Polling alone makes a rank notice a message up to one backoff step late. Each process on the
 * master's node therefore has a doorbell (a counter in an MPI shared-memory window): after a
 * send to a rank on the node, the sender bumps that rank's counter and, if a thread sleeps on
 * it, wakes it with a futex. A sleeping waiter thus wakes when a frame is on its way, as a fork
 * worker's read() would; ranks on other nodes have no doorbell and are found by the polling.
 * The same counter wakes the process's own threads (wake(), a frame routed to another thread).
 * ------------------------------------------------------------------------------------------- */

typedef struct mproc__bell {
    atomic_uint seq;      /* bumped by every ring */
    atomic_uint sleepers; /* threads of the owner in futex_wait on seq */
} mproc__bell;

static struct {
    mproc__bell private_bell; /* until the window exists, and on ranks off the master's node */
    mproc__bell *mine;
    mproc__bell **peer; /* per rank of our comm: its bell, or NULL when it is on another node */
    MPI_Comm node;
    MPI_Win win;
    int have_win;
    int all_local; /* every rank shares the master's node: the doorbells see every frame */
    int node_ranks; /* ranks of our comm on this node, us included */
} bells = {.mine = &bells.private_bell, .node_ranks = 1};

static void bell_ring(mproc__bell *b) {
    atomic_fetch_add(&b->seq, 1u);
    if (atomic_load(&b->sleepers) == 0) return; /* nobody to wake: save the syscall */
#ifdef __linux__
    syscall(SYS_futex, &b->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
}

void mproc__mpi_ring(int rank) {
    if (rank >= 0 && bells.peer && rank < mproc__mpi.size && bells.peer[rank]) bell_ring(bells.peer[rank]);
}

void mproc__mpi_ring_self(void) { bell_ring(bells.mine); }

/* Only threads asleep need the ring: one awake checks its condition before sleeping, and it
 * cannot miss this frame (it is routed under the lock that thread holds until it sleeps). Not
 * ringing when nobody sleeps spares the routing thread a needless re-poll of its own ring. */
void mproc__mpi_ring_sleepers(void) {
    if (atomic_load(&bells.mine->sleepers) > 0) bell_ring(bells.mine);
}

int mproc__mpi_all_local(void) { return bells.all_local; }
int mproc__mpi_node_ranks(void) { return bells.node_ranks; }

int mproc__mpi_shares_node(int rank) {
    return rank >= 0 && rank < mproc__mpi.size && bells.peer && bells.peer[rank] != NULL;
}

/* Finds the bells of the ranks that share our node, by their rank in our communicator. */
static void find_peers(void) {
    int size = mproc__mpi.size;
    int *world = malloc((size_t)size * sizeof *world), *local = malloc((size_t)size * sizeof *local);
    bells.peer = calloc((size_t)size, sizeof *bells.peer);
    if (!world || !local || !bells.peer)
        mproc__mpi_fatal("rank %d: out of memory at start", mproc__mpi.rank);
    MPI_Group g_comm, g_node;
    MPI_Comm_group(mproc__mpi.comm, &g_comm);
    MPI_Comm_group(bells.node, &g_node);
    for (int r = 0; r < size; r++) world[r] = r;
    MPI_Group_translate_ranks(g_comm, size, world, g_node, local);
    for (int r = 0; r < size; r++) {
        MPI_Aint sz;
        int disp;
        void *ptr = NULL;
        if (local[r] != MPI_UNDEFINED &&
            MPI_Win_shared_query(bells.win, local[r], &sz, &disp, &ptr) == MPI_SUCCESS)
            bells.peer[r] = ptr;
    }
    MPI_Group_free(&g_comm);
    MPI_Group_free(&g_node);
    free(world);
    free(local);
}

/* Collective over comm: one page per process on each node (noncontiguous, so no two bells
 * share a cache line). Without shared memory there are no doorbells, only polling. */
void mproc__mpi_bells_init(void) {
    int nsize = 0;
    void *base = NULL;
    MPI_Info info;
    mproc__mpi_ok(MPI_Comm_split_type(mproc__mpi.comm, MPI_COMM_TYPE_SHARED, mproc__mpi.rank,
                                      MPI_INFO_NULL, &bells.node), "MPI_Comm_split_type");
    MPI_Comm_size(bells.node, &nsize);
    bells.node_ranks = nsize > 0 ? nsize : 1;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int rc = MPI_Win_allocate_shared((MPI_Aint)sizeof(mproc__bell), 1, info, bells.node, &base, &bells.win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS || !base) {
        MPI_Comm_free(&bells.node);
        return;
    }
    bells.have_win = 1;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, bells.win); /* one passive epoch for our whole life */
    memset(base, 0, sizeof(mproc__bell));
    MPI_Win_sync(bells.win);
    /* Every bell is zeroed before anyone can ring it (a short blocking barrier: all are here). */
    mproc__mpi_ok(MPI_Barrier(bells.node), "MPI_Barrier");
    find_peers();
    bells.mine = base;
    bells.all_local = nsize == mproc__mpi.size;
}

/* Collective over comm, after mproc__mpi_quiesce: nobody rings any more. */
void mproc__mpi_bells_free(void) {
    if (!bells.have_win) return;
    bells.mine = &bells.private_bell;
    MPI_Win_unlock_all(bells.win);
    MPI_Win_free(&bells.win);
    MPI_Comm_free(&bells.node);
    free(bells.peer);
    bells.peer = NULL;
    bells.have_win = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Backoff.
 * ------------------------------------------------------------------------------------------- */

/* Polls back to back before the first sleep: a few microseconds, in which an eager reply that
 * is already on its way usually lands. */
#define SPIN_POLLS 8u
/* The first sleep. Shorter ones are not worth it: Linux lets a sleep overrun by 50 us (timer
 * slack), and each wake-up is a context switch taken from a worker on a busy node. */
#define FIRST_SLEEP_NS 50000L

/* Frames that arrive less than this apart on average are a stream worth yield-polling for.
 * Larger where frames come over TCP (mproc__mpi_stream_gap): waking there takes the net
 * watcher's thread and then ours, not one futex. */
static double stream_gap_s = 100e-6;

void mproc__mpi_stream_gap(double seconds) { stream_gap_s = seconds; }

/* Mean gap between the frames this process received (lock held: no atomics needed). */
static double last_arrival, gap_mean = 1.0;
/* gap_mean < stream_gap_s, for threads that do not hold the lock. */
static atomic_int streaming;

void mproc__mpi_note_arrival(void) {
    double now = mproc__now(), gap = now - last_arrival;
    last_arrival = now;
    if (gap > 1.0) gap = 1.0;
    gap_mean += (gap - gap_mean) / 4;
    atomic_store_explicit(&streaming, gap_mean < stream_gap_s, memory_order_relaxed);
}

int mproc__mpi_streaming(void) { return atomic_load_explicit(&streaming, memory_order_relaxed); }

/* Called by this thread before each sleep (the relay's executor watch, exec_replies.c). */
static _Thread_local void (*sleep_hook)(void);

void mproc__mpi_on_sleep(void (*fn)(void)) { sleep_hook = fn; }

void mproc__mpi_backoff_init(mproc__backoff *b, long cap_ns) {
    b->polls = 0;
    b->ns = 0;
    b->rung = 0;
    b->cap_ns = cap_ns;
    b->seen = atomic_load(&bells.mine->seq);
    b->spin_until = 0;
    b->yield = -1;
    b->poll_until = 0;
}

/* While frames stream in (a map of small chunks), the next one is due within microseconds:
 * polling with sched_yield() between looks then costs less than a futex sleep and the wake-up
 * of both sides, and yields the core to any process that has work. Bounded by twice the mean
 * gap, and only while that gap is short, so that a waiter for long tasks sleeps at once. */
static int stream_spin(mproc__backoff *b, double deadline) {
    double now = mproc__now();
    if (b->spin_until == 0) {
        double since = now - last_arrival;
        b->spin_until = gap_mean < stream_gap_s && since < 4 * stream_gap_s ? now + 2 * gap_mean : -1;
        if (deadline >= 0 && b->spin_until > deadline) b->spin_until = deadline;
    }
    if (now >= b->spin_until) return 0;
    pthread_mutex_unlock(&mproc__mpi.lock);
    if (b->yield != 0) sched_yield();
    pthread_mutex_lock(&mproc__mpi.lock);
    return 1;
}

/* The net watcher (net_watch.c) parks while no thread of ours sleeps, so that TCP traffic
 * does not wake it on a busy process; a thread going to sleep unparks it. */
static atomic_int watcher_parked;

void mproc__mpi_park_until_sleeper(int ms) {
    mproc__bell *bell = bells.mine;
    atomic_store(&watcher_parked, 1);
    if (atomic_load(&bell->sleepers) == 0) { /* checked after parked is set: no lost wake */
#ifdef __linux__
        struct timespec rel = {ms / 1000, (long)(ms % 1000) * 1000000L};
        syscall(SYS_futex, &bell->sleepers, FUTEX_WAIT, 0, &rel, NULL, 0);
#else
        struct timespec rel = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&rel, NULL);
#endif
    }
    atomic_store(&watcher_parked, 0);
}

void mproc__mpi_unpark_watcher(void) {
#ifdef __linux__
    syscall(SYS_futex, &bells.mine->sleepers, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
}

/* Sleeps up to ns unless our doorbell rings (then at once). Lock held; dropped meanwhile. */
static void bell_sleep(mproc__backoff *b, long ns) {
    mproc__bell *bell = bells.mine;
    unsigned v = b->seen;
    if (sleep_hook) sleep_hook();
    atomic_fetch_add(&bell->sleepers, 1u);
    if (atomic_load(&watcher_parked)) mproc__mpi_unpark_watcher();
    pthread_mutex_unlock(&mproc__mpi.lock);
#ifdef __linux__
    struct timespec rel = {ns / 1000000000L, ns % 1000000000L};
    /* Returns at once if seq moved since we last polled: no ring is ever lost. */
    syscall(SYS_futex, &bell->seq, FUTEX_WAIT, v, &rel, NULL, 0);
#else
    struct timespec rel = {ns / 1000000000L, ns % 1000000000L};
    if (atomic_load(&bell->seq) == v) nanosleep(&rel, NULL);
#endif
    atomic_fetch_sub(&bell->sleepers, 1u);
    pthread_mutex_lock(&mproc__mpi.lock);
}

void mproc__mpi_backoff_wait(mproc__backoff *b, double deadline) {
    unsigned now_seq = atomic_load(&bells.mine->seq);
    if (now_seq != b->seen) {
        /* Rung since we last looked: a frame is on its way (or a wake); look again at once,
         * and spin a little, as a message in flight (over TCP) may take microseconds. */
        b->seen = now_seq;
        b->polls = 0;
        b->ns = 0;
        b->rung = 1;
        return;
    }
    /* A reply often follows within microseconds: poll a few times before paying for a
     * sleep. The lock is dropped so other threads get a turn. */
    if (b->polls < SPIN_POLLS) {
        b->polls++;
        pthread_mutex_unlock(&mproc__mpi.lock);
        if (b->yield == 1) sched_yield();
        pthread_mutex_lock(&mproc__mpi.lock);
        return;
    }
    if (stream_spin(b, deadline)) return;
    double now = b->poll_until > 0 ? mproc__now() : 0;
    if (b->poll_until > 0 && now < b->poll_until && (deadline < 0 || now < deadline)) { /* due soon */
        pthread_mutex_unlock(&mproc__mpi.lock);
        sched_yield();
        pthread_mutex_lock(&mproc__mpi.lock);
        return;
    }
    /* Sleeps double from 50 us up to the cap. When every rank shares our node, every frame
     * rings our doorbell, so we sleep the whole cap at once; only after a ring that found no
     * frame yet (a message still in flight, e.g. over TCP) come two short sleeps first. Each
     * needless wake-up is a context switch taken from a worker's core. */
    if (bells.all_local && (!b->rung || b->ns >= 2 * FIRST_SLEEP_NS))
        b->ns = b->cap_ns;
    else
        b->ns = b->ns ? b->ns * 2 : FIRST_SLEEP_NS;
    if (b->ns > b->cap_ns) b->ns = b->cap_ns;
    long ns = b->ns;
    if (deadline >= 0) {
        double left = mproc__remaining(deadline);
        if (left <= 0) return;
        if (left * 1e9 < (double)ns) ns = (long)(left * 1e9) + 1;
    }
    bell_sleep(b, ns);
}
