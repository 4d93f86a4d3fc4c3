"""Workload: one busy main thread in a program that never imports `threading` (3.14 and 3.15
start without it): its main thread is still MainThread."""
import sys
import time


def spin():
    end = time.time() + 60
    while time.time() < end:
        sum(i * i for i in range(500))


assert "threading" not in sys.modules or sys.version_info < (3, 14), "threading was imported"
print("ready", flush=True)
spin()
