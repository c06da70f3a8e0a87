/* fork_spawn.h - forking children safely from a threaded master: stdio flushed first, the
 * master's channel ends closed in every child so a worker's death is seen as EOF, and exit
 * statuses described the way Python reports them.
 */
#ifndef MPROC_FORK_SPAWN_H
#define MPROC_FORK_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* Registers / forgets a master-side descriptor that children must close. */
void mproc__fork_track_fd(int fd);
void mproc__fork_untrack_fd(int fd);

/* fork() with stdio flushed and the tracked descriptors closed in the child (except keep_fd).
 * Returns as fork() does; on failure sets mproc_last_error and returns -1. */
pid_t mproc__fork(int keep_fd);

/* Python's exitcode for a wait status: exit status, or minus the signal number. */
int mproc__exitcode(int status);
/* "exited with status 3" / "killed by signal 11 (Segmentation fault)". */
void mproc__describe_exit(int status, char *buf, size_t len);

/* waitpid that retries on EINTR; returns waitpid's result. */
pid_t mproc__waitpid(pid_t pid, int *status, int flags);
/* Waits up to timeout seconds (< 0 forever) for pid to end without busy-waiting. Returns 0 and
 * *status, MPROC_ETIMEDOUT, or MPROC_ESYS. */
int mproc__wait_child(pid_t pid, double timeout, int *status);

#endif /* MPROC_FORK_SPAWN_H */
