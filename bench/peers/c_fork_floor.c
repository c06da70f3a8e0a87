/*
 * c_fork_floor.c - benchmark peer: the hand-written fork "floor".
 *
 * What plain, unclever C gets on one machine with no library: the master
 * forks 2 workers, talks to each over two pipes (one each way) enlarged to 1 MiB
 * with F_SETPIPE_SZ (so a whole chunk and its reply fit, and a pipe is cheaper
 * than a socket per byte and per wake-up) with a 16-byte header + payload protocol, keeps every worker 2 requests deep (refills on each reply)
 * and waits with poll().  The master's sockets are non-blocking (a request it
 * cannot write yet waits for POLLOUT), so a big request and a big reply can
 * never block each other.  Map work is batched as chunks of longs per message;
 * results are read straight into the output array.  spawn is bare
 * fork() + _exit(0) + waitpid().  mproc's fork backend is measured against it
 * (see bench/README.md).  Prints exactly one line on stdout:
 *
 *   RESULT peer=c_fork_floor workload=<w> param=<p|-> value=<x> unit=<u> serial=<s|-> check=<ok|BAD> n=<count>
 *
 * Usage:
 *   c_fork_floor apply [N=200000]      N tasks x*x, 1 long per message        -> tasks/s
 *   c_fork_floor map   [N=10000000]    x*x over N longs, 10,000 per message    -> items/s
 *   c_fork_floor spawn [N=1000]        fork()+_exit(0)+waitpid(), N times      -> us/proc
 *   c_fork_floor bytes [NBLOBS=16]     16 blobs of 8 MiB, task returns length  -> MB/s (1e6 B)
 *   c_fork_floor gran T CHUNK [NTASKS] busy tasks of T us (iterations calibrated in the
 *                                      master), ~0.5 s serial; CHUNK = 1 or auto
 *                                      (auto = ceil(n / (4 * workers)), Python Pool's rule)
 *                                      or static: no messages at all, each of the 2 children
 *                                      spins its half of the tasks and times itself; value =
 *                                      the wall time a perfectly balanced pool would need at
 *                                      the speeds the two cores showed (the machine's ceiling)
 *                                      -> value = parallel wall s, serial = same tasks in-process
 *                                      (mean of a run before and one after the parallel run)
 * Timings exclude worker start-up and input construction.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define _GNU_SOURCE     /* F_SETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PEER "c_fork_floor"
#define NW 2      /* workers */
#define DEPTH 2   /* requests outstanding per worker */
#define BLOB (8u << 20)

enum { OP_SQ = 1, OP_SPIN = 2, OP_LEN = 3, OP_STOP = 4 };

struct hdr {
    int32_t op;
    int32_t pad;
    int64_t len; /* payload bytes */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* The calibrated busy loop; returns its argument so results can be checked. */
__attribute__((noinline)) static long spin(long n)
{
    volatile long s = 0;
    for (long i = 0; i < n; i++)
        s += i;
    return n;
}

static double calibrate(void) /* iterations per microsecond */
{
    long n = 1000000;
    double dt;
    for (;;) {
        double t = now();
        spin(n);
        dt = now() - t;
        if (dt > 0.05)
            break;
        n *= 2;
    }
    for (int i = 0; i < 5; i++) {
        double t = now();
        spin(n);
        double d = now() - t;
        if (d < dt)
            dt = d;
    }
    return (double)n / (dt * 1e6);
}

static void readn(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* rest of a reply still on its way: the worker is writing it */
            struct pollfd pf = {fd, POLLIN, 0};
            poll(&pf, 1, -1);
            continue;
        }
        if (r <= 0) {
            if (r == 0) {
                fprintf(stderr, PEER ": unexpected EOF\n");
                exit(1);
            }
            die("read");
        }
        p += r;
        n -= (size_t)r;
    }
}

