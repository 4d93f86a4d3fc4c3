#!/usr/bin/env python3
"""Accuracy harness: workloads that carry their own truth, and how far each profiler is from it.

Usage: scripts/accuracy.py [--hptop PATH] [--seconds 6] [--load 0,3,6] [--scenarios ...]
                           [--pythons all|default] [--peers]

Scenarios (each workload measures its own truth):
- contention: tests/workloads/contention.py: 2 threads loop crunch (~75 %) / blend (~25 %) with a
  thread_time_ns() system call between them, 3 sleepers; each function's own CPU share of the
  report's CPU (`report --mode cpu`) against the workload's thread_time over the same window.
  Run beside N busy loops (`--load`) on the machine's cores.
Prints one row per (scenario, Python, load): each function's truth and hptop's figure, and the
largest error in points.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = os.path.join(ROOT, "tests", "workloads")


class Load:
    """N busy loops, stopped on exit."""

    def __init__(self, n):
        self.procs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(n)]

    def __enter__(self):
        return self

    def __exit__(self, *_):
        for p in self.procs:
            p.kill()
            p.wait()


def truth_of(proc, path):
    """Asks the workload for its cumulative truth (SIGUSR1) and reads it."""
    before = os.stat(path).st_mtime_ns if os.path.exists(path) else 0
    proc.send_signal(signal.SIGUSR1)
    for _ in range(200):
        if os.path.exists(path) and os.stat(path).st_mtime_ns != before:
            try:
                with open(path) as f:
                    return json.load(f)
            except ValueError:
                pass
        time.sleep(0.01)
    sys.exit("the workload did not write its truth")


def own_cpu_shares(report):
    """Each function's own CPU seconds over all functions' (report --mode cpu)."""
    p = report["processes"][0]
    total = sum(f["cpu_s"] for f in p["functions"])
    return {f["name"].split(".")[-1]: f["cpu_s"] * 100.0 / total for f in p["functions"]}, total


def contention(hptop, python, seconds, extra):
    with tempfile.TemporaryDirectory() as tmp:
        truth_path = os.path.join(tmp, "truth.json")
        proc = subprocess.Popen(
            [python, os.path.join(WORKLOADS, "contention.py"), "2", str(seconds + 30), truth_path],
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.5)
            out_path = os.path.join(tmp, "report.json")
            runner = subprocess.Popen(
                [hptop, "report", "--pid", str(proc.pid), "--duration", str(seconds), "--mode", "cpu",
                 "--format", "json", "-o", out_path] + extra,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            time.sleep(0.3)  # attach
            first = truth_of(proc, truth_path)
            runner.wait()
            last = truth_of(proc, truth_path)
            with open(out_path) as f:
                report = json.load(f)
        finally:
            proc.kill()
            proc.wait()
    delta = {k: last[k] - first[k] for k in first}
    whole = sum(delta.values())
    truth = {k: v * 100.0 / whole for k, v in delta.items()}
    shares, _ = own_cpu_shares(report)
    # The loop's own time includes the Event.is_set() it calls.
    measured = {
        "crunch": shares.get("crunch", 0.0),
        "blend": shares.get("blend", 0.0),
        "worker": shares.get("worker", 0.0) + shares.get("is_set", 0.0),
    }
    return truth, measured, report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hptop", default=os.path.join(ROOT, "target", "release", "hptop"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--load", default="0,3")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--extra", default="")
    args = ap.parse_args()
    extra = args.extra.split()
    for load in [int(x) for x in args.load.split(",")]:
        for _ in range(args.repeat):
            with Load(load):
                time.sleep(0.3)
                truth, measured, _ = contention(args.hptop, args.python, args.seconds, extra)
            err = max(abs(measured[k] - truth[k]) for k in truth)
            cells = "  ".join("%s %.1f/%.1f" % (k, truth[k], measured[k]) for k in truth)
            print("contention load=%d  %s  max err %.1f pts" % (load, cells, err), flush=True)


if __name__ == "__main__":
    main()
