/* rank.c - the life of an MPI worker rank (every rank but 0): it never returns to the
 * program. It reports its pid, serves task frames with mproc__worker_serve() over an MPI
 * channel until the master's SHUTDOWN, then finalizes MPI and exits.
 *
 * The rank's Processes (PROC_START, PROC_SIGNAL, their gate and their ends) are
 * rank_children.c's: this loop hands it those frames and has it report ended children as it
 * polls. The loop never blocks in MPI: it polls with a backoff, so an idle rank leaves its core
 * to ranks that have work.
 *
 * A rank that crashes ends the whole job (Open MPI's rule); before it goes, a signal handler
 * says which rank, which pid and which task, so the user is not left with a bare "exited on
 * signal 11".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "backends/spawn.h"
#include "common/common.h"
#include "backends/mpi/canary.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/net_watch.h"
#include "backends/mpi/rank.h"
#include "backends/mpi/rank_children.h"
#include "backends/mpi/sends_in_flight.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/wait.h"
#include "wire/wire.h"
#include "worker/worker.h"

typedef struct qnode {
    struct qnode *next;
    uint8_t *frame;
    size_t len;
} qnode;

/* Frames that arrived while this rank was sending, and the state of its loop. */
static struct {
    qnode *qhead, *qtail;
    int wait_program; /* SHUTDOWN said: the master's program finalizes MPI itself, later */
    int peer_lost;    /* SHUTDOWN said: a rank is lost, so no collective can complete */
    int relaying;     /* tasks go to executors (relay()) */
    pid_t master_pid; /* from MASTER_INFO; watched where the master shares our node... */
    int master_pid_here; /* ...and our pid namespace (else its pid names another process) */
    double master_checked;
} rank_state;

/* ---------------------------------------------------------------------------------------------
 * The channel mproc__worker_serve() talks through.
 * ------------------------------------------------------------------------------------------- */

/* ---- SKIP for a rank that runs tasks itself ------------------------------------------------
 * The master's SKIP for a frame queued behind the task this rank runs usually comes behind that
 * frame, and the rank reads it only once the task is over: so when it takes a frame that was
 * waiting (a task ran meanwhile), it first takes in every frame that arrived, noting SKIPs, and
 * the serve loop answers a skipped TASK or BATCH unrun (ch_skipped). A frame found only after
 * two empty looks was waited for and has nothing behind it: no extra look then (one call at a
 * time pays two probes only when its frame came between our first and second look). */
#define RANK_SKIPS 16
static uint64_t rank_skips[RANK_SKIPS];
static unsigned rank_skip_next;

static void note_skip(uint64_t id) { rank_skips[rank_skip_next++ % RANK_SKIPS] = id + 1; /* 0: none */ }

static int ch_skipped(void *impl, uint64_t id) {
    (void)impl;
    for (int i = 0; i < RANK_SKIPS; i++)
        if (rank_skips[i] == id + 1) return 1;
    return 0;
}

/* A rank running tasks itself, about to run frame f that came while it was busy: every frame
 * that came since is taken in (SKIPs noted, the rest queued). Twice: Open MPI's ob1 matches a
 * probe before it progresses the transport, so what came during a task may be seen only by a
 * second look. Lock held. */
static void queue_sink(int src, uint8_t *frame, size_t len);
static void take_in_arrived(const uint8_t *f) {
    uint16_t kind = mproc__hdr_kind(f);
    if (rank_state.relaying || (kind != MPROC__FRAME_TASK && kind != MPROC__FRAME_BATCH)) return;
    mproc__mpi_drain(queue_sink);
    mproc__mpi_drain(queue_sink);
}

/* Frames the master sends while we wait on our own send: kept, in order, for recv (a SKIP for
 * a rank that runs tasks itself is noted instead, so that it counts before the frame it names
 * is taken from this queue). */
static void queue_sink(int src, uint8_t *frame, size_t len) {
    (void)src;
    if (!rank_state.relaying && mproc__hdr_kind(frame) == MPROC__FRAME_SKIP) {
        note_skip(mproc__hdr_id(frame));
        free(frame);
        return;
    }
    qnode *q = malloc(sizeof *q);
    if (!q) mproc__mpi_fatal("worker rank %d: out of memory queueing a frame", mproc__mpi.rank);
    *q = (qnode){NULL, frame, len};
    if (rank_state.qtail)
        rank_state.qtail->next = q;
    else
        rank_state.qhead = q;
    rank_state.qtail = q;
    /* With executors the supervisor thread sends too: the main thread may sleep meanwhile. */
    mproc__mpi_ring_sleepers();
}

