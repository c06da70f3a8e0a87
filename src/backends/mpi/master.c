/* master.c - the MPI backend's master side (rank 0): start-up (MPI, our communicator, every
 * rank's start message and the task-table check), finalize, and the table of operations.
 *
 * Rank 0 is the master; every other rank is a worker that never returns from init (rank.c).
 * Pools get the worker ranks as a group (groups.c); a Process runs as a forked child of a worker
 * rank (processes.c); whichever thread waits routes what arrives (routing.c). Receiving never
 * spins for long: Open MPI's blocking receive would burn a core, so waits MPI_Improbe with a
 * short spin, then sleep with a backoff cut short by the process's doorbell (wait.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/groups.h"
#include "backends/mpi/init_watch.h"
#include "backends/mpi/master_state.h"
#include "backends/mpi/net_watch.h"
#include "backends/mpi/processes.h"
#include "backends/mpi/rank.h"
#include "backends/mpi/routing.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/watchdog.h"
#include "common/common.h"
#include "wire/wire.h"


/* ---------------------------------------------------------------------------------------------
 * Start-up: MPI, the communicator, the ranks' start messages and the task-table check.
 * ------------------------------------------------------------------------------------------- */

/* Seconds the master waits for every rank to reach mproc_init (MPROC_MPI_START_TIMEOUT; -1 for
 * ever). A bad value was refused before MPI_Init (mpi_init). */
static double start_timeout(void) {
    double t;
    if (mproc__mpi_start_timeout(&t) < 0) mproc__mpi_fatal("%s", mproc_last_error());
    return t;
}

/* Below a few seconds the start itself may be what took longer (a trial's 0.5 s: every rank
 * had called mproc_init). */
static const char *slow_start_hint(void) {
    return start_timeout() < 5 ? " (or they are slower to start than that here)" : "";
}

/* A start-up collective polled with backoff: a rank that is slow to reach mproc_init must not
 * make the others spin in a blocking one. */
