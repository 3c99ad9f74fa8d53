"""AF401 lost-update: shared state read into a local, an ``await``, then written back from
that local (the analysis: ``analysis/races.py``; the lock fix: ``race_fix.py``)."""

from __future__ import annotations

import ast

from asyncfix.analysis.accessors import Accessor
from asyncfix.analysis.races import Race
from asyncfix.codemods.base import PendingFix
from asyncfix.codemods.race_fix import LockFix, RaceRule, brief, shown


class LostUpdate(RaceRule):
    code = "AF401"
    name = "lost-update"
    summary = "shared state read into a local, then an `await`, then written back from that local"
    why = (
        "asyncio runs another task whenever a coroutine suspends. Between the read and the "
        "write, another task can update the same attribute; the write then puts back a value "
        "computed from the old one, and that update is lost: counters undercount, balances "
        "drift, lists drop entries. The same holds for a value behind async accessors (a "
        "database, a device, a config API): read with `await store.get_config(key)`, another "
        "`await`, written back with `await store.set_config(key, ...)` from what was read, "
        "while another function of the class or module does the same to that key. That is "
        "reported when the getter's name has a `get`/`read`/`load` part and the setter's "
        "the matching `set`/`write`/`save`, on one shared receiver (the instance or a "
        "module-level name) and the same key; every such function gets one shared lock, or "
        "none does."
    )
    example_before = """\
import asyncio


class Counter:
    def __init__(self):
        self.value = 0

    async def bump(self):
        current = self.value
        await asyncio.sleep(0)
        self.value = current + 1
"""
    example_after = """\
import asyncio


class Counter:
    def __init__(self):
        self._value_lock = asyncio.Lock()
        self.value = 0

    async def bump(self):
        async with self._value_lock:
            current = self.value
            await asyncio.sleep(0)
            self.value = current + 1
"""

    def on_Module(self, node: ast.Module) -> None:
        super().on_Module(node)
        # the lock of an accessor pair is taken in every function of its group, or in none
        # (in some only, it would not serialise the updates)
        races = self.model.races.through_accessors
        plans = [LockFix(self, race).plan() for race in races]
        refused: dict[tuple[str, ...], str] = {}
        for race, plan in zip(races, plans, strict=True):
            assert race.accessor is not None
            if isinstance(plan, str):
                refused.setdefault(race.accessor.group, f"in `{race.method.name}()`, {plan}")
        for race, plan in zip(races, plans, strict=True):
            assert race.accessor is not None
            reason = refused.get(race.accessor.group)
            if reason is not None and not isinstance(plan, str):
                plan = reason
            self.report_race(race, plan)

    def report_race(self, race: Race, fix: tuple[list[str], PendingFix] | str) -> None:
        if race.accessor is not None:
            self._report_accessor(race, race.accessor, fix)
            return
        spelled = shown(race)
        who = (
            ", ".join(f"`{name}()`" for name in race.rivals) + " makes"
            if race.rivals
            else "another task makes"
        )
        message = (
            f"lost update: `{spelled}` is read before an `await` and written back from "
            f"that value after it; an update {who} in between is lost"
        )
        evidence = self.evidence(race, f"`{spelled}` is read at line {{line}}")
        evidence.append(f"`{spelled}` is written at line {race.write.lineno}")
        self.report_with(race, message, fix, evidence)

    def _report_accessor(
        self, race: Race, accessor: Accessor, fix: tuple[list[str], PendingFix] | str
    ) -> None:
        getter = accessor.read
        setter = f"{accessor.receiver}.{accessor.setter}(...)"
        others = ", ".join(f"`{name}()`" for name in accessor.others)
        message = (
            f"lost update through an accessor: `{accessor.local}` is read with `await "
            f"{getter}`, the task suspends, then it is written back with `await {setter}`; "
            f"{others} update{'s' if len(accessor.others) == 1 else ''} the same value "
            "meanwhile, and one of the updates is lost"
        )
        evidence = [
            f"`{accessor.local}` is read at line {race.first.node.lineno}",
            f"the task suspends at line {getattr(race.suspension, 'lineno', 0)} "
            f"(`{brief(self, race.suspension)}`)"
            if race.suspension is not None
            else "",
            f"`{accessor.local}` is written back at line {race.write.lineno}",
            f"{others} read{'s' if len(accessor.others) == 1 else ''} and write"
            f"{'s' if len(accessor.others) == 1 else ''} `{getter}` the same way: the fix "
            "takes one lock in each",
        ]
        self.report_with(race, message, fix, [line for line in evidence if line])
