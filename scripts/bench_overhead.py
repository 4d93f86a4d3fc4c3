#!/usr/bin/env python3
"""Measures hptop's own CPU cost against py-spy's on the same target, one after the other.

Usage: scripts/bench_overhead.py [--hptop PATH] [--py-spy PATH] [--seconds 10] [--repeat 3]

1. A 4-thread CPU-bound target (tests/workloads/cpu_threads.py 4):
   `hptop report --duration S --rate 100` vs
   `py-spy record --nonblocking --rate 100 --duration S --format raw`.
2. 100 idle pool threads + 1 busy: hptop vs py-spy.
3. A 100-thread target: hptop's CPU time per tick (one tick = stacks of all threads plus
   their /proc counters).
4. A multiprocessing.Pool of 3 CPU-bound workers (tests/workloads/pool.py):
   `hptop report --subprocesses` vs `py-spy record --subprocesses --nonblocking`.
5. Peers side by side (`peers`): hptop, py-spy and austin 4 (../shared/tools/peer-profilers.sh
   installs both), one after the other on the same targets, 100 Hz: 4 CPU-bound threads, an
   8-thread mixed pool (tests/workloads/mixed_pool.py), a 400-deep recursion, and 1,000 parked
   threads + 1 busy.
6. Scale (`scale`): hptop's achieved rate and CPU on 200 CPU-bound threads and on pools of
   1,000, 4,096 and 10,000 parked threads (`--scale-max` caps the largest).
7. Recording (`record`): hptop's CPU with and without `--record FILE` (the cost of recording),
   and bytes per thread-sample of hptop's recording, py-spy's raw output and austin's MOJO
   file, on the same targets one after the other.
8. asyncio (`asyncio`): on Python 3.14, a 6-task service and 1,000 tasks with churn: hptop
   (reading task lists) beside py-spy and austin.
Pick sections with --sections threads,idle,many,pool,peers,scale,record,asyncio (default: all
but scale, record and asyncio).
CPU time is user + system of the child (getrusage RUSAGE_CHILDREN), so it counts every
thread of the profiler. py-spy is taken from PATH (`pip install py-spy`) unless given.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(ROOT, "tests", "workloads", "cpu_threads.py")


def child_cpu(argv, check=True):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and out.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(argv), out.stderr.decode(errors="replace")))
    return cpu, wall, out.stdout


def start_target(threads, seconds):
    proc = subprocess.Popen([sys.executable, WORKLOAD, str(threads), str(seconds)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hptop", default=os.path.join(ROOT, "target", "release", "hptop"))
    ap.add_argument("--py-spy", default=shutil.which("py-spy"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--austin", default=shutil.which("austin") or "/opt/hptop-pythons/bin/austin")
    ap.add_argument("--sections", default="threads,idle,many,pool,peers")
    ap.add_argument("--scale-max", type=int, default=10000)
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    print("machine: %s, %d cores, %s; python %s" % (platform.machine(), os.cpu_count(), platform.release(), platform.python_version()))

    s = args.seconds
    if "threads" in sections:
        bench_threads(args, s)
    if "idle" in sections:
        bench_idle(args, s)
    if "many" in sections:
        bench_many(args, s)
    if "pool" in sections:
        bench_pool(args, s)
    if "peers" in sections:
        bench_peers(args, s)
    if "scale" in sections:
        bench_scale(args, s)
    if "record" in sections:
        bench_record(args, s)
    if "asyncio" in sections:
        bench_asyncio(args, s)


PY314 = "/opt/hptop-pythons/root/usr/bin/python3.14"


def bench_asyncio(args, s):
    """asyncio targets on Python 3.14 (hptop reads their task lists): a 6-task service
    (tests/workloads/async_tasks.py) and 1,000 waiting tasks beside 1,000 created and finished
    a second (many_tasks.py); hptop report (tasks listed, per-task figures) beside py-spy
    record --nonblocking and austin -i 10ms, one after the other, median CPU of --repeat runs."""
    if not os.path.exists(PY314):
        print("asyncio: skipped (no %s: ../shared/tools/newer-pythons.sh)" % PY314)
        return
    workloads = os.path.join(ROOT, "tests", "workloads")
    austin = shutil.which("austin") or "/opt/hptop-pythons/bin/austin"
    targets = [("6-task asyncio service", ["async_tasks.py", "600"]),
               ("1,000 tasks + 1,000/s churn", ["many_tasks.py", "1000", "1000", "600"])]
    for label, argv in targets:
        proc = subprocess.Popen([PY314, os.path.join(workloads, argv[0])] + argv[1:],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        pid = str(proc.pid)
        runs = {"hptop": [args.hptop, "report", "--pid", pid, "-d", str(s), "-o", os.devnull, "--force"]}
        if args.py_spy:
            runs["py-spy"] = [args.py_spy, "record", "--nonblocking", "-r", "100", "-d", str(int(s)),
                              "-f", "raw", "-o", os.devnull, "-p", pid]
        if os.path.exists(austin):
            runs["austin"] = [austin, "-i", "10ms", "-x", str(int(s)), "-o", os.devnull, "-p", pid]
        cpu = {name: [] for name in runs}
        try:
            for _ in range(args.repeat):
                for name, run in runs.items():
                    cpu[name].append(child_cpu(run, check=False)[0])
        finally:
            proc.kill()
            proc.wait()
        cells = ", ".join("%s %.3f s" % (n, sorted(v)[len(v) // 2]) for n, v in cpu.items())
        print("asyncio %s (%.0f s at 100 Hz, CPU of the profiler): %s" % (label, s, cells), flush=True)


def bench_threads(args, s):
    target = start_target(4, args.repeat * 2 * (s + 2) + 10)
    pid = str(target.pid)
    rows = []
    try:
        for i in range(args.repeat):
            cpu, wall, out = child_cpu([args.hptop, "report", "--pid", pid, "--duration", str(s), "--rate", "100", "--format", "json"])
            report = json.loads(out)
            rows.append(("hptop", cpu, wall, report["samples"]))
            if args.py_spy:
                with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
                    cpu, wall, _ = child_cpu([args.py_spy, "record", "--nonblocking", "--rate", "100", "--duration", str(int(s)), "--format", "raw", "-o", raw.name, "--pid", pid])
                rows.append(("py-spy", cpu, wall, None))
    finally:
        target.kill()
        target.wait()
    print("\n4-thread CPU-bound target, %.0f s at 100 Hz:" % s)
    for name, cpu, wall, samples in rows:
        extra = "" if samples is None else ", %d ticks" % samples
        print("  %-7s cpu %.3f s (%.2f%% of one core), wall %.1f s%s" % (name, cpu, cpu * 100 / s, wall, extra))
    for name in ("hptop", "py-spy"):
        cpus = sorted(c for n, c, _, _ in rows if n == name)
        if cpus:
            print("  %-7s median cpu %.3f s" % (name, cpus[len(cpus) // 2]))


def bench_idle(args, s):
    idle = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "workloads", "idle_pool.py"), "100", str(3 * (s + 2) + 10)], stdout=subprocess.PIPE)
    assert idle.stdout.readline().strip() == b"ready"
    try:
        h, _, out = child_cpu([args.hptop, "report", "--pid", str(idle.pid), "--duration", str(s), "--rate", "100", "--format", "json"])
        ticks = json.loads(out)["samples"]
        line = "\n100 idle pool threads + 1 computing, %.0f s at 100 Hz: hptop cpu %.3f s (%.0f us per tick)" % (s, h, h / max(ticks, 1) * 1e6)
        if args.py_spy:
            with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
                p, _, _ = child_cpu([args.py_spy, "record", "--nonblocking", "--rate", "100", "--duration", str(int(s)), "--format", "raw", "-o", raw.name, "--pid", str(idle.pid)])
            line += ", py-spy cpu %.3f s (hptop/py-spy %.2f)" % (p, h / p)
        print(line)
    finally:
        idle.kill()
        idle.wait()


def bench_many(args, s):
    target = start_target(100, 3 * (s + 2) + 10)
    try:
        cpu, wall, out = child_cpu([args.hptop, "report", "--pid", str(target.pid), "--duration", str(s), "--rate", "100", "--format", "json"])
        report = json.loads(out)
        threads = len(report["processes"][0]["threads"])
    finally:
        target.kill()
        target.wait()
    ticks = report["samples"] + report["sample_errors"]
    print("\n100-thread target (%d Python threads), %.0f s at 100 Hz: %d ticks (%d errors) over %.2f s%s, hptop cpu %.3f s, %.0f us per tick, achieved %.1f Hz"
          % (threads, s, ticks, report["sample_errors"], report["duration_s"],
             " (target exited!)" if report["processes"][0]["exited"] else "",
             cpu, cpu / max(ticks, 1) * 1e6, report["achieved_rate_hz"]))



def bench_pool(args, s):
    pool = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "workloads", "pool.py"), str(args.repeat * 2 * (s + 2) + 10)], stdout=subprocess.PIPE)
    assert pool.stdout.readline().strip() == b"ready"
    rows = []
    try:
        for _ in range(args.repeat):
            cpu, _, out = child_cpu([args.hptop, "report", "--subprocesses", "--pid", str(pool.pid), "--duration", str(s), "--rate", "100", "--format", "json"])
            rows.append(("hptop", cpu, len(json.loads(out)["processes"])))
            if args.py_spy:
                with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
                    cpu, _, _ = child_cpu([args.py_spy, "record", "--subprocesses", "--nonblocking", "--rate", "100", "--duration", str(int(s)), "--format", "raw", "-o", raw.name, "--pid", str(pool.pid)])
                rows.append(("py-spy", cpu, None))
    finally:
        pool.kill()
        pool.wait()
    print("\nmultiprocessing.Pool, 3 CPU-bound workers, %.0f s at 100 Hz, following subprocesses:" % s)
    for name, cpu, procs in rows:
        extra = "" if procs is None else ", %d processes" % procs
        print("  %-7s cpu %.3f s (%.2f%% of one core)%s" % (name, cpu, cpu * 100 / s, extra))
    for name in ("hptop", "py-spy"):
        cpus = sorted(c for n, c, _ in rows if n == name)
        if cpus:
            print("  %-7s median cpu %.3f s" % (name, cpus[len(cpus) // 2]))


def workload(name, *argv):
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "workloads", name)] + [str(a) for a in argv], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def profilers(args, s, pid):
    """Command lines of each profiler for `s` seconds at 100 Hz on `pid`, with its output."""
    out = tempfile.mkdtemp(prefix="hptop-bench-")
    runs = [("hptop", [args.hptop, "report", "--pid", pid, "--duration", str(s), "--rate", "100", "--format", "json", "-o", os.path.join(out, "hptop.json")])]
    if args.py_spy:
        runs.append(("py-spy", [args.py_spy, "record", "--nonblocking", "--rate", "100", "--duration", str(int(s)), "--format", "raw", "-o", os.path.join(out, "py-spy.txt"), "--pid", pid]))
    if args.austin and os.path.exists(args.austin):
        runs.append(("austin", [args.austin, "-i", "10ms", "-x", str(int(s)), "-o", os.path.join(out, "austin.mojo"), "-p", pid]))
        # austin's on-CPU mode reads each thread's /proc stat at every sample, as hptop reads
        # /proc: the like-for-like row for a profiler that also knows who is on a CPU.
        runs.append(("austin -c", [args.austin, "-c", "-i", "10ms", "-x", str(int(s)), "-o", os.path.join(out, "austin-c.mojo"), "-p", pid]))
    return out, runs


def bench_peers(args, s):
    targets = [
        ("4 CPU-bound threads", "cpu_threads.py", (4, 1000)),
        ("8-thread mixed pool", "mixed_pool.py", (1000,)),
        ("400-deep recursion", "deep_recursion.py", (400, 1000)),
        ("1,000 parked threads + 1 busy", "idle_pool.py", (1000, 1000)),
    ]
    sys.stdout.reconfigure(line_buffering=True)
    print("\nPeers, one after the other on the same target, %.0f s at 100 Hz, CPU s of the profiler (median of %d):" % (s, args.repeat))
    print("| target | hptop | py-spy | austin | austin -c |\n|---|---|---|---|---|")
    for label, script, argv in targets:
        proc = workload(script, *argv)
        cpus = {}
        try:
            time.sleep(1)
            for _ in range(args.repeat):
                out, runs = profilers(args, s, str(proc.pid))
                for name, argv_ in runs:
                    # austin 4 exits 254 when its exposure ends: judge it by its output.
                    cpu, _, _ = child_cpu(argv_, check=not name.startswith("austin"))
                    output = argv_[argv_.index("-o") + 1]
                    if not os.path.getsize(output):
                        sys.exit("%s wrote nothing: %s" % (name, " ".join(argv_)))
                    cpus.setdefault(name, []).append(cpu)
                shutil.rmtree(out, ignore_errors=True)
        finally:
            proc.kill()
            proc.wait()
        cells = []
        for name in ("hptop", "py-spy", "austin", "austin -c"):
            values = sorted(cpus.get(name, []))
            cells.append("%.3f (%s)" % (values[len(values) // 2], ", ".join("%.2f" % v for v in values)) if values else "—")
        print("| %s | %s |" % (label, " | ".join(cells)))


def bench_scale(args, s):
    print("\nScale, hptop alone, %.0f s at 100 Hz:" % s)
    cases = [("200 CPU-bound threads", "cpu_threads.py", (200, 1000))]
    cases += [("%d parked threads + 1 busy" % n, "idle_pool.py", (n, 1000)) for n in (1000, 4096, 10000) if n <= args.scale_max]
    for label, script, argv in cases:
        proc = workload(script, *argv)
        try:
            time.sleep(2)
            cpu, wall, out = child_cpu([args.hptop, "report", "--pid", str(proc.pid), "--duration", str(s), "--rate", "100", "--format", "json"])
            r = json.loads(out)
            print("  %-32s %6.1f Hz achieved, %5d threads, cpu %.2f s (%.0f%% of one core), %d errors, wall %.1f s" % (
                label, r["achieved_rate_hz"], len(r["processes"][0]["threads"]), cpu, cpu * 100 / s, r["sample_errors"], wall))
        finally:
            proc.kill()
            proc.wait()

def bench_record(args, s):
    targets = [
        ("10 threads (8 CPU-bound)", "cpu_threads.py", (8, 1000), 10),
        ("8-thread mixed pool", "mixed_pool.py", (1000,), 9),
        ("200 parked threads + 1 busy", "idle_pool.py", (200, 1000), 202),
    ]
    sys.stdout.reconfigure(line_buffering=True)
    print("\nRecording, %.0f s at 100 Hz (median of %d): hptop CPU s without and with --record, "
          "and bytes per thread-sample written by each tool:" % (s, args.repeat))
    print("| target | hptop report | hptop report --record | cost | hptop B/sample | py-spy raw B/sample | austin MOJO B/sample |")
    print("|---|---|---|---|---|---|---|")
    for label, script, argv, threads in targets:
        proc = workload(script, *argv)
        plain, recorded, sizes = [], [], {}
        try:
            time.sleep(1)
            for _ in range(args.repeat):
                out = tempfile.mkdtemp(prefix="hptop-bench-")
                pid = str(proc.pid)
                base = [args.hptop, "report", "--pid", pid, "--duration", str(s), "--rate", "100", "--format", "json"]
                cpu, _, report = child_cpu(base + ["-o", os.path.join(out, "a.json")])
                plain.append(cpu)
                rec = os.path.join(out, "r.hptop")
                cpu, _, _ = child_cpu(base + ["-o", os.path.join(out, "b.json"), "--record", rec])
                recorded.append(cpu)
                with open(os.path.join(out, "b.json")) as f:
                    report = json.load(f)
                samples = sum(t["samples"] for p in report["processes"] for t in p["threads"]) or report["samples"] * threads
                sizes.setdefault("hptop", []).append(os.path.getsize(rec) / samples)
                _, runs = profilers(args, s, pid)
                for name, argv_ in runs[1:]:
                    if name == "austin -c":
                        continue  # sizes of austin's default (wall-time) output only
                    output = os.path.join(out, os.path.basename(argv_[argv_.index("-o") + 1]))
                    argv_[argv_.index("-o") + 1] = output
                    child_cpu(argv_, check=name != "austin")
                    sizes.setdefault(name, []).append(os.path.getsize(output) / samples)
                shutil.rmtree(out, ignore_errors=True)
        finally:
            proc.kill()
            proc.wait()
        med = lambda v: sorted(v)[len(v) // 2] if v else float("nan")
        a, b = med(plain), med(recorded)
        print("| %s | %.3f | %.3f | %+.1f %% | %.1f | %s | %s |" % (
            label, a, b, (b - a) * 100 / a, med(sizes["hptop"]),
            "%.1f" % med(sizes["py-spy"]) if "py-spy" in sizes else "—",
            "%.1f" % med(sizes["austin"]) if "austin" in sizes else "—"))


if __name__ == "__main__":
    main()
