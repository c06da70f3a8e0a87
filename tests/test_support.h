/* test_support.h - what several cmocka test programs share: a main() that starts mproc before
 * running the group (so worker ranks under mpirun never reach cmocka), and a check that a
 * process no longer runs. Include after <cmocka.h> and "mproc.h".
 */
#ifndef MPROC_TEST_SUPPORT_H
#define MPROC_TEST_SUPPORT_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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

/* main(): mproc_init, run the CMUnitTest array `tests`, mproc_finalize. */
#define MPROC_TEST_MAIN(tests)                                                                   \
    int main(int argc, char **argv) {                                                            \
        int rc_ = mproc_init(&argc, &argv);                                                      \
        if (rc_ < 0) {                                                                           \
            fprintf(stderr, "mproc_init: %s\n", mproc_last_error());                             \
            return 1;                                                                            \
        }                                                                                        \
        rc_ = cmocka_run_group_tests(tests, NULL, NULL);                                         \
        mproc_finalize();                                                                        \
        return rc_;                                                                              \
    }

#endif /* MPROC_TEST_SUPPORT_H */
