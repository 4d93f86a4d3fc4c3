"""Workload: plain class-based code on one thread, the calls a new Python specializes and
runs without the caller's own CALL: `P(3)` (type.__call__ -> `__init__`, through a shim on
3.13+), a property getter (`p.total`), `__getitem__` (`p[5]`) and a method call
(`p.calc(2)`), each doing a 50-step loop. Every path's share of the thread's samples is about
a quarter (`__init__ > calc`, `calc`, `total`, `__getitem__`); the paused reference
(`--blocking`) measures it exactly. Usage: classes.py [SECONDS]"""
import sys
import threading
import time


class P:
    def __init__(self, v):
        self.v = v
        self.w = self.calc(v)

    def calc(self, v):
        s = 0
        for i in range(50):
            s += i * v
        return s

    @property
    def total(self):
        s = 0
        for i in range(50):
            s += i
        return s + self.v

    def __getitem__(self, k):
        s = 0
        for i in range(50):
            s += i
        return s + k


def work():
    while True:
        p = P(3)
        p.total
        p[5]
        p.calc(2)


threading.Thread(target=work, daemon=True, name="worker").start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
