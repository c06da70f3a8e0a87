/* lifecycle.h - what mproc_finalize() (init.c, the top) calls below it to close what the
 * program left open: every live pool is terminated and freed (pool/lifecycle.c), every started
 * process is killed and reaped (process.c).
 */
#ifndef MPROC_LIFECYCLE_H
#define MPROC_LIFECYCLE_H

void mproc__pools_shutdown(void);
/* 1 when this thread runs a pool's loop now (it is in one of that pool's callbacks). */
int mproc__in_pool_loop(void);
void mproc__processes_shutdown(void);

#endif /* MPROC_LIFECYCLE_H */
