"""Workload: one thread alternating two call chains of a few microseconds each,
loop > left > left_mid > left_leaf and loop > right > right_mid > right_leaf. A stack read
without pausing while it changes can come back as one the program can never have (e.g.
loop > left > right_mid): torn. Usage: alternate.py [SECONDS]"""
import sys
import threading
import time


def left_leaf():
    x = 0
    for i in range(100):
        x += i
    return x


def left_mid():
    return left_leaf()


def left():
    return left_mid()


def right_leaf():
    x = 0
    for i in range(100):
        x -= i
    return x


def right_mid():
    return right_leaf()


def right():
    return right_mid()


def loop(stop):
    while not stop.is_set():
        left()
        right()


stop = threading.Event()
t = threading.Thread(target=loop, args=(stop,), name="alternator")
t.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
stop.set()
t.join()
