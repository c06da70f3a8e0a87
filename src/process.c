/* process.c - Process: one target run once in a new process, like multiprocessing.Process.
 *
 * The core keeps the state Python users know (created -> started -> ended, name, pid,
 * exitcode) and leaves how the process is made to the backend: a forked child locally, a
 * child of a worker rank under MPI. Processes still running at mproc_finalize() are waited
 * for, as Python waits for its non-daemon children at exit.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/common.h"
#include "lifecycle.h"

#define PROCESS_MAGIC 0x50524f43u /* "PROC" */
#define PROCESS_DEAD 0xdeadbeefu

typedef enum { P_CREATED, P_STARTED, P_ENDED } pstate;

struct mproc_process {
    uint32_t magic;
    const mproc_task *target;
    void *arg;
    size_t arg_len;
    char name[64];
    pstate state;
    mproc__child *child;
    long pid;
    int exitcode;
    struct mproc_process *next_live, *prev_live;
};

static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static mproc_process *live;
static unsigned long counter;

/* The only calls into the backend: thin wrappers, as SQLite's os.c. NULL after finalize. */
static const mproc__backend_ops *backend_or_error(const char *fn) {
    const mproc__backend_ops *be = mproc__backend();
    if (!be) mproc__error(MPROC_ESTATE, "%s: mproc was finalized", fn);
    return be;
}
static int proc_start(const mproc_process *p, mproc__child **child, long *pid) {
    const mproc__backend_ops *be = backend_or_error("mproc_process_start");
    return be ? be->proc_start(p->target, p->arg, p->arg_len, p->name, child, pid) : MPROC_ESTATE;
}
static int proc_wait(mproc__child *c, double timeout, int *code, const char *fn) {
    const mproc__backend_ops *be = backend_or_error(fn);
    return be ? be->proc_wait(c, timeout, code) : MPROC_ESTATE;
}
static int proc_signal(mproc__child *c, int signo, const char *fn) {
    const mproc__backend_ops *be = backend_or_error(fn);
    return be ? be->proc_signal(c, signo) : MPROC_ESTATE;
}
static void proc_free(mproc__child *c) {
    const mproc__backend_ops *be = mproc__backend();
    if (be) be->proc_free(c);
}

static int check(const mproc_process *p, const char *fn) {
    if (!p) return mproc__error(MPROC_EBADHANDLE, "%s: process is NULL", fn);
    if (p->magic != PROCESS_MAGIC) return mproc__error(MPROC_EBADHANDLE, "%s: process was freed", fn);
    return 0;
}

int mproc_process_create(mproc_process **out, const mproc_task *target, const void *arg,
                         size_t arg_len, const char *name) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_process_create: out is NULL");
    *out = NULL;
    int rc = mproc__require_init("mproc_process_create");
    if (rc == 0) rc = mproc__task_check(target, "mproc_process_create");
    if (rc < 0) return rc;
    if (!arg && arg_len) return mproc__error(MPROC_EINVAL, "mproc_process_create: arg is NULL but arg_len is %zu", arg_len);
    if (target->in_size && arg_len != target->in_size)
        return mproc__error(MPROC_ESIZE, "mproc_process_create: task '%s' takes %zu-byte arguments, got %zu",
                            target->name, target->in_size, arg_len);
    mproc_process *p = calloc(1, sizeof *p);
    if (p) p->arg = malloc(arg_len ? arg_len : 1);
    if (!p || !p->arg) {
        free(p);
        return mproc__error(MPROC_ENOMEM, "mproc_process_create: out of memory");
    }
    if (arg_len) memcpy(p->arg, arg, arg_len);
    p->magic = PROCESS_MAGIC;
    p->target = target;
    p->arg_len = arg_len;
    pthread_mutex_lock(&plock);
    unsigned long k = ++counter;
    pthread_mutex_unlock(&plock);
    if (name) snprintf(p->name, sizeof p->name, "%s", name);
    else snprintf(p->name, sizeof p->name, "Process-%lu", k);
    *out = p;
    return 0;
}

int mproc_process_start(mproc_process *p) {
    int rc = check(p, "mproc_process_start");
    if (rc == 0) rc = mproc__require_init("mproc_process_start");
    if (rc < 0) return rc;
    if (p->state != P_CREATED)
        return mproc__error(MPROC_ESTATE, "mproc_process_start: process '%s' was already started (a process can be started once)", p->name);
    rc = proc_start(p, &p->child, &p->pid);
    if (rc < 0) return rc;
    p->state = P_STARTED;
    pthread_mutex_lock(&plock);
    p->next_live = live;
    if (live) live->prev_live = p;
    live = p;
    pthread_mutex_unlock(&plock);
    return 0;
}

