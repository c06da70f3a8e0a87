/* backend_calls.c - the pool's only door to the backend (as SQLite's os.c is its only door to
 * the operating system): one thin wrapper per backend operation the pool uses.
 *
 * The wrappers that may block drop the core lock around the call, because a backend's send or
 * wait can take milliseconds and every user thread needs that lock meanwhile; they read the
 * group pointer before dropping it, since p->g is cleared (under the lock) when the group goes.
 */
#include "pool/pool.h"

pthread_mutex_t mproc__core_lock = PTHREAD_MUTEX_INITIALIZER;

int mproc__pool_send(mproc_pool *p, int w, const struct iovec *iov, int iovcnt, mproc__send_hint *hint) {
    mproc__group *g = p->g;
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = p->be->send(g, w, iov, iovcnt, hint);
    pthread_mutex_lock(&mproc__core_lock);
    return rc;
}

int mproc__pool_wait_event(mproc_pool *p, double timeout, mproc__event *ev) {
    mproc__group *g = p->g;
    p->sleeping = 1;
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = p->be->wait(g, timeout, ev);
    pthread_mutex_lock(&mproc__core_lock);
    p->sleeping = 0;
    return rc;
}

int mproc__pool_restart_worker(mproc_pool *p, int w) {
    mproc__group *g = p->g;
    pthread_mutex_unlock(&mproc__core_lock);
    int rc = p->be->restart_worker(g, w);
    pthread_mutex_lock(&mproc__core_lock);
    return rc;
}

int mproc__pool_kill_worker(mproc_pool *p, int w) { return p->be->kill_worker(p->g, w); }

void mproc__pool_skip(mproc_pool *p, int w, uint64_t frame_id) {
    if (p->g && p->be->skip) p->be->skip(p->g, w, frame_id);
}

int mproc__pool_can_withdraw(const mproc_pool *p) { return p->be->withdraw != NULL; }

int mproc__pool_withdraw(mproc_pool *p, int w, const mproc__chunk *c) {
    return !p->g || !p->be->withdraw || p->be->withdraw(p->g, w, c->id, c->lent);
}

long mproc__pool_worker_pid(mproc_pool *p, int w) { return p->be->worker_pid(p->g, w); }

int mproc__pool_fault_domain(mproc_pool *p, int w) {
    return p->be->fault_domain ? p->be->fault_domain(p->g, w) : w;
}

void mproc__pool_kick(mproc_pool *p) {
    /* An awake thread finds new work on its next loop; only a sleeping one needs the wake-up
     * (a syscall), and a wake-up stays pending until it is consumed, so none is lost. */
    if (p->g && p->sleeping) {
        p->sleeping = 0;
        p->be->wake(p->g);
    }
    /* A parked result thread is the driver-to-be, unless a caller drives (it finds the work). */
    if (p->parked && p->driver != MPROC__DRIVER_CALLER) pthread_cond_signal(&p->park);
}

void mproc__pool_wake(mproc_pool *p) {
    if (p->g) p->be->wake(p->g);
    if (p->parked) pthread_cond_signal(&p->park);
}

int mproc__pool_max_workers(mproc_pool *p) {
    return p->be->pool_capacity ? p->be->pool_capacity(p->opts.workers_per_rank) : p->be->max_workers();
}

int mproc__pool_default_workers(mproc_pool *p) { return p->be->default_workers(); }

int mproc__pool_default_inflight(mproc_pool *p) { return p->be->default_inflight ? p->be->default_inflight() : 2; }

int mproc__pool_group_start(mproc_pool *p, mproc__group **out) { return p->be->group_start(p->n, p->opts.workers_per_rank, out); }

void mproc__pool_group_stop(mproc_pool *p, mproc__group *g, int graceful) { p->be->group_stop(g, graceful); }
