"""The race fixes change behaviour, not only text: the fixture modules are run under asyncio
with many concurrent tasks and fake I/O that yields. The ``before`` module loses updates or
repeats work; the ``after`` module (what asyncfix writes) does not."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = 25
_counter = itertools.count()


def _load(path: Path) -> ModuleType:
    name = f"_race_fixture_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _both(code: str, case: str) -> list[tuple[str, ModuleType]]:
    folder = FIXTURES / code
    return [
        ("before", _load(folder / f"{case}.before.py")),
        ("after", _load(folder / f"{case}.after.py")),
    ]


class FakeApi:
    """Every call yields to the loop, and counts how often it ran."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        #: how many calls of each are under way at once, now and at most
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def _io(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        self.active[name] = self.active.get(name, 0) + 1
        self.peak[name] = max(self.peak.get(name, 0), self.active[name])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self.active[name] -= 1

    async def record(self, amount: int) -> None:
        await self._io("record")

    def session(self) -> Any:
        api = self

        class _Session:
            async def __aenter__(self) -> None:
                await api._io("session")

            async def __aexit__(self, *exc: object) -> None:
                await asyncio.sleep(0)

        return _Session()

    async def get(self, key: str) -> bytes:
        await self._io("get")
        return key.encode()

    async def login(self) -> str:
        await self._io("login")
        return "token"

    async def open(self) -> None:
        await self._io("open")

    async def authorise(self, amount: int) -> None:
        await self._io("authorise")

    async def read(self) -> int:
        await self._io("read")
        return 1

    async def wait(self) -> None:
        await self._io("wait")

    async def fetch(self) -> dict:
        await self._io("fetch")
        return {"fetched": self.calls["fetch"]}

    async def name(self, user: str) -> str:
        await self._io("name")
        return user.title()

    async def avatar(self, user: str) -> str:
        await self._io("avatar")
        return f"{user}.png"

    async def friends(self, user: str) -> list[str]:
        await self._io("friends")
        return ["ann", "bob"]


async def _together(*coroutines: Any) -> list[Any]:
    return await asyncio.gather(*coroutines)


@pytest.mark.parametrize(("version", "module"), _both("AF401", "counters"))
def test_lost_updates(version: str, module: ModuleType) -> None:
    api = FakeApi()
    wallet = module.Wallet(api)

    async def scenario() -> None:
        await _together(*(wallet.deposit(1) for _ in range(TASKS)))
        await _together(*(wallet.count() for _ in range(TASKS)))
        await _together(*(wallet.remember(n) for n in range(TASKS)))

    asyncio.run(scenario())
    counts = (wallet.balance, wallet.deposits, len(wallet.history))
    if version == "before":
        assert all(count < TASKS for count in counts), counts
    else:
        assert counts == (TASKS, TASKS, TASKS)
        assert sorted(wallet.history) == list(range(TASKS))


@pytest.mark.parametrize(("version", "module"), _both("AF401", "no_init"))
def test_lost_updates_in_a_class_without_init(version: str, module: ModuleType) -> None:
    tally = module.Tally()
    api = FakeApi()
    asyncio.run(_together(*(tally.add(api) for _ in range(TASKS))))
    assert (tally.total == TASKS) is (version == "after"), tally.total


@pytest.mark.parametrize(("version", "module"), _both("AF402", "shapes"))
def test_check_then_act(version: str, module: ModuleType) -> None:
    api = FakeApi()
    service = module.Service(api)

    async def scenario() -> list[Any]:
        clients = await _together(*(service.client() for _ in range(TASKS)))
        await _together(*(service.token() for _ in range(TASKS)))
        await _together(*(service.connect() for _ in range(TASKS)))
        await _together(*(service.fetch("key") for _ in range(TASKS)))
        withdrawals = await _together(*(service.withdraw(10) for _ in range(TASKS)))
        return [clients, withdrawals]

    clients, withdrawals = asyncio.run(scenario())
    distinct_clients = len({id(client) for client in clients})
    repeated = {name: api.calls[name] for name in ("login", "open", "get")}
    if version == "before":
        assert distinct_clients > 1
        assert all(count == TASKS for count in repeated.values()), repeated
        assert service.balance < 0  # more withdrawals passed the check than the balance allows
    else:
        assert distinct_clients == 1
        assert repeated == {"login": 1, "open": 1, "get": 1}
        assert service.balance == 0 and withdrawals.count(True) == 10


@pytest.mark.parametrize(("version", "module"), _both("AF403", "augmented"))
def test_await_in_augmented_assign(version: str, module: ModuleType) -> None:
    api = FakeApi()
    meter = module.Meter(api)
    meter.by_key["k"] = 0

    async def scenario() -> None:
        await _together(*(meter.sample() for _ in range(TASKS)))
        await _together(*(meter.sample_again("k") for _ in range(TASKS)))
        await _together(*(module.accumulate(api) for _ in range(TASKS)))

    asyncio.run(scenario())
    counts = (meter.total, meter.by_key["k"], module.TOTAL)
    if version == "before":
        assert counts == (1, 1, 1)
    else:
        assert counts == (TASKS, TASKS, TASKS)


class FakeTransport(FakeApi):
    async def write(self, payload: bytes) -> None:
        await self._io("write")


@pytest.mark.parametrize(("version", "module"), _both("AF401", "module_state"))
def test_lost_updates_of_a_global(version: str, module: ModuleType) -> None:
    transport = FakeTransport()
    asyncio.run(_together(*(module.send(transport, b"x") for _ in range(TASKS))))
    assert (module.SENT == TASKS) is (version == "after"), module.SENT


@pytest.mark.parametrize(("version", "module"), _both("AF402", "module_cache"))
def test_module_cache_stampede(version: str, module: ModuleType) -> None:
    api = FakeApi()
    asyncio.run(_together(*(module.lookup(api, "key") for _ in range(TASKS))))
    assert api.calls["get"] == (TASKS if version == "before" else 1)


@pytest.mark.parametrize(("version", "module"), _both("AF402", "read_into_local"))
def test_the_lock_covers_the_read_that_feeds_the_test(version: str, module: ModuleType) -> None:
    api = FakeApi()
    credentials = module.Credentials(api)
    pages = module.Pages(api)

    async def scenario() -> None:
        await _together(*(credentials.token() for _ in range(TASKS)))
        await _together(*(pages.page("same") for _ in range(TASKS)))
        other = api.calls.get("get", 0)
        await _together(*(pages.page(f"page {n}") for n in range(TASKS)))
        assert api.calls["get"] - other == TASKS  # every other page is fetched once

    asyncio.run(scenario())
    if version == "before":
        # the lock-free code: every caller read the empty state and did the work
        assert api.calls["login"] == TASKS and api.calls["get"] == 2 * TASKS
    else:
        assert api.calls["login"] == 1 and api.calls["get"] == 1 + TASKS
        # a lock per page: fetches of different pages still overlap
        assert api.peak["get"] > 1


@pytest.mark.parametrize(("version", "module"), _both("AF402", "in_progress_flag"))
def test_an_in_progress_flag_makes_callers_wait(version: str, module: ModuleType) -> None:
    """Concurrent callers of a method guarded by an in-progress flag: before the fix all but
    the first get None at once; after it each waits its turn and gets a result."""
    api = FakeApi()
    syncer = module.Syncer(api)
    results = asyncio.run(_together(*(syncer.sync() for _ in range(TASKS))))
    if version == "before":
        assert results.count(None) == TASKS - 1 and api.calls["fetch"] == 1
    else:
        assert None not in results and api.calls["fetch"] == TASKS
        assert api.peak["fetch"] == 1  # still one fetch at a time, as the flag meant
        assert not syncer._syncing


@pytest.mark.parametrize(("version", "module"), _both("AF402", "half_built"))
def test_a_half_built_entry_is_not_handed_out(version: str, module: ModuleType) -> None:
    """Concurrent lookups of one user: before the fix the callers that arrive while the
    entry is being filled get it partial (no name yet, an empty friend list); after it every
    caller gets the whole entry, built once."""
    api = FakeApi()
    profiles = module.Profiles(api)

    async def snapshots() -> tuple[list[Any], list[Any]]:
        # each caller's copy of what it got, when it got it (the entry fills in later)
        async def profile() -> dict:
            return dict(await profiles.profile("bob"))

        async def friends() -> list:
            return list(await profiles.friends("bob"))

        entries = await _together(*(profile() for _ in range(TASKS)))
        lists = await _together(*(friends() for _ in range(TASKS)))
        return entries, lists

    entries, lists = asyncio.run(snapshots())
    whole = {"name": "Bob", "avatar": "bob.png"}
    if version == "before":
        assert sum(entry != whole for entry in entries) == TASKS - 1
        assert sum(friends != ["ann", "bob"] for friends in lists) == TASKS - 1
    else:
        assert all(entry == whole for entry in entries)
        assert all(friends == ["ann", "bob"] for friends in lists)
        assert api.calls["name"] == 1 and api.calls["friends"] == 1  # built once


class FakeStore:
    """A store behind async accessors: each call yields, and hands out copies."""

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any]] = {"kitchen": {"visits": 0, "name": ""}}
        self.registers: dict[int, int] = {1: 0}

    async def get_config(self, room: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return dict(self.configs[room])

    async def set_config(self, room: str, config: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.configs[room] = dict(config)

    async def read_register(self, number: int) -> int:
        await asyncio.sleep(0)
        return self.registers[number]

    async def write_register(self, number: int, value: int) -> None:
        await asyncio.sleep(0)
        self.registers[number] = value

    async def settle(self) -> None:
        await asyncio.sleep(0)

    async def notify(self, config: dict[str, Any]) -> None:
        await asyncio.sleep(0)

    async def check(self, name: str) -> str:
        await asyncio.sleep(0)
        return name


@pytest.mark.parametrize(("version", "module"), _both("AF401", "accessors"))
def test_updates_through_accessors_are_not_lost(version: str, module: ModuleType) -> None:
    """Two methods update one stored value through an async getter and setter, at once:
    before the fix most updates are overwritten; after it, each one lands."""
    store = FakeStore()
    rooms = module.Rooms(store, store)
    meter = module.Meter(store)
    refunds = TASKS // 5

    async def scenario() -> None:
        await _together(
            *(rooms.visit() for _ in range(TASKS)),
            *(rooms.rename(f"room {n}") for n in range(refunds)),
        )
        await _together(
            *(meter.add(1) for _ in range(TASKS)),
            *(meter.refund(1) for _ in range(refunds)),
        )

    asyncio.run(scenario())
    visits, total = store.configs["kitchen"]["visits"], store.registers[1]
    if version == "before":
        assert visits < TASKS and total != TASKS - refunds, (visits, total)
    else:
        assert (visits, total) == (TASKS, TASKS - refunds)
        assert store.configs["kitchen"]["name"].startswith("room ")


@pytest.mark.parametrize(("version", "module"), _both("AF401", "accessors_module"))
def test_module_updates_through_accessors_are_not_lost(version: str, module: ModuleType) -> None:
    async def log(message: str) -> None:
        await asyncio.sleep(0)

    misses = TASKS // 5
    asyncio.run(
        _together(
            *(module.hit(log) for _ in range(TASKS)), *(module.miss(log) for _ in range(misses))
        )
    )
    hits = module.STORE["hits"]
    assert (hits == TASKS - misses) is (version == "after"), hits


@pytest.mark.parametrize(("version", "module"), _both("AF404", "module_and_local"))
def test_the_old_lock_idiom_is_made_to_take_the_lock(version: str, module: ModuleType) -> None:
    """`with (await lock):` raises TypeError since Python 3.9, so the region it meant to
    guard never runs; `async with lock:` of the fix runs it, one task at a time."""

    class Store(FakeApi):
        async def put(self, key: str, value: int) -> None:
            await self._io("put")

    store = Store()

    async def scenario() -> list[Any]:
        return await asyncio.gather(
            *(module.save(store, "k", n) for n in range(TASKS)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    if version == "before":
        assert all(isinstance(outcome, TypeError) for outcome in outcomes)
        assert "put" not in store.calls
    else:
        assert outcomes == [None] * TASKS
        assert store.calls["put"] == TASKS and store.peak["put"] == 1


@pytest.mark.parametrize(("version", "module"), _both("AF406", "thread_lock"))
def test_a_thread_lock_across_an_await_hangs_the_loop(version: str, module: ModuleType) -> None:
    """Two tasks refresh at once: with the `threading.Lock`, the second blocks the loop's
    thread while the first is suspended holding it, and nothing ever runs again; with the
    `asyncio.Lock` of the fix, the second waits as a task and both finish."""
    import threading

    api = FakeApi()

    async def fetch(key: str) -> bytes:
        return await api.get(key)

    cache = module.Cache(fetch)
    finished = threading.Event()

    def run() -> None:
        asyncio.run(_together(*(cache.refresh(f"k{n}") for n in range(5))))
        finished.set()

    worker = threading.Thread(target=run, daemon=True)  # a hung loop cannot be stopped
    worker.start()
    worker.join(timeout=5 if version == "after" else 1)
    if version == "before":
        assert not finished.is_set()  # the loop's thread waits for a lock its own task holds
    else:
        assert finished.is_set() and sorted(cache.data) == [f"k{n}" for n in range(5)]


class SlowTv:
    """A TV whose app list fails at once and whose description takes until ``ready``."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.subscribed = 0

    async def apps(self) -> list[str]:
        await asyncio.sleep(0)
        raise ConnectionError("the TV refused the app list")

    async def describe(self) -> str:
        await self.ready.wait()
        return "description"

    async def subscribe(self, description: str) -> object:
        await asyncio.sleep(0)
        self.subscribed += 1
        return object()


@pytest.mark.parametrize(("version", "module"), _both("AF402", "gathered_tasks"))
def test_a_gathered_task_outlives_the_lock_when_another_raises(
    version: str, module: ModuleType
) -> None:
    """The refreshes run one at a time, but the first one's device task goes on after the app
    list task's error ended the refresh: the second refresh starts the device again."""
    tv = SlowTv()
    poller = module.Poller()
    player = module.Player(poller, tv)
    poller.callback = player._extra_update  # what `added()` hands over

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await poller.refresh()
            assert not poller.lock.locked()
        tv.ready.set()
        await asyncio.gather(*asyncio.all_tasks() - {asyncio.current_task()})

    asyncio.run(scenario())
    assert tv.subscribed == (2 if version == "before" else 1)


class FlakyTv(FakeApi):
    """Each answer yields to the loop; ``ping`` fails."""

    async def subscribe(self) -> object:
        await self._io("subscribe")
        return object()

    async def apps(self) -> list[str]:
        await self._io("apps")
        return []

    async def volume(self) -> int:
        await self._io("volume")
        return 1

    async def ping(self) -> None:
        await self._io("ping")
        raise ConnectionError("no answer")


def test_tasks_waited_for_under_a_lock_run_under_it() -> None:
    """The look-alike's tasks (awaited at once, or gathered with ``return_exceptions``) run
    under the caller's lock, a failing sibling or not: each start runs once."""
    module = _load(FIXTURES / "AF402" / "spawned_lookalikes.py")
    tv = FlakyTv()
    player = module.Player(tv)
    asyncio.run(_together(*(player.refresh() for _ in range(TASKS))))
    assert {name: tv.calls[name] for name in ("subscribe", "apps", "volume")} == {
        "subscribe": 1,
        "apps": 1,
        "volume": 1,
    }
    assert tv.calls["ping"] == TASKS and tv.peak["ping"] == 1
