"""Workload: one thread runs a freshly exec'd function `job_N` for ~50 ms, then the next, without
end: each new code object is likely to land where the last one was freed (same address, same
lines), the case in which a profiler that caches code by address names the wrong function.
Usage: fresh_code.py [SECONDS]"""
import sys
import threading
import time

SOURCE = """
def job_%d():
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:
        pass
"""


def factory(stop):
    n = 0
    while not stop.is_set():
        namespace = {"time": time}
        exec(SOURCE % n, namespace)
        namespace["job_%d" % n]()
        # Freed now (not at the next rebinding, after the next one is made): the next code
        # object can take its address.
        namespace.clear()
        n += 1


stop = threading.Event()
worker = threading.Thread(target=factory, args=(stop,), name="factory")
worker.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
stop.set()
worker.join()
