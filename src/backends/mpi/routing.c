/* routing.c - the MPI master's receive side. Nobody owns it: whichever thread waits (the pool's
 * result thread in wait(), a user thread in proc_wait(), a sender whose peer is slow) polls MPI
 * and routes every frame to its owner: the live group's event queue (results), or the record
 * of the Process it is about (PROC_STARTED, PROC_EXIT). Replies to TASKs whose data has a home
 * (the send hint's reply_to) are received straight there: the placements.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/mpi/executor.h"
#include "backends/mpi/master_state.h"
#include "backends/mpi/routing.h"
#include "backends/mpi/transport.h"
#include "common/common.h"
#include "wire/wire.h"

/* The master's state lives with its lowest user. */
mproc__mpi_master_state mproc__master;

/* ---- placements: replies received straight into the caller's output -------------------- */

mproc__placement *mproc__mpi_placement_find(int rank, uint64_t id) {
    for (int i = 0; i < mproc__master.nplace; i++)
        if (mproc__master.place[i].rank == rank && mproc__master.place[i].id == id) return &mproc__master.place[i];
    return NULL;
}

/* Lock held. Remembers where the reply to TASK id from rank may put its data; 0 or -1. */
int mproc__mpi_placement_add(int rank, int worker, uint64_t id, void *to, size_t len) {
    if (mproc__master.nplace == mproc__master.capplace) {
        int cap = mproc__master.capplace ? 2 * mproc__master.capplace : 16;
        mproc__placement *v = realloc(mproc__master.place, (size_t)cap * sizeof *v);
        if (!v) return -1;
        mproc__master.place = v;
        mproc__master.capplace = cap;
    }
    mproc__master.place[mproc__master.nplace++] = (mproc__placement){rank, worker, id, to, len, 0};
    return 0;
}

/* Lock held. Forgets a placement; returns whether it was used. */
int mproc__mpi_placement_drop(mproc__placement *pl) {
    int used = pl->used;
    *pl = mproc__master.place[--mproc__master.nplace];
    return used;
}

/* The transport's question (mproc__mpi_place): a split RESULT's lead arrived from src. Its data
 * goes to the TASK's home when the sizes agree exactly, else into a frame of its own. */
uint8_t *mproc__mpi_place_result(int src, const uint8_t *first, size_t first_len, size_t want) {
    mproc__placement *pl = mproc__mpi_placement_find(src, mproc__hdr_id(first) & MPROC__EXEC_ID_MASK);
    if (!pl || pl->used || want - first_len != pl->len) return NULL;
    pl->used = 1;
    return pl->to;
}

/* The worker (its index in wk) that sent a reply from rank src: its executor's index is in the top byte of
 * the reply's id (executor.h), which is put back as the core sent it. */
static int reply_worker(int src, uint8_t *f) {
    uint64_t id = mproc__hdr_id(f);
    int e = (int)(id >> MPROC__EXEC_ID_SHIFT);
    const mproc__exec_view *x = &mproc__master.exec[src];
    if (e >= x->nexec) mproc__mpi_fatal("rank %d answered for executor %d of %d", src, e, x->nexec);
    if (e) mproc__put_u64(f + 8, id & MPROC__EXEC_ID_MASK);
    return x->first + e;
}

static void route_result(int src, uint8_t *f, size_t len) {
    /* A rank answers its frames in order, having taken each whole before answering it: every
     * retained send up to this reply's frame is done (or about to be: its FIN may lag), and
     * must be before the core sees the reply and may free that frame's input. */
    mproc__mpi_complete_sends(src, ++mproc__master.replied[src]);
    /* The first drop[src] replies are the stopped group's. */
    if (mproc__master.drop[src] > 0) {
        mproc__master.drop[src]--;
        free(f);
        return;
    }
    int w = reply_worker(src, f);
    mproc__group *g = mproc__master.group;
    if (!g || g->pool_of[w] < 0) {
        free(f);
        return;
    }
    if (mproc__master.outstanding[src] > 0) {
        mproc__master.outstanding[src]--;
        mproc__master.outstanding_total--;
    }
    mproc__placement *pl = mproc__mpi_placement_find(src, mproc__hdr_id(f));
    int placed = pl ? mproc__mpi_placement_drop(pl) : 0;
    mproc__mpi_event *e = malloc(sizeof *e);
    if (!e) mproc__mpi_fatal("master: out of memory queueing a result from rank %d", src);
    *e = (mproc__mpi_event){NULL, w, f, len, placed, 0};
    mproc__mpi_group_push(e);
}

