/* test_support.h - what several test programs share: a main() that starts mproc before
 * running a cmocka group (so worker ranks under mpirun never reach cmocka), a check that a
 * process no longer runs, and for the stand-alone MPI programs a CHECK that fails main, a
 * monotonic clock and a task's way to kill its own rank. Include after "mproc.h" (and
 * <cmocka.h> where used).
 */
#ifndef MPROC_TEST_SUPPORT_H
#define MPROC_TEST_SUPPORT_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The fields of /proc/<pid>/stat after the command name (state first), read into buf; NULL
 * when the process is gone. */
static inline const char *mproc_test_stat(long pid, char *buf, size_t len) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] && rp[2] ? rp + 2 : NULL;
}

/* The parent pid of pid, or -1 when it is gone. */
static inline long mproc_test_parent_of(long pid) {
    char buf[512];
    const char *st = mproc_test_stat(pid, buf, sizeof buf);
    long ppid = -1;
    if (st) sscanf(st, "%*c %ld", &ppid);
    return ppid;
}

/* 1 when pid is no longer running: gone, or a zombie reparented to init awaiting its reaping. */
static inline int mproc_test_gone(long pid) {
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) return 1;
    char buf[512];
    const char *st = mproc_test_stat(pid, buf, sizeof buf);
    return !st || st[0] == 'Z';
}

/* The pid of the worker rank whose executor (or Process) runs this task: executor -> the rank's
 * fork server -> the rank. */
static inline long mproc_test_my_rank(void) {
    return mproc_test_parent_of(mproc_test_parent_of((long)getpid()));
}

/* SIGKILLs the rank this task runs on and waits to die with it (under --enable-recovery). */
static inline void mproc_test_kill_my_rank(void) {
    long rank = mproc_test_my_rank();
    if (rank > 1) kill((pid_t)rank, SIGKILL);
    pause();
}

/* Seconds on the monotonic clock. */
static inline double mproc_test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In a stand-alone test's step function (returning int): on a false cond, say FAIL, the
 * message and mproc's last error on stderr, and return 1. */
#define MPROC_TEST_CHECK(cond, ...)                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                               \
            fprintf(stderr, " (last error: %s)\n", mproc_last_error());                          \
            fflush(NULL);                                                                        \
            return 1;                                                                            \
        }                                                                                        \
    } while (0)

/* main(): mproc_init, run the CMUnitTest array `tests`, mproc_finalize. */
#define MPROC_TEST_MAIN(tests)                                                                   \
    int main(int argc, char **argv) {                                                            \
        int rc_ = mproc_init(&argc, &argv);                                                      \
        if (rc_ < 0) {                                                                           \
            fprintf(stderr, "%s\n", mproc_last_error());                             \
            return 1;                                                                            \
        }                                                                                        \
        if (getenv("MPROC_TEST_FILTER")) /* one test (or a glob) while debugging */            \
            cmocka_set_test_filter(getenv("MPROC_TEST_FILTER"));                                 \
        rc_ = cmocka_run_group_tests(tests, NULL, NULL);                                         \
        mproc_finalize();                                                                        \
        return rc_;                                                                              \
    }

#endif /* MPROC_TEST_SUPPORT_H */
