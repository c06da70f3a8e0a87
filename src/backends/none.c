/* backend_none.c - the MPI backend's stand-in when it is not available: the library was built
 * without MPI (CMake found none), or its module libmproc_mpi.so cannot be loaded. Every
 * operation answers MPROC_ENOTBUILT with a sentence saying why and how to get it, so a program
 * asking for MPI learns why instead of crashing (Redis's "not built" convention).
 */
#include "backend.h"
#include "common/common.h"

char mproc__mpi_unavailable[512] = "mproc was built without MPI; install libopenmpi-dev and rebuild";

static int not_built(void) { return mproc__error(MPROC_ENOTBUILT, "%s", mproc__mpi_unavailable); }

static int none_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return not_built();
}
static int none_finalize(void) { return not_built(); }
static int none_max_workers(void) { return not_built(); }
static int none_group_start(int n, mproc__group **out) {
    (void)n;
    if (out) *out = NULL;
    return not_built();
}
static int none_send(mproc__group *g, int worker, const struct iovec *iov, int iovcnt,
                     const mproc__send_hint *hint) {
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
static int none_proc_start(const mproc_task *target, const void *arg, size_t len,
                           const char *name, mproc__child **out, long *pid) {
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

const mproc__backend_ops mproc__backend_none = {
    MPROC__BACKEND_VERSION, "mpi",          none_init,          none_finalize,
    none_max_workers,       none_group_start, none_send,        none_wait,
    none_wake,              none_kill_worker, none_restart_worker, none_worker_pid,
    none_group_stop,        none_proc_start, none_proc_wait,     none_proc_signal,
    none_proc_free,         none_max_workers,
};
