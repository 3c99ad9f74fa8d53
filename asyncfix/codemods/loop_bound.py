"""AF502 loop-bound-at-import: objects tied to an event loop, created when the module is
imported (module level or a class body), before the loop that will use them runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

import libcst as cst

from asyncfix.codemods.base import Project, Rule, source_of, top_level_statements
from asyncfix.codemods.prefilters import import_time_call
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

_LAST_NAMES = frozenset(name.rsplit(".", 1)[1] for name in ALWAYS_BOUND | BOUND_BEFORE_310)


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

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return import_time_call(tree, _LAST_NAMES)

    def visit_Module(self, node: cst.Module) -> None:
        bound = ALWAYS_BOUND | (BOUND_BEFORE_310 if self.ctx.target < (3, 10) else frozenset())
        for target, value in _import_time_assignments(node.body):
            if not isinstance(value, cst.Call):
                continue
            qualified = self.ctx.names.qualified_name(value.func, [node])
            if qualified not in bound:
                continue
            self.report(
                value,
                f"`{source_of(target)} = {source_of(value.func)}(...)` runs at import time: it "
                "binds to the event loop current then, not the one that will use it; create "
                "it inside the running loop (an async setup function)",
            )


def _import_time_assignments(
    body: Sequence[cst.BaseStatement],
) -> Iterator[tuple[cst.BaseExpression, cst.BaseExpression]]:
    """``target = value`` statements that run at import: module level (also under top-level
    ``if``/``try``) and in class bodies."""
    for statement in top_level_statements(body):
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign):
                    for target in small.targets:
                        yield target.target, small.value
                elif isinstance(small, cst.AnnAssign) and small.value is not None:
                    yield small.target, small.value
        elif isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
            yield from _import_time_assignments(statement.body.body)
