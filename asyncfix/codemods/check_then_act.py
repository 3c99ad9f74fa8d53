"""AF402 check-then-act: shared state tested, an ``await``, then written: two tasks both pass
the test (the analysis: ``analysis/races.py``; the lock fix: ``race_fix.py``)."""

from __future__ import annotations

import ast

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import in_order
from asyncfix.analysis.races import Mark, Race
from asyncfix.codemods.base import PendingFix
from asyncfix.codemods.race_fix import LockFix, RaceRule, brief, shown
from asyncfix.model import Safety


class CheckThenAct(RaceRule):
    code = "AF402"
    name = "check-then-act"
    summary = "shared state tested, then an `await`, then written: two tasks both pass the test"
    why = (
        "A test of shared state (`if self.client is None`, `if not self.connected`, a cache "
        "miss, an expiry check) only holds until the task suspends. When the code awaits "
        "before acting on the test, a second task can pass the same test meanwhile: both "
        "create the client, both refresh the token, both fetch the missing entry. An "
        "in-progress flag (`if self._busy: return`, then set, an `await`, reset) does not "
        "race, but in a method that returns a value it hands a concurrent caller None at "
        "once, not the result the call in progress computes; and a cache entry published "
        "empty and filled after an `await` is returned half-built to a concurrent caller "
        "that finds it. Both get the same lock fix: from the test through the reset, or "
        "through the last fill."
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
        if race.rivals:
            rivals = ", ".join(f"`{name}()`" for name in race.rivals)
            meanwhile = f"{rivals} can set it meanwhile, and this write overwrites that"
        else:
            meanwhile = "another task can pass the same test meanwhile"
        message = (
            f"check-then-act: `{spelled}` is tested, the task suspends, then "
            f"`{spelled}` is written {where}; {meanwhile}"
        )
        evidence = self.evidence(race, f"`{spelled}` is tested at line {{line}}")
        if not race.via:
            evidence.append(f"`{spelled}` is written at line {race.write.lineno}")
        self.report_with(race, message, fix, evidence)

    # -- an in-progress flag ----------------------------------------------------------------

    def on_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        """``if self._busy: return`` ... ``self._busy = True`` ... an ``await`` ...
        ``self._busy = False`` (often in ``finally``), in a method whose other path returns
        a value: a concurrent caller gets None at once instead of the result the call in
        progress is computing. (The test and the set do not race -- nothing suspends
        between them -- the early return is the defect.) The lock fix goes from the test
        through the reset: a concurrent caller waits, then tests the flag again."""
        if self.walk.enclosing_class(node.body[0]) is None:
            return
        receiver = self_name(node)
        if receiver is None:
            return
        self._half_built(node, receiver)
        if not _returns_a_value(node):
            return
        body = node.body
        for position, statement in enumerate(body):
            flag = _flag_test(statement, receiver)
            if flag is None:
                continue
            found = _set_then_reset(body[position + 1 :], receiver, flag)
            if found is None:
                continue
            set_at, suspension, reset = found
            early = statement.body[-1]  # type: ignore[attr-defined]
            message = (
                f"in-progress flag: while `{receiver}.{flag}` is set (line {set_at.lineno}) "
                f"across `{brief(self, suspension)}`, a concurrent call returns None here "
                "at once, not the result the call in progress is computing"
            )
            evidence = [
                f"`{receiver}.{flag}` is tested at line {statement.lineno} and set at line "
                f"{set_at.lineno} with nothing suspending between: one call at a time "
                "passes",
                f"the method returns a value on its other path (line {_value_return(node)})",
                f"`{receiver}.{flag}` is reset at line {reset.lineno}",
            ]
            # the lock fix from the test through the reset: a concurrent caller waits for
            # the call in progress, then tests the flag again
            race = Race("AF402", flag, node, Mark(statement, 0, frozenset()), reset, suspension)
            self._report_planned(early, message, race, evidence, _IN_PROGRESS_CHANGE)
            return

    # -- a half-built shared entry ----------------------------------------------------------

    def _half_built(self, node: ast.AsyncFunctionDef, receiver: str) -> None:
        """``if key in self.cache: return self.cache[key]``, then ``self.cache[key] = {}``
        published empty, then filled after an ``await``: a concurrent caller passes the test
        and returns the partial entry. The lock fix goes from the test through the last fill
        (a lock per key when the entry is used by one name): a concurrent caller waits until
        the entry is whole."""
        body = node.body
        for position, statement in enumerate(body):
            published = _published_empty(statement, receiver)
            if published is None:
                continue
            attribute, key, aliases = published
            check = _cache_check(body[:position], receiver, attribute, key)
            if check is None:
                continue
            rest = body[position + 1 :]
            suspension = _first_suspension(rest)
            if suspension is None:
                continue
            # from the statement that suspends: `entry["a"] = await f()` stores after it
            held = next(i for i, s in enumerate(rest) if _first_suspension([s]) is not None)
            after = rest[held:]
            fills = [s for s in after if _fills([s], receiver, attribute, key, aliases)]
            if not fills:
                continue
            filled = fills[0]
            spelled = f"{receiver}.{attribute}[{key}]"
            message = (
                f"half-built entry: `{spelled}` is published empty here and filled after "
                f"`{brief(self, suspension)}` (line {filled.lineno}); a concurrent call passes "
                f"the test at line {check.lineno} and returns the partial entry"
            )
            evidence = [
                f"line {check.lineno} returns `{spelled}` when it is there",
                f"the task suspends at line {getattr(suspension, 'lineno', 0)} before the entry "
                "is whole",
                f"the entry is last filled at line {fills[-1].lineno}",
            ]
            # the lock fix from the test through the last fill: a concurrent caller for the
            # key waits until the entry is whole
            race = Race("AF402", attribute, node, Mark(check, 0, frozenset()), fills[-1], None)
            self._report_planned(statement, message, race, evidence, _HALF_BUILT_CHANGE)
            return

    def _report_planned(
        self, at: ast.stmt, message: str, race: Race, evidence: list[str], change: str
    ) -> None:
        """Report at ``at`` with the lock fix of ``race`` (and ``change`` said of it), or
        with why there is none."""
        fix = LockFix(self, race).plan()
        if isinstance(fix, str):
            self.report(at, f"{message} (no fix: {fix})", None, evidence)
        else:
            changes, pending = fix
            changes.append(change)
            self.report(at, message, (Safety.UNSAFE, changes, pending), evidence)


_IN_PROGRESS_CHANGE = (
    "A concurrent caller now waits for the call in progress, then tests the flag again, "
    "instead of getting None at once"
)
_HALF_BUILT_CHANGE = (
    "A concurrent caller for the same entry now waits until it is whole, instead of "
    "returning it half-built"
)


def _key_of(node: ast.expr) -> str | None:
    """A key spelled as a name or a constant: ``key``, ``"main"``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)):
        return repr(node.value)
    return None


def _entry(node: ast.AST, receiver: str) -> tuple[str, str] | None:
    """``self.<attribute>[<key>]``: (attribute, key)."""
    if not isinstance(node, ast.Subscript):
        return None
    owner = node.value
    if not (
        isinstance(owner, ast.Attribute)
        and isinstance(owner.value, ast.Name)
        and owner.value.id == receiver
    ):
        return None
    key = _key_of(node.slice)
    return (owner.attr, key) if key is not None else None


_EMPTY_CALLS = frozenset({"dict", "list", "set"})


def _published_empty(statement: ast.stmt, receiver: str) -> tuple[str, str, set[str]] | None:
    """``self.cache[key] = {}`` (``[]``, ``set()``; ``= entry = {}`` too): (attribute, key,
    the local names bound to the same new object)."""
    if not isinstance(statement, ast.Assign):
        return None
    value = statement.value
    empty = (isinstance(value, (ast.Dict, ast.List, ast.Set)) and not _elements(value)) or (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in _EMPTY_CALLS
        and not value.args
        and not value.keywords
    )
    if not empty:
        return None
    found: tuple[str, str] | None = None
    aliases: set[str] = set()
    for target in statement.targets:
        entry = _entry(target, receiver)
        if entry is not None:
            found = entry
        elif isinstance(target, ast.Name):
            aliases.add(target.id)
        else:
            return None
    return (*found, aliases) if found is not None else None


def _elements(display: ast.Dict | ast.List | ast.Set) -> list[ast.expr | None]:
    return list(display.keys) if isinstance(display, ast.Dict) else list(display.elts)


def _cache_check(before: list[ast.stmt], receiver: str, attribute: str, key: str) -> ast.If | None:
    """``if key in self.<attribute>: return ...`` (or ``.get(key)`` tested) before it."""
    for statement in before:
        if not isinstance(statement, ast.If) or not isinstance(statement.body[-1], ast.Return):
            continue
        test = statement.test
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.In)
            and _key_of(test.left) == key
            and isinstance(test.comparators[0], ast.Attribute)
            and test.comparators[0].attr == attribute
            and isinstance(test.comparators[0].value, ast.Name)
            and test.comparators[0].value.id == receiver
        ):
            return statement
    return None


_FILLING = frozenset({"append", "extend", "update", "add", "insert", "setdefault"})


def _fills(
    statements: list[ast.stmt], receiver: str, attribute: str, key: str, aliases: set[str]
) -> ast.stmt | None:
    """The first statement that fills the entry: ``self.cache[key][k] = ...``,
    ``entry["a"] = ...``, ``self.cache[key].append(...)``, ``entry.update(...)``."""

    def is_entry(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in aliases
        return _entry(node, receiver) == (attribute, key)

    for statement in statements:
        for node in in_order(statement):
            stored = isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
            if stored and is_entry(node.value):  # type: ignore[attr-defined]
                return statement
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _FILLING
                and is_entry(node.func.value)
            ):
                return statement
    return None


def _flag_test(statement: ast.stmt, receiver: str) -> str | None:
    """``if self._busy:`` whose body ends in a bare ``return`` (or ``return None``), with no
    ``else``: the flag's name."""
    if not isinstance(statement, ast.If) or statement.orelse:
        return None
    test = statement.test
    if not (
        isinstance(test, ast.Attribute)
        and isinstance(test.value, ast.Name)
        and test.value.id == receiver
    ):
        return None
    last = statement.body[-1]
    if not isinstance(last, ast.Return):
        return None
    if last.value is not None and not (
        isinstance(last.value, ast.Constant) and last.value.value is None
    ):
        return None
    return test.attr


def _assigns(statement: ast.stmt, receiver: str, flag: str, value: bool) -> bool:
    return (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Attribute)
        and statement.targets[0].attr == flag
        and isinstance(statement.targets[0].value, ast.Name)
        and statement.targets[0].value.id == receiver
        and isinstance(statement.value, ast.Constant)
        and statement.value.value is value
    )


