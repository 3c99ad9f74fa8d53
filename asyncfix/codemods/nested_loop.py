"""AF304 nested-event-loop: ``asyncio.run()`` / ``loop.run_until_complete()`` in a coroutine."""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import (
    Fix,
    Project,
    Rule,
    await_expression,
    import_item_for,
    source_of,
)
from asyncfix.codemods.prefilters import may_nest_loop
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

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_nest_loop(tree)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not self.ctx.in_async_body():
            return
        runner: str | None = None
        if isinstance(func, cst.Attribute) and func.attr.value == "run_until_complete":
            runner = "run_until_complete"
        elif self.ctx.qualified_name(func) == "asyncio.run":
            runner = "asyncio.run"
        if runner is None:
            return
        spelled = source_of(func)
        error = (
            "asyncio.run() cannot be called from a running event loop"
            if runner == "asyncio.run"
            else "this event loop is already running"
        )
        message = f"`{spelled}()` inside a coroutine raises RuntimeError ({error}); await it"
        argument = node.args[0].value if node.args else None
        reason = None
        if len(node.args) != 1 or node.args[0].keyword is not None or node.args[0].star:
            reason = "it is given options or more than one argument"
        elif not isinstance(argument, cst.Call):
            reason = "the argument is not a coroutine call"
        elif self.ctx.in_generator_expression():
            reason = "an `await` here would make the generator expression asynchronous"
        if reason is not None or not isinstance(argument, cst.Call):
            self.report(node, f"{message} (no fix: {reason})")
            return
        removed = import_item_for(func, "asyncio.run") if runner == "asyncio.run" else None
        fix = Fix(
            safety=Safety.SAFE,
            changes=[
                f"Replaced `{spelled}({source_of(argument)})` with `await {source_of(argument)}`"
            ],
            replace={node: await_expression(argument, node, self.ctx.parent())},
            remove_unused=[removed] if removed else [],
        )
        self.report(node, message, fix)
