"""AF102 coroutine-in-sync-context: a coroutine function called and dropped in sync code."""

from __future__ import annotations

import ast
from typing import Any

from asyncfix.analysis.uses import transparent
from asyncfix.codemods.base import Rule
from asyncfix.codemods.missing_await import (
    VALUE_USES,
    instance_lost,
    kept_by_instance,
    lost_in_container,
    lost_local,
    may_be_contained,
)
from asyncfix.model import Safety, Severity


class CoroutineInSyncContext(Rule):
    code = "AF102"
    name = "coroutine-in-sync-context"
    summary = "a coroutine function is called from sync code and its coroutine dropped"
    why = (
        "A sync function cannot await, so calling a coroutine function there only creates a "
        "coroutine object, and dropping it means the body never runs: the connection is never "
        "closed in `__del__`, the `stop()` wrapper stops nothing, the atexit handler does "
        "nothing. Python at best prints 'coroutine ... was never awaited' when the object is "
        "garbage-collected — often at interpreter exit, where nobody reads it."
    )
    example_before = """\
class Client:
    async def close(self):
        ...

    def __del__(self):
        self.close()
"""
    example_after = """\
class Client:
    async def close(self):
        ...

    async def __aexit__(self, *exc_info):
        await self.close()
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only: the right repair depends on who calls the sync function. Make it async "
        "and await the coroutine; run it to completion with `asyncio.run()` where no loop is "
        "running; or schedule it on the running loop (`loop.create_task(...)` from the loop's "
        "thread, `asyncio.run_coroutine_threadsafe(...)` from another thread). Cleanup in "
        "`__del__` belongs in `close()`/`__aexit__`. Also reported: a call at module level "
        "(the coroutine is made at import and never run), and a coroutine bound to a local "
        "of the sync function that is only used as a value or never read (the model's value "
        "flow; `_ = f()` is taken to mean it, as pyright does); and a dropped instance of a "
        "plain class whose `__init__` keeps a coroutine on it and nothing else sees it."
    )
    severity = Severity.HIGH
    kind = "Coroutine never awaited"
    needles = ("def",)
    needs_index = True

    def on_Call(self, node: ast.Call) -> None:
        walk = self.walk
        place = walk.place(node)
        parent = walk.parent(node)
        holder: ast.expr = node
        qualify = self.model.scopes.qualified_name
        while isinstance(parent, ast.Call) and transparent(parent, holder, qualify):
            holder, parent = parent, walk.parent(parent)  # `reveal_type(f())` drops it too
        if place.kind == "module" and isinstance(parent, ast.Expr):
            found = self.model.coroutines.callee(node)
            if found is not None:
                message = (
                    f"`{found.spelled}()` is a coroutine function called at module level: the "
                    "coroutine is dropped and never runs; run it with `asyncio.run()`"
                )
                self.report(node, message, None, [found.evidence])
            elif holder is node:
                self._kept_by_instance(node, "at module level", "dropped")
            return
        if place.kind != "def":
            return
        function = place.function
        where = f"`{function.name}()`" if function is not None else "sync code"
        if holder is node and may_be_contained(node, parent):
            found = self.model.coroutines.callee(node)
            lost = lost_in_container(self.model, node, parent) if found is not None else None
            if found is not None and lost is not None:
                message = (
                    f"`{found.spelled}()` is a coroutine function called from sync {where}: "
                    f"its coroutine is {lost[0]}, and never runs"
                )
                self.report(node, message, None, [found.evidence, lost[1]])
            return
        if isinstance(parent, ast.Assign) and parent.value is holder:
            self._bound(node, parent, where)
            return
        if not isinstance(parent, ast.Expr):
            return
        found = self.model.coroutines.callee(node)
        if found is None:
            if holder is node:
                self._kept_by_instance(node, f"from sync {where}", "dropped")
            return
        message = (
            f"`{found.spelled}()` is a coroutine function called from sync {where}: the "
            "coroutine is dropped and never runs"
        )
        hint = (
            "make the caller async and await it, use `asyncio.run()`, or schedule it on the "
            "running loop"
        )
        if function is not None and function.name == "__del__":
            hint = "move the cleanup to an async `close()`/`__aexit__` that callers await"
        self.report(node, f"{message}; {hint}", None, [found.evidence])

    def report(self, node: ast.AST, *args: Any, **kwargs: Any) -> None:
        if self.model.conditions.dead(node):
            return  # a branch that never runs (`x = None` ... `if x:`)
        super().report(node, *args, **kwargs)

    def _kept_by_instance(self, node: ast.Call, where: str, lost: str) -> None:
        """``D()`` dropped, or bound to a local never used, where ``D.__init__`` keeps a
        coroutine on the instance and nothing else: the coroutine never runs."""
        kept = kept_by_instance(self.model, node)
        if kept is not None:
            message = (
                f"`{self.model.source.segment(node.func)}()` is called {where} and keeps the "
                f"coroutine of `{kept[0]}()` on the instance, and the instance is {lost}: the "
                "coroutine never runs"
            )
            self.report(node, message, None, kept[1])

    def _bound(self, node: ast.Call, statement: ast.Assign, where: str) -> None:
        """``x = f()`` in sync code, and ``x`` is only used as a value or never read: the
        coroutine never runs (``_ = f()`` means it, as pyright says)."""
        targets = statement.targets
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) or targets[0].id == "_":
            return
        target = targets[0]
        found = self.model.coroutines.callee(node)
        if found is None:
            lost = instance_lost(self.model, node, target) if statement.value is node else None
            if lost is not None:
                self._kept_by_instance(node, f"from sync {where}", lost)
            return
        local = lost_local(self.model, target)
        if local is None or local.function is not self.walk.place(statement).function:
            return
        if found.optional and local.uses:
            return  # tested, it may be a test for None
        if local.uses:
            first = local.uses[0]
            what = (
                f"only {VALUE_USES.get(first.kind, 'used as a value')} (line {first.name.lineno})"
            )
        else:
            what = "never used"
        message = (
            f"`{found.spelled}()` is a coroutine function called from sync {where}: its "
            f"coroutine is bound to `{target.id}`, which is {what}, and never runs"
        )
        evidence = [found.evidence, f"`{target.id}` is never awaited or handed on"]
        self.report(node, message, None, evidence)
