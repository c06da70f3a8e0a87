/* spawn.h - forking children safely from a threaded master (the fork backend's workers and
 * Processes, and an MPI rank's Process children): stdio flushed first, the
 * master's channel ends closed in every child so a worker's death is seen as EOF, and exit
 * statuses described the way Python reports them.
 */
#ifndef MPROC_FORK_SPAWN_H
#define MPROC_FORK_SPAWN_H

#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

/* Registers / forgets a master-side descriptor that children must close. */
void mproc__fork_track_fd(int fd);
void mproc__fork_untrack_fd(int fd);

/* fork() with stdio flushed and the tracked descriptors closed in the child (except keep_fd).
 * Returns as fork() does; on failure sets mproc_last_error and returns -1. */
pid_t mproc__fork(int keep_fd);
/* As mproc__fork, keeping two tracked descriptors open in the child (-1: none). */
pid_t mproc__fork_keeping(int keep_a, int keep_b);
/* memfd_create (close-on-exec) tracked from the moment it exists, as mproc__fork_socketpair's
 * ends: the memory behind it is one child's to share, no other child may hold it. The caller
 * untracks it when it closes it. The descriptor, or MPROC_ESYS. */
int mproc__fork_memfd(const char *name);
/* In a new child, first thing: drops the stdout/stderr bytes it inherited unwritten. They are
 * the parent's to write; another parent thread may have buffered them after the flush that
 * precedes fork, and a child that flushed them would print them a second time. */
void mproc__fork_child_stdio(void);
/* In a new child: crash signals and SIGTERM back to their default actions and no signal
 * blocked, so the child dies of its own crash (the master sees the real signal) and
 * terminate/kill reach it, whatever handlers or mask the forking thread had. */
void mproc__fork_child_signals(void);
/* A gate for a forked child that must not run its task before its parent's word: an MPI
 * Process, which starts only once the master knows it was started, so that a rank lost while
 * starting it is known not to have run it and it can start elsewhere without running twice.
 * The parent blocks the gate's signal around fork (mproc__gate_block, then mproc__gate_restore
 * with what it returned); the child calls mproc__gate_wait before anything else touches its
 * signal mask, and the word is kill(child, mproc__gate_signal()). A real-time signal: sent
 * early it waits queued, and it never merges with a signal of the program's own. */
int mproc__gate_signal(void);
void mproc__gate_block(sigset_t *old);
void mproc__gate_restore(const sigset_t *old);
void mproc__gate_wait(void);
/* socketpair(AF_UNIX, SOCK_STREAM) with both ends tracked (see mproc__fork_track_fd) from the
 * moment they exist, so no child forked meanwhile by another thread keeps either open. The
 * caller untracks an end when it closes it. 0, or MPROC_ESYS. */
int mproc__fork_socketpair(int sv[2]);
/* The crash signals: the ones a task's own bug ends its process with. */
extern const int mproc__crash_signals[5];

/* Python's exitcode for a wait status: exit status, or minus the signal number. */
int mproc__exitcode(int status);
/* "exited with status 3" / "killed by signal 11 (Segmentation fault)". */
void mproc__describe_exit(int status, char *buf, size_t len);
/* describe_exit for a worker (fork worker, MPI executor): channel_lost (its taken slot's word,
 * socket_worker.h) says it left because its channel was gone, whatever its status. */
void mproc__describe_worker_exit(int status, int channel_lost, char *buf, size_t len);

/* waitpid that retries on EINTR; returns waitpid's result. */
pid_t mproc__waitpid(pid_t pid, int *status, int flags);
/* Waits up to timeout seconds (< 0 forever) for pid to end without busy-waiting. Returns 0 and
 * *status, MPROC_ETIMEDOUT, or MPROC_ESYS. */
int mproc__wait_child(pid_t pid, double timeout, int *status);

#endif /* MPROC_FORK_SPAWN_H */
