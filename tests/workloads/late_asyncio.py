"""Workload: a program that imports asyncio only after a while (a service that loads its
configuration first), then runs one task `late` that sleeps.
Usage: late_asyncio.py DELAY_SECONDS [SECONDS=60]. Python 3.7+ (tasks are read on 3.14+)."""
import sys
import time

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 2
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 60
time.sleep(DELAY)

import asyncio  # noqa: E402  (late, on purpose)


async def main():
    task = asyncio.create_task(asyncio.sleep(SECONDS), name="late")
    await task


asyncio.run(main())
