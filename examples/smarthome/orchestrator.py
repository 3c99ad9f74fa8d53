"""Runs one agent per device and keeps track of what they report."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil

from .api_client import HomeClient

_LOGGER = logging.getLogger(__name__)


class Agent:
    """Watches one device and reports its state changes to the orchestrator."""

    def __init__(self, entity_id: str, client: HomeClient, orchestrator: Orchestrator) -> None:
        self.entity_id = entity_id
        self.client = client
        self.orchestrator = orchestrator
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            state = await self.client.get_state(self.entity_id)
            await self.orchestrator.record(self.entity_id, state)
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout=30)
            except asyncio.TimeoutError:
                continue

    def stop(self) -> None:
        self._stopped.set()


class Orchestrator:
    def __init__(self, client: HomeClient) -> None:
        self.client = client
        self.agents: dict[str, Agent] = {}
        self.states: dict[str, dict] = {}
        self._states_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self.events_seen = 0
        self.energy_total = 0.0

    async def start(self, entity_ids: list[str]) -> None:
        await self.client.connect()
        for entity_id in entity_ids:
            agent = Agent(entity_id, self.client, self)
            self.agents[entity_id] = agent
            asyncio.create_task(agent.run())  # AF301: nothing keeps this task alive
        self.announce("started")  # AF101: a coroutine method, never awaited

    async def start_supervised(self, entity_ids: list[str]) -> None:
        # correct look-alike: tasks are kept in a set until they finish
        for entity_id in entity_ids:
            agent = Agent(entity_id, self.client, self)
            task = asyncio.create_task(agent.run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def record(self, entity_id: str, state: dict) -> None:
        with self._states_lock:  # AF404: an asyncio.Lock needs `async with`
            self.states[entity_id] = state

    async def snapshot(self) -> dict[str, dict]:
        async with self._states_lock:  # correct
            return dict(self.states)

    async def save_snapshot(self, path: str) -> None:
        shutil.copyfile(path, path + ".bak")  # AF203: file I/O on the event loop
        with open(path, "w") as handle:  # AF203: the whole block blocks (reported, no fix)
            json.dump(await self.snapshot(), handle)

    async def count_event(self, event_type: str) -> None:
        seen = self.events_seen
        await self.client.fire_event(event_type, {})
        self.events_seen = seen + 1  # AF401: an event counted meanwhile is lost

    async def add_energy(self, entity_id: str) -> None:
        state = await self.client.get_state(entity_id)
        self.energy_total += float(state["state"])  # correct: no await inside the update
        self.energy_total += await self.client.energy(entity_id)  # AF403: read before the await

    async def snapshot_locked(self) -> dict[str, dict]:
        async with self._states_lock:
            return await self.snapshot()  # AF405: snapshot() takes _states_lock again

    async def refresh_all(self) -> None:
        await asyncio.gather(  # AF302: failures are returned as values, then dropped
            *(self.client.get_state(entity_id) for entity_id in self.agents),
            return_exceptions=True,
        )

    async def resync(self) -> None:
        asyncio.run(self.client.connect())  # AF304: a loop is already running here

    async def announce(self, message: str) -> None:
        await self.client.fire_event("orchestrator", {"message": message})

    async def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()  # correct: Agent.stop is a plain method
        await self.client.close()
