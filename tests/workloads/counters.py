"""Workload with known kernel counters, one cause per thread:
- relay-a / relay-b pass a token back and forth through two queue.Queue (voluntary switches),
- hasher hashes a big buffer with hashlib (CPU in native code, GIL released: few switches),
- writer appends 64 KiB to a file at a steady WRITE_RATE bytes/s (write_bytes),
- toucher maps and touches 4 MiB of fresh memory every 20 ms (minor faults, 200 MiB/s).
Usage: counters.py DIR [SECONDS]"""
import hashlib
import mmap
import os
import queue
import sys
import threading
import time

WRITE_RATE = 8 << 20
CHUNK = 64 << 10


def relay(inbox, outbox, stop):
    while not stop.is_set():
        token = inbox.get()  # RELAY
        outbox.put(token)


def hasher(buffer, stop):
    while not stop.is_set():
        hashlib.sha256(buffer).digest()


def writer(path, stop):
    data = b"w" * CHUNK
    start = time.monotonic()
    written = 0
    with open(path, "wb") as f:
        while not stop.is_set():
            if written - (time.monotonic() - start) * WRITE_RATE >= 0:
                time.sleep(0.005)
                continue
            if f.tell() >= 32 << 20:
                f.truncate(0)  # keep the file small; new pages dirty again
                f.seek(0)
            f.write(data)  # WRITE
            f.flush()
            written += CHUNK


def toucher(stop):
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        m = mmap.mmap(-1, 4 << 20)
        for i in range(0, 4 << 20, 4096):
            m[i] = 1
        m.close()
        n += 1
        delay = start + n * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)


stop = threading.Event()
a, b = queue.Queue(), queue.Queue()
buffer = os.urandom(1 << 20)
threads = [
    threading.Thread(target=relay, args=(a, b, stop), name="relay-a", daemon=True),
    threading.Thread(target=relay, args=(b, a, stop), name="relay-b", daemon=True),
    threading.Thread(target=hasher, args=(buffer, stop), name="hasher"),
    threading.Thread(target=writer, args=(os.path.join(sys.argv[1], "out.bin"), stop), name="writer"),
    threading.Thread(target=toucher, args=(stop,), name="toucher"),
]
for t in threads:
    t.start()
a.put("token")
print("ready", flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 60)
stop.set()
