"""Workload: a heavy and a light worker (the heavy one does three times the work per call) and
a heartbeat that only sleeps 10 ms at a time. Beside busy loops, every thread spends time
runnable but waiting for a CPU; only on-CPU time says what each really costs."""
import threading
import time


def heavy():
    n = 0
    for i in range(3000):
        n += i
    return n


def light():
    n = 0
    for i in range(1000):
        n += i
    return n


def work(fn):
    while True:
        fn()


def heartbeat():
    while True:
        time.sleep(0.01)


threads = [
    threading.Thread(target=work, args=(heavy,), name="heavy", daemon=True),
    threading.Thread(target=work, args=(light,), name="light", daemon=True),
    threading.Thread(target=heartbeat, name="heartbeat", daemon=True),
]
for t in threads:
    t.start()
print("ready", flush=True)
while True:
    time.sleep(1)
