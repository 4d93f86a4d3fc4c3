"""Workload: a GIL storm. Four CPU-bound threads hand the GIL back and forth: two loop
`light()` (1 unit of work per call), two loop `heavy()` (3 units). Each thread gets about the
same turns on the GIL, so the two functions get about the same CPU while light makes three
times the calls (and the system calls that time them); every thread waits for the GIL most of
the time. Each call is timed with time.thread_time_ns, so each function's own CPU is known
exactly.

Usage: gil_storm.py SECONDS TRUTH_FILE
On SIGUSR1 the main thread writes the cumulative thread CPU ns of each function (threads
summed) to TRUTH_FILE as JSON: {"light": ns, "heavy": ns, "storm": ns}; `storm` is the loops'
own time (their thread time minus light's and heavy's)."""
import json
import os
import signal
import sys
import threading
import time

t = time.thread_time_ns
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 60
TRUTH = sys.argv[2] if len(sys.argv) > 2 else None
totals = {}  # thread -> [light, heavy, whole]


def light():
    x = 0
    for i in range(1000):
        x += i * i
    return x


def heavy():
    x = 0
    for i in range(3000):
        x += i * i
    return x


def storm(work, stop):
    mine = totals.setdefault(threading.get_ident(), [0, 0, 0])
    slot = 0 if work is light else 1
    start = t()
    while not stop.is_set():
        a = t()
        work()
        b = t()
        mine[slot] += b - a
        mine[2] = b - start


def write_truth(*_):
    light_ns = sum(v[0] for v in totals.values())
    heavy_ns = sum(v[1] for v in totals.values())
    whole = sum(v[2] for v in totals.values())
    with open(TRUTH + ".tmp", "w") as f:
        json.dump({"light": light_ns, "heavy": heavy_ns, "storm": whole - light_ns - heavy_ns}, f)
    os.replace(TRUTH + ".tmp", TRUTH)


if TRUTH:
    signal.signal(signal.SIGUSR1, write_truth)
stop = threading.Event()
threads = [threading.Thread(target=storm, args=(w, stop), name="%s-%d" % (w.__name__, i))
           for i in range(2) for w in (light, heavy)]
for th in threads:
    th.start()
print("ready", flush=True)
deadline = time.monotonic() + SECONDS
while time.monotonic() < deadline:
    time.sleep(0.05)
stop.set()
for th in threads:
    th.join()
