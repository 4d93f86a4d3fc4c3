"""Workload: a thread started without a name (`_thread`), named `loader` after 1.5 s of work,
then working on: every export must call it `loader`, as the JSON report does."""
import _thread
import threading
import time


def burn(seconds):
    end = time.time() + seconds
    while time.time() < end:
        sum(i * i for i in range(1000))


def work():
    burn(1.5)
    threading.current_thread().name = "loader"
    burn(60)


_thread.start_new_thread(work, ())
print("ready", flush=True)
time.sleep(60)