void mproc__mpi_group_push(mproc__mpi_event *e) {
    mproc__group *g = mproc__master.group;
    if (!g || g->pool_of[e->worker] < 0) {
        free(e->frame);
        free(e);
        return;
    }
    if (g->tail)
        g->tail->next = e;
    else
        g->head = e;
    g->tail = e;
}

/* ---- executors' news (executor.h) --------------------------------------------------------- */

/* k frames sent to src will never be answered: they count as replies (a stopped group's first,
 * as in route_result), so the books of outstanding and retained sends stay true. */
static void account_unanswered(int src, uint32_t k) {
    for (uint32_t i = 0; i < k; i++) {
        mproc__master.replied[src]++;
        if (mproc__master.drop[src] > 0) {
            mproc__master.drop[src]--;
        } else if (mproc__master.outstanding[src] > 0) {
            mproc__master.outstanding[src]--;
            mproc__master.outstanding_total--;
        }
    }
    if (k) mproc__mpi_complete_sends(src, mproc__master.replied[src]);
}

/* Forgets reply homes on rank src (of one of its workers): its executor died, so none will be used (a
 * requeued TASK sent there again gets a new one; one dropped too early only costs a copy). */
void mproc__mpi_drop_placements_of(int src, int worker) {
    for (int i = 0; i < mproc__master.nplace;)
        if (mproc__master.place[i].rank == src && (worker < 0 || mproc__master.place[i].worker == worker))
            mproc__mpi_placement_drop(&mproc__master.place[i]);
        else i++;
}

static void route_exec_died(int src, uint8_t *f, size_t len) {
    if (len < MPROC__WIRE_HDR_SIZE + MPROC__EXEC_DIED_MIN)
        mproc__mpi_fatal("rank %d: short EXEC_DIED frame", src);
    account_unanswered(src, mproc__hdr_arg(f));
    const mproc__exec_view *x = &mproc__master.exec[src];
    uint32_t e = mproc__get_u32(f + MPROC__WIRE_HDR_SIZE + 16);
    if (e >= (uint32_t)x->nexec) mproc__mpi_fatal("rank %d reported executor %u of %d", src, e, x->nexec);
    int w = x->first + (int)e;
    mproc__worker_view *v = &mproc__master.wk[w];
    /* Only the death of the generation frames go to now is news: an older one was retired. */
    if (mproc__hdr_id(f) != v->gen) {
        free(f);
        return;
    }
    mproc__mpi_drop_placements_of(src, w);
    if (mproc__get_u32(f + MPROC__WIRE_HDR_SIZE + 4) == 0) v->broken = 1; /* none could start */
    v->pid = 0;
    v->starting = 0;
    mproc__mpi_event *ev = malloc(sizeof *ev);
    if (!ev) mproc__mpi_fatal("master: out of memory queueing news from rank %d", src);
    *ev = (mproc__mpi_event){NULL, w, f, len, 0, 1};
    mproc__mpi_group_push(ev);
}

/* Test builds only (tests/mpi_tests.cmake's mproc_mpi_lagging): the master never hears an
 * EXEC_STARTED, as if each were still on its way - the window in which a rank already feeds a
 * fresh executor while the master still counts it as starting (groups.c, killed_are_gone). */
#ifdef MPROC_TEST_LAGGING
#define STARTED_HEARD 0
#else
#define STARTED_HEARD 1
#endif

