/*
 * c_mpi_floor.c - benchmark peer: the hand-written MPI "floor".
 *
 * What plain, unclever C + MPI gets with no library: rank 0 is the master,
 * ranks 1..size-1 are workers.  The master keeps every worker 2 requests deep
 * (2 slots per worker; each slot is an MPI_Isend of the request plus a
 * pre-posted MPI_Irecv of its reply, tag = slot) and refills a slot as soon as
 * MPI_Waitany says its reply is in.  Requests go straight from the input array
 * and replies land straight in the output array (no packing).  Workers loop on
 * MPI_Probe / MPI_Recv / compute / MPI_Send.  Map work is batched as chunks of
 * longs (MPI_LONG), bytes as one 8 MiB MPI_BYTE message per blob.  mproc's MPI
 * backend is measured against it (see bench/README.md).  Prints exactly one
 * line on stdout (rank 0):
 *
 *   RESULT peer=c_mpi_floor workload=<w> param=<p|-> value=<x> unit=<u> serial=<s|-> check=<ok|BAD> n=<count>
 *
 * Usage (3 ranks = master + 2 workers; on a 2-core box add --oversubscribe):
 *   mpirun --allow-run-as-root --oversubscribe -np 3 c_mpi_floor WORKLOAD [ARGS]
 *   apply [N=200000]      N tasks x*x, 1 long per message        -> tasks/s
 *   map   [N=10000000] [REPS=1]  x*x over N longs, 10,000 per message, REPS times
 *                         with the same workers (total items / total time) -> items/s
 *   spawn                 n/a (ranks are not spawned per task)
 *   bytes [NBLOBS=16]     16 blobs of 8 MiB, task returns length  -> MB/s (1e6 B)
 *   gran T CHUNK [NTASKS] busy tasks of T us (iterations calibrated in the master),
 *                         ~0.5 s serial; CHUNK = 1 or auto (ceil(n / (4 * workers)))
 *                         -> value = parallel wall s, serial = same tasks in-process
 *                         (mean of a run before and one after the parallel run)
 * With FLOOR_RELAY=1 in the environment (peer name c_relay_floor; rtt, apply, map, gran)
 * each worker rank runs its tasks in a child process forked before MPI_Init, as mproc's
 * executors are, and relays: it receives a request straight into a slot of memory shared with
 * the child (MPI_Improbe / MPI_Mrecv), bumps a counter, and sends the child's answer straight
 * from the shared slot. The child polls the shared counter with sched_yield() between looks;
 * the rank polls MPI and the counter, yielding only while an answer is due (the child may
 * share its core); the master yields between its MPI_Test calls; each sleeps 100 us at a
 * time after ~20,000 empty looks. This is the floor for fault isolation: what the extra process costs a
 * hand-written program on the same cores.
 * The master calibrates and times the serial reference before releasing the
 * workers and again after stopping them (both times they wait on an
 * MPI_Ibarrier, testing it every 1 ms, so they do not busy-poll against the
 * master on a small box).  Timings exclude start-up and
 * input construction.
 */
#define _GNU_SOURCE
#include <math.h>
#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *PEER = "c_mpi_floor";
#define DEPTH 2
#define MAXW 64
#define TAG_STOP 1000
#define TAG_RTT 1001
#define BLOB (8 << 20)

enum { OP_SQ, OP_SPIN, OP_LEN };

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
        double t = MPI_Wtime();
        spin(n);
        dt = MPI_Wtime() - t;
        if (dt > 0.05)
            break;
        n *= 2;
    }
    for (int i = 0; i < 5; i++) {
        double t = MPI_Wtime();
        spin(n);
        double d = MPI_Wtime() - t;
        if (d < dt)
            dt = d;
    }
    return (double)n / (dt * 1e6);
}

/* Start gate: workers sleep-poll so the master's calibration/serial run is quiet. */
static void gate(int rank)
{
    MPI_Request rq;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    if (rank == 0) {
        MPI_Wait(&rq, MPI_STATUS_IGNORE);
        return;
    }
    int done = 0;
    struct timespec ms = {0, 1000000};
    for (;;) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (done)
            break;
        nanosleep(&ms, NULL);
    }
}

