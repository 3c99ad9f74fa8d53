"""The project index's function summaries (issue 16, item 3): what a function does with each
parameter, and what a coroutine method reads of its object's state before its first
suspension and writes after one -- the same after a trip through the index cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncfix.index import FunctionFact, ModuleFact, facts_from_source, from_raw, to_raw

SOURCE = """
import asyncio
import functools
from typing import Awaitable, Callable, Optional

CACHE = None
Handler = Callable[[str], Awaitable[None]]
MaybeHandler = Optional["Callable[[str], Awaitable[None]]"]
Either = Callable[[str], Awaitable[None]] | None
SyncHandler = Callable[[str], None]
Twice = Callable[[str], Awaitable[None]]
Twice = Callable[[str], None]


async def schedules(coro, flag, callback):
    if flag:
        print(flag)
    asyncio.create_task(coro)
    return callback


def drops(first, second, *args, **options):
    first
    if second:
        pass
    rest = options


def rebinds(value, other):
    value = value or 2
    def inner(other):
        return other
    return value, inner


def captures(value):
    return lambda: value


@functools.wraps(print)
def wrapped(value):
    return value


class Client:
    async def refresh(self, key):
        if self.token is None:
            self.pending = key
            await self.fetch()
            self.token = await self.fetch()
            self.cache[key] = 1
        async with self._lock:
            pass

    async def fill(self):
        global CACHE
        if CACHE is None:
            await asyncio.sleep(0)
            CACHE = 1

    async def close(self):
        await self.session.close()

    def sync(self, item):
        self.items.append(item)

    @staticmethod
    async def helper(item):
        await item

    def reconnect(self):
        return self.connect()

    async def legacy(self):
        with (await self._old_lock):
            pass

    def refresh_all(self):
        self.update()
        self.session.close()
        value = self.read()
        def inner():
            self.nested()


def pause(seconds):
    if seconds:
        return asyncio.sleep(seconds)


def pause_always(seconds):
    if seconds > 1:
        return asyncio.sleep(1)
    else:
        return asyncio.sleep(seconds)


def from_parameter(factory):
    return factory()


def cached_or_fetched(cache):
    if cache:
        return cache
    return asyncio.sleep(0)


def pauses_lazily():
    yield asyncio.sleep(0)
    return asyncio.sleep(1)


def iterates(report, items):
    'A docstring.'
    total = 0
    for item in items:
        report(item)
    return items


def iterates_unless(items, quiet):
    if quiet:
        return
    for item in items:
        print(item)


def iterates_in_a_branch(items, wanted):
    if wanted:
        for item in items:
            print(item)


def iterates_lazily(items):
    for item in items:
        yield item
