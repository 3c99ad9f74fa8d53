"""AF201 blocking-sleep: ``time.sleep`` in an async body stops the whole event loop."""

from __future__ import annotations

import ast

from asyncfix.codemods.base import (
    Fix,
    ImportItem,
    Locate,
    PendingFix,
    Rule,
    await_expression,
    import_item_for,
)
from asyncfix.lazy import libcst as cst
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

    def on_Call(self, node: ast.Call) -> None:
        model = self.model
        if not self.walk.in_async_body(node):
            return
        if model.scopes.qualified_name(node.func) != "time.sleep":
            return
        spelled = model.source.segment(node.func)
        message = f"`{spelled}()` blocks the event loop; use `await asyncio.sleep()`"
        evidence = ["the call is in an `async def`, on the event loop's thread"]
        if spelled != "time.sleep":
            evidence.insert(0, f"`{spelled}` is `time.sleep` (imported under another name)")
        if self.walk.place(node).genexp:
            self.report(node, message + " (no fix inside a generator expression)", None, evidence)
            return
        library = self.other_event_loop()
        if library is not None:
            message = f"`{spelled}()` blocks the event loop; use `await {library}.sleep()`"
            self.report(
                node, message + f" (no fix: the module may run on {library})", None, evidence
            )
            return
        asyncio_name = model.module_name_for("asyncio")
        changes = [f"Replaced `{spelled}(...)` with `await {asyncio_name or 'asyncio'}.sleep(...)`"]
        if not asyncio_name:
            changes.append("Added `import asyncio`")

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            sleep = cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("sleep"))
            removed = import_item_for(call.func, "time.sleep")
            return Fix(
                safety=Safety.SAFE,
                changes=changes,
                replace={
                    call: await_expression(call.with_changes(func=sleep), call, locate.parent(call))
                },
                add_imports=[] if asyncio_name else [ImportItem("asyncio")],
                remove_unused=[removed] if removed else [],
            )

        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (Safety.SAFE, changes, pending), evidence)
