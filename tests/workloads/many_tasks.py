"""Workload: many asyncio tasks, some that stay and some that come and go fast.
- LIVE tasks named `live-N` wait on an asyncio.Event;
- a `spawner` task starts CHURN tasks a second, named `churn-N`, each of which computes a
  little and finishes (so ~CHURN tasks are created and finished every second).
Usage: many_tasks.py LIVE CHURN SECONDS"""
import asyncio
import sys

LIVE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
CHURN = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 60


async def live(event):
    await event.wait()


async def short():
    x = 0
    for i in range(200):
        x += i
    return x


async def spawner():
    n = 0
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        batch = [asyncio.create_task(short(), name="churn-%d" % (n + i)) for i in range(CHURN // 10)]
        n += len(batch)
        await asyncio.gather(*batch)
        await asyncio.sleep(max(0.0, 0.1 - (loop.time() - start)))


async def main():
    event = asyncio.Event()
    keep = [asyncio.create_task(live(event), name="live-%d" % i) for i in range(LIVE)]
    spawn = asyncio.create_task(spawner(), name="spawner")
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await asyncio.sleep(SECONDS)
    spawn.cancel()
    event.set()
    await asyncio.gather(*keep)


asyncio.run(main())
