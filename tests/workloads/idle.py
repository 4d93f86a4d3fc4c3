"""Workload: a Python process that only sleeps (for error and ps tests)."""
import time

print("ready", flush=True)
time.sleep(120)
