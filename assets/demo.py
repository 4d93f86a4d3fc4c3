"""hptop's demo workload: a small ETL job with threads that behave differently.

- "parser" threads parse and aggregate records in pure Python (CPU-bound, need the GIL);
- a "hasher" thread checksums big buffers with hashlib (native code, releases the GIL);
- a "writer" thread writes batches to a temporary file (I/O);
- a "loader" thread allocates and touches fresh memory (page faults);
- the main thread waits.

Runs for SECONDS (default 30), then exits. Standard library only, Python 3.6+.
"""
import hashlib
import json
import os
import random
import sys
import tempfile
import threading
import time


def parse_record(line):
    fields = line.split(",")
    return {"id": int(fields[0]), "score": float(fields[1]), "tags": fields[2].split("|")}


def aggregate(records):
    totals = {}
    for r in records:
        for tag in r["tags"]:
            totals[tag] = totals.get(tag, 0.0) + r["score"]
    return totals


def parser(stop_at, seed):
    rng = random.Random(seed)
    lines = ["%d,%f,%s" % (i, rng.random(), "|".join(rng.sample("abcdefgh", 3))) for i in range(2000)]
    while time.monotonic() < stop_at:
        records = [parse_record(line) for line in lines]
        aggregate(records)


def checksum(buffer):
    return hashlib.sha256(buffer).hexdigest()


def hasher(stop_at):
    buffer = os.urandom(8 << 20)
    while time.monotonic() < stop_at:
        checksum(buffer)


def write_batch(f, batch):
    f.write(json.dumps(batch).encode())
    f.flush()
    os.fsync(f.fileno())


def writer(stop_at):
    with tempfile.TemporaryFile() as f:
        batch = [{"id": i, "value": i * 0.5} for i in range(5000)]
        while time.monotonic() < stop_at:
            write_batch(f, batch)
            f.seek(0)
            f.truncate()
            time.sleep(0.05)


def load_chunk(size):
    chunk = bytearray(size)
    for i in range(0, size, 4096):
        chunk[i] = 1
    return chunk


def loader(stop_at):
    while time.monotonic() < stop_at:
        load_chunk(16 << 20)
        time.sleep(0.02)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=parser, args=(stop_at, i), name="parser-%d" % i) for i in range(2)]
    threads += [
        threading.Thread(target=hasher, args=(stop_at,), name="hasher"),
        threading.Thread(target=writer, args=(stop_at,), name="writer"),
        threading.Thread(target=loader, args=(stop_at,), name="loader"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
