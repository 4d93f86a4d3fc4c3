"""Workload: one thread burns CPU in `early_work` for SWITCH seconds, then in `late_work`.

A diff of a window before the switch against one after must name both: `late_work` up,
`early_work` down. Usage: switch_hot.py [SWITCH] [SECONDS]"""
import sys
import threading
import time

SWITCH = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0


def early_work(until):
    n = 0
    while time.monotonic() < until:
        n += 1


def late_work(until):
    n = 0
    while time.monotonic() < until:
        n += 1


def run(start):
    early_work(start + SWITCH)
    late_work(start + SECONDS)


t = threading.Thread(target=run, args=(time.monotonic(),), name="worker")
t.start()
print("ready", flush=True)
t.join()