def _set_then_reset(
    rest: list[ast.stmt], receiver: str, flag: str
) -> tuple[ast.stmt, ast.stmt | ast.expr, ast.stmt] | None:
    """``self.<flag> = True`` with nothing suspending before it, then a suspension, then
    ``self.<flag> = False`` (in a ``finally`` or later in the block): (the set, the first
    suspension, the reset)."""
    for position, statement in enumerate(rest):
        if _assigns(statement, receiver, flag, True):
            after = rest[position + 1 :]
            suspension = _first_suspension(after)
            if suspension is None:
                return None
            for later in after:
                resets = [later, *getattr(later, "finalbody", [])]
                for reset in resets:
                    if _assigns(reset, receiver, flag, False):
                        return statement, suspension, reset
            return None
        if _first_suspension([statement]) is not None:
            return None  # a suspension between the test and the set: AF402's own case
    return None


def _first_suspension(statements: list[ast.stmt]) -> ast.stmt | ast.expr | None:
    for statement in statements:
        for node in in_order(statement):
            if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
                return node
    return None


def _value_return(function: ast.AsyncFunctionDef) -> int | None:
    for node in in_order(function):
        if (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            return node.lineno
    return None


def _returns_a_value(function: ast.AsyncFunctionDef) -> bool:
    return _value_return(function) is not None
