/* processes.h - the fork backend's Process operations (see backend.h proc_*). */
#ifndef MPROC_FORK_PROCESS_H
#define MPROC_FORK_PROCESS_H

#include "backend.h"

int mproc__fork_proc_start(const mproc_task *target, const void *arg, size_t len,
                           const char *name, mproc__child **out, long *pid);
int mproc__fork_proc_wait(mproc__child *c, double timeout, int *exitcode);
int mproc__fork_proc_signal(mproc__child *c, int signo);
void mproc__fork_proc_free(mproc__child *c);

#endif /* MPROC_FORK_PROCESS_H */
