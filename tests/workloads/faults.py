"""Workload: one thread maps and touches fresh memory in a loop (page faults), another only
computes. Usage: faults.py [SECONDS]"""
import mmap
import sys
import threading
import time


def allocate(stop):
    while not stop.is_set():
        m = mmap.mmap(-1, 8 << 20)  # fresh anonymous pages: every touch faults
        for i in range(0, 8 << 20, 4096):
            m[i] = 1
        m.close()


def compute(stop):
    n = 0
    while not stop.is_set():
        n += 1


stop = threading.Event()
threads = [threading.Thread(target=allocate, args=(stop,), name="alloc"),
           threading.Thread(target=compute, args=(stop,), name="compute")]
for t in threads:
    t.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
stop.set()
for t in threads:
    t.join()
