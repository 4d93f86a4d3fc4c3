"""Workload: CPU-bound work at the bottom of a 400-deep recursion (stacks that change while
read come back cut short without a pause). Usage: deep_recursion.py [DEPTH] [SECONDS]"""
import sys
import time

sys.setrecursionlimit(10000)


announced = False


def leaf(until):
    global announced
    if not announced:
        # Ready once the stack is whole: a dump right after sees all DEPTH frames.
        announced = True
        print("ready", flush=True)
    n = 0
    while time.monotonic() < until:
        for i in range(1000):
            n += i  # HOT
    return n


def descend(depth, until):
    if depth == 0:
        return leaf(until)
    return descend(depth - 1, until)


depth = int(sys.argv[1]) if len(sys.argv) > 1 else 400
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
stop = time.monotonic() + seconds
while time.monotonic() < stop:
    descend(depth, min(stop, time.monotonic() + 0.2))