/* Unlinks an ended process from the live list. */
static void ended(mproc_process *p, int exitcode) {
    p->exitcode = exitcode;
    p->state = P_ENDED;
    proc_free(p->child);
    p->child = NULL;
    pthread_mutex_lock(&plock);
    if (p->prev_live) p->prev_live->next_live = p->next_live;
    else if (live == p) live = p->next_live;
    if (p->next_live) p->next_live->prev_live = p->prev_live;
    p->next_live = p->prev_live = NULL;
    pthread_mutex_unlock(&plock);
}

int mproc_process_join(mproc_process *p, double timeout) {
    int rc = check(p, "mproc_process_join");
    if (rc == 0) rc = mproc__timeout_check(timeout, "mproc_process_join");
    if (rc < 0) return rc;
    if (p->state == P_CREATED) return mproc__error(MPROC_ESTATE, "mproc_process_join: process '%s' was never started", p->name);
    if (p->state == P_ENDED) return 0;
    int code;
    rc = proc_wait(p->child, timeout, &code, "mproc_process_join");
    if (rc == MPROC_ETIMEDOUT)
        return mproc__error(MPROC_ETIMEDOUT, "mproc_process_join: process '%s' still running after %g s", p->name, timeout);
    if (rc < 0) return rc;
    ended(p, code);
    return 0;
}

int mproc_process_is_alive(mproc_process *p) {
    int rc = check(p, "mproc_process_is_alive");
    if (rc < 0) return rc;
    if (p->state != P_STARTED) return 0;
    rc = mproc_process_join(p, 0);
    return rc == MPROC_ETIMEDOUT ? 1 : rc < 0 ? rc : 0;
}

static int send_signal(mproc_process *p, int signo, const char *fn) {
    int rc = check(p, fn);
    if (rc < 0) return rc;
    if (p->state == P_CREATED) return mproc__error(MPROC_ESTATE, "%s: process '%s' was never started", fn, p->name);
    if (p->state == P_ENDED) return 0;
    return proc_signal(p->child, signo, fn);
}

int mproc_process_terminate(mproc_process *p) { return send_signal(p, SIGTERM, "mproc_process_terminate"); }
int mproc_process_kill(mproc_process *p) { return send_signal(p, SIGKILL, "mproc_process_kill"); }

int mproc_process_exitcode(mproc_process *p, int *exitcode) {
    if (exitcode) *exitcode = 0; /* out-parameters are cleared on failure */
    int rc = check(p, "mproc_process_exitcode");
    if (rc < 0) return rc;
    if (!exitcode) return mproc__error(MPROC_EINVAL, "mproc_process_exitcode: exitcode is NULL");
    if (p->state == P_STARTED) mproc_process_join(p, 0);
    if (p->state != P_ENDED)
        return mproc__error(MPROC_ESTATE, "mproc_process_exitcode: process '%s' has not ended", p->name);
    *exitcode = p->exitcode;
    return 0;
}

long mproc_process_pid(const mproc_process *p) { return check(p, "mproc_process_pid") < 0 ? 0 : p->pid; }

const char *mproc_process_name(const mproc_process *p) {
    return check(p, "mproc_process_name") < 0 ? NULL : p->name;
}

int mproc_process_free(mproc_process *p) {
    if (!p) return 0;
    int rc = check(p, "mproc_process_free");
    if (rc < 0) return rc;
    if (p->state == P_STARTED && mproc_process_join(p, 0) == MPROC_ETIMEDOUT)
        return mproc__error(MPROC_EBUSY, "mproc_process_free: process '%s' is still running; join or kill it first", p->name);
    mproc__mark_dead(&p->magic, PROCESS_DEAD);
    free(p->arg);
    free(p);
    return 0;
}

void mproc__processes_shutdown(void) {
    for (;;) {
        pthread_mutex_lock(&plock);
        mproc_process *p = live;
        pthread_mutex_unlock(&plock);
        if (!p) return;
        if (mproc_process_join(p, -1.0) < 0) ended(p, -SIGKILL); /* cannot wait: forget it */
    }
}
