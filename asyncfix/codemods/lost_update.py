"""AF401 lost-update: shared state read into a local, an ``await``, then written back from
that local (the analysis: ``analysis/races.py``; the lock fix: ``race_fix.py``)."""

from __future__ import annotations

from asyncfix.analysis.races import Race
from asyncfix.codemods.base import PendingFix
from asyncfix.codemods.race_fix import RaceRule, shown


class LostUpdate(RaceRule):
    code = "AF401"
    name = "lost-update"
    summary = "shared state read into a local, then an `await`, then written back from that local"
    why = (
        "asyncio runs another task whenever a coroutine suspends. Between the read and the "
        "write, another task can update the same attribute; the write then puts back a value "
        "computed from the old one, and that update is lost: counters undercount, balances "
        "drift, lists drop entries."
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

    def report_race(self, race: Race, fix: tuple[list[str], PendingFix] | str) -> None:
        spelled = shown(race)
        message = (
            f"lost update: `{spelled}` is read before an `await` and written back from "
            "that value after it; an update another task makes in between is lost"
        )
        evidence = self.evidence(race, f"`{spelled}` is read at line {{line}}")
        evidence.append(f"`{spelled}` is written at line {race.write.lineno}")
        self.report_with(race, message, fix, evidence)
