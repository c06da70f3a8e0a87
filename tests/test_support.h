/* test_support.h - what several test programs share: a main() that starts mproc before
 * running a cmocka group (so worker ranks under mpirun never reach cmocka), a check that a
 * process no longer runs, and for the stand-alone MPI programs a CHECK that fails main (or
 * REQUIRE, that exits), a monotonic clock, a task's way to find or kill its own rank, and what
 * /proc says of a rank (its CPU time, whether it is one). Include after "mproc.h" (and
 * <cmocka.h> where used).
 */
#ifndef MPROC_TEST_SUPPORT_H
#define MPROC_TEST_SUPPORT_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* pid's utime + stime in clock ticks, or -1 when it is gone. */
static inline long mproc_test_cpu_ticks(long pid) {
    char buf[1024];
    const char *st = mproc_test_stat(pid, buf, sizeof buf);
    long utime, stime;
    if (!st || sscanf(st, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2) return -1;
    return utime + stime;
}

/* 1 when pid runs this program with more than one thread: a worker rank found as an executor's
 * grandparent, not Open MPI's daemon (were executors forked by the rank itself). */
static inline int mproc_test_is_worker_rank(long pid) {
    char path[64], theirs[4096], ours[4096], line[256];
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    ssize_t a = readlink(path, theirs, sizeof theirs - 1), b = readlink("/proc/self/exe", ours, sizeof ours - 1);
    if (a <= 0 || b <= 0) return 0;
    theirs[a] = ours[b] = 0;
    if (strcmp(theirs, ours) != 0) return 0;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    int threads = -1;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &threads) == 1) break;
    fclose(f);
    return threads > 1;
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

/* The same anywhere (a helper returning void too): on a false cond, say FAIL and the message
 * on stderr, and exit(1). */
#define MPROC_TEST_REQUIRE(cond, ...)                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                                 \
            exit(1);                                                                             \
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
