/* none.c - the stand-in for a backend that is not available: the library was built without it
 * (CMake found no MPI), or its module cannot be loaded. Every operation answers MPROC_ENOTBUILT
 * with a sentence saying why and how to get it, so a program asking for it learns why instead
 * of crashing (Redis's "not built" convention).
 */
#include <stdio.h>

#include "backend.h"
#include "common/common.h"

static char unavailable_why[512];

static int not_built(void) { return mproc__error(MPROC_ENOTBUILT, "%s", unavailable_why); }

static int none_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return not_built();
}
static int none_finalize(void) { return not_built(); }
static int none_max_workers(void) { return not_built(); }
static int none_group_start(int n, int per_rank, mproc__group **out) {
    (void)n;
    (void)per_rank;
    if (out) *out = NULL;
    return not_built();
}
static int none_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                     mproc__send_hint *hint) {
    (void)g, (void)worker, (void)iov, (void)iovcnt, (void)hint;
    return not_built();
}
static int none_wait(mproc__group *g, double timeout, mproc__event *ev) {
    (void)g, (void)timeout, (void)ev;
    return not_built();
}
static void none_wake(mproc__group *g) {
    (void)g;
    not_built();
}
static int none_kill_worker(mproc__group *g, int worker) {
    (void)g, (void)worker;
    return not_built();
}
static int none_restart_worker(mproc__group *g, int worker) {
    (void)g, (void)worker;
    return not_built();
}
static long none_worker_pid(mproc__group *g, int worker) {
    (void)g, (void)worker;
    return not_built();
}
static void none_group_stop(mproc__group *g, int graceful) {
    (void)g, (void)graceful;
    not_built();
}
static int none_proc_start(const mproc_task *target, const void *arg, size_t len, const char *name,
                           mproc__child **out, long *pid) {
    (void)target, (void)arg, (void)len, (void)name;
    if (out) *out = NULL;
    if (pid) *pid = 0;
    return not_built();
}
static int none_proc_wait(mproc__child *c, double timeout, int *exitcode) {
    (void)c, (void)timeout, (void)exitcode;
    return not_built();
}
static int none_proc_signal(mproc__child *c, int signo) {
    (void)c, (void)signo;
    return not_built();
}
static void none_proc_free(mproc__child *c) {
    (void)c;
    not_built();
}

static const mproc__backend_ops none_ops = {
    .version = MPROC__BACKEND_VERSION,
    .name = "unavailable",
    .init = none_init,
    .finalize = none_finalize,
    .max_workers = none_max_workers,
    .group_start = none_group_start,
    .send = none_send,
    .wait = none_wait,
    .wake = none_wake,
    .kill_worker = none_kill_worker,
    .restart_worker = none_restart_worker,
    .worker_pid = none_worker_pid,
    .group_stop = none_group_stop,
    .proc_start = none_proc_start,
    .proc_wait = none_proc_wait,
    .proc_signal = none_proc_signal,
    .proc_free = none_proc_free,
    .default_workers = none_max_workers,
};

const mproc__backend_ops *mproc__backend_unavailable(const char *why) {
    snprintf(unavailable_why, sizeof unavailable_why, "%s", why);
    return &none_ops;
}