/* Lock held. */
static int send_to_master(const struct iovec *iov, int iovcnt) {
    return mproc__mpi_send_frame(0, iov, iovcnt, queue_sink);
}

/* MASTER_INFO: the master's pid, and whether it means the master here (our pid namespace). */
static void note_master(const uint8_t *info) {
    uint64_t ns = mproc__hdr_id(info);
    rank_state.master_pid = (pid_t)mproc__hdr_arg(info);
    rank_state.master_pid_here = ns != 0 && ns == mproc__mpi_pid_namespace();
}

/* Where Open MPI keeps the job after a rank dies (--enable-recovery), nothing ends the worker
 * ranks when the master dies: one on the master's node sees it go (twice a second, while idle)
 * and leaves. Lock held. */
static void check_master(void) {
    if (!rank_state.master_pid || !rank_state.master_pid_here || !mproc__mpi_shares_node(0)) return;
    double now = mproc__now();
    if (now - rank_state.master_checked < 0.5) return;
    rank_state.master_checked = now;
    if (kill(rank_state.master_pid, 0) == 0 || errno != ESRCH) return;
    fprintf(stderr, "mproc: worker rank %d: the master (rank 0, pid %ld) is gone; this rank ends\n", mproc__mpi.rank,
            (long)rank_state.master_pid);
    fflush(NULL);
    _exit(1); /* its executors and fork server die with it */
}

/* What big frames left behind goes back once the rank has had nothing to do for IDLE_TRIM_S,
 * as an idle worker's does (socket_worker.c): its heap (worker.c's keep_big_blocks keeps freed
 * blocks of megabytes for the next big frame: a rank held 85 MB after 40 MiB items), its
 * supervisor thread's too, and its executors' rings past their kept part. Nothing to do means
 * no frame from the master, no reply owed by an executor and no send of ours in flight (a big
 * result's buffer is freed only when MPI is done with it). A ring whose last frame is not
 * released yet is looked at again, 0.1 s then up to 1 s apart, 8 times; once done, a reply
 * sent since (one given late, after an executor's restart; or one that was no longer owed and
 * not yet sent when we looked) starts it over. */
#define IDLE_TRIM_S 0.1
#define IDLE_TRIM_TRIES 8
typedef struct idle_trim {
    double next, gap;
    int tries;
    unsigned seen; /* mproc__exec_forwarded() when it trimmed */
} idle_trim;

static void idle_trim_start(idle_trim *t) {
    t->gap = IDLE_TRIM_S;
    t->next = mproc__now() + t->gap;
    t->tries = 0;
}

/* MPI lock held; released while it trims (exec_trim_idle takes the executors' lock). */
static void idle_trim_look(idle_trim *t) {
    if (mproc__now() < t->next) return;
    unsigned forwarded = rank_state.relaying ? mproc__exec_forwarded() : 0;
    if (t->tries >= IDLE_TRIM_TRIES) { /* done, until a reply is sent again */
        if (forwarded != t->seen) idle_trim_start(t);
        else t->next = mproc__now() + IDLE_TRIM_S;
        return;
    }
    if ((rank_state.relaying && mproc__exec_replies_due()) || mproc__mpi_sends_reap() > 0) {
        idle_trim_start(t);
        return;
    }
    t->seen = forwarded;
    pthread_mutex_unlock(&mproc__mpi.lock);
    if (t->tries == 0) {
        mproc__worker_give_back_heap();
        if (rank_state.relaying) mproc__exec_give_back_heap(); /* the supervisor's arena */
    }
    int left = rank_state.relaying && mproc__exec_trim_idle();
    pthread_mutex_lock(&mproc__mpi.lock);
    t->tries = left ? t->tries + 1 : IDLE_TRIM_TRIES;
    t->gap = t->gap < 0.5 ? 2 * t->gap : 1.0;
    t->next = mproc__now() + t->gap;
}

