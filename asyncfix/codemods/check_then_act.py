"""AF402 check-then-act: shared state tested, an ``await``, then written: two tasks both pass
the test (the analysis: ``analysis/races.py``; the lock fix: ``race_fix.py``)."""

from __future__ import annotations

from asyncfix.analysis.races import Race
from asyncfix.codemods.base import PendingFix
from asyncfix.codemods.race_fix import RaceRule, shown


class CheckThenAct(RaceRule):
    code = "AF402"
    name = "check-then-act"
    summary = "shared state tested, then an `await`, then written: two tasks both pass the test"
    why = (
        "A test of shared state (`if self.client is None`, `if not self.connected`, a cache "
        "miss, an expiry check) only holds until the task suspends. When the code awaits "
        "before acting on the test, a second task can pass the same test meanwhile: both "
        "create the client, both refresh the token, both fetch the missing entry."
    )
    example_before = """\
class Api:
    def __init__(self, connect):
        self._connect = connect
        self._client = None

    async def client(self):
        if self._client is None:
            self._client = await self._connect()
        return self._client
"""
    example_after = """\
import asyncio


class Api:
    def __init__(self, connect):
        self._client_lock = asyncio.Lock()
        self._connect = connect
        self._client = None

    async def client(self):
        async with self._client_lock:
            if self._client is None:
                self._client = await self._connect()
        return self._client
"""

    def report_race(self, race: Race, fix: tuple[list[str], PendingFix] | str) -> None:
        spelled = shown(race)
        where = f"inside `self.{race.via}()`" if race.via else "after it"
        message = (
            f"check-then-act: `{spelled}` is tested, the task suspends, then "
            f"`{spelled}` is written {where}; another task can pass the same test "
            "meanwhile"
        )
        evidence = self.evidence(race, f"`{spelled}` is tested at line {{line}}")
        if not race.via:
            evidence.append(f"`{spelled}` is written at line {race.write.lineno}")
        self.report_with(race, message, fix, evidence)
