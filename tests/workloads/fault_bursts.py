"""Workload: page faults in bursts between quiet spells, beside threads that only compute.
One thread maps 64 MiB of fresh memory and touches every page (`touch_burst`: 16,384 minor
faults, many sampling intervals long), then rests 500 ms (`rest`); three others compute and
fault nothing. Most 10 ms intervals see no fault at all: the case in which hptop's fault gate
reads no thread's `stat`.
Usage: fault_bursts.py [SECONDS]"""
import mmap
import sys
import threading
import time


def touch_burst():
    m = mmap.mmap(-1, 64 << 20)  # fresh anonymous pages: every touch faults
    for i in range(0, 64 << 20, 4096):
        m[i] = 1
    m.close()


def rest():
    time.sleep(0.5)


def burster(stop):
    while not stop.is_set():
        touch_burst()
        rest()


def compute(stop):
    n = 0
    while not stop.is_set():
        for i in range(1000):
            n += i * i


stop = threading.Event()
threads = [threading.Thread(target=burster, args=(stop,), name="burster")]
threads += [threading.Thread(target=compute, args=(stop,), name="compute-%d" % i) for i in range(3)]
for t in threads:
    t.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
stop.set()
for t in threads:
    t.join()
