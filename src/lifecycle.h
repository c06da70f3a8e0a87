/* lifecycle.h - hooks that let mproc_finalize() close what the program left open: every live
 * pool is terminated and freed, every started process is killed and reaped.
 */
#ifndef MPROC_LIFECYCLE_H
#define MPROC_LIFECYCLE_H

void mproc__pools_shutdown(void);
void mproc__processes_shutdown(void);

#endif /* MPROC_LIFECYCLE_H */
