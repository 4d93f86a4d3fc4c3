#!/usr/bin/env python3
"""Accuracy harness: workloads that carry their own truth, and how far each profiler is from it.

Usage: scripts/accuracy.py [--hptop PATH] [--seconds 6] [--load 0,3,6] [--scenarios ...]
                           [--pythons all|default] [--peers]

Scenarios (each workload measures its own truth):
- contention: tests/workloads/contention.py: 2 threads loop crunch (~75 %) / blend (~25 %) with
  thread_time_ns() system calls between them, 3 sleepers; each function's own CPU share of the
  report's CPU (`report --mode cpu`) against the workload's thread_time over the same window
  (the calls' own CPU is the loop's, as a sampler sees it: see the workload's docstring).
  Run beside N busy loops (`--load`) on the machine's cores.
- gil: tests/workloads/gil_storm.py: four CPU-bound threads on one GIL, two looping light()
  and two heavy() (3x the work per call), each call timed with thread_time_ns: each
  function's share against that truth, as for contention.
- deep: tests/workloads/deep_recursion.py: CPU-bound at the bottom of a 400-deep recursion:
  the leaf's share of the samples (truth 100 %) and the share whose stack was read whole.
- counters: tests/workloads/counters.py (a thread that faults 4 MiB every 20 ms, one that
  writes 8 MiB/s): hptop only (the peers do not count faults or I/O): the process's minor
  faults and write_bytes over the window (/proc), the share hptop credits to functions, and
  the share of that on the function that causes them.
- classes: tests/workloads/classes.py: class-based code (a class called, a property, __getitem__,
  a method): each call path's share of the worker's samples, and its distance (half the sum of
  the shares' differences, points) from hptop's --blocking reference of another window.
- torn: tests/workloads/alternate.py: one thread alternating loop>left>left_mid>left_leaf and
  loop>right>right_mid>right_leaf; the share of samples whose stack the program can never have
  (e.g. loop>left>right_mid), from hptop's JSON stacks (`--stacks`), py-spy's raw output and
  austin's collapsed output.
hptop runs twice on contention, gil and deep: as users run it, and with `--blocking` (the
target paused per sample: exact stacks), the reference its non-blocking figures are compared
with (`--no-blocking` skips that second run).
With --peers, py-spy (`record --nonblocking`: samples of active threads) and austin 4 (`-c`:
on-CPU samples) run on the same target one after the other, each against its own truth window
(../shared/tools/peer-profilers.sh installs both). --pythons all runs every installed
interpreter (pyenv 3.8+, /opt/hptop-pythons 3.14/3.15).
Prints one row per (scenario, Python, load, profiler): each function's truth and the
profiler's figure, and the largest error in points.
"""
import argparse
import glob
import json
import os
import shutil
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


PY_SPY = shutil.which("py-spy")
AUSTIN = shutil.which("austin") or "/opt/hptop-pythons/bin/austin"
MOJO2AUSTIN = os.path.join(os.path.dirname(AUSTIN), "mojo2austin")


