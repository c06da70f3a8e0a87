/* proc_info.h - what the MPI tests read about another process from /proc: its parent, its CPU
 * time, its thread count, and whether it runs our program. The tests find a worker rank as the
 * grandparent of the executor a task runs in (the executor's parent is the rank's fork server),
 * and check it is one before they measure or stop it. Linux only, like the tests that use it.
 */
#ifndef MPROC_TESTS_PROC_INFO_H
#define MPROC_TESTS_PROC_INFO_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Fields of /proc/PID/stat after the name: its parent, and its utime + stime in clock ticks.
 * 0, or -1 when it cannot be read. */
static inline int read_stat(long pid, long *ppid, long *ticks) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    long utime, stime;
    if (!p || sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", ppid, &utime, &stime) != 3) return -1;
    *ticks = utime + stime;
    return 0;
}

static inline long cpu_ticks(long pid) {
    long ppid, ticks;
    return read_stat(pid, &ppid, &ticks) < 0 ? -1 : ticks;
}

static inline long parent_of(long pid) {
    long ppid, ticks;
    return read_stat(pid, &ppid, &ticks) < 0 ? -1 : ppid;
}

static inline int threads_of(long pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    int t = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &t) == 1) break;
    fclose(f);
    return t;
}

/* Whether pid runs the same program as this process. */
static inline int same_program(long pid) {
    char path[64], theirs[4096], ours[4096];
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    ssize_t a = readlink(path, theirs, sizeof theirs - 1), b = readlink("/proc/self/exe", ours, sizeof ours - 1);
    if (a <= 0 || b <= 0) return 0;
    theirs[a] = ours[b] = 0;
    return strcmp(theirs, ours) == 0;
}

#endif
