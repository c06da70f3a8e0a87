#!/usr/bin/env python3
"""Benchmark peer: Python multiprocessing.Pool(2), fork start method.

One of the programs mproc is measured against (see bench/README.md).  It runs
ONE workload named on the command line and prints exactly one line on stdout:

  RESULT peer=py_pool workload=<w> param=<p|-> value=<x> unit=<u> serial=<s|-> check=<ok|BAD> n=<count>

Usage (use /usr/bin/python3, the system interpreter):
  py_pool.py apply [N=200000]      apply_async of x*x, N tasks        -> tasks/s
  py_pool.py map   [N=10000000]    pool.map(x*x, range(N), chunksize=10000) -> items/s
  py_pool.py spawn [N=1000]        Process(target=empty).start()+join(), N times -> us/proc
  py_pool.py bytes [NBLOBS=16]     pool.map(len, 16 blobs of 8 MiB, chunksize=1) -> MB/s (1e6 B)
  py_pool.py gran T CHUNK [NTASKS] busy tasks of T us; CHUNK = 1 or auto (chunksize=None);
                                   ~0.5 s of serial work, at most 50,000 tasks when CHUNK=1
                                   -> value = parallel wall s, serial = same tasks in-process
                                   (mean of a run before and one after the parallel run)
Timings exclude pool start-up and input construction.
"""
import multiprocessing as mp
import sys
import time

PEER = "py_pool"
NWORKERS = 2
GRAN_CAP = 50000        # cap on gran task count with CHUNK=1, so a run stays < 20 s
BLOB = 8 * 1024 * 1024


def sq(x):
    return x * x


def blob_len(b):
    return len(b)


def spin(n):
    for _ in range(n):
        pass
    return n


def empty():
    pass


def result(workload, param, value, unit, serial, ok, n, extra=""):
    line = "RESULT peer=%s workload=%s param=%s value=%s unit=%s serial=%s check=%s n=%d%s" % (
        PEER, workload, param, value, unit, serial, "ok" if ok else "BAD", n, extra)
    print(line, flush=True)


def calibrate():
    """Iterations of spin() per microsecond (best of a few 50 ms runs)."""
    n = 100000
    while True:
        t = time.perf_counter(); spin(n); dt = time.perf_counter() - t
        if dt > 0.05:
            break
        n *= 2
    best = dt
    for _ in range(5):
        t = time.perf_counter(); spin(n); best = min(best, time.perf_counter() - t)
    return n / (best * 1e6)


def gran_tasks(T, cap):
    ipu = calibrate()
    iters = max(1, int(round(T * ipu)))
    ntasks = max(1, int(round(0.5e6 / T)))
    return iters, (ntasks if cap is None else min(ntasks, cap))


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    w = argv[1]
    ctx = mp.get_context("fork")

    if w == "spawn":
        n = int(argv[2]) if len(argv) > 2 else 1000
        ok = True
        t = time.perf_counter()
        for _ in range(n):
            p = ctx.Process(target=empty)
            p.start()
            p.join()
            ok = ok and p.exitcode == 0
        dt = time.perf_counter() - t
        result(w, "-", "%.2f" % (dt / n * 1e6), "us/proc", "-", ok, n)
        return 0

    if w == "gran":
        T = int(argv[2])
        chunk = argv[3]
        iters, ntasks = gran_tasks(T, GRAN_CAP if chunk != "auto" else None)
        if len(argv) > 4:
            ntasks = int(argv[4])
        args = [iters] * ntasks
        cs = None if chunk == "auto" else int(chunk)

    with ctx.Pool(NWORKERS) as pool:
        pool.map(spin, [1] * NWORKERS, chunksize=1)          # warm-up: workers up
        if w == "rtt":
            n = int(argv[2]) if len(argv) > 2 else 20000
            t = time.perf_counter()
            s = sum(pool.apply(sq, (i % 1000,)) for i in range(n))
            dt = time.perf_counter() - t
            result(w, "-", "%.2f" % (dt / n * 1e6), "us/call", "-",
                   s == sum((i % 1000) ** 2 for i in range(n)), n)
        elif w == "apply":
            n = int(argv[2]) if len(argv) > 2 else 200000
            t = time.perf_counter()
            rs = [pool.apply_async(sq, (i,)) for i in range(n)]
            s = sum(r.get() for r in rs)
            dt = time.perf_counter() - t
            result(w, "-", "%.1f" % (n / dt), "tasks/s", "-",
                   s == (n - 1) * n * (2 * n - 1) // 6, n, " sum=%d" % s)
        elif w == "map":
            n = int(argv[2]) if len(argv) > 2 else 10000000
            t = time.perf_counter()
            s = sum(pool.map(sq, range(n), chunksize=10000))
            dt = time.perf_counter() - t
            result(w, "chunk10000", "%.1f" % (n / dt), "items/s", "-",
                   s == (n - 1) * n * (2 * n - 1) // 6, n, " sum=%d" % s)
        elif w == "bytes":
            nb = int(argv[2]) if len(argv) > 2 else 16
            blobs = [bytes([i % 256]) * BLOB for i in range(nb)]
            t = time.perf_counter()
            lens = pool.map(blob_len, blobs, chunksize=1)
            dt = time.perf_counter() - t
            result(w, "8MiB", "%.1f" % (nb * BLOB / 1e6 / dt), "MB/s", "-",
                   lens == [BLOB] * nb, nb)
        elif w == "gran":
            # The serial reference is timed before and after the parallel run and averaged:
            # this machine's speed drifts, and the two bracket the parallel run in time.
            t = time.perf_counter()
            for a in args:
                spin(a)
            ser_before = time.perf_counter() - t
            t = time.perf_counter()
            rs = pool.map(spin, args, chunksize=cs)
            par = time.perf_counter() - t
            t = time.perf_counter()
            for a in args:
                spin(a)
            ser_after = time.perf_counter() - t
            ser = (ser_before + ser_after) / 2
            result(w, "T%d_c%s" % (T, chunk), "%.6f" % par, "s", "%.6f" % ser,
                   rs == args, ntasks,
                   " iters=%d chunk=%s ser_before=%.6f ser_after=%.6f eff=%.3f"
                   % (iters, chunk, ser_before, ser_after, ser / (NWORKERS * par)))
        else:
            sys.stderr.write("unknown workload %r\n" % w)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