def py_spy_stacks(pid, seconds, tmp):
    out = os.path.join(tmp, "py-spy.txt")
    subprocess.run([PY_SPY, "record", "--nonblocking", "-r", "100", "-d", str(int(seconds)), "-f", "raw",
                    "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    stacks = []
    for line in open(out):
        body, _, count = line.rstrip("\n").rpartition(" ")
        frames = [f.split(" (")[0] for f in body.split(";")]
        stacks.append((frames, int(count)))
    return stacks


def austin_stacks(pid, seconds, tmp):
    mojo, text = os.path.join(tmp, "a.mojo"), os.path.join(tmp, "a.txt")
    subprocess.run([AUSTIN, "-c", "-i", "10ms", "-x", str(int(seconds)), "-o", mojo, "-p", str(pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    subprocess.run([MOJO2AUSTIN, mojo, text], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    stacks = []
    for line in open(text):
        if line.startswith("#") or not line.strip():
            continue
        body, _, metric = line.rstrip("\n").rpartition(" ")
        frames = [f.rsplit(":", 2)[1] for f in body.split(";")[2:] if f.count(":") >= 2]
        stacks.append((frames, int(metric)))
    return stacks


def hptop_stacks(hptop, pid, seconds, tmp, extra):
    out = os.path.join(tmp, "h.json")
    subprocess.run([hptop, "report", "--pid", str(pid), "--duration", str(seconds), "--mode", "samples",
                    "--format", "json", "--stacks", "-o", out] + extra,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    report = json.load(open(out))
    p = report["processes"][0]
    stacks = [([f["name"] for f in s["frames"]], s["samples"]) for s in p.get("stacks", [])]
    return stacks, report


def leaf_weights(name, hptop_functions=None, stacks=None, weight_key="cpu_s"):
    """Weights by innermost function (last dotted part of its name): hptop's functions'
    `weight_key`, or a peer's stacks."""
    weights = {}
    for f in hptop_functions or []:
        leaf = f["name"].split(".")[-1]
        weights[leaf] = weights.get(leaf, 0.0) + f[weight_key]
    for frames, weight in stacks or []:
        if frames:
            leaf = frames[-1].split(".")[-1]
            weights[leaf] = weights.get(leaf, 0.0) + weight
    return weights


def shares(weights, parts):
    """{part: % of the parts' whole}; `parts` maps a figure to the leaves it counts (a loop's
    own time includes the Event.is_set() it calls)."""
    got = {k: sum(weights.get(leaf, 0.0) for leaf in leaves) for k, leaves in parts.items()}
    whole = sum(got.values()) or 1.0
    return {k: v * 100.0 / whole for k, v in got.items()}


def truth_run(name, hptop, python, seconds, extra, script, args, parts):
    """(truth, measured) on a workload that writes its functions' thread time on SIGUSR1:
    hptop's `report --mode cpu` (own CPU seconds per function), py-spy's or austin's leaf
    samples, each against the truth over its own window."""
    with tempfile.TemporaryDirectory() as tmp:
        truth_path = os.path.join(tmp, "truth.json")
        proc = subprocess.Popen([python, os.path.join(WORKLOADS, script)] + args(seconds + 30, truth_path),
                                stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.5)
            if name.startswith("hptop"):
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
                    weights = leaf_weights(name, hptop_functions=json.load(f)["processes"][0]["functions"])
            else:
                first = truth_of(proc, truth_path)
                stacks = (py_spy_stacks if name == "py-spy" else austin_stacks)(proc.pid, seconds, tmp)
                last = truth_of(proc, truth_path)
                weights = leaf_weights(name, stacks=stacks)
        finally:
            proc.kill()
            proc.wait()
    delta = {k: last[k] - first[k] for k in first}
    whole = sum(delta.values())
    truth = {k: v * 100.0 / whole for k, v in delta.items()}
    return truth, shares(weights, parts)


def contention(name, hptop, python, seconds, extra):
    """The contention workload: crunch / blend / the loop making the calls."""
    return truth_run(name, hptop, python, seconds, extra, "contention.py",
                     lambda secs, truth: ["2", str(secs), truth],
                     {"crunch": ["crunch"], "blend": ["blend"], "worker": ["worker", "is_set"]})


def gil_storm(name, hptop, python, seconds, extra):
    """The GIL storm: light / heavy / the loops timing them, four threads on one GIL."""
    return truth_run(name, hptop, python, seconds, extra, "gil_storm.py",
                     lambda secs, truth: [str(secs), truth],
                     {"light": ["light"], "heavy": ["heavy"], "storm": ["storm", "is_set"]})


def deep(name, hptop, python, seconds, extra):
    """400-deep recursion, CPU-bound at its leaf: the leaf's share of the samples (truth:
    all of them; a stack cut short or torn puts its sample elsewhere), and for hptop the share
    of stacks it counted as cut short."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([python, os.path.join(WORKLOADS, "deep_recursion.py"), "400", str(seconds + 30)],
                                stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.5)
            partial = None
            if name.startswith("hptop"):
                stacks, report = hptop_stacks(hptop, proc.pid, seconds, tmp, extra)
                partial = report["processes"][0]["partial_stacks_percent"]
            elif name == "py-spy":
                stacks = py_spy_stacks(proc.pid, seconds, tmp)
            else:
                stacks = austin_stacks(proc.pid, seconds, tmp)
        finally:
            proc.kill()
            proc.wait()
    main = [(f, w) for f, w in stacks if any(x.split(".")[-1] == "descend" for x in f) or
            (f and f[-1].split(".")[-1] == "leaf")]
    whole = sum(w for _, w in main) or 1
    leaf = sum(w for f, w in main if f and f[-1].split(".")[-1] == "leaf")
    full = sum(w for f, w in main if sum(1 for x in f if x.split(".")[-1] == "descend") >= 401)
    return leaf * 100.0 / whole, full * 100.0 / whole, partial


def proc_counters(pid):
    """(minor faults, write_bytes) of the process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        minflt = int(f.read().rsplit(")", 1)[1].split()[7])
    with open("/proc/%d/io" % pid) as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    return minflt, int(io["write_bytes"])


def kernel_counters(hptop, python, seconds, extra):
    """Faults and I/O with one known cause each (tests/workloads/counters.py: a toucher that
    faults 4 MiB every 20 ms, a writer of 8 MiB/s): of the process's minor faults and
    write_bytes over hptop's window (/proc, read right before and after), the share hptop
    credits to any function, and the share of that credited to the function that causes them."""
    with tempfile.TemporaryDirectory(dir=os.path.expanduser("~")) as tmp:
        proc = subprocess.Popen([python, os.path.join(WORKLOADS, "counters.py"), tmp, str(seconds + 30)],
                                stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.5)
            out = os.path.join(tmp, "h.json")
            before = proc_counters(proc.pid)
            subprocess.run([hptop, "report", "--pid", str(proc.pid), "--duration", str(seconds), "--format", "json",
                            "-o", out] + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            after = proc_counters(proc.pid)
            with open(out) as f:
                functions = json.load(f)["processes"][0]["functions"]
        finally:
            proc.kill()
            proc.wait()
    rows = []
    for i, (key, cause) in enumerate((("minor_faults", "toucher"), ("io_bytes", "writer"))):
        truth = after[i] - before[i]
        credited = sum(f[key] for f in functions)
        by_cause = sum(f[key] for f in functions if f["name"].split(".")[-1] == cause)
        rows.append((key, truth, credited, by_cause))
    return rows


CHAINS = (["left", "left_mid", "left_leaf"], ["right", "right_mid", "right_leaf"])


def torn_share(stacks):
    """Share of the alternator's samples whose stack below `loop` is no prefix of a chain."""
    possible = impossible = 0
    for frames, weight in stacks:
        names = [f.split(".")[-1] for f in frames]
        if "loop" not in names:
            continue
        below = names[names.index("loop") + 1:]
        below = [n for n in below if n not in ("is_set",)]
        if any(chain[:len(below)] == below for chain in CHAINS):
            possible += weight
        else:
            impossible += weight
    total = possible + impossible
    return (impossible * 100.0 / total if total else float("nan")), total


def stacks_of(workload, name, hptop, python, seconds, extra):
    """Starts a workload that prints "ready", lets one profiler read it for `seconds`, and
    returns the stacks read (and hptop's report)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([python, os.path.join(WORKLOADS, workload), str(seconds + 30)],
                                stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.3)
            if name.startswith("hptop"):
                return hptop_stacks(hptop, proc.pid, seconds, tmp, extra)
            if name == "py-spy":
                return py_spy_stacks(proc.pid, seconds, tmp), None
            return austin_stacks(proc.pid, seconds, tmp), None
        finally:
            proc.kill()
            proc.wait()


def torn(name, hptop, python, seconds, extra):
    stacks, report = stacks_of("alternate.py", name, hptop, python, seconds, extra)
    share, total = torn_share(stacks)
    return share, total, report


def class_paths(stacks):
    """{path below `work`: share % of the worker's samples}; `()` is work's own code."""
    counts = {}
    for frames, weight in stacks:
        names = [f.split(".")[-1] for f in frames]
        if "work" not in names:
            continue
        below = names[names.index("work") + 1:]
        # Peers name 3.13+'s `__init__` shim as a frame of its own.
        below = [n for i, n in enumerate(below) if not (n == "__init__" and below[i + 1:i + 2] == ["__init__"])]
        key = ">".join(below) or "()"
        counts[key] = counts.get(key, 0) + weight
    total = sum(counts.values()) or 1
    return {k: v * 100.0 / total for k, v in counts.items()}


def classes(name, hptop, python, seconds, extra):
    stacks, report = stacks_of("classes.py", name, hptop, python, seconds, extra)
    return class_paths(stacks), report


def pythons(which):
    if which != "all":
        return [sys.executable]
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    found = [p for p in found if not any(v in p for v in ("/3.6.", "/3.7."))]
    found += sorted(glob.glob("/opt/hptop-pythons/root/usr/bin/python3.1[45]"))
    return found


def version_of(python):
    out = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                         stdout=subprocess.PIPE, check=False)
    return out.stdout.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hptop", default=os.path.join(ROOT, "target", "release", "hptop"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--load", default="0,3")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--extra", default="")
    ap.add_argument("--scenarios", default="contention,gil,deep,counters,classes,torn")
    ap.add_argument("--pythons", default="default", help="default (this python3) or all")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--no-blocking", action="store_true", help="skip the --blocking reference runs")
    args = ap.parse_args()
    extra = args.extra.split()
    scenarios = args.scenarios.split(",")
    profilers = ["hptop"] if args.no_blocking else ["hptop", "hptop --blocking"]
    if args.peers:
        profilers += [n for n, path in (("py-spy", PY_SPY), ("austin", AUSTIN)) if path and os.path.exists(path)]
    # The peers always sample at 100 Hz; hptop at its default unless `--extra` names a rate.
    rate = extra[extra.index("--rate") + 1] if "--rate" in extra[:-1] else "100"
    print("# %s, %d cores; %.0f s windows; hptop at %s Hz, peers at 100 Hz%s" % (
        os.uname().release, os.cpu_count(), args.seconds, rate, "; hptop " + args.extra if args.extra else ""))
    for python in pythons(args.pythons) if args.pythons == "all" else [args.python]:
        version = version_of(python)
        if "contention" in scenarios:
            for load in [int(x) for x in args.load.split(",")]:
                for _ in range(args.repeat):
                    for name in profilers:
                        with Load(load):
                            time.sleep(0.3)
                            more = extra + (["--blocking"] if name.endswith("--blocking") else [])
                            truth, measured = contention(name, args.hptop, python, args.seconds, more)
                        err = max(abs(measured[k] - truth[k]) for k in truth)
                        cells = "  ".join("%s %.1f/%.1f" % (k, truth[k], measured[k]) for k in truth)
                        print("contention %s %s load=%d  %s  max err %.1f pts" % (version, name, load, cells, err), flush=True)
        if "gil" in scenarios:
            for name in profilers:
                if name == "austin" and version.startswith("3.15"):
                    continue
                more = extra + (["--blocking"] if name.endswith("--blocking") else [])
                truth, measured = gil_storm(name, args.hptop, python, args.seconds, more)
                err = max(abs(measured[k] - truth[k]) for k in truth)
                cells = "  ".join("%s %.1f/%.1f" % (k, truth[k], measured[k]) for k in truth)
                print("gil %s %s  %s  max err %.1f pts" % (version, name, cells, err), flush=True)
        if "deep" in scenarios:
            for name in profilers:
                if name == "austin" and version.startswith("3.15"):
                    continue
                more = extra + (["--blocking"] if name.endswith("--blocking") else [])
                leaf, full, partial = deep(name, args.hptop, python, args.seconds, more)
                cut = "" if partial is None else "  (counted as cut short %.1f%%)" % partial
                print("deep %s %s  leaf %.1f%% of samples (truth 100), whole 401-deep stack %.1f%%%s"
                      % (version, name, leaf, full, cut), flush=True)
        if "counters" in scenarios:
            for key, truth, credited, by_cause in kernel_counters(args.hptop, python, args.seconds, extra):
                print("counters %s hptop %s: /proc %.0f, credited to functions %.1f%%, to its cause %.1f%% of that"
                      % (version, key, truth, credited * 100.0 / (truth or 1), by_cause * 100.0 / (credited or 1)),
                      flush=True)
        if "classes" in scenarios:
            reference = None
            for name in ["hptop --blocking"] + [n for n in profilers if n != "hptop --blocking"]:
                if name == "austin" and version.startswith("3.15"):
                    continue
                more = extra + (["--blocking"] if name.endswith("--blocking") else [])
                paths, report = classes(name, args.hptop, python, args.seconds, more)
                reference = reference or paths
                keys = set(paths) | set(reference)
                distance = sum(abs(paths.get(k, 0.0) - reference.get(k, 0.0)) for k in keys) / 2
                top = "  ".join("%s %.0f" % (k, v) for k, v in sorted(paths.items(), key=lambda kv: -kv[1])[:6])
                more = ""
                if report is not None:
                    more = "  (read again %s, dropped %s, sample_errors %s)" % (
                        report.get("stacks_reread"), report.get("stacks_dropped"), report.get("sample_errors"))
                print("classes %s %s  %s  distance from --blocking %.1f pts%s" % (version, name, top, distance, more),
                      flush=True)
        if "torn" in scenarios:
            for name in profilers:
                if name.endswith("--blocking"):
                    continue  # paused: nothing can tear
                if name == "austin" and version.startswith("3.15"):
                    print("torn %s austin: unsupported" % version)
                    continue
                share, total, report = torn(name, args.hptop, python, args.seconds, extra)
                more = ""
                if report is not None:
                    more = "  (read again %s, dropped %s, sample_errors %s)" % (
                        report.get("stacks_reread"), report.get("stacks_dropped"), report.get("sample_errors"))
                unit = "µs on CPU" if name == "austin" else "samples"
                print("torn %s %s  impossible %.2f%% of %d %s%s" % (version, name, share, total, unit, more), flush=True)


if __name__ == "__main__":
    main()