/*
 * One message = 16-byte header + payload, written with writev.  *off counts the
 * bytes already written.  With block set, waits until all is written; otherwise
 * returns 0 when the socket is full (the master's fds are non-blocking so it
 * never sits in a write while its worker sits in a write of a big reply).
 */
static int write_msg(int fd, const struct hdr *h, const void *payload, size_t *off, int block)
{
    size_t len = (size_t)h->len, total = sizeof *h + len;
    while (*off < total) {
        struct iovec iov[2];
        int cnt = 0;
        if (*off < sizeof *h)
            iov[cnt++] = (struct iovec){(char *)h + *off, sizeof *h - *off};
        if (len) {
            size_t po = *off > sizeof *h ? *off - sizeof *h : 0;
            iov[cnt++] = (struct iovec){(char *)payload + po, len - po};
        }
        ssize_t r = writev(fd, iov, cnt);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!block)
                    return 0;
                struct pollfd pf = {fd, POLLOUT, 0};
                poll(&pf, 1, -1);
                continue;
            }
            die("writev");
        }
        *off += (size_t)r;
    }
    return 1;
}

static void send_msg(int fd, int op, const void *payload, size_t len)
{
    struct hdr h = {op, 0, (int64_t)len};
    size_t off = 0;
    write_msg(fd, &h, payload, &off, 1);
}

static void worker(int fd, int wfd)
{
    size_t cap = 0;
    char *in = NULL;
    long *out = NULL;
    for (;;) {
        struct hdr h;
        readn(fd, &h, sizeof h);
        if (h.op == OP_STOP)
            _exit(0);
        if ((size_t)h.len > cap) {
            cap = (size_t)h.len;
            in = realloc(in, cap);
            out = realloc(out, cap);
            if (!in || !out)
                die("realloc");
        }
        readn(fd, in, (size_t)h.len);
        if (h.op == OP_LEN) {
            long n = (long)h.len;
            send_msg(wfd, OP_LEN, &n, sizeof n);
            continue;
        }
        const long *x = (const long *)(void *)in;
        size_t n = (size_t)h.len / sizeof(long);
        if (h.op == OP_SQ)
            for (size_t i = 0; i < n; i++)
                out[i] = x[i] * x[i];
        else
            for (size_t i = 0; i < n; i++)
                out[i] = spin(x[i]);
        send_msg(wfd, h.op, out, n * sizeof(long));
    }
}

/* Pipes, except for bytes: 8 MiB blobs move about 2x faster over a socketpair (measured
 * 1.4-2.1 GB/s against 0.8-1.2), the tasks and chunks 1.2-1.7x faster over pipes. */
static int use_pipes = 1;
static int fds[NW];  /* the master reads worker w's replies here */
static int wfds[NW]; /* and writes its requests here */
static pid_t pids[NW];

static void start_workers(void)
{
    for (int w = 0; w < NW; w++) {
        int down[2], up[2];
        if (use_pipes) {
            if (pipe(down) < 0 || pipe(up) < 0)
                die("pipe");
            /* Best effort: the system's cap (fs.pipe-max-size, 1 MiB by default) may refuse. */
            fcntl(down[1], F_SETPIPE_SZ, 1 << 20);
            fcntl(up[1], F_SETPIPE_SZ, 1 << 20);
        } else {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
                die("socketpair");
            down[0] = up[1] = sv[1]; /* the worker's end, both ways */
            down[1] = sv[0];
            up[0] = dup(sv[0]);
        }
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p == 0) {
            close(down[1]);
            close(up[0]);
            for (int k = 0; k < w; k++) {
                close(fds[k]);
                close(wfds[k]);
            }
            worker(down[0], up[1]);
        }
        close(down[0]);
        if (up[1] != down[0])
            close(up[1]);
        fcntl(down[1], F_SETFL, fcntl(down[1], F_GETFL) | O_NONBLOCK);
        fcntl(up[0], F_SETFL, fcntl(up[0], F_GETFL) | O_NONBLOCK);
        fds[w] = up[0];
        wfds[w] = down[1];
        pids[w] = p;
    }
}