static int ch_recv(void *impl, uint8_t **frame, size_t *len) {
    (void)impl;
    /* Whether we waited for the frame (else it came while we were busy): only after two empty
     * looks, as Open MPI's ob1 may find a frame that was there only at the second. */
    int empty_looks = 0;
    mproc__backoff bo;
    mproc__mpi_backoff_init(&bo, MPROC__MPI_IDLE_CAP_NS);
    idle_trim idle = {0};
    idle_trim_start(&idle);
    pthread_mutex_lock(&mproc__mpi.lock);
    for (;;) {
        if (rank_state.qhead) {
            qnode *q = rank_state.qhead;
            rank_state.qhead = q->next;
            if (!rank_state.qhead) rank_state.qtail = NULL;
            *frame = q->frame;
            *len = q->len;
            free(q);
            if (mproc__hdr_kind(*frame) == MPROC__FRAME_MASTER_INFO) { /* arrived while we sent */
                note_master(*frame);
                free(*frame);
                continue;
            }
            break;
        }
        if (mproc__mpi_rank_report_exits(queue_sink) > 0) {
            mproc__mpi_backoff_init(&bo, MPROC__MPI_IDLE_CAP_NS);
            continue;
        }
        /* A relay receives big task frames straight into the executor's ring (executor.h). */
        int src = 0, rc = mproc__mpi_try_recv_into(0, &src, frame, len, rank_state.relaying ? mproc__exec_home() : NULL);
        if (rc < 0)
            mproc__mpi_fatal("worker rank %d: bad frame from the master: %s", mproc__mpi.rank,
                             mproc_last_error());
        if (rc == 1 && mproc__hdr_kind(*frame) == MPROC__FRAME_MASTER_INFO) {
            note_master(*frame);
            free(*frame);
            continue;
        }
        if (rc == 1) break;
        check_master();
        if (rank_state.relaying) { /* replies the main thread watches for (exec_replies.c) */
            pthread_mutex_unlock(&mproc__mpi.lock);
            /* An executor with a reply due may be on this core: then every look yields to it;
             * with none due, no look does (an executor spinning for its next frame would only
             * take the core while that frame comes). */
            bo.yield = mproc__exec_relay_pump(&bo.poll_until) ? 1 : 0;
            pthread_mutex_lock(&mproc__mpi.lock);
        }
        idle_trim_look(&idle);
        mproc__mpi_backoff_wait(&bo, -1.0);
        empty_looks++;
    }
    if (empty_looks < 2) take_in_arrived(*frame);
    pthread_mutex_unlock(&mproc__mpi.lock);
    if (*len >= MPROC__WIRE_HDR_SIZE && mproc__hdr_kind(*frame) == MPROC__FRAME_SHUTDOWN)
    {
        rank_state.wait_program = (mproc__hdr_arg(*frame) & 1) != 0; /* the serve loop only sees "stop" */
        rank_state.peer_lost = (mproc__hdr_arg(*frame) & 2) != 0;
    }
    return 0;
}