static void wait_collective(MPI_Request *req, double deadline) {
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_IDLE_CAP_NS);
    pthread_mutex_lock(&mproc__mpi.lock);
    for (;;) {
        int flag = 0;
        mproc__mpi_ok(MPI_Test(req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (flag) break;
        if (deadline >= 0 && mproc__remaining(deadline) <= 0)
            mproc__mpi_fatal("not every rank called mproc_init within %g s%s: every rank runs the "
                             "same program (set MPROC_MPI_START_TIMEOUT=seconds, 0 = forever)",
                             start_timeout(), slow_start_hint());
        mproc__mpi_backoff_wait(&bo, deadline);
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
}

static void dup_world(double deadline) {
    MPI_Request req;
    MPI_Comm comm;
    mproc__mpi_ok(MPI_Comm_idup(MPI_COMM_WORLD, &comm, &req), "MPI_Comm_idup");
    wait_collective(&req, deadline);
    /* Our errors come back as codes, so a failure is reported by mproc, not by a bare abort. */
    mproc__mpi_ok(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    mproc__mpi.comm = comm;
}

/* The pool workers of the ranks before ours (an exclusive prefix sum of each rank's `mine`, 0
 * for the master): a worker rank's first worker index, as number_workers numbers them, also
 * when the ranks run different numbers of executors. Every rank calls it once at start. */
static int workers_before(int mine, double deadline) {
    int before = 0;
    MPI_Request req;
    mproc__mpi_ok(MPI_Iexscan(&mine, &before, 1, MPI_INT, MPI_SUM, mproc__mpi.comm, &req), "MPI_Iexscan");
    wait_collective(&req, deadline);
    return mproc__mpi.rank == 0 ? 0 : before; /* undefined on rank 0 */
}

/* A rank's start message (rank.c, send_start_message): its executors, pid and host. */
static void take_start_message(int src, const uint8_t *p, size_t n) {
    mproc__exec_view *x = &mproc__master.exec[src];
    uint32_t k = mproc__get_u32(p), hl = mproc__get_u32(p + 8);
    if (hl > n - 12 || k > (n - 12 - hl) / 4)
        mproc__mpi_fatal("rank %d sent a malformed start message: is every rank running the same version of mproc?", src);
    mproc__master.pid[src] = (long)mproc__get_u32(p + 4);
    size_t cl = hl < sizeof x->host ? hl : sizeof x->host - 1;
    memcpy(x->host, p + 12, cl);
    x->host[cl] = '\0';
    x->on = k > 0;
    x->nexec = k > 0 ? (int)k : 1;
    x->first = 0; /* numbered once every rank has spoken (number_workers) */
    /* The executors' pids wait in pid slots of their own until then. */
    long *pids = calloc(x->nexec, sizeof *pids);
    if (!pids) mproc__mpi_fatal("master: out of memory at start");
    for (uint32_t e = 0; e < k; e++) pids[e] = (long)mproc__get_u32(p + 12 + hl + 4 * e);
    if (!k) pids[0] = mproc__master.pid[src];
    mproc__master.start_pids[src] = pids;
}

/* Numbers the pool workers rank by rank, executor by executor. */
static void number_workers(void) {
    int total = 0;
    for (int r = 1; r < mproc__mpi.size; r++) {
        mproc__master.exec[r].first = total;
        total += mproc__master.exec[r].nexec;
    }
    mproc__master.wk = calloc((size_t)total, sizeof *mproc__master.wk);
    if (!mproc__master.wk) mproc__mpi_fatal("master: out of memory for %d workers", total);
    mproc__master.nworkers = total;
    for (int r = 1; r < mproc__mpi.size; r++) {
        const mproc__exec_view *x = &mproc__master.exec[r];
        for (int e = 0; e < x->nexec; e++)
            mproc__master.wk[x->first + e] =
                (mproc__worker_view){.rank = r, .e = e, .pid = mproc__master.start_pids[r][e], .gen = 1, .ident = x->first + e};
        free(mproc__master.start_pids[r]);
    }
    free(mproc__master.start_pids);
    mproc__master.start_pids = NULL;
}

/* One start message (pid, or HELLO with the task table) from a rank; returns 1 when new. */
static int take_hello(int src, const uint8_t *f, size_t len, unsigned char *seen) {
    uint16_t kind = mproc__hdr_kind(f);
    const uint8_t *p = f + MPROC__WIRE_HDR_SIZE;
    size_t n = len - MPROC__WIRE_HDR_SIZE;
    if (kind == MPROC__FRAME_PROC_STARTED && mproc__hdr_id(f) == 0 && !(seen[src] & 1) && n >= 12) {
        take_start_message(src, p, n);
        seen[src] |= 1;
        return 1;
    }
    uint64_t fp = 0, mine = mproc__registry_fingerprint();
    uint32_t cnt = 0;
    if (kind != MPROC__FRAME_HELLO || (seen[src] & 2) || mproc__hello_decode(p, n, &fp, &cnt) < 0 ||
        mproc__hdr_arg(f) != (uint32_t)(src - 1))
        mproc__mpi_fatal("rank %d sent a frame of kind %u instead of its HELLO: is every rank "
                         "running the same version of mproc?", src, (unsigned)kind);
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
    mproc__mpi_fatal("rank(s)%s did not finish mproc_init within %g s%s (set "
                     "MPROC_MPI_START_TIMEOUT=seconds, 0 = forever)", list, start_timeout(), slow_start_hint());
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
    mproc__master.pid = calloc(n, sizeof *mproc__master.pid);
    mproc__master.outstanding = calloc(n, sizeof *mproc__master.outstanding);
    mproc__master.drop = calloc(n, sizeof *mproc__master.drop);
    mproc__master.nchild = calloc(n, sizeof *mproc__master.nchild);
    mproc__master.sent = calloc(n, sizeof *mproc__master.sent);
    mproc__master.replied = calloc(n, sizeof *mproc__master.replied);
    mproc__master.exec = calloc(n, sizeof *mproc__master.exec);
    mproc__master.start_pids = calloc(n, sizeof *mproc__master.start_pids);
    if (!mproc__master.pid || !mproc__master.outstanding || !mproc__master.drop || !mproc__master.nchild || !mproc__master.sent || !mproc__master.replied || !mproc__master.exec || !mproc__master.start_pids)
        mproc__mpi_fatal("master: out of memory at start");
    mproc__master.pid[0] = (long)getpid();
    collect_hellos(deadline);
    number_workers();
    uint64_t pidns = mproc__mpi_pid_namespace();
    pthread_mutex_lock(&mproc__mpi.lock);
    for (int r = 1; r < (int)n; r++)
        mproc__mpi_send_hdr(r, MPROC__FRAME_MASTER_INFO, pidns, (uint32_t)getpid(), mproc__mpi_route);
    pthread_mutex_unlock(&mproc__mpi.lock);
    mproc__mpi_place = mproc__mpi_place_result;
    if (mproc__mpi_watchdog_start() < 0) mproc__mpi_fatal("master: %s", mproc_last_error());
}

/* Runs at the start of the program's own MPI_Finalize (an MPI_COMM_SELF attribute's delete
 * callback, which MPI calls while still fully working), when the program initialized MPI. If
 * the program never called mproc_finalize, this is the last moment to stop the ranks. Then the
 * final barrier: the worker ranks wait in it until now, cheaply polled, rather than inside
 * MPI_Finalize, which would cost each ~10% of a core while the master goes on after
 * mproc_finalize. */
static int at_program_finalize(MPI_Comm comm, int keyval, void *attr, void *extra) {
    (void)comm, (void)attr, (void)extra;
    if (mproc__mpi.ready) mproc__runtime_finalize(); /* the library's finalize, through its hook */
    pthread_mutex_lock(&mproc__mpi.lock);
    if (mproc__mpi.size > 0) {
        if (!mproc__mpi.any_gone) mproc__mpi_quiesce(mproc__mpi_discard);
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
    free(mproc__master.pid);
    free(mproc__master.outstanding);
    free(mproc__master.drop);
    free(mproc__master.nchild);
    free(mproc__master.sent);
    free(mproc__master.replied);
    free(mproc__master.exec);
    free(mproc__master.wk);
    free(mproc__master.place);
    memset(&mproc__master, 0, sizeof mproc__master);
    mproc__mpi_place = NULL;
}

static int mpi_finalize(void) {
    if (!mproc__mpi.ready || mproc__mpi.rank != 0) return 0;
    /* SHUTDOWN's arg tells the ranks whether to wait for the program's MPI_Finalize too. */
    uint32_t program_owns_mpi = !mproc__mpi.we_initialized;
    pthread_mutex_lock(&mproc__mpi.lock);
    /* With a rank lost (watchdog.c) no collective can complete: SHUTDOWN says so (arg bit 2),
     * and every barrier is skipped, here and on the ranks. A rank lost while it had nothing to
     * do was never asked: ask every one now. */
    mproc__mpi_watchdog_roll_call();
    int lost = mproc__mpi.any_gone;
    for (int r = 1; r < mproc__mpi.size; r++)
        if (!mproc__mpi_is_gone(r))
            mproc__mpi_send_hdr(r, MPROC__FRAME_SHUTDOWN, 0, program_owns_mpi | (lost ? 2u : 0u), mproc__mpi_discard);
    /* Ranks may still be answering a terminated pool; keep taking (and dropping) their frames
     * until all have left their serve loops, so none is stuck in a send at MPI_Finalize. */
    if (!lost) mproc__mpi_quiesce(mproc__mpi_discard);
    mproc__mpi_net_watch_stop();
    if (!lost) mproc__mpi_bells_free();
    mproc__mpi_watchdog_stop();
    free_master_state();
    mproc__mpi.ready = 0;
    if (program_owns_mpi) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        return 0; /* a program's own MPI is the program's to finalize: at_program_finalize */
    }
    MPI_Comm_free(&mproc__mpi.comm);
    mproc__mpi.size = 0;
    pthread_mutex_unlock(&mproc__mpi.lock);
    /* MPI_Finalize frees what MPI made (the doorbells' window among them) in collectives that
     * a lost rank can never join: with one lost, this process leaves MPI unfinalized. */
    if (!lost) MPI_Finalize();
    mproc__mpi.we_initialized = 0;
    return 0;
}

/* Whether this process may become a worker rank that runs executors: not when the launcher
 * says it is rank 0, nor when executors are turned off (MPROC_MPI_EXECUTORS=0). */
static int wants_fork_server(void) {
    int k;
    if (mproc__mpi_executors_setting(&k) == 0 && k == 0) return 0; /* "00" too */
    static const char *rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof rank_vars / sizeof *rank_vars; i++) {
        const char *v = getenv(rank_vars[i]);
        if (v && *v) return strcmp(v, "0") != 0;
    }
    return 1;
}

/* Every MPI setting, read on every rank before MPI starts, whichever rank uses it: a typo
 * fails mproc_init (MPROC_EINVAL, naming the variable) everywhere alike, rather than aborting
 * the job later from whichever rank reads it first, or being ignored where it does not matter
 * (the executor rings with MPROC_MPI_EXECUTORS=0). */
static int settings_check(double *start_secs) {
    int k, rc = mproc__mpi_start_timeout(start_secs);
    if (rc == 0) rc = mproc__mpi_lost_timeout_setting();
    if (rc == 0) rc = mproc__mpi_executors_setting(&k);
    if (rc == 0) rc = mproc__exec_settings();
    return rc;
}

static int mpi_init(int *argc, char ***argv) {
    int inited = 0, finalized = 0, rank = 0, size = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return mproc__error(MPROC_ESTATE, "mpi: MPI is already finalized; call mproc_init first");
    double start_secs;
    int rc0 = settings_check(&start_secs);
    if (rc0 < 0) return rc0;
    double start_deadline = mproc__deadline(start_secs); /* MPI_Init and our start-up, together */
    if (!inited) {
        /* A worker rank's executors come from a fork server made now, before MPI exists in
         * this process (fork_server.h). The master needs none: where the launcher says which
         * rank this is, rank 0 makes none; where it does not, rank 0 ends its own below. */
        if (wants_fork_server() && mproc__fserver_start() < 0)
            fprintf(stderr, "mproc: %s; executors will be forked from the rank\n", mproc_last_error());
        /* We never block inside MPI (we poll and sleep), so Open MPI's habit of calling
         * sched_yield() in every empty poll when oversubscribed only hands our core away for
         * a whole time slice: a master would answer its workers milliseconds late. */
        setenv("OMPI_MCA_mpi_yield_when_idle", "0", 0);
        /* Over TCP, frames above the 64 KiB default eager limit (an 80 KB map chunk, its
         * results) went by rendezvous: each waited for the receiver's answer and then for the
         * sender to be polled again, several wake-ups of sleeping processes per frame. Eager up
         * to a packed frame's size, they flow as soon as they are sent (map over TCP measured
         * ~3x faster; bench/README.md). The user's own setting wins. */
        setenv("OMPI_MCA_btl_tcp_eager_limit", MPROC__MPI_TCP_EAGER, 0);
        setenv("OMPI_MCA_btl_tcp_max_send_size", MPROC__MPI_TCP_EAGER, 0);
        /* SERIALIZED is all we need: one lock covers every MPI call mproc makes, so MULTIPLE
         * would only add Open MPI's own locking to each call. */
        int provided = 0;
        mproc__mpi_init_watch_start(start_secs);
        int rc = argc && argv ? MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided)
                              : MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        mproc__mpi_init_watch_stop();
        if (rc != MPI_SUCCESS) return mproc__error(MPROC_ESYS, "mpi: MPI_Init_thread failed");
        mproc__mpi.we_initialized = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0 || size == 1) mproc__fserver_stop();
    if (size == 1) {
        /* No worker ranks: the core falls back to fork. A process that initialized MPI must
         * finalize it, or mpirun calls the run a failure. */
        if (mproc__mpi.we_initialized) MPI_Finalize();
        mproc__mpi.we_initialized = 0;
        return 1;
    }
    mproc__mpi.rank = rank;
    double deadline = rank == 0 ? start_deadline : -1.0;
    dup_world(deadline);
    mproc__mpi.size = size;
    mproc__mpi_bells_init();
    /* The master hears from every rank, a worker rank from the master: where any of them is
     * on another node, its frames come over TCP, which no doorbell announces. */
    if (rank == 0 ? !mproc__mpi_all_local() : !mproc__mpi_shares_node(0)) mproc__mpi_net_watch_start();
    if (rank != 0) {
        int k = mproc__mpi_rank_executors(rank);
        mproc__mpi_rank_main(k, workers_before(k > 0 ? k : 1, deadline));
    }
    workers_before(0, deadline);
    master_start(deadline);
    if (!mproc__mpi.we_initialized) watch_program_finalize();
    mproc__mpi.ready = 1;
    return 0;
}

/* Every executor of every worker rank (a rank that runs tasks itself counts once). */
static int mpi_max_workers(void) { return mproc__mpi.size > 1 ? mproc__master.nworkers : 0; }

/* With per_rank: each rank's first per_rank workers (all of a rank that runs fewer). */
static int mpi_pool_capacity(int per_rank) {
    if (per_rank <= 0 || mproc__mpi.size < 2) return mpi_max_workers();
    int n = 0;
    for (int r = 1; r < mproc__mpi.size; r++)
        n += mproc__master.exec[r].nexec < per_rank ? mproc__master.exec[r].nexec : per_rank;
    return n;
}

/* 3 where worker ranks relay to executors: with 2, a 10M-item map under mpirun -np 3 on 2 cores
 * made 128-264 M items/s, with 3 319-358 M (in the ranks: 345 M); 4 no better, 8 worse. */
static int mpi_default_inflight(void) {
    for (int r = 1; r < mproc__mpi.size; r++)
        if (mproc__master.exec && mproc__master.exec[r].on) return 3;
    return 2;
}

/* ---------------------------------------------------------------------------------------------
 * The table of operations.
 * ------------------------------------------------------------------------------------------- */

const mproc__backend_ops mproc__backend_mpi = {
    .version = MPROC__BACKEND_VERSION,
    .name = "mpi",
    .init = mpi_init,
    .finalize = mpi_finalize,
    .max_workers = mpi_max_workers,
    .pool_capacity = mpi_pool_capacity,
    .group_start = mproc__mpi_group_start,
    .send = mproc__mpi_send,
    .wait = mproc__mpi_wait,
    .wake = mproc__mpi_wake,
    .kill_worker = mproc__mpi_kill_worker,
    .withdraw = mproc__mpi_withdraw,
    .skip = mproc__mpi_skip,
    .restart_worker = mproc__mpi_restart_worker,
    .worker_pid = mproc__mpi_worker_pid,
    .fault_domain = mproc__mpi_fault_domain,
    .group_stop = mproc__mpi_group_stop,
    .proc_start = mproc__mpi_proc_start,
    .proc_wait = mproc__mpi_proc_wait,
    .proc_signal = mproc__mpi_proc_signal,
    .proc_free = mproc__mpi_proc_free,
    .default_workers = mpi_max_workers,
    .default_inflight = mpi_default_inflight,
};
