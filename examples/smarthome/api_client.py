"""A client for a home-automation REST API."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import requests


# AF502: made at import time, bound to whatever event loop exists then
FALLBACK_SESSION = aiohttp.ClientSession()


def _read_token(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


class HomeClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session: aiohttp.ClientSession | None = None
        self._access_token: str | None = None

    async def connect(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"}
        )

    async def reload_token(self, path: str) -> None:
        self.token = _read_token(path)  # AF205: the helper reads a file on the event loop

    async def is_connected(self) -> bool:
        return self._session is not None and not self._session.closed

    async def _request(self, method: str, path: str, **kwargs) -> dict:
        if not self.is_connected():  # AF101: a coroutine is always truthy
            await self.connect()
        assert self._session is not None
        for attempt in range(3):
            try:
                async with self._session.request(
                    method, f"{self.base_url}{path}", **kwargs
                ) as response:
                    response.raise_for_status()
                    return await response.json()
            except aiohttp.ClientConnectionError:
                time.sleep(2**attempt)  # AF201: blocks every agent while backing off
        raise ConnectionError(f"{method} {path} failed after 3 attempts")

    async def access_token(self) -> str:
        if self._access_token is None:  # AF402: every concurrent caller logs in
            self._access_token = await self._login()
        return self._access_token

    async def _login(self) -> str:
        result = await self._request("POST", "/auth/token")
        return result["access_token"]

    async def energy(self, entity_id: str) -> float:
        state = await self.get_state(f"sensor.{entity_id}_energy")
        return float(state["state"])

    async def probe(self) -> int:
        session = aiohttp.ClientSession()  # AF501: never closed, leaks its connections
        response = await session.get(self.base_url)
        return response.status

    async def get_state(self, entity_id: str) -> dict:
        return await self._request("GET", f"/api/states/{entity_id}")

    async def fire_event(self, event_type: str, data: dict) -> dict:
        return await self._request("POST", f"/api/events/{event_type}", json=data)

    async def fetch_forecast(self, url: str) -> dict:
        return requests.get(url, timeout=10).json()  # AF202: a blocking HTTP client

    async def call_service_later(self, delay: float, domain: str, service: str) -> None:
        loop = asyncio.get_event_loop()  # AF303: use get_running_loop() in a coroutine
        loop.call_later(delay, lambda: None)
        await self._request("POST", f"/api/services/{domain}/{service}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def __del__(self) -> None:
        if self._session is not None:
            self.close()  # AF102: a coroutine called from sync code never runs

    def started_at(self) -> float:
        return time.monotonic()  # correct: a sync method may use the time module


class SnapshotFetcher:
    """Downloads camera snapshots with a session of its own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession()  # AF503: nothing in the class ever closes it

    async def snapshot(self, camera: str) -> bytes:
        async with self.session.get(f"{self.base_url}/cameras/{camera}") as response:
            return await response.read()
