"""AF502 loop-bound-at-import: objects tied to an event loop, created when the module is
imported (module level or a class body), before the loop that will use them runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

from asyncfix.analysis.classes import top_level_statements
from asyncfix.codemods.base import Rule
from asyncfix.model import Safety, Severity

#: bound to the loop current when they are made, on every Python version
ALWAYS_BOUND = frozenset({"aiohttp.ClientSession", "aiohttp.TCPConnector", "aiohttp.UnixConnector"})
#: bound to the loop current when they are made before Python 3.10 (later: on first use)
BOUND_BEFORE_310 = frozenset(
    {
        "asyncio.Lock",
        "asyncio.Event",
        "asyncio.Condition",
        "asyncio.Semaphore",
        "asyncio.BoundedSemaphore",
        "asyncio.Queue",
        "asyncio.LifoQueue",
        "asyncio.PriorityQueue",
    }
)


class LoopBoundAtImport(Rule):
    code = "AF502"
    name = "loop-bound-at-import"
    summary = "an object tied to an event loop (a client session, ...) created at import time"
    why = (
        "Module-level code runs at import, before `asyncio.run()` starts the loop the program "
        "uses. An `aiohttp.ClientSession` made then attaches to whatever loop exists at that "
        "moment (or none), and fails with 'attached to a different loop' or 'Event loop is "
        "closed' when the real loop uses it, or in the second test that runs its own loop. "
        "Before Python 3.10 `asyncio.Lock()`, `Event()` and `Queue()` bind the same way."
    )
    example_before = """\
import aiohttp

SESSION = aiohttp.ClientSession()


async def fetch(url):
    async with SESSION.get(url) as response:
        return await response.text()
"""
    example_after = """\
import aiohttp


async def fetch(url):
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only: where the object should live instead (created in an async setup "
        "function, held by an application object, made per call) is a design decision."
    )
    severity = Severity.MEDIUM
    kind = "Loop-bound object at import"
    needles = (("ClientSession", "Connector", "Lock", "Event", "Condition", "Semaphore", "Queue"),)

    def on_Module(self, node: ast.Module) -> None:
        model = self.model
        bound = ALWAYS_BOUND | (BOUND_BEFORE_310 if self.context.target < (3, 10) else frozenset())
        for target, value in _import_time_assignments(node.body):
            if not isinstance(value, ast.Call):
                continue
            qualified = model.scopes.qualified_name_at(value.func, model.scopes.module)
            if qualified not in bound:
                continue
            self.report(
                value,
                f"`{model.source.segment(target)} = {model.source.segment(value.func)}(...)` runs "
                "at import time: it binds to the event loop current then, not the one that will "
                "use it; create it inside the running loop (an async setup function)",
            )


def _import_time_assignments(body: Sequence[ast.stmt]) -> Iterator[tuple[ast.expr, ast.expr]]:
    """``target = value`` statements that run at import: module level (also under top-level
    ``if``/``try``) and in class bodies."""
    for statement in top_level_statements(body):
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                yield target, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            yield statement.target, statement.value
        elif isinstance(statement, ast.ClassDef):
            yield from _import_time_assignments(statement.body)
