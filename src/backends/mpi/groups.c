/* groups.c - a pool's workers under MPI: n of the worker ranks' executors (or of the ranks that
 * run tasks themselves), spread over the ranks, numbered rank by rank; with workers_per_rank,
 * only each rank's first few. The pool numbers its workers 0..n-1 and each one's tasks see that number: a worker whose
 * number changes is restarted (an executor) or told (a rank running tasks itself).
 * Only one group lives at a time; stopping it leaves the ranks serving, so a later pool reuses
 * them (they get SHUTDOWN in finalize). Frames for the group are routed to its queue by
 * routing.c; wait() polls and sleeps until one is there.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/mpi/executor.h"
#include "backends/mpi/groups.h"
#include "backends/mpi/master_state.h"
#include "backends/mpi/routing.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/watchdog.h"
#include "common/common.h"
#include "wire/wire.h"


/* Lock held. Asks worker v's rank for a new executor in its place, as worker number ident. */
static int restart_executor(mproc__worker_view *v, int ident) {
    int rc = mproc__mpi_send_hdr(v->rank, MPROC__FRAME_EXEC_RESTART, (uint64_t)v->e, (uint32_t)ident, mproc__mpi_route);
    if (rc < 0) return rc;
    v->ident = ident;
    v->gen++;
    v->used = v->broken = 0;
    v->pid = 0; /* until its EXEC_STARTED */
    v->starting = 1;
    return 0;
}

/* The frame in iov with executor e named in its id's top byte (executor.h): a copy of its
 * header in hdr, then the rest of the caller's iovecs. Returns the new count. */
static int name_executor(const struct iovec *iov, int iovcnt, int e, uint8_t hdr[MPROC__WIRE_HDR_SIZE],
                         struct iovec *out) {
    mproc__put_u64(hdr + 8, mproc__hdr_id(hdr) | ((uint64_t)e << MPROC__EXEC_ID_SHIFT));
    int n = 0;
    out[n++] = (struct iovec){hdr, MPROC__WIRE_HDR_SIZE};
    size_t skip = MPROC__WIRE_HDR_SIZE;
    for (int i = 0; i < iovcnt; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        out[n++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, l - skip};
        skip = 0;
    }
    return n;
}

static void group_free(mproc__group *g) {
    if (!g) return;
    free(g->slot);
    free(g->pool_of);
    free(g);
}

/* How many of rank r's executors a pool with this per_rank may take. */
static int rank_share(int r, int per_rank) {
    int has = mproc__master.exec[r].nexec;
    return per_rank > 0 && per_rank < has ? per_rank : has;
}

/* The group's workers: each rank's first per_rank (0: all). A pool that wants fewer than that
 * takes them a round at a time over the ranks (every rank's first, then every rank's second...),
 * so that it is spread over as many ranks, and so nodes, as it can be: with a rank per node,
 * filling the first rank's executors left the other nodes idle and sent every frame through one
 * relay and one network link (bench/README.md). Numbered rank by rank either way. */
static mproc__group *group_new(int n, int per_rank) {
    mproc__group *g = calloc(1, sizeof *g);
    int total = mproc__master.nworkers, size = mproc__mpi.size;
    int *take = calloc((size_t)size, sizeof *take);
    if (!g || !take || !(g->slot = calloc((size_t)total, sizeof *g->slot)) ||
        !(g->pool_of = malloc((size_t)total * sizeof *g->pool_of))) {
        free(take);
        group_free(g);
        return NULL;
    }
    for (int i = 0; i < total; i++) g->pool_of[i] = -1;
    for (int round = 0, left = n, more = 1; left > 0 && more; round++) {
        more = 0;
        for (int r = 1; r < size && left > 0; r++)
            if (round < rank_share(r, per_rank)) {
                take[r]++;
                left--;
                more = 1;
            }
    }
    for (int r = 1; r < size; r++)
        for (int e = 0; e < take[r]; e++) {
            int slot = mproc__master.exec[r].first + e;
            g->pool_of[slot] = g->n;
            g->slot[g->n++] = slot;
        }
    free(take);
    atomic_init(&g->woken, 0);
    return g;
}

/* Lock held. Worker w of the new group g, fresh and numbered w: as on fork, an executor that ran
 * an earlier pool's tasks (and its initializer) or had another number is replaced first; frames
 * sent from now on go to the new one. A rank running tasks itself is told its number. */
