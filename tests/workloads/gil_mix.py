"""Workload: two CPU-bound threads contending for the GIL, a thread blocked on a
threading.Lock that the main thread holds (a futex, but not the GIL's), and one waiting on an
empty queue.Queue. Main sleeps."""
import queue
import sys
import threading
import time


def burn(stop):
    n = 0
    while not stop.is_set():
        n += 1


def blocked(lock):
    with lock:
        pass


def consume(q):
    q.get()


stop = threading.Event()
lock = threading.Lock()
lock.acquire()
threads = [threading.Thread(target=burn, args=(stop,), name="worker-%d" % i) for i in range(2)]
threads.append(threading.Thread(target=blocked, args=(lock,), name="locked"))
q = queue.Queue()
threads.append(threading.Thread(target=consume, args=(q,), name="consumer"))
for t in threads:
    t.start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
stop.set()
lock.release()
q.put(None)
for t in threads:
    t.join()
