/* rank_pid_task.h - a task that returns the pid of the worker rank it runs on (its executor's
 * parent's parent; test_support.h), for MPI tests that watch a rank from the master. Include
 * after "mproc.h" and "test_support.h", in one file of a program (it defines the task).
 */
#ifndef MPROC_TESTS_RANK_PID_TASK_H
#define MPROC_TESTS_RANK_PID_TASK_H

static long my_rank_pid(long unused) {
    (void)unused;
    return mproc_test_my_rank();
}
MPROC_TASK_VALUE(my_rank_pid, long, long);

#endif /* MPROC_TESTS_RANK_PID_TASK_H */
