"""Workload: a thread that sleeps alternately in `phase_a` and `phase_b`, 0.2 s each.

It is off CPU almost all the time, so hptop reuses its stack between samples (it has not
run); each phase must still get about half of the thread's samples."""
import threading
import time


def phase_a():
    time.sleep(0.2)


def phase_b():
    time.sleep(0.2)


def alternate(stop):
    while not stop.is_set():
        phase_a()
        phase_b()


stop = threading.Event()
t = threading.Thread(target=alternate, args=(stop,), name="phaser")
t.start()
print("ready", flush=True)
time.sleep(120)
stop.set()
t.join()
