"""Workload: names a profiler tends to drop. Each thread spins in one hostile function.

- a function whose name has 5,000 characters (called from `call_long`);
- a thread whose name has 5,000 characters (the other threads keep their names);
- a function whose name holds a lone surrogate (3.8+: the code object is renamed);
- a function defined in a file whose path holds the bytes \\xff\\xfe (not UTF-8).
Prints `ready` once all threads run.
"""
import os
import sys
import tempfile
import threading
import time

STOP = time.monotonic() + 120
LONG = "f" * 5000


def spin():
    n = 0
    while time.monotonic() < STOP:
        n += 1


namespace = {"time": time, "STOP": STOP}
exec("def %s():\n    n = 0\n    while time.monotonic() < STOP:\n        n += 1\n" % LONG, namespace)
long_named = namespace[LONG]


def call_long():
    long_named()


def spin_in_long_thread():
    spin()


surrogate_named = spin
if hasattr(spin.__code__, "replace"):
    names = {"co_name": "bad\udcffname"}
    if sys.version_info >= (3, 11):
        names["co_qualname"] = "bad\udcffname"
    surrogate_named = type(spin)(spin.__code__.replace(**names), globals(), "bad\udcffname")

bad_dir = tempfile.mkdtemp(prefix="hptop-hostile-")
bad_path = os.path.join(os.fsencode(bad_dir), b"mod_\xff\xfe.py")
with open(bad_path, "wb") as f:
    f.write(b"import time\n\ndef spin_in_badpath(stop):\n    n = 0\n    while time.monotonic() < stop:\n        n += 1\n")
source = open(bad_path, "rb").read()
bad_namespace = {}
exec(compile(source, os.fsdecode(bad_path), "exec"), bad_namespace)
# The code object keeps the path; the file itself is not needed (nor left behind on a kill).
os.unlink(bad_path)
os.rmdir(bad_dir)

threads = [
    threading.Thread(target=call_long, name="long-fn"),
    threading.Thread(target=spin_in_long_thread, name="T" * 5000),
    threading.Thread(target=surrogate_named, name="surrogate"),
    threading.Thread(target=bad_namespace["spin_in_badpath"], args=(STOP,), name="badpath"),
]
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
