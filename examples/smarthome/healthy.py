"""The same service, written correctly: asyncfix must find nothing here."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp

_background_tasks: set[asyncio.Task] = set()
_thread_lock = threading.Lock()


async def poll(read, interval: float) -> None:
    while True:
        await read()
        await asyncio.sleep(interval)


async def start(reader) -> asyncio.Task:
    task = asyncio.create_task(poll(reader, 1.0))
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)
    return task


async def offload_blocking() -> None:
    await asyncio.to_thread(time.sleep, 0.1)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: time.sleep(0.1))


def sync_worker() -> None:
    with _thread_lock:
        time.sleep(0.1)


async def guarded(lock: asyncio.Lock, state: dict) -> None:
    async with lock:
        state["n"] = state.get("n", 0) + 1


async def run_group(jobs) -> list:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job()) for job in jobs]
    return [task.result() for task in tasks]


class TokenCache:
    """Shared state done right: tested and written under one lock, or with no await between."""

    def __init__(self, login) -> None:
        self._login = login
        self._token: str | None = None
        self._lock = asyncio.Lock()
        self._connecting = False
        self.requests = 0

    async def token(self) -> str:
        async with self._lock:
            if self._token is None:
                self._token = await self._login()
            return self._token

    async def connect(self, open_connection) -> None:
        if self._connecting:
            return
        self._connecting = True  # claimed before the await
        await open_connection()

    async def count(self, send) -> None:
        result = await send()
        self.requests += 1  # no await between the read and the write
        return result


class SnapshotFetcher:
    """Owns its session, and closes it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession()

    async def snapshot(self, camera: str) -> bytes:
        async with self.session.get(f"{self.base_url}/cameras/{camera}") as response:
            return await response.read()

    async def close(self) -> None:
        await self.session.close()


class DiscoveryProtocol(asyncio.DatagramProtocol):
    """asyncio calls `datagram_received` synchronously: a sync method that hands the data on."""

    def __init__(self) -> None:
        self.seen: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.seen.put_nowait((data, addr))
