"""AF303 get-event-loop-in-coroutine: use ``asyncio.get_running_loop()`` in coroutines."""

from __future__ import annotations

import libcst as cst

from asyncfix.codemods.base import Fix, ImportItem, Rule, import_item_for, source_of
from asyncfix.model import Safety, Severity


class GetEventLoopInCoroutine(Rule):
    code = "AF303"
    name = "get-event-loop-in-coroutine"
    summary = "`asyncio.get_event_loop()` inside an async function; use `get_running_loop()`"
    why = (
        "Inside a coroutine a loop is always running, and `asyncio.get_running_loop()` returns "
        "exactly that loop. `get_event_loop()` goes through the event-loop policy instead: it is "
        "deprecated for this use, emits a DeprecationWarning in some versions, and when called "
        "from a thread or a different policy it can hand back, or even create, a loop that is "
        "not the one running the coroutine — callbacks scheduled on it never run."
    )
    example_before = """\
import asyncio

async def start_server(handler):
    loop = asyncio.get_event_loop()
    return await loop.create_server(handler, port=8080)
"""
    example_after = """\
import asyncio

async def start_server(handler):
    loop = asyncio.get_running_loop()
    return await loop.create_server(handler, port=8080)
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: in a coroutine both calls return the running loop; `get_running_loop()` "
        "just cannot return a different one."
    )
    severity = Severity.LOW
    kind = "Deprecated event-loop access"
    needles = ("async", "get_event_loop")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if node.args or not self.ctx.in_async_body():
            return
        if self.ctx.qualified_name(func) != "asyncio.get_event_loop":
            return
        spelled = source_of(func)
        message = f"`{spelled}()` in a coroutine; use `asyncio.get_running_loop()`"
        if isinstance(func, cst.Attribute):
            new_func: cst.BaseExpression = func.with_changes(attr=cst.Name("get_running_loop"))
            add: list[ImportItem] = []
            remove: list[ImportItem] = []
        elif isinstance(func, cst.Name) and func.value == "get_event_loop":
            new_func = cst.Name("get_running_loop")
            add = [ImportItem("asyncio", "get_running_loop")]
            item = import_item_for(func, "asyncio.get_event_loop")
            remove = [item] if item else []
        else:  # an alias of the function: rewriting it would read oddly, report only
            self.report(node, message)
            return
        fix = Fix(
            safety=Safety.SAFE,
            changes=[f"Replaced `{spelled}()` with `{source_of(new_func)}()`"],
            replace={func: new_func},
            add_imports=add,
            remove_unused=remove,
        )
        self.report(node, message, fix)
