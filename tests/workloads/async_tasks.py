"""Workload: an asyncio service on one event-loop thread. Tasks (names are asyncio's):
- `main` (Task-1) runs a TaskGroup `fan-out` that starts `worker-a` and `worker-b`, both
  running the coroutine function `crunch_loop`: worker-a does 10 units of pure-Python work per
  step, worker-b 30 units (~1 ms and ~3 ms), each step then yields (`await asyncio.sleep(0)`).
  Each step is timed with time.thread_time_ns, so each task's CPU is known exactly. UNITS
  sets worker-a's units (worker-b does three times as many): 1 gives steps of ~0.1 and
  ~0.3 ms, as in many services.
- `waiter` waits on an asyncio.Event that is never set (await point: Event.wait);
- `flusher` sleeps 50 ms in a loop (await point: sleep, in flush_loop);
- `joiner` awaits the task `waiter` itself (`await task`: who awaits whom).
Usage: async_tasks.py SECONDS [TRUTH_FILE] [UNITS=10]
On SIGUSR1 the loop writes each worker task's cumulative thread CPU ns to TRUTH_FILE as JSON,
with every task as asyncio lists it (its id as `hex(id(task))`, and its coroutine chain by
`cr_await`, outermost first): {"worker-a": ns, "worker-b": ns, "tasks": {name: {"id": ..,
"chain": [qualname, ...]}}}."""
import asyncio
import json
import os
import signal
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 60
TRUTH = sys.argv[2] if len(sys.argv) > 2 else None
UNITS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
spent = {"worker-a": 0, "worker-b": 0}


def work(units):
    x = 0
    for _ in range(units):
        for i in range(2000):
            x += i * i
    return x


async def crunch_loop(name, units):
    t = time.thread_time_ns
    while True:
        a = t()
        work(units)
        spent[name] += t() - a
        await asyncio.sleep(0)


async def flush_loop():
    while True:
        await asyncio.sleep(0.05)


async def wait_forever(event):
    await event.wait()


async def join(task):
    await task


def chain(coro):
    names = []
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        names.append(coro.cr_code.co_qualname)
        coro = coro.cr_await
    return names


def write_truth():
    tasks = {
        t.get_name(): {"id": hex(id(t)), "chain": chain(t.get_coro())}
        for t in asyncio.all_tasks()
    }
    with open(TRUTH + ".tmp", "w") as f:
        json.dump(dict(spent, tasks=tasks), f)
    os.replace(TRUTH + ".tmp", TRUTH)


async def fan_out():
    async with asyncio.TaskGroup() as group:
        group.create_task(crunch_loop("worker-a", UNITS), name="worker-a")
        group.create_task(crunch_loop("worker-b", 3 * UNITS), name="worker-b")


async def main():
    if TRUTH:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, write_truth)
    event = asyncio.Event()
    waiter = asyncio.create_task(wait_forever(event), name="waiter")
    flusher = asyncio.create_task(flush_loop(), name="flusher")
    fan = asyncio.create_task(fan_out(), name="fan-out")
    asyncio.create_task(join(waiter), name="joiner")
    print("ready", flush=True)
    await asyncio.sleep(SECONDS)
    for task in (waiter, flusher, fan):
        task.cancel()


asyncio.run(main())
