"""py_shared.py - Python's multiprocessing for bench/shared.sh, the same workloads:
queue N (a Process puts N ints into a multiprocessing.Queue, the parent gets them; items/s),
qrtt N (round trips through two Queues; us per trip), lock N (uncontended Lock acquire+release;
ns per pair), lockc N (parent and a Process each N acquire+increment+release of a Value under a
Lock; ns per pair)."""
import multiprocessing as mp
import sys
import time


def producer(q, n):
    for i in range(n):
        q.put(i)


def echo(to, back, n):
    for _ in range(n):
        back.put(to.get())


def count_up(lock, value, go, n):
    go.wait()
    for _ in range(n):
        with lock:
            value.value += 1


def result(w, v, unit, ok, n):
    print(f"RESULT peer=python workload={w} value={v:.6g} unit={unit} check={'ok' if ok else 'BAD'} n={n}")


def main():
    w = sys.argv[1] if len(sys.argv) > 1 else "queue"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    ctx = mp.get_context("fork")
    if w == "queue":
        q = ctx.Queue()
        p = ctx.Process(target=producer, args=(q, n))
        p.start()
        ok = q.get() == 0
        t0 = time.perf_counter()
        for i in range(1, n):
            ok &= q.get() == i
        t = time.perf_counter() - t0
        p.join()
        result(w, (n - 1) / t, "items/s", ok and p.exitcode == 0, n)
    elif w == "qrtt":
        to, back = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=echo, args=(to, back, n))
        p.start()
        to.put(0)
        back.get()
        ok = True
        t0 = time.perf_counter()
        for i in range(1, n):
            to.put(i)
            ok &= back.get() == i
        t = time.perf_counter() - t0
        p.join()
        result(w, t / (n - 1) * 1e6, "us", ok, n)
    elif w == "lock":
        lock = ctx.Lock()
        t0 = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        result(w, (time.perf_counter() - t0) / n * 1e9, "ns", True, n)
    elif w == "lockc":
        lock, value, go = ctx.Lock(), ctx.Value("l", 0, lock=False), ctx.Event()
        p = ctx.Process(target=count_up, args=(lock, value, go, n))
        p.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        go.set()
        count_up(lock, value, go, n)
        p.join()
        t = time.perf_counter() - t0
        result(w, t / (2 * n) * 1e9, "ns", value.value == 2 * n, n)


if __name__ == "__main__":
    main()
