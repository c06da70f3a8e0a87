/* watchdog.c - the MPI master notices a worker rank that is gone (watchdog.h).
 *
 * Where Open MPI keeps the job alive after a rank dies (`mpirun --enable-recovery`), nothing
 * tells the master: the rank only falls silent. Its executor design makes silence meaningful: a
 * rank's own thread never runs a task, so it answers a PING within milliseconds however long its
 * tasks run. The master pings a rank that owes it something and has said nothing for a second;
 * one that has not answered MPROC_MPI_LOST_TIMEOUT seconds later (default 10) is lost: never
 * sent to or waited for again, its running tasks re-run elsewhere (once, not counted as the
 * task's failure), its pool slot closed, its Processes ended with exit code -9.
 *
 * The look costs a clock read per wait step; the scan over the ranks runs at most four times a
 * second, and only while something is outstanding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/mpi/master_state.h"
#include "backends/mpi/routing.h"
#include "backends/mpi/transport.h"
#include "backends/mpi/wait.h"
#include "backends/mpi/watchdog.h"
#include "common/common.h"
#include "wire/wire.h"

#define SCAN_EVERY_S 0.25
#define PING_AFTER_S 1.0

static double lost_after_s = 10.0;
static double next_scan;

/* Lock held. Closes the books on rank r and tells whoever waits on it. */
static void rank_lost(int r, double silent) {
    mproc__exec_view *x = &mproc__master.exec[r];
    mproc__mpi.gone[r] = 1;
    mproc__mpi.any_gone = 1;
    x->lost_at = mproc__now();
    fprintf(stderr, "mproc: warning: worker rank %d (host %s) is lost: no answer for %.0f s; what it was "
            "running goes back to the queue, and it gets no more work\n", r, x->host[0] ? x->host : "?", silent);
    mproc__mpi_abandon_sends(r);
    mproc__mpi_drop_placements_of(r, -1);
    mproc__master.outstanding_total -= mproc__master.outstanding[r];
    mproc__master.outstanding[r] = 0;
    mproc__master.drop[r] = 0;
    for (mproc__child *c = mproc__master.children; c; c = c->next) {
        if (c->rank != r) continue;
        if (c->state == MPROC__CHILD_RUNNING) { /* it died with its rank */
            c->state = MPROC__CHILD_EXITED;
            c->exitcode = -9;
        } else if (c->state == MPROC__CHILD_STARTING) { /* never started: proc_start goes elsewhere */
            c->state = MPROC__CHILD_FAILED;
            c->status = MPROC_EWORKER;
            snprintf(c->why, sizeof c->why, "rank %d (host %s) was lost before it started", r, x->host);
        }
    }
    mproc__master.nchild[r] = 0;
    for (int e = 0; e < x->nexec; e++) mproc__mpi_push_lost_worker(x->first + e);
}

void mproc__mpi_push_lost_worker(int w) {
    mproc__mpi_event *e = malloc(sizeof *e);
    if (!e) mproc__mpi_fatal("master: out of memory noting that worker %d is lost", w);
    *e = (mproc__mpi_event){NULL, w, NULL, 0, 0, 2};
    mproc__mpi_group_push(e);
}

static void look(void) {
    double now = mproc__now();
    if (now < next_scan) return;
    next_scan = now + SCAN_EVERY_S;
    if (mproc__master.outstanding_total == 0 && !mproc__master.children) return;
    for (int r = 1; r < mproc__mpi.size; r++) {
        mproc__exec_view *x = &mproc__master.exec[r];
        if (!x->on || mproc__mpi.gone[r] || (!mproc__master.outstanding[r] && !mproc__master.nchild[r])) continue;
        if (x->pinged > 0) {
            if (now - x->pinged > lost_after_s) rank_lost(r, now - x->heard);
        } else if (now - x->heard > PING_AFTER_S) {
            x->pinged = now;
            mproc__mpi_send_hdr(r, MPROC__FRAME_PING, 0, 0, mproc__mpi_route);
        }
    }
}

static int roll_answered(const void *arg) {
    (void)arg;
    for (int r = 1; r < mproc__mpi.size; r++)
        if (mproc__master.exec[r].pinged > 0 && !mproc__mpi.gone[r]) return 0;
    return 1;
}

void mproc__mpi_watchdog_roll_call(void) {
    if (!mproc__mpi.watchdog) return;
    double now = mproc__now();
    for (int r = 1; r < mproc__mpi.size; r++) {
        mproc__exec_view *x = &mproc__master.exec[r];
        if (!x->on || mproc__mpi.gone[r]) continue;
        x->pinged = now;
        mproc__mpi_send_hdr(r, MPROC__FRAME_PING, 0, 0, mproc__mpi_route);
    }
    mproc__mpi_wait_until(roll_answered, NULL, mproc__deadline(lost_after_s), MPROC__MPI_BUSY_CAP_NS);
    for (int r = 1; r < mproc__mpi.size; r++)
        if (mproc__master.exec[r].on && !mproc__mpi.gone[r] && mproc__master.exec[r].pinged > 0)
            rank_lost(r, mproc__now() - mproc__master.exec[r].heard);
}

int mproc__mpi_lost_timeout_setting(void) {
    const char *s = mproc__env("MPROC_MPI_LOST_TIMEOUT");
    double v;
    if (s && mproc__parse_seconds(s, &v) < 0)
        return mproc__error(MPROC_EINVAL, "MPROC_MPI_LOST_TIMEOUT='%s': want seconds (0: never)", s);
    lost_after_s = s ? v : 10.0;
    return 0;
}

int mproc__mpi_watchdog_start(void) {
    int rc = mproc__mpi_lost_timeout_setting(); /* checked in mproc_init already: cannot fail */
    if (rc < 0) return rc;
    mproc__mpi.gone = calloc((size_t)mproc__mpi.size, 1);
    if (!mproc__mpi.gone) return mproc__error(MPROC_ENOMEM, "master: out of memory at start");
    double now = mproc__now();
    for (int r = 1; r < mproc__mpi.size; r++) mproc__master.exec[r].heard = now;
    if (lost_after_s > 0) mproc__mpi.watchdog = look;
    return 0;
}

void mproc__mpi_watchdog_stop(void) {
    mproc__mpi.watchdog = NULL;
    free(mproc__mpi.gone);
    mproc__mpi.gone = NULL;
}
