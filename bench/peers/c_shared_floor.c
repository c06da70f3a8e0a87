/* c_shared_floor.c - the hand-written floors for bench/shared.sh, the best a C program gets
 * here without a library:
 *   queue N   a forked child writes N longs into a pipe, one write() per item (each item is
 *             sent when it is made, as a queue's put), the parent reads them in bulk (items/s)
 *   qrtt N    N round trips of a long over two pipes (us per trip)
 *   lock N    a process-shared pthread mutex in a shared mapping, uncontended (ns per pair)
 *   lockc N   the parent and a forked child each make N lock+increment+unlock (ns per pair)
 *   rlock N, rlockc N   the same with a robust error-checking mutex (what survives a holder's
 *             death and refuses a double lock, as mproc's Lock does)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void result(const char *w, double v, const char *unit, int ok, long n) {
    printf("RESULT peer=c_floor workload=%s value=%.6g unit=%s check=%s n=%ld\n", w, v, unit, ok ? "ok" : "BAD", n);
}

static int readall(int fd, void *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *w = argc > 1 ? argv[1] : "queue";
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    int ok = 1;
    if (!strcmp(w, "queue")) {
        int p[2];
        if (pipe(p)) return 1;
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        pid_t c = fork();
        if (c == 0) {
            close(p[0]);
            for (long i = 0; i < n; i++)
                if (write(p[1], &i, sizeof i) != sizeof i) _exit(1);
            _exit(0);
        }
        close(p[1]);
        static long buf[8192];
        long next = 0;
        double t0 = 0;
        while (next < n) {
            ssize_t r = read(p[0], buf, sizeof buf);
            if (r <= 0) break;
            if (!t0) t0 = now(); /* from the first item, as the others */
            for (long k = 0; k < r / (long)sizeof(long); k++) ok &= buf[k] == next++;
        }
        double t = now() - t0;
        int st;
        waitpid(c, &st, 0);
        result(w, (double)(n - 1) / t, "items/s", ok && next == n, n);
    } else if (!strcmp(w, "qrtt")) {
        int to[2], from[2];
        if (pipe(to) || pipe(from)) return 1;
        pid_t c = fork();
        if (c == 0) {
            long v;
            for (long i = 0; i < n; i++) {
                if (readall(to[0], &v, sizeof v) || write(from[1], &v, sizeof v) != sizeof v) _exit(1);
            }
            _exit(0);
        }
        long v = 0;
        if (write(to[1], &v, sizeof v) != sizeof v || readall(from[0], &v, sizeof v)) return 1;
        double t0 = now();
        for (long i = 1; i < n; i++) {
            if (write(to[1], &i, sizeof i) != sizeof i || readall(from[0], &v, sizeof v)) return 1;
            ok &= v == i;
        }
        double t = now() - t0;
        int st;
        waitpid(c, &st, 0);
        result(w, t / (double)(n - 1) * 1e6, "us", ok, n);
    } else if (!strcmp(w, "lock") || !strcmp(w, "lockc") || !strcmp(w, "rlock") || !strcmp(w, "rlockc")) {
        struct shared {
            pthread_mutex_t m;
            long count;
            volatile int go;
        } *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        if (w[0] == 'r') {
            pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
            pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
        }
        pthread_mutex_init(&s->m, &a);
        int contended = w[strlen(w) - 1] == 'c';
        pid_t c = -1;
        if (contended && (c = fork()) == 0) {
            while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE)) usleep(100);
            for (long i = 0; i < n; i++) {
                pthread_mutex_lock(&s->m);
                s->count++;
                pthread_mutex_unlock(&s->m);
            }
            _exit(0);
        }
        if (contended) usleep(200000);
        double t0 = now();
        __atomic_store_n(&s->go, 1, __ATOMIC_RELEASE);
        for (long i = 0; i < n; i++) {
            pthread_mutex_lock(&s->m);
            s->count++;
            pthread_mutex_unlock(&s->m);
        }
        if (contended) waitpid(c, NULL, 0);
        double t = now() - t0;
        long pairs = contended ? 2 * n : n;
        result(w, t / (double)pairs * 1e9, "ns", s->count == pairs, n);
    } else {
        fprintf(stderr, "usage: c_shared_floor queue|qrtt|lock|lockc [N]\n");
        return 2;
    }
    return 0;
}
