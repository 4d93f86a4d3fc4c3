"""Workload: burns CPU in `spin` for SECONDS (default 1.5), then exits with status CODE
(default 0). Usage: exits_soon.py [SECONDS] [CODE]"""
import sys
import time


def spin(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1  # HOT
    return n


print("ready", flush=True)
spin(float(sys.argv[1]) if len(sys.argv) > 1 else 1.5)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
