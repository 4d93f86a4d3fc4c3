"""Workload: an 8-thread mixed pool, as a server's: 3 threads of pure-Python work (GIL-bound),
2 hashing in native code (GIL released), 2 waiting on a queue fed by 1 producer that sleeps
between items. Usage: mixed_pool.py [SECONDS]"""
import hashlib
import queue
import sys
import threading
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
stop = time.monotonic() + seconds


def python_work():
    n = 0
    while time.monotonic() < stop:
        for i in range(1000):
            n += i * i


def native_hash():
    data = b"x" * (1 << 20)
    while time.monotonic() < stop:
        hashlib.sha256(data).digest()


def consumer(q):
    while time.monotonic() < stop:
        try:
            q.get(timeout=0.1)
        except queue.Empty:
            pass


def producer(q):
    while time.monotonic() < stop:
        q.put(sum(range(1000)))
        time.sleep(0.005)


q = queue.Queue()
threads = [threading.Thread(target=python_work, name="py-%d" % i) for i in range(3)]
threads += [threading.Thread(target=native_hash, name="hash-%d" % i) for i in range(2)]
threads += [threading.Thread(target=consumer, args=(q,), name="consumer-%d" % i) for i in range(2)]
threads.append(threading.Thread(target=producer, args=(q,), name="producer"))
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