static int ch_send(void *impl, const struct iovec *iov, int iovcnt) {
    (void)impl;
    pthread_mutex_lock(&mproc__mpi.lock);
    int rc = send_to_master(iov, iovcnt);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

/* A result frame is sent from the worker's own buffer, not from a copy. */
static int ch_send_owned(void *impl, uint8_t *frame, size_t len) {
    (void)impl;
    pthread_mutex_lock(&mproc__mpi.lock);
    int rc = mproc__mpi_send_owned(0, frame, len, queue_sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

static int ch_on_frame(void *impl, uint16_t kind, uint64_t id, const uint8_t *frame, size_t len) {
    (void)impl;
    switch (kind) {
    case MPROC__FRAME_PROC_START:
        /* A rank that runs tasks itself reads the master's word only after the task it runs next:
         * its Process must not wait for that (a task may wait for the Process). It starts at once,
         * so a rank lost in this window may have started it (docs/mpi.md). */
        return mproc__mpi_rank_start_child(id, frame + MPROC__WIRE_HDR_SIZE, len - MPROC__WIRE_HDR_SIZE,
                                           !rank_state.relaying, queue_sink);
    case MPROC__FRAME_PROC_SIGNAL:
        mproc__mpi_rank_signal_child(id, (int)mproc__hdr_arg(frame));
        return 0;
    case MPROC__FRAME_SKIP: /* its frame had started, or came before a wait (see note_skip) */
        note_skip(id);
        return 0;
    case MPROC__FRAME_WORKER_INDEX: /* a pool starts in which this rank has another number */
        mproc__set_identity(mproc_current_name(), (int)mproc__hdr_arg(frame));
        return 0;
    default:
        return mproc__error(MPROC_EPROTO, "worker rank %d got an unexpected frame of kind %u",
                            mproc__mpi.rank, (unsigned)kind);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Crash reports: async-signal-safe, so only write(2) and digits formatted by hand.
 * ------------------------------------------------------------------------------------------- */

static char crash_prefix[128]; /* "mproc: worker rank R (pid P) died of signal " */
static size_t crash_prefix_len;

static size_t put_str(char *buf, size_t at, size_t cap, const char *s, size_t max) {
    for (size_t i = 0; s[i] && i < max && at < cap; i++) buf[at++] = s[i];
    return at;
}

static size_t put_u64(char *buf, size_t at, size_t cap, uint64_t v) {
    char d[20];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0 && at < cap) buf[at++] = d[--n];
    return at;
}

static const char *crash_sig_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "?";
    }
}

static void crash_handler(int sig) {
    char buf[512];
    size_t cap = sizeof buf - 1, at = 0;
    uint64_t id = 0;
    const char *task = mproc__running_task(&id);
    at = put_str(buf, at, cap, crash_prefix, crash_prefix_len);
    at = put_u64(buf, at, cap, (uint64_t)sig);
    at = put_str(buf, at, cap, " (", 2);
    at = put_str(buf, at, cap, crash_sig_name(sig), 8);
    if (task) {
        at = put_str(buf, at, cap, ") while running task '", 64);
        at = put_str(buf, at, cap, task, 200);
        at = put_str(buf, at, cap, "' (request ", 64);
        at = put_u64(buf, at, cap, id);
    } else {
        at = put_str(buf, at, cap, ") while not running a task", 64);
    }
    at = put_str(buf, at, cap, ")\n", 2);
    ssize_t w = write(2, buf, at);
    (void)w;
    /* Die of the same signal (SA_RESETHAND restored the default): Open MPI sees a crash and
     * ends the job at once. */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Installed after MPI_Init, so ours replace Open MPI's backtrace handlers on worker ranks. */
static void install_crash_handlers(int rank) {
    snprintf(crash_prefix, sizeof crash_prefix, "mproc: worker rank %d (pid %ld) died of signal ",
             rank, (long)getpid());
    crash_prefix_len = strlen(crash_prefix);
    /* An alternate stack, so a stack overflow is reported too. */
    stack_t ss = {.ss_sp = malloc(64 * 1024), .ss_size = 64 * 1024, .ss_flags = 0};
    if (ss.ss_sp) sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crash_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER | (ss.ss_sp ? SA_ONSTACK : 0);
    for (size_t i = 0; i < sizeof mproc__crash_signals / sizeof *mproc__crash_signals; i++)
        sigaction(mproc__crash_signals[i], &sa, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * The rank's life.
 * ------------------------------------------------------------------------------------------- */

static int leaving; /* set before our own exit(0) */

/* A task that calls exit() takes its rank down without MPI_Finalize, which ends the job; say
 * which task did it, as for a crash. */
static void exit_watch(void) {
    uint64_t id = 0;
    const char *task = mproc__running_task(&id);
    if (leaving || !task) return;
    fprintf(stderr, "mproc: worker rank %d (pid %ld) exited while running task '%s' (request %llu):"
            " a task must return, not call exit()\n", mproc__mpi.rank, (long)getpid(), task,
            (unsigned long long)id);
    fflush(stderr);
}

/* This machine's name, for messages and the master ("?" if it has none we can read). */
static void this_host(char host[64]) {
    if (gethostname(host, 64) < 0) snprintf(host, 64, "?");
    host[63] = '\0';
}

/* More executors asked for than the CPUs this rank may use, where the binding (not the machine)
 * is what limits it: the classic slip is mpirun binding each rank to one core (its default at
 * -np 2 and below), so that k executors share that core and a map runs k times slower without a
 * word (found by a new-user trial). Ranks left unbound on a machine with fewer cores than
 * executors are not warned about: that may be meant (tasks that wait on I/O). */
static void warn_if_bound_tighter(int k, int rank) {
    int cpus = mproc_cpu_count();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (k <= cpus || online <= cpus) return;
    char host[64];
    this_host(host);
    fprintf(stderr, "mproc: warning: worker rank %d (host %s) runs %d executors (MPROC_MPI_EXECUTORS) on the %d of %ld "
                    "CPUs its binding lets it use: they share them (by default mpirun binds each rank to one core at -np 2 and below; "
                    "add --bind-to none, or --map-by ppr:1:node:pe=N)\n", rank, host, k, cpus, online);
    fflush(stderr);
}

int mproc__mpi_executors_setting(int *k) {
    const char *s = mproc__env("MPROC_MPI_EXECUTORS");
    *k = -1;
    if (!s || strcmp(s, "auto") == 0) return 0;
    uint64_t v;
    if (mproc__parse_count(s, &v) < 0 || v > MPROC__FSERVER_MAX_EXECUTORS)
        return mproc__error(MPROC_EINVAL, "MPROC_MPI_EXECUTORS='%s': want 0 (tasks in the rank), 1..%d or auto", s,
                            MPROC__FSERVER_MAX_EXECUTORS);
    *k = (int)v;
    return 0;
}

/* How many executors this rank runs (MPROC_MPI_EXECUTORS): 0 runs tasks inside the rank; a
 * number, that many; `auto`, one per CPU this rank may use; unset, the CPUs it may use shared
 * among the ranks on its node (1 with a rank per core, every core with a rank per node). */
int mproc__mpi_rank_executors(int rank) {
    int cpus = mproc_cpu_count();
    if (cpus > MPROC__FSERVER_MAX_EXECUTORS) cpus = MPROC__FSERVER_MAX_EXECUTORS;
    int k;
    if (mproc__mpi_executors_setting(&k) < 0) mproc__mpi_fatal("worker rank %d: %s", rank, mproc_last_error());
    if (k >= 0) {
        warn_if_bound_tighter(k, rank);
        return k;
    }
    if (mproc__env("MPROC_MPI_EXECUTORS")) return cpus; /* auto */
    int per = cpus / mproc__mpi_node_ranks();
    return per > 1 ? per : 1;
}

/* The first message (a PROC_STARTED with id 0): u32 how many executors run our tasks (0:
 * the rank itself), u32 our pid, u32 our host name's length, the name, then each executor's pid. */
static int send_start_message(void) {
    char host[64];
    this_host(host);
    uint32_t hl = (uint32_t)strlen(host), k = (uint32_t)mproc__exec_count();
    size_t len = 12 + hl + 4 * (size_t)k;
    uint8_t *f = malloc(MPROC__WIRE_HDR_SIZE + len);
    if (!f) return mproc__error(MPROC_ENOMEM, "no memory for the start message");
    uint8_t *p = f + MPROC__WIRE_HDR_SIZE;
    mproc__hdr_encode(f, MPROC__FRAME_PROC_STARTED, 0, (uint32_t)len, 0);
    mproc__put_u32(p, k);
    mproc__put_u32(p + 4, (uint32_t)getpid());
    mproc__put_u32(p + 8, hl);
    memcpy(p + 12, host, hl);
    for (uint32_t e = 0; e < k; e++) mproc__put_u32(p + 12 + hl + 4 * e, (uint32_t)mproc__exec_pid((int)e));
    struct iovec iov = {f, MPROC__WIRE_HDR_SIZE + len};
    int rc = ch_send(NULL, &iov, 1);
    free(f);
    return rc;
}

/* The rank as a relay: the master's task frames go to the executors, its control frames are
 * acted on here, until SHUTDOWN. */
static void relay(int rank) {
    /* Frames of megabytes pass through again and again (as in a worker). */
    mproc__worker_keep_big_blocks();
    if (send_start_message() < 0) mproc__mpi_fatal("worker rank %d: %s", rank, mproc_last_error());
    uint8_t hello[MPROC__WIRE_HDR_SIZE + MPROC__WIRE_HELLO_SIZE];
    mproc__hdr_encode(hello, MPROC__FRAME_HELLO, 0, MPROC__WIRE_HELLO_SIZE, (uint32_t)(rank - 1));
    mproc__hello_encode(hello + MPROC__WIRE_HDR_SIZE, mproc__registry_fingerprint(), (uint32_t)mproc__registry_count());
    struct iovec iov = {hello, sizeof hello};
    if (ch_send(NULL, &iov, 1) < 0) mproc__mpi_fatal("worker rank %d: %s", rank, mproc_last_error());
    pthread_mutex_lock(&mproc__mpi.lock); /* queue_sink reads it, in the supervisor's sends too */
    rank_state.relaying = 1;
    pthread_mutex_unlock(&mproc__mpi.lock);
    mproc__mpi_on_sleep(mproc__exec_relay_sleeps);
    for (;;) {
        uint8_t *f = NULL;
        size_t len = 0;
        ch_recv(NULL, &f, &len);
        uint16_t kind = mproc__hdr_kind(f);
        switch (kind) {
        case MPROC__FRAME_TASK:
        case MPROC__FRAME_INIT:
        case MPROC__FRAME_BATCH:
            mproc__exec_take(f, len);
            continue;
        case MPROC__FRAME_SKIP:
#ifdef MPROC_TEST_LAGGING
            usleep(1000); /* test builds only (routing.c): a rank slow to read, as on a busy node */
#endif
            mproc__exec_skip(mproc__hdr_id(f));
            break;
        case MPROC__FRAME_EXEC_KILL:
            mproc__exec_kill(mproc__hdr_id(f));
            break;
        case MPROC__FRAME_EXEC_RESTART:
            mproc__exec_restart(mproc__hdr_id(f), (int)mproc__hdr_arg(f));
            break;
        case MPROC__FRAME_PING: /* the master's watchdog: we are here */
            pthread_mutex_lock(&mproc__mpi.lock);
            mproc__mpi_send_hdr(0, MPROC__FRAME_PONG, 0, 0, queue_sink);
            pthread_mutex_unlock(&mproc__mpi.lock);
            break;
        case MPROC__FRAME_SHUTDOWN:
            free(f);
            mproc__mpi_on_sleep(NULL);
            pthread_mutex_lock(&mproc__mpi.lock);
            rank_state.relaying = 0;
            pthread_mutex_unlock(&mproc__mpi.lock);
            return;
        default:
            if (ch_on_frame(NULL, kind, mproc__hdr_id(f), f, len) < 0)
                mproc__mpi_fatal("worker rank %d: %s", rank, mproc_last_error());
        }
        free(f);
    }
}

_Noreturn void mproc__mpi_rank_main(int k, int first_worker) {
    int rank = mproc__mpi.rank;
    char name[32];
    snprintf(name, sizeof name, "Worker-rank-%d", rank);
    mproc__set_identity(name, first_worker);
    install_crash_handlers(rank);
    atexit(exit_watch);
    mproc__mpi.ready = 1;
    if (k > 0) {
        if (mproc__exec_start(k, first_worker, queue_sink) < 0)
            mproc__mpi_fatal("worker rank %d cannot start its executor: %s", rank, mproc_last_error());
        relay(rank);
        mproc__exec_stop();
    } else {
        mproc__mpi_canary_start();
        /* First message: our pid (a PROC_STARTED with id 0), then serve's HELLO. */
        if (send_start_message() < 0) mproc__mpi_fatal("worker rank %d: %s", rank, mproc_last_error());
        mproc__wchan ch = {NULL, ch_recv, ch_send, ch_on_frame, ch_send_owned, NULL, NULL, NULL, ch_skipped};
        int rc = mproc__worker_serve(&ch, rank - 1);
        if (rc < 0) mproc__mpi_fatal("worker rank %d stopped serving: %s", rank, mproc_last_error());
    }
    mproc__mpi_rank_end_children();
    pthread_mutex_lock(&mproc__mpi.lock);
    /* With a rank lost no collective can complete: the barriers (and the doorbells' window,
     * whose freeing is one) are skipped. */
    if (!rank_state.peer_lost) mproc__mpi_quiesce(mproc__mpi_discard);
    mproc__mpi_net_watch_stop();
    if (!rank_state.peer_lost) mproc__mpi_bells_free();
    /* The master's program finalizes MPI when it chooses: wait for that in a barrier, polled
     * cheaply, rather than in MPI_Finalize (see at_program_finalize in master.c). */
    if (rank_state.wait_program && !rank_state.peer_lost) mproc__mpi_quiesce(mproc__mpi_discard);
    pthread_mutex_unlock(&mproc__mpi.lock);
    fflush(NULL);
    MPI_Comm_free(&mproc__mpi.comm);
    mproc__mpi.ready = 0;
    mproc__mpi.size = 0;
    /* Always finalize here, even if the program initialized MPI: this rank never returns to
     * the program, and a rank that exits without MPI_Finalize fails the whole mpirun. */
    if (rank_state.peer_lost) { /* MPI_Finalize's collectives would wait for the lost rank */
        leaving = 1;
        fflush(NULL);
        _exit(0);
    }
    MPI_Finalize();
    leaving = 1;
    exit(0);
}