static int stop_workers(void)
{
    int ok = 1;
    for (int w = 0; w < NW; w++)
        send_msg(wfds[w], OP_STOP, NULL, 0);
    for (int w = 0; w < NW; w++) {
        int st;
        if (waitpid(pids[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
        close(fds[w]);
        close(wfds[w]);
    }
    return ok;
}

/*
 * A run is njobs jobs.  For OP_SQ / OP_SPIN job j covers items
 * [j*chunk, min(n, (j+1)*chunk)) of in[] -> out[]; for OP_LEN job j is blob j
 * and its reply (one long) goes to out[j].
 */
struct run {
    int op;
    size_t n, chunk, njobs;
    const long *in;
    long *out;
    char *const *blobs;
    size_t bloblen;
};

/* Per-worker queue of requests not yet fully written (at most DEPTH). */
struct pending {
    struct hdr h;
    const void *payload;
    size_t off;
};
static struct pending sq[NW][DEPTH];
static int sqh[NW], sqn[NW];

static void flush(int w)
{
    while (sqn[w]) {
        struct pending *m = &sq[w][sqh[w]];
        if (!write_msg(wfds[w], &m->h, m->payload, &m->off, 0))
            return;
        sqh[w] = (sqh[w] + 1) % DEPTH;
        sqn[w]--;
    }
}

static void send_job(const struct run *r, int w, size_t j)
{
    struct pending *m = &sq[w][(sqh[w] + sqn[w]++) % DEPTH];
    if (r->op == OP_LEN) {
        *m = (struct pending){{OP_LEN, 0, (int64_t)r->bloblen}, r->blobs[j], 0};
    } else {
        size_t lo = j * r->chunk, hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
        *m = (struct pending){{r->op, 0, (int64_t)((hi - lo) * sizeof(long))}, r->in + lo, 0};
    }
    flush(w);
}

static void recv_job(const struct run *r, int w, size_t j)
{
    struct hdr h;
    readn(fds[w], &h, sizeof h);
    void *dst = r->op == OP_LEN ? (void *)&r->out[j] : (void *)(r->out + j * r->chunk);
    size_t want = r->op == OP_LEN ? sizeof(long)
                                  : ((j * r->chunk + r->chunk < r->n ? r->chunk
                                                                     : r->n - j * r->chunk) *
                                     sizeof(long));
    if ((size_t)h.len != want) {
        fprintf(stderr, PEER ": bad reply length\n");
        exit(1);
    }
    readn(fds[w], dst, want);
}

static void run_jobs(const struct run *r)
{
    size_t q[NW][DEPTH]; /* per-worker FIFO of outstanding job ids */
    int qh[NW] = {0}, qn[NW] = {0};
    size_t next = 0, done = 0;
    for (int d = 0; d < DEPTH; d++)
        for (int w = 0; w < NW && next < r->njobs; w++) {
            send_job(r, w, next);
            q[w][(qh[w] + qn[w]++) % DEPTH] = next++;
        }
    struct pollfd pfd[2 * NW]; /* replies, then room for requests not yet written */
    while (done < r->njobs) {
        for (int w = 0; w < NW; w++) {
            pfd[w] = (struct pollfd){fds[w], POLLIN, 0};
            pfd[NW + w] = (struct pollfd){sqn[w] ? wfds[w] : -1, POLLOUT, 0};
        }
        if (poll(pfd, 2 * NW, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (int w = 0; w < NW; w++) {
            if (pfd[NW + w].revents & POLLOUT)
                flush(w);
            if (!(pfd[w].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (!qn[w]) {
                fprintf(stderr, PEER ": unexpected data from worker\n");
                exit(1);
            }
            recv_job(r, w, q[w][qh[w]]);
            qh[w] = (qh[w] + 1) % DEPTH;
            qn[w]--;
            done++;
            if (next < r->njobs) {
                send_job(r, w, next);
                q[w][(qh[w] + qn[w]++) % DEPTH] = next++;
            }
        }
    }
}

/* FLOOR_SPIN=1 in the environment: the rtt's spinning variant, reported as its own peer. */
static const char *peer_name = PEER;

static void result(const char *w, const char *param, double value, const char *unit,
                   double serial, int ok, size_t n, const char *extra)
{
    char ser[32] = "-";
    if (serial >= 0)
        snprintf(ser, sizeof ser, "%.6f", serial);
    printf("RESULT peer=%s workload=%s param=%s value=%.*f unit=%s serial=%s check=%s n=%zu%s\n",
           peer_name, w, param, strcmp(unit, "s") ? 2 : 6, value, unit, ser, ok ? "ok" : "BAD", n,
           extra ? extra : "");
    fflush(stdout);
}

static int check_squares(const long *out, size_t n, char *extra, size_t cap)
{
    unsigned __int128 s = 0, want = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        s += (unsigned long)out[i];
        if (out[i] != (long)i * (long)i)
            ok = 0;
    }
    want = (unsigned __int128)(n - 1) * n * (2 * n - 1) / 6; /* n*(n-1) is even, /6 exact */
    /* print the 128-bit sum in decimal */
    char dig[48];
    int k = 0;
    unsigned __int128 v = s;
    do {
        dig[k++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    char *p = extra;
    p += snprintf(p, cap, " sum=");
    while (k)
        *p++ = dig[--k];
    *p = 0;
    return ok && s == want;
}

static size_t arg(int argc, char **argv, int i, size_t dflt)
{
    return argc > i ? (size_t)strtoull(argv[i], NULL, 10) : dflt;
}

/* gran static: NW children spin [k*chunk, (k+1)*chunk) each with no messages and time
 * themselves. Returns 1 if all results checked; *ideal = n / (sum of the children's task rates),
 * the wall time of a perfectly balanced pool on these cores (a dynamic pool gives a faster core
 * more tasks, so the slowest child alone would understate it); *wall = the static split's. */
static int spin_halves(const long *in, size_t n, size_t chunk, long iters, double *ideal, double *wall)
{
    double *took = mmap(NULL, NW * sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (took == MAP_FAILED)
        die("mmap");
    pid_t kids[NW];
    double t = now();
    for (int k = 0; k < NW; k++) {
        kids[k] = fork();
        if (kids[k] < 0)
            die("fork");
        if (kids[k] == 0) {
            int ok = 1;
            double t0 = now();
            for (size_t i = (size_t)k * chunk; i < n && i < (size_t)(k + 1) * chunk; i++)
                ok = ok && spin(in[i]) == iters;
            took[k] = now() - t0;
            _exit(ok ? 0 : 1);
        }
    }
    int ok = 1;
    for (int k = 0; k < NW; k++) {
        int st;
        while (waitpid(kids[k], &st, 0) < 0)
            if (errno != EINTR)
                die("waitpid");
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    *wall = now() - t;
    double rate = 0;
    for (int k = 0; k < NW; k++) {
        size_t lo = (size_t)k * chunk, hi = lo + chunk < n ? lo + chunk : n;
        if (hi > lo && took[k] > 0)
            rate += (double)(hi - lo) / took[k];
    }
    *ideal = rate > 0 ? (double)n / rate : *wall;
    munmap(took, NW * sizeof(double));
    return ok;
}

/* rtt: one small message; with spin_reads (a non-blocking fd) polls up to 50 us, yielding,
 * before it blocks in poll(). */
static int spin_reads;
static ssize_t read_msg(int fd, void *buf, size_t len) {
    if (!spin_reads)
        return read(fd, buf, len);
    double until = now() + 50e-6;
    for (;;) {
        ssize_t r = read(fd, buf, len);
        if (r >= 0 || (errno != EAGAIN && errno != EINTR))
            return r;
        if (now() < until) {
            sched_yield();
            continue;
        }
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, -1);
        until = now() + 50e-6;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s apply|map|rtt|spawn|bytes [N] | gran T 1|auto|static [NTASKS]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *w = argv[1];
    char extra[192] = "";

    if (!strcmp(w, "spawn")) {
        size_t n = arg(argc, argv, 2, 1000);
        int ok = 1;
        double t = now();
        for (size_t i = 0; i < n; i++) {
            pid_t p = fork();
            if (p < 0)
                die("fork");
            if (p == 0)
                _exit(0);
            int st;
            if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
                ok = 0;
        }
        double dt = now() - t;
        result(w, "-", dt / (double)n * 1e6, "us/proc", -1, ok, n, NULL);
        return 0;
    }

    if (!strcmp(w, "rtt")) {
        /* The best one-at-a-time round trip a hand-written program gets: one forked worker,
         * a pipe each way, blocking read()/write() of the argument and the answer. With
         * "spin" (`rtt N spin`) both ends look for the next message without sleeping for up
         * to 50 us first (non-blocking reads and sched_yield), as mproc's fork backend does:
         * the floor for that policy (bench/README.md). */
        size_t n = arg(argc, argv, 2, 20000);
        const char *fs = getenv("FLOOR_SPIN");
        int spin_env = fs && strcmp(fs, "0") && strcmp(fs, "");
        if (spin_env)
            peer_name = "c_fork_spin_floor";
        spin_reads = (argc > 3 && !strcmp(argv[3], "spin")) || spin_env;
        int to[2], from[2];
        if (pipe(to) < 0 || pipe(from) < 0)
            die("pipe");
        if (spin_reads && (fcntl(to[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(from[0], F_SETFL, O_NONBLOCK) < 0))
            die("fcntl");
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p == 0) {
            long x;
            close(to[1]); /* or its own copy keeps the pipe open: no EOF at the end */
            close(from[0]);
            while (read_msg(to[0], &x, sizeof x) == (ssize_t)sizeof x) {
                x *= x;
                if (write(from[1], &x, sizeof x) != (ssize_t)sizeof x)
                    _exit(1);
            }
            _exit(0);
        }
        close(to[0]);
        close(from[1]);
        long sum = 0, want = 0;
        double t = 0;
        for (size_t i = 0; i < n + 100; i++) {
            if (i == 100)
                t = now();
            long x = (long)(i % 1000), y = 0;
            if (write(to[1], &x, sizeof x) != (ssize_t)sizeof x)
                die("write");
            if (read_msg(from[0], &y, sizeof y) != (ssize_t)sizeof y)
                die("read");
            if (i >= 100)
                sum += y, want += x * x;
        }
        double dt = now() - t;
        close(to[1]);
        waitpid(p, NULL, 0);
        result(w, "-", dt / (double)n * 1e6, "us/call", -1, sum == want, n, NULL);
        return 0;
    }

    if (!strcmp(w, "apply") || !strcmp(w, "map")) {
        int apply = !strcmp(w, "apply");
        size_t n = arg(argc, argv, 2, apply ? 200000 : 10000000);
        /* Workers first, as a pool is made before its input: forked after the arrays are
         * touched, the master's every write into out[] would copy a page shared with them
         * (copy-on-write), which alone halved this floor. */
        start_workers();
        long *in = malloc(n * sizeof(long)), *out = malloc(n * sizeof(long));
        if (!in || !out)
            die("malloc");
        for (size_t i = 0; i < n; i++)
            in[i] = (long)i;
        memset(out, 0xff, n * sizeof(long)); /* fault the pages in, poison */
        size_t chunk = apply ? 1 : 10000;
        struct run r = {OP_SQ, n, chunk, (n + chunk - 1) / chunk, in, out, NULL, 0};
        double t = now();
        run_jobs(&r);
        double dt = now() - t;
        int ok = stop_workers();
        ok = check_squares(out, n, extra, sizeof extra) && ok;
        result(w, apply ? "-" : "chunk10000", (double)n / dt, apply ? "tasks/s" : "items/s", -1,
               ok, n, extra);
        free(in);
        free(out);
        return 0;
    }

    if (!strcmp(w, "bytes")) {
        use_pipes = 0;
        size_t nb = arg(argc, argv, 2, 16);
        char **blobs = malloc(nb * sizeof *blobs);
        long *out = calloc(nb, sizeof(long));
        if (!blobs || !out)
            die("malloc");
        for (size_t i = 0; i < nb; i++) {
            blobs[i] = malloc(BLOB);
            if (!blobs[i])
                die("malloc");
            memset(blobs[i], (int)(i & 0xff), BLOB);
        }
        struct run r = {OP_LEN, nb, 1, nb, NULL, out, blobs, BLOB};
        start_workers();
        double t = now();
        run_jobs(&r);
        double dt = now() - t;
        int ok = stop_workers();
        for (size_t i = 0; i < nb; i++)
            ok = ok && out[i] == (long)BLOB;
        result(w, "8MiB", (double)nb * BLOB / 1e6 / dt, "MB/s", -1, ok, nb, NULL);
        for (size_t i = 0; i < nb; i++)
            free(blobs[i]);
        free(blobs);
        free(out);
        return 0;
    }

    if (!strcmp(w, "gran") && argc > 3) {
        long T = atol(argv[2]);
        const char *cs = argv[3];
        if (T <= 0) {
            fprintf(stderr, "gran: T must be > 0\n");
            return 2;
        }
        double ipu = calibrate();
        long iters = lround((double)T * ipu);
        if (iters < 1)
            iters = 1;
        size_t n = arg(argc, argv, 4, (size_t)lround(0.5e6 / (double)T));
        if (n < 1)
            n = 1;
        int fixed = !strcmp(cs, "static");
        size_t chunk = !strcmp(cs, "auto") ? (n + 4 * NW - 1) / (4 * NW) : fixed ? (n + NW - 1) / NW : (size_t)atol(cs);
        if (chunk < 1)
            chunk = 1;
        long *in = malloc(n * sizeof(long)), *out = calloc(n, sizeof(long));
        if (!in || !out)
            die("malloc");
        for (size_t i = 0; i < n; i++)
            in[i] = iters;
        struct run r = {OP_SPIN, n, chunk, (n + chunk - 1) / chunk, in, out, NULL, 0};
        /* The serial reference is timed before and after the parallel run and averaged: this
         * machine's speed drifts, and the two bracket the parallel run in time. */
        double t = now();
        for (size_t i = 0; i < n; i++)
            out[i] = spin(in[i]);
        double ser_before = now() - t;
        int ok;
        double par, static_wall = 0;
        if (fixed) {
            ok = spin_halves(in, n, chunk, iters, &par, &static_wall);
        } else {
            memset(out, 0, n * sizeof(long));
            start_workers();
            t = now();
            run_jobs(&r);
            par = now() - t;
            ok = stop_workers();
            for (size_t i = 0; i < n; i++)
                ok = ok && out[i] == iters;
        }
        t = now();
        for (size_t i = 0; i < n; i++)
            out[i] = spin(in[i]);
        double ser_after = now() - t, ser = (ser_before + ser_after) / 2;
        char param[64];
        snprintf(param, sizeof param, "T%ld_c%s", T, cs);
        int k = snprintf(extra, sizeof extra, " iters=%ld chunk=%zu ser_before=%.6f ser_after=%.6f eff=%.3f",
                         iters, chunk, ser_before, ser_after, ser / (NW * par));
        if (fixed && k > 0 && (size_t)k < sizeof extra)
            snprintf(extra + k, sizeof extra - (size_t)k, " static_wall=%.6f static_eff=%.3f",
                     static_wall, ser / (NW * static_wall));
        result(w, param, par, "s", ser, ok, n, extra);
        free(in);
        free(out);
        return 0;
    }

    fprintf(stderr, "unknown workload %s\n", w);
    return 2;
}