static void route_exec_news(int src, uint16_t kind, uint8_t *f, size_t len) {
    const mproc__exec_view *x = &mproc__master.exec[src];
    if (kind == MPROC__FRAME_EXEC_DIED) {
        route_exec_died(src, f, len);
        return;
    }
    if (kind == MPROC__FRAME_EXEC_STARTED && STARTED_HEARD) {
        uint64_t id = mproc__hdr_id(f);
        uint32_t e = (uint32_t)(id >> 32);
        if (e < (uint32_t)x->nexec) {
            mproc__worker_view *v = &mproc__master.wk[x->first + e];
            if ((uint32_t)id == v->gen) {
                v->pid = (long)mproc__hdr_arg(f);
                v->starting = 0;
            }
        }
    }
    if (kind == MPROC__FRAME_EXEC_DROPPED) {
        mproc__placement *pl = mproc__mpi_placement_find(src, mproc__hdr_id(f));
        if (pl) mproc__mpi_placement_drop(pl);
        account_unanswered(src, mproc__hdr_arg(f));
    }
    free(f);
}

/* ---- Processes' frames ---------------------------------------------------------------- */

static mproc__child *child_find(uint64_t id) {
    for (mproc__child *c = mproc__master.children; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void route_child(int src, uint16_t kind, uint8_t *f, size_t len) {
    mproc__child *c = child_find(mproc__hdr_id(f));
    const uint8_t *p = f + MPROC__WIRE_HDR_SIZE;
    size_t n = len - MPROC__WIRE_HDR_SIZE;
    if (c && c->rank == src && kind == MPROC__FRAME_PROC_STARTED) {
        if (n < MPROC__MPI_STARTED_MIN) mproc__mpi_fatal("rank %d: short PROC_STARTED frame", src);
        c->status = (int32_t)mproc__get_u32(p);
        c->pid = (long)mproc__get_u32(p + 4);
        if (c->status < 0) {
            size_t m = n - MPROC__MPI_STARTED_MIN;
            if (m >= sizeof c->why) m = sizeof c->why - 1;
            memcpy(c->why, p + MPROC__MPI_STARTED_MIN, m);
            c->why[m] = '\0';
            c->state = MPROC__CHILD_FAILED;
        } else {
            c->state = MPROC__CHILD_RUNNING;
        }
    } else if (c && c->rank == src && kind == MPROC__FRAME_PROC_EXIT) {
        if (n < 4) mproc__mpi_fatal("rank %d: short PROC_EXIT frame", src);
        c->exitcode = (int32_t)mproc__get_u32(p);
        c->state = MPROC__CHILD_EXITED;
        if (mproc__master.nchild[src] > 0) mproc__master.nchild[src]--;
    }
    free(f); /* a child already freed by the core: nobody to tell */
}

/* ---- the sink --------------------------------------------------------------------------- */

/* The master's sink: every frame from a worker rank goes to its owner, then waiters look. */
void mproc__mpi_route(int src, uint8_t *f, size_t len) {
    uint16_t kind = mproc__hdr_kind(f);
    if (mproc__mpi_is_gone(src)) { /* declared lost: whatever it still says is not counted on */
        free(f);
        return;
    }
    mproc__master.exec[src].heard = mproc__now();
    switch (kind) {
    case MPROC__FRAME_PONG:
        mproc__master.exec[src].pinged = 0;
        free(f);
        break;
    case MPROC__FRAME_RESULT:
    case MPROC__FRAME_INIT_RESULT:
    case MPROC__FRAME_BATCH:
        route_result(src, f, len);
        break;
    case MPROC__FRAME_PROC_STARTED:
    case MPROC__FRAME_PROC_EXIT:
        route_child(src, kind, f, len);
        break;
    case MPROC__FRAME_EXEC_DIED:
    case MPROC__FRAME_EXEC_STARTED:
    case MPROC__FRAME_EXEC_DROPPED:
        if (!mproc__master.exec[src].on)
            mproc__mpi_fatal("rank %d sent executor news but runs tasks in itself", src);
        route_exec_news(src, kind, f, len);
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
        if (mproc__mpi.watchdog) mproc__mpi.watchdog();
        if (done(arg)) return 1; /* the watchdog may have settled it (a lost rank) */
        if (deadline >= 0 && mproc__remaining(deadline) <= 0) return 0;
        mproc__mpi_backoff_wait(&bo, deadline);
    }
}

