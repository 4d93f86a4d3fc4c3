"""Workload: one busy thread in `crunch`, whose time goes to the lines of its loop (marked
LOOP, HOT-A, HOT-B) a few lines below its `def`: exports that keep lines show those lines.
The lines run once a call (FIRST, the `def` itself on 3.11+, the return) take well under 1 %
of crunch's time: a sample may land on them, rarely."""
import time


def crunch(n):  # DEF
    total = 0  # FIRST
    for i in range(n):  # LOOP
        total += i * i  # HOT-A
        total ^= i  # HOT-B
    return total  # LAST


print("ready", flush=True)
end = time.time() + 60
while time.time() < end:
    crunch(20000)
