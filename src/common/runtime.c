/* runtime.c - the library's run-time state that every layer may read: which backend is active,
 * whether mproc_init and mproc_finalize have run, which process initialised mproc, and which
 * pool's loop a thread runs. It sits at the bottom so that the pool, Processes and backends can
 * ask "is mproc started?" without calling up into init.c, which sets it. */
#include <sched.h>
#include <unistd.h>

#include "common/common.h"

static const struct mproc__backend_ops *active;
static mproc_backend_kind active_kind;
static int finalized;
static pid_t init_pid;
static int (*finalizer)(void);
_Thread_local mproc_pool *mproc__loop_pool;
_Thread_local mproc__settling *mproc__settling_top;

void mproc__runtime_start(const struct mproc__backend_ops *ops, mproc_backend_kind kind, int (*finalize)(void)) {
    active = ops;
    active_kind = kind;
    init_pid = getpid();
    finalizer = finalize;
}

void mproc__runtime_stop(void) {
    active = NULL;
    finalized = 1;
}

const struct mproc__backend_ops *mproc__backend(void) { return active; }
mproc_backend_kind mproc__runtime_kind(void) { return active ? active_kind : (mproc_backend_kind)0; }
int mproc__runtime_finalized(void) { return finalized; }
int mproc__runtime_is_init_process(void) { return active && getpid() == init_pid; }

int mproc__runtime_finalize(void) { return finalizer ? finalizer() : 0; }

int mproc__require_init(const char *fn) {
    if (active) return 0;
    if (finalized) return mproc__error(MPROC_ESTATE, "%s: mproc_finalize() was already called", fn);
    return mproc__error(MPROC_ENOTINIT, "%s: call mproc_init(&argc, &argv) first", fn);
}

/* Public, but here at the bottom: the fork backend sizes its default pool by it. */
int mproc_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