static void worker(int op)
{
    int cap = 0;
    char *in = NULL;
    long *out = NULL;
    for (;;) {
        MPI_Status st;
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        if (st.MPI_TAG == TAG_STOP) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            break;
        }
        int cnt, bytes;
        MPI_Get_count(&st, op == OP_LEN ? MPI_BYTE : MPI_LONG, &cnt);
        bytes = op == OP_LEN ? cnt : cnt * (int)sizeof(long);
        if (bytes > cap) {
            cap = bytes;
            in = realloc(in, (size_t)cap);
            out = realloc(out, (size_t)cap);
            if (!in || !out)
                MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Recv(in, cnt, op == OP_LEN ? MPI_BYTE : MPI_LONG, 0, st.MPI_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        if (op == OP_LEN) {
            long n = cnt;
            MPI_Send(&n, 1, MPI_LONG, 0, st.MPI_TAG, MPI_COMM_WORLD);
            continue;
        }
        const long *x = (const long *)(void *)in;
        if (op == OP_SQ)
            for (int i = 0; i < cnt; i++)
                out[i] = x[i] * x[i];
        else
            for (int i = 0; i < cnt; i++)
                out[i] = spin(x[i]);
        MPI_Send(out, cnt, MPI_LONG, 0, st.MPI_TAG, MPI_COMM_WORLD);
    }
    free(in);
    free(out);
}

/* ---- FLOOR_RELAY: the worker rank relays to a child through shared memory ---- */

#define SLOTS 4          /* the master keeps DEPTH requests per worker: SLOTS > DEPTH */
#define SLOT_LONGS 16384 /* the biggest chunk a slot holds */
#define IDLE_LOOKS 20000 /* empty looks before a 100 us sleep (a gate, the master's set-up) */

struct relay_shm {
    _Atomic uint64_t down; /* requests put in slots so far (the rank's) */
    _Atomic uint64_t up;   /* answers written so far (the child's) */
    _Atomic int stop;
    int op;
    int len[SLOTS], tag[SLOTS];
    long in[SLOTS][SLOT_LONGS], out[SLOTS][SLOT_LONGS];
};

static struct relay_shm *relay;
static int relay_master; /* FLOOR_RELAY's rank 0 */
static pid_t relay_child;

/* An empty look: yield the core (yield: someone this process waits for may need it), and
 * after IDLE_LOOKS of them sleep instead. */
static void idle_look(unsigned *idle, int yield)
{
    if (++*idle < IDLE_LOOKS) {
        if (yield)
            sched_yield();
        return;
    }
    struct timespec t = {0, 100000};
    nanosleep(&t, NULL);
}

static void relay_child_loop(struct relay_shm *sh)
{
    uint64_t done = 0;
    unsigned idle = 0;
    for (;;) {
        if (atomic_load_explicit(&sh->down, memory_order_acquire) > done) {
            int s = (int)(done % SLOTS), n = sh->len[s];
            const long *x = sh->in[s];
            long *y = sh->out[s];
            if (sh->op == OP_SQ)
                for (int i = 0; i < n; i++)
                    y[i] = x[i] * x[i];
            else
                for (int i = 0; i < n; i++)
                    y[i] = spin(x[i]);
            atomic_store_explicit(&sh->up, ++done, memory_order_release);
            idle = 0;
        } else if (atomic_load(&sh->stop)) {
            break;
        } else {
            idle_look(&idle, 1);
        }
    }
}

/* Waits for a request with sched_yield() between tests, as the relay's master: its blocking
 * calls would spin on a core the rank and its child need. */
static void yield_wait(MPI_Request *rq)
{
    int done = 0;
    for (;;) {
        MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        sched_yield();
    }
}

static void yield_waitany(int n, MPI_Request *rq, int *k)
{
    int done = 0;
    for (;;) {
        MPI_Testany(n, rq, k, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        sched_yield();
    }
}

/* Before MPI_Init (the rank from Open MPI's environment): a worker rank forks its child. */
static void relay_fork(void)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r || !strcmp(r, "0"))
        return; /* the master: no child */
    relay = mmap(NULL, sizeof *relay, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (relay == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    relay_child = fork();
    if (relay_child < 0) {
        perror("fork");
        exit(1);
    }
    if (relay_child == 0) {
        relay_child_loop(relay);
        _exit(0);
    }
}

static void relay_end(void)
{
    if (!relay)
        return;
    atomic_store(&relay->stop, 1);
    waitpid(relay_child, NULL, 0);
}

static void relay_worker(int op)
{
    struct relay_shm *sh = relay;
    sh->op = op;
    uint64_t given = 0, answered = 0;
    int stopping = 0;
    unsigned idle = 0;
    for (;;) {
        int flag = 0;
        if (!stopping && given - answered < SLOTS) {
            MPI_Message m;
            MPI_Status st;
            MPI_Improbe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &m, &st);
            if (flag && st.MPI_TAG == TAG_STOP) {
                MPI_Mrecv(NULL, 0, MPI_BYTE, &m, MPI_STATUS_IGNORE);
                stopping = 1;
            } else if (flag) {
                int s = (int)(given % SLOTS), cnt;
                MPI_Get_count(&st, MPI_LONG, &cnt);
                if (cnt > SLOT_LONGS)
                    MPI_Abort(MPI_COMM_WORLD, 3);
                MPI_Mrecv(sh->in[s], cnt, MPI_LONG, &m, MPI_STATUS_IGNORE);
                sh->len[s] = cnt;
                sh->tag[s] = st.MPI_TAG;
                atomic_store_explicit(&sh->down, ++given, memory_order_release);
            }
        }
        if (atomic_load_explicit(&sh->up, memory_order_acquire) > answered) {
            int s = (int)(answered % SLOTS);
            MPI_Send(sh->out[s], sh->len[s], MPI_LONG, 0, sh->tag[s], MPI_COMM_WORLD);
            answered++;
            flag = 1;
        }
        if (stopping && given == answered)
            break;
        /* Yield only while an answer is due: the child may share this core. With none due,
         * a yield would hand the core to the child polling for its next request, for
         * nothing. */
        if (flag)
            idle = 0;
        else
            idle_look(&idle, given > answered);
    }
}

/* Jobs as in c_fork_floor: chunks of in[] -> out[], or blob j -> out[j]. */
struct run {
    int op;
    size_t n, chunk, njobs;
    const long *in;
    long *out;
    char *const *blobs;
};

static void post(const struct run *r, int w, int slot, size_t j, MPI_Request *sr,
                 MPI_Request *rr)
{
    int k = (w - 1) * DEPTH + slot;
    if (r->op == OP_LEN) {
        MPI_Irecv(&r->out[j], 1, MPI_LONG, w, slot, MPI_COMM_WORLD, &rr[k]);
        MPI_Isend(r->blobs[j], BLOB, MPI_BYTE, w, slot, MPI_COMM_WORLD, &sr[k]);
    } else {
        size_t lo = j * r->chunk, hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
        MPI_Irecv(r->out + lo, (int)(hi - lo), MPI_LONG, w, slot, MPI_COMM_WORLD, &rr[k]);
        MPI_Isend(r->in + lo, (int)(hi - lo), MPI_LONG, w, slot, MPI_COMM_WORLD, &sr[k]);
    }
}

static void run_jobs(const struct run *r, int nw)
{
    MPI_Request sr[MAXW * DEPTH], rr[MAXW * DEPTH];
    size_t next = 0, done = 0;
    for (int k = 0; k < nw * DEPTH; k++)
        sr[k] = rr[k] = MPI_REQUEST_NULL;
    for (int slot = 0; slot < DEPTH; slot++)
        for (int w = 1; w <= nw && next < r->njobs; w++)
            post(r, w, slot, next++, sr, rr);
    while (done < r->njobs) {
        int k;
        if (relay_master)
            yield_waitany(nw * DEPTH, rr, &k);
        else
            MPI_Waitany(nw * DEPTH, rr, &k, MPI_STATUS_IGNORE);
        MPI_Wait(&sr[k], MPI_STATUS_IGNORE);
        done++;
        if (next < r->njobs)
            post(r, k / DEPTH + 1, k % DEPTH, next++, sr, rr);
    }
}

static void stop(int nw)
{
    for (int w = 1; w <= nw; w++)
        MPI_Send(NULL, 0, MPI_BYTE, w, TAG_STOP, MPI_COMM_WORLD);
}

static void result(const char *w, const char *param, double value, const char *unit,
                   double serial, int ok, size_t n, const char *extra)
{
    char ser[32] = "-";
    if (serial >= 0)
        snprintf(ser, sizeof ser, "%.6f", serial);
    printf("RESULT peer=%s workload=%s param=%s value=%.*f unit=%s serial=%s check=%s n=%zu%s\n",
           PEER, w, param, strcmp(unit, "s") ? 2 : 6, value, unit, ser, ok ? "ok" : "BAD", n,
           extra ? extra : "");
    fflush(stdout);
}

static int check_squares(const long *out, size_t n, char *extra, size_t cap)
{
    unsigned __int128 s = 0, want;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        s += (unsigned long)out[i];
        if (out[i] != (long)i * (long)i)
            ok = 0;
    }
    want = (unsigned __int128)(n - 1) * n * (2 * n - 1) / 6;
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

int main(int argc, char **argv)
{
    const char *rl = getenv("FLOOR_RELAY");
    int relaying = rl && !strcmp(rl, "1");
    if (relaying) {
        PEER = "c_relay_floor";
        relay_fork();
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    relay_master = relaying && rank == 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int nw = size - 1;
    const char *w = argc > 1 ? argv[1] : "";
    int op = !strcmp(w, "bytes") ? OP_LEN : !strcmp(w, "gran") ? OP_SPIN : OP_SQ;
    int known = !strcmp(w, "apply") || !strcmp(w, "map") || !strcmp(w, "bytes") ||
                (!strcmp(w, "gran") && argc > 3) || !strcmp(w, "spawn") || !strcmp(w, "rtt");
    if (relaying && (!strcmp(w, "bytes") || !strcmp(w, "spawn")))
        known = 0; /* a slot holds chunks of longs */
    if (!known || nw < 1 || nw > MAXW) {
        if (rank == 0)
            fprintf(stderr,
                    "usage: mpirun -np 3 %s apply|map|bytes|rtt [N] | gran T 1|auto [NTASKS] | "
                    "spawn\n",
                    argv[0]);
        if (relaying)
            relay_end();
        MPI_Finalize();
        return 2;
    }
    if (relaying && !strcmp(w, "rtt")) {
        /* The master as below; every worker rank relays (rank 1 gets the calls). */
        size_t n = arg(argc, argv, 2, 20000);
        long x = 0, y = 0, sum = 0, want = 0;
        if (rank == 0) {
            double t = 0;
            for (size_t i = 0; i < n + 100; i++) {
                if (i == 100)
                    t = MPI_Wtime();
                x = (long)(i % 1000);
                MPI_Request sq, rq;
                MPI_Irecv(&y, 1, MPI_LONG, 1, 0, MPI_COMM_WORLD, &rq);
                MPI_Isend(&x, 1, MPI_LONG, 1, 0, MPI_COMM_WORLD, &sq);
                yield_wait(&sq);
                yield_wait(&rq);
                if (i >= 100)
                    sum += y, want += x * x;
            }
            result("rtt", "-", (MPI_Wtime() - t) / (double)n * 1e6, "us/call", -1, sum == want, n, "");
            stop(nw);
        } else {
            relay_worker(OP_SQ);
        }
        relay_end();
        MPI_Finalize();
        return 0;
    }
    if (!strcmp(w, "rtt")) {
        /* The plain blocking ping-pong between rank 0 and rank 1: MPI_Send of the argument,
         * MPI_Recv of the answer. Open MPI's blocking calls poll, so this is the best round
         * trip the transport gives. */
        size_t n = arg(argc, argv, 2, 20000);
        long x = 0, y = 0, sum = 0, want = 0;
        for (size_t i = 0; i < n + 100; i++) {
            if (rank == 0) {
                static double t;
                if (i == 100) t = MPI_Wtime();
                x = (long)(i % 1000);
                MPI_Send(&x, 1, MPI_LONG, 1, TAG_RTT, MPI_COMM_WORLD);
                MPI_Recv(&y, 1, MPI_LONG, 1, TAG_RTT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (i >= 100) sum += y, want += x * x;
                if (i == n + 99)
                    result("rtt", "-", (MPI_Wtime() - t) / (double)n * 1e6, "us/call", -1, sum == want, n, "");
            } else if (rank == 1) {
                MPI_Recv(&x, 1, MPI_LONG, 0, TAG_RTT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                y = x * x;
                MPI_Send(&y, 1, MPI_LONG, 0, TAG_RTT, MPI_COMM_WORLD);
            }
        }
        MPI_Finalize();
        return 0;
    }
    if (!strcmp(w, "spawn")) {
        if (rank == 0)
            printf("RESULT peer=%s workload=spawn param=- value=n/a unit=us/proc serial=- "
                   "check=n/a n=0 note=no_spawn_in_mpi\n",
                   PEER);
        MPI_Finalize();
        return 0;
    }
    if (rank != 0) {
        gate(rank);
        if (relaying)
            relay_worker(op);
        else
            worker(op);
        if (op == OP_SPIN)
            gate(rank); /* quiet again while the master times its second serial run */
        if (relaying)
            relay_end();
        MPI_Finalize();
        return 0;
    }

    char extra[192] = "";
    if (op == OP_SQ) {
        int apply = !strcmp(w, "apply");
        size_t n = arg(argc, argv, 2, apply ? 200000 : 10000000);
        long *in = malloc(n * sizeof(long)), *out = malloc(n * sizeof(long));
        if (!in || !out)
            MPI_Abort(MPI_COMM_WORLD, 1);
        for (size_t i = 0; i < n; i++)
            in[i] = (long)i;
        memset(out, 0xff, n * sizeof(long));
        size_t chunk = apply ? 1 : 10000;
        struct run r = {OP_SQ, n, chunk, (n + chunk - 1) / chunk, in, out, NULL};
        /* map N REPS: the same map REPS times with the same workers (total items / total
         * time), each pass checked, as mproc_bench map N REPS runs it on one pool. */
        size_t reps = apply ? 1 : arg(argc, argv, 3, 1);
        int ok = 1;
        double dt = 0;
        gate(0);
        for (size_t k = 0; k < reps; k++) {
            if (k > 0)
                memset(out, 0xff, n * sizeof(long));
            double t = MPI_Wtime();
            run_jobs(&r, nw);
            dt += MPI_Wtime() - t;
            ok = ok && check_squares(out, n, extra, sizeof extra);
        }
        stop(nw);
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " workers=%d", nw);
        result(w, apply ? "-" : "chunk10000", (double)(n * reps) / dt, apply ? "tasks/s" : "items/s", -1,
               ok, n * reps, extra);
        free(in);
        free(out);
    } else if (op == OP_LEN) {
        size_t nb = arg(argc, argv, 2, 16);
        char **blobs = malloc(nb * sizeof *blobs);
        long *out = calloc(nb, sizeof(long));
        if (!blobs || !out)
            MPI_Abort(MPI_COMM_WORLD, 1);
        for (size_t i = 0; i < nb; i++) {
            if (!(blobs[i] = malloc(BLOB)))
                MPI_Abort(MPI_COMM_WORLD, 1);
            memset(blobs[i], (int)(i & 0xff), BLOB);
        }
        struct run r = {OP_LEN, nb, 1, nb, NULL, out, blobs};
        gate(0);
        double t = MPI_Wtime();
        run_jobs(&r, nw);
        double dt = MPI_Wtime() - t;
        stop(nw);
        int ok = 1;
        for (size_t i = 0; i < nb; i++)
            ok = ok && out[i] == BLOB;
        snprintf(extra, sizeof extra, " workers=%d", nw);
        result(w, "8MiB", (double)nb * BLOB / 1e6 / dt, "MB/s", -1, ok, nb, extra);
        for (size_t i = 0; i < nb; i++)
            free(blobs[i]);
        free(blobs);
        free(out);
    } else {
        long T = atol(argv[2]);
        const char *cs = argv[3];
        if (T <= 0)
            MPI_Abort(MPI_COMM_WORLD, 2);
        double ipu = calibrate();
        long iters = lround((double)T * ipu);
        if (iters < 1)
            iters = 1;
        size_t n = arg(argc, argv, 4, (size_t)lround(0.5e6 / (double)T));
        if (n < 1)
            n = 1;
        size_t chunk = !strcmp(cs, "auto") ? (n + 4 * (size_t)nw - 1) / (4 * (size_t)nw)
                                           : (size_t)atol(cs);
        if (chunk < 1)
            chunk = 1;
        long *in = malloc(n * sizeof(long)), *out = calloc(n, sizeof(long));
        if (!in || !out)
            MPI_Abort(MPI_COMM_WORLD, 1);
        for (size_t i = 0; i < n; i++)
            in[i] = iters;
        /* The serial reference is timed before and after the parallel run (the workers sleep
         * at a gate both times) and averaged: this machine's speed drifts, and the two bracket
         * the parallel run in time. */
        double t = MPI_Wtime();
        for (size_t i = 0; i < n; i++)
            out[i] = spin(in[i]);
        double ser_before = MPI_Wtime() - t;
        memset(out, 0, n * sizeof(long));
        struct run r = {OP_SPIN, n, chunk, (n + chunk - 1) / chunk, in, out, NULL};
        gate(0);
        t = MPI_Wtime();
        run_jobs(&r, nw);
        double par = MPI_Wtime() - t;
        stop(nw);
        int ok = 1;
        for (size_t i = 0; i < n; i++)
            ok = ok && out[i] == iters;
        long *again = malloc(n * sizeof(long));
        if (!again)
            MPI_Abort(MPI_COMM_WORLD, 1);
        t = MPI_Wtime();
        for (size_t i = 0; i < n; i++)
            again[i] = spin(in[i]);
        double ser_after = MPI_Wtime() - t, ser = (ser_before + ser_after) / 2;
        free(again);
        gate(0);
        char param[64];
        snprintf(param, sizeof param, "T%ld_c%s", T, cs);
        snprintf(extra, sizeof extra,
                 " iters=%ld chunk=%zu workers=%d ser_before=%.6f ser_after=%.6f eff=%.3f", iters,
                 chunk, nw, ser_before, ser_after, ser / ((double)nw * par));
        result(w, param, par, "s", ser, ok, n, extra);
        free(in);
        free(out);
    }
    if (relaying)
        relay_end();
    MPI_Finalize();
    return 0;
}
