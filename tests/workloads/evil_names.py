"""Workload: a thread and a function whose names hold terminal escape sequences.

A tool that prints them raw would retitle the terminal (OSC 0) and turn text red (CSI 31m).
"""
import sys
import threading
import time

EVIL = "\x1b]0;pwned\x07\x1b[31mevil\u202e"


def plain(stop_at):
    n = 0
    while time.monotonic() < stop_at:
        n += 1
    return n


evil = plain
if hasattr(plain.__code__, "replace"):  # 3.8+: rename the code object itself
    names = {"co_name": "burn" + EVIL}
    if sys.version_info >= (3, 11):  # profilers read co_qualname from 3.11 on
        names["co_qualname"] = "burn" + EVIL
    evil = type(plain)(plain.__code__.replace(**names), globals(), "burn" + EVIL)

stop = time.monotonic() + 60
t = threading.Thread(target=evil, args=(stop,), name="thread" + EVIL)
t.start()
print("ready", flush=True)
t.join()
