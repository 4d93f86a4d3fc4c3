"""Workload: CPU-bound pure-Python work in named threads, plus one sleeping thread.

Usage: cpu_threads.py [N_WORKERS] [SECONDS]
Each worker spends its time in `burn` (the hot line is marked HOT); the main thread and
the "sleeper" thread sleep. Threads wait at a gate until all have started (starting threads
among many GIL-bound ones is slow), then "ready" is printed and SECONDS count from there.
"""
import sys
import threading
import time


def burn(go, stop):
    go.wait()
    total = 0
    while not stop.is_set():
        for i in range(1000):
            total += i * i  # HOT
    return total


def sleeper(go, stop):
    go.wait()
    while not stop.is_set():
        time.sleep(0.05)


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    go, stop = threading.Event(), threading.Event()
    threads = [threading.Thread(target=burn, args=(go, stop), name="worker-%d" % i) for i in range(workers)]
    threads.append(threading.Thread(target=sleeper, args=(go, stop), name="sleeper"))
    for t in threads:
        t.start()
    go.set()
    print("ready", flush=True)
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
