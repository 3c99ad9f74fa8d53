"""A test that deadlocks (run on its own: `pytest -p asyncfix.pytest_plugin --asyncfix-hang 2
hangs`): two tasks, each waiting for the lock the other holds. A timeout of its own keeps it
from hanging for ever without the plugin."""

from __future__ import annotations

import asyncio


async def transfer(first: asyncio.Lock, second: asyncio.Lock) -> None:
    async with first:
        await asyncio.sleep(0.01)
        async with second:
            pass


async def main() -> None:
    a, b = asyncio.Lock(), asyncio.Lock()
    await asyncio.wait_for(asyncio.gather(transfer(a, b), transfer(b, a)), timeout=60)


def test_deadlock() -> None:
    asyncio.run(main())
