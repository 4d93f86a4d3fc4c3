"""Workload: one event-loop thread whose two tasks differ in the GIL.
- `spinner` does pure-Python arithmetic per step (the GIL held throughout),
- `sleeper` blocks the loop in time.sleep(0.002) per step (the GIL released meanwhile).
Each step then yields (`await asyncio.sleep(0)`). "ready" is printed once both run.
Usage: async_gil.py SECONDS. Python 3.7+ (tasks are read on 3.14+)."""
import asyncio
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 60


def spin():
    x = 0
    for i in range(200000):  # ~10 ms: the larger share of the loop, even starved
        x += i * i
    return x


async def spinner():
    while True:
        spin()
        await asyncio.sleep(0)


async def sleeper():
    while True:
        time.sleep(0.002)  # blocks the loop; the GIL is released while asleep
        await asyncio.sleep(0)


async def main():
    tasks = [
        asyncio.create_task(spinner(), name="spinner"),
        asyncio.create_task(sleeper(), name="sleeper"),
    ]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.sleep(SECONDS)
    for task in tasks:
        task.cancel()


asyncio.run(main())
