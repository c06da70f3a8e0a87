#!/usr/bin/env python3
"""Benchmark peer: concurrent.futures.ProcessPoolExecutor(2), fork context.

One of the programs mproc is measured against (see bench/README.md).  It runs
ONE workload named on the command line and prints exactly one line on stdout:

  RESULT peer=py_futures workload=<w> param=<p|-> value=<x> unit=<u> serial=<s|-> check=<ok|BAD> n=<count> [note=...]

Usage (use /usr/bin/python3, the system interpreter):
  py_futures.py apply [N=200000]      executor.submit(x*x) N times, all results collected -> tasks/s
                                      (only min(N, APPLY_CAP=100000) tasks run, ~11 s; when capped
                                      the rate is extrapolated: note=extrapolated_from_<m>_tasks)
  py_futures.py map   [N=10000000]    executor.map(x*x, range(N), chunksize=10000) -> items/s
  py_futures.py spawn                 n/a (executor has no Process; see py_pool spawn)
  py_futures.py bytes [NBLOBS=16]     executor.map(len, 16 blobs of 8 MiB, chunksize=1) -> MB/s
  py_futures.py gran T CHUNK [NTASKS] busy tasks of T us, ~0.5 s of serial work (at most 50,000
                                      tasks when CHUNK=1); CHUNK = 1 or auto.  executor.map has
                                      no automatic chunksize, so auto = Pool's rule ceil(n/(4*workers)).
                                      The serial reference is the mean of a run before and one after the parallel run.
Timings exclude executor start-up and input construction.
"""
import concurrent.futures as cf
import multiprocessing as mp
import sys
import time

PEER = "py_futures"
NWORKERS = 2
APPLY_CAP = 100000      # submit() tasks actually run (~9k/s here); rate extrapolated beyond
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


def nap(_):
    time.sleep(0.05)
    return 0


def result(workload, param, value, unit, serial, ok, n, extra=""):
    if ok is None:
        chk = "n/a"
    else:
        chk = "ok" if ok else "BAD"
    print("RESULT peer=%s workload=%s param=%s value=%s unit=%s serial=%s check=%s n=%d%s" % (
        PEER, workload, param, value, unit, serial, chk, n, extra), flush=True)


def calibrate():
    """Iterations of spin() per microsecond (best of a few >= 50 ms runs)."""
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


def auto_chunk(n, workers):
    c, extra = divmod(n, workers * 4)
    return c + 1 if extra else c


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    w = argv[1]
    if w == "spawn":
        result(w, "-", "n/a", "us/proc", "-", None, 0, " note=no_process_api")
        return 0
    if w == "gran":
        T = int(argv[2])
        chunk = argv[3]
        iters = max(1, int(round(T * calibrate())))
        ntasks = max(1, int(round(0.5e6 / T)))
        if chunk != "auto":
            ntasks = min(ntasks, GRAN_CAP)
        if len(argv) > 4:
            ntasks = int(argv[4])
        args = [iters] * ntasks
        cs = auto_chunk(ntasks, NWORKERS) if chunk == "auto" else int(chunk)

    with cf.ProcessPoolExecutor(NWORKERS, mp_context=mp.get_context("fork")) as ex:
        list(ex.map(nap, range(NWORKERS)))                 # warm-up: workers up
        if w == "rtt":
            n = int(argv[2]) if len(argv) > 2 else 20000
            t = time.perf_counter()
            s = sum(ex.submit(sq, i % 1000).result() for i in range(n))
            dt = time.perf_counter() - t
            result(w, "-", "%.2f" % (dt / n * 1e6), "us/call", "-",
                   s == sum((i % 1000) ** 2 for i in range(n)), n)
        elif w == "apply":
            n = int(argv[2]) if len(argv) > 2 else 200000
            m = min(n, APPLY_CAP)
            t = time.perf_counter()
            fs = [ex.submit(sq, i) for i in range(m)]
            s = sum(f.result() for f in fs)
            dt = time.perf_counter() - t
            note = "" if m == n else " note=extrapolated_from_%d_tasks" % m
            result(w, "-", "%.1f" % (m / dt), "tasks/s", "-",
                   s == (m - 1) * m * (2 * m - 1) // 6, m, " sum=%d%s" % (s, note))
        elif w == "map":
            n = int(argv[2]) if len(argv) > 2 else 10000000
            t = time.perf_counter()
            s = sum(ex.map(sq, range(n), chunksize=10000))
            dt = time.perf_counter() - t
            result(w, "chunk10000", "%.1f" % (n / dt), "items/s", "-",
                   s == (n - 1) * n * (2 * n - 1) // 6, n, " sum=%d" % s)
        elif w == "bytes":
            nb = int(argv[2]) if len(argv) > 2 else 16
            blobs = [bytes([i % 256]) * BLOB for i in range(nb)]
            t = time.perf_counter()
            lens = list(ex.map(blob_len, blobs, chunksize=1))
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
            rs = list(ex.map(spin, args, chunksize=cs))
            par = time.perf_counter() - t
            t = time.perf_counter()
            for a in args:
                spin(a)
            ser_after = time.perf_counter() - t
            ser = (ser_before + ser_after) / 2
            result(w, "T%d_c%s" % (T, chunk), "%.6f" % par, "s", "%.6f" % ser,
                   rs == args, ntasks,
                   " iters=%d chunk=%d ser_before=%.6f ser_after=%.6f eff=%.3f"
                   % (iters, cs, ser_before, ser_after, ser / (NWORKERS * par)))
        else:
            sys.stderr.write("unknown workload %r\n" % w)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
