"""Workload: CPU-bound pure-Python work in named threads, plus one sleeping thread.

Usage: cpu_threads.py [N_WORKERS] [SECONDS]
Each worker spends its time in `burn` (the hot line is marked HOT); the main thread and
the "sleeper" thread sleep. Prints "ready" once all threads run.
"""
import sys
import threading
import time


def burn(stop_at):
    total = 0
    while time.time() < stop_at:
        for i in range(1000):
            total += i * i  # HOT
    return total


def sleeper(stop_at):
    while time.time() < stop_at:
        time.sleep(0.05)


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    stop_at = time.time() + seconds
    threads = [threading.Thread(target=burn, args=(stop_at,), name="worker-%d" % i) for i in range(workers)]
    threads.append(threading.Thread(target=sleeper, args=(stop_at,), name="sleeper"))
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
