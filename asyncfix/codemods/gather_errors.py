"""AF302 gather-errors-lost: ``gather(..., return_exceptions=True)`` whose results nobody
looks at, so every exception the tasks raised disappears."""

from __future__ import annotations

import libcst as cst

from asyncfix.codemods.base import Rule, source_of
from asyncfix.codemods.races import in_order
from asyncfix.model import Safety, Severity


def _starts_work(call: cst.Call) -> bool:
    """Every awaitable is made right here (``f(x)``, ``*(d.refresh() for d in devices)``):
    nothing else holds them, so the returned exceptions are the only trace of a failure.
    ``gather(*tasks)`` over tasks made elsewhere is left alone (a drain at shutdown; the
    tasks keep their exceptions)."""
    positional = [arg for arg in call.args if arg.keyword is None]
    if not positional:
        return False
    for arg in positional:
        value = arg.value
        if arg.star == "*":
            if not isinstance(value, (cst.GeneratorExp, cst.ListComp)) or not isinstance(
                value.elt, cst.Call
            ):
                return False
        elif not isinstance(value, cst.Call):
            return False
    return True


class GatherErrorsLost(Rule):
    code = "AF302"
    name = "gather-errors-lost"
    summary = "`gather(..., return_exceptions=True)` whose results are never inspected"
    why = (
        "With `return_exceptions=True`, `gather()` does not raise: a task's exception becomes "
        "an item of the returned list. Code that drops the list, or binds it and never reads "
        "it, silently loses every failure — a device that never updates, a write that never "
        "happened, with nothing in the log."
    )
    example_before = """\
import asyncio


async def refresh_all(devices):
    await asyncio.gather(*(d.refresh() for d in devices), return_exceptions=True)
"""
    example_after = """\
import asyncio
import logging


async def refresh_all(devices):
    results = await asyncio.gather(*(d.refresh() for d in devices), return_exceptions=True)
    for device, result in zip(devices, results):
        if isinstance(result, BaseException):
            logging.error("refreshing %s failed", device, exc_info=result)
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only: what a failure should do (log it, retry, raise the first one) is the "
        "author's call. The message suggests inspecting the results, or `asyncio.TaskGroup` "
        "when the target is Python 3.11+ and one failure should cancel the rest."
    )
    severity = Severity.MEDIUM
    kind = "Errors lost"
    needles = ("gather", "return_exceptions")

    def visit_Call(self, node: cst.Call) -> None:
        if not any(
            arg.keyword is not None
            and arg.keyword.value == "return_exceptions"
            and isinstance(arg.value, cst.Name)
            and arg.value.value == "True"
            for arg in node.args
        ):
            return
        if self.ctx.qualified_name(node.func) != "asyncio.gather":
            return
        awaited = self.ctx.parent()
        if not isinstance(awaited, cst.Await) or self._after_cancel(node):
            return
        if not _starts_work(node):
            return  # existing tasks: their exceptions stay on the task objects
        holder = self.ctx.parent(awaited)
        spelled = source_of(node.func)
        advice = (
            "inspect the results, or use `asyncio.TaskGroup`"
            if self.ctx.target >= (3, 11)
            else "inspect the results"
        )
        if isinstance(holder, cst.Expr):
            self.report(
                node,
                f"`{spelled}(..., return_exceptions=True)` is awaited and its results dropped: "
                f"every exception the tasks raised is lost; {advice}",
            )
            return
        if isinstance(holder, cst.Assign) and len(holder.targets) == 1:
            target = holder.targets[0].target
            if isinstance(target, cst.Name) and not self._read_later(target.value, holder):
                self.report(
                    node,
                    f"the results of `{spelled}(..., return_exceptions=True)` are bound to "
                    f"`{target.value}` and never read: every exception the tasks raised is "
                    f"lost; {advice}",
                )

    def _after_cancel(self, node: cst.Call) -> bool:
        """``task.cancel()`` earlier in the function: the gather waits for cancelled tasks to
        finish, and their CancelledErrors are what it deliberately drops."""
        function = self.ctx.enclosing_function()
        if function is None:
            return False
        for child in in_order(function.body):
            if child is node:
                return False
            if (
                isinstance(child, cst.Call)
                and isinstance(child.func, cst.Attribute)
                and child.func.attr.value == "cancel"
            ):
                return True
        return False

    def _read_later(self, name: str, assignment: cst.Assign) -> bool:
        """``name`` is read anywhere in the function besides this assignment (conservative:
        any other mention counts as a read)."""
        function = self.ctx.enclosing_function()
        if function is None:
            return True
        mentions = self.ctx.names.occurrences(function)[name]
        return mentions > 1
