/* processes.c - one-shot Processes on the fork backend: fork, run the target in the child,
 * _exit with its code; the parent waits with waitpid (a pidfd for timed waits) and signals by
 * pid. The child shares nothing with pools: it closes every worker channel it inherited.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/fork/processes.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "worker/worker.h"

struct mproc__child {
    pid_t pid;
    int reaped;
    int exitcode;
};

int mproc__fork_proc_start(const mproc_task *target, const void *arg, size_t len,
                           const char *name, mproc__child **out, long *pid) {
    *out = NULL;
    *pid = 0;
    mproc__child *c = calloc(1, sizeof *c);
    if (!c) return mproc__error(MPROC_ENOMEM, "no memory for a process");
    pid_t p = mproc__fork(-1);
    if (p == 0) {
        /* c is left to the exit, not freed: free() after fork in a threaded program can hang
         * on an allocator lock another thread held at the fork (AddressSanitizer's does). */
        mproc__fork_child_signals();
        mproc__set_identity(name, -1);
        int code = mproc__process_main(target, arg, len, name);
        fflush(NULL);
        _exit(code);
    }
    if (p < 0) {
        free(c);
        return MPROC_ESYS;
    }
    c->pid = p;
    *out = c;
    *pid = (long)p;
    return 0;
}

int mproc__fork_proc_wait(mproc__child *c, double timeout, int *exitcode) {
    if (!c->reaped) {
        int status;
        int rc = mproc__wait_child(c->pid, timeout, &status);
        if (rc < 0) return rc;
        c->reaped = 1;
        c->exitcode = mproc__exitcode(status);
    }
    *exitcode = c->exitcode;
    return 0;
}

int mproc__fork_proc_signal(mproc__child *c, int signo) {
    if (c->reaped) return 0; /* already gone: as Python, nothing to do */
    if (kill(c->pid, signo) < 0 && errno != ESRCH)
        return mproc__error(MPROC_ESYS, "kill(%ld, %d): %s", (long)c->pid, signo, strerror(errno));
    return 0;
}

void mproc__fork_proc_free(mproc__child *c) { free(c); }
