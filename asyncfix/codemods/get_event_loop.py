"""AF303 get-event-loop-in-coroutine: use ``asyncio.get_running_loop()`` in coroutines."""

from __future__ import annotations

import ast

from asyncfix.codemods.base import Fix, ImportItem, Locate, PendingFix, Rule, import_item_for
from asyncfix.lazy import libcst as cst
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

    def on_Call(self, node: ast.Call) -> None:
        func = node.func
        if node.args or node.keywords or not self.walk.in_async_body(node):
            return
        if self.model.scopes.qualified_name(func) != "asyncio.get_event_loop":
            return
        spelled = self.model.source.segment(func)
        message = f"`{spelled}()` in a coroutine; use `asyncio.get_running_loop()`"
        if isinstance(func, ast.Attribute):
            kind: type[cst.CSTNode] = cst.Attribute
            new = spelled[: -len("get_event_loop")] + "get_running_loop"
        elif isinstance(func, ast.Name) and func.id == "get_event_loop":
            kind, new = cst.Name, "get_running_loop"
        else:  # an alias of the function: rewriting it would read oddly, report only
            self.report(node, message)
            return
        changes = [f"Replaced `{spelled}()` with `{new}()`"]

        def build(old: cst.CSTNode, locate: Locate) -> Fix:
            if isinstance(old, cst.Attribute):
                return Fix(
                    safety=Safety.SAFE,
                    changes=changes,
                    replace={old: old.with_changes(attr=cst.Name("get_running_loop"))},
                )
            assert isinstance(old, cst.Name)
            item = import_item_for(old, "asyncio.get_event_loop")
            return Fix(
                safety=Safety.SAFE,
                changes=changes,
                replace={old: cst.Name("get_running_loop")},
                add_imports=[ImportItem("asyncio", "get_running_loop")],
                remove_unused=[item] if item else [],
            )

        self.report(node, message, (Safety.SAFE, changes, PendingFix(func, kind, build)))
