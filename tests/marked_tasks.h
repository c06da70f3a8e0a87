/* marked_tasks.h - a task that leaves a file named after its item in a directory as it starts,
 * then sleeps, and a count of those files: how the terminate tests (test_faults,
 * mpi_terminate_starting) see whether any task started after a pool was stopped. Include after
 * "mproc.h", in one file of a program (it defines the task).
 */
#ifndef MPROC_TESTS_MARKED_TASKS_H
#define MPROC_TESTS_MARKED_TASKS_H

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

typedef struct marked_job {
    char dir[64];
    long item, ms;
} marked_job;

static long mark_then_sleep(marked_job job) {
    char path[96];
    snprintf(path, sizeof path, "%s/%ld", job.dir, job.item);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd >= 0) close(fd);
    usleep((useconds_t)job.ms * 1000);
    return job.item;
}
MPROC_TASK_VALUE(mark_then_sleep, marked_job, long);

/* How many of items 0..n-1 have left their file in dir. */
static inline int files_in(const char *dir, int n) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s/%d", dir, i);
        count += access(path, F_OK) == 0;
    }
    return count;
}

#endif /* MPROC_TESTS_MARKED_TASKS_H */