"""


@pytest.fixture(params=["facts", "cached"])
def module(request: pytest.FixtureRequest) -> ModuleFact:
    facts = facts_from_source(SOURCE, Path("app.py"))
    assert facts is not None
    if request.param == "cached":  # as a later run reads it back from the JSON cache
        return from_raw(json.loads(json.dumps(to_raw(facts))))
    return facts


def _function(module: ModuleFact, name: str) -> FunctionFact:
    if "." in name:
        cls, method = name.split(".")
        return module.classes[cls].methods[method]
    return module.functions[name]


@pytest.mark.parametrize(
    ("function", "parameters"),
    [
        (
            "schedules",
            {"coro": ("scheduled",), "flag": ("tested", "value"), "callback": ("returned",)},
        ),
        (
            "drops",
            {"first": ("dropped",), "second": ("tested",), "args": (), "options": ("aliased",)},
        ),
        # `value` is rebound, and a nested function's parameter shadows `other`: not known
        ("rebinds", {"value": None, "other": None}),
        ("captures", {"value": ("captured",)}),
        # a decorator may wrap the function: what it does with its arguments is not known
        ("wrapped", {"value": None}),
        # what a method does with its receiver is not summed up
        ("Client.refresh", {"self": None, "key": ("other", "stored")}),
        ("Client.sync", {"self": None, "item": ("passed",)}),
        ("Client.helper", {"item": ("awaited",)}),
        # a `for` over the parameter is its first read, at the top of the body, after no
        # `return`: every call iterates it
        ("iterates", {"report": ("called",), "items": ("iterated", "iterated-first", "returned")}),
        ("iterates_unless", {"items": ("iterated",), "quiet": ("tested",)}),
        ("iterates_in_a_branch", {"items": ("iterated",), "wanted": ("tested",)}),
        ("iterates_lazily", {"items": ("iterated",)}),  # a generator: a call runs nothing
    ],
)
def test_what_a_function_does_with_each_parameter(
    module: ModuleFact, function: str, parameters: dict[str, tuple[str, ...]]
) -> None:
    fact = _function(module, function)
    assert {name: kinds for name, _, kinds in fact.parameters} == parameters
    for name, kinds in parameters.items():
        assert fact.parameter_uses(name) == kinds
    assert fact.parameter_uses("missing") is None


def test_state_a_coroutine_method_reads_before_its_first_suspension_and_writes_after(
    module: ModuleFact,
) -> None:
    refresh = _function(module, "Client.refresh")
    # `self.fetch()` is a method call, not state; `pending` is written before the await
    assert refresh.reads_before == ("token",)
    assert refresh.writes_after == ("cache", "token")
    assert refresh.enters == ("_lock",)
    assert _function(module, "Client.legacy").enters == ("_old_lock",)  # `with (await lock)`
    fill = _function(module, "Client.fill")
    assert fill.globals_read_before == ("CACHE",)
    assert fill.globals_written_after == ("CACHE",)
    assert fill.reads_before == () and fill.writes_after == ()
    close = _function(module, "Client.close")
    assert close.awaits_on_self == ("session.close",)
    assert close.reads_before == ("session",)
    # a sync method has no suspension: nothing recorded around one
    sync = _function(module, "Client.sync")
    assert sync.reads_before == () and sync.writes_after == ()


def test_which_parameter_an_argument_goes_to(module: ModuleFact) -> None:
    drops = _function(module, "drops")  # (first, second, *args, **options)
    assert [(name, how) for name, how, _ in drops.parameters] == [
        ("first", "positional"),
        ("second", "positional"),
        ("args", "vararg"),
        ("options", "kwarg"),
    ]
    assert drops.parameter_for(False, 0, None) == "first"
    assert drops.parameter_for(False, 1, None) == "second"
    assert drops.parameter_for(False, 2, None) is None  # into *args
    assert drops.parameter_for(False, None, "second") == "second"
    assert drops.parameter_for(False, None, "other") is None  # into **options
    sync = _function(module, "Client.sync")  # (self, item)
    assert sync.parameter_for(True, 0, None) == "item"  # obj.sync(x)
    assert sync.parameter_for(False, 0, None) == "self"  # Client.sync(obj, x)
    assert sync.parameter_for(False, 1, None) == "item"
    helper = _function(module, "Client.helper")  # a static method: (item)
    assert helper.parameter_for(True, 0, None) == "item"


@pytest.mark.parametrize(
    ("function", "hands_out"),
    [
        # falls off its end on the other path: None there
        ("pause", ("asyncio.sleep", "None")),
        ("pause_always", ("asyncio.sleep",)),
        ("Client.reconnect", ("app.Client.connect",)),
        # returns None on every path (it has no `return`)
        ("drops", ("None",)),
        # a callee read from a parameter, a return of anything but a call or None, a
        # generator, a coroutine function: nothing
        ("from_parameter", ()),
        ("cached_or_fetched", ()),
        ("pauses_lazily", ()),
        ("schedules", ()),
        # a decorator may wrap it
        ("wrapped", ()),
    ],
)
def test_what_a_sync_function_returns(
    module: ModuleFact, function: str, hands_out: tuple[str, ...]
) -> None:
    assert _function(module, function).hands_out == hands_out


def test_what_a_method_calls_on_its_receiver_and_drops(module: ModuleFact) -> None:
    # `self.session.close()` is a call on an attribute, `self.read()` is kept, and a nested
    # function's calls are its own
    assert _function(module, "Client.refresh_all").drops_on_self == ("update",)
    assert _function(module, "Client.sync").drops_on_self == ()
    assert _function(module, "drops").drops_on_self == ()


def test_which_module_names_are_async_callback_types(module: ModuleFact) -> None:
    # a sync callback, and an alias bound twice, are not
    assert module.async_callbacks == {"Handler", "MaybeHandler", "Either"}