static void group_take_worker(mproc__group *g, int w) {
    mproc__worker_view *v = &mproc__master.wk[g->slot[w]];
    if (mproc__mpi_is_gone(v->rank)) { /* lost earlier: this pool has a worker less */
        mproc__mpi_push_lost_worker(g->slot[w]);
        return;
    }
    if (!mproc__master.exec[v->rank].on) {
        if (v->ident != w && mproc__mpi_send_hdr(v->rank, MPROC__FRAME_WORKER_INDEX, 0, (uint32_t)w, mproc__mpi_route) == 0)
            v->ident = w;
        return;
    }
    /* pid 0 and not starting: it died (or was killed with its rank's others) while no pool
     * counted on it. Starting: the pool before replaced it as it stopped. */
    if (!v->used && !v->broken && (v->pid || v->starting) && v->ident == w) return;
    restart_executor(v, w);
}

int mproc__mpi_group_start(int n, int per_rank, mproc__group **out) {
    *out = NULL;
    if (n < 1) return mproc__error(MPROC_EINVAL, "mpi: a pool needs at least one worker");
    if (!mproc__mpi.ready) return mproc__error(MPROC_ESTATE, "mpi: the backend is not started");
    pthread_mutex_lock(&mproc__mpi.lock);
    if (mproc__master.group) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        return mproc__error(MPROC_EBUSY, "mpi: another pool is using the worker ranks; under MPI "
                                         "one pool runs at a time (end it first: mproc_pool_terminate, or "
                                         "mproc_pool_close and mproc_pool_join)");
    }
    mproc__group *g = group_new(n, per_rank);
    if (!g) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        return mproc__error(MPROC_ENOMEM, "mpi: out of memory for a pool");
    }
    mproc__master.group = g;
    for (int w = 0; w < g->n; w++) group_take_worker(g, w);
    pthread_mutex_unlock(&mproc__mpi.lock);
    *out = g;
    return 0;
}

