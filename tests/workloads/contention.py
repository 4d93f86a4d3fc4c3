"""Workload: CPU-bound threads that make system calls between their functions.

Each worker loops crunch (~75 % of the work) and blend (~25 %) with calls to
t = time.thread_time_ns between them, so each function's own CPU is known exactly; the calls
are system calls (clock_gettime of the thread's CPU clock), where an overloaded kernel preempts
a thread (EEVDF). Beside them, sleepers wake every millisecond.

A sampler credits the CPU of the `t()` calls (and what the kernel does at them: a preemption's
switch out and back in) to the loop that makes them, their Python caller. So the truth does
too: each boundary reads the clock twice, back to back (`b0 = t(); b = t()`), and a function's
own CPU is the time from the clock read just before it to the one just after it, less one
undisturbed call (the halves of the two calls it spans: the return from the first, the entry
into the second), measured as the median of the back-to-back pairs of the last 100 loops.
(Until 2026-12, the truth put those halves in crunch and blend: ~1.5 points of the loop's own
calls that no sampler can tell from the loop.)

Usage: contention.py WORKERS SECONDS TRUTH_FILE
On SIGUSR1 the main thread writes the cumulative thread CPU ns of each function (all workers
summed) to TRUTH_FILE as JSON: {"crunch": ns, "blend": ns, "worker": ns}. `worker` is the
loop's own time, its calls to `t()` included: the worker's thread time minus crunch's and
blend's."""
import json
import signal
import sys
import threading
import time

t = time.thread_time_ns
WORKERS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 60
TRUTH = sys.argv[3] if len(sys.argv) > 3 else None
totals = [[0, 0, 0] for _ in range(WORKERS)]  # crunch, blend, whole thread


def crunch():
    x = 0
    for i in range(3000):
        x += i * i
    return x


def blend():
    x = 0
    for i in range(1000):
        x += i * i
    return x


def worker(slot, stop):
    mine = totals[slot]
    start = t()
    call = 0  # one undisturbed t() call, ns: the median pair of the last 100 loops
    pairs = []
    while not stop.is_set():
        a0 = t()
        a = t()
        crunch()
        b0 = t()
        b = t()
        blend()
        c0 = t()
        c = t()
        pairs.append(a - a0)
        if len(pairs) == 100:
            pairs.sort()
            call = pairs[50]
            pairs.clear()
        if call:
            mine[0] += b0 - a - call
            mine[1] += c0 - b - call
        mine[2] = c - start


def sleeper(stop):
    while not stop.is_set():
        time.sleep(0.001)


def write_truth(*_):
    crunch_ns = sum(w[0] for w in totals)
    blend_ns = sum(w[1] for w in totals)
    whole = sum(w[2] for w in totals)
    with open(TRUTH + ".tmp", "w") as f:
        json.dump({"crunch": crunch_ns, "blend": blend_ns, "worker": whole - crunch_ns - blend_ns}, f)
    import os
    os.replace(TRUTH + ".tmp", TRUTH)


if TRUTH:
    signal.signal(signal.SIGUSR1, write_truth)
stop = threading.Event()
threads = [threading.Thread(target=worker, args=(i, stop), name=f"worker-{i}") for i in range(WORKERS)]
threads += [threading.Thread(target=sleeper, args=(stop,), name=f"sleeper-{i}") for i in range(3)]
for th in threads:
    th.start()
print("ready", flush=True)
deadline = time.monotonic() + SECONDS
while time.monotonic() < deadline:
    time.sleep(0.05)
stop.set()
for th in threads:
    th.join()
