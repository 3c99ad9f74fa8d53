"""AF102 coroutine-in-sync-context: a coroutine function called and dropped in sync code."""

from __future__ import annotations

import ast

from asyncfix.codemods.base import Rule
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
        "`__del__` belongs in `close()`/`__aexit__`."
    )
    severity = Severity.HIGH
    kind = "Coroutine never awaited"
    needles = ("def",)
    needs_index = True

    def on_Call(self, node: ast.Call) -> None:
        walk = self.walk
        place = walk.place(node)
        if place.kind != "def" or not isinstance(walk.parent(node), ast.Expr):
            return
        found = self.model.coroutines.callee(node)
        if found is None:
            return
        function = place.function
        where = f"`{function.name}()`" if function is not None else "sync code"
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
