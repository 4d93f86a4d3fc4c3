"""Workload: a pool of 20 threads parked on a queue (the usual state of a server's pool);
every second one of them is woken for a job that computes for ~150 ms in `handle`, then
parks again. A parked thread is read less often by hptop: the CPU of each job must still be
credited to `handle`, not to the queue wait it woke from. Usage: wakes.py [SECONDS]"""
import queue
import sys
import threading
import time


def handle(until):
    n = 0
    while time.monotonic() < until:
        n += 1  # HOT
    return n


def worker(q):
    while True:
        job = q.get()
        if job is None:
            return
        handle(time.monotonic() + job)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    q = queue.Queue()
    threads = [threading.Thread(target=worker, args=(q,), name="pool-%d" % i) for i in range(20)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        q.put(0.15)
        time.sleep(1.0)
    for _ in threads:
        q.put(None)


main()
