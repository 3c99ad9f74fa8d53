"""A small service whose tests exercise every runtime signal asyncfix's pytest plugin records
(`pytest -p asyncfix.pytest_plugin`): each function is a bug static analysis cannot see, or
cannot be sure of, that shows itself while the code runs."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import aiohttp

HANDLERS: dict[str, object] = {}


async def refresh(device: str) -> str:
    await asyncio.sleep(0)
    return device


HANDLERS["refresh"] = refresh


async def dispatch(action: str, device: str) -> None:
    handler = HANDLERS[action]  # dynamic dispatch: which function this is shows at run time
    handler(device)  # never awaited


async def _poll_forever() -> None:
    while True:
        await asyncio.sleep(3600)


async def start_polling() -> None:
    asyncio.get_running_loop().create_task(_poll_forever())  # nobody keeps or cancels it


async def _fail() -> None:
    raise ValueError("device offline")


async def start_failing_job() -> None:
    asyncio.get_running_loop().create_task(_fail())  # its exception is never retrieved
    await asyncio.sleep(0.01)


async def read_sensor() -> float:
    time.sleep(0.15)  # holds the event loop
    await asyncio.sleep(0)
    return 21.5


def _read_disk(name: str) -> str:
    time.sleep(0.15)  # a slow disk: called from a coroutine, it holds the event loop
    return name


BACKENDS: dict[str, Callable[[str], str]] = {"disk": _read_disk}


async def load_profile(name: str) -> str:
    backend = BACKENDS["disk"]  # which function this is shows at run time
    profile = backend(name)  # holds the event loop
    await asyncio.sleep(0)
    return profile


def probe(port: int) -> bool:
    connection = socket.socket()  # never closed
    return connection.fileno() > 0 and port > 0


async def session_headers() -> int:
    session = aiohttp.ClientSession()  # never closed
    return len(session.headers)


SESSIONS: dict[str, Callable[[], aiohttp.ClientSession]] = {"default": aiohttp.ClientSession}


async def session_timeout() -> float:
    session = SESSIONS["default"]()  # which class this is shows at run time; never closed
    return session.timeout.total or 0.0
