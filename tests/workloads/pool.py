"""Workload: a multiprocessing.Pool of 3 workers running `crunch` (pure-Python CPU, ~20 ms a
task); with MAXTASKS each worker is replaced after that many tasks. METHOD is the start
method: fork (a copy of the parent) or spawn (a fresh interpreter: fork, then exec).
Usage: pool.py [SECONDS] [MAXTASKS (0: never replaced)] [METHOD]"""
import multiprocessing
import sys
import time


def crunch(n):
    total = 0
    for i in range(n):
        total += i * i  # CRUNCH
    return total


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    maxtasks = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    method = sys.argv[3] if len(sys.argv) > 3 else "fork"
    context = multiprocessing.get_context(method)
    with context.Pool(3, maxtasksperchild=maxtasks or None) as pool:
        pool.map(crunch, [1000] * 3)
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pool.map(crunch, [200000] * 6, chunksize=1)
