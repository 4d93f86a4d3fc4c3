"""Workload: one busy thread in `crunch`, whose time goes to the lines of its loop (marked
LOOP, HOT-A, HOT-B) a few lines below its `def`: exports that keep lines show those lines,
never the `def`."""
import time


def crunch(n):  # DEF
    total = 0
    for i in range(n):  # LOOP
        total += i * i  # HOT-A
        total ^= i  # HOT-B
    return total


print("ready", flush=True)
end = time.time() + 60
while time.time() < end:
    crunch(20000)
