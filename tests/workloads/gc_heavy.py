"""A thread that keeps the cyclic garbage collector busy, and measures how busy.

usage: gc_heavy.py [SECONDS=10] [busy]

The main thread builds small trees of linked records (children point to their parent, the
parent to its children: every tree is a reference cycle, freed only by the collector) and
keeps a window of recent trees alive, so that collections of the older generations have
survivors to traverse too. With default thresholds about half of its CPU time is spent in
collections. With `busy`, a second thread spins on integer arithmetic (no GC-tracked objects).

Its own truth: `gc.callbacks` takes the thread's CPU time (`time.thread_time()`) at each
collection's "start" and "stop". Every 0.5 s, if env GC_TRUTH names a file, one JSON line
is appended to it: {"t", "gc_cpu_s", "thread_cpu_s", "collections", "wall"} (t: seconds
since start; wall: Unix time). "ready" is printed once the loop runs.
Python 3.8+, no third-party imports.
"""
import gc
import json
import os
import sys
import threading
import time

DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
KEEP = 100  # trees kept alive (a sliding window): survivors for gen1/gen2 to traverse
CHILDREN = 8
WORK = 40  # interpreted, allocation-free work per tree: tunes the share of time in GC

gc_cpu = 0.0  # CPU seconds inside collections (this thread)
collections = 0
_started = None


def on_gc(phase, info):
    # Runs inside the collection, on the thread that triggered it.
    global gc_cpu, collections, _started
    now = time.thread_time()
    if phase == "start":
        _started = now
    elif _started is not None:
        gc_cpu += now - _started
        collections += 1
        _started = None


class Record:
    __slots__ = ("parent", "children", "payload", "__weakref__")

    def __init__(self, parent):
        self.parent = parent
        self.children = []
        self.payload = None


def tree():
    root = Record(None)
    for _ in range(CHILDREN):
        child = Record(root)  # child -> parent and parent -> child: a cycle
        child.payload = [child]  # one more tracked container, in the cycle
        root.children.append(child)
    x = 0
    for j in range(WORK):  # small ints only: nothing for the collector
        x += j * j
    return root


def spin():
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def main():
    if len(sys.argv) > 2 and sys.argv[2] == "busy":
        threading.Thread(target=spin, daemon=True).start()
    out = open(os.environ["GC_TRUTH"], "a") if os.environ.get("GC_TRUTH") else None
    gc.callbacks.append(on_gc)
    # Fewer, longer collections than the default 700: the callbacks' own time (inside a
    # collection, outside the timing) stays a small part of each.
    gc.set_threshold(5000, 10, 10)
    window = [None] * KEEP
    start = time.monotonic()
    cpu0 = time.thread_time()
    next_report = start + 0.5
    i = 0
    print("ready", flush=True)
    while True:
        window[i % KEEP] = tree()  # the tree it replaces becomes cyclic garbage
        i += 1
        if i % 64 == 0:
            now = time.monotonic()
            if now >= next_report:
                next_report += 0.5
                if out is not None:
                    line = {
                        "t": round(now - start, 4),
                        "gc_cpu_s": round(gc_cpu, 6),
                        "thread_cpu_s": round(time.thread_time() - cpu0, 6),
                        "collections": collections,
                        "wall": time.time(),
                    }
                    out.write(json.dumps(line) + "\n")
                    out.flush()
            if now - start >= DURATION:
                break


if __name__ == "__main__":
    main()
