"""Workload: a pool of N worker threads blocked on a queue (the usual state of a server's
thread pool), plus one thread that computes. Usage: idle_pool.py [N] [SECONDS]"""
import queue
import sys
import threading
import time


def worker(q):
    while True:
        item = q.get()
        if item is None:
            return


def compute(stop):
    n = 0
    while not stop.is_set():
        n += 1  # HOT


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    q, stop = queue.Queue(), threading.Event()
    threads = [threading.Thread(target=worker, args=(q,), name="pool-%d" % i) for i in range(n)]
    threads.append(threading.Thread(target=compute, args=(stop,), name="compute"))
    for t in threads:
        t.start()
    print("ready", flush=True)
    time.sleep(seconds)
    stop.set()
    for _ in range(n):
        q.put(None)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