int mproc__mpi_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                    mproc__send_hint *hint) {
    uint8_t hdr[MPROC__WIRE_HDR_SIZE];
    if (!g || worker < 0 || worker >= g->n || !iov || iovcnt < 1)
        return mproc__error(MPROC_EINVAL, "mpi send: no worker %d in this pool", worker);
    if (mproc__iov_total(iov, iovcnt) < sizeof hdr)
        return mproc__error(MPROC_EINVAL, "mpi send: a frame without a header");
    mproc__mpi_iov_copy(iov, iovcnt, 0, hdr, sizeof hdr);
    uint16_t kind = mproc__hdr_kind(hdr);
    /* Ranks outlive pools (a later pool reuses them); they get SHUTDOWN in finalize only. */
    if (kind == MPROC__FRAME_SHUTDOWN) return 0;
    int counted = kind == MPROC__FRAME_TASK || kind == MPROC__FRAME_INIT || kind == MPROC__FRAME_BATCH;
    mproc__worker_view *v = &mproc__master.wk[g->slot[worker]];
    int r = v->rank, rc;
    struct iovec named[17];
    if (counted && v->e > 0) {
        if (iovcnt > 16) return mproc__error(MPROC_EINVAL, "mpi send: 1..16 iovecs");
        iovcnt = name_executor(iov, iovcnt, v->e, hdr, named);
        iov = named;
    }
    pthread_mutex_lock(&mproc__mpi.lock);
    if (g != mproc__master.group) {
        pthread_mutex_unlock(&mproc__mpi.lock);
        return mproc__error(MPROC_ECLOSED, "mpi send: the pool's workers are stopped");
    }
    if (mproc__mpi_is_gone(r)) { /* its DIED event is queued already */
        pthread_mutex_unlock(&mproc__mpi.lock);
        return mproc__error(MPROC_EWORKER, "mpi send: worker %d's rank %d is lost", worker, r);
    }
    /* Counted (and its reply's home noted) before sending: the reply can arrive while this
     * send still waits. */
    uint64_t id = mproc__hdr_id(hdr) & MPROC__EXEC_ID_MASK;
    int placing = kind == MPROC__FRAME_TASK && hint && hint->reply_to && !mproc__mpi_placement_find(r, id) &&
                  mproc__mpi_placement_add(r, g->slot[worker], id, hint->reply_to, hint->reply_len) == 0;
    if (counted) {
        v->used = 1;
        mproc__master.outstanding[r]++;
        mproc__master.outstanding_total++;
        mproc__master.sent[r]++;
    }
    if (hint) hint->kept = placing; /* a token for withdraw: the retained send's number, else 1 */
    if (counted && hint && (hint->flags & MPROC__SEND_RETAIN)) {
        rc = mproc__mpi_send_retained(r, iov, iovcnt, mproc__master.sent[r], mproc__mpi_route);
        if (mproc__iov_total(iov, iovcnt) >= MPROC__MPI_RETAIN_MIN) hint->kept = mproc__master.sent[r]; /* read later */
    } else
        rc = mproc__mpi_send_frame(r, iov, iovcnt, mproc__mpi_route);
    if (rc < 0 && counted) {
        mproc__master.outstanding[r]--;
        mproc__master.outstanding_total--;
        mproc__master.sent[r]--;
    }
    if (rc < 0 && placing) {
        mproc__placement *pl = mproc__mpi_placement_find(r, id);
        if (pl) mproc__mpi_placement_drop(pl);
    }
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

/* While a group's ranks work, a result from a rank on another node (no doorbell) should be
 * seen within a fraction of a task: poll faster then, and lazily when nothing is due. */
static long busy_cap(const mproc__group *g) {
    (void)g; /* one group at a time: every outstanding frame is its own */
    if (mproc__mpi_all_local()) return MPROC__MPI_IDLE_CAP_NS;
    return mproc__master.outstanding_total ? MPROC__MPI_BUSY_CAP_NS : MPROC__MPI_IDLE_CAP_NS;
}

static int group_ready(const void *arg) {
    const mproc__group *g = arg;
    return g->head != NULL || atomic_load(&g->woken);
}

/* An EXEC_DIED (executor.h) as the core's DIED event; frees it. */
static void died_event(const mproc__group *g, mproc__mpi_event *e, mproc__event *ev) {
    ev->kind = MPROC__EV_DIED;
    ev->worker = g->pool_of[e->worker];
    if (e->died == 2) { /* its whole rank was lost (watchdog.c) */
        const mproc__worker_view *v = &mproc__master.wk[e->worker];
        const mproc__exec_view *x = &mproc__master.exec[v->rank];
        ev->exitcode = -9;
        ev->pid = v->pid;
        ev->innocent = 1;
        ev->gone_since = x->lost_at;
        snprintf(ev->why, sizeof ev->why, "its rank %d (host %s) was lost", v->rank, x->host[0] ? x->host : "?");
        free(e);
        return;
    }
    const uint8_t *p = e->frame + MPROC__WIRE_HDR_SIZE;
    size_t wl = e->len - MPROC__WIRE_HDR_SIZE - MPROC__EXEC_DIED_MIN;
    ev->exitcode = (int32_t)mproc__get_u32(p);
    ev->pid = (long)mproc__get_u32(p + 4);
    ev->taken_known = 1;
    ev->taken_id = mproc__get_u64(p + 8);
    if (wl >= sizeof ev->why) wl = sizeof ev->why - 1;
    memcpy(ev->why, p + MPROC__EXEC_DIED_MIN, wl);
    ev->why[wl] = '\0';
    free(e->frame);
    free(e);
}

int mproc__mpi_wait(mproc__group *g, double timeout, mproc__event *ev) {
    memset(ev, 0, sizeof *ev);
    if (!g) return mproc__error(MPROC_EINVAL, "mpi wait: no group");
    double deadline = mproc__deadline(timeout);
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_wait_until(group_ready, g, deadline, busy_cap(g));
    if (atomic_exchange(&g->woken, 0)) {
        /* A wake first: it means new work or a stop, and queued frames keep. */
        ev->kind = MPROC__EV_WAKE;
    } else if (g->head && g->head->died) {
        mproc__mpi_event *e = g->head;
        g->head = e->next;
        if (!g->head) g->tail = NULL;
        died_event(g, e, ev);
    } else if (g->head) {
        mproc__mpi_event *e = g->head;
        g->head = e->next;
        if (!g->head) g->tail = NULL;
        ev->kind = MPROC__EV_FRAME;
        ev->worker = g->pool_of[e->worker];
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

void mproc__mpi_wake(mproc__group *g) {
    if (!g) return;
    atomic_store(&g->woken, 1);
    mproc__mpi_ring_self(); /* lock-free: callers may hold the core's lock */
}

/* Worker's view: 0 and *v, or an error where its rank runs tasks itself. */
static int executor_of(mproc__group *g, int worker, const char *what, mproc__worker_view **v) {
    if (!g || worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "mpi: no worker %d in this pool", worker);
    *v = &mproc__master.wk[g->slot[worker]];
    if (!mproc__master.exec[(*v)->rank].on)
        return mproc__error(MPROC_ENOTBUILT, "mpi: cannot %s worker %d: rank %d runs its tasks in itself "
                                             "(MPROC_MPI_EXECUTORS=0)", what, worker, (*v)->rank);
    return 0;
}

int mproc__mpi_kill_worker(mproc__group *g, int worker) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__worker_view *v = NULL;
    int rc = executor_of(g, worker, "kill", &v);
    if (rc == 0 && !mproc__mpi_is_gone(v->rank)) /* a lost rank has nothing left to kill */
        rc = mproc__mpi_send_hdr(v->rank, MPROC__FRAME_EXEC_KILL, (uint64_t)v->e, 0, mproc__mpi_route);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

/* The rank skips the frame if its executor (or, running tasks itself, the rank) has not started
 * it yet. SKIP usually comes behind the frame it names (a send in progress as the call was
 * cancelled may put it first): the rank keeps it until the frame comes either way. */
int mproc__mpi_skip(mproc__group *g, int worker, uint64_t id) {
    if (!g || worker < 0 || worker >= g->n) return mproc__error(MPROC_EINVAL, "mpi: no worker %d in this pool", worker);
    pthread_mutex_lock(&mproc__mpi.lock);
    const mproc__worker_view *v = &mproc__master.wk[g->slot[worker]];
    int rc = 0;
    if (g == mproc__master.group && !mproc__mpi_is_gone(v->rank))
        rc = mproc__mpi_send_hdr(v->rank, MPROC__FRAME_SKIP, (id & MPROC__EXEC_ID_MASK) | ((uint64_t)v->e << MPROC__EXEC_ID_SHIFT),
                                 0, mproc__mpi_route);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

int mproc__mpi_withdraw(mproc__group *g, int worker, uint64_t id, uint64_t kept) {
    if (!g || worker < 0 || worker >= g->n) return 1;
    pthread_mutex_lock(&mproc__mpi.lock);
    int r = mproc__master.wk[g->slot[worker]].rank;
    mproc__placement *pl = mproc__mpi_placement_find(r, id & MPROC__EXEC_ID_MASK);
    if (pl && !pl->used) mproc__mpi_placement_drop(pl); /* a used one was written before we came */
    /* A retained send (kept: its number to the rank) reads the caller's input until the rank
     * has taken it: a rank running a task in itself takes it only when that task ends, so we
     * do not wait here (the pool asks again); a lost rank's sends are abandoned. */
    if (mproc__mpi.watchdog) mproc__mpi.watchdog();
    int done = !mproc__mpi_retained_in_flight(r, kept);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return done;
}

int mproc__mpi_restart_worker(mproc__group *g, int worker) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__worker_view *v = NULL;
    int rc = executor_of(g, worker, "replace", &v);
    if (rc == 0 && mproc__mpi_is_gone(v->rank))
        rc = mproc__error(MPROC_ESYS, "mpi: worker rank %d (host %s) is lost", v->rank, mproc__master.exec[v->rank].host);
    else if (rc == 0 && v->broken)
        rc = mproc__error(MPROC_ESYS, "mpi: rank %d could not start an executor", v->rank);
    if (rc == 0) rc = restart_executor(v, worker);
    pthread_mutex_unlock(&mproc__mpi.lock);
    return rc;
}

int mproc__mpi_fault_domain(mproc__group *g, int worker) {
    if (!g || worker < 0 || worker >= g->n || !mproc__master.wk) return worker;
    pthread_mutex_lock(&mproc__mpi.lock);
    const mproc__exec_view *x = &mproc__master.exec[mproc__master.wk[g->slot[worker]].rank];
    int first = g->pool_of[x->first]; /* the group takes each rank's executors from its first */
    pthread_mutex_unlock(&mproc__mpi.lock);
    return first >= 0 ? first : worker;
}

long mproc__mpi_worker_pid(mproc__group *g, int worker) {
    if (!g || worker < 0 || worker >= g->n || !mproc__master.wk) return 0;
    pthread_mutex_lock(&mproc__mpi.lock);
    long pid = mproc__master.wk[g->slot[worker]].pid;
    pthread_mutex_unlock(&mproc__mpi.lock);
    return pid;
}

/* Longest a stopping pool waits for the executors it killed to be reported gone: a rank reaps
 * a killed executor within 2 s (exec_state.h's MPROC__EXEC_REAP_GRACE) even when the process
 * will not die, and one still starting may first take its fork server's 10 s to start
 * (fork_server.c's SPAWN_TIMEOUT_S). Past it the pool stops anyway, saying so. */
#define KILLED_GONE_S 15.0

/* How many executors of the ranks marked in `killed` (a char per rank, its rank not lost) are
 * not reported gone yet: alive (a pid), or starting - its rank may have started it already and
 * be feeding it the frames queued behind its RESTART while its EXEC_STARTED is still on the
 * way; the KILL queued behind those frames ends it, and its EXEC_DIED (after the EXEC_STARTED)
 * says so. With warn, each is named on stderr: the wait for them ran out. Lock held. */
static int killed_left(const char *killed, int warn) {
    int left = 0;
    for (int r = 1; r < mproc__mpi.size; r++) {
        if (!killed[r] || mproc__mpi_is_gone(r)) continue;
        const mproc__exec_view *x = &mproc__master.exec[r];
        for (int e = 0; e < x->nexec; e++) {
            const mproc__worker_view *v = &mproc__master.wk[x->first + e];
            if (v->pid == 0 && !v->starting) continue;
            left++;
            if (warn)
                fprintf(stderr, "mproc: warning: worker rank %d (host %s): executor %d was not reported gone %.0f s after "
                                "the pool was terminated; a task of that pool may still be running there\n",
                        r, x->host[0] ? x->host : "?", e, KILLED_GONE_S);
        }
    }
    return left;
}

static int killed_are_gone(const void *arg) { return killed_left(arg, 0) == 0; }

/* Lock held. As a fork pool's workers end with it, the executors that ran this pool's tasks go
 * now (SHUTDOWN: a task may have left a Lock held, memory, files), not when a pool next needs
 * them; a fresh one waits in each's place. Those killed above are gone already. */
static void retire_used_executors(mproc__group *g, const char *killed) {
    for (int w = 0; w < g->n; w++) {
        mproc__worker_view *v = &mproc__master.wk[g->slot[w]];
        if (v->used && mproc__master.exec[v->rank].on && !mproc__mpi_is_gone(v->rank) && !(killed && killed[v->rank]))
            restart_executor(v, v->ident);
    }
}

void mproc__mpi_group_stop(mproc__group *g, int graceful) {
    (void)graceful; /* ranks are never stopped with a pool; see the file comment */
    if (!g) return;
    pthread_mutex_lock(&mproc__mpi.lock);
    /* The core may free what its retained sends read once this returns: wait until each rank
     * has taken them (a rank busy in a task takes its next frame when that task ends). */
    mproc__mpi_complete_sends(-1, UINT64_MAX);
    /* Replies still due find no home: the core may free it once this returns. */
    mproc__master.nplace = 0;
    /* Work still running on a rank cannot be taken back: its replies are dropped on arrival.
     * Where it runs in an executor, the executor is killed, so the rank is free at once (the
     * next pool gets a fresh one). */
    char *killed = calloc((size_t)mproc__mpi.size, 1);
    int any_killed = 0;
    for (int r = 1; r < mproc__mpi.size && mproc__master.outstanding; r++) {
        if (mproc__master.outstanding[r] && mproc__master.exec[r].on && !mproc__mpi_is_gone(r)) {
            mproc__mpi_send_hdr(r, MPROC__FRAME_EXEC_KILL, MPROC__EXEC_ALL, 0, mproc__mpi_route);
            if (killed) killed[r] = 1;
            any_killed = 1;
            /* Every executor of the rank dies, in this pool or not: each is replaced by the
             * next pool that includes it. */
            const mproc__exec_view *x = &mproc__master.exec[r];
            for (int e = 0; e < x->nexec; e++) mproc__master.wk[x->first + e].used = 1;
        }
        mproc__master.drop[r] += mproc__master.outstanding[r];
        mproc__master.outstanding_total -= mproc__master.outstanding[r];
        mproc__master.outstanding[r] = 0;
    }
    /* As Python's terminate(): when this returns, no task of the pool still runs or starts (a
     * killed executor could otherwise take a frame already queued for it in the meantime). */
    if (any_killed && killed &&
        !mproc__mpi_wait_until(killed_are_gone, killed, mproc__deadline(KILLED_GONE_S), MPROC__MPI_BUSY_CAP_NS))
        killed_left(killed, 1);
    retire_used_executors(g, killed);
    free(killed);
    while (g->head) {
        mproc__mpi_event *e = g->head;
        g->head = e->next;
        free(e->frame);
        free(e);
    }
    if (mproc__master.group == g) mproc__master.group = NULL;
    pthread_mutex_unlock(&mproc__mpi.lock);
    group_free(g);
}

