"""Workload: a thread keeps 256 KiB of fresh bytes every 125 ms (RSS grows 2 MiB/s, every
page touched), another computes a little and sleeps. Usage: leak.py [SECONDS]"""
import sys
import threading
import time

RATE = 2 << 20
CHUNK = 256 << 10
kept = []


def leak(stop):
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        kept.append(b"x" * CHUNK)  # LEAK: filled, so every page is resident
        n += 1
        delay = start + n * CHUNK / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def work(stop):
    while not stop.is_set():
        sum(range(20000))
        time.sleep(0.01)


stop = threading.Event()
threads = [threading.Thread(target=leak, args=(stop,), name="leaker"),
           threading.Thread(target=work, args=(stop,), name="worker")]
for t in threads:
    t.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 120)
stop.set()
for t in threads:
    t.join()
