"""Listen to the API's websocket and reconnect when it drops."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import threading
import time

import aiohttp

_LOGGER = logging.getLogger(__name__)


class EventStream:
    def __init__(self, url: str) -> None:
        self.url = url
        self.listeners: list = []
        self._send_lock = threading.Lock()

    async def _listen(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            for listener in self.listeners:
                listener(message.data)

    async def run_forever(self, session: aiohttp.ClientSession) -> None:
        delay = 1.0
        while True:
            try:
                async with session.ws_connect(self.url) as ws:
                    delay = 1.0
                    listener = asyncio.ensure_future(self._listen(ws))  # AF301: never used again
                    await ws.receive()
            except aiohttp.ClientError as err:
                _LOGGER.warning("websocket dropped: %s; retrying in %.0fs", err, delay)
                time.sleep(delay)  # AF201: the whole service freezes while we wait
                delay = min(delay * 2, 60)
            asyncio.sleep(0)  # AF101: this coroutine never runs

    async def send(self, ws: aiohttp.ClientWebSocketResponse, payload: dict) -> None:
        with self._send_lock:  # AF406: a thread lock held while suspended
            await ws.send_json(payload)

    async def relay(self, ws: aiohttp.ClientWebSocketResponse, queue: asyncio.Queue) -> None:
        while True:
            try:
                await ws.send_json(await queue.get())
            except:  # AF305: also catches the task's cancellation, and the loop goes on
                _LOGGER.debug("send failed")

    async def drain(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            await ws.close()
        except Exception:  # correct: errors only; cancellation still ends the task
            _LOGGER.debug("close failed")

    async def notify_desktop(self, text: str) -> None:
        subprocess.run(["notify-send", text], check=False)  # AF204: waits for the process

    async def confirm_reset(self) -> bool:
        return input("reset the hub? [y/N] ") == "y"  # AF206: waits for the terminal

    def backoff_sync(self, delay: float) -> None:
        time.sleep(delay)  # correct: a sync method, run in a worker thread


class DiscoveryProtocol(asyncio.DatagramProtocol):
    """Hubs announce themselves on the LAN."""

    def __init__(self) -> None:
        self.seen: asyncio.Queue = asyncio.Queue()

    async def datagram_received(self, data: bytes, addr: tuple) -> None:  # AF103: never awaited
        await self.seen.put((data, addr))
