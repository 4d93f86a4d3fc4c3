"""Workload: two threads hashing big buffers with hashlib (which releases the GIL while it
hashes), plus a thread sleeping in time.sleep. Usage: native_hash.py [SECONDS]"""
import hashlib
import os
import sys
import threading
import time


def hash_forever(buffer, stop):
    while not stop.is_set():
        hashlib.sha256(buffer).digest()


def nap(stop):
    while not stop.is_set():
        time.sleep(0.2)


stop = threading.Event()
buffer = os.urandom(16 << 20)
threads = [threading.Thread(target=hash_forever, args=(buffer, stop), name="hasher-%d" % i) for i in range(2)]
threads.append(threading.Thread(target=nap, args=(stop,), name="napper"))
for t in threads:
    t.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
stop.set()
for t in threads:
    t.join()
