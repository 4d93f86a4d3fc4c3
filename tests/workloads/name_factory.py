"""Workload: code that makes fresh function names without end (templating, exec'd code,
per-request handlers): THREADS threads (default 4), each making new functions and running
each for ~0.5 ms. Usage: name_factory.py [THREADS]"""
import sys
import threading
import time


def factory(prefix):
    n = 0
    while True:
        namespace = {"time": time}
        exec(
            "def %s_%d():\n    end = time.perf_counter() + 0.0005\n    while time.perf_counter() < end:\n        pass\n"
            % (prefix, n),
            namespace,
        )
        namespace["%s_%d" % (prefix, n)]()
        n += 1


threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
for i in range(threads):
    threading.Thread(target=factory, args=("handler%d" % i,), daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(1)
