"""A lost update that the loop's usual order hides: the second increment starts after the
first read, and in FIFO order the first one writes back before the second reads. When the
first increment resumes a moment later (its `await` completing later, as real I/O may),
both read the same value and one update is lost: `pytest --asyncfix-perturb 50` finds it.
asyncfix reports it statically too (AF401) and its lock fix is `LockedCounter`."""

from __future__ import annotations

import asyncio


class Counter:
    def __init__(self) -> None:
        self.value = 0

    async def increment(self) -> None:
        value = self.value
        await asyncio.sleep(0)  # a round trip to the store, say
        self.value = value + 1


class LockedCounter:
    def __init__(self) -> None:
        self.value = 0
        self._value_lock = asyncio.Lock()

    async def increment(self) -> None:
        async with self._value_lock:
            value = self.value
            await asyncio.sleep(0)
            self.value = value + 1


async def two_increments(counter: Counter | LockedCounter) -> int:
    first = asyncio.create_task(counter.increment())
    await asyncio.sleep(0)
    second = asyncio.create_task(counter.increment())
    await asyncio.gather(first, second)
    return counter.value
