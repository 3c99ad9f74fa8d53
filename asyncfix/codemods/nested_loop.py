"""AF304 nested-event-loop: ``asyncio.run()`` / ``loop.run_until_complete()`` in a coroutine."""

from __future__ import annotations

import ast

from asyncfix.codemods.base import (
    Fix,
    Locate,
    PendingFix,
    Rule,
    await_expression,
    import_item_for,
)
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity


class NestedEventLoop(Rule):
    code = "AF304"
    name = "nested-event-loop"
    summary = "`asyncio.run()` or `loop.run_until_complete()` inside an async function"
    why = (
        "A coroutine already runs inside an event loop, and a thread runs one loop at a time: "
        "`asyncio.run()` raises `RuntimeError: asyncio.run() cannot be called from a running "
        "event loop`, and `run_until_complete()` raises `This event loop is already running`. "
        "The code path fails every time it is reached, often only in production where it is "
        "first called from async code."
    )
    example_before = """\
import asyncio


async def refresh(client):
    asyncio.run(client.sync())
"""
    example_after = """\
async def refresh(client):
    await client.sync()
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: when the argument is a call (a coroutine call), `await` runs it in the loop "
        "that is already running, which is what the code could never do. Other arguments (a "
        "coroutine held in a variable, a Future, `debug=` or other options) are reported "
        "without a fix. `import asyncio` is removed when the fix leaves it unused."
    )
    severity = Severity.HIGH
    kind = "Nested event loop"
    needles = ("async", ("asyncio.run", "run(", "run_until_complete"))

    def on_Call(self, node: ast.Call) -> None:
        func = node.func
        if not self.walk.in_async_body(node):
            return
        runner: str | None = None
        if isinstance(func, ast.Attribute) and func.attr == "run_until_complete":
            runner = "run_until_complete"
        elif self.model.scopes.qualified_name(func) == "asyncio.run":
            runner = "asyncio.run"
        if runner is None:
            return
        source = self.model.source
        spelled = source.segment(func)
        error = (
            "asyncio.run() cannot be called from a running event loop"
            if runner == "asyncio.run"
            else "this event loop is already running"
        )
        message = f"`{spelled}()` inside a coroutine raises RuntimeError ({error}); await it"
        argument = node.args[0] if node.args else None
        reason = None
        if len(node.args) != 1 or node.keywords or isinstance(argument, ast.Starred):
            reason = "it is given options or more than one argument"
        elif not isinstance(argument, ast.Call):
            reason = "the argument is not a coroutine call"
        elif self.walk.place(node).genexp:
            reason = "an `await` here would make the generator expression asynchronous"
        if reason is not None or argument is None:
            self.report(node, f"{message} (no fix: {reason})")
            return
        changes = [
            f"Replaced `{spelled}({source.segment(argument)})` with "
            f"`await {source.segment(argument)}`"
        ]

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            inner = call.args[0].value
            removed = import_item_for(call.func, "asyncio.run") if runner == "asyncio.run" else None
            return Fix(
                safety=Safety.SAFE,
                changes=changes,
                replace={call: await_expression(inner, call, locate.parent(call))},
                remove_unused=[removed] if removed else [],
            )

        self.report(node, message, (Safety.SAFE, changes, PendingFix(node, cst.Call, build)))
