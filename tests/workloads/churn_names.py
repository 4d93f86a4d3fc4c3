"""Workload: short-lived threads, 4 alive at a time; thread `wK` runs function `fn_wK`.

Python recycles thread ids (`pthread_t`) and thread states, so a profiler that caches names by
thread id shows `w49` running `fn_w432`. Each thread spins ~60 ms, then exits.
"""
import threading
import time

STOP = time.monotonic() + 120


def make(k):
    namespace = {"time": time}
    exec(
        "def fn_w%d(until):\n    n = 0\n    while time.monotonic() < until:\n        n += 1\n" % k,
        namespace,
    )
    return namespace["fn_w%d" % k]


alive = []
k = 0
print("ready", flush=True)
while time.monotonic() < STOP:
    alive = [t for t in alive if t.is_alive()]
    while len(alive) < 4:
        t = threading.Thread(target=make(k), args=(time.monotonic() + 0.06,), name="w%d" % k)
        t.start()
        alive.append(t)
        k += 1
    time.sleep(0.005)
