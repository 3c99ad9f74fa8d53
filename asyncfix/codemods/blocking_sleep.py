"""AF201 blocking-sleep: ``time.sleep`` in an async body stops the whole event loop."""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import (
    Fix,
    ImportItem,
    Project,
    Rule,
    await_expression,
    import_item_for,
    source_of,
)
from asyncfix.codemods.prefilters import may_call_time_sleep
from asyncfix.model import Safety, Severity


class BlockingSleep(Rule):
    code = "AF201"
    name = "blocking-sleep"
    summary = "`time.sleep()` inside an async function blocks the event loop"
    why = (
        "`time.sleep()` suspends the whole thread. In a coroutine that thread is the event "
        "loop's: while it sleeps no other task runs, no timer fires and no socket is read, so "
        "every request the service is handling stalls for the full duration."
    )
    example_before = """\
import time

async def poll(device):
    while not device.ready:
        time.sleep(0.5)
"""
    example_after = """\
import asyncio

async def poll(device):
    while not device.ready:
        await asyncio.sleep(0.5)
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: `await asyncio.sleep(x)` waits just as long but lets other tasks run. "
        "`import asyncio` is added when missing and `import time` is removed when nothing "
        "else uses it. Inside a generator expression the fix is not offered (an `await` "
        "there would turn it into an async generator)."
    )
    severity = Severity.HIGH
    kind = "Blocking call on the event loop"
    needles = ("async", "sleep")
    equivalent_codes = ("ASYNC251",)
    no_fix_in_tests = True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_call_time_sleep(tree)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.in_async_body() or self.ctx.qualified_name(node.func) != "time.sleep":
            return
        spelled = source_of(node.func)
        message = f"`{spelled}()` blocks the event loop; use `await asyncio.sleep()`"
        evidence: list[tuple[str, cst.CSTNode | None]] = [
            ("the call is in an `async def`, on the event loop's thread", None)
        ]
        if spelled != "time.sleep":
            evidence.insert(0, (f"`{spelled}` is `time.sleep` (imported under another name)", None))
        if self.ctx.in_generator_expression():
            self.report(node, message + " (no fix inside a generator expression)", None, evidence)
            return
        asyncio_name = self.ctx.module_name_for("asyncio")
        add = [] if asyncio_name else [ImportItem("asyncio")]
        sleep = cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("sleep"))
        new_call = node.with_changes(func=sleep)
        removed = import_item_for(node.func, "time.sleep")
        changes = [f"Replaced `{spelled}(...)` with `await {asyncio_name or 'asyncio'}.sleep(...)`"]
        if add:
            changes.append("Added `import asyncio`")
        fix = Fix(
            safety=Safety.SAFE,
            changes=changes,
            replace={node: await_expression(new_call, node, self.ctx.parent())},
            add_imports=add,
            remove_unused=[removed] if removed else [],
        )
        self.report(node, message, fix, evidence)
